//! Element types of stored tensors and their decoding to f32.
//!
//! Plain types decode element by element; block-quantized GGUF types decode whole blocks
//! (see [`crate::quant`]). Every size computation is checked: a hostile header must not be
//! able to make dokja overflow or allocate by a number it chose.

use serde::{Deserialize, Serialize};

/// Block-quantized types of GGML/GGUF. `Q*_K` are the k-quants (super-blocks of 256).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuantType {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    /// Signed 8-bit integers with per-tensor or per-channel scales held beside the tensor
    /// (ONNX `DequantizeLinear`); decoding yields the raw integers, the scales apply after.
    QInt8,
    /// Unsigned 8-bit integers with scales and zero points, as [`QuantType::QInt8`].
    QUInt8,
}

impl QuantType {
    /// (elements per block, bytes per block), as in ggml's type traits.
    pub const fn block(self) -> (u64, u64) {
        match self {
            QuantType::Q4_0 => (32, 18),
            QuantType::Q4_1 => (32, 20),
            QuantType::Q5_0 => (32, 22),
            QuantType::Q5_1 => (32, 24),
            QuantType::Q8_0 => (32, 34),
            QuantType::Q8_1 => (32, 36),
            QuantType::Q2K => (256, 84),
            QuantType::Q3K => (256, 110),
            QuantType::Q4K => (256, 144),
            QuantType::Q5K => (256, 176),
            QuantType::Q6K => (256, 210),
            QuantType::Q8K => (256, 292),
            QuantType::QInt8 | QuantType::QUInt8 => (1, 1),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q8_1 => "Q8_1",
            QuantType::Q2K => "Q2_K",
            QuantType::Q3K => "Q3_K",
            QuantType::Q4K => "Q4_K",
            QuantType::Q5K => "Q5_K",
            QuantType::Q6K => "Q6_K",
            QuantType::Q8K => "Q8_K",
            QuantType::QInt8 => "QINT8",
            QuantType::QUInt8 => "QUINT8",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    F8E4M3,
    F8E5M2,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    Quant(QuantType),
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
            Dtype::Quant(q) => q.name(),
        }
    }

