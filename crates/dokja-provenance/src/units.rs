//! Unit matching: after the residual bases are aligned, does each unit (row reading from, or
//! column writing to, the residual) of one model have a partner in the other pointing the
//! same way?
//!
//! Inheritance preserves individual units (a fine-tune moves each weight a little; a
//! permutation only reorders them); independent models, even trained on the same data, share
//! at most low-dimensional structure, not unit-for-unit directions (pitfall 14). Units are
//! sketched into k dimensions, so a layer costs one pass over its weights and the scores are
//! cosines of sketches.
//!
//! The comparison is asymmetric. The *query side* contributes a seeded sample of its units,
//! sketched with its own canonical projection (which depends only on the width and the seed,
//! never on the other model: this is what a fingerprint stores). The *partner side*
//! contributes all its units, sketched with that projection carried into its own basis by the
//! alignment.

use dokja_formats::Model;
use dokja_stats::Mat;

use crate::Result;
use crate::slots::{Orientation, Slot};

/// Rows decoded per read when a slot is streamed.
const CHUNK_ROWS_ELEMS: u64 = 1 << 20;

/// Query units sketched on the query side: `indices[i]` is the unit of row `i`.
#[derive(Clone, Debug)]
pub struct QuerySketch {
    /// Units of the slot (rows that read, or columns that write).
    pub n_units: usize,
    pub indices: Vec<usize>,
    /// Rows normalized.
    pub rows: Mat,
}

impl QuerySketch {
    /// The first `q` queries (query sets are prefixes of one seeded order).
    pub fn prefix(&self, q: usize) -> Result<QuerySketch> {
        let q = q.min(self.indices.len());
        let keep: Vec<usize> = (0..q).collect();
        Ok(QuerySketch {
            n_units: self.n_units,
            indices: self.indices[..q].to_vec(),
            rows: self.rows.select_rows(&keep)?,
        })
    }
}

/// The partner side's units: all of them (weights), or only a sample (a fingerprint).
#[derive(Clone, Debug)]
pub struct PartnerSketch {
    pub n_units: usize,
    /// Unit index of each row; `None` when every unit is present in order.
    pub indices: Option<Vec<usize>>,
    pub rows: Mat,
}

/// The canonical projection of a width: the identity up to `k`, else a seeded Gaussian
/// (width x k). Depends on nothing but the width and the seed, so both models of a pair, and
/// a fingerprint made long before, agree on it.
pub fn canonical_projection(width: usize, k: usize, seed: u64) -> Result<Mat> {
    if width <= k {
        Ok(Mat::identity(width))
    } else {
        Ok(dokja_stats::random::gaussian_projection(
            seed ^ width as u64,
            width,
            k,
        )?)
    }
}

/// A seed that names a slot by what it is (kind, layer, expert), not where it sits in a list,
/// so two models of the same architecture draw the same query units.
pub fn slot_seed(seed: u64, slot: &Slot) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for v in [
        slot.kind as u64 + 1,
        slot.layer.map_or(0, |l| l as u64 + 1),
        slot.expert.map_or(0, |e| e as u64 + 1),
        slot.shared_expert as u64,
    ] {
        h = (h ^ v).wrapping_mul(0x100_0000_01B3).rotate_left(29);
    }
    h
}

/// Deterministic choice of up to `max` query units out of `n`: a prefix of one seeded
/// permutation, so a smaller budget always picks a subset of a larger one.
pub fn queries(n: usize, max: usize, seed: u64) -> Vec<usize> {
    let mut p = dokja_stats::random::random_permutation(seed, 0, n);
    p.truncate(max);
    p
}

/// Reads a slot as stored (rows x cols) in f32.
pub fn read_slot(model: &Model, slot: &Slot) -> Result<Mat> {
    let t = &model.tensors[slot.tensor];
    let mut buf = Vec::new();
    model.read_rows(t, slot.rows.clone(), &mut buf)?;
    let (r, c) = slot.stored;
    Ok(Mat::from_vec(r, c, buf)?)
}

/// Stored rows `rows` of a slot (a stored row of a flattened convolution spans several
/// canonical rows).
fn read_stored_rows(
    model: &Model,
    slot: &Slot,
    rows: std::ops::Range<u64>,
    buf: &mut Vec<f32>,
) -> Result<()> {
    let t = &model.tensors[slot.tensor];
    let per = (slot.stored.1 as u64 / t.row_len().max(1)).max(1);
    model.read_rows(
        t,
        slot.rows.start + rows.start * per..slot.rows.start + rows.end * per,
        buf,
    )?;
    Ok(())
}

