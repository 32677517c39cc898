//! GGUF metadata values: parsing (every count bounded before allocating) and conversion
//! to JSON (large arrays summarized).

use serde_json::{Value as Json, json};

use super::reader::Reader;
use crate::error::Result;

/// Longest metadata array accepted (the largest real ones, vocabularies and merges, are
/// well under a million entries).
pub const MAX_ARRAY_LEN: u64 = 16 << 20;
/// Arrays of arrays deeper than this are refused (real files nest at most once).
pub const MAX_NESTING: u32 = 8;
/// Arrays longer than this are summarized in [`crate::Model::metadata`].
pub const SUMMARY_THRESHOLD: usize = 64;
const SUMMARY_FIRST: usize = 8;

/// A metadata value as stored. Arrays keep their element type so that large vocabularies
/// cost about what they cost on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
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
    Array(Array),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    Arr(Vec<Array>),
}

/// GGUF's value type ids.
mod ty {
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

pub fn type_name(t: u32) -> &'static str {
    match t {
        ty::U8 => "uint8",
        ty::I8 => "int8",
        ty::U16 => "uint16",
        ty::I16 => "int16",
        ty::U32 => "uint32",
        ty::I32 => "int32",
        ty::F32 => "float32",
        ty::BOOL => "bool",
        ty::STR => "string",
        ty::ARRAY => "array",
        ty::U64 => "uint64",
        ty::I64 => "int64",
        ty::F64 => "float64",
        _ => "unknown",
    }
}

/// The fewest bytes one element of type `t` occupies in a file (strings: their length;
/// arrays: their type and length). Used to refuse counts the remaining bytes cannot hold.
fn min_size(t: u32) -> Option<u64> {
    Some(match t {
        ty::U8 | ty::I8 | ty::BOOL => 1,
        ty::U16 | ty::I16 => 2,
        ty::U32 | ty::I32 | ty::F32 => 4,
        ty::U64 | ty::I64 | ty::F64 | ty::STR => 8,
        ty::ARRAY => 12,
        _ => return None,
    })
}

/// Reads one value of type `t` (already read) for metadata key `key`.
pub fn read_value(r: &mut Reader<'_>, t: u32, key: &str) -> Result<Value> {
    Ok(match t {
        ty::U8 => Value::U8(r.array::<1>(key)?[0]),
        ty::I8 => Value::I8(r.array::<1>(key)?[0] as i8),
        ty::U16 => Value::U16(u16::from_le_bytes(r.array(key)?)),
        ty::I16 => Value::I16(i16::from_le_bytes(r.array(key)?)),
        ty::U32 => Value::U32(u32::from_le_bytes(r.array(key)?)),
        ty::I32 => Value::I32(i32::from_le_bytes(r.array(key)?)),
        ty::F32 => Value::F32(f32::from_le_bytes(r.array(key)?)),
        ty::BOOL => Value::Bool(r.array::<1>(key)?[0] != 0),
        ty::STR => Value::Str(r.string(key, u64::MAX)?),
        ty::U64 => Value::U64(u64::from_le_bytes(r.array(key)?)),
        ty::I64 => Value::I64(i64::from_le_bytes(r.array(key)?)),
        ty::F64 => Value::F64(f64::from_le_bytes(r.array(key)?)),
        ty::ARRAY => Value::Array(read_array(r, key, 1)?),
        other => return Err(r.fail(format!("metadata key {key:?}: unknown value type {other}"))),
    })
}

/// Decodes `len` fixed-size little-endian elements read in one piece.
fn fixed<T, const N: usize>(
    r: &mut Reader<'_>,
    len: u64,
    key: &str,
    f: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let bytes = r.take(len * N as u64, key)?;
    Ok(bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect())
}

fn read_array(r: &mut Reader<'_>, key: &str, depth: u32) -> Result<Array> {
    if depth > MAX_NESTING {
        return Err(r.fail(format!(
            "metadata key {key:?}: arrays nested deeper than {MAX_NESTING}"
        )));
    }
    let t = r.u32(key)?;
    let len = r.u64(key)?;
    let Some(elem) = min_size(t) else {
        return Err(r.fail(format!(
            "metadata key {key:?}: array of unknown value type {t}"
        )));
    };
    if len > MAX_ARRAY_LEN {
        return Err(r.fail(format!(
            "metadata key {key:?}: array of {len} elements (at most {MAX_ARRAY_LEN})"
        )));
    }
    // len <= 2^24 and elem <= 12, so this cannot overflow.
    if len * elem > r.remaining() {
        return Err(r.fail(format!(
            "metadata key {key:?}: array of {len} {} needs at least {} bytes but only {} remain (truncated?)",
            type_name(t),
            len * elem,
            r.remaining()
        )));
    }
    Ok(match t {
        ty::U8 => Array::U8(fixed(r, len, key, |[b]: [u8; 1]| b)?),
        ty::I8 => Array::I8(fixed(r, len, key, |[b]: [u8; 1]| b as i8)?),
        ty::BOOL => Array::Bool(fixed(r, len, key, |[b]: [u8; 1]| b != 0)?),
        ty::U16 => Array::U16(fixed(r, len, key, u16::from_le_bytes)?),
        ty::I16 => Array::I16(fixed(r, len, key, i16::from_le_bytes)?),
        ty::U32 => Array::U32(fixed(r, len, key, u32::from_le_bytes)?),
        ty::I32 => Array::I32(fixed(r, len, key, i32::from_le_bytes)?),
        ty::F32 => Array::F32(fixed(r, len, key, f32::from_le_bytes)?),
        ty::U64 => Array::U64(fixed(r, len, key, u64::from_le_bytes)?),
        ty::I64 => Array::I64(fixed(r, len, key, i64::from_le_bytes)?),
        ty::F64 => Array::F64(fixed(r, len, key, f64::from_le_bytes)?),
        ty::STR => {
            // Justified: each string occupies at least 8 bytes of the remaining header.
            let mut v = Vec::with_capacity(len as usize);
            for _ in 0..len {
                v.push(r.string(key, u64::MAX)?);
            }
            Array::Str(v)
        }
        _ => {
            let mut v = Vec::with_capacity(len as usize);
            for _ in 0..len {
                v.push(read_array(r, key, depth + 1)?);
            }
            Array::Arr(v)
        }
    })
}

