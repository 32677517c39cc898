//! Dequantization of GGML block types, value for value as ggml's reference
//! `dequantize_row_*` (ggml-quants.c) computes them.
//!
//! Each function walks whole blocks with `chunks_exact` over fixed-size arrays so that the
//! inner loops have no bounds checks and the compiler can vectorize them. Nothing here
//! allocates.

use crate::QuantType;

/// Decodes whole blocks of `q` from `bytes` into `out`. The caller has checked that `bytes`
/// is a whole number of blocks and `out` holds exactly their elements; any excess is ignored.
pub fn dequantize(q: QuantType, bytes: &[u8], out: &mut [f32]) {
    match q {
        QuantType::Q4_0 => blocks::<18, 32>(bytes, out, q4_0),
        QuantType::Q4_1 => blocks::<20, 32>(bytes, out, q4_1),
        QuantType::Q5_0 => blocks::<22, 32>(bytes, out, q5_0),
        QuantType::Q5_1 => blocks::<24, 32>(bytes, out, q5_1),
        QuantType::Q8_0 => blocks::<34, 32>(bytes, out, q8_0),
        QuantType::Q8_1 => blocks::<36, 32>(bytes, out, q8_1),
        QuantType::Q2K => blocks::<84, 256>(bytes, out, q2_k),
        QuantType::Q3K => blocks::<110, 256>(bytes, out, q3_k),
        QuantType::Q4K => blocks::<144, 256>(bytes, out, q4_k),
        QuantType::Q5K => blocks::<176, 256>(bytes, out, q5_k),
        QuantType::Q6K => blocks::<210, 256>(bytes, out, q6_k),
        QuantType::Q8K => blocks::<292, 256>(bytes, out, q8_k),
        // The scales live outside the bytes; `Model::read_rows` applies them.
        QuantType::QInt8 => out
            .iter_mut()
            .zip(bytes)
            .for_each(|(o, &b)| *o = b as i8 as f32),
        QuantType::QUInt8 => out.iter_mut().zip(bytes).for_each(|(o, &b)| *o = b as f32),
    }
}

/// Runs `f` over each (block bytes, block output) pair as fixed-size arrays.
#[inline(always)]
fn blocks<const B: usize, const N: usize>(
    bytes: &[u8],
    out: &mut [f32],
    f: fn(&[u8; B], &mut [f32; N]),
) {
    for (b, y) in bytes.chunks_exact(B).zip(out.chunks_exact_mut(N)) {
        // chunks_exact guarantees the lengths, so these conversions cannot fail.
        if let (Ok(b), Ok(y)) = (<&[u8; B]>::try_from(b), <&mut [f32; N]>::try_from(y)) {
            f(b, y);
        }
    }
}

#[inline(always)]
fn f16_at(b: &[u8], i: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Splits a 32-element block output into its two halves of 16.
#[inline(always)]
fn halves(y: &mut [f32; 32]) -> (&mut [f32; 16], &mut [f32; 16]) {
    let (lo, hi) = y.split_at_mut(16);
    (lo.try_into().expect("16"), hi.try_into().expect("16"))
}

#[inline(always)]
fn sub16<const M: usize>(a: &[u8; M], start: usize) -> &[u8; 16] {
    a[start..start + 16].try_into().expect("16 bytes")
}

#[inline(always)]
fn sub32<const M: usize>(a: &[u8; M], start: usize) -> &[u8; 32] {
    a[start..start + 32].try_into().expect("32 bytes")
}

/// Q4_0: f16 d, 16 bytes of nibbles; low nibbles are elements 0..16, high ones 16..32.
fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qs = sub16(b, 2);
    let (lo, hi) = halves(y);
    for j in 0..16 {
        lo[j] = ((qs[j] & 0x0F) as i32 - 8) as f32 * d;
        hi[j] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

/// Q4_1: f16 d, f16 m, 16 bytes of unsigned nibbles; value = q * d + m.
fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qs = sub16(b, 4);
    let (lo, hi) = halves(y);
    for j in 0..16 {
        lo[j] = (qs[j] & 0x0F) as f32 * d + m;
        hi[j] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// Q5_0: f16 d, 32 high bits (u32 LE), 16 bytes of nibbles; value = (q5 - 16) * d.
fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = sub16(b, 6);
    let (lo, hi) = halves(y);
    for j in 0..16 {
        let xh0 = (((qh >> j) << 4) & 0x10) as i32;
        let xh1 = ((qh >> (j + 12)) & 0x10) as i32;
        lo[j] = (((qs[j] & 0x0F) as i32 | xh0) - 16) as f32 * d;
        hi[j] = (((qs[j] >> 4) as i32 | xh1) - 16) as f32 * d;
    }
}

/// Q5_1: f16 d, f16 m, 32 high bits, 16 bytes of nibbles; value = q5 * d + m.
fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = sub16(b, 8);
    let (lo, hi) = halves(y);
    for j in 0..16 {
        let xh0 = (((qh >> j) << 4) & 0x10) as i32;
        let xh1 = ((qh >> (j + 12)) & 0x10) as i32;
        lo[j] = ((qs[j] & 0x0F) as i32 | xh0) as f32 * d + m;
        hi[j] = ((qs[j] >> 4) as i32 | xh1) as f32 * d + m;
    }
}

/// Q8_0: f16 d, 32 signed bytes.
fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qs = sub32(b, 2);
    for j in 0..32 {
        y[j] = qs[j] as i8 as f32 * d;
    }
}

