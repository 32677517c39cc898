//! Minimal spec-following parsers used to check the writers' output.
#![allow(dead_code)]

use serde_json::{Value, json};

/// A fresh directory, removed when the returned guard drops.
pub fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("dokja-testkit-{tag}-"))
        .tempdir()
        .unwrap()
}

pub struct Cursor<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    pub fn string(&mut self) -> String {
        let n = self.u64() as usize;
        String::from_utf8(self.take(n).to_vec()).unwrap()
    }
    /// A value of GGUF type `t`, as (type, JSON).
    pub fn value(&mut self, t: u32) -> Value {
        match t {
            0 => json!(self.u8()),
            1 => json!(self.u8() as i8),
            2 => json!(u16::from_le_bytes(self.take(2).try_into().unwrap())),
            3 => json!(i16::from_le_bytes(self.take(2).try_into().unwrap())),
            4 => json!(self.u32()),
            5 => json!(self.u32() as i32),
            6 => json!(f32::from_le_bytes(self.take(4).try_into().unwrap())),
            7 => json!(self.u8() != 0),
            8 => json!(self.string()),
            9 => {
                let et = self.u32();
                let n = self.u64();
                json!({"elem_type": et, "items": (0..n).map(|_| self.value(et)).collect::<Vec<_>>()})
            }
            10 => json!(self.u64()),
            11 => json!(self.u64() as i64),
            12 => json!(f64::from_le_bytes(self.take(8).try_into().unwrap())),
            _ => panic!("bad gguf value type {t}"),
        }
    }
}

pub struct GgufTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub ty: u32,
    pub offset: u64,
}

pub struct Gguf {
    pub version: u32,
    /// key -> (type id, value)
    pub kv: Vec<(String, u32, Value)>,
    pub tensors: Vec<GgufTensor>,
    pub data_start: usize,
    pub alignment: usize,
}

impl Gguf {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v)
    }
    pub fn type_of(&self, key: &str) -> Option<u32> {
        self.kv
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, t, _)| *t)
    }
    pub fn tensor(&self, name: &str) -> &GgufTensor {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no gguf tensor {name}"))
    }
}

pub fn parse_gguf(b: &[u8]) -> Gguf {
    let mut c = Cursor { b, pos: 0 };
    assert_eq!(c.take(4), b"GGUF");
    let version = c.u32();
    let nt = c.u64();
    let nkv = c.u64();
    let mut kv = Vec::new();
    for _ in 0..nkv {
        let k = c.string();
        let t = c.u32();
        let v = c.value(t);
        kv.push((k, t, v));
    }
    let mut tensors = Vec::new();
    for _ in 0..nt {
        let name = c.string();
        let nd = c.u32();
        let ne = (0..nd).map(|_| c.u64()).collect();
        let ty = c.u32();
        let offset = c.u64();
        tensors.push(GgufTensor {
            name,
            ne,
            ty,
            offset,
        });
    }
    let alignment = kv
        .iter()
        .find(|(k, _, _)| k == "general.alignment")
        .map_or(32, |(_, _, v)| v.as_u64().unwrap() as usize);
    let data_start = c.pos.next_multiple_of(alignment);
    assert!(
        b[c.pos..data_start].iter().all(|&x| x == 0),
        "padding must be zeros"
    );
    Gguf {
        version,
        kv,
        tensors,
        data_start,
        alignment,
    }
}

/// (element count, byte count) per ggml block.
pub fn ggml_block(ty: u32) -> (u64, u64) {
    match ty {
        0 => (1, 4),
        1 | 30 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        _ => panic!("type {ty}"),
    }
}

pub fn byte_len(t: &GgufTensor) -> usize {
    let n: u64 = t.ne.iter().product();
    let (e, b) = ggml_block(t.ty);
    assert_eq!(n % e, 0);
    (n / e * b) as usize
}

/// Decodes a float-typed tensor's data (F32/F16/BF16) in stored order.
pub fn decode_float(ty: u32, bytes: &[u8]) -> Vec<f32> {
    match ty {
        0 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        1 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
            .collect(),
        30 => bytes
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        _ => panic!("not a float type {ty}"),
    }
}

pub struct StFile {
    pub header_len: usize,
    pub header: serde_json::Map<String, Value>,
    pub data: Vec<u8>,
    pub raw_header: Vec<u8>,
}

pub fn parse_safetensors(b: &[u8]) -> StFile {
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let raw_header = b[8..8 + n].to_vec();
    let header: Value = serde_json::from_slice(&raw_header).expect("header is JSON");
    StFile {
        header_len: n,
        header: header.as_object().unwrap().clone(),
        data: b[8 + n..].to_vec(),
        raw_header,
    }
}
