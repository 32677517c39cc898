//! Unit-matching statistics (Zhu et al.'s phi_U and dokja's variants) and permutation nulls.
//!
//! Setting: rows of `a` and `b` are "units" of one layer of two models (e.g. MLP up-projection
//! rows, after the residual dimensions they are expressed in were aligned). Under
//! H0 = "B was initialized independently of A", standard initializations make B's units
//! exchangeable: B and Pi B (rows permuted by a uniformly random Pi) have the same
//! distribution, independently of A. A derived model keeps unit i of its parent at index i
//! (fine-tuning never reorders units); a copy that was deliberately permuted keeps the units
//! but at permuted indices, which the matching undoes.
//!
//! Statistics of one matching (cosine matrix -> maximum-weight assignment):
//! - [`phi_u`]: Zhu et al. (ICML 2025): Spearman correlation between the matched index and
//!   the unit's own index.
//! - [`matched_identity_fraction`]: the fraction of units whose matched partner has the same
//!   index. dokja's main statistic may use this one instead: it is what only inheritance
//!   preserves (pitfall 14: independent models trained on the same data share low-rank
//!   structure and can score high *similarity*, but they have no reason to put corresponding
//!   units at the same index), and its null distribution is known *exactly* (see
//!   [`identity_count_logp`]), so no permutation sampling and no 1/(T+1) floor are needed.
//! - [`mean_matched_cosine`]: how alike the matched units are (effect size; near 1 for
//!   copies and light fine-tunes). It is invariant to permuting B's units, so a permutation
//!   null says nothing about it: calibrate it against unrelated model pairs instead.
//!
//! [`permutation_null`] evaluates any statistic under T random row permutations of one side,
//! deterministically per seed (one ChaCha stream per replicate index), in parallel.

use rayon::prelude::*;

use crate::assignment::{Objective, linear_sum_assignment_mat};
use crate::error::{Result, StatsError};
use crate::matrix::{Mat, cosine_similarity};
use crate::pvalue::{EmpiricalPValue, GaussianTail, LogP, empirical_pvalue, gaussian_tail};
use crate::random::random_permutation;
use crate::similarity::spearman;
use crate::special::{ln_binomial, ln_factorial, log_normal_sf, log_sum_exp};

/// A maximum-cosine matching between the units (rows) of A and B.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitMatching {
    /// Unit of A (ascending).
    pub rows: Vec<usize>,
    /// Unit of B matched to `rows[k]`.
    pub cols: Vec<usize>,
    /// Cosine of each matched pair.
    pub cosines: Vec<f64>,
    /// Number of units in A.
    pub n_a: usize,
    /// Number of units in B (the side whose order is exchangeable under H0).
    pub n_b: usize,
}

impl UnitMatching {
    /// Number of matched pairs (min(n_a, n_b)).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of pairs matched to the same index.
    pub fn identity_count(&self) -> usize {
        self.rows
            .iter()
            .zip(&self.cols)
            .filter(|(r, c)| r == c)
            .count()
    }

    /// Fraction of matched pairs whose indices agree.
    pub fn identity_fraction(&self) -> Result<f64> {
        if self.is_empty() {
            return Err(StatsError::Empty("unit matching"));
        }
        Ok(self.identity_count() as f64 / self.len() as f64)
    }

    /// Mean cosine over matched pairs.
    pub fn mean_cosine(&self) -> Result<f64> {
        if self.is_empty() {
            return Err(StatsError::Empty("unit matching"));
        }
        Ok(self.cosines.iter().sum::<f64>() / self.len() as f64)
    }

    /// Spearman correlation between A's unit index and its matched B index (phi_U).
    /// Needs at least 2 pairs.
    pub fn spearman_vs_identity(&self) -> Result<f64> {
        let r: Vec<f64> = self.rows.iter().map(|&x| x as f64).collect();
        let c: Vec<f64> = self.cols.iter().map(|&x| x as f64).collect();
        spearman(&r, &c)
    }

    /// ln P(identity count >= observed) under H0 (see [`identity_count_logp`]).
    pub fn identity_logp(&self) -> Result<LogP> {
        identity_count_logp(self.identity_count(), self.n_a, self.n_b)
    }

