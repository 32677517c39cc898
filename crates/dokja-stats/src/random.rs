//! Seeded randomness that a verdict can be reproduced from.
//!
//! Why: a report names its seeds, and anyone re-running dokja with them must get the same
//! projections, samples and permutation nulls, whatever the number of threads, the chunk
//! sizes used to stream a 100B-parameter checkpoint, or the order rows arrive in. So:
//!
//! - every random object is generated from ChaCha20 keyed by `(seed, domain)` (different uses
//!   of one seed never share a stream), with the ChaCha *stream number* set to the row index
//!   or replicate index: row i of a projection, or permutation r of a null, depends on
//!   nothing but `(seed, i)` / `(seed, r)`;
//! - integer and Gaussian variates are derived by fixed algorithms written here (Lemire's
//!   unbiased bounded integers, Fisher–Yates, Floyd's sampling, Box–Muller), not by `rand`'s
//!   distributions, whose algorithms may change between versions. (Box–Muller uses `ln`,
//!   `sqrt`, `sin`, `cos` from the platform's libm, so Gaussian values are reproducible on a
//!   given platform to the last bit and across platforms to ~1 ulp.)

use std::collections::HashSet;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::error::{Result, StatsError, check_finite};
use crate::matrix::{Mat, faer_par};

/// Domain separators: one seed, independent streams per use.
pub(crate) const DOMAIN_GAUSSIAN: u64 = 1;
pub(crate) const DOMAIN_SKETCH_LEFT: u64 = 2;
pub(crate) const DOMAIN_SAMPLE: u64 = 3;
pub(crate) const DOMAIN_PERMUTATION: u64 = 4;

/// SplitMix64's finalizer: a bijection on u64 with good avalanche.
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ChaCha20 generator for `(seed, domain)`, positioned at the start of `stream`.
/// Distinct `(seed, domain)` pairs give distinct keys (the first two key words are
/// bijections of `seed` and `domain`).
pub fn stream_rng(seed: u64, domain: u64, stream: u64) -> ChaCha20Rng {
    let w0 = mix64(seed);
    let w1 = mix64(domain ^ 0xD1B5_4A32_D192_ED03);
    let w2 = mix64(w0 ^ w1.rotate_left(17));
    let w3 = mix64(w2 ^ 0x8CB9_2BA7_2F3D_8DD7);
    let mut key = [0u8; 32];
    for (k, w) in [w0, w1, w2, w3].iter().enumerate() {
        key[8 * k..8 * k + 8].copy_from_slice(&w.to_le_bytes());
    }
    let mut rng = ChaCha20Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// Uniform integer in [0, n) for n > 0, unbiased (Lemire 2019).
pub fn bounded_u64<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    debug_assert!(n > 0);
    let mut m = (rng.next_u64() as u128) * (n as u128);
    let mut low = m as u64;
    if low < n {
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            m = (rng.next_u64() as u128) * (n as u128);
            low = m as u64;
        }
    }
    (m >> 64) as u64
}

/// Uniform f64 in the open interval (0, 1), 53 random bits.
fn open01<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Fills `out` with independent standard normals (Box–Muller, both outputs used).
pub fn fill_standard_normal<R: Rng + ?Sized>(rng: &mut R, out: &mut [f32]) {
    let mut chunks = out.chunks_exact_mut(2);
    for pair in &mut chunks {
        let (a, b) = box_muller(rng);
        pair[0] = a as f32;
        pair[1] = b as f32;
    }
    if let [last] = chunks.into_remainder() {
        *last = box_muller(rng).0 as f32;
    }
}

fn box_muller<R: Rng + ?Sized>(rng: &mut R) -> (f64, f64) {
    let r = (-2.0 * open01(rng).ln()).sqrt();
    let theta = 2.0 * std::f64::consts::PI * open01(rng);
    (r * theta.cos(), r * theta.sin())
}

