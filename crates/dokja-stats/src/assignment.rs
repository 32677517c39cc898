//! Rectangular linear sum assignment (the "Hungarian" matching of units).
//!
//! Why: permutation symmetry is the first thing a model thief uses (and what fine-tuning
//! never changes), so dokja matches units of model A to units of model B by maximizing total
//! cosine similarity before comparing them; depth or width pruning makes the problem
//! rectangular (pitfall 10), and expert order in MoE layers is arbitrary (pitfall 9).
//!
//! Algorithm: shortest augmenting paths with dual variables (Jonker & Volgenant 1987, in the
//! rectangular form of Crouse 2016, "On implementing 2D rectangular assignment algorithms",
//! the same algorithm as scipy's `linear_sum_assignment`). One Dijkstra-like search per row
//! over the columns, so the worst case is O(n^2 m) for n <= m; on near-diagonal matrices
//! (derived models) each search usually ends after one step, O(n m) total.
//! Ties are broken as scipy breaks them (columns scanned in the same order, and among equal
//! reduced costs a free column is preferred), so results can be cross-checked with scipy.
//!
//! Robustness: NaN or infinite entries are rejected before the search (scipy allows +inf as
//! "forbidden"; dokja never needs that and a NaN must never reach a verdict). Entries whose
//! magnitude exceeds [`MAX_ABS_WEIGHT`] are rejected too, so the dual variables cannot
//! overflow; every search step removes one column, so the search always terminates.

use crate::error::{Result, StatsError};
use crate::matrix::Mat;

/// Whether to minimize (costs) or maximize (similarities) the total weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    Minimize,
    Maximize,
}

/// Largest accepted |weight|: keeps sums of O(n) reduced costs far from f64 overflow.
pub const MAX_ABS_WEIGHT: f64 = 1e250;

/// An optimal matching: row `rows[k]` is matched to column `cols[k]`.
///
/// `min(n, m)` pairs; `rows` is sorted ascending (as scipy returns it).
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    /// Sum of the matched weights (original sign, whatever the objective).
    pub total: f64,
}