    /// The matching that would have been found had B's rows been reordered so that new row
    /// k is old row `perm[k]` (perm a permutation of 0..n_b). Because permuting B permutes
    /// the columns of the cosine matrix, the optimal matching of (A, Pi B) is this one when
    /// the optimum is unique (ties have probability 0 for continuous weights): a permutation
    /// null of matching statistics needs one assignment, not T.
    pub fn with_b_permuted(&self, perm: &[usize]) -> Result<UnitMatching> {
        if perm.len() != self.n_b {
            return Err(StatsError::Shape(format!(
                "permutation of length {} for {} units",
                perm.len(),
                self.n_b
            )));
        }
        let mut inverse = vec![usize::MAX; self.n_b];
        for (k, &old) in perm.iter().enumerate() {
            if old >= self.n_b || inverse[old] != usize::MAX {
                return Err(StatsError::InvalidArgument("not a permutation".into()));
            }
            inverse[old] = k;
        }
        let mut out = self.clone();
        out.cols.iter_mut().for_each(|c| *c = inverse[*c]);
        Ok(out)
    }
}

/// Matches units from a precomputed cosine matrix (rows: A's units, cols: B's units).
pub fn match_units_from_cosine(cos: &Mat) -> Result<UnitMatching> {
    let a = linear_sum_assignment_mat(cos, Objective::Maximize)?;
    let m = cos.cols();
    let cosines = a
        .rows
        .iter()
        .zip(&a.cols)
        .map(|(&i, &j)| cos.as_slice()[i * m + j] as f64)
        .collect();
    Ok(UnitMatching {
        rows: a.rows,
        cols: a.cols,
        cosines,
        n_a: cos.rows(),
        n_b: cos.cols(),
    })
}

/// Cosine matrix between the rows of `a` and `b` (same row length), then the maximum-total
/// cosine matching. Errors on empty input, NaN/inf or mismatched row lengths.
pub fn match_units(a: &Mat, b: &Mat) -> Result<UnitMatching> {
    if a.rows() == 0 || b.rows() == 0 {
        return Err(StatsError::Empty("units to match"));
    }
    match_units_from_cosine(&cosine_similarity(a, b)?)
}

/// Zhu et al.'s phi_U statistic: Spearman rho between matched index and own index.
pub fn phi_u(a: &Mat, b: &Mat) -> Result<f64> {
    match_units(a, b)?.spearman_vs_identity()
}

/// Fraction of A's units whose best-matching B unit has the same index.
pub fn matched_identity_fraction(a: &Mat, b: &Mat) -> Result<f64> {
    match_units(a, b)?.identity_fraction()
}

/// Mean cosine of the matched unit pairs.
pub fn mean_matched_cosine(a: &Mat, b: &Mat) -> Result<f64> {
    match_units(a, b)?.mean_cosine()
}

/// Exact ln P(F >= k) for the number F of fixed points of a uniformly random permutation of
/// n elements: `sum_{j>=k} D(n-j) / j!` with `D(m) = sum_{t<=m} (-1)^t / t!` (the rencontres
/// numbers divided by m!). E.g. k = n gives 1/n!. Errors if k > n.
pub fn fixed_points_tail_logp(n: usize, k: usize) -> Result<LogP> {
    if k > n {
        return Err(StatsError::InvalidArgument(format!(
            "{k} fixed points among {n} elements"
        )));
    }
    if k == 0 {
        return Ok(LogP::ONE);
    }
    // D(m) for small m by its alternating series; D(m) = 1/e to f64 precision for m >= 20.
    let derangement_ratio = |m: usize| -> f64 {
        if m >= 20 {
            return (-1.0f64).exp();
        }
        let (mut s, mut term) = (0.0f64, 1.0f64);
        for t in 0..=m {
            if t > 0 {
                term /= -(t as f64);
            }
            s += term;
        }
        s
    };
    let terms: Vec<f64> = (k..=n)
        .filter_map(|j| {
            let d = derangement_ratio(n - j);
            (d > 0.0).then(|| d.ln() - ln_factorial(j as u64))
        })
        .collect();
    LogP::new(log_sum_exp(&terms).min(0.0))
}

