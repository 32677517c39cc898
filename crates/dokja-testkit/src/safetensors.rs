//! safetensors writer, following the reference implementation's layout: u64 LE header
//! length, compact JSON header (`__metadata__` first, then tensors in data order), header
//! padded with spaces to a multiple of 8, then the data. Tensors are laid out sorted by
//! dtype (widest first) then name, as the `safetensors` crate does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::model::{SynthModel, SynthTensor};

/// Element types the writers can store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StDtype {
    F64,
    F32,
    F16,
    BF16,
}

impl StDtype {
    /// The safetensors spelling.
    pub fn name(self) -> &'static str {
        match self {
            StDtype::F64 => "F64",
            StDtype::F32 => "F32",
            StDtype::F16 => "F16",
            StDtype::BF16 => "BF16",
        }
    }

    /// config.json's `torch_dtype` spelling.
    pub fn torch_name(self) -> &'static str {
        match self {
            StDtype::F64 => "float64",
            StDtype::F32 => "float32",
            StDtype::F16 => "float16",
            StDtype::BF16 => "bfloat16",
        }
    }

    pub fn size(self) -> usize {
        match self {
            StDtype::F64 => 8,
            StDtype::F32 => 4,
            StDtype::F16 | StDtype::BF16 => 2,
        }
    }

    /// Sort key of the safetensors crate's `Dtype` order (larger first in files).
    fn rank(self) -> u8 {
        match self {
            StDtype::F16 => 0,
            StDtype::BF16 => 1,
            StDtype::F32 => 2,
            StDtype::F64 => 3,
        }
    }

    /// Appends `values` little-endian; f16/bf16 round to nearest even.
    pub fn encode(self, values: &[f32], out: &mut Vec<u8>) {
        out.reserve(values.len() * self.size());
        match self {
            StDtype::F64 => values
                .iter()
                .for_each(|&v| out.extend_from_slice(&(v as f64).to_le_bytes())),
            StDtype::F32 => values
                .iter()
                .for_each(|&v| out.extend_from_slice(&v.to_le_bytes())),
            StDtype::F16 => values.iter().for_each(|&v| {
                out.extend_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes())
            }),
            StDtype::BF16 => values.iter().for_each(|&v| {
                out.extend_from_slice(&half::bf16::from_f32(v).to_bits().to_le_bytes())
            }),
        }
    }

    /// The value as it reads back after a store in this dtype.
    pub fn round(self, v: f32) -> f32 {
        match self {
            StDtype::F64 | StDtype::F32 => v,
            StDtype::F16 => half::f16::from_f32(v).to_f32(),
            StDtype::BF16 => half::bf16::from_f32(v).to_f32(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StOptions {
    pub dtype: StDtype,
    /// Per-tensor dtypes by HF name (mixed-precision checkpoints keep some tensors in F32).
    pub overrides: Vec<(String, StDtype)>,
    /// `__metadata__` (string to string); None omits it.
    pub metadata: Option<Vec<(String, String)>>,
}

impl StOptions {
    pub fn new(dtype: StDtype) -> StOptions {
        StOptions {
            dtype,
            overrides: Vec::new(),
            metadata: Some(vec![("format".into(), "pt".into())]),
        }
    }

    pub fn with_override(mut self, name: impl Into<String>, dtype: StDtype) -> StOptions {
        self.overrides.push((name.into(), dtype));
        self
    }

    pub fn without_metadata(mut self) -> StOptions {
        self.metadata = None;
        self
    }

    pub fn dtype_of(&self, name: &str) -> StDtype {
        self.overrides
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(self.dtype, |(_, d)| *d)
    }
}

/// The bytes of one safetensors file holding `tensors`.
pub fn safetensors_bytes(tensors: &[&SynthTensor], opts: &StOptions) -> Vec<u8> {
    let mut order: Vec<(&SynthTensor, StDtype)> = tensors
        .iter()
        .map(|t| (*t, opts.dtype_of(&t.name)))
        .collect();
    order.sort_by(|(a, da), (b, db)| db.rank().cmp(&da.rank()).then_with(|| a.name.cmp(&b.name)));
    let mut header = Map::new();
    if let Some(meta) = &opts.metadata {
        let m: Map<String, Value> = meta.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        header.insert("__metadata__".into(), Value::Object(m));
    }
    let mut data = Vec::new();
    for (t, dtype) in &order {
        let start = data.len();
        dtype.encode(&t.data, &mut data);
        header.insert(
            t.name.clone(),
            json!({"dtype": dtype.name(), "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut head = serde_json::to_vec(&Value::Object(header)).expect("json");
    head.resize(head.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + head.len() + data.len());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&data);
    out
}

pub fn write_safetensors(model: &SynthModel, path: &Path, dtype: StDtype) -> io::Result<()> {
    write_safetensors_with(model, path, &StOptions::new(dtype))
}

pub fn write_safetensors_with(model: &SynthModel, path: &Path, opts: &StOptions) -> io::Result<()> {
    let refs: Vec<&SynthTensor> = model.tensors.iter().collect();
    fs::write(path, safetensors_bytes(&refs, opts))
}

/// Splits `model` into shards of at most `max_shard_bytes` of tensor data (a larger tensor
/// gets a shard of its own), in model order like transformers' `save_pretrained`, and writes
/// `model-0000N-of-0000M.safetensors` plus `model.safetensors.index.json` into `dir`.
/// Returns the shard paths.
pub fn write_sharded(
    model: &SynthModel,
    dir: &Path,
    max_shard_bytes: u64,
    dtype: StDtype,
) -> io::Result<Vec<PathBuf>> {
    write_sharded_with(model, dir, max_shard_bytes, &StOptions::new(dtype))
}

pub fn write_sharded_with(
    model: &SynthModel,
    dir: &Path,
    max_shard_bytes: u64,
    opts: &StOptions,
) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let size = |t: &SynthTensor| (t.n_elements() * opts.dtype_of(&t.name).size()) as u64;
    let mut shards: Vec<Vec<&SynthTensor>> = vec![Vec::new()];
    let mut current = 0u64;
    for t in &model.tensors {
        let s = size(t);
        if current + s > max_shard_bytes && !shards.last().unwrap().is_empty() {
            shards.push(Vec::new());
            current = 0;
        }
        shards.last_mut().unwrap().push(t);
        current += s;
    }
    let n = shards.len();
    let mut weight_map: Vec<(String, String)> = Vec::new();
    let mut paths = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, n);
        let path = dir.join(&file);
        fs::write(&path, safetensors_bytes(shard, opts))?;
        weight_map.extend(shard.iter().map(|t| (t.name.clone(), file.clone())));
        paths.push(path);
    }
    weight_map.sort();
    let total: u64 = model.tensors.iter().map(size).sum();
    let map: Map<String, Value> = weight_map.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let index = json!({"metadata": {"total_size": total}, "weight_map": map});
    fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).expect("json"),
    )?;
    Ok(paths)
}
