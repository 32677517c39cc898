//! GGUF v2/v3 reader (llama.cpp's format), little-endian only.
//!
//! Layout: magic "GGUF", version u32, tensor count u64, metadata count u64, the metadata
//! key/values, one info record per tensor (name, dims innermost first, ggml type, offset
//! relative to the data section), padding to `general.alignment`, then the tensor data.
//! Only the header is read here; tensor data is read on demand through [`Model`].
//!
//! Readers downstream see Hugging Face names, outermost-first shapes and (for llama-style
//! architectures) Q/K rows in Hugging Face order: see [`names`].

pub mod names;
mod reader;
mod sidecars;
mod types;
mod value;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::error::{FormatError, Result};
use crate::hf::Sidecars;
use crate::model::{
    DeclaredTensor, Metadata, Model, OpenOptions, RowOrder, WeightsFormat, limits, validate_layout,
};
use crate::source::ModelFile;

pub use types::dtype_of;

use reader::{FORMAT, Reader};
use value::Value;

const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest `general.alignment` accepted (real files use 32 or 64).
const MAX_ALIGNMENT: u64 = 1 << 20;
/// Fewest bytes a metadata entry occupies: key length, type, one byte of value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Fewest bytes a tensor info occupies: name length, n_dims, type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// Opens a GGUF file: parses and validates its header, translates names and shapes to
/// Hugging Face conventions, and reads its tokenizer and licence from the metadata.
pub fn open(path: &Path, options: OpenOptions) -> Result<Model> {
    open_file(ModelFile::open(path, options.read_mode)?)
}

/// A GGUF file from any byte source.
pub fn open_file(file: ModelFile) -> Result<Model> {
    let path = file.path.clone();
    let path = path.as_path();
    let Header {
        mut kv,
        tensors,
        data_start,
    } = read_header(&file)?;
    let arch = kv
        .get("general.architecture")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let declared = declare(path, &kv, &arch, tensors, data_start)?;
    let tensors = validate_layout(path, FORMAT, declared, data_start, file.len())?;
    let metadata: Metadata = kv.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
    let sidecars = Sidecars {
        tokenizer: sidecars::tokenizer(path, &mut kv)?,
        licence: sidecars::licence(&kv),
        ..Default::default()
    };
    Ok(Model {
        path: path.to_path_buf(),
        format: WeightsFormat::Gguf,
        files: vec![file],
        tensors,
        metadata,
        sidecars,
    })
}

/// A tensor info record as stored.
struct RawTensor {
    name: String,
    /// Dimensions innermost first, as GGUF stores them.
    ne: Vec<u64>,
    ggml_type: u32,
    /// Relative to the start of the data section.
    offset: u64,
}

struct Header {
    kv: BTreeMap<String, Value>,
    tensors: Vec<RawTensor>,
    /// Absolute offset of the (aligned) data section.
    data_start: u64,
}

fn read_header(file: &ModelFile) -> Result<Header> {
    let mut r = Reader::new(file);
    let magic = r.array::<4>("magic")?;
    if &magic != b"GGUF" {
        return Err(r.fail(format!(
            "not a GGUF file (magic {magic:02x?}, expected \"GGUF\")"
        )));
    }
    check_version(file, r.u32("version")?)?;
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("metadata count")?;
    if n_tensors > limits::MAX_TENSORS {
        return Err(r.fail(format!(
            "tensor count {n_tensors} (at most {})",
            limits::MAX_TENSORS
        )));
    }
    check_count(&r, n_kv, MIN_KV_BYTES, "metadata entries")?;
    let kv = read_kv(&mut r, n_kv)?;
    let alignment = alignment(&r, &kv)?;
    check_count(&r, n_tensors, MIN_TENSOR_INFO_BYTES, "tensor infos")?;
    let tensors = read_tensor_infos(&mut r, n_tensors, alignment)?;
    // pos <= MAX_HEADER_BYTES and alignment <= MAX_ALIGNMENT: no overflow.
    let data_start = r.pos().div_ceil(alignment) * alignment;
    Ok(Header {
        kv,
        tensors,
        data_start,
    })
}