impl Assignment {
    /// Number of matched pairs.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Optimal assignment on a row-major `n x m` matrix `weights` (any rectangular shape; when
/// `n > m` the problem is solved on the transpose internally).
///
/// Errors on a length mismatch, a NaN/infinite entry, or |entry| > [`MAX_ABS_WEIGHT`].
pub fn linear_sum_assignment<T: Copy + Into<f64>>(
    weights: &[T],
    n: usize,
    m: usize,
    objective: Objective,
) -> Result<Assignment> {
    assignment_by(weights, n, m, objective, |x: T| x.into())
}

/// [`linear_sum_assignment`] on a [`Mat`] (e.g. a cosine matrix from
/// [`crate::matrix::cosine_similarity`]) without copying it to f64.
pub fn linear_sum_assignment_mat(weights: &Mat, objective: Objective) -> Result<Assignment> {
    linear_sum_assignment(
        weights.as_slice(),
        weights.rows(),
        weights.cols(),
        objective,
    )
}

/// Assignment on `value(weights[i*m + j])`: lets callers match on a transform (e.g. |cos|)
/// without materializing a transformed copy of a matrix that may be gigabytes large.
pub(crate) fn assignment_by<T: Copy, F: Fn(T) -> f64>(
    weights: &[T],
    n: usize,
    m: usize,
    objective: Objective,
    value: F,
) -> Result<Assignment> {
    match n.checked_mul(m) {
        Some(len) if len == weights.len() => {}
        _ => {
            return Err(StatsError::Shape(format!(
                "{} weights for a {n} x {m} assignment",
                weights.len()
            )));
        }
    }
    if n == 0 || m == 0 {
        return Ok(Assignment {
            rows: vec![],
            cols: vec![],
            total: 0.0,
        });
    }
    for (index, &w) in weights.iter().enumerate() {
        let v = value(w);
        if !v.is_finite() {
            return Err(StatsError::NonFinite {
                what: "assignment weights",
                index,
            });
        }
        if v.abs() > MAX_ABS_WEIGHT {
            return Err(StatsError::InvalidArgument(format!(
                "assignment weight {v:e} at index {index} exceeds {MAX_ABS_WEIGHT:e} in magnitude"
            )));
        }
    }
    let sign = match objective {
        Objective::Minimize => 1.0,
        Objective::Maximize => -1.0,
    };
    let (rows, cols) = if n <= m {
        let col4row = solve(weights, n, m, |x| sign * value(x))?;
        ((0..n).collect::<Vec<_>>(), col4row)
    } else {
        // Solve on the transpose (m rows <= n columns), then map back and sort by row.
        let t = transpose_copy(weights, n, m);
        let col4row = solve(&t, m, n, |x| sign * value(x))?;
        let mut pairs: Vec<(usize, usize)> = col4row
            .into_iter()
            .enumerate()
            .map(|(orig_col, orig_row)| (orig_row, orig_col))
            .collect();
        pairs.sort_unstable();
        pairs.into_iter().unzip()
    };
    let total = rows
        .iter()
        .zip(&cols)
        .map(|(&i, &j)| value(weights[i * m + j]))
        .sum();
    Ok(Assignment { rows, cols, total })
}

fn transpose_copy<T: Copy>(w: &[T], n: usize, m: usize) -> Vec<T> {
    let mut t = Vec::with_capacity(n * m);
    const B: usize = 64;
    // Fill in column-of-original order with blocking on rows for cache reuse.
    for j in 0..m {
        for i0 in (0..n).step_by(B) {
            for i in i0..(i0 + B).min(n) {
                t.push(w[i * m + j]);
            }
        }
    }
    t
}

const NONE: usize = usize::MAX;

/// Crouse's shortest augmenting path solver for `nr <= nc`, minimizing `cost`.
/// Returns the column assigned to each row.
fn solve<T: Copy, F: Fn(T) -> f64>(w: &[T], nr: usize, nc: usize, cost: F) -> Result<Vec<usize>> {
    debug_assert!(nr <= nc);
    let mut u = vec![0.0f64; nr];
    let mut v = vec![0.0f64; nc];
    let mut shortest = vec![f64::INFINITY; nc];
    let mut path = vec![NONE; nc];
    let mut col4row = vec![NONE; nr];
    let mut row4col = vec![NONE; nc];
    let mut remaining = vec![0usize; nc];
    let mut rows_seen: Vec<usize> = Vec::with_capacity(nr);
    let mut cols_seen: Vec<usize> = Vec::with_capacity(nc);

    for cur_row in 0..nr {
        // --- Dijkstra over columns from `cur_row` to the nearest free column ---
        let mut min_val = 0.0f64;
        let mut i = cur_row;
        let mut num_remaining = nc;
        for (it, r) in remaining.iter_mut().enumerate() {
            *r = nc - it - 1;
        }
        shortest.fill(f64::INFINITY);
        let mut sink = NONE;
        while sink == NONE {
            if num_remaining == 0 {
                // Unreachable with finite weights and nr <= nc; guard against looping.
                return Err(StatsError::Numerical(
                    "assignment search ran out of columns".into(),
                ));
            }
            rows_seen.push(i);
            let row = &w[i * nc..(i + 1) * nc];
            let ui = u[i];
            let mut index = NONE;
            let mut lowest = f64::INFINITY;
            for (it, &j) in remaining[..num_remaining].iter().enumerate() {
                let r = min_val + cost(row[j]) - ui - v[j];
                if r < shortest[j] {
                    path[j] = i;
                    shortest[j] = r;
                }
                let s = shortest[j];
                if s < lowest || (s == lowest && row4col[j] == NONE) {
                    lowest = s;
                    index = it;
                }
            }
            if index == NONE || !lowest.is_finite() {
                return Err(StatsError::Numerical(
                    "assignment reduced costs overflowed".into(),
                ));
            }
            min_val = lowest;
            let j = remaining[index];
            if row4col[j] == NONE {
                sink = j;
            } else {
                i = row4col[j];
            }
            cols_seen.push(j);
            num_remaining -= 1;
            remaining[index] = remaining[num_remaining];
        }

        // --- dual update (before augmenting: uses the old col4row) ---
        u[cur_row] += min_val;
        for &r in &rows_seen {
            if r != cur_row {
                u[r] += min_val - shortest[col4row[r]];
            }
        }
        for &c in &cols_seen {
            v[c] -= min_val - shortest[c];
        }
        rows_seen.clear();
        cols_seen.clear();

        // --- augment along the path back to `cur_row` ---
        let mut j = sink;
        loop {
            let r = path[j];
            row4col[j] = r;
            std::mem::swap(&mut col4row[r], &mut j);
            if r == cur_row {
                break;
            }
        }
    }
    Ok(col4row)
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

    /// Best total over all injections of the smaller side into the larger one.
    fn brute_force(w: &[f64], n: usize, m: usize, objective: Objective) -> f64 {
        fn rec(
            w: &[f64],
            n: usize,
            m: usize,
            i: usize,
            used: &mut Vec<bool>,
            acc: f64,
            best: &mut f64,
            sign: f64,
        ) {
            if i == n {
                if sign * acc < sign * *best {
                    *best = acc;
                }
                return;
            }
            for j in 0..m {
                if !used[j] {
                    used[j] = true;
                    rec(w, n, m, i + 1, used, acc + w[i * m + j], best, sign);
                    used[j] = false;
                }
            }
        }
        let (w, n, m) = if n <= m {
            (w.to_vec(), n, m)
        } else {
            (transpose_copy(w, n, m), m, n)
        };
        let sign = if objective == Objective::Minimize {
            1.0
        } else {
            -1.0
        };
        let mut best = sign * f64::INFINITY;
        rec(&w, n, m, 0, &mut vec![false; m], 0.0, &mut best, sign);
        best
    }

    fn check_valid(a: &Assignment, n: usize, m: usize) {
        assert_eq!(a.len(), n.min(m));
        let mut seen_r = vec![false; n];
        let mut seen_c = vec![false; m];
        for (&r, &c) in a.rows.iter().zip(&a.cols) {
            assert!(!seen_r[r] && !seen_c[c]);
            seen_r[r] = true;
            seen_c[c] = true;
        }
        assert!(a.rows.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn empty_and_degenerate_shapes() {
        let a = linear_sum_assignment::<f64>(&[], 0, 0, Objective::Minimize).unwrap();
        assert!(a.is_empty());
        let a = linear_sum_assignment::<f64>(&[], 0, 5, Objective::Maximize).unwrap();
        assert!(a.is_empty());
        let a = linear_sum_assignment::<f64>(&[], 3, 0, Objective::Maximize).unwrap();
        assert!(a.is_empty());
        assert!(linear_sum_assignment(&[1.0f64, 2.0], 2, 2, Objective::Minimize).is_err());
    }

    #[test]
    fn rejects_non_finite_and_huge() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let w = [1.0, bad, 3.0, 4.0];
            let err = linear_sum_assignment(&w, 2, 2, Objective::Minimize).unwrap_err();
            assert_eq!(
                err,
                StatsError::NonFinite {
                    what: "assignment weights",
                    index: 1
                }
            );
        }
        let w = [1.0, 1e300, 3.0, 4.0];
        assert!(linear_sum_assignment(&w, 2, 2, Objective::Minimize).is_err());
        let w32 = [1.0f32, f32::NAN];
        assert!(linear_sum_assignment(&w32, 1, 2, Objective::Maximize).is_err());
    }

    #[test]
    fn scipy_doc_example() {
        // scipy.optimize.linear_sum_assignment docstring: cost [[4,1,3],[2,0,5],[3,2,2]]
        // -> row_ind [0,1,2], col_ind [1,0,2], total 5.
        let c = [4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0];
        let a = linear_sum_assignment(&c, 3, 3, Objective::Minimize).unwrap();
        assert_eq!(a.rows, vec![0, 1, 2]);
        assert_eq!(a.cols, vec![1, 0, 2]);
        assert_eq!(a.total, 5.0);
        // Maximize on the same matrix: 4 + 5 + 2 = 11 via (0,0),(1,2),(2,1)? 4+5+2=11.
        let a = linear_sum_assignment(&c, 3, 3, Objective::Maximize).unwrap();
        assert_eq!(a.total, 11.0);
        assert_eq!(a.cols, vec![0, 2, 1]);
    }

    #[test]
    fn rectangular_both_orientations() {
        // 2 x 3: rows pick distinct columns.
        let w = [1.0, 9.0, 2.0, 1.0, 8.0, 7.0];
        let a = linear_sum_assignment(&w, 2, 3, Objective::Maximize).unwrap();
        assert_eq!(a.cols, vec![1, 2]);
        assert_eq!(a.total, 16.0);
        // Its transpose, 3 x 2.
        let t = transpose_copy(&w, 2, 3);
        let b = linear_sum_assignment(&t, 3, 2, Objective::Maximize).unwrap();
        assert_eq!(b.rows, vec![1, 2]);
        assert_eq!(b.cols, vec![0, 1]);
        assert_eq!(b.total, 16.0);
    }

    #[test]
    fn ties_prefer_identity_on_constant_matrix() {
        let w = vec![1.0f32; 25];
        let a = linear_sum_assignment(&w, 5, 5, Objective::Maximize).unwrap();
        check_valid(&a, 5, 5);
        assert_eq!(a.total, 5.0);
    }

    #[test]
    fn speed_sanity_300() {
        // A permuted near-identity similarity plus noise, and a random matrix: both must
        // solve quickly (no timing assertion, just completion and correctness of structure).
        let n = 300;
        let mut state = 0x9E3779B97F4A7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let perm: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
        let mut w = vec![0.0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                w[i * n + j] = 0.2 * next() + if perm[i] == j { 1.0 } else { 0.0 };
            }
        }
        let a = linear_sum_assignment(&w, n, n, Objective::Maximize).unwrap();
        assert_eq!(a.cols, perm);
        let r: Vec<f64> = (0..n * n).map(|_| next()).collect();
        let a = linear_sum_assignment(&r, n, n, Objective::Minimize).unwrap();
        check_valid(&a, n, n);
        // Optimal totals for uniform costs are ~ pi^2/6 ~ 1.64 for large n.
        assert!(a.total < 3.0, "{}", a.total);
        let r32: Vec<f32> = r.iter().map(|&x| x as f32).collect();
        let b = linear_sum_assignment(&r32[..n * 200], 200, n, Objective::Maximize).unwrap();
        check_valid(&b, 200, n);
    }