/// ln P(identity count >= k) under H0 for a matching between `n_a` units of A and `n_b`
/// units of B, B's order being exchangeable.
///
/// Why exact: under H0 the matching of (A, Pi B) is Pi applied to the matching of (A, B), so
/// for n_a = n_b the identity count is distributed as the number of fixed points of a
/// uniformly random permutation, whatever A and B are ([`fixed_points_tail_logp`]). For
/// n_a != n_b the union bound `C(m, k) (n_b - k)! / n_b!` (m = min(n_a, n_b) pairs, each
/// fixed k-set of pairs is all-identity with probability (n_b - k)!/n_b!) is returned: valid,
/// conservative by at most a factor ~e in the square case.
///
/// Assumptions a report must state: units of B are exchangeable under H0 (true for i.i.d.
/// initializations; false if both models start from the same public initialization, which is
/// a different question, pitfall 15), and the optimal matching is unique.
pub fn identity_count_logp(k: usize, n_a: usize, n_b: usize) -> Result<LogP> {
    let m = n_a.min(n_b);
    if k > m {
        return Err(StatsError::InvalidArgument(format!(
            "{k} identities among {m} matched pairs"
        )));
    }
    if n_a == n_b {
        return fixed_points_tail_logp(n_b, k);
    }
    let bound =
        ln_binomial(m as u64, k as u64) + ln_factorial((n_b - k) as u64) - ln_factorial(n_b as u64);
    LogP::new(bound.min(0.0))
}

/// Upper bound on ln P(identity count >= k) under H0 for *any* map g from A's `n_a` units to
/// B's `n_b` units that is computed from the cosine matrix equivariantly (permuting B's units
/// permutes g's values): a matching, or row-wise nearest neighbours ([`nearest_units`]).
///
/// For a fixed set S of k units of A, P(Pi(g(i)) = i for all i in S) is (n_b - k)!/n_b! if the
/// g(i) are distinct and 0 otherwise; summing over the C(n_a, k) sets gives
/// `C(n_a, k) (n_b - k)! / n_b!` (= 1/k! for n_a = n_b). Errors if k > min(n_a, n_b).
pub fn identity_count_logp_bound(k: usize, n_a: usize, n_b: usize) -> Result<LogP> {
    if k > n_a.min(n_b) {
        return Err(StatsError::InvalidArgument(format!(
            "{k} identities between {n_a} and {n_b} units"
        )));
    }
    let bound = ln_binomial(n_a as u64, k as u64) + ln_factorial((n_b - k) as u64)
        - ln_factorial(n_b as u64);
    LogP::new(bound.min(0.0))
}

/// For each row of `cos` (a unit of A), the column (unit of B) with the largest cosine;
/// ties go to the lowest index.
///
/// Why: an exact assignment costs O(n^2 m) in the worst case, which is what unrelated pairs
/// (cosine matrices without structure) hit: ~1.6 s at n = 4096 but minutes at n = 18432 on
/// 2 cores. Nearest neighbours cost one O(n m) scan after the cosine GEMM, and the number of
/// units whose nearest neighbour has their own index has an exact-tail bound of the same kind
/// ([`identity_count_logp_bound`]). It is weaker than the matching when B was permuted (no
/// one-to-one constraint), but index identity is what inheritance preserves.
/// Errors on an empty or non-finite matrix.
pub fn nearest_units(cos: &Mat) -> Result<Vec<usize>> {
    if cos.rows() == 0 || cos.cols() == 0 {
        return Err(StatsError::Empty("cosine matrix"));
    }
    cos.check_finite("cosine matrix")?;
    let m = cos.cols();
    Ok(cos
        .as_slice()
        .par_chunks(m)
        .map(|row| {
            let mut best = 0;
            for (j, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect())
}

/// Number of units of A whose nearest unit of B ([`nearest_units`]) has the same index.
pub fn nearest_identity_count(cos: &Mat) -> Result<usize> {
    Ok(nearest_units(cos)?
        .into_iter()
        .enumerate()
        .filter(|(i, j)| i == j)
        .count())
}

/// Normal approximation to the upper-tail p-value of Spearman's rho between a uniformly
/// random permutation of n and the identity: z = rho sqrt(n - 1) (the exact null variance of
/// rho is 1/(n - 1)). Zhu et al. convert phi_U to a p-value this way (scipy uses a t
/// approximation); both are approximations, accurate near the centre and not guaranteed in
/// the extreme tail, so prefer [`identity_count_logp`] or a permutation p-value when a
/// verdict depends on it. Needs n >= 3.
pub fn spearman_identity_logp(rho: f64, n: usize) -> Result<LogP> {
    if n < 3 {
        return Err(StatsError::Degenerate(format!(
            "Spearman p-value needs n >= 3, got {n}"
        )));
    }
    if !rho.is_finite() || rho.abs() > 1.0 + 1e-12 {
        return Err(StatsError::InvalidArgument(format!("rho = {rho}")));
    }
    LogP::new(log_normal_sf(rho * ((n - 1) as f64).sqrt()))
}

// ---------------------------------------------------------------------------------------
// Permutation nulls
// ---------------------------------------------------------------------------------------

/// Data whose rows (on one side) can be permuted to build a null.
pub trait PermutationDomain: Sync {
    /// Length of the permutations to draw (e.g. B's number of units).
    fn permuted_len(&self) -> usize;
}

/// Two unit matrices; permutations act on the rows of `b`.
#[derive(Clone, Copy, Debug)]
pub struct UnitPair<'a> {
    pub a: &'a Mat,
    pub b: &'a Mat,
}

impl UnitPair<'_> {
    /// `b` with rows reordered: new row k = old row `perm[k]`.
    pub fn permuted_b(&self, perm: &[usize]) -> Result<Mat> {
        self.b.select_rows(perm)
    }
}

impl PermutationDomain for UnitPair<'_> {
    fn permuted_len(&self) -> usize {
        self.b.rows()
    }
}

