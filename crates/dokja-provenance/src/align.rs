//! Aligning the residual basis of B to A's. Hidden dimensions of independently initialized
//! models have no correspondence; a derived model keeps its parent's (possibly permuted,
//! sign-flipped or rotated). Anchors are rows that mean the same thing in both models: the
//! embeddings of shared token *strings* for a language model, pixels of the patch embedding
//! and positions for a vision tower.
//!
//! The result is expressed as two projection matrices G_A (d_A x k) and G_B (d_B x k) such
//! that W_A G_A and W_B G_B are the same units sketched in one common basis: a signed
//! permutation scatters the rows of a seeded Gaussian, a rotation folds R^T into it. No
//! rotated copy of a weight matrix is ever formed.

use dokja_formats::{Model, TensorInfo};
use dokja_stats::Mat;
use dokja_stats::procrustes::{orthogonal_procrustes, signed_permutation_alignment};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::subject::Subject;

/// A signed permutation whose matched anchor columns correlate this well (median |r|) is
/// inherited: independent bases give |r| of order 1/sqrt(anchors), and a rotation spreads
/// each column over many.
pub const PERMUTATION_FIT_MIN: f64 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignmentKind {
    /// Same width, no anchors: compared in stored order.
    Identity,
    SignedPermutation,
    Rotation,
    /// Widths differ and nothing to align them with.
    Unaligned,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AlignmentSummary {
    pub kind: AlignmentKind,
    pub anchor_source: String,
    pub anchors: usize,
    pub width_a: usize,
    pub width_b: usize,
    /// Residual dimensions put in correspondence.
    pub aligned_dims: usize,
    /// Median |correlation| of the matched anchor columns under the signed permutation.
    pub permutation_fit: Option<f64>,
    /// Whether the permutation found is the identity (same order of hidden dimensions).
    pub permutation_is_identity: Option<bool>,
    /// Fraction of held-out anchor variance the rotation explains (1 - relative residual).
    pub rotation_fit: Option<f64>,
}

pub struct Alignment {
    pub summary: AlignmentSummary,
    /// Columns of A and B in correspondence, with B's signs (permutation and identity).
    cols_a: Vec<usize>,
    cols_b: Vec<usize>,
    signs: Vec<f32>,
    /// R (d_A x d_B) with X_A R ~ X_B, for rotations.
    rotation: Option<Mat>,
    /// Held-out anchors (rows of A and B), for the embedding statistic.
    pub held_out: Option<(Mat, Mat)>,
}

/// Anchor rows of both models: the same n observations in each residual basis.
pub struct Anchors {
    pub source: String,
    pub a: Mat,
    pub b: Mat,
}

impl Alignment {
    pub fn identity(width: usize) -> Self {
        Alignment {
            summary: AlignmentSummary {
                kind: AlignmentKind::Identity,
                anchor_source: "none (same width, stored order)".into(),
                anchors: 0,
                width_a: width,
                width_b: width,
                aligned_dims: width,
                permutation_fit: None,
                permutation_is_identity: None,
                rotation_fit: None,
            },
            cols_a: (0..width).collect(),
            cols_b: (0..width).collect(),
            signs: vec![1.0; width],
            rotation: None,
            held_out: None,
        }
    }

    pub fn unaligned(width_a: usize, width_b: usize) -> Self {
        Alignment {
            summary: AlignmentSummary {
                kind: AlignmentKind::Unaligned,
                anchor_source: "none".into(),
                anchors: 0,
                width_a,
                width_b,
                aligned_dims: 0,
                permutation_fit: None,
                permutation_is_identity: None,
                rotation_fit: None,
            },
            cols_a: Vec::new(),
            cols_b: Vec::new(),
            signs: Vec::new(),
            rotation: None,
            held_out: None,
        }
    }

    /// Fits the alignment on even-numbered anchors and keeps the odd ones held out.
    pub fn fit(anchors: Anchors) -> Result<Self> {
        let (wa, wb) = (anchors.a.cols(), anchors.b.cols());
        let n = anchors.a.rows();
        let fit_rows: Vec<usize> = (0..n).step_by(2).collect();
        let held_rows: Vec<usize> = (1..n).step_by(2).collect();
        let mut fa = anchors.a.select_rows(&fit_rows)?;
        let mut fb = anchors.b.select_rows(&fit_rows)?;
        let mean_a = fa.centre_columns();
        let mean_b = fb.centre_columns();
        let mut ha = anchors.a.select_rows(&held_rows)?;
        let mut hb = anchors.b.select_rows(&held_rows)?;
        subtract_columns(&mut ha, &mean_a);
        subtract_columns(&mut hb, &mean_b);

        let cos = dokja_stats::cosine_similarity(&fa.transpose(), &fb.transpose())?;
        let perm = signed_permutation_alignment(&cos)?;
        let mut abs: Vec<f64> = perm.cosines.iter().map(|c| c.abs()).collect();
        let permutation_fit = median(&mut abs);
        let mut summary = AlignmentSummary {
            kind: AlignmentKind::SignedPermutation,
            anchor_source: anchors.source,
            anchors: n,
            width_a: wa,
            width_b: wb,
            aligned_dims: perm.rows.len(),
            permutation_fit: Some(permutation_fit),
            permutation_is_identity: Some(perm.rows.iter().zip(&perm.cols).all(|(r, c)| r == c)),
            rotation_fit: None,
        };
        if permutation_fit >= PERMUTATION_FIT_MIN || wa != wb {
            return Ok(Alignment {
                summary,
                cols_a: perm.rows.clone(),
                cols_b: perm.cols.clone(),
                signs: perm.signs.to_vec(),
                rotation: None,
                held_out: Some((ha, hb)),
            });
        }
        // Scale B's anchors to A's norm so the rotation, not a scale, absorbs the fit.
        let scale = (fa.frobenius_norm() / fb.frobenius_norm().max(f64::MIN_POSITIVE)) as f32;
        let fb_scaled = Mat::from_vec(
            fb.rows(),
            fb.cols(),
            fb.as_slice().iter().map(|v| v * scale).collect(),
        )?;
        let fit = orthogonal_procrustes(&fa, &fb_scaled)?;
        let predicted = ha.matmul(&fit.rotation)?;
        let hb_scaled: Vec<f32> = hb.as_slice().iter().map(|v| v * scale).collect();
        let (mut resid, mut total) = (0f64, 0f64);
        for (p, t) in predicted.as_slice().iter().zip(&hb_scaled) {
            resid += ((p - t) as f64).powi(2);
            total += (*t as f64).powi(2);
        }
        summary.kind = AlignmentKind::Rotation;
        summary.aligned_dims = wa;
        summary.rotation_fit = Some(1.0 - resid / total.max(f64::MIN_POSITIVE));
        Ok(Alignment {
            summary,
            cols_a: Vec::new(),
            cols_b: Vec::new(),
            signs: Vec::new(),
            rotation: Some(fit.rotation),
            held_out: Some((ha, hb)),
        })
    }

    pub fn aligned_dims(&self) -> usize {
        self.summary.aligned_dims
    }

    /// G_A and G_B: projections of A's and B's residual widths into one k-dimensional
    /// sketch space. The query side keeps its canonical projection (see
    /// [`crate::units::canonical_projection`]); the other side's is that projection carried
    /// into its own basis by the alignment.
    pub fn projections(&self, k: usize, seed: u64, query_is_a: bool) -> Result<(Mat, Mat)> {
        let (wa, wb) = (self.summary.width_a, self.summary.width_b);
        let (wq, wp) = if query_is_a { (wa, wb) } else { (wb, wa) };
        let omega = crate::units::canonical_projection(wq, k, seed)?;
        let carried = match &self.rotation {
            // X_A R ~ X_B: a row w of B acts in A's basis as w R^T, a row of A in B's as w R.
            Some(r) if query_is_a => r.transpose().matmul(&omega)?,
            Some(r) => r.matmul(&omega)?,
            None => {
                let mut g = Mat::zeros(wp, omega.cols());
                for (i, (&ca, &cb)) in self.cols_a.iter().zip(&self.cols_b).enumerate() {
                    let (cq, cp) = if query_is_a { (ca, cb) } else { (cb, ca) };
                    let s = self.signs[i];
                    for (dst, &v) in g.row_mut(cp).iter_mut().zip(omega.row(cq)) {
                        *dst = s * v;
                    }
                }
                g
            }
        };
        Ok(if query_is_a {
            (omega, carried)
        } else {
            (carried, omega)
        })
    }

    /// Whether B's basis is A's in stored order (no permutation, sign flip or rotation): then
    /// both sides' canonical projections agree and two fingerprints can be compared unit by
    /// unit.
    pub fn is_stored_order(&self) -> bool {
        let s = &self.summary;
        s.width_a == s.width_b
            && self.rotation.is_none()
            && s.aligned_dims == s.width_a
            && self.cols_a.iter().zip(&self.cols_b).all(|(a, b)| a == b)
            && self.signs.iter().all(|&x| x > 0.0)
    }

    /// Whether the anchors show B's residual basis to be A's, transformed: a signed
    /// permutation or a rotation that explains held-out anchors well.
    pub fn shows_inherited_basis(&self) -> bool {
        let s = &self.summary;
        match s.kind {
            AlignmentKind::SignedPermutation => {
                s.permutation_fit.is_some_and(|f| f >= PERMUTATION_FIT_MIN)
            }
            AlignmentKind::Rotation => s.rotation_fit.is_some_and(|f| f >= 0.5),
            _ => false,
        }
    }
}

fn subtract_columns(m: &mut Mat, means: &[f64]) {
    let cols = m.cols();
    for row in m.as_mut_slice().chunks_mut(cols.max(1)) {
        for (v, mean) in row.iter_mut().zip(means) {
            *v -= *mean as f32;
        }
    }
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Anchors of a language model: embedding rows of token strings both tokenizers share
/// (normalized, so byte-level "Ġthe" meets SentencePiece "▁the"), special tokens excluded,
/// in A's id order (frequent tokens first in BPE vocabularies), at most `max` of them.
pub fn token_anchors(
    a: Subject<'_>,
    ea: usize,
    b: Subject<'_>,
    eb: usize,
    max: usize,
) -> Result<Option<Anchors>> {
    let (ma, mb) = (a.model(), b.model());
    let (Some(ta), Some(tb)) = (
        ma.sidecars.tokenizer.as_ref(),
        mb.sidecars.tokenizer.as_ref(),
    ) else {
        return Ok(None);
    };
    let (rows_a, rows_b) = (ma.tensors[ea].shape[0], mb.tensors[eb].shape[0]);
    let special_a: std::collections::HashSet<u32> =
        ta.special_tokens.iter().map(|s| s.id).collect();
    let special_b: std::collections::HashSet<u32> =
        tb.special_tokens.iter().map(|s| s.id).collect();
    let mut index_b = std::collections::HashMap::with_capacity(tb.vocab.len());
    for id in 0..tb.vocab.len() {
        if special_b.contains(&(id as u32))
            || (id as u64) >= rows_b
            || tb.vocab[id].is_empty()
            || !b.has_anchor(eb, id as u64)
        {
            continue;
        }
        if let Some(s) = tb.normalized(id) {
            index_b.entry(s).or_insert(id);
        }
    }
    let mut pairs = Vec::new();
    for id in 0..ta.vocab.len() {
        if pairs.len() >= max {
            break;
        }
        if special_a.contains(&(id as u32))
            || (id as u64) >= rows_a
            || ta.vocab[id].is_empty()
            || !a.has_anchor(ea, id as u64)
        {
            continue;
        }
        if let Some(&jb) = ta.normalized(id).and_then(|s| index_b.get(&s)) {
            pairs.push((id as u64, jb as u64));
        }
    }
    if pairs.len() < MIN_ANCHORS {
        return Ok(None);
    }
    let ids_a: Vec<u64> = pairs.iter().map(|p| p.0).collect();
    let ids_b: Vec<u64> = pairs.iter().map(|p| p.1).collect();
    Ok(Some(Anchors {
        source: format!("embeddings of {} shared token strings", pairs.len()),
        a: a.anchor_rows(ea, &ids_a)?,
        b: b.anchor_rows(eb, &ids_b)?,
    }))
}

/// Fewer shared anchors than this cannot align a residual basis of any real width.
pub const MIN_ANCHORS: usize = 32;

pub fn gather_rows(m: &Model, t: &TensorInfo, rows: impl Iterator<Item = u64>) -> Result<Mat> {
    let width = t.row_len() as usize;
    let mut data = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0;
    for r in rows {
        m.read_rows(t, r..r + 1, &mut buf)?;
        data.extend_from_slice(&buf);
        n += 1;
    }
    Ok(Mat::from_vec(n, width, data)?)
}
