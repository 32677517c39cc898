//! Byte-level builders for malformed-file tests: every count, length, offset and type id is
//! whatever the test says, so a test can write any hostile file. The well-formed writers
//! use these same builders, so "valid" and "hostile" differ only in the numbers given.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::gguf::GgufValue;

/// A GGUF string: u64 LE length, then the bytes (not NUL-terminated).
pub fn gguf_string(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

/// One metadata key/value pair.
#[derive(Clone, Debug, PartialEq)]
pub enum RawKv {
    /// Key, u32 type tag and value, well-formed.
    Typed(String, GgufValue),
    /// Arbitrary bytes in place of an entry (bad type tags, lying string lengths...).
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawTensorInfo {
    pub name: Vec<u8>,
    /// ggml `ne`: innermost dimension first.
    pub dims: Vec<u64>,
    /// The n_dims field; None writes `dims.len()`.
    pub n_dims: Option<u32>,
    /// `enum ggml_type` (0 F32, 1 F16, 8 Q8_0, 30 BF16, ...), any value.
    pub type_id: u32,
    /// Offset relative to the start of the data section.
    pub offset: u64,
}

/// A GGUF file, header fields set freely.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufBytes {
    pub magic: [u8; 4],
    pub version: u32,
    /// None writes the number of `tensors`.
    pub tensor_count: Option<u64>,
    /// None writes the number of `kvs`.
    pub kv_count: Option<u64>,
    pub kvs: Vec<RawKv>,
    pub tensors: Vec<RawTensorInfo>,
    /// The data section starts at the next multiple of this (0 or 1: no padding).
    pub alignment: u64,
    pub data: Vec<u8>,
    /// Cut the finished file to this many bytes.
    pub truncate_to: Option<usize>,
}

impl Default for GgufBytes {
    fn default() -> Self {
        GgufBytes {
            magic: *b"GGUF",
            version: 3,
            tensor_count: None,
            kv_count: None,
            kvs: Vec::new(),
            tensors: Vec::new(),
            alignment: 32,
            data: Vec::new(),
            truncate_to: None,
        }
    }
}

impl GgufBytes {
    pub fn new() -> GgufBytes {
        GgufBytes::default()
    }

    pub fn kv(mut self, key: &str, value: GgufValue) -> GgufBytes {
        self.kvs.push(RawKv::Typed(key.into(), value));
        self
    }

    pub fn raw_kv(mut self, bytes: Vec<u8>) -> GgufBytes {
        self.kvs.push(RawKv::Bytes(bytes));
        self
    }

    pub fn tensor(mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> GgufBytes {
        self.tensors.push(RawTensorInfo {
            name: name.as_bytes().to_vec(),
            dims: dims.to_vec(),
            n_dims: None,
            type_id,
            offset,
        });
        self
    }

    pub fn data(mut self, data: Vec<u8>) -> GgufBytes {
        self.data = data;
        self
    }

    /// Everything before the padding that precedes the data section.
    pub fn header_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(
            &self
                .tensor_count
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
        out.extend_from_slice(&self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            match kv {
                RawKv::Typed(k, v) => {
                    gguf_string(k.as_bytes(), &mut out);
                    out.extend_from_slice(&v.type_id().to_le_bytes());
                    v.encode(&mut out);
                }
                RawKv::Bytes(b) => out.extend_from_slice(b),
            }
        }
        for t in &self.tensors {
            gguf_string(&t.name, &mut out);
            out.extend_from_slice(&t.n_dims.unwrap_or(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        out
    }

    /// Absolute file offset where the data section begins.
    pub fn data_start(&self) -> usize {
        let n = self.header_bytes().len();
        if self.alignment > 1 {
            n.next_multiple_of(self.alignment as usize)
        } else {
            n
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = self.header_bytes();
        if self.alignment > 1 {
            out.resize(out.len().next_multiple_of(self.alignment as usize), 0);
        }
        out.extend_from_slice(&self.data);
        if let Some(n) = self.truncate_to {
            out.truncate(n);
        }
        out
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        fs::write(path, self.build())
    }
}

/// A safetensors file from its parts: any header text, any declared length, any data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetensorsBytes {
    pub header: Vec<u8>,
    /// The u64 at the start of the file; None writes the header's length.
    pub declared_len: Option<u64>,
    pub data: Vec<u8>,
    pub truncate_to: Option<usize>,
}

impl SafetensorsBytes {
    pub fn new(header: impl Into<String>) -> SafetensorsBytes {
        SafetensorsBytes {
            header: header.into().into_bytes(),
            declared_len: None,
            data: Vec::new(),
            truncate_to: None,
        }
    }

    /// A header listing `(name, dtype, shape, [start, end])` entries in the given order.
    pub fn from_entries(entries: &[(&str, &str, &[u64], [u64; 2])]) -> SafetensorsBytes {
        let mut m = Map::new();
        for (name, dtype, shape, off) in entries {
            m.insert(
                name.to_string(),
                json!({"dtype": dtype, "shape": shape, "data_offsets": off}),
            );
        }
        SafetensorsBytes::new(Value::Object(m).to_string())
    }

    /// Splits a well-formed file (e.g. from [`crate::safetensors_bytes`]) into its parts.
    pub fn from_file_bytes(bytes: &[u8]) -> SafetensorsBytes {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        SafetensorsBytes {
            header: bytes[8..8 + n].to_vec(),
            declared_len: None,
            data: bytes[8 + n..].to_vec(),
            truncate_to: None,
        }
    }

    pub fn declared_len(mut self, n: u64) -> SafetensorsBytes {
        self.declared_len = Some(n);
        self
    }

    pub fn data(mut self, data: Vec<u8>) -> SafetensorsBytes {
        self.data = data;
        self
    }

    /// Pads the header with spaces to a multiple of 8, as the reference writer does.
    pub fn padded(mut self) -> SafetensorsBytes {
        self.header
            .resize(self.header.len().next_multiple_of(8), b' ');
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.header.len() + self.data.len());
        out.extend_from_slice(
            &self
                .declared_len
                .unwrap_or(self.header.len() as u64)
                .to_le_bytes(),
        );
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.data);
        if let Some(n) = self.truncate_to {
            out.truncate(n);
        }
        out
    }

    pub fn write(&self, path: &Path) -> io::Result<()> {
        fs::write(path, self.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_header_fields_are_free() {
        let g = GgufBytes {
            version: 99,
            tensor_count: Some(u64::MAX),
            ..GgufBytes::new()
        }
        .kv("general.architecture", GgufValue::Str("llama".into()))
        .raw_kv(vec![0xFF; 5])
        .tensor("x", &[4, 2], 0, 0)
        .data(vec![0; 32]);
        let b = g.build();
        assert_eq!(&b[0..4], b"GGUF");
        assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()), 99);
        assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), u64::MAX);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 2);
        assert_eq!(g.data_start() % 32, 0);
        assert_eq!(b.len(), g.data_start() + 32);
        let cut = GgufBytes {
            truncate_to: Some(10),
            ..g
        }
        .build();
        assert_eq!(cut.len(), 10);
    }

    #[test]
    fn safetensors_parts() {
        let s = SafetensorsBytes::from_entries(&[("a", "F32", &[2], [0, 8])])
            .padded()
            .data(vec![0; 8]);
        let b = s.build();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let v: Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
        assert_eq!(v["a"]["data_offsets"][1], 8);
        let lie = s.clone().declared_len(1 << 40).build();
        assert_eq!(u64::from_le_bytes(lie[..8].try_into().unwrap()), 1 << 40);
        assert_eq!(SafetensorsBytes::from_file_bytes(&b), s);
    }
}