impl PermutationDomain for Mat {
    fn permuted_len(&self) -> usize {
        self.rows()
    }
}

impl PermutationDomain for UnitMatching {
    fn permuted_len(&self) -> usize {
        self.n_b
    }
}

/// `stat_fn(data, perm_r)` for replicates r = 0..t, where perm_r is the uniformly random
/// permutation [`random_permutation`]`(seed, r, data.permuted_len())`.
///
/// Replicates run in parallel (rayon) but replicate r's permutation depends only on
/// `(seed, r)` and results are returned in replicate order, so the null is identical for any
/// thread count. A non-finite statistic is an error.
pub fn permutation_null<D, F>(stat_fn: F, data: &D, t: usize, seed: u64) -> Result<Vec<f64>>
where
    D: PermutationDomain + ?Sized,
    F: Fn(&D, &[usize]) -> Result<f64> + Sync,
{
    let n = data.permuted_len();
    (0..t)
        .into_par_iter()
        .map(|r| {
            let perm = random_permutation(seed, r as u64, n);
            let v = stat_fn(data, &perm)?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(StatsError::NonFinite {
                    what: "permutation statistic",
                    index: r,
                })
            }
        })
        .collect()
}

/// A complete permutation test.
#[derive(Clone, Debug)]
pub struct PermutationTest {
    /// The statistic on the unpermuted data (identity permutation).
    pub observed: f64,
    pub null: Vec<f64>,
    /// `(1 + #{null >= observed}) / (T + 1)`, with its floor.
    pub empirical: EmpiricalPValue,
    /// Gaussian-tail extrapolation, when the null has spread (an approximation: report it as
    /// such next to the exact empirical p-value).
    pub gaussian: Option<GaussianTail>,
}

