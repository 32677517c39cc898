//! On-disk cache of trained models, so tests and calibration runs train each model once per
//! machine. Layout of `<root>/<crate version>-<key>/`:
//! `model.safetensors` (F32, the test kit's writer), `config.json`, `meta.json` (name, GGUF
//! architecture, tensor order, tokenizer) and `losses.f32` (raw little-endian, exact).
//!
//! Writes go to a temporary sibling folder renamed into place, so a reader never sees a
//! half-written entry and concurrent builders of one key are harmless.

use std::fs;
use std::path::{Path, PathBuf};

use dokja_testkit::{StDtype, SynthModel, SynthTensor, SynthTokenizer, write_safetensors};
use serde_json::{Map, Value, json};

use crate::train::TrainedModel;
use crate::{Result, TrainError};

/// `${DOKJA_CACHE:-$HOME/.cache/dokja}/trained`.
pub fn cache_root() -> PathBuf {
    let base = match std::env::var_os("DOKJA_CACHE") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cache/dokja"),
    };
    base.join("trained")
}

/// The model cached under `key` in [`cache_root`], built by `build` (and stored) on a miss.
pub fn cached(key: &str, build: impl FnOnce() -> Result<TrainedModel>) -> Result<TrainedModel> {
    cached_in(&cache_root(), key, build)
}

/// [`cached`] under an explicit root. A cache that cannot be written only costs a warning:
/// the freshly built model is returned.
pub fn cached_in(
    root: &Path,
    key: &str,
    build: impl FnOnce() -> Result<TrainedModel>,
) -> Result<TrainedModel> {
    let dir = root.join(entry_name(key));
    if dir.is_dir() {
        match load_trained(&dir) {
            Ok(m) => return Ok(m),
            Err(e) => eprintln!("dokja-train: rebuilding unreadable cache entry: {e}"),
        }
    }
    let built = build()?;
    match store(root, &dir, &built) {
        // Return what a warm run would read, so cold and warm runs agree exactly.
        Ok(()) => load_trained(&dir).or(Ok(built)),
        Err(e) => {
            eprintln!("dokja-train: cannot cache {}: {e}", dir.display());
            Ok(built)
        }
    }
}

/// Keys become folder names: keep them readable, make them safe.
fn entry_name(key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}-{clean}", env!("CARGO_PKG_VERSION"))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn store(root: &Path, dir: &Path, m: &TrainedModel) -> Result<()> {
    fs::create_dir_all(root).map_err(io_err(root))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = root.join(format!(".tmp-{}-{nanos}", std::process::id()));
    save_trained(&tmp, m)?;
    if dir.exists() {
        if load_trained(dir).is_ok() {
            // Another process finished the same (deterministic) build first: keep its entry.
            let _ = fs::remove_dir_all(&tmp);
            return Ok(());
        }
        let _ = fs::remove_dir_all(dir); // broken: replace it
    }
    match fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        Err(_) if dir.is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(io_err(dir)(e))
        }
    }
}

/// Writes `m` into the folder `dir` (created).
pub fn save_trained(dir: &Path, m: &TrainedModel) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let model = &m.model;
    let st = dir.join("model.safetensors");
    write_safetensors(model, &st, StDtype::F32).map_err(io_err(&st))?;
    let meta = json!({
        "name": model.name,
        "gguf_arch": model.gguf_arch,
        "tensor_order": model.names(),
        "tokenizer": model.tokenizer.as_ref().map(tokenizer_json),
    });
    for (file, v) in [("config.json", &model.config), ("meta.json", &meta)] {
        let p = dir.join(file);
        let text = serde_json::to_string_pretty(v).expect("JSON values serialize");
        fs::write(&p, text).map_err(io_err(&p))?;
    }
    let p = dir.join("losses.f32");
    let bytes: Vec<u8> = m.losses.iter().flat_map(|l| l.to_le_bytes()).collect();
    fs::write(&p, bytes).map_err(io_err(&p))
}

/// Reads a folder written by [`save_trained`].
pub fn load_trained(dir: &Path) -> Result<TrainedModel> {
    let read = |f: &str| {
        let p = dir.join(f);
        fs::read(&p).map_err(io_err(&p))
    };
    let json = |f: &str| -> Result<Value> {
        serde_json::from_slice(&read(f)?).map_err(|e| parse_err(&dir.join(f), e.to_string()))
    };
    let config = json("config.json")?;
    let meta = json("meta.json")?;
    let meta_path = dir.join("meta.json");
    let bad = |msg: &str| parse_err(&meta_path, msg.to_string());
    let mut by_name = read_f32_safetensors(&dir.join("model.safetensors"))?;
    let order = meta["tensor_order"]
        .as_array()
        .ok_or_else(|| bad("no tensor_order"))?;
    let mut tensors = Vec::with_capacity(order.len());
    for n in order {
        let n = n.as_str().ok_or_else(|| bad("tensor name"))?;
        let i = by_name
            .iter()
            .position(|t| t.name == n)
            .ok_or_else(|| bad(&format!("tensor {n} not in model.safetensors")))?;
        tensors.push(by_name.swap_remove(i));
    }
    let tokenizer = match &meta["tokenizer"] {
        Value::Null => None,
        t => Some(tokenizer_from_json(t).ok_or_else(|| bad("tokenizer"))?),
    };
    let losses = read("losses.f32")?
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(TrainedModel {
        model: SynthModel {
            name: meta["name"].as_str().unwrap_or("").to_string(),
            tensors,
            config,
            tokenizer,
            gguf_arch: meta["gguf_arch"].as_str().unwrap_or("llama").to_string(),
        },
        losses,
    })
}