/// v2 and v3 share a layout (v3 only allowed big-endian files); v1 used 32-bit counts.
fn check_version(file: &ModelFile, version: u32) -> Result<()> {
    let unsupported = |what: String| FormatError::unsupported(&file.path, FORMAT, what);
    match version {
        2 | 3 => Ok(()),
        1 => Err(unsupported(
            "GGUF version 1 (dokja reads versions 2 and 3; re-convert with a current llama.cpp)"
                .into(),
        )),
        v if v > 0xFFFF && (1..=3).contains(&v.swap_bytes()) => Err(unsupported(format!(
            "big-endian GGUF (version {} byte-swapped); dokja reads little-endian GGUF only",
            v.swap_bytes()
        ))),
        v => Err(unsupported(format!(
            "GGUF version {v} (dokja reads versions 2 and 3)"
        ))),
    }
}

/// Refuses a count the rest of the header could not possibly hold.
fn check_count(r: &Reader<'_>, count: u64, min_bytes: u64, what: &str) -> Result<()> {
    let max = r.remaining() / min_bytes;
    if count > max {
        return Err(r.fail(format!(
            "{count} {what} claimed at byte {} but the remaining {} header bytes hold at most {max} (truncated or corrupt)",
            r.pos(),
            r.remaining()
        )));
    }
    Ok(())
}

fn read_kv(r: &mut Reader<'_>, n_kv: u64) -> Result<BTreeMap<String, Value>> {
    let mut kv = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string("metadata key", limits::MAX_NAME_LEN)?;
        let t = r.u32(&key)?;
        let value = value::read_value(r, t, &key)?;
        if kv.contains_key(&key) {
            return Err(r.fail(format!("metadata key {key:?} appears twice")));
        }
        kv.insert(key, value);
    }
    Ok(kv)
}

fn alignment(r: &Reader<'_>, kv: &BTreeMap<String, Value>) -> Result<u64> {
    let Some(v) = kv.get("general.alignment") else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    match v.as_u64() {
        Some(a) if a.is_power_of_two() && a <= MAX_ALIGNMENT => Ok(a),
        _ => Err(r.fail(format!(
            "general.alignment is {} (must be a power of two from 1 to {MAX_ALIGNMENT})",
            v.to_json()
        ))),
    }
}

fn read_tensor_infos(r: &mut Reader<'_>, n_tensors: u64, alignment: u64) -> Result<Vec<RawTensor>> {
    // Justified by check_count: each info occupies at least 24 header bytes.
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        let name = r.string(&format!("name of tensor {i}"), limits::MAX_NAME_LEN)?;
        let what = format!("tensor info of {name}");
        let n_dims = r.u32(&what)?;
        if u64::from(n_dims) > limits::MAX_DIMS {
            return Err(r.fail(format!(
                "tensor {name}: {n_dims} dimensions (at most {})",
                limits::MAX_DIMS
            )));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            ne.push(r.u64(&what)?);
        }
        let ggml_type = r.u32(&what)?;
        let offset = r.u64(&what)?;
        if offset % alignment != 0 {
            return Err(r.fail(format!(
                "tensor {name}: data offset {offset} is not a multiple of the alignment {alignment}"
            )));
        }
        tensors.push(RawTensor {
            name,
            ne,
            ggml_type,
            offset,
        });
    }
    Ok(tensors)
}

