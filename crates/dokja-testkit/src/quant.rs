//! Encoders for ggml's block-quantized types, byte-for-byte in the layouts of ggml-common.h.
//!
//! The legacy types (Q4_0 ... Q8_0) follow ggml's reference quantizers exactly. The k-quant
//! encoders use a simple scale choice (ceil-rounded sub-block scales and mins so that no
//! value is clipped, or a small search over symmetric scales) rather than ggml's iterative
//! search: values differ slightly from llama-quantize's, the layout does not.
//!
//! [`dequantize_reference`] is a line-by-line transcription of ggml's `dequantize_row_*`,
//! kept separate from the encoders (which compute positions by formula) so the two check
//! each other. It is this crate's oracle, independent of dokja-formats' decoder.

use half::f16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
}

const QK_K: usize = 256;

impl QuantType {
    pub const ALL: [QuantType; 10] = [
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q2K,
        QuantType::Q3K,
        QuantType::Q4K,
        QuantType::Q5K,
        QuantType::Q6K,
    ];

    /// (elements per block, bytes per block).
    pub const fn block(self) -> (usize, usize) {
        match self {
            QuantType::Q4_0 => (32, 18),
            QuantType::Q4_1 => (32, 20),
            QuantType::Q5_0 => (32, 22),
            QuantType::Q5_1 => (32, 24),
            QuantType::Q8_0 => (32, 34),
            QuantType::Q2K => (256, 84),
            QuantType::Q3K => (256, 110),
            QuantType::Q4K => (256, 144),
            QuantType::Q5K => (256, 176),
            QuantType::Q6K => (256, 210),
        }
    }

    /// `enum ggml_type` value.
    pub const fn ggml_type(self) -> u32 {
        match self {
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q5_1 => 7,
            QuantType::Q8_0 => 8,
            QuantType::Q2K => 10,
            QuantType::Q3K => 11,
            QuantType::Q4K => 12,
            QuantType::Q5K => 13,
            QuantType::Q6K => 14,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q2K => "Q2_K",
            QuantType::Q3K => "Q3_K",
            QuantType::Q4K => "Q4_K",
            QuantType::Q5K => "Q5_K",
            QuantType::Q6K => "Q6_K",
        }
    }

    /// Whether rows of `row_len` elements can be stored in this type.
    pub fn fits_row(self, row_len: usize) -> bool {
        row_len.is_multiple_of(self.block().0)
    }
}

fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

fn f16_round(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// ggml's nearest_int rounds half to even.
fn nearest(x: f32) -> i32 {
    x.round_ties_even() as i32
}

/// Quantizes `values` (a whole number of blocks) into ggml blocks.
pub fn quantize(q: QuantType, values: &[f32]) -> Vec<u8> {
    let (n, bytes) = q.block();
    assert!(
        values.len().is_multiple_of(n),
        "{}: {} values are not a whole number of {n}-blocks",
        q.name(),
        values.len()
    );
    let mut out = Vec::with_capacity(values.len() / n * bytes);
    for x in values.chunks_exact(n) {
        let start = out.len();
        match q {
            QuantType::Q4_0 => q4_0(x, &mut out),
            QuantType::Q4_1 => q4_1(x, &mut out),
            QuantType::Q5_0 => q5_0(x, &mut out),
            QuantType::Q5_1 => q5_1(x, &mut out),
            QuantType::Q8_0 => q8_0(x, &mut out),
            QuantType::Q2K => q2_k(x, &mut out),
            QuantType::Q3K => q3_k(x, &mut out),
            QuantType::Q4K => q45_k(x, false, &mut out),
            QuantType::Q5K => q45_k(x, true, &mut out),
            QuantType::Q6K => q6_k(x, &mut out),
        }
        debug_assert_eq!(out.len() - start, bytes);
    }
    out
}

/// The element with the largest magnitude, with its sign (ggml's `max`).
fn signed_absmax(x: &[f32]) -> f32 {
    x.iter()
        .fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m })
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        })
}