fn parse_err(path: &Path, msg: String) -> TrainError {
    TrainError::Parse {
        path: path.to_path_buf(),
        msg,
    }
}

/// The F32 tensors of a safetensors file (a minimal reader: this crate stays independent
/// of dokja-formats, whose reader the cached models help test).
fn read_f32_safetensors(path: &Path) -> Result<Vec<SynthTensor>> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let bad = |msg: String| parse_err(path, msg);
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(|| bad("shorter than its header length".into()))?;
    let header = bytes
        .get(8..8 + n)
        .ok_or_else(|| bad("header runs past the end".into()))?;
    let header: Map<String, Value> =
        serde_json::from_slice(header).map_err(|e| bad(e.to_string()))?;
    let data = &bytes[8 + n..];
    let mut out = Vec::new();
    for (name, info) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        if info["dtype"] != "F32" {
            return Err(bad(format!(
                "{name}: dtype {}, expected F32",
                info["dtype"]
            )));
        }
        let nums = |k: &str| -> Option<Vec<usize>> {
            info[k]
                .as_array()?
                .iter()
                .map(|v| v.as_u64().map(|x| x as usize))
                .collect()
        };
        let shape = nums("shape").ok_or_else(|| bad(format!("{name}: shape")))?;
        let off = nums("data_offsets").ok_or_else(|| bad(format!("{name}: offsets")))?;
        let want = shape.iter().product::<usize>() * 4;
        let raw = match off[..] {
            [a, b] if b >= a && b - a == want => data.get(a..b),
            _ => None,
        }
        .ok_or_else(|| bad(format!("{name}: data offsets {off:?} for shape {shape:?}")))?;
        let values = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(SynthTensor::new(name.clone(), shape, values));
    }
    Ok(out)
}

fn tokenizer_json(t: &SynthTokenizer) -> Value {
    json!({
        "kind": format!("{:?}", t.kind),
        "vocab": t.vocab,
        "merges": t.merges,
        "special": t.special,
        "bos": t.bos,
        "eos": t.eos,
    })
}

fn tokenizer_from_json(v: &Value) -> Option<SynthTokenizer> {
    if v["kind"] != "ByteLevelBpe" {
        return None;
    }
    let strings = |k: &str| -> Option<Vec<String>> {
        v[k].as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let id = |k: &str| v[k].as_u64().map(|x| x as u32);
    Some(SynthTokenizer {
        kind: dokja_testkit::TokenizerKind::ByteLevelBpe,
        vocab: strings("vocab")?,
        merges: strings("merges")?,
        scores: Vec::new(),
        special: v["special"]
            .as_array()?
            .iter()
            .map(|x| x.as_u64().map(|x| x as u32))
            .collect::<Option<_>>()?,
        bos: id("bos"),
        eos: id("eos"),
        unk: None,
        pad: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dokja_testkit::{LlamaSpec, llama_like};

    fn sample() -> TrainedModel {
        let mut model = llama_like(&LlamaSpec::default(), 3);
        // Values whose decimal forms are long: the cache must keep every bit.
        model.tensors[0].data[0] = std::f32::consts::PI / 7.0;
        TrainedModel {
            model,
            losses: vec![6.2, 5.123_456_7, f32::MIN_POSITIVE],
        }
    }

    #[test]
    fn cache_round_trips_exactly_and_builds_once() {
        let root = tempfile::tempdir().unwrap();
        let want = sample();
        let mut builds = 0;
        let cold = cached_in(root.path(), "k/1", || {
            builds += 1;
            Ok(want.clone())
        })
        .unwrap();
        let warm = cached_in(root.path(), "k/1", || {
            builds += 1;
            Ok(want.clone())
        })
        .unwrap();
        assert_eq!(builds, 1);
        assert_eq!(cold, want);
        assert_eq!(warm, want);
        for (a, b) in warm.model.tensors.iter().zip(&want.model.tensors) {
            let bits = |t: &SynthTensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(a), bits(b), "{}", a.name);
        }
        let entries: Vec<_> = fs::read_dir(root.path()).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1, "no temporary folders left behind");
        assert!(entries[0].file_name().to_string_lossy().ends_with("-k_1"));
    }

    #[test]
    fn broken_entries_are_rebuilt() {
        let root = tempfile::tempdir().unwrap();
        let want = sample();
        cached_in(root.path(), "x", || Ok(want.clone())).unwrap();
        let dir = root.path().join(entry_name("x"));
        fs::write(dir.join("model.safetensors"), b"garbage").unwrap();
        let mut rebuilt = false;
        let got = cached_in(root.path(), "x", || {
            rebuilt = true;
            Ok(want.clone())
        })
        .unwrap();
        assert!(rebuilt);
        assert_eq!(got, want);
    }
}