/// In-place uniform shuffle (Fisher–Yates with unbiased bounded integers).
pub fn shuffle<R: Rng + ?Sized, T>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = bounded_u64(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// The uniformly random permutation of `0..n` for replicate `stream` of `seed`.
/// Replicate r depends only on (seed, r): a permutation null is identical whatever the
/// number of threads or the order in which replicates are evaluated.
pub fn random_permutation(seed: u64, stream: u64, n: usize) -> Vec<usize> {
    let mut rng = stream_rng(seed, DOMAIN_PERMUTATION, stream);
    let mut p: Vec<usize> = (0..n).collect();
    shuffle(&mut rng, &mut p);
    p
}

/// Writes rows `first_row .. first_row + out.len() / cols` of the standard-normal matrix of
/// `seed` with `cols` columns into `out` (row-major). Row i comes from ChaCha stream i, so any
/// chunking of the rows yields the same matrix.
pub fn gaussian_rows_into(seed: u64, first_row: u64, cols: usize, out: &mut [f32]) -> Result<()> {
    gaussian_rows_domain(seed, DOMAIN_GAUSSIAN, first_row, cols, out)
}

fn gaussian_rows_domain(
    seed: u64,
    domain: u64,
    first_row: u64,
    cols: usize,
    out: &mut [f32],
) -> Result<()> {
    if cols == 0 {
        return if out.is_empty() {
            Ok(())
        } else {
            Err(StatsError::Shape(
                "rows of zero columns cannot fill a buffer".into(),
            ))
        };
    }
    if !out.len().is_multiple_of(cols) {
        return Err(StatsError::Shape(format!(
            "buffer of {} values is not a whole number of {cols}-column rows",
            out.len()
        )));
    }
    for (k, row) in out.chunks_exact_mut(cols).enumerate() {
        let mut rng = stream_rng(seed, domain, first_row + k as u64);
        fill_standard_normal(&mut rng, row);
    }
    Ok(())
}

/// The `rows x cols` matrix of independent standard normals for `seed` (rows generated in
/// parallel; identical to any chunked generation with [`gaussian_rows_into`]).
pub fn gaussian_matrix(seed: u64, rows: usize, cols: usize) -> Mat {
    use rayon::prelude::*;
    let mut m = Mat::zeros(rows, cols);
    if cols == 0 {
        return m;
    }
    const ROWS_PER_TASK: usize = 64;
    m.as_mut_slice()
        .par_chunks_mut(ROWS_PER_TASK * cols)
        .enumerate()
        .for_each(|(c, chunk)| {
            // Cannot fail: the chunk is a whole number of rows and cols > 0.
            let _ = gaussian_rows_into(seed, (c * ROWS_PER_TASK) as u64, cols, chunk);
        });
    m
}

/// Seeded Gaussian random projection P (`in_dim x out_dim`, entries N(0, 1/out_dim)), so that
/// `x P` preserves squared norms and inner products in expectation (Johnson–Lindenstrauss).
/// Why: fingerprints of huge matrices (W P has out_dim columns instead of in_dim) that any
/// party can recompute from the seed, and that commute with row permutations of W.
pub fn gaussian_projection(seed: u64, in_dim: usize, out_dim: usize) -> Result<Mat> {
    if in_dim == 0 || out_dim == 0 {
        return Err(StatsError::InvalidArgument(format!(
            "projection dimensions must be positive, got {in_dim} x {out_dim}"
        )));
    }
    let mut p = gaussian_matrix(seed, in_dim, out_dim);
    let s = 1.0 / (out_dim as f32).sqrt();
    p.as_mut_slice().iter_mut().for_each(|x| *x *= s);
    Ok(p)
}

/// Streaming two-sided sketch `S = Q^T W P` of a matrix W (`n_rows x in_dim`) that is never
/// held in memory: rows of W are fed one at a time or in batches, in any order, tagged with
/// their row index.
///
/// P (`in_dim x out_dim`) is [`gaussian_projection`]`(seed, ..)`; Q (`n_rows x left_dim`) has
/// row i drawn from `(seed, i)` with entries N(0, 1/left_dim), so Q is never stored either.
/// Memory: P plus a `left_dim x out_dim` f64 accumulator. E||S||_F^2 = ||W||_F^2.
///
/// Why both sides: a 100B-parameter model's matrices (e.g. 7168 x 18432 per expert, hundreds
/// of experts) reduce to a few KB each, computed in one streaming pass; two models' sketches
/// with the same seed are comparable directly when their rows and columns correspond (copies,
/// fine-tunes, dtype or quantization changes). Row-permuted copies change S, so match units
/// first (or compare one-sided projections `W P` with [`ProjectionSketch::project_rows`]).
/// Rows with the same index fed twice are counted twice; partial sketches of disjoint row sets
/// can be combined with [`ProjectionSketch::merge`].
#[derive(Clone, Debug)]
pub struct ProjectionSketch {
    seed: u64,
    in_dim: usize,
    out_dim: usize,
    left_dim: usize,
    projection: Mat,
    sketch: Vec<f64>,
    rows_seen: u64,
}

impl ProjectionSketch {
    /// A new empty sketch. All dimensions must be positive.
    pub fn new(seed: u64, in_dim: usize, out_dim: usize, left_dim: usize) -> Result<Self> {
        if left_dim == 0 {
            return Err(StatsError::InvalidArgument(
                "left sketch dimension must be positive".into(),
            ));
        }
        Ok(ProjectionSketch {
            seed,
            in_dim,
            out_dim,
            left_dim,
            projection: gaussian_projection(seed, in_dim, out_dim)?,
            sketch: vec![0.0; left_dim * out_dim],
            rows_seen: 0,
        })
    }

    /// Adds row `row_index` of W.
    pub fn update(&mut self, row_index: u64, row: &[f32]) -> Result<()> {
        self.update_rows(row_index, row)
    }

    /// Adds consecutive rows `first_row_index ..` of W, given row-major in `rows`. Batches are
    /// much faster than single rows (one GEMM per batch).
    pub fn update_rows(&mut self, first_row_index: u64, rows: &[f32]) -> Result<()> {
        if !rows.len().is_multiple_of(self.in_dim) {
            return Err(StatsError::Shape(format!(
                "{} values are not whole rows of length {}",
                rows.len(),
                self.in_dim
            )));
        }
        check_finite("sketched rows", rows)?;
        let count = rows.len() / self.in_dim;
        if count == 0 {
            return Ok(());
        }
        // Y = rows P (count x out_dim), f32 GEMM.
        let mut y = vec![0.0f32; count * self.out_dim];
        matmul(
            MatMut::from_row_major_slice_mut(&mut y, count, self.out_dim),
            Accum::Replace,
            MatRef::from_row_major_slice(rows, count, self.in_dim),
            self.projection.faer(),
            1.0f32,
            faer_par(count * self.in_dim * self.out_dim),
        );
        // Q rows for these indices, scaled; then S += Q^T Y in f64.
        let mut q = vec![0.0f32; count * self.left_dim];
        gaussian_rows_domain(
            self.seed,
            DOMAIN_SKETCH_LEFT,
            first_row_index,
            self.left_dim,
            &mut q,
        )?;
        let qs = 1.0 / (self.left_dim as f64).sqrt();
        let q64: Vec<f64> = q.iter().map(|&v| v as f64 * qs).collect();
        let y64: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        matmul(
            MatMut::from_row_major_slice_mut(&mut self.sketch, self.left_dim, self.out_dim),
            Accum::Add,
            MatRef::from_row_major_slice(&q64, count, self.left_dim).transpose(),
            MatRef::from_row_major_slice(&y64, count, self.out_dim),
            1.0f64,
            faer_par(count * self.left_dim * self.out_dim),
        );
        self.rows_seen += count as u64;
        Ok(())
    }

    /// One-sided projection `rows P` (`count x out_dim`) with this sketch's P, without
    /// accumulating anything.
    pub fn project_rows(&self, rows: &[f32]) -> Result<Mat> {
        if !rows.len().is_multiple_of(self.in_dim) {
            return Err(StatsError::Shape(format!(
                "{} values are not whole rows of length {}",
                rows.len(),
                self.in_dim
            )));
        }
        check_finite("projected rows", rows)?;
        let m = Mat::from_vec(rows.len() / self.in_dim, self.in_dim, rows.to_vec())?;
        m.matmul(&self.projection)
    }

    /// Adds another partial sketch of the same (seed, dimensions), e.g. from another shard.
    pub fn merge(&mut self, other: &ProjectionSketch) -> Result<()> {
        if (self.seed, self.in_dim, self.out_dim, self.left_dim)
            != (other.seed, other.in_dim, other.out_dim, other.left_dim)
        {
            return Err(StatsError::InvalidArgument(
                "cannot merge sketches with different seeds or dimensions".into(),
            ));
        }
        for (a, b) in self.sketch.iter_mut().zip(&other.sketch) {
            *a += b;
        }
        self.rows_seen += other.rows_seen;
        Ok(())
    }

    /// The `left_dim x out_dim` sketch, row-major.
    pub fn sketch(&self) -> &[f64] {
        &self.sketch
    }

    /// `(left_dim, out_dim)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.left_dim, self.out_dim)
    }

    /// Number of rows added so far (including merged sketches).
    pub fn rows_seen(&self) -> u64 {
        self.rows_seen
    }

    /// The projection P.
    pub fn projection(&self) -> &Mat {
        &self.projection
    }
}