impl Value {
    /// The value as an unsigned integer, if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match self {
            Value::U8(v) => json!(v),
            Value::I8(v) => json!(v),
            Value::U16(v) => json!(v),
            Value::I16(v) => json!(v),
            Value::U32(v) => json!(v),
            Value::I32(v) => json!(v),
            Value::U64(v) => json!(v),
            Value::I64(v) => json!(v),
            Value::F32(v) => f32_json(*v),
            Value::F64(v) => f64_json(*v),
            Value::Bool(v) => json!(v),
            Value::Str(s) => json!(s),
            Value::Array(a) => a.to_json(),
        }
    }
}

/// f32 through its shortest decimal form, so 1e-6 stays 1e-6 rather than 9.99999997e-7.
fn f32_json(v: f32) -> Json {
    match v.to_string().parse::<f64>() {
        Ok(x) if v.is_finite() => f64_json(x),
        _ => json!(v.to_string()),
    }
}

/// JSON has no NaN or infinity: those become strings.
fn f64_json(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or_else(|| json!(v.to_string()), Json::Number)
}

impl Array {
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::Str(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Arr(v) => v.len(),
        }
    }

    pub fn elem_type_name(&self) -> &'static str {
        type_name(match self {
            Array::U8(_) => ty::U8,
            Array::I8(_) => ty::I8,
            Array::U16(_) => ty::U16,
            Array::I16(_) => ty::I16,
            Array::U32(_) => ty::U32,
            Array::I32(_) => ty::I32,
            Array::F32(_) => ty::F32,
            Array::Bool(_) => ty::BOOL,
            Array::Str(_) => ty::STR,
            Array::U64(_) => ty::U64,
            Array::I64(_) => ty::I64,
            Array::F64(_) => ty::F64,
            Array::Arr(_) => ty::ARRAY,
        })
    }

    /// Element `i` as an unsigned integer, for per-layer hyperparameter arrays.
    pub fn u64_at(&self, i: usize) -> Option<u64> {
        match self {
            Array::U8(v) => v.get(i).map(|&x| x.into()),
            Array::U16(v) => v.get(i).map(|&x| x.into()),
            Array::U32(v) => v.get(i).map(|&x| x.into()),
            Array::U64(v) => v.get(i).copied(),
            Array::I8(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            Array::I16(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            Array::I32(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            Array::I64(v) => v.get(i).and_then(|&x| u64::try_from(x).ok()),
            _ => None,
        }
    }

    /// Element `i` as JSON (nested arrays are converted in place, not copied).
    fn elem_json(&self, i: usize) -> Option<Json> {
        Some(match self {
            Array::U8(v) => json!(v.get(i)?),
            Array::I8(v) => json!(v.get(i)?),
            Array::U16(v) => json!(v.get(i)?),
            Array::I16(v) => json!(v.get(i)?),
            Array::U32(v) => json!(v.get(i)?),
            Array::I32(v) => json!(v.get(i)?),
            Array::F32(v) => f32_json(*v.get(i)?),
            Array::Bool(v) => json!(v.get(i)?),
            Array::Str(v) => json!(v.get(i)?),
            Array::U64(v) => json!(v.get(i)?),
            Array::I64(v) => json!(v.get(i)?),
            Array::F64(v) => f64_json(*v.get(i)?),
            Array::Arr(v) => v.get(i)?.to_json(),
        })
    }

    /// Short arrays in full; long ones as `{"array_of", "len", "first"}`.
    pub fn to_json(&self) -> Json {
        let n = self.len();
        let shown = if n > SUMMARY_THRESHOLD {
            SUMMARY_FIRST
        } else {
            n
        };
        let items: Vec<Json> = (0..shown).filter_map(|i| self.elem_json(i)).collect();
        if n > SUMMARY_THRESHOLD {
            json!({"array_of": self.elem_type_name(), "len": n, "first": items})
        } else {
            Json::Array(items)
        }
    }
}
