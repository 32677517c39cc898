//! What one side of a comparison is: a model's weights, or a fingerprint made from them.
//!
//! Every read the comparison makes goes through [`Subject`], so the statistics cannot tell
//! the two apart except where a fingerprint lacks data (then the caller is told, never given
//! a guess).

use dokja_formats::Model;
use dokja_schema::Component;
use dokja_stats::Mat;

use crate::fingerprint::Fingerprint;
use crate::identity::Piece;
use crate::slots::Slot;
use crate::units::{
    PartnerSketch, QuerySketch, canonical_projection, partner_sketch, queries, query_sketch,
    read_slot, slot_seed,
};
use crate::{CompareOptions, Result};

/// Query units per matrix that belongs to an expert (experts are many and matched in groups).
pub const EXPERT_QUERIES: usize = 64;

/// How many query units a slot contributes: every comparison and every fingerprint uses the
/// same budget, and smaller requests take a prefix.
pub fn query_budget(slot: &Slot, opts: &CompareOptions) -> usize {
    if slot.expert.is_some() {
        EXPERT_QUERIES.min(opts.query_units)
    } else {
        opts.query_units
    }
}

#[derive(Clone, Copy)]
pub enum Subject<'a> {
    Weights(&'a Model),
    Fingerprint(&'a Fingerprint),
}

/// Canonical content digests of a piece (a tensor or one expert's rows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceDigests {
    /// Shape and f32 values in canonical order, bit for bit.
    pub exact: String,
    /// Shape and values rounded to bf16: equal for copies stored in any float format.
    pub bf16: String,
}

impl<'a> Subject<'a> {
    /// The model's description (for a fingerprint, a skeleton without data).
    pub fn model(self) -> &'a Model {
        match self {
            Subject::Weights(m) => m,
            Subject::Fingerprint(f) => &f.skeleton,
        }
    }

    pub fn fingerprint(self) -> Option<&'a Fingerprint> {
        match self {
            Subject::Weights(_) => None,
            Subject::Fingerprint(f) => Some(f),
        }
    }

    pub fn is_fingerprint(self) -> bool {
        matches!(self, Subject::Fingerprint(_))
    }

    /// Whether embedding row `id` of `tensor` can be read.
    pub fn has_anchor(self, tensor: usize, id: u64) -> bool {
        match self {
            Subject::Weights(_) => true,
            Subject::Fingerprint(f) => f.anchor_row(tensor, id).is_some(),
        }
    }

    /// Rows `ids` of an embedding tensor.
    pub fn anchor_rows(self, tensor: usize, ids: &[u64]) -> Result<Mat> {
        match self {
            Subject::Weights(m) => {
                crate::align::gather_rows(m, &m.tensors[tensor], ids.iter().copied())
            }
            Subject::Fingerprint(f) => {
                let width = f.skeleton.tensors[tensor].row_len() as usize;
                let mut data = Vec::with_capacity(ids.len() * width);
                for &id in ids {
                    let row = f.anchor_row(tensor, id).ok_or_else(|| {
                        f.missing(&format!("embedding row {id} of tensor {tensor}"))
                    })?;
                    data.extend_from_slice(row);
                }
                Ok(Mat::from_vec(ids.len(), width, data)?)
            }
        }
    }

    /// A whole matrix (patch and position embeddings serve as anchors).
    pub fn matrix(self, component: Component, index: usize, slot: &Slot) -> Result<Mat> {
        match self {
            Subject::Weights(m) => read_slot(m, slot),
            Subject::Fingerprint(f) => f
                .matrix(component, index)
                .cloned()
                .ok_or_else(|| f.missing(&format!("{} matrix {index}", component.as_str()))),
        }
    }

    /// The slot's query units under its canonical projection, `None` if a fingerprint did
    /// not keep this slot (experts beyond its sample).
    pub fn query_sketch(
        self,
        component: Component,
        index: usize,
        slot: &Slot,
        opts: &CompareOptions,
    ) -> Result<Option<QuerySketch>> {
        match self {
            Subject::Weights(m) => {
                let (n_units, width) = slot.units_by_width();
                let idx = queries(
                    n_units,
                    query_budget(slot, opts),
                    slot_seed(opts.seed, slot),
                );
                let g = canonical_projection(width, opts.sketch_dim, opts.seed)?;
                Ok(Some(query_sketch(m, slot, &idx, &g)?))
            }
            Subject::Fingerprint(f) => Ok(f.sketch(component, index).cloned()),
        }
    }

    /// The slot's units as a partner: all of them under `g` for weights; for a fingerprint
    /// its stored query units, valid only when `g` is the slot's canonical projection (the
    /// caller checks the alignment is the stored order).
    pub fn partner_sketch(
        self,
        component: Component,
        index: usize,
        slot: &Slot,
        g: &Mat,
    ) -> Result<Option<PartnerSketch>> {
        match self {
            Subject::Weights(m) => Ok(Some(partner_sketch(m, slot, g)?)),
            Subject::Fingerprint(f) => Ok(f.sketch(component, index).map(|q| PartnerSketch {
                n_units: q.n_units,
                indices: Some(q.indices.clone()),
                rows: q.rows.clone(),
            })),
        }
    }

    pub fn has_slot(self, component: Component, index: usize) -> bool {
        match self {
            Subject::Weights(_) => true,
            Subject::Fingerprint(f) => f.sketch(component, index).is_some(),
        }
    }

    /// Values of a piece at its seeded sample positions (the same positions in any model for
    /// the same shape).
    pub fn piece_samples(self, piece: &Piece, seed: u64) -> Result<Vec<f32>> {
        match self {
            Subject::Weights(m) => crate::identity::sample_values(m, piece, seed),
            Subject::Fingerprint(f) => f
                .piece(piece)
                .map(|p| p.samples.clone())
                .ok_or_else(|| f.missing(&format!("samples of tensor {}", piece.tensor))),
        }
    }

    pub fn piece_digests(self, piece: &Piece) -> Result<PieceDigests> {
        match self {
            Subject::Weights(m) => crate::identity::piece_digests(m, piece),
            Subject::Fingerprint(f) => f
                .piece(piece)
                .map(|p| p.digests.clone())
                .ok_or_else(|| f.missing(&format!("digests of tensor {}", piece.tensor))),
        }
    }
}
