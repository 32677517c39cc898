//! One streamed pass over a tensor computes everything a fingerprint needs of it: the
//! canonical digests and seeded samples of its pieces, the query units of its matrices and
//! the anchor rows of the token embedding, all from the same decoded chunk. Each byte of the
//! tensor is read and decoded once.
//!
//! The results are bit for bit those of the per-purpose readers (`piece_digests`,
//! `sample_values`, `query_sketch`, `gather_rows`): the hashers see the same byte stream in
//! any chunking, the query units are the same values multiplied by the same projection.

use std::collections::HashMap;

use dokja_formats::Model;
use dokja_stats::Mat;

use crate::Result;
use crate::identity::{Piece, sample_positions};
use crate::slots::{Orientation, Slot};
use crate::subject::PieceDigests;
use crate::units::QuerySketch;

/// Elements decoded per chunk (4 MiB of f32).
const CHUNK_ELEMS: u64 = 1 << 20;

/// What one tensor's pass must produce.
pub(crate) struct TensorJob<'p> {
    pub tensor: usize,
    /// (plan index, piece)
    pub pieces: Vec<(usize, &'p Piece)>,
    /// (plan index, slot, query unit indices)
    pub slots: Vec<(usize, &'p Slot, Vec<usize>)>,
    /// Embedding rows to keep (ascending ids), when this is the anchor tensor.
    pub anchors: Option<&'p [u64]>,
}

pub(crate) struct TensorResult {
    /// (plan index, digests, samples)
    pub pieces: Vec<(usize, PieceDigests, Vec<f32>)>,
    /// (plan index, query units at full width, one per row, in query order)
    pub units: Vec<(usize, Mat)>,
    pub anchors: Option<Mat>,
}

struct PieceState {
    index: usize,
    /// First and one-past-last flat element of the piece in the tensor.
    start: u64,
    end: u64,
    exact: blake3::Hasher,
    rounded: blake3::Hasher,
    positions: Vec<u64>,
    next: usize,
    samples: Vec<f32>,
}

struct SlotState<'p> {
    index: usize,
    slot: &'p Slot,
    start: u64,
    cols: u64,
    indices: Vec<usize>,
    units: Mat,
}

