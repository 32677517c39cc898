//! Unit matching: after the residual bases are aligned, does each unit (row reading from, or
//! column writing to, the residual) of A have a partner in B pointing the same way?
//!
//! Inheritance preserves individual units (a fine-tune moves each weight a little; a
//! permutation only reorders them); independent models, even trained on the same data, share
//! at most low-dimensional structure, not unit-for-unit directions (pitfall 14). Each unit is
//! sketched into k dimensions with the alignment's projections, so a layer costs one pass over
//! its weights and the scores are cosines of sketches.

use dokja_formats::Model;
use dokja_stats::Mat;

use crate::Result;
use crate::slots::{Orientation, Slot};

/// A slot's units sketched into the common basis, rows normalized.
pub struct Sketch {
    pub units: Mat,
}

/// Reads a slot and sketches its units with `g` (the side's projection, width x k).
pub fn sketch(model: &Model, slot: &Slot, g: &Mat) -> Result<Sketch> {
    let t = &model.tensors[slot.tensor];
    let mut buf = Vec::new();
    model.read_rows(t, slot.rows.clone(), &mut buf)?;
    let (r, c) = slot.stored;
    let w = Mat::from_vec(r, c, buf)?;
    let mut units = match slot.orientation {
        Orientation::WritesResidual => g.transpose().matmul(&w)?.transpose(),
        _ => w.matmul(g)?,
    };
    units.normalize_rows();
    Ok(Sketch { units })
}

/// Per-unit best-partner cosines of A's query units against all of B's units.
#[derive(Clone, Debug)]
pub struct UnitScore {
    /// Median over queries of the best partner's cosine.
    pub median_best: f64,
    /// Fraction of queries whose best partner has the same index (unit order preserved).
    pub same_index: f64,
    /// Median cosine between each query unit and B's unit of the same index, when both have
    /// the same number of units. No maximum over candidates is taken, so under no
    /// correspondence it sits near 0: the purest test of unit-for-unit inheritance.
    pub same_index_cosine: Option<f64>,
}

pub fn score(a: &Sketch, b: &Sketch, queries: &[usize]) -> Result<UnitScore> {
    let qa = a.units.select_rows(queries)?;
    let cos = qa.matmul_transpose(&b.units)?;
    let m = cos.cols();
    let mut best = Vec::with_capacity(queries.len());
    let mut same = 0usize;
    let equal_units = a.units.rows() == b.units.rows();
    let mut same_cos = Vec::with_capacity(if equal_units { queries.len() } else { 0 });
    for (i, row) in cos.iter_rows().enumerate() {
        if equal_units {
            same_cos.push(row[queries[i]] as f64);
        }
        let (mut arg, mut max) = (0, f32::NEG_INFINITY);
        for (j, &v) in row.iter().enumerate() {
            if v > max {
                max = v;
                arg = j;
            }
        }
        if m > 0 && arg == queries[i] {
            same += 1;
        }
        best.push(max as f64);
    }
    Ok(UnitScore {
        median_best: crate::align::median(&mut best),
        same_index: same as f64 / queries.len().max(1) as f64,
        same_index_cosine: equal_units.then(|| crate::align::median(&mut same_cos)),
    })
}

/// Deterministic choice of up to `max` query units out of `n`.
pub fn queries(n: usize, max: usize, seed: u64) -> Vec<usize> {
    if n <= max {
        (0..n).collect()
    } else {
        dokja_stats::random::sample_indices(seed, n, max).expect("max < n")
    }
}