    proptest! {
        #[test]
        fn matches_brute_force(
            (n, m, w) in (0usize..6, 0usize..6).prop_flat_map(|(n, m)| {
                (Just(n), Just(m), prop::collection::vec(-100.0f64..100.0, n * m))
            }),
            maximize in any::<bool>(),
            integer in any::<bool>(),
        ) {
            // Integer-valued weights exercise ties.
            let w: Vec<f64> = if integer { w.iter().map(|x| (x / 25.0).round()).collect() } else { w };
            let objective = if maximize { Objective::Maximize } else { Objective::Minimize };
            let a = linear_sum_assignment(&w, n, m, objective).unwrap();
            check_valid(&a, n, m);
            if n > 0 && m > 0 {
                let best = brute_force(&w, n, m, objective);
                prop_assert!((a.total - best).abs() < 1e-9, "{} vs {}", a.total, best);
            }
            let recomputed: f64 = a.rows.iter().zip(&a.cols).map(|(&i, &j)| w[i * m + j]).sum();
            prop_assert!((recomputed - a.total).abs() < 1e-12);
        }

        #[test]
        fn permutation_recovered(n in 1usize..40, shift in 0usize..40, seed in any::<u64>()) {
            let perm: Vec<usize> = (0..n).map(|i| (i * 5 + shift) % n).collect();
            // Only a bijection if gcd(5, n) == 1.
            prop_assume!(n % 5 != 0);
            let mut s = seed | 1;
            let w = Mat::from_fn(n, n, |i, j| {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                let noise = (s >> 40) as f32 / (1u64 << 24) as f32 * 0.4;
                noise + if perm[i] == j { 1.0 } else { 0.0 }
            });
            let a = linear_sum_assignment_mat(&w, Objective::Maximize).unwrap();
            prop_assert_eq!(a.cols, perm);
        }
    }
}