/// Q8_1: f16 d, f16 s (the block sum, d * sum(q), unused here), 32 signed bytes.
fn q8_1(b: &[u8; 36], y: &mut [f32; 32]) {
    let d = f16_at(b, 0);
    let qs = sub32(b, 4);
    for j in 0..32 {
        y[j] = qs[j] as i8 as f32 * d;
    }
}

/// Q8_K: f32 d, 256 signed bytes, 16 i16 block sums (unused here).
fn q8_k(b: &[u8; 292], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let qs = &b[4..260];
    for (o, &q) in y.iter_mut().zip(qs) {
        *o = d * q as i8 as f32;
    }
}

/// Q2_K: 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit values,
/// f16 d, f16 dmin. Each 128-element half reads 32 bytes four times at shifts 0,2,4,6.
fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let scales = sub16(b, 0);
    let d = f16_at(b, 80);
    let min = f16_at(b, 82);
    let mut is = 0;
    for n in 0..2 {
        let q = sub32(b, 16 + 32 * n);
        for j in 0..4 {
            let shift = 2 * j;
            let base = 128 * n + 32 * j;
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * (sc & 0x0F) as f32;
                let ml = min * (sc >> 4) as f32;
                let dst = &mut y[base + 16 * part..base + 16 * part + 16];
                let src = &q[16 * part..16 * part + 16];
                for (o, &qb) in dst.iter_mut().zip(src) {
                    *o = dl * ((qb >> shift) & 3) as f32 - ml;
                }
            }
        }
    }
}

/// Unpacks Q3_K's 16 six-bit scales from 12 bytes, as ggml's kmask shuffle does.
fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let a0 = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let a1 = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
    let tmp = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    let words = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut out = [0i8; 16];
    for (i, w) in words.iter().enumerate() {
        for (k, byte) in w.to_le_bytes().into_iter().enumerate() {
            out[4 * i + k] = byte as i8;
        }
    }
    out
}

/// Q3_K: 32 bytes of high-bit mask, 64 bytes of 2-bit values, 12 bytes of packed 6-bit
/// scales, f16 d. A cleared mask bit subtracts 4.
fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let hm = sub32(b, 0);
    let scales = q3_k_scales(&b[96..108]);
    let d_all = f16_at(b, 108);
    let mut is = 0;
    let mut m: u8 = 1;
    for n in 0..2 {
        let q = sub32(b, 32 + 32 * n);
        for j in 0..4 {
            let shift = 2 * j;
            let base = 128 * n + 32 * j;
            for part in 0..2 {
                let dl = d_all * (scales[is] as i32 - 32) as f32;
                is += 1;
                let off = 16 * part;
                let dst = &mut y[base + off..base + off + 16];
                for (l, o) in dst.iter_mut().enumerate() {
                    let low = ((q[off + l] >> shift) & 3) as i32;
                    let high = if hm[off + l] & m != 0 { 0 } else { 4 };
                    *o = dl * (low - high) as f32;
                }
            }
            m <<= 1;
        }
    }
}

