//! The first, cheapest layer of evidence: are the tensors the same numbers, whatever the
//! format, dtype, name or (GGUF) row order they are stored in?
//!
//! Tensors are paired by schema key (role, layer, expert, parameter), which survives renaming
//! and re-packing (a stacked GGUF expert tensor is split into its experts). Each pair is
//! judged relative to the precision of the two dtypes: a bf16 copy of an f32 tensor differs
//! by rounding, a Q4 copy by quantization error, a fine-tune by more.

use std::collections::BTreeMap;
use std::ops::Range;

use dokja_formats::{Dtype, Model, TensorInfo};
use dokja_schema::{Component, Param, Role};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::slots::ModelSlots;
use crate::subject::{PieceDigests, Subject};

/// Rows decoded per read when streaming two tensors side by side.
const CHUNK_ELEMS: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PieceKey {
    role: Role,
    layer: Option<u32>,
    expert: Option<u32>,
    param: Param,
    /// Disambiguates tensors the schema cannot tell apart (e.g. several norms of a layer).
    ordinal: u32,
}

/// A tensor, or one expert's rows of a stacked expert tensor.
#[derive(Clone, Debug)]
pub struct Piece {
    pub tensor: usize,
    pub rows: Range<u64>,
    pub shape: Vec<u64>,
    /// Part of a mixture of experts (sampled more sparsely: there are thousands).
    pub expert: bool,
}

pub fn pieces(slots: &ModelSlots<'_>, component: Component) -> BTreeMap<PieceKey, Piece> {
    let mut out = BTreeMap::new();
    let Some(comp) = slots.components.get(&component) else {
        return out;
    };
    for &i in &comp.learned {
        let t = &slots.model.tensors[i];
        let c = &slots.classes[i];
        let stacked = c.role.is_expert() && c.expert.is_none() && t.shape.len() == 3;
        if stacked {
            let per = t.shape[1];
            for e in 0..t.shape[0] {
                insert(
                    &mut out,
                    c.role,
                    c.layer,
                    Some(e as u32),
                    c.param,
                    Piece {
                        tensor: i,
                        rows: e * per..(e + 1) * per,
                        shape: t.shape[1..].to_vec(),
                        expert: true,
                    },
                );
            }
        } else {
            insert(
                &mut out,
                c.role,
                c.layer,
                c.expert,
                c.param,
                Piece {
                    tensor: i,
                    rows: 0..t.n_rows(),
                    shape: t.shape.clone(),
                    expert: c.expert.is_some(),
                },
            );
        }
    }
    out
}

fn insert(
    out: &mut BTreeMap<PieceKey, Piece>,
    role: Role,
    layer: Option<u32>,
    expert: Option<u32>,
    param: Param,
    piece: Piece,
) {
    let mut key = PieceKey {
        role,
        layer,
        expert,
        param,
        ordinal: 0,
    };
    while out.contains_key(&key) {
        key.ordinal += 1;
    }
    out.insert(key, piece);
}

/// How close two same-shaped tensors are.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Closeness {
    /// ||a - b|| / ||a||.
    pub relative_rms: f64,
    pub max_abs_diff: f64,
    pub exact: bool,
}

pub fn closeness(a: &Model, pa: &Piece, b: &Model, pb: &Piece) -> Result<Closeness> {
    let (ta, tb) = (&a.tensors[pa.tensor], &b.tensors[pb.tensor]);
    let row_len = ta.row_len().max(1);
    let rows_per_chunk = (CHUNK_ELEMS as u64 / row_len).max(1);
    let (mut diff_sq, mut norm_sq, mut max_abs) = (0f64, 0f64, 0f64);
    let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
    let n = pa.rows.end - pa.rows.start;
    let mut r = 0;
    while r < n {
        let end = (r + rows_per_chunk).min(n);
        a.read_rows(ta, pa.rows.start + r..pa.rows.start + end, &mut buf_a)?;
        b.read_rows(tb, pb.rows.start + r..pb.rows.start + end, &mut buf_b)?;
        for (&x, &y) in buf_a.iter().zip(&buf_b) {
            let d = (x - y) as f64;
            diff_sq += d * d;
            norm_sq += (x as f64) * (x as f64);
            max_abs = max_abs.max(d.abs());
        }
        r = end;
    }
    Ok(Closeness {
        relative_rms: (diff_sq / norm_sq.max(f64::MIN_POSITIVE)).sqrt(),
        max_abs_diff: max_abs,
        exact: diff_sq == 0.0,
    })
}