    /// (elements per block, bytes per block); plain types are blocks of one element.
    pub const fn block(self) -> (u64, u64) {
        match self {
            Dtype::F64 | Dtype::I64 => (1, 8),
            Dtype::F32 | Dtype::I32 => (1, 4),
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => (1, 2),
            Dtype::F8E4M3 | Dtype::F8E5M2 | Dtype::I8 | Dtype::U8 | Dtype::Bool => (1, 1),
            Dtype::Quant(q) => q.block(),
        }
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, Dtype::Quant(_))
    }

    pub fn is_float(self) -> bool {
        matches!(
            self,
            Dtype::F64
                | Dtype::F32
                | Dtype::F16
                | Dtype::BF16
                | Dtype::F8E4M3
                | Dtype::F8E5M2
                | Dtype::Quant(_)
        )
    }

    /// Byte length of `n_elems` elements, or None if `n_elems` is not a whole number of
    /// blocks or the length overflows.
    pub fn byte_len(self, n_elems: u64) -> Option<u64> {
        let (per_block, block_bytes) = self.block();
        if !n_elems.is_multiple_of(per_block) {
            return None;
        }
        (n_elems / per_block).checked_mul(block_bytes)
    }

    /// Relative precision of one stored value (unit roundoff): two copies of a weight that
    /// differ by less than a few of these are the same weight stored differently.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Dtype::F64 => f64::EPSILON / 2.0,
            Dtype::F32 => f32::EPSILON as f64 / 2.0,
            Dtype::F16 => 2f64.powi(-11),
            Dtype::BF16 => 2f64.powi(-8),
            Dtype::F8E4M3 => 2f64.powi(-4),
            Dtype::F8E5M2 => 2f64.powi(-3),
            // Block quantization error relative to the block's scale.
            Dtype::Quant(QuantType::Q8_0 | QuantType::Q8_1 | QuantType::Q8K) => 2f64.powi(-8),
            // One scale per channel of a whole row: the row's extreme value sets the step.
            Dtype::Quant(QuantType::QInt8 | QuantType::QUInt8) => 2f64.powi(-7),
            Dtype::Quant(QuantType::Q6K) => 2f64.powi(-6),
            Dtype::Quant(QuantType::Q5_0 | QuantType::Q5_1 | QuantType::Q5K) => 2f64.powi(-5),
            Dtype::Quant(QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q4K) => 2f64.powi(-4),
            Dtype::Quant(QuantType::Q3K) => 2f64.powi(-3),
            Dtype::Quant(QuantType::Q2K) => 2f64.powi(-2),
            Dtype::I64 | Dtype::I32 | Dtype::I16 | Dtype::I8 | Dtype::U8 | Dtype::Bool => 0.0,
        }
    }

    /// The safetensors spelling, if this dtype exists there.
    pub fn from_safetensors(s: &str) -> Option<Dtype> {
        Some(match s {
            "F64" => Dtype::F64,
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            "I16" => Dtype::I16,
            "I8" => Dtype::I8,
            "U8" => Dtype::U8,
            "BOOL" => Dtype::Bool,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decodes `bytes` (little-endian, a whole number of blocks of `dtype`) into `out`, which
/// must hold exactly the matching number of elements. Returns false on a length mismatch.
pub fn decode_into(dtype: Dtype, bytes: &[u8], out: &mut [f32]) -> bool {
    let (per_block, block_bytes) = dtype.block();
    if !(bytes.len() as u64).is_multiple_of(block_bytes)
        || (bytes.len() as u64 / block_bytes) * per_block != out.len() as u64
    {
        return false;
    }
    match dtype {
        Dtype::F32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        Dtype::F64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes(c.try_into().unwrap()) as f32;
            }
        }
        Dtype::F16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
            }
        }
        Dtype::BF16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16);
            }
        }
        Dtype::F8E4M3 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = f8_e4m3_to_f32(b);
            }
        }
        Dtype::F8E5M2 => {
            // E5M2 is the top byte of an f16.
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = half::f16::from_bits((b as u16) << 8).to_f32();
            }
        }
        Dtype::I64 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = i64::from_le_bytes(c.try_into().unwrap()) as f32;
            }
        }
        Dtype::I32 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32;
            }
        }
        Dtype::I16 => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = i16::from_le_bytes([c[0], c[1]]) as f32;
            }
        }
        Dtype::I8 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = b as i8 as f32;
            }
        }
        Dtype::U8 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = b as f32;
            }
        }
        Dtype::Bool => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = if b != 0 { 1.0 } else { 0.0 };
            }
        }
        Dtype::Quant(q) => crate::quant::dequantize(q, bytes, out),
    }
    true
}

/// OCP FP8 E4M3FN: bias 7, no infinities, 0x7F/0xFF are NaN.
fn f8_e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((b >> 3) & 0x0F) as i32;
    let man = (b & 0x07) as f32;
    if exp == 0x0F && (b & 0x07) == 0x07 {
        return f32::NAN;
    }
    if exp == 0 {
        sign * man / 8.0 * 2f32.powi(-6)
    } else {
        sign * (1.0 + man / 8.0) * 2f32.powi(exp - 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3_known_values() {
        assert_eq!(f8_e4m3_to_f32(0x38), 1.0);
        assert_eq!(f8_e4m3_to_f32(0xB8), -1.0);
        assert_eq!(f8_e4m3_to_f32(0x7E), 448.0);
        assert_eq!(f8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert!(f8_e4m3_to_f32(0x7F).is_nan());
    }

    #[test]
    fn bf16_and_f16_decode() {
        let mut out = [0f32; 2];
        let b = [0x80u8, 0x3F, 0x00, 0xC0]; // bf16 1.0, -2.0
        assert!(decode_into(Dtype::BF16, &b, &mut out));
        assert_eq!(out, [1.0, -2.0]);
        let h = [0x00u8, 0x3C, 0x00, 0xC0]; // f16 1.0, -2.0
        assert!(decode_into(Dtype::F16, &h, &mut out));
        assert_eq!(out, [1.0, -2.0]);
    }

    #[test]
    fn length_mismatch_is_refused() {
        let mut out = [0f32; 3];
        assert!(!decode_into(Dtype::F32, &[0u8; 8], &mut out));
        assert_eq!(Dtype::Quant(QuantType::Q4_0).byte_len(33), None);
        assert_eq!(Dtype::Quant(QuantType::Q4_0).byte_len(64), Some(36));
        assert_eq!(Dtype::F64.byte_len(u64::MAX), None);
    }
}