fn inv(d: f32) -> f32 {
    if d != 0.0 { 1.0 / d } else { 0.0 }
}

// block_q8_0 { ggml_half d; int8_t qs[32]; }
fn q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = inv(d);
    out.extend_from_slice(&f16_bytes(d));
    out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
}

// block_q4_0 { ggml_half d; uint8_t qs[16]; } low nibbles: 0..15, high: 16..31.
fn q4_0(x: &[f32], out: &mut Vec<u8>) {
    let d = signed_absmax(x) / -8.0;
    let id = inv(d);
    out.extend_from_slice(&f16_bytes(d));
    for j in 0..16 {
        let a = ((x[j] * id + 8.5) as i8).min(15) as u8;
        let b = ((x[j + 16] * id + 8.5) as i8).min(15) as u8;
        out.push(a | (b << 4));
    }
}

// block_q4_1 { ggml_half d; ggml_half m; uint8_t qs[16]; }
fn q4_1(x: &[f32], out: &mut Vec<u8>) {
    let (min, max) = min_max(x);
    let d = (max - min) / 15.0;
    let id = inv(d);
    out.extend_from_slice(&f16_bytes(d));
    out.extend_from_slice(&f16_bytes(min));
    for j in 0..16 {
        let a = (((x[j] - min) * id + 0.5) as u8).min(15);
        let b = (((x[j + 16] - min) * id + 0.5) as u8).min(15);
        out.push(a | (b << 4));
    }
}