/// Turns tensor infos into declared tensors: dtype, canonical shape, Hugging Face name,
/// absolute offset and row order.
fn declare(
    path: &Path,
    kv: &BTreeMap<String, Value>,
    arch: &str,
    raw: Vec<RawTensor>,
    data_start: u64,
) -> Result<Vec<DeclaredTensor>> {
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let mut stored_seen = HashSet::new();
    let mut names_seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for t in raw {
        if !stored_seen.insert(t.name.clone()) {
            return Err(bad(format!("tensor {} appears twice", t.name)));
        }
        let dtype = dtype_of(t.ggml_type).map_err(|what| {
            FormatError::unsupported(path, FORMAT, format!("tensor {}: {what}", t.name))
        })?;
        let offset = data_start.checked_add(t.offset).ok_or_else(|| {
            bad(format!(
                "tensor {}: data offset {} overflows",
                t.name, t.offset
            ))
        })?;
        // Every row must be whole blocks of a representable size, even in an empty tensor
        // (layout validation checks rows of non-empty tensors only; readers rely on it).
        if let Some(&ne0) = t.ne.first()
            && dtype.byte_len(ne0).is_none()
        {
            let per_block = dtype.block().0;
            return Err(bad(if ne0 % per_block != 0 {
                format!(
                    "tensor {}: row length {ne0} is not a whole number of {dtype} blocks of {per_block}",
                    t.name
                )
            } else {
                format!(
                    "tensor {}: a row of {ne0} {dtype} elements overflows",
                    t.name
                )
            }));
        }
        // GGUF stores dimensions innermost first; canonical shapes are outermost first.
        let shape: Vec<u64> = t.ne.iter().rev().copied().collect();
        let row_order = row_order(path, kv, arch, &t.name, &shape)?;
        // Two stored names translating alike would make lookups ambiguous: the later one
        // keeps its stored name.
        let mut name = names::hf_name(arch, &t.name);
        if !names_seen.insert(name.clone()) {
            name = t.name.clone();
            if !names_seen.insert(name.clone()) {
                return Err(bad(format!(
                    "tensor name {name} is used twice after translation"
                )));
            }
        }
        let value_shift = names::value_shift(arch, &t.name);
        out.push(DeclaredTensor {
            name,
            stored_name: t.name,
            shape,
            dtype,
            file: 0,
            offset,
            declared_len: None,
            row_order,
            value_shift,
            layout: crate::model::StoredLayout::RowMajor,
            scales: None,
        });
    }
    Ok(out)
}

/// Q and K projections of llama-style architectures are stored with each head's rows
/// interleaved (convert_hf_to_gguf.py's `permute`); reading must undo it.
fn row_order(
    path: &Path,
    kv: &BTreeMap<String, Value>,
    arch: &str,
    stored: &str,
    shape: &[u64],
) -> Result<RowOrder> {
    if !names::permutes_qk(arch) || shape.len() != 2 {
        return Ok(RowOrder::Identity);
    }
    let Some((layer, role)) = names::qk_role(stored) else {
        return Ok(RowOrder::Identity);
    };
    let heads = format!("{arch}.attention.head_count");
    let kv_heads = format!("{arch}.attention.head_count_kv");
    let n_head = match role {
        names::QkRole::Q => per_layer(path, kv, &heads, layer)?,
        names::QkRole::K => match per_layer(path, kv, &kv_heads, layer)? {
            Some(n) => Some(n),
            None => per_layer(path, kv, &heads, layer)?,
        },
    };
    let n_head = n_head.ok_or_else(|| {
        FormatError::malformed(
            path,
            FORMAT,
            format!("{heads} is missing, so the Q/K row permutation of {stored} cannot be undone"),
        )
    })?;
    let n_head = u32::try_from(n_head).map_err(|_| {
        FormatError::malformed(
            path,
            FORMAT,
            format!("{stored}: head count {n_head} is absurd"),
        )
    })?;
    Ok(RowOrder::GgufRotaryInterleaved { n_head })
}

/// A hyperparameter that is either one integer or one per layer (e.g. deci's head counts).
fn per_layer(
    path: &Path,
    kv: &BTreeMap<String, Value>,
    key: &str,
    layer: u64,
) -> Result<Option<u64>> {
    let Some(v) = kv.get(key) else {
        return Ok(None);
    };
    let n = match v {
        Value::Array(a) => usize::try_from(layer).ok().and_then(|i| a.u64_at(i)),
        v => v.as_u64(),
    };
    n.map(Some).ok_or_else(|| {
        FormatError::malformed(
            path,
            FORMAT,
            format!(
                "{key} is {} (expected a non-negative integer for layer {layer})",
                v.to_json()
            ),
        )
    })
}
