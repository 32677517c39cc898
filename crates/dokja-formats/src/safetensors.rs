//! safetensors: single files, sharded checkpoints (`model.safetensors.index.json`) and
//! folders of several files without an index.
//!
//! Layout: u64 LE header length N, N bytes of JSON `{name: {dtype, shape, data_offsets}}`
//! (plus an optional `__metadata__` map of strings), then the data. Offsets are relative
//! to the end of the header. We read only the header here; data is read on demand.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::dtype::Dtype;
use crate::error::{FormatError, Result};
use crate::hf::Sidecars;
use crate::model::{
    DeclaredTensor, Metadata, Model, OpenOptions, TensorInfo, WeightsFormat, limits,
    validate_layout,
};
use crate::source::ModelFile;

const FORMAT: &str = "safetensors";
const INDEX_FORMAT: &str = "safetensors shard index";
/// Shard indexes of the largest real checkpoints are a few MB.
const MAX_INDEX_BYTES: u64 = 64 << 20;

pub fn open_single(path: &Path, options: OpenOptions) -> Result<Model> {
    open_single_file(ModelFile::open(path, options.read_mode)?)
}

/// One safetensors file from any byte source.
pub fn open_single_file(file: ModelFile) -> Result<Model> {
    let (tensors, metadata) = read_file(&file, 0)?;
    Ok(Model {
        path: file.path.clone(),
        format: WeightsFormat::Safetensors,
        files: vec![file],
        tensors,
        metadata,
        sidecars: Sidecars::default(),
    })
}

/// Several safetensors files in one folder without an index: each is a shard.
pub fn open_files(dir: &Path, paths: &[PathBuf], options: OpenOptions) -> Result<Model> {
    if paths.len() > limits::MAX_SHARDS {
        return Err(FormatError::malformed(
            dir,
            FORMAT,
            format!(
                "{} files is more than {} shards",
                paths.len(),
                limits::MAX_SHARDS
            ),
        ));
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut tensors = Vec::new();
    let mut metadata = Metadata::new();
    for (i, p) in paths.iter().enumerate() {
        let file = ModelFile::open(p, options.read_mode)?;
        let (t, m) = read_file(&file, i)?;
        tensors.extend(t);
        merge_metadata(&mut metadata, m);
        files.push(file);
    }
    check_unique_names(dir, &tensors)?;
    Ok(Model {
        path: dir.to_path_buf(),
        format: WeightsFormat::SafetensorsSharded,
        files,
        tensors,
        metadata,
        sidecars: Sidecars::default(),
    })
}

pub fn open_sharded(index_path: &Path, options: OpenOptions) -> Result<Model> {
    let index_bytes = read_index_file(index_path)?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    open_sharded_with(index_path, &index_bytes, &mut |shard| {
        let shard_path = dir.join(shard);
        if !shard_path.is_file() {
            return Ok(None);
        }
        ModelFile::open(&shard_path, options.read_mode).map(Some)
    })
}

/// A sharded checkpoint whose index (labelled `index_path`, contents `index_bytes`) is
/// already read; `open_shard` opens a shard by its file name, `None` if it does not exist.
pub fn open_sharded_with(
    index_path: &Path,
    index_bytes: &[u8],
    open_shard: &mut dyn FnMut(&str) -> Result<Option<ModelFile>>,
) -> Result<Model> {
    let index = parse_index(index_path, index_bytes)?;
    let mut shard_names: Vec<&str> = index.weight_map.values().map(String::as_str).collect();
    shard_names.sort_unstable();
    shard_names.dedup();
    if shard_names.len() > limits::MAX_SHARDS {
        return Err(FormatError::malformed(
            index_path,
            INDEX_FORMAT,
            format!(
                "{} shards (at most {})",
                shard_names.len(),
                limits::MAX_SHARDS
            ),
        ));
    }
    let mut files = Vec::with_capacity(shard_names.len());
    let mut tensors = Vec::new();
    let mut metadata = index.metadata;
    for (i, shard) in shard_names.iter().enumerate() {
        let Some(file) = open_shard(shard)? else {
            return Err(FormatError::malformed(
                index_path,
                INDEX_FORMAT,
                format!("names shard {shard}, which does not exist"),
            ));
        };
        let (t, m) = read_file(&file, i)?;
        for tensor in &t {
            match index.weight_map.get(&tensor.name) {
                Some(listed) if listed != shard => {
                    return Err(FormatError::malformed(
                        index_path,
                        INDEX_FORMAT,
                        format!(
                            "tensor {} is in {shard} but the index places it in {listed}",
                            tensor.name
                        ),
                    ));
                }
                _ => {}
            }
        }
        tensors.extend(t);
        merge_metadata(&mut metadata, m);
        files.push(file);
    }
    check_unique_names(index_path, &tensors)?;
    let present: HashMap<&str, ()> = tensors.iter().map(|t| (t.name.as_str(), ())).collect();
    if let Some(missing) = index
        .weight_map
        .keys()
        .find(|n| !present.contains_key(n.as_str()))
    {
        return Err(FormatError::malformed(
            index_path,
            INDEX_FORMAT,
            format!("tensor {missing} is listed in the index but is in none of the shards"),
        ));
    }
    Ok(Model {
        path: index_path.to_path_buf(),
        format: WeightsFormat::SafetensorsSharded,
        files,
        tensors,
        metadata,
        sidecars: Sidecars::default(),
    })
}

struct ShardIndex {
    weight_map: BTreeMap<String, String>,
    metadata: Metadata,
}

fn read_index_file(path: &Path) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .map_err(|e| FormatError::io(path, e))?
        .len();
    check_index_len(path, len)?;
    std::fs::read(path).map_err(|e| FormatError::io(path, e))
}