/// The j-th (scale, min) pair of K-quants' 12-byte packed 6-bit scales.
#[inline(always)]
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles. Each 64-element
/// group takes the low nibbles of 32 bytes, then their high nibbles.
fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let q = sub32(b, 16 + 32 * g);
        let (lo, hi) = y[64 * g..64 * g + 64].split_at_mut(32);
        for l in 0..32 {
            lo[l] = d1 * (q[l] & 0x0F) as f32 - m1;
            hi[l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// Q5_K: like Q4_K plus 32 bytes of high bits; group g uses bits 2g and 2g+1 of qh.
fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = sub32(b, 16);
    for g in 0..4 {
        let (sc1, m1) = scale_min_k4(2 * g, scales);
        let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
        let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
        let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
        let ql = sub32(b, 48 + 32 * g);
        let (lo, hi) = y[64 * g..64 * g + 64].split_at_mut(32);
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            lo[l] = d1 * ((ql[l] & 0x0F) + h1) as f32 - m1;
            hi[l] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed scales, f16 d.
fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let d = f16_at(b, 208);
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = sub32(b, 128 + 32 * n);
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let yy = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            yy[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            yy[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            yy[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            yy[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each dequantizer against hand-computed values, and the K-quants against an
    //! element-by-element reading of ggml's block layouts (written independently of the
    //! loop structure above).
    use super::*;

    const F16_ONE: [u8; 2] = [0x00, 0x3C];
    const F16_HALF: [u8; 2] = [0x00, 0x38];
    const F16_QUARTER: [u8; 2] = [0x00, 0x34];
    const F16_MINUS_ONE: [u8; 2] = [0x00, 0xBC];
    const F16_TWO: [u8; 2] = [0x00, 0x40];

    fn decode(q: QuantType, bytes: &[u8]) -> Vec<f32> {
        let (per_block, block_bytes) = q.block();
        assert_eq!(bytes.len() as u64 % block_bytes, 0);
        let mut out = vec![f32::NAN; (bytes.len() as u64 / block_bytes * per_block) as usize];
        dequantize(q, bytes, &mut out);
        out
    }

    /// Deterministic bytes (xorshift), so the K-quant checks cover every bit pattern mix.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    fn f16_of(b: &[u8]) -> f32 {
        half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
    }

    #[test]
    fn q4_0_known_block() {
        let mut b = F16_HALF.to_vec();
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = decode(QuantType::Q4_0, &b);
        for j in 0..16 {
            assert_eq!(y[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(y[j + 16], (7.0 - j as f32) * 0.5);
        }
        assert_eq!(y[0], -4.0);
        assert_eq!(y[31], -4.0);
    }

    #[test]
    fn q4_1_known_block() {
        let mut b = F16_QUARTER.to_vec();
        b.extend(F16_MINUS_ONE);
        b.extend((0..16u8).map(|j| j | (3 << 4)));
        let y = decode(QuantType::Q4_1, &b);
        for j in 0..16 {
            assert_eq!(y[j], j as f32 * 0.25 - 1.0);
            assert_eq!(y[j + 16], -0.25);
        }
    }

    #[test]
    fn q5_0_known_block() {
        // High bit set for elements 1 and 17 (bits 1 and 17 of qh); all nibbles 0x3 / 0x5.
        let qh: u32 = (1 << 1) | (1 << 17);
        let mut b = F16_ONE.to_vec();
        b.extend(qh.to_le_bytes());
        b.extend([0x53u8; 16]);
        let y = decode(QuantType::Q5_0, &b);
        assert_eq!(y[0], 3.0 - 16.0);
        assert_eq!(y[1], 3.0 + 16.0 - 16.0);
        assert_eq!(y[16], 5.0 - 16.0);
        assert_eq!(y[17], 5.0);
        assert_eq!(y[31], -11.0);
    }

    #[test]
    fn q5_1_known_block() {
        let qh: u32 = 0xFFFF_0000; // high bit on for elements 16..32
        let mut b = F16_HALF.to_vec();
        b.extend(F16_ONE);
        b.extend(qh.to_le_bytes());
        b.extend((0..16u8).map(|j| j | (j << 4)));
        let y = decode(QuantType::Q5_1, &b);
        for j in 0..16 {
            assert_eq!(y[j], j as f32 * 0.5 + 1.0);
            assert_eq!(y[j + 16], (j as f32 + 16.0) * 0.5 + 1.0);
        }
    }

    #[test]
    fn q8_0_and_q8_1_known_blocks() {
        let qs: Vec<u8> = (0..32).map(|j| (j as i8 - 16) as u8).collect();
        let mut b = F16_HALF.to_vec();
        b.extend(&qs);
        let y = decode(QuantType::Q8_0, &b);
        for (j, &v) in y.iter().enumerate() {
            assert_eq!(v, (j as f32 - 16.0) * 0.5);
        }
        let mut b = F16_TWO.to_vec();
        b.extend([0xAB, 0xCD]); // the block sum is not used to decode
        b.extend(&qs);
        let y = decode(QuantType::Q8_1, &b);
        for (j, &v) in y.iter().enumerate() {
            assert_eq!(v, (j as f32 - 16.0) * 2.0);
        }
    }

    #[test]
    fn q8_k_known_block() {
        let mut b = 0.125f32.to_le_bytes().to_vec();
        b.extend((0..256).map(|i| i as u8));
        b.extend([0x55u8; 32]);
        let y = decode(QuantType::Q8K, &b);
        for (i, &v) in y.iter().enumerate() {
            assert_eq!(v, (i as u8 as i8) as f32 * 0.125);
        }
    }

    #[test]
    fn q4_k_known_values() {
        // d = 1, dmin = 0.5; sub-block 0: scale 2, min 3; sub-block 1: scale 5, min 1.
        let mut b = F16_ONE.to_vec();
        b.extend(F16_HALF);
        let mut scales = [0u8; 12];
        scales[0] = 2;
        scales[1] = 5;
        scales[4] = 3;
        scales[5] = 1;
        b.extend(scales);
        b.extend([0x74u8; 128]); // low nibble 4, high nibble 7
        let y = decode(QuantType::Q4K, &b);
        assert_eq!(y[0], 2.0 * 4.0 - 0.5 * 3.0); // sub-block 0: low nibbles
        assert_eq!(y[31], 6.5);
        assert_eq!(y[32], 5.0 * 7.0 - 0.5 * 1.0); // sub-block 1: high nibbles
        assert_eq!(y[64], 0.0); // sub-blocks 2.. have scale 0, min 0
    }

    fn k_scale_min(j: usize, s: &[u8]) -> (f32, f32) {
        if j < 4 {
            ((s[j] & 63) as f32, (s[j + 4] & 63) as f32)
        } else {
            (
                ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4)) as f32,
                ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as f32,
            )
        }
    }

    /// A K-quant block of noise with sane (finite) f16 scales written at `at`.
    fn k_block(len: usize, seed: u64, scale_at: &[usize]) -> Vec<u8> {
        let mut b = noise(len, seed);
        for (k, &at) in scale_at.iter().enumerate() {
            let v = half::f16::from_f32(
                0.01 * (k as f32 + 1.0) * if seed.is_multiple_of(2) { 1.0 } else { -1.0 },
            );
            b[at..at + 2].copy_from_slice(&v.to_bits().to_le_bytes());
        }
        b
    }

    #[test]
    fn q2_k_matches_layout() {
        for seed in 1..5 {
            let b = k_block(84, seed, &[80, 82]);
            let (d, dmin) = (f16_of(&b[80..]), f16_of(&b[82..]));
            let y = decode(QuantType::Q2K, &b);
            for (i, &got) in y.iter().enumerate() {
                let (n, w) = (i / 128, i % 128);
                let (shift, part, l) = (2 * (w / 32), (w % 32) / 16, w % 16);
                let q = (b[16 + 32 * n + 16 * part + l] >> shift) & 3;
                let sc = b[8 * n + 2 * (w / 32) + part];
                let want = d * (sc & 15) as f32 * q as f32 - dmin * (sc >> 4) as f32;
                assert_eq!(got, want, "element {i}");
            }
        }
    }

    #[test]
    fn q3_k_matches_layout() {
        for seed in 1..5 {
            let b = k_block(110, seed, &[108]);
            let d = f16_of(&b[108..]);
            let s = &b[96..108];
            let y = decode(QuantType::Q3K, &b);
            for (i, &got) in y.iter().enumerate() {
                let (n, w) = (i / 128, i % 128);
                let (j, part, l) = (w / 32, (w % 32) / 16, w % 16);
                let q = ((b[32 + 32 * n + 16 * part + l] >> (2 * j)) & 3) as i32;
                let high_bit_set = b[16 * part + l] & (1 << (4 * n + j)) != 0;
                let is = 8 * n + 2 * j + part;
                let low4 = if is < 8 { s[is] & 15 } else { s[is - 8] >> 4 };
                let high2 = (s[8 + is % 4] >> (2 * (is / 4))) & 3;
                let scale = (low4 | (high2 << 4)) as i32 - 32;
                let want = d * scale as f32 * (q - if high_bit_set { 0 } else { 4 }) as f32;
                assert_eq!(got, want, "element {i}");
            }
        }
    }

    #[test]
    fn q4_k_and_q5_k_match_layout() {
        for seed in 1..5 {
            let b = k_block(144, seed, &[0, 2]);
            let (d, dmin) = (f16_of(&b[0..]), f16_of(&b[2..]));
            let y = decode(QuantType::Q4K, &b);
            for (i, &got) in y.iter().enumerate() {
                let (g, hi, l) = (i / 64, (i % 64) / 32, i % 32);
                let byte = b[16 + 32 * g + l];
                let q = if hi == 1 { byte >> 4 } else { byte & 15 };
                let (sc, m) = k_scale_min(2 * g + hi, &b[4..16]);
                assert_eq!(got, d * sc * q as f32 - dmin * m, "Q4_K element {i}");
            }

            let b = k_block(176, seed, &[0, 2]);
            let (d, dmin) = (f16_of(&b[0..]), f16_of(&b[2..]));
            let y = decode(QuantType::Q5K, &b);
            for (i, &got) in y.iter().enumerate() {
                let (g, hi, l) = (i / 64, (i % 64) / 32, i % 32);
                let byte = b[48 + 32 * g + l];
                let low = if hi == 1 { byte >> 4 } else { byte & 15 };
                let high = if b[16 + l] & (1 << (2 * g + hi)) != 0 {
                    16
                } else {
                    0
                };
                let (sc, m) = k_scale_min(2 * g + hi, &b[4..16]);
                assert_eq!(
                    got,
                    d * sc * (low + high) as f32 - dmin * m,
                    "Q5_K element {i}"
                );
            }
        }
    }

    #[test]
    fn q6_k_matches_layout() {
        for seed in 1..5 {
            let b = k_block(210, seed, &[208]);
            let d = f16_of(&b[208..]);
            let y = decode(QuantType::Q6K, &b);
            for (i, &got) in y.iter().enumerate() {
                let (n, w) = (i / 128, i % 128);
                let (quarter, l) = (w / 32, w % 32);
                let lbyte = b[64 * n + l + if quarter % 2 == 1 { 32 } else { 0 }];
                let low = if quarter >= 2 { lbyte >> 4 } else { lbyte & 15 };
                let high = (b[128 + 32 * n + l] >> (2 * quarter)) & 3;
                let q = (low | (high << 4)) as i32 - 32;
                let sc = b[192 + 8 * n + l / 16 + 2 * quarter] as i8;
                assert_eq!(got, d * sc as f32 * q as f32, "element {i}");
            }
        }
    }

    #[test]
    fn q6_k_known_value() {
        // Element 0: low nibble 0xF, high bits 0b11 -> q = 63 - 32 = 31; scale -2; d = 0.5.
        let mut b = vec![0u8; 210];
        b[0] = 0x0F;
        b[128] = 0x03;
        b[192] = (-2i8) as u8;
        b[208..210].copy_from_slice(&F16_HALF);
        let y = decode(QuantType::Q6K, &b);
        assert_eq!(y[0], 0.5 * -2.0 * 31.0);
        assert_eq!(y[1], 0.5 * -2.0 * -32.0);
    }

    #[test]
    fn several_blocks_decode_in_order() {
        let mut b = Vec::new();
        for d in [F16_ONE, F16_TWO] {
            b.extend(d);
            b.extend([1u8; 32]);
        }
        let y = decode(QuantType::Q8_0, &b);
        assert_eq!(y.len(), 64);
        assert!(y[..32].iter().all(|&v| v == 1.0));
        assert!(y[32..].iter().all(|&v| v == 2.0));
    }
}
