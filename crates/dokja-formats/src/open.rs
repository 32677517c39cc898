//! Deciding what a path is (file, folder, shard index, GGUF) and opening it.

use std::path::{Path, PathBuf};

use crate::error::{FormatError, Result};
use crate::hf::{self, Sidecars};
use crate::model::{Model, OpenOptions, WeightsFormat};

const SHARD_INDEX: &str = "model.safetensors.index.json";
const TORCH_INDEX: &str = ".bin.index.json";
/// Files `transformers.Trainer` saves beside the weights with torch.save.
const TRAINING_STATE: &[&str] = &[
    "training_args.bin",
    "optimizer.pt",
    "scheduler.pt",
    "scaler.pt",
];

pub(crate) fn open_model(path: &Path, options: OpenOptions) -> Result<Model> {
    let meta = std::fs::metadata(path).map_err(|e| FormatError::io(path, e))?;
    if meta.is_dir() {
        return open_folder(path, options);
    }
    let folder = path.parent().map(Path::to_path_buf);
    match sniff(path)? {
        Kind::Gguf => open_gguf(path, options),
        Kind::Safetensors => {
            let mut model = crate::safetensors::open_single(path, options)?;
            model.sidecars = read_sidecars_near(folder)?;
            Ok(model)
        }
        Kind::Onnx => {
            let mut model = crate::onnx::open(path, options)?;
            model.sidecars = read_sidecars_near(folder)?;
            Ok(model)
        }
        Kind::PyTorch => {
            let mut model = crate::pytorch::open(path, options)?;
            model.sidecars = read_sidecars_near(folder)?;
            Ok(model)
        }
        Kind::ShardIndex if path.to_string_lossy().ends_with(TORCH_INDEX) => {
            let shards = crate::pytorch::shards_of_index(path)?;
            let mut model = crate::pytorch::open_files(path, &shards, options)?;
            model.sidecars = read_sidecars_near(folder)?;
            Ok(model)
        }
        Kind::ShardIndex => {
            let mut model = crate::safetensors::open_sharded(path, options)?;
            model.sidecars = read_sidecars_near(folder)?;
            Ok(model)
        }
    }
}

fn open_gguf(path: &Path, options: OpenOptions) -> Result<Model> {
    crate::gguf::open(path, options)
}

fn read_sidecars_near(folder: Option<PathBuf>) -> Result<Sidecars> {
    match folder {
        Some(f) if f.as_os_str().is_empty() => hf::read_sidecars(Path::new(".")),
        Some(f) => hf::read_sidecars(&f),
        None => Ok(Sidecars::default()),
    }
}