/// Streams `job.tensor` once. `progress` gets the bytes of the tensor read so far (deltas).
pub(crate) fn tensor_pass(
    model: &Model,
    job: &TensorJob<'_>,
    seed: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TensorResult> {
    let t = &model.tensors[job.tensor];
    let row_len = t.row_len().max(1);
    let mut pieces: Vec<PieceState> = job
        .pieces
        .iter()
        .map(|&(index, p)| {
            let mut exact = blake3::Hasher::new();
            let mut rounded = blake3::Hasher::new();
            for d in &p.shape {
                exact.update(&d.to_le_bytes());
                rounded.update(&d.to_le_bytes());
            }
            let positions = sample_positions(p, seed);
            PieceState {
                index,
                start: p.rows.start * row_len,
                end: p.rows.end * row_len,
                exact,
                rounded,
                samples: Vec::with_capacity(positions.len()),
                positions,
                next: 0,
            }
        })
        .collect();
    let mut slots: Vec<SlotState<'_>> = job
        .slots
        .iter()
        .map(|(index, slot, indices)| {
            let width = slot.units_by_width().1;
            SlotState {
                index: *index,
                slot,
                start: slot.rows.start * row_len,
                cols: slot.stored.1 as u64,
                units: Mat::zeros(indices.len(), width),
                indices: indices.clone(),
            }
        })
        .collect();
    let anchor_width = row_len as usize;
    let mut anchor_data: Vec<f32> = Vec::new();
    let mut anchor_next = 0usize;

    // Only the rows someone needs are read: all of them when a piece is digested.
    let (first_row, end_row) = needed_rows(job, t.n_rows());
    let rows_per_chunk = (CHUNK_ELEMS / row_len).max(1);
    let bytes_per_row = t.byte_len / t.n_rows().max(1);
    let mut buf = Vec::new();
    let mut bytes = Vec::new();
    let mut r0 = first_row;
    while r0 < end_row {
        let r1 = (r0 + rows_per_chunk).min(end_row);
        model.read_rows(t, r0..r1, &mut buf)?;
        let (g0, g1) = (r0 * row_len, r1 * row_len);
        for p in &mut pieces {
            let (a, b) = (p.start.max(g0), p.end.min(g1));
            if a >= b {
                continue;
            }
            let values = &buf[(a - g0) as usize..(b - g0) as usize];
            // Fixed-size writes into a sized buffer (vectorizable), not a byte-wise extend.
            bytes.resize(values.len() * 4, 0);
            for (dst, v) in bytes.chunks_exact_mut(4).zip(values) {
                dst.copy_from_slice(&v.to_bits().to_le_bytes());
            }
            p.exact.update(&bytes);
            bytes.truncate(values.len() * 2);
            for (dst, &v) in bytes.chunks_exact_mut(2).zip(values) {
                dst.copy_from_slice(&half::bf16::from_f32(v).to_bits().to_le_bytes());
            }
            p.rounded.update(&bytes);
            while let Some(&pos) = p.positions.get(p.next) {
                let global = p.start + pos;
                if global >= b {
                    break;
                }
                p.samples.push(buf[(global - g0) as usize]);
                p.next += 1;
            }
        }
        for s in &mut slots {
            gather_units(s, &buf, g0, g1);
        }
        if let Some(ids) = job.anchors {
            while let Some(&id) = ids.get(anchor_next) {
                if id >= r1 {
                    break;
                }
                let at = ((id - r0) * row_len) as usize;
                anchor_data.extend_from_slice(&buf[at..at + anchor_width]);
                anchor_next += 1;
            }
        }
        progress((r1 - r0) * bytes_per_row);
        r0 = r1;
    }
    let anchors = match job.anchors {
        Some(ids) => Some(Mat::from_vec(ids.len(), anchor_width, anchor_data)?),
        None => None,
    };
    Ok(TensorResult {
        pieces: pieces
            .into_iter()
            .map(|p| {
                (
                    p.index,
                    PieceDigests {
                        exact: p.exact.finalize().to_hex().to_string(),
                        bf16: p.rounded.finalize().to_hex().to_string(),
                    },
                    p.samples,
                )
            })
            .collect(),
        units: slots.into_iter().map(|s| (s.index, s.units)).collect(),
        anchors,
    })
}

/// The tensor rows a job needs: everything if a piece is digested, else the span of its
/// query rows and anchors.
fn needed_rows(job: &TensorJob<'_>, n_rows: u64) -> (u64, u64) {
    if !job.pieces.is_empty() {
        return (0, n_rows);
    }
    let mut lo = u64::MAX;
    let mut hi = 0;
    for (_, slot, _) in &job.slots {
        lo = lo.min(slot.rows.start);
        hi = hi.max(slot.rows.end);
    }
    if let Some(ids) = job.anchors
        && let (Some(&first), Some(&last)) = (ids.first(), ids.last())
    {
        lo = lo.min(first);
        hi = hi.max(last + 1);
    }
    if lo >= hi {
        (0, 0)
    } else {
        (lo, hi.min(n_rows))
    }
}

/// Copies the query units' values that fall in the chunk of flat elements `g0..g1`.
fn gather_units(s: &mut SlotState<'_>, buf: &[f32], g0: u64, g1: u64) {
    let cols = s.cols.max(1);
    let n_stored_rows = s.slot.stored.0 as u64;
    let (start, end) = (s.start, s.start + n_stored_rows * cols);
    let (a, b) = (start.max(g0), end.min(g1));
    if a >= b {
        return;
    }
    match s.slot.orientation {
        Orientation::WritesResidual => {
            // Units are columns: unit u of stored row r is element r * cols + u.
            let first_row = (a - start) / cols;
            let last_row = (b - start - 1) / cols;
            for r in first_row..=last_row {
                let row_start = start + r * cols;
                for (qi, &u) in s.indices.iter().enumerate() {
                    let global = row_start + u as u64;
                    if global >= a && global < b {
                        s.units.row_mut(qi)[r as usize] = buf[(global - g0) as usize];
                    }
                }
            }
        }
        _ => {
            // Units are stored rows: copy the part of each query row inside the chunk.
            for (qi, &u) in s.indices.iter().enumerate() {
                let (u0, u1) = (start + u as u64 * cols, start + (u as u64 + 1) * cols);
                let (x, y) = (u0.max(a), u1.min(b));
                if x >= y {
                    continue;
                }
                s.units.row_mut(qi)[(x - u0) as usize..(y - u0) as usize]
                    .copy_from_slice(&buf[(x - g0) as usize..(y - g0) as usize]);
            }
        }
    }
}

/// Canonical projections by width, drawn once per fingerprint rather than once per matrix.
pub(crate) struct Projections {
    k: usize,
    seed: u64,
    by_width: std::sync::Mutex<HashMap<usize, std::sync::Arc<Mat>>>,
}

impl Projections {
    pub fn new(k: usize, seed: u64) -> Projections {
        Projections {
            k,
            seed,
            by_width: Default::default(),
        }
    }

    pub fn get(&self, width: usize) -> Result<std::sync::Arc<Mat>> {
        if let Some(g) = self.by_width.lock().expect("not poisoned").get(&width) {
            return Ok(g.clone());
        }
        let g = std::sync::Arc::new(crate::units::canonical_projection(
            width, self.k, self.seed,
        )?);
        self.by_width
            .lock()
            .expect("not poisoned")
            .insert(width, g.clone());
        Ok(g)
    }
}

/// The query sketch from gathered units: the product with the width's canonical
/// projection, rows normalized (as `units::query_sketch`).
pub(crate) fn finish_sketch(
    slot: &Slot,
    indices: Vec<usize>,
    units: &Mat,
    g: &Mat,
) -> Result<QuerySketch> {
    let mut rows = units.matmul(g)?;
    rows.normalize_rows();
    Ok(QuerySketch {
        n_units: slot.units_by_width().0,
        indices,
        rows,
    })
}
