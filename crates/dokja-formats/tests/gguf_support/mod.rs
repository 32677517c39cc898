//! A small GGUF writer for tests: header, metadata, tensor infos and data, byte for byte as
//! llama.cpp lays them out, with hooks to write broken files.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

use dokja_formats::{Model, OpenOptions, ReadMode};

/// GGUF value type ids.
pub mod ty {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STR: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// ggml type ids used in tests.
pub mod ggml {
    pub const F32: u32 = 0;
    pub const F16: u32 = 1;
    pub const Q4_0: u32 = 2;
    pub const Q8_0: u32 = 8;
    pub const BF16: u32 = 30;
}

#[derive(Clone, Debug)]
pub enum Val {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    U64(u64),
    I64(i64),
    F64(f64),
    /// Element type id and elements (all of that type).
    Arr(u32, Vec<Val>),
}

impl Val {
    pub fn type_id(&self) -> u32 {
        match self {
            Val::U8(_) => ty::U8,
            Val::I8(_) => ty::I8,
            Val::U16(_) => ty::U16,
            Val::I16(_) => ty::I16,
            Val::U32(_) => ty::U32,
            Val::I32(_) => ty::I32,
            Val::F32(_) => ty::F32,
            Val::Bool(_) => ty::BOOL,
            Val::Str(_) => ty::STR,
            Val::U64(_) => ty::U64,
            Val::I64(_) => ty::I64,
            Val::F64(_) => ty::F64,
            Val::Arr(..) => ty::ARRAY,
        }
    }

    pub fn str(s: &str) -> Val {
        Val::Str(s.to_string())
    }

    pub fn strs(items: &[&str]) -> Val {
        Val::Arr(ty::STR, items.iter().map(|s| Val::str(s)).collect())
    }

    /// Writes the value without its type id.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Val::U8(v) => out.push(*v),
            Val::I8(v) => out.push(*v as u8),
            Val::U16(v) => out.extend(v.to_le_bytes()),
            Val::I16(v) => out.extend(v.to_le_bytes()),
            Val::U32(v) => out.extend(v.to_le_bytes()),
            Val::I32(v) => out.extend(v.to_le_bytes()),
            Val::F32(v) => out.extend(v.to_le_bytes()),
            Val::Bool(v) => out.push(*v as u8),
            Val::Str(s) => write_str(out, s),
            Val::U64(v) => out.extend(v.to_le_bytes()),
            Val::I64(v) => out.extend(v.to_le_bytes()),
            Val::F64(v) => out.extend(v.to_le_bytes()),
            Val::Arr(t, items) => {
                out.extend(t.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    if let Val::Arr(..) = item {
                        assert_eq!(*t, ty::ARRAY);
                    }
                    item.write(out);
                }
            }
        }
    }
}

pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

#[derive(Clone, Debug)]
pub struct TensorSpec {
    pub name: String,
    /// Dimensions innermost first, as GGUF stores them.
    pub ne: Vec<u64>,
    pub ggml_type: u32,
    pub data: Vec<u8>,
    /// Overrides the data offset (relative to the data section) the builder computes.
    pub offset: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub kv: Vec<(String, Val)>,
    pub tensors: Vec<TensorSpec>,
    /// Alignment used to lay out data (write `general.alignment` yourself to change it).
    pub alignment: u64,
}

impl Default for Gguf {
    fn default() -> Self {
        Gguf {
            version: 3,
            kv: Vec::new(),
            tensors: Vec::new(),
            alignment: 32,
        }
    }
}

impl Gguf {
    pub fn arch(arch: &str) -> Self {
        let mut g = Gguf::default();
        g.kv("general.architecture", Val::str(arch));
        g
    }

    pub fn kv(&mut self, key: &str, v: Val) -> &mut Self {
        self.kv.push((key.to_string(), v));
        self
    }