/// Low nibbles and the fifth bits (`qh` bit j for element j) of 32 5-bit values.
fn pack5(q: &[u8; 32], out: &mut Vec<u8>) {
    let mut qh = 0u32;
    for (j, &v) in q.iter().enumerate() {
        qh |= ((v as u32 >> 4) & 1) << j;
    }
    out.extend_from_slice(&qh.to_le_bytes());
    for j in 0..16 {
        out.push((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
    }
}

// block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }
fn q5_0(x: &[f32], out: &mut Vec<u8>) {
    let d = signed_absmax(x) / -16.0;
    let id = inv(d);
    out.extend_from_slice(&f16_bytes(d));
    let mut q = [0u8; 32];
    for (j, v) in x.iter().enumerate() {
        q[j] = ((v * id + 16.5) as i8).min(31) as u8;
    }
    pack5(&q, out);
}

// block_q5_1 { ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16]; }
fn q5_1(x: &[f32], out: &mut Vec<u8>) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = inv(d);
    out.extend_from_slice(&f16_bytes(d));
    out.extend_from_slice(&f16_bytes(min));
    let mut q = [0u8; 32];
    for (j, v) in x.iter().enumerate() {
        q[j] = (((v - min) * id + 0.5) as u8).min(31);
    }
    pack5(&q, out);
}

/// Asymmetric sub-block scales for Q2_K/Q4_K/Q5_K: per sub-block a step `d * ls` and an
/// offset `dmin * lm` (value = step * q - offset), both ceil-rounded so the sub-block's
/// range is covered. Returns (d, dmin, ls, lm, q).
fn asym_k(
    x: &[f32],
    sub: usize,
    levels: u32,
    scale_max: u32,
) -> (f32, f32, Vec<u8>, Vec<u8>, Vec<u8>) {
    let nsub = x.len() / sub;
    let mut ranges = Vec::with_capacity(nsub);
    let mut mins = Vec::with_capacity(nsub);
    for s in x.chunks_exact(sub) {
        let (mn, mx) = min_max(s);
        let mn = mn.min(0.0);
        mins.push(-mn);
        ranges.push(mx - mn);
    }
    let max_min = mins.iter().fold(0.0f32, |a, &b| a.max(b));
    let max_range = ranges.iter().fold(0.0f32, |a, &b| a.max(b));
    let dmin = f16_round(max_min / scale_max as f32);
    let lm: Vec<u8> = mins
        .iter()
        .map(|&m| {
            if dmin > 0.0 {
                (m / dmin).ceil().min(scale_max as f32) as u8
            } else {
                0
            }
        })
        .collect();
    // The step must cover max + offset, which the rounded-up offset may have enlarged.
    let steps: Vec<f32> = x
        .chunks_exact(sub)
        .zip(&lm)
        .map(|(s, &l)| (min_max(s).1 + dmin * l as f32).max(0.0) / levels as f32)
        .collect();
    let max_step = steps
        .iter()
        .fold(max_range / levels as f32, |a, &b| a.max(b));
    let d = f16_round(max_step / scale_max as f32);
    let ls: Vec<u8> = steps
        .iter()
        .map(|&s| {
            if d > 0.0 {
                (s / d).ceil().min(scale_max as f32) as u8
            } else {
                0
            }
        })
        .collect();
    let mut q = Vec::with_capacity(x.len());
    for (j, s) in x.chunks_exact(sub).enumerate() {
        let step = d * ls[j] as f32;
        let off = dmin * lm[j] as f32;
        for &v in s {
            let l = if step > 0.0 {
                nearest((v + off) / step).clamp(0, levels as i32)
            } else {
                0
            };
            q.push(l as u8);
        }
    }
    (d, dmin, ls, lm, q)
}

/// Symmetric sub-block scales for Q3_K/Q6_K: a small search over s = max / -k, keeping the
/// largest-magnitude element on the (longer) negative side as ggml does. Returns the
/// unquantized scale per sub-block.
fn sym_scales(x: &[f32], sub: usize, qmin: i32, qmax: i32, ks: &[f32]) -> Vec<f32> {
    x.chunks_exact(sub)
        .map(|s| {
            let m = signed_absmax(s);
            if m == 0.0 {
                return 0.0;
            }
            let err = |sc: f32| -> f32 {
                s.iter()
                    .map(|&v| (v - sc * nearest(v / sc).clamp(qmin, qmax) as f32).powi(2))
                    .sum()
            };
            ks.iter()
                .map(|k| m / -k)
                .min_by(|a, b| err(*a).total_cmp(&err(*b)))
                .unwrap()
        })
        .collect()
}

/// Packs 2-bit values for Q2_K/Q3_K: element e sits in byte 32*(e/128) + e%32 at bit
/// 2*((e%128)/32).
fn pack2(l: &[u8]) -> [u8; 64] {
    let mut qs = [0u8; 64];
    for (e, &v) in l.iter().enumerate() {
        qs[32 * (e / 128) + e % 32] |= (v & 3) << (2 * ((e % 128) / 32));
    }
    qs
}

// block_q2_K { uint8_t scales[16]; uint8_t qs[64]; ggml_half d; ggml_half dmin; }
// scales: low nibble = scale, high nibble = min; value = d*sc*q - dmin*m.
fn q2_k(x: &[f32], out: &mut Vec<u8>) {
    let (d, dmin, ls, lm, q) = asym_k(x, 16, 3, 15);
    out.extend(ls.iter().zip(&lm).map(|(s, m)| s | (m << 4)));
    out.extend_from_slice(&pack2(&q));
    out.extend_from_slice(&f16_bytes(d));
    out.extend_from_slice(&f16_bytes(dmin));
}

// block_q3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; ggml_half d; }
fn q3_k(x: &[f32], out: &mut Vec<u8>) {
    let scales = sym_scales(x, 16, -4, 3, &[4.0, 3.75, 3.5, 3.25, 3.0]);
    let max_scale = signed_absmax(&scales);
    let mut packed = [0u8; 12];
    let mut eff = [0.0f32; 16];
    let mut d = 0.0;
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        d = f16_round(1.0 / iscale);
        for (j, &s) in scales.iter().enumerate() {
            let l = nearest(iscale * s).clamp(-32, 31);
            eff[j] = d * l as f32;
            let l = (l + 32) as u8;
            // 6-bit scales: low nibbles in bytes 0..8 (j < 8 low half, else high half),
            // top two bits in bytes 8..12.
            if j < 8 {
                packed[j] = l & 0xF;
            } else {
                packed[j - 8] |= (l & 0xF) << 4;
            }
            packed[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
        }
    }
    let mut lv = [0u8; QK_K];
    for (e, &v) in x.iter().enumerate() {
        let s = eff[e / 16];
        let q = if s != 0.0 {
            nearest(v / s).clamp(-4, 3)
        } else {
            0
        };
        lv[e] = (q + 4) as u8;
    }
    let mut hmask = [0u8; 32];
    for (e, l) in lv.iter_mut().enumerate() {
        if *l > 3 {
            hmask[e % 32] |= 1 << (e / 32);
            *l -= 4;
        }
    }
    out.extend_from_slice(&hmask);
    out.extend_from_slice(&pack2(&lv));
    out.extend_from_slice(&packed);
    out.extend_from_slice(&f16_bytes(d));
}

/// Packs eight 6-bit (scale, min) pairs as `get_scale_min_k4` reads them.
fn pack_scale_min_k4(ls: &[u8], lm: &[u8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0xF) | ((lm[j] & 0xF) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

// block_q4_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128]; }
// block_q5_K { ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }
// Element e: byte 32*(e/64) + e%32 of qs, low nibble if (e%64) < 32; Q5_K's fifth bit is
// bit e/32 of qh[e%32].
fn q45_k(x: &[f32], five: bool, out: &mut Vec<u8>) {
    let levels = if five { 31 } else { 15 };
    let (d, dmin, ls, lm, q) = asym_k(x, 32, levels, 63);
    out.extend_from_slice(&f16_bytes(d));
    out.extend_from_slice(&f16_bytes(dmin));
    out.extend_from_slice(&pack_scale_min_k4(&ls, &lm));
    let mut qs = [0u8; 128];
    let mut qh = [0u8; 32];
    for (e, &v) in q.iter().enumerate() {
        let shift = if e % 64 < 32 { 0 } else { 4 };
        qs[32 * (e / 64) + e % 32] |= (v & 0xF) << shift;
        if five && v & 0x10 != 0 {
            qh[e % 32] |= 1 << (e / 32);
        }
    }
    if five {
        out.extend_from_slice(&qh);
    }
    out.extend_from_slice(&qs);
}

// block_q6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
// Element e = 128n + 32k + l: low nibble in ql[64n + l + 32*(k%2)] (high half if k >= 2),
// top two bits in qh[32n + l] at bit 2k; scale index e/16.
fn q6_k(x: &[f32], out: &mut Vec<u8>) {
    let scales = sym_scales(x, 16, -32, 31, &[32.0, 31.5, 31.0, 30.5, 30.0]);
    let max_scale = signed_absmax(&scales);
    let mut sc = [0i8; 16];
    let mut d = 0.0;
    if max_scale != 0.0 {
        let iscale = -128.0 / max_scale;
        d = f16_round(1.0 / iscale);
        for (j, &s) in scales.iter().enumerate() {
            sc[j] = nearest(iscale * s).clamp(-128, 127) as i8;
        }
    }
    let mut ql = [0u8; 128];
    let mut qh = [0u8; 64];
    for (e, &v) in x.iter().enumerate() {
        let s = d * sc[e / 16] as f32;
        let l = (if s != 0.0 {
            nearest(v / s).clamp(-32, 31)
        } else {
            0
        } + 32) as u8;
        let (n, k, i) = (e / 128, (e % 128) / 32, e % 32);
        let shift = if k >= 2 { 4 } else { 0 };
        ql[64 * n + i + 32 * (k % 2)] |= (l & 0xF) << shift;
        qh[32 * n + i] |= (l >> 4) << (2 * k);
    }
    out.extend_from_slice(&ql);
    out.extend_from_slice(&qh);
    out.extend(sc.iter().map(|&s| s as u8));
    out.extend_from_slice(&f16_bytes(d));
}

/// Transcription of ggml's `dequantize_row_*` (ggml-quants.c), same loop structure and
/// float operation order.
pub fn dequantize_reference(q: QuantType, bytes: &[u8]) -> Vec<f32> {
    let (n, bs) = q.block();
    assert!(
        bytes.len().is_multiple_of(bs),
        "{}: {} bytes are not whole blocks",
        q.name(),
        bytes.len()
    );
    let mut y = Vec::with_capacity(bytes.len() / bs * n);
    for b in bytes.chunks_exact(bs) {
        let base = y.len();
        y.resize(base + n, 0.0);
        let y = &mut y[base..];
        match q {
            QuantType::Q4_0 => {
                let d = f16_at(b, 0);
                let qs = &b[2..18];
                for j in 0..16 {
                    let x0 = (qs[j] & 0x0F) as i32 - 8;
                    let x1 = (qs[j] >> 4) as i32 - 8;
                    y[j] = x0 as f32 * d;
                    y[j + 16] = x1 as f32 * d;
                }
            }
            QuantType::Q4_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                let qs = &b[4..20];
                for j in 0..16 {
                    y[j] = (qs[j] & 0x0F) as f32 * d + m;
                    y[j + 16] = (qs[j] >> 4) as f32 * d + m;
                }
            }
            QuantType::Q5_0 | QuantType::Q5_1 => {
                let one = q == QuantType::Q5_1;
                let d = f16_at(b, 0);
                let m = if one { f16_at(b, 2) } else { 0.0 };
                let o = if one { 4 } else { 2 };
                let qh = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                let qs = &b[o + 4..o + 20];
                for j in 0..16 {
                    let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
                    let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
                    let x0 = ((qs[j] & 0x0F) | xh_0) as i32;
                    let x1 = ((qs[j] >> 4) | xh_1) as i32;
                    if one {
                        y[j] = x0 as f32 * d + m;
                        y[j + 16] = x1 as f32 * d + m;
                    } else {
                        y[j] = (x0 - 16) as f32 * d;
                        y[j + 16] = (x1 - 16) as f32 * d;
                    }
                }
            }
            QuantType::Q8_0 => {
                let d = f16_at(b, 0);
                for j in 0..32 {
                    y[j] = b[2 + j] as i8 as f32 * d;
                }
            }
            QuantType::Q2K => dequant_q2_k(b, y),
            QuantType::Q3K => dequant_q3_k(b, y),
            QuantType::Q4K => dequant_q4_k(b, y),
            QuantType::Q5K => dequant_q5_k(b, y),
            QuantType::Q6K => dequant_q6_k(b, y),
        }
    }
    y
}

fn dequant_q2_k(b: &[u8], y: &mut [f32]) {
    let scales = &b[0..16];
    let d = f16_at(b, 80);
    let min = f16_at(b, 82);
    let mut q = 16usize; // qs offset
    let (mut is, mut yi) = (0, 0);
    for _n in (0..QK_K).step_by(128) {
        let mut shift = 0;
        for _j in 0..4 {
            for half in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * (sc & 0xF) as f32;
                let ml = min * (sc >> 4) as f32;
                for l in 0..16 {
                    y[yi] = dl * ((b[q + l + 16 * half] >> shift) & 3) as i8 as f32 - ml;
                    yi += 1;
                }
            }
            shift += 2;
        }
        q += 32;
    }
}

fn dequant_q3_k(b: &[u8], y: &mut [f32]) {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let hm = &b[0..32];
    let d_all = f16_at(b, 108);
    let mut aux = [0u32; 4];
    for (i, a) in aux.iter_mut().take(3).enumerate() {
        *a = u32::from_le_bytes([b[96 + 4 * i], b[97 + 4 * i], b[98 + 4 * i], b[99 + 4 * i]]);
    }
    let tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4);
    aux[3] = ((aux[1] >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4);
    aux[0] = (aux[0] & KMASK2) | ((tmp & KMASK1) << 4);
    aux[1] = (aux[1] & KMASK2) | (((tmp >> 2) & KMASK1) << 4);
    let scales: Vec<i8> = aux
        .iter()
        .flat_map(|a| a.to_le_bytes())
        .map(|x| x as i8)
        .collect();
    let mut q = 32usize;
    let (mut is, mut yi, mut m) = (0, 0, 1u8);
    for _n in (0..QK_K).step_by(128) {
        let mut shift = 0;
        for _j in 0..4 {
            for half in 0..2 {
                let dl = d_all * (scales[is] as i32 - 32) as f32;
                is += 1;
                for l in 0..16 {
                    let lo = ((b[q + l + 16 * half] >> shift) & 3) as i8 as i32;
                    let adj = if hm[l + 16 * half] & m != 0 { 0 } else { 4 };
                    y[yi] = dl * (lo - adj) as f32;
                    yi += 1;
                }
            }
            shift += 2;
            m <<= 1;
        }
        q += 32;
    }
}

fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn dequant_q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let mut q = 16usize;
    let (mut is, mut yi) = (0, 0);
    for _j in (0..QK_K).step_by(64) {
        let (sc, m) = get_scale_min_k4(is, scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = get_scale_min_k4(is + 1, scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        for l in 0..32 {
            y[yi + l] = d1 * (b[q + l] & 0xF) as f32 - m1;
        }
        for l in 0..32 {
            y[yi + 32 + l] = d2 * (b[q + l] >> 4) as f32 - m2;
        }
        yi += 64;
        q += 32;
        is += 2;
    }
}

fn dequant_q5_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let mut ql = 48usize;
    let (mut is, mut yi) = (0, 0);
    let (mut u1, mut u2) = (1u8, 2u8);
    for _j in (0..QK_K).step_by(64) {
        let (sc, m) = get_scale_min_k4(is, scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = get_scale_min_k4(is + 1, scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        for l in 0..32 {
            let h = if qh[l] & u1 != 0 { 16 } else { 0 };
            y[yi + l] = d1 * ((b[ql + l] & 0xF) + h) as f32 - m1;
        }
        for l in 0..32 {
            let h = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[yi + 32 + l] = d2 * ((b[ql + l] >> 4) + h) as f32 - m2;
        }
        yi += 64;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

fn dequant_q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    let (mut ql, mut qh, mut sc, mut yi) = (0usize, 128usize, 192usize, 0usize);
    for _n in (0..QK_K).step_by(128) {
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((b[ql + l] & 0xF) | ((b[qh + l] & 3) << 4)) as i8 as i32 - 32;
            let q2 = ((b[ql + l + 32] & 0xF) | (((b[qh + l] >> 2) & 3) << 4)) as i8 as i32 - 32;
            let q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) as i8 as i32 - 32;
            let q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) as i8 as i32 - 32;
            let s = |k: usize| b[sc + is + k] as i8 as f32;
            y[yi + l] = d * s(0) * q1 as f32;
            y[yi + l + 32] = d * s(2) * q2 as f32;
            y[yi + l + 64] = d * s(4) * q3 as f32;
            y[yi + l + 96] = d * s(6) * q4 as f32;
        }
        yi += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SynthRng;

    fn rel_rms(a: &[f32], b: &[f32]) -> f64 {
        let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
        let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
        (num / den).sqrt()
    }

    #[test]
    fn round_trip_error_is_as_expected() {
        // Relative RMS error of a Gaussian row; bounds are ~1.3x what these encoders reach
        // (ggml's searching quantizers do somewhat better on the k-quants).
        let bounds = [
            (QuantType::Q8_0, 0.007),
            (QuantType::Q6K, 0.022),
            (QuantType::Q5_0, 0.055),
            (QuantType::Q5_1, 0.048),
            (QuantType::Q5K, 0.05),
            (QuantType::Q4_0, 0.11),
            (QuantType::Q4_1, 0.1),
            (QuantType::Q4K, 0.1),
            (QuantType::Q3K, 0.19),
            (QuantType::Q2K, 0.45),
        ];
        let x = SynthRng::new(11).normal_vec(4096, 0.0, 0.02);
        for (q, bound) in bounds {
            let bytes = quantize(q, &x);
            assert_eq!(
                bytes.len(),
                x.len() / q.block().0 * q.block().1,
                "{}",
                q.name()
            );
            let y = dequantize_reference(q, &bytes);
            let e = rel_rms(&x, &y);
            assert!(e < bound, "{}: relative rms error {e}", q.name());
            // The error shrinks with the bit count, so positions are right (a scrambled
            // layout would give errors near sqrt(2)).
            assert!(e > 1e-5, "{}: suspiciously exact", q.name());
        }
    }

    #[test]
    fn nonnegative_and_offset_rows_round_trip() {
        let mut r = SynthRng::new(3);
        let x: Vec<f32> = (0..512).map(|_| 1.0 + 0.05 * r.normal() as f32).collect();
        for q in QuantType::ALL {
            let y = dequantize_reference(q, &quantize(q, &x));
            let worst = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 0.35, "{}: worst {worst}", q.name());
        }
        let zeros = vec![0.0f32; 256];
        for q in QuantType::ALL {
            assert!(
                dequantize_reference(q, &quantize(q, &zeros))
                    .iter()
                    .all(|v| *v == 0.0),
                "{}",
                q.name()
            );
        }
    }

    #[test]
    fn q4_0_layout_by_hand() {
        // max |x| is -8 at element 0, so d = 1 and q = x + 8.
        let x: Vec<f32> = (0..32).map(|i| [-8.0, 7.0, 0.0, 3.0][i % 4]).collect();
        let b = quantize(QuantType::Q4_0, &x);
        assert_eq!(&b[0..2], &f16::from_f32(1.0).to_bits().to_le_bytes());
        // qs[0] holds element 0 (low) and element 16 (high): both -8 -> 0.
        assert_eq!(b[2], 0x00);
        // qs[1]: element 1 (7 -> 15) low, element 17 (7 -> 15) high.
        assert_eq!(b[3], 0xFF);
        assert_eq!(b[5], 0xBB); // elements 3 and 19: 3 -> 11
    }

    #[test]
    fn q8_0_and_q5_0_layout_by_hand() {
        let mut x = vec![0.0f32; 32];
        x[0] = 1.27;
        x[5] = -0.5;
        let b = quantize(QuantType::Q8_0, &x);
        assert_eq!(b[2], 127);
        assert_eq!(b[2 + 5] as i8, -50);
        // Q5_0: max is x[20] = 16 -> d = -1, q = 16 - x; x[3] = -15 -> 31 (fifth bit set).
        let mut x = vec![0.0f32; 32];
        x[20] = 16.0;
        x[3] = -15.0;
        let b = quantize(QuantType::Q5_0, &x);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        assert_eq!(qh & (1 << 3), 1 << 3);
        assert_eq!(qh & (1 << 20), 0); // 16 - 16 = 0
        assert_eq!(b[6 + 4] & 0x0F, 0x00); // element 20 is the high nibble of qs[4]
        assert_eq!(b[6 + 4] >> 4, 0x00);
        assert_eq!(b[6 + 3] & 0x0F, 0x0F);
    }

    #[test]
    fn k_quant_element_positions() {
        // One distinctive element at a time must decode at its own position.
        for q in [
            QuantType::Q2K,
            QuantType::Q3K,
            QuantType::Q4K,
            QuantType::Q5K,
            QuantType::Q6K,
        ] {
            for e in [0usize, 15, 16, 31, 32, 63, 64, 100, 127, 128, 160, 200, 255] {
                let mut x = vec![0.0f32; 256];
                x[e] = 1.0;
                let y = dequantize_reference(q, &quantize(q, &x));
                let arg = y
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0;
                assert_eq!(arg, e, "{}: element {e} decoded at {arg}", q.name());
                assert!(
                    (y[e] - 1.0).abs() < 0.2,
                    "{}: element {e} decoded as {}",
                    q.name(),
                    y[e]
                );
            }
        }
    }

    #[test]
    fn deterministic() {
        let x = SynthRng::new(1).normal_vec(512, 0.0, 1.0);
        for q in QuantType::ALL {
            assert_eq!(quantize(q, &x), quantize(q, &x));
        }
    }
}