/// Refuses an index larger than any real one before it is read.
pub fn check_index_len(path: &Path, len: u64) -> Result<()> {
    if len > MAX_INDEX_BYTES {
        return Err(FormatError::malformed(
            path,
            INDEX_FORMAT,
            format!("{len} bytes is larger than any real index ({MAX_INDEX_BYTES} bytes at most)"),
        ));
    }
    Ok(())
}

fn parse_index(path: &Path, text: &[u8]) -> Result<ShardIndex> {
    let bad = |fault: String| FormatError::malformed(path, INDEX_FORMAT, fault);
    check_index_len(path, text.len() as u64)?;
    let value: Value =
        serde_json::from_slice(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no \"weight_map\" object".into()))?;
    let mut weight_map = BTreeMap::new();
    for (name, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("weight_map entry {name} is not a file name")))?;
        if !is_plain_file_name(file) {
            return Err(bad(format!(
                "shard name {file:?} is not a plain file name in the index's folder"
            )));
        }
        weight_map.insert(name.clone(), file.to_string());
    }
    let mut metadata = Metadata::new();
    if let Some(m) = value.get("metadata").and_then(Value::as_object) {
        for (k, v) in m {
            metadata.insert(k.clone(), v.clone());
        }
    }
    Ok(ShardIndex {
        weight_map,
        metadata,
    })
}

/// Shard names must stay inside the index's folder: a hostile index must not make dokja
/// read `/etc/shadow` or `../../other-model`.
fn is_plain_file_name(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty()
        && p.components().count() == 1
        && matches!(p.components().next(), Some(Component::Normal(_)))
}

fn merge_metadata(into: &mut Metadata, from: Metadata) {
    for (k, v) in from {
        into.entry(k).or_insert(v);
    }
}

fn check_unique_names(path: &Path, tensors: &[TensorInfo]) -> Result<()> {
    let mut seen = HashMap::with_capacity(tensors.len());
    for t in tensors {
        if seen.insert(t.name.as_str(), ()).is_some() {
            return Err(FormatError::malformed(
                path,
                FORMAT,
                format!("tensor {} appears in more than one shard", t.name),
            ));
        }
    }
    Ok(())
}