/// Observed statistic (identity permutation), its permutation null of `t` replicates and the
/// p-values. Larger statistics must mean more evidence against H0.
pub fn permutation_test<D, F>(stat_fn: F, data: &D, t: usize, seed: u64) -> Result<PermutationTest>
where
    D: PermutationDomain + ?Sized,
    F: Fn(&D, &[usize]) -> Result<f64> + Sync,
{
    let identity: Vec<usize> = (0..data.permuted_len()).collect();
    let observed = stat_fn(data, &identity)?;
    let null = permutation_null(&stat_fn, data, t, seed)?;
    let empirical = empirical_pvalue(observed, &null)?;
    let gaussian = gaussian_tail(observed, &null).ok();
    Ok(PermutationTest {
        observed,
        null,
        empirical,
        gaussian,
    })
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
    use crate::random::gaussian_matrix;
    use proptest::prelude::*;

    /// B = A with its units perturbed by noise of relative size `noise` (a "fine-tune").
    fn finetune(a: &Mat, noise: f32, seed: u64) -> Mat {
        let e = gaussian_matrix(seed, a.rows(), a.cols());
        Mat::from_fn(a.rows(), a.cols(), |i, j| a.row(i)[j] + noise * e.row(i)[j])
    }

    #[test]
    fn derived_vs_independent() {
        let a = gaussian_matrix(1, 64, 32);
        let b = finetune(&a, 0.5, 2);
        let m = match_units(&a, &b).unwrap();
        assert_eq!(m.identity_fraction().unwrap(), 1.0);
        assert!(m.mean_cosine().unwrap() > 0.85);
        assert!((m.spearman_vs_identity().unwrap() - 1.0).abs() < 1e-12);
        // Exact: P(F >= 64) = 1/64!.
        assert!((m.identity_logp().unwrap().ln() + ln_factorial(64)).abs() < 1e-9);

        let c = gaussian_matrix(3, 64, 32);
        let m = match_units(&a, &c).unwrap();
        assert!(m.identity_fraction().unwrap() < 0.1);
        assert!(m.spearman_vs_identity().unwrap().abs() < 0.5);
        assert!(m.identity_logp().unwrap().ln() > (0.01f64).ln());

        // A permuted copy: units matched, identity broken; the same permutation undoes it.
        let perm: Vec<usize> = (0..64).map(|i| (i * 13 + 5) % 64).collect();
        let pb = UnitPair { a: &a, b: &b }.permuted_b(&perm).unwrap();
        let m = match_units(&a, &pb).unwrap();
        for (&r, &c) in m.rows.iter().zip(&m.cols) {
            assert_eq!(perm[c], r);
        }
        assert!(phi_u(&a, &pb).unwrap() < 0.9);
        assert!((matched_identity_fraction(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        assert!(mean_matched_cosine(&a, &b).unwrap() > 0.85);
    }

    #[test]
    fn with_b_permuted_equals_rematching() {
        let a = gaussian_matrix(4, 40, 16);
        let b = finetune(&a, 1.5, 5);
        let m = match_units(&a, &b).unwrap();
        for r in 0..5 {
            let perm = random_permutation(77, r, 40);
            let direct = match_units(&a, &b.select_rows(&perm).unwrap()).unwrap();
            let fast = m.with_b_permuted(&perm).unwrap();
            assert_eq!(direct.cols, fast.cols);
        }
        assert!(m.with_b_permuted(&[0, 1]).is_err());
        assert!(m.with_b_permuted(&vec![0; 40]).is_err());
    }

    #[test]
    fn fixed_point_tail_exact_small_n() {
        // n = 3: fixed-point counts over the 6 permutations: 0 (2), 1 (3), 3 (1).
        let p = |k| fixed_points_tail_logp(3, k).unwrap().p();
        assert!((p(0) - 1.0).abs() < 1e-15);
        assert!((p(1) - 4.0 / 6.0).abs() < 1e-15);
        assert!((p(2) - 1.0 / 6.0).abs() < 1e-15);
        assert!((p(3) - 1.0 / 6.0).abs() < 1e-15);
        // n = 5 by enumeration.
        let mut hist = [0usize; 6];
        let mut perm: Vec<usize> = (0..5).collect();
        fn heap(k: usize, a: &mut Vec<usize>, hist: &mut [usize; 6]) {
            if k == 1 {
                hist[a.iter().enumerate().filter(|(i, x)| i == *x).count()] += 1;
                return;
            }
            heap(k - 1, a, hist);
            for i in 0..k - 1 {
                if k % 2 == 0 {
                    a.swap(i, k - 1)
                } else {
                    a.swap(0, k - 1)
                }
                heap(k - 1, a, hist);
            }
        }
        heap(5, &mut perm, &mut hist);
        for k in 0..=5 {
            let want = hist[k..].iter().sum::<usize>() as f64 / 120.0;
            let got = fixed_points_tail_logp(5, k).unwrap().p();
            assert!((got - want).abs() < 1e-14, "k={k}: {got} vs {want}");
        }
        assert!(fixed_points_tail_logp(3, 4).is_err());
        // Large n: P(F >= 1) -> 1 - 1/e, P(F = n) = 1/n!.
        let p1 = fixed_points_tail_logp(18432, 1).unwrap().p();
        assert!((p1 - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        let pn = fixed_points_tail_logp(18432, 18432).unwrap().ln();
        assert!((pn + ln_factorial(18432)).abs() < 1e-6 * ln_factorial(18432));
    }

    #[test]
    fn rectangular_bound() {
        // 3 pairs, B has 5 units, k = 1: C(3,1) * 4!/5! = 3/5.
        let lp = identity_count_logp(1, 3, 5).unwrap();
        assert!((lp.p() - 0.6).abs() < 1e-14);
        assert!(identity_count_logp(4, 3, 5).is_err());
        assert_eq!(identity_count_logp(0, 3, 5).unwrap(), LogP::ONE);
    }

    #[test]
    fn nearest_neighbour_identity() {
        let a = gaussian_matrix(21, 50, 16);
        let b = finetune(&a, 0.2, 22);
        let cos = cosine_similarity(&a, &b).unwrap();
        assert_eq!(nearest_identity_count(&cos).unwrap(), 50);
        let lp = identity_count_logp_bound(50, 50, 50).unwrap();
        assert!((lp.ln() + ln_factorial(50)).abs() < 1e-9);
        let c = gaussian_matrix(23, 50, 16);
        let cos = cosine_similarity(&a, &c).unwrap();
        assert!(nearest_identity_count(&cos).unwrap() < 5);
        assert!(nearest_units(&Mat::zeros(0, 3)).is_err());
        let mut bad = Mat::identity(2);
        bad.as_mut_slice()[1] = f32::NAN;
        assert!(nearest_units(&bad).is_err());
        // Ties go to the lowest index.
        assert_eq!(nearest_units(&Mat::zeros(2, 3)).unwrap(), vec![0, 0]);
        assert!(identity_count_logp_bound(3, 2, 5).is_err());
    }

    #[test]
    fn spearman_logp() {
        // z = 0.5 * sqrt(100 - 1) = 4.974937...; scipy norm.logsf(4.974937185533100).
        let lp = spearman_identity_logp(0.5, 100).unwrap();
        assert!((lp.ln() - crate::special::log_normal_sf(0.5 * 99f64.sqrt())).abs() < 1e-15);
        assert!(spearman_identity_logp(1.0, 11008).unwrap().ln() < -5000.0);
        assert!(spearman_identity_logp(0.5, 2).is_err());
        assert!(spearman_identity_logp(f64::NAN, 20).is_err());
    }

    #[test]
    fn permutation_null_is_deterministic_and_calibrated() {
        let a = gaussian_matrix(10, 30, 8);
        let b = finetune(&a, 0.3, 11);
        let m = match_units(&a, &b).unwrap();
        let stat = |m: &UnitMatching, p: &[usize]| m.with_b_permuted(p)?.identity_fraction();
        let n1 = permutation_null(stat, &m, 200, 99).unwrap();
        // Same seed, different thread pool size: same null.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let n2 = pool.install(|| permutation_null(stat, &m, 200, 99).unwrap());
        assert_eq!(n1, n2);
        let n3 = permutation_null(stat, &m, 200, 100).unwrap();
        assert_ne!(n1, n3);
        // Mean number of fixed points of a random permutation is 1: fraction ~ 1/30.
        let mean = n1.iter().sum::<f64>() / n1.len() as f64;
        assert!((mean * 30.0 - 1.0).abs() < 0.3, "{mean}");

        let test = permutation_test(stat, &m, 200, 99).unwrap();
        assert_eq!(test.observed, 1.0);
        assert!(test.empirical.at_floor());
        assert!((test.empirical.log_p.p() - 1.0 / 201.0).abs() < 1e-15);
        assert!(test.gaussian.unwrap().z > 10.0);

        // Generic use on raw matrices: permute B's rows and rematch (slow path).
        let pair = UnitPair { a: &a, b: &b };
        let slow = |d: &UnitPair, p: &[usize]| matched_identity_fraction(d.a, &d.permuted_b(p)?);
        let n4 = permutation_null(slow, &pair, 20, 99).unwrap();
        assert_eq!(n4, n1[..20].to_vec());

        let bad = |_: &Mat, _: &[usize]| Ok(f64::NAN);
        assert!(permutation_null(bad, &a, 3, 0).is_err());
    }

    proptest! {
        #[test]
        fn fixed_points_tail_monotone(n in 1usize..200, k in 0usize..200) {
            prop_assume!(k < n);
            let a = fixed_points_tail_logp(n, k).unwrap().ln();
            let b = fixed_points_tail_logp(n, k + 1).unwrap().ln();
            prop_assert!(b <= a + 1e-12);
            // Union bound P(F >= k) <= 1/k!.
            prop_assert!(a <= -ln_factorial(k as u64) + 1e-9);
        }
    }
}