    pub fn tensor(&mut self, name: &str, ne: &[u64], ggml_type: u32, data: Vec<u8>) -> &mut Self {
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            ne: ne.to_vec(),
            ggml_type,
            data,
            offset: None,
        });
        self
    }

    /// An F32 tensor from values in canonical (row-major, outermost first) order.
    pub fn f32_tensor(&mut self, name: &str, ne: &[u64], values: &[f32]) -> &mut Self {
        self.tensor(name, ne, ggml::F32, f32_bytes(values))
    }

    /// The data offsets (relative to the data section) the builder will write.
    pub fn offsets(&self) -> Vec<u64> {
        let mut pos = 0u64;
        self.tensors
            .iter()
            .map(|t| {
                let off = t.offset.unwrap_or(pos);
                pos = align(off.saturating_add(t.data.len() as u64), self.alignment);
                off
            })
            .collect()
    }

    /// Header bytes through the tensor infos (before padding).
    pub fn header(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            write_str(&mut out, k);
            out.extend(v.type_id().to_le_bytes());
            v.write(&mut out);
        }
        for (t, off) in self.tensors.iter().zip(self.offsets()) {
            write_str(&mut out, &t.name);
            out.extend((t.ne.len() as u32).to_le_bytes());
            for d in &t.ne {
                out.extend(d.to_le_bytes());
            }
            out.extend(t.ggml_type.to_le_bytes());
            out.extend(off.to_le_bytes());
        }
        out
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = self.header();
        let data_start = align(out.len() as u64, self.alignment);
        for (t, off) in self.tensors.iter().zip(self.offsets()) {
            // Absurd offsets (the point of some tests) get no data written.
            let Some(at) = data_start.checked_add(off).filter(|&a| a < 1 << 26) else {
                continue;
            };
            let at = at as usize;
            if out.len() < at {
                out.resize(at, 0);
            }
            let end = at + t.data.len();
            if out.len() < end {
                out.resize(end, 0);
            }
            out[at..end].copy_from_slice(&t.data);
        }
        if out.len() < data_start as usize {
            out.resize(data_start as usize, 0);
        }
        out
    }
}

pub fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a).saturating_mul(a)
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
        .collect()
}

pub fn bf16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes())
        .collect()
}

/// Q8_0 blocks with scale 1: exact for integer values in -128..=127.
pub fn q8_0_bytes(values: &[f32]) -> Vec<u8> {
    assert_eq!(values.len() % 32, 0);
    let mut out = Vec::new();
    for block in values.chunks(32) {
        out.extend(half::f16::from_f32(1.0).to_bits().to_le_bytes());
        out.extend(block.iter().map(|&v| v as i8 as u8));
    }
    out
}

/// convert_hf_to_gguf.py's `permute`: HF rows of each head [half 0 | half 1] become
/// interleaved [h0[0], h1[0], h0[1], h1[1], ...].
pub fn llama_permute(rows: &[Vec<f32>], n_head: usize) -> Vec<Vec<f32>> {
    let per_head = rows.len() / n_head;
    let half = per_head / 2;
    let mut out = Vec::with_capacity(rows.len());
    for h in 0..n_head {
        for j in 0..half {
            for which in 0..2 {
                out.push(rows[h * per_head + which * half + j].clone());
            }
        }
    }
    out
}

/// A temporary file holding `bytes`.
pub struct TempGguf {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn write_temp(bytes: &[u8]) -> TempGguf {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.gguf");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(bytes).expect("write");
    TempGguf { dir, path }
}

pub fn open_bytes(bytes: &[u8]) -> dokja_formats::Result<Model> {
    open_bytes_with(bytes, ReadMode::Mmap)
}

pub fn open_bytes_with(bytes: &[u8], read_mode: ReadMode) -> dokja_formats::Result<Model> {
    let t = write_temp(bytes);
    dokja_formats::gguf::open(&t.path, OpenOptions { read_mode })
}

/// The error message of opening `bytes`, which must fail.
pub fn open_err(bytes: &[u8]) -> String {
    match open_bytes(bytes) {
        Ok(m) => panic!(
            "expected an error, got a model with {} tensors",
            m.tensors.len()
        ),
        Err(e) => e.to_string(),
    }
}