/// `k` distinct indices from `0..n`, uniformly among all k-subsets, sorted ascending;
/// deterministic in `(seed, n, k)`. Floyd's algorithm: O(k) time and memory whatever n, so it
/// can sample positions in a tensor of 10^11 elements. Errors if k > n.
pub fn sample_indices(seed: u64, n: usize, k: usize) -> Result<Vec<usize>> {
    if k > n {
        return Err(StatsError::InvalidArgument(format!(
            "cannot sample {k} distinct indices from {n}"
        )));
    }
    let mut rng = stream_rng(seed, DOMAIN_SAMPLE, 0);
    let mut chosen: HashSet<usize> = HashSet::with_capacity(k);
    for j in (n - k)..n {
        let t = bounded_u64(&mut rng, j as u64 + 1) as usize;
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut out: Vec<usize> = chosen.into_iter().collect();
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
#[allow(
    clippy::excessive_precision,
    clippy::needless_range_loop,
    clippy::too_many_arguments,
    clippy::manual_is_multiple_of
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let mut a = stream_rng(7, DOMAIN_GAUSSIAN, 3);
        let mut b = stream_rng(7, DOMAIN_GAUSSIAN, 3);
        assert_eq!(a.next_u64(), b.next_u64());
        let x = stream_rng(7, DOMAIN_GAUSSIAN, 4).next_u64();
        let y = stream_rng(7, DOMAIN_SAMPLE, 3).next_u64();
        let z = stream_rng(8, DOMAIN_GAUSSIAN, 3).next_u64();
        let w = stream_rng(7, DOMAIN_GAUSSIAN, 3).next_u64();
        assert!(x != w && y != w && z != w);
    }

    #[test]
    fn gaussian_chunking_invariant() {
        let full = gaussian_matrix(42, 150, 7);
        let mut pieces = vec![0.0f32; 150 * 7];
        for (start, len) in [(0usize, 1usize), (1, 63), (64, 50), (114, 36)] {
            gaussian_rows_into(
                42,
                start as u64,
                7,
                &mut pieces[start * 7..(start + len) * 7],
            )
            .unwrap();
        }
        assert_eq!(full.as_slice(), &pieces[..]);
        assert!(gaussian_rows_into(1, 0, 3, &mut [0.0; 4]).is_err());
    }

    #[test]
    fn gaussian_moments() {
        let m = gaussian_matrix(1, 400, 501);
        let v = m.as_slice();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let kurt = v.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n / (var * var);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
        assert!((kurt - 3.0).abs() < 0.05, "{kurt}");
        let p = gaussian_projection(1, 400, 501).unwrap();
        let s = (1.0 / 501f32).sqrt();
        assert!((p.as_slice()[5] - m.as_slice()[5] * s).abs() < 1e-7);
        assert!(gaussian_projection(1, 0, 5).is_err());
    }

    #[test]
    fn permutations_are_uniform_ish_and_deterministic() {
        assert_eq!(random_permutation(3, 9, 50), random_permutation(3, 9, 50));
        assert_ne!(random_permutation(3, 9, 50), random_permutation(3, 10, 50));
        // Position of element 0 over many replicates of n = 5 is ~uniform.
        let mut counts = [0usize; 5];
        for r in 0..5000 {
            let p = random_permutation(11, r, 5);
            counts[p.iter().position(|&x| x == 0).unwrap()] += 1;
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn sketch_streaming_equals_batch_and_preserves_norm() {
        let (n, d) = (300, 64);
        let w = gaussian_matrix(5, n, d);
        let mut one = ProjectionSketch::new(9, d, 16, 8).unwrap();
        one.update_rows(0, w.as_slice()).unwrap();
        // Rows in reverse order, one by one, split across two sketches then merged.
        let mut a = ProjectionSketch::new(9, d, 16, 8).unwrap();
        let mut b = ProjectionSketch::new(9, d, 16, 8).unwrap();
        for i in (0..n).rev() {
            let s = if i % 2 == 0 { &mut a } else { &mut b };
            s.update(i as u64, w.row(i)).unwrap();
        }
        a.merge(&b).unwrap();
        assert_eq!(a.rows_seen(), n as u64);
        for (x, y) in one.sketch().iter().zip(a.sketch()) {
            assert!((x - y).abs() < 1e-3 * (1.0 + x.abs()), "{x} vs {y}");
        }
        // E||S||^2 = ||W||^2 (loose check: 128 sketch entries).
        let s2: f64 = one.sketch().iter().map(|x| x * x).sum();
        let w2 = w.frobenius_norm().powi(2);
        assert!((s2 / w2 - 1.0).abs() < 0.5, "{}", s2 / w2);
        assert!(one.update(0, &[1.0; 3]).is_err());
        assert!(one.update(0, &[f32::NAN; 64]).is_err());
        let other = ProjectionSketch::new(10, d, 16, 8).unwrap();
        assert!(one.merge(&other).is_err());
        assert!(ProjectionSketch::new(1, 4, 4, 0).is_err());
        let pr = one.project_rows(w.as_slice()).unwrap();
        assert_eq!(pr.shape(), (n, 16));
    }

    #[test]
    fn sample_indices_cases() {
        assert_eq!(sample_indices(1, 5, 5).unwrap(), vec![0, 1, 2, 3, 4]);
        assert!(sample_indices(1, 5, 0).unwrap().is_empty());
        assert!(sample_indices(1, 5, 6).is_err());
        let big = sample_indices(2, 100_000_000_000, 1000).unwrap();
        assert_eq!(big.len(), 1000);
        // Inclusion frequency of each index ~ k/n.
        let mut counts = [0usize; 10];
        for s in 0..4000 {
            for i in sample_indices(s, 10, 3).unwrap() {
                counts[i] += 1;
            }
        }
        for c in counts {
            assert!((1050..1350).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn bounded_is_in_range() {
        let mut rng = stream_rng(0, 0, 0);
        for n in [1u64, 2, 3, 7, 1 << 40, u64::MAX] {
            for _ in 0..100 {
                assert!(bounded_u64(&mut rng, n) < n);
            }
        }
    }

    proptest! {
        #[test]
        fn sample_indices_distinct_sorted(seed in any::<u64>(), n in 0usize..500, frac in 0.0f64..1.0) {
            let k = (n as f64 * frac) as usize;
            let s = sample_indices(seed, n, k).unwrap();
            prop_assert_eq!(s.len(), k);
            prop_assert!(s.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(s.iter().all(|&i| i < n));
            prop_assert_eq!(s, sample_indices(seed, n, k).unwrap());
        }

        #[test]
        fn permutation_is_bijection(seed in any::<u64>(), stream in any::<u64>(), n in 0usize..300) {
            let mut p = random_permutation(seed, stream, n);
            p.sort_unstable();
            prop_assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
    }
}
