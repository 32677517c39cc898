//! PyTorch checkpoints as `torch.save` has written them since 1.6: a zip archive holding
//! `<root>/data.pkl` (the pickled state dict, whose tensors refer to storages by key) and
//! one entry `<root>/data/<key>` per storage.
//!
//! torch writes every entry stored (uncompressed) and aligned, so a tensor is a byte range
//! of the archive, read in place like safetensors data. Compressed entries are refused
//! rather than inflated, which also rules out zip bombs. `data.pkl` goes through a
//! restricted pickle interpreter ([`pickle`]) that executes nothing.

mod pickle;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{FormatError, Result};
use crate::hf::Sidecars;
use crate::model::{
    DeclaredTensor, Metadata, Model, OpenOptions, Overlaps, StoredLayout, WeightsFormat, limits,
    validate_layout_with,
};
use crate::source::ModelFile;
use pickle::{PickleError, TensorRef, Value};

const FORMAT: &str = "pytorch checkpoint";
/// Entries in one archive: one per storage plus a handful of others.
const MAX_ENTRIES: usize = 1 << 20;

pub fn open(path: &Path, options: OpenOptions) -> Result<Model> {
    let file = ModelFile::open(path, options.read_mode)?;
    let tensors = read_checkpoint(&file, 0)?;
    Ok(Model {
        path: path.to_path_buf(),
        format: WeightsFormat::PyTorch,
        files: vec![file],
        tensors,
        metadata: Metadata::new(),
        sidecars: Sidecars::default(),
    })
}

/// A checkpoint saved in shards (`pytorch_model-00001-of-00002.bin`, ...): one model over
/// all of them. `at` is the folder or index named by the user, for messages.
pub fn open_files(at: &Path, paths: &[PathBuf], options: OpenOptions) -> Result<Model> {
    if paths.len() > limits::MAX_SHARDS {
        return Err(FormatError::malformed(
            at,
            FORMAT,
            format!("{} shards (at most {})", paths.len(), limits::MAX_SHARDS),
        ));
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut tensors = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let file = ModelFile::open(p, options.read_mode)?;
        tensors.extend(read_checkpoint(&file, i)?);
        files.push(file);
    }
    let mut seen = HashSet::with_capacity(tensors.len());
    for t in &tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(FormatError::malformed(
                at,
                FORMAT,
                format!("tensor {} appears in more than one shard", t.name),
            ));
        }
    }
    Ok(Model {
        path: at.to_path_buf(),
        format: WeightsFormat::PyTorch,
        files,
        tensors,
        metadata: Metadata::new(),
        sidecars: Sidecars::default(),
    })
}