/// The relative difference two copies of the same weights can show after being stored in
/// these dtypes: rounding for float casts, block quantization error for quantized types.
pub fn copy_tolerance(a: Dtype, b: Dtype) -> f64 {
    let u = |d: Dtype| {
        if d.is_quantized() {
            // Measured quantization RMS error on Gaussian weights stays below 2u.
            2.0 * d.unit_roundoff()
        } else if d == Dtype::F32 || d == Dtype::F64 {
            0.0
        } else {
            d.unit_roundoff()
        }
    };
    u(a).max(u(b))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdentityFinding {
    /// Pieces (tensors or experts) of the component in A, and how many have a partner in B.
    pub pieces_a: usize,
    pub pieces_b: usize,
    pub paired: usize,
    /// Paired pieces whose values are equal to the last bit.
    pub exact: usize,
    /// Paired pieces equal up to the rounding of a dtype cast.
    pub within_cast: usize,
    /// Paired pieces equal up to quantization error (a quantized side is involved).
    pub within_quantization: usize,
    /// Largest relative RMS difference among paired pieces.
    pub max_relative_rms: f64,
    pub outcome: IdentityOutcome,
    /// Tensor names that differ between paired pieces (first few).
    pub renamed: Vec<(String, String)>,
    /// Pieces paired by canonical content digest rather than by role (renamed beyond what the
    /// schema recognizes).
    pub paired_by_content: usize,
    /// True when the check stopped at the first piece that is not a copy: the counts above
    /// then cover the pieces examined so far.
    pub stopped_at_first_difference: bool,
    /// True when a fingerprint took part: closeness was then measured on seeded samples of
    /// each piece (equal positions on both sides) and exactness by canonical digests.
    pub sampled: bool,
    #[serde(skip)]
    paired_keys: Vec<PieceKey>,
    pub dtypes_a: Vec<String>,
    pub dtypes_b: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityOutcome {
    /// Every piece equal to the last bit.
    Exact,
    /// Every piece equal up to dtype rounding.
    Cast,
    /// Every piece equal up to quantization error.
    Quantized,
    /// Not the same numbers (or not the same set of pieces).
    Different,
}

pub fn compare_identity(
    a: &ModelSlots<'_>,
    b: &ModelSlots<'_>,
    component: Component,
    seed: u64,
) -> Result<IdentityFinding> {
    let pa = pieces(a, component);
    let pb = pieces(b, component);
    let mut f = IdentityFinding {
        pieces_a: pa.len(),
        pieces_b: pb.len(),
        paired: 0,
        exact: 0,
        within_cast: 0,
        within_quantization: 0,
        max_relative_rms: 0.0,
        outcome: IdentityOutcome::Different,
        renamed: Vec::new(),
        paired_by_content: 0,
        stopped_at_first_difference: false,
        sampled: false,
        paired_keys: Vec::new(),
        dtypes_a: dtype_names(a.model, pa.values()),
        dtypes_b: dtype_names(b.model, pb.values()),
    };
    let both_weights = !a.subject.is_fingerprint() && !b.subject.is_fingerprint();
    for (key, piece_a) in &pa {
        let Some(piece_b) = pb.get(key) else { continue };
        if piece_a.shape != piece_b.shape {
            continue;
        }
        f.paired += 1;
        f.paired_keys.push(key.clone());
        let (ta, tb): (&TensorInfo, &TensorInfo) = (
            &a.model.tensors[piece_a.tensor],
            &b.model.tensors[piece_b.tensor],
        );
        if ta.name != tb.name && f.renamed.len() < 8 {
            f.renamed.push((ta.name.clone(), tb.name.clone()));
        }
        let c = if both_weights {
            closeness(a.model, piece_a, b.model, piece_b)?
        } else {
            f.sampled = true;
            sampled_closeness(a.subject, piece_a, b.subject, piece_b, seed)?
        };
        f.max_relative_rms = f.max_relative_rms.max(c.relative_rms);
        let tolerance = copy_tolerance(ta.dtype, tb.dtype);
        if c.exact {
            f.exact += 1;
        } else if c.relative_rms <= tolerance {
            if ta.dtype.is_quantized() || tb.dtype.is_quantized() {
                f.within_quantization += 1;
            } else {
                f.within_cast += 1;
            }
        } else {
            // One piece that is not a copy settles the outcome; reading the rest would only
            // repeat the I/O the statistics are about to do.
            f.stopped_at_first_difference = true;
            return Ok(f);
        }
    }
    content_pairing(a, b, component, &pa, &pb, &mut f)?;
    let complete = f.paired == f.pieces_a && f.paired == f.pieces_b && f.paired > 0;
    f.outcome = if !complete {
        IdentityOutcome::Different
    } else if f.exact == f.paired {
        IdentityOutcome::Exact
    } else if f.exact + f.within_cast == f.paired {
        IdentityOutcome::Cast
    } else if f.exact + f.within_cast + f.within_quantization == f.paired {
        IdentityOutcome::Quantized
    } else {
        IdentityOutcome::Different
    };
    Ok(f)
}

fn dtype_names<'a>(m: &Model, pieces: impl Iterator<Item = &'a Piece>) -> Vec<String> {
    let mut names: Vec<String> = pieces
        .map(|p| m.tensors[p.tensor].dtype.name().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Pairs the pieces left unpaired by role through their canonical digests, so a copy whose
/// tensors were renamed to names the schema cannot place is still found. B's unclassified
/// learned tensors take part; only unpaired pieces are hashed.
fn content_pairing(
    a: &ModelSlots<'_>,
    b: &ModelSlots<'_>,
    component: Component,
    pa: &BTreeMap<PieceKey, Piece>,
    pb: &BTreeMap<PieceKey, Piece>,
    f: &mut IdentityFinding,
) -> Result<()> {
    let paired: std::collections::BTreeSet<&PieceKey> = f.paired_keys.iter().collect();
    let left_a: Vec<&Piece> = pa
        .iter()
        .filter(|(k, _)| !paired.contains(k))
        .map(|(_, p)| p)
        .collect();
    if left_a.is_empty() {
        return Ok(());
    }
    let mut left_b: Vec<Piece> = pb
        .iter()
        .filter(|(k, _)| !paired.contains(k))
        .map(|(_, p)| p.clone())
        .collect();
    if component != Component::Unclassified {
        for (i, (t, c)) in b.model.tensors.iter().zip(&b.classes).enumerate() {
            if c.learned && c.component == Component::Unclassified {
                left_b.push(Piece {
                    tensor: i,
                    rows: 0..t.n_rows(),
                    shape: t.shape.clone(),
                    expert: false,
                });
            }
        }
    }
    let mut by_digest = std::collections::HashMap::new();
    for piece in &left_b {
        by_digest
            .entry(b.subject.piece_digests(piece)?.bf16)
            .or_insert(piece.clone());
    }
    for piece_a in left_a {
        if let Some(piece_b) = by_digest.remove(&a.subject.piece_digests(piece_a)?.bf16) {
            f.paired += 1;
            f.paired_by_content += 1;
            // Equal canonical digests: equal values at bf16 precision.
            f.within_cast += 1;
            if f.renamed.len() < 8 {
                f.renamed.push((
                    a.model.tensors[piece_a.tensor].name.clone(),
                    b.model.tensors[piece_b.tensor].name.clone(),
                ));
            }
            if piece_b.tensor < b.model.tensors.len()
                && b.classes[piece_b.tensor].component == Component::Unclassified
            {
                // Counted among B's pieces now that it belongs to this component.
                f.pieces_b += 1;
            }
        }
    }
    Ok(())
}

/// Digests of a piece's canonical content (a whole tensor, or one expert's rows): shape and
/// values in canonical row order, bit for bit and rounded to bf16. The bf16 one is equal for
/// copies stored in any float format, name or GGUF row order.
pub fn piece_digests(m: &Model, p: &Piece) -> Result<PieceDigests> {
    let t = &m.tensors[p.tensor];
    let mut exact = blake3::Hasher::new();
    let mut rounded = blake3::Hasher::new();
    for d in &p.shape {
        exact.update(&d.to_le_bytes());
        rounded.update(&d.to_le_bytes());
    }
    let row_len = t.row_len().max(1);
    let rows_per_chunk = (CHUNK_ELEMS as u64 / row_len).max(1);
    let (mut buf, mut bytes) = (Vec::new(), Vec::new());
    let mut r = p.rows.start;
    while r < p.rows.end {
        let end = (r + rows_per_chunk).min(p.rows.end);
        m.read_rows(t, r..end, &mut buf)?;
        bytes.clear();
        bytes.extend(buf.iter().flat_map(|&v| v.to_bits().to_le_bytes()));
        exact.update(&bytes);
        bytes.clear();
        bytes.extend(
            buf.iter()
                .flat_map(|&v| half::bf16::from_f32(v).to_bits().to_le_bytes()),
        );
        rounded.update(&bytes);
        r = end;
    }
    Ok(PieceDigests {
        exact: exact.finalize().to_hex().to_string(),
        bf16: rounded.finalize().to_hex().to_string(),
    })
}

/// Values sampled per piece to judge closeness without the other side's weights.
pub const SAMPLES: usize = 256;
pub const EXPERT_SAMPLES: usize = 64;

/// Seeded sample positions (flat indices, ascending) of a piece: a function of the shape and
/// the seed alone, so two models' pieces of one shape are sampled at the same places.
pub fn sample_positions(p: &Piece, seed: u64) -> Vec<u64> {
    let n: u64 = p.shape.iter().product();
    let want = if p.expert { EXPERT_SAMPLES } else { SAMPLES } as u64;
    let mut h = seed ^ 0xA076_1D64_78BD_642F;
    for d in &p.shape {
        h = (h ^ d).wrapping_mul(0xE703_7ED1_A0B4_28DB).rotate_left(31);
    }
    let mut out: Vec<u64> = if n <= want {
        (0..n).collect()
    } else {
        dokja_stats::random::sample_indices(h, n as usize, want as usize)
            .expect("want < n")
            .into_iter()
            .map(|i| i as u64)
            .collect()
    };
    out.sort_unstable();
    out
}

pub fn sample_values(m: &Model, p: &Piece, seed: u64) -> Result<Vec<f32>> {
    let t = &m.tensors[p.tensor];
    let row_len = t.row_len().max(1);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut loaded: Option<u64> = None;
    for pos in sample_positions(p, seed) {
        let row = p.rows.start + pos / row_len;
        if loaded != Some(row) {
            m.read_rows(t, row..row + 1, &mut buf)?;
            loaded = Some(row);
        }
        out.push(buf[(pos % row_len) as usize]);
    }
    Ok(out)
}

/// Closeness judged on the seeded samples; exact only if the full canonical digests agree.
pub fn sampled_closeness(
    a: Subject<'_>,
    pa: &Piece,
    b: Subject<'_>,
    pb: &Piece,
    seed: u64,
) -> Result<Closeness> {
    let sa = a.piece_samples(pa, seed)?;
    let sb = b.piece_samples(pb, seed)?;
    let (mut diff_sq, mut norm_sq, mut max_abs) = (0f64, 0f64, 0f64);
    for (&x, &y) in sa.iter().zip(&sb) {
        let d = (x - y) as f64;
        diff_sq += d * d;
        norm_sq += (x as f64) * (x as f64);
        max_abs = max_abs.max(d.abs());
    }
    let exact = sa.len() == sb.len()
        && diff_sq == 0.0
        && a.piece_digests(pa)?.exact == b.piece_digests(pb)?.exact;
    Ok(Closeness {
        relative_rms: (diff_sq / norm_sq.max(f64::MIN_POSITIVE)).sqrt(),
        max_abs_diff: max_abs,
        exact,
    })
}