/// Parses one file's header into validated tensors (tagged with `file_index`) and its
/// `__metadata__`.
fn read_file(file: &ModelFile, file_index: usize) -> Result<(Vec<TensorInfo>, Metadata)> {
    let path = &file.path;
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let size = file.len();
    if size < 8 {
        return Err(bad(format!(
            "{size} bytes is too short for the 8-byte header length"
        )));
    }
    let head = file.bytes(0, 8, FORMAT, "header length")?;
    let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    if header_len > limits::MAX_HEADER_BYTES {
        return Err(bad(format!(
            "header length {header_len} exceeds the {} byte limit",
            limits::MAX_HEADER_BYTES
        )));
    }
    let data_start = 8 + header_len;
    if data_start > size {
        return Err(bad(format!(
            "header length {header_len} runs past the end of the file ({size} bytes): truncated?"
        )));
    }
    let header = file.bytes(8, header_len as usize, FORMAT, "header")?;
    let (mut declared, metadata) = parse_header(&header, file_index).map_err(bad)?;
    for d in &mut declared {
        // Offsets in the header count from the end of the header.
        d.offset = d.offset.checked_add(data_start).ok_or_else(|| {
            bad(format!(
                "tensor {}: offset {} overflows",
                d.stored_name, d.offset
            ))
        })?;
    }
    let tensors = validate_layout(path, FORMAT, declared, data_start, size)?;
    Ok((tensors, metadata))
}

/// Parses header JSON; errors are the fault text (the caller adds the file).
pub(crate) fn parse_header(
    header: &[u8],
    file_index: usize,
) -> std::result::Result<(Vec<DeclaredTensor>, Metadata), String> {
    let text = std::str::from_utf8(header).map_err(|e| format!("header is not UTF-8: {e}"))?;
    if !text.trim_start().starts_with('{') {
        return Err("header is not a JSON object".into());
    }
    let value: serde_json::Map<String, Value> =
        serde_json::from_str(text.trim_end()).map_err(|e| format!("header JSON: {e}"))?;
    if value.len() as u64 > limits::MAX_TENSORS {
        return Err(format!(
            "{} tensors (at most {})",
            value.len(),
            limits::MAX_TENSORS
        ));
    }
    let mut declared = Vec::with_capacity(value.len());
    let mut metadata = Metadata::new();
    for (name, entry) in value {
        if name == "__metadata__" {
            let map = entry.as_object().ok_or("__metadata__ is not an object")?;
            for (k, v) in map {
                metadata.insert(k.clone(), v.clone());
            }
            continue;
        }
        if name.len() as u64 > limits::MAX_NAME_LEN {
            return Err(format!("a tensor name of {} bytes", name.len()));
        }
        let obj = entry
            .as_object()
            .ok_or_else(|| format!("tensor {name}: entry is not an object"))?;
        let dtype_str = obj
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("tensor {name}: no dtype"))?;
        let dtype = Dtype::from_safetensors(dtype_str)
            .ok_or_else(|| format!("tensor {name}: unknown dtype {dtype_str:?}"))?;
        let shape = u64_list(obj.get("shape"), limits::MAX_DIMS as usize)
            .map_err(|e| format!("tensor {name}: shape {e}"))?;
        let offsets = u64_list(obj.get("data_offsets"), 2)
            .map_err(|e| format!("tensor {name}: data_offsets {e}"))?;
        let [start, end] = offsets[..] else {
            return Err(format!("tensor {name}: data_offsets must be [start, end]"));
        };
        if end < start {
            return Err(format!(
                "tensor {name}: data_offsets end {end} is before start {start}"
            ));
        }
        declared.push(DeclaredTensor::plain(
            name,
            shape,
            dtype,
            file_index,
            start,
            Some(end - start),
        ));
    }
    Ok((declared, metadata))
}

fn u64_list(v: Option<&Value>, max_len: usize) -> std::result::Result<Vec<u64>, String> {
    let arr = v.and_then(Value::as_array).ok_or("missing or not a list")?;
    if arr.len() > max_len {
        return Err(format!("has {} entries (at most {max_len})", arr.len()));
    }
    arr.iter()
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| format!("entry {x} is not a non-negative integer"))
        })
        .collect()
}