/// The shard files a `pytorch_model.bin.index.json` names (plain names in its folder).
pub fn shards_of_index(index: &Path) -> Result<Vec<PathBuf>> {
    let bad = |fault: String| FormatError::malformed(index, "pytorch shard index", fault);
    let len = std::fs::metadata(index)
        .map_err(|e| FormatError::io(index, e))?
        .len();
    if len > 64 << 20 {
        return Err(bad(format!("{len} bytes is larger than any real index")));
    }
    let text = std::fs::read(index).map_err(|e| FormatError::io(index, e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut names: Vec<&str> = Vec::new();
    for v in map.values() {
        let name = v
            .as_str()
            .ok_or_else(|| bad(format!("weight_map value {v} is not a file name")))?;
        let plain = !name.is_empty()
            && Path::new(name).components().count() == 1
            && matches!(
                Path::new(name).components().next(),
                Some(std::path::Component::Normal(_))
            );
        if !plain {
            return Err(bad(format!(
                "shard name {name:?} is not a plain file name in the index's folder"
            )));
        }
        names.push(name);
    }
    names.sort_unstable();
    names.dedup();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// The tensors of one archive, tagged with `file_index`.
fn read_checkpoint(file: &ModelFile, file_index: usize) -> Result<Vec<crate::TensorInfo>> {
    let path = file.path.as_path();
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let entries = read_entries(path, file.len())?;
    let pkl_names: Vec<&String> = entries
        .keys()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .collect();
    let pkl_name = match pkl_names[..] {
        [one] => one.clone(),
        [] => {
            return Err(bad(
                "no <name>/data.pkl entry: not a torch.save archive".into()
            ));
        }
        _ => return Err(bad(format!("{} data.pkl entries", pkl_names.len()))),
    };
    let root = pkl_name.trim_end_matches("data.pkl").to_string();
    if let Some(order) = entries.get(&format!("{root}byteorder")) {
        let bytes = file.bytes(
            order.data_start,
            order.size.min(16) as usize,
            FORMAT,
            "byteorder",
        )?;
        if &bytes[..] != b"little" {
            return Err(FormatError::unsupported(
                path,
                FORMAT,
                format!("byte order {:?}", String::from_utf8_lossy(&bytes)),
            ));
        }
    }
    let pkl = &entries[&pkl_name];
    if pkl.size > limits::MAX_HEADER_BYTES {
        return Err(bad(format!(
            "data.pkl of {} bytes (at most {})",
            pkl.size,
            limits::MAX_HEADER_BYTES
        )));
    }
    let bytes = file.bytes(pkl.data_start, pkl.size as usize, FORMAT, "data.pkl")?;
    let value = pickle::load(&bytes).map_err(|e| match e {
        PickleError::ForbiddenGlobal(g) => bad(format!(
            "data.pkl imports {g}, which is not a tensor constructor; refused (dokja never runs pickled code)"
        )),
        PickleError::Malformed(fault) => bad(format!("data.pkl: {fault}")),
    })?;
    let named = state_dict(&value).map_err(|f| bad(format!("data.pkl: {f}")))?;
    let mut declared = Vec::with_capacity(named.len());
    for (name, t) in named {
        let mut d = declare(path, &entries, &root, name, &t)?;
        d.file = file_index;
        declared.push(d);
    }
    validate_layout_with(path, FORMAT, declared, 0, file.len(), Overlaps::Allow)
}

struct Entry {
    data_start: u64,
    size: u64,
}

/// The archive's stored entries by name. Names must be plain relative paths, sizes must
/// agree and lie inside the file.
fn read_entries(path: &Path, file_len: u64) -> Result<HashMap<String, Entry>> {
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let f = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    if zip.len() > MAX_ENTRIES {
        return Err(bad(format!(
            "{} entries (at most {MAX_ENTRIES})",
            zip.len()
        )));
    }
    let mut entries = HashMap::with_capacity(zip.len());
    for i in 0..zip.len() {
        let e = zip
            .by_index_raw(i)
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        let name = e
            .name()
            .map_err(|e| bad(format!("zip entry {i}: {e}")))?
            .into_owned();
        let unsafe_name = name.is_empty()
            || name.starts_with('/')
            || name.contains('\\')
            || name.contains('\0')
            || name.split('/').any(|c| c == ".." || c == ".");
        if unsafe_name {
            return Err(bad(format!(
                "zip entry name {name:?} is not a plain relative path"
            )));
        }
        if e.is_dir() {
            continue;
        }
        if e.compression() != zip::CompressionMethod::Stored {
            return Err(FormatError::unsupported(
                path,
                FORMAT,
                format!(
                    "entry {name} is compressed ({}); torch.save stores entries uncompressed and dokja reads only those",
                    e.compression()
                ),
            ));
        }
        let (size, packed) = (e.size(), e.compressed_size());
        let data_start = e
            .data_start()
            .ok_or_else(|| bad(format!("entry {name}: no data offset")))?;
        if size != packed {
            return Err(bad(format!(
                "stored entry {name} declares {size} bytes uncompressed but {packed} in the archive"
            )));
        }
        if data_start
            .checked_add(size)
            .is_none_or(|end| end > file_len)
        {
            return Err(bad(format!(
                "entry {name}: bytes {data_start}+{size} run past the end of the file ({file_len} bytes)"
            )));
        }
        if entries
            .insert(name.clone(), Entry { data_start, size })
            .is_some()
        {
            return Err(bad(format!("entry {name} appears twice")));
        }
    }
    Ok(entries)
}

/// The tensors of the unpickled object: a dict of tensors, or a checkpoint dict holding
/// one under `state_dict` / `model` / `module`.
fn state_dict(v: &Value) -> std::result::Result<Vec<(String, std::rc::Rc<TensorRef>)>, String> {
    // Python dict semantics: a repeated key keeps its first position and its last value.
    let tensors_of = |d: &[(Value, Value)]| -> Vec<(String, std::rc::Rc<TensorRef>)> {
        let mut out: Vec<(String, std::rc::Rc<TensorRef>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (k, v) in d {
            if let (Value::Str(k), Value::Tensor(t)) = (k, v) {
                match index.get(&**k) {
                    Some(&i) => out[i].1 = t.clone(),
                    None => {
                        index.insert(k, out.len());
                        out.push((k.to_string(), t.clone()));
                    }
                }
            }
        }
        out
    };
    let Value::Dict(top, _) = v else {
        return Err("the pickled object is not a dict of tensors".into());
    };
    let direct = tensors_of(top);
    if !direct.is_empty() {
        return Ok(direct);
    }
    for (k, v) in top.iter() {
        if let (Value::Str(k), Value::Dict(inner, _)) = (k, v)
            && matches!(&**k, "state_dict" | "model" | "module")
        {
            let t = tensors_of(inner);
            if !t.is_empty() {
                return Ok(t);
            }
        }
    }
    Err("the pickled dict holds no tensors".into())
}

/// A tensor of the pickle as a byte range of the archive.
fn declare(
    path: &Path,
    entries: &HashMap<String, Entry>,
    root: &str,
    name: String,
    t: &TensorRef,
) -> Result<DeclaredTensor> {
    let bad =
        |fault: String| FormatError::malformed(path, FORMAT, format!("tensor {name}: {fault}"));
    if name.len() as u64 > limits::MAX_NAME_LEN {
        return Err(bad(format!("name of {} bytes", name.len())));
    }
    let s = &t.storage;
    let entry = entries
        .get(&format!("{root}data/{}", s.key))
        .ok_or_else(|| bad(format!("storage {} has no entry data/{}", s.key, s.key)))?;
    let elem = s.dtype.block().1;
    let storage_bytes = s.numel.checked_mul(elem);
    if storage_bytes.is_none_or(|b| b > entry.size) {
        return Err(bad(format!(
            "storage {} declares {} {} elements but its entry has {} bytes",
            s.key, s.numel, s.dtype, entry.size
        )));
    }
    let n = t
        .size
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x))
        .ok_or_else(|| bad(format!("size {:?} overflows", t.size)))?;
    if n > 0 {
        // The last element the view touches must lie in the storage.
        let reach = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.storage_offset, |a, (&d, &st)| {
                (d - 1).checked_mul(st).and_then(|x| a.checked_add(x))
            });
        if reach.is_none_or(|r| r >= s.numel) {
            return Err(bad(format!(
                "offset {} size {:?} stride {:?} reach past storage {} of {} elements",
                t.storage_offset, t.size, t.stride, s.key, s.numel
            )));
        }
    }
    let layout = if is_contiguous(&t.size, &t.stride) {
        StoredLayout::RowMajor
    } else if t.size.len() == 2 && t.stride == [1, t.size[0]] {
        // `weight.t()` saved as is: the storage holds the transpose row-major.
        StoredLayout::Transposed
    } else {
        return Err(FormatError::unsupported(
            path,
            FORMAT,
            format!(
                "tensor {name}: strides {:?} for size {:?} (a non-contiguous view; save tensor.contiguous())",
                t.stride, t.size
            ),
        ));
    };
    let offset = t
        .storage_offset
        .checked_mul(elem)
        .and_then(|o| o.checked_add(entry.data_start))
        .ok_or_else(|| bad(format!("storage offset {} overflows", t.storage_offset)))?;
    let mut d = DeclaredTensor::plain(name, t.size.clone(), s.dtype, 0, offset, None);
    d.layout = layout;
    Ok(d)
}

fn is_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expected = 1u64;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity() {
        assert!(is_contiguous(&[2, 3], &[3, 1]));
        assert!(is_contiguous(&[1, 3], &[7, 1]));
        assert!(!is_contiguous(&[2, 3], &[1, 2]));
        assert!(is_contiguous(&[], &[]));
    }
}