/// All units of a slot sketched with `g` (the side's projection, width x k), rows normalized.
pub fn partner_sketch(model: &Model, slot: &Slot, g: &Mat) -> Result<PartnerSketch> {
    let w = read_slot(model, slot)?;
    let mut units = match slot.orientation {
        Orientation::WritesResidual => g.transpose().matmul(&w)?.transpose(),
        _ => w.matmul(g)?,
    };
    units.normalize_rows();
    Ok(PartnerSketch {
        n_units: units.rows(),
        indices: None,
        rows: units,
    })
}

/// The query units of a slot sketched with `g`, rows normalized. Rows that read the residual
/// are read one by one; columns that write to it need one streamed pass over the slot.
pub fn query_sketch(model: &Model, slot: &Slot, indices: &[usize], g: &Mat) -> Result<QuerySketch> {
    let (n_units, width) = slot.units_by_width();
    // The query units at full width, one per row, then one product with g.
    let mut units = Mat::zeros(indices.len(), width);
    let mut buf = Vec::new();
    match slot.orientation {
        Orientation::WritesResidual => {
            // Stored [residual, units]: the query units are columns.
            let (rows, cols) = slot.stored;
            let per_chunk = (CHUNK_ROWS_ELEMS / cols.max(1) as u64).max(1);
            let mut r0 = 0u64;
            while r0 < rows as u64 {
                let r1 = (r0 + per_chunk).min(rows as u64);
                read_stored_rows(model, slot, r0..r1, &mut buf)?;
                for (i, row) in buf.chunks_exact(cols).enumerate() {
                    let r = r0 as usize + i;
                    for (qi, &u) in indices.iter().enumerate() {
                        units.row_mut(qi)[r] = row[u];
                    }
                }
                r0 = r1;
            }
        }
        _ => {
            for (qi, &u) in indices.iter().enumerate() {
                read_stored_rows(model, slot, u as u64..u as u64 + 1, &mut buf)?;
                units.row_mut(qi).copy_from_slice(&buf);
            }
        }
    }
    let mut rows = units.matmul(g)?;
    rows.normalize_rows();
    Ok(QuerySketch {
        n_units,
        indices: indices.to_vec(),
        rows,
    })
}

/// Per-unit best-partner cosines of the query units against the partner's units.
#[derive(Clone, Debug)]
pub struct UnitScore {
    /// Median over queries of the best partner's cosine.
    pub median_best: f64,
    /// Fraction of queries whose best partner has the same index (unit order preserved).
    pub same_index: f64,
    /// Median cosine between each query unit and the partner's unit of the same index, when
    /// both have the same number of units. No maximum over candidates is taken, so under no
    /// correspondence it sits near 0: the purest test of unit-for-unit inheritance.
    pub same_index_cosine: Option<f64>,
}

pub fn score(q: &QuerySketch, p: &PartnerSketch) -> Result<UnitScore> {
    let cos = q.rows.matmul_transpose(&p.rows)?;
    let m = cos.cols();
    let equal_units = q.n_units == p.n_units;
    let position: Option<std::collections::HashMap<usize, usize>> = p
        .indices
        .as_ref()
        .map(|ix| ix.iter().enumerate().map(|(pos, &u)| (u, pos)).collect());
    let unit_at = |pos: usize| p.indices.as_ref().map_or(pos, |ix| ix[pos]);
    let mut best = Vec::with_capacity(q.indices.len());
    let mut same = 0usize;
    let mut same_cos = Vec::new();
    for (i, row) in cos.iter_rows().enumerate() {
        let unit = q.indices[i];
        if equal_units {
            let pos = match &position {
                Some(map) => map.get(&unit).copied(),
                None => Some(unit),
            };
            if let Some(pos) = pos {
                same_cos.push(row[pos] as f64);
            }
        }
        let (mut arg, mut max) = (0, f32::NEG_INFINITY);
        for (j, &v) in row.iter().enumerate() {
            if v > max {
                max = v;
                arg = j;
            }
        }
        if m > 0 && unit_at(arg) == unit {
            same += 1;
        }
        best.push(max as f64);
    }
    Ok(UnitScore {
        median_best: crate::align::median(&mut best),
        same_index: same as f64 / q.indices.len().max(1) as f64,
        same_index_cosine: (equal_units && !same_cos.is_empty())
            .then(|| crate::align::median(&mut same_cos)),
    })
}