fn open_folder(dir: &Path, options: OpenOptions) -> Result<Model> {
    let index = dir.join(SHARD_INDEX);
    let mut model = if index.is_file() {
        crate::safetensors::open_sharded(&index, options)?
    } else {
        let mut safetensors = Vec::new();
        let mut ggufs = Vec::new();
        let mut onnx = Vec::new();
        let mut torch = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| FormatError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| FormatError::io(dir, e))?;
            let p = entry.path();
            match p.extension().and_then(|e| e.to_str()) {
                Some("safetensors") => safetensors.push(p),
                Some("gguf") => ggufs.push(p),
                Some("onnx") => onnx.push(p),
                Some("bin" | "pt" | "pth") if is_weights_zip(&p) => torch.push(p),
                _ => {}
            }
        }
        safetensors.sort();
        ggufs.sort();
        onnx.sort();
        torch.sort();
        // safetensors first: HF repositories often hold the same weights in several formats.
        if safetensors.is_empty() && ggufs.is_empty() {
            let torch_index = dir.join(format!("pytorch_model{TORCH_INDEX}"));
            if onnx.is_empty() && torch_index.is_file() {
                let shards = crate::pytorch::shards_of_index(&torch_index)?;
                let mut model = crate::pytorch::open_files(dir, &shards, options)?;
                model.sidecars = hf::read_sidecars(dir)?;
                return Ok(model);
            }
            let single = match (onnx.len(), torch.len()) {
                (1, _) => Some(crate::onnx::open(&onnx[0], options)?),
                (0, 1) => Some(crate::pytorch::open(&torch[0], options)?),
                (0, n) if n > 1 => Some(crate::pytorch::open_files(dir, &torch, options)?),
                (0, 0) => None,
                (n, _) => {
                    return Err(FormatError::UnknownFormat {
                        path: dir.to_path_buf(),
                        why: format!("{n} ONNX files and no safetensors; name the one to read"),
                    });
                }
            };
            if let Some(mut model) = single {
                model.sidecars = hf::read_sidecars(dir)?;
                return Ok(model);
            }
        }
        match (safetensors.len(), ggufs.len()) {
            (1, _) => crate::safetensors::open_single(&safetensors[0], options)?,
            (n, _) if n > 1 => crate::safetensors::open_files(dir, &safetensors, options)?,
            (0, 1) => return open_gguf(&ggufs[0], options),
            (0, n) if n > 1 => {
                return Err(FormatError::UnknownFormat {
                    path: dir.to_path_buf(),
                    why: format!("{n} GGUF files and no safetensors; name the one to read"),
                });
            }
            _ => {
                return Err(FormatError::UnknownFormat {
                    path: dir.to_path_buf(),
                    why: "no *.safetensors, model.safetensors.index.json, *.gguf, *.onnx or PyTorch checkpoint (*.bin, *.pt, *.pth) in the folder"
                        .into(),
                });
            }
        }
    };
    model.path = dir.to_path_buf();
    model.sidecars = hf::read_sidecars(dir)?;
    if model.format == WeightsFormat::Safetensors && model.files.len() > 1 {
        model.format = WeightsFormat::SafetensorsSharded;
    }
    Ok(model)
}

enum Kind {
    Gguf,
    Onnx,
    PyTorch,
    Safetensors,
    ShardIndex,
}

fn sniff(path: &Path) -> Result<Kind> {
    use std::io::Read;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".index.json") {
        return Ok(Kind::ShardIndex);
    }
    let mut head = [0u8; 9];
    let mut f = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| FormatError::io(path, e))?;
    if n >= 4 && &head[..4] == b"GGUF" {
        return Ok(Kind::Gguf);
    }
    if n == 9 && head[8] == b'{' {
        return Ok(Kind::Safetensors);
    }
    if n >= 4 && &head[..4] == ZIP_MAGIC {
        return Ok(Kind::PyTorch);
    }
    if name.ends_with(".onnx") {
        return Ok(Kind::Onnx);
    }
    if [".bin", ".pt", ".pth"].iter().any(|e| name.ends_with(e)) {
        if n >= 2 && head[0] == 0x80 && head[1] <= 5 {
            return Err(FormatError::unsupported(
                path,
                "pytorch checkpoint",
                "the legacy torch.save format (before PyTorch 1.6, a bare pickle); re-save it with a current torch or convert it to safetensors",
            ));
        }
        return Ok(Kind::PyTorch);
    }
    if name.ends_with(".safetensors") {
        // Let the safetensors reader say precisely what is wrong.
        return Ok(Kind::Safetensors);
    }
    if name.ends_with(".gguf") {
        return Ok(Kind::Gguf);
    }
    Err(FormatError::UnknownFormat {
        path: path.to_path_buf(),
        why: "neither a GGUF file (magic \"GGUF\"), a safetensors file, an ONNX model (*.onnx), a PyTorch zip checkpoint, nor a shard index (*.index.json)".into(),
    })
}

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

fn is_weights_zip(path: &Path) -> bool {
    use std::io::Read;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if TRAINING_STATE.contains(&name) || name.starts_with("rng_state") {
        return false;
    }
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == ZIP_MAGIC
}
