//! Similarity statistics between tensors and representations.
//!
//! Why each one:
//! - [`linear_cka_unbiased`]: AWM's per-layer statistic (W_q, W_k after residual alignment) and
//!   REEF's representation statistic. CKA is invariant to orthogonal transforms and isotropic
//!   scaling of either side, so it survives rotations that defeat permutation matching. The
//!   *unbiased* HSIC estimator (Song et al. 2012, used for CKA by Nguyen, Raghu & Kornblith
//!   2021) matters: the plug-in estimator is biased upward by O(d/n), so two unrelated
//!   high-dimensional matrices would score well above 0 (pitfall 1); the unbiased one is
//!   centred at 0 under independence.
//! - [`pearson`], [`spearman`]: for profiles and rank tests (Spearman with average ranks for
//!   ties, as scipy and R do).
//! - [`centred_cosine`]: raw cosine of positive vectors (norm weights ~1) is ~0.99 even for
//!   unrelated models (pitfall 1); cosine after removing a centre is not.
//!
//! Sums over long inputs are accumulated in f64 in fixed-size chunks combined in a fixed order,
//! so results do not depend on rayon's scheduling.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatRef};
use rayon::prelude::*;

use crate::error::{Result, StatsError, check_finite};
use crate::matrix::{Mat, cross_product_f64, faer_par};

const CHUNK: usize = 1 << 14;

fn check_pair<T: Copy + Into<f64>>(x: &[T], y: &[T], min_len: usize) -> Result<()> {
    if x.len() != y.len() {
        return Err(StatsError::Shape(format!(
            "vectors of length {} and {}",
            x.len(),
            y.len()
        )));
    }
    if x.len() < min_len {
        return Err(StatsError::Degenerate(format!(
            "needs at least {min_len} values, got {}",
            x.len()
        )));
    }
    check_finite("x", x)?;
    check_finite("y", y)
}

/// Deterministic f64 sum of `f(chunk)` over fixed chunks.
fn chunked_sum<T: Sync>(x: &[T], f: impl Fn(&[T]) -> f64 + Sync) -> f64 {
    let parts: Vec<f64> = if x.len() > CHUNK {
        x.par_chunks(CHUNK).map(&f).collect()
    } else {
        vec![f(x)]
    };
    parts.into_iter().sum()
}

/// `(sum (x-cx)(y-cy), sum (x-cx)^2, sum (y-cy)^2)` with per-element centres.
fn centred_products<T: Copy + Into<f64> + Sync>(
    x: &[T],
    y: &[T],
    cx: impl Fn(usize) -> f64 + Sync,
    cy: impl Fn(usize) -> f64 + Sync,
) -> (f64, f64, f64) {
    let part = |start: usize, a: &[T], b: &[T]| {
        let (mut sxy, mut sxx, mut syy) = (0.0f64, 0.0f64, 0.0f64);
        for (k, (&u, &v)) in a.iter().zip(b).enumerate() {
            let du = u.into() - cx(start + k);
            let dv = v.into() - cy(start + k);
            sxy += du * dv;
            sxx += du * du;
            syy += dv * dv;
        }
        (sxy, sxx, syy)
    };
    let parts: Vec<(f64, f64, f64)> = if x.len() > CHUNK {
        x.par_chunks(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .enumerate()
            .map(|(c, (a, b))| part(c * CHUNK, a, b))
            .collect()
    } else {
        vec![part(0, x, y)]
    };
    parts.into_iter().fold((0.0, 0.0, 0.0), |acc, p| {
        (acc.0 + p.0, acc.1 + p.1, acc.2 + p.2)
    })
}

fn mean<T: Copy + Into<f64> + Sync>(x: &[T]) -> f64 {
    chunked_sum(x, |c| c.iter().map(|&v| v.into()).sum::<f64>()) / x.len() as f64
}

/// Pearson correlation. Errors on mismatched lengths, fewer than 2 values, NaN/inf, or zero
/// variance on either side (the correlation is undefined there, not 0).
pub fn pearson<T: Copy + Into<f64> + Sync>(x: &[T], y: &[T]) -> Result<f64> {
    check_pair(x, y, 2)?;
    let (mx, my) = (mean(x), mean(y));
    let (sxy, sxx, syy) = centred_products(x, y, |_| mx, |_| my);
    if sxx <= 0.0 || syy <= 0.0 {
        return Err(StatsError::Degenerate(
            "zero variance: correlation undefined".into(),
        ));
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// 1-based ranks, ties receiving the average of the ranks they span (scipy's `rankdata`
/// default, R's `rank`).
pub fn average_ranks<T: Copy + Into<f64>>(x: &[T]) -> Result<Vec<f64>> {
    check_finite("values to rank", x)?;
    let v: Vec<f64> = x.iter().map(|&a| a.into()).collect();
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && v[order[j]] == v[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the average 1-based rank (i + 1 + j) / 2.
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    Ok(ranks)
}

/// Spearman rank correlation: Pearson correlation of average ranks.
pub fn spearman<T: Copy + Into<f64> + Sync>(x: &[T], y: &[T]) -> Result<f64> {
    check_pair(x, y, 2)?;
    pearson(&average_ranks(x)?, &average_ranks(y)?)
}

/// Cosine similarity after subtracting a centre from both vectors.
///
/// `centre = None` subtracts each vector's own mean (numerically the Pearson correlation).
/// `centre = Some(c)` computes cos(x - c, y - c): use the mean of that tensor over a
/// reference population of unrelated models, so what every model shares (norm weights near
/// 1, common biases) no longer counts as similarity.
pub fn centred_cosine<T: Copy + Into<f64> + Sync>(
    x: &[T],
    y: &[T],
    centre: Option<&[T]>,
) -> Result<f64> {
    match centre {
        None => pearson(x, y),
        Some(c) => {
            check_pair(x, y, 1)?;
            if c.len() != x.len() {
                return Err(StatsError::Shape(format!(
                    "centre of length {} for vectors of length {}",
                    c.len(),
                    x.len()
                )));
            }
            check_finite("centre", c)?;
            let cf = |k: usize| c[k].into();
            let (sxy, sxx, syy) = centred_products(x, y, cf, cf);
            if sxx <= 0.0 || syy <= 0.0 {
                return Err(StatsError::Degenerate(
                    "a vector equals the centre: cosine undefined".into(),
                ));
            }
            Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
        }
    }
}

/// Frobenius cosine between two same-shape matrices after removing each one's column means
/// (its mean row). For row-aligned matrices (rows = tokens or units in the same order), so
/// that a shared offset does not dominate.
pub fn centred_cosine_columns(a: &Mat, b: &Mat) -> Result<f64> {
    if a.shape() != b.shape() {
        return Err(StatsError::Shape(format!(
            "{:?} vs {:?}",
            a.shape(),
            b.shape()
        )));
    }
    if a.rows() < 2 || a.cols() == 0 {
        return Err(StatsError::Degenerate(
            "needs at least 2 rows and 1 column".into(),
        ));
    }
    a.check_finite("a")?;
    b.check_finite("b")?;
    let (ma, mb) = (a.column_means(), b.column_means());
    let d = a.cols();
    let (sxy, sxx, syy) =
        centred_products(a.as_slice(), b.as_slice(), |k| ma[k % d], |k| mb[k % d]);
    if sxx <= 0.0 || syy <= 0.0 {
        return Err(StatsError::Degenerate(
            "a matrix has identical rows: centred cosine undefined".into(),
        ));
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

// ---------------------------------------------------------------------------------------
// Unbiased HSIC / linear CKA
// ---------------------------------------------------------------------------------------

/// Sufficient statistics of one Gram matrix with its diagonal removed (K~ = K - diag K):
/// the sum of all entries and the row sums.
struct GramSums {
    total: f64,
    row: Vec<f64>,
}

/// Unbiased HSIC from tr(K~ L~) and the Gram sums (Song et al. 2012, eq. 5):
/// `[tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))`.
fn hsic_from_parts(n: usize, trace: f64, k: &GramSums, l: &GramSums) -> f64 {
    let nf = n as f64;
    let cross: f64 = k.row.iter().zip(&l.row).map(|(a, b)| a * b).sum();
    (trace + k.total * l.total / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * cross)
        / (nf * (nf - 3.0))
}

fn validate_reps(x: &Mat, y: &Mat) -> Result<()> {
    if x.rows() != y.rows() {
        return Err(StatsError::Shape(format!(
            "representations with {} and {} rows (rows must be the same samples)",
            x.rows(),
            y.rows()
        )));
    }
    if x.rows() < 4 {
        return Err(StatsError::Degenerate(format!(
            "unbiased HSIC needs at least 4 rows, got {}",
            x.rows()
        )));
    }
    if x.cols() == 0 || y.cols() == 0 {
        return Err(StatsError::Empty("representation with no columns"));
    }
    x.check_finite("x")?;
    y.check_finite("y")
}

/// `(HSIC(X,Y), HSIC(X,X), HSIC(Y,Y))`, unbiased, linear kernels.
///
/// Two exact evaluation orders, chosen by cost: through n x n Gram matrices (O(n^2 (d1+d2)),
/// best when n is small) or through d x d cross-products (O(n (d1 d2 + d1^2 + d2^2)), best
/// when n is large; memory independent of n). Both accumulate in f64.
fn hsic_triplet(x: &Mat, y: &Mat) -> (f64, f64, f64) {
    let (n, d1, d2) = (x.rows() as f64, x.cols() as f64, y.cols() as f64);
    let feature_cost = n * (d1 * d2 + d1 * d1 + d2 * d2);
    let gram_cost = n * n * (d1 + d2);
    if gram_cost < feature_cost {
        hsic_triplet_gram(x, y)
    } else {
        hsic_triplet_features(x, y)
    }
}

fn gram_f64(x: &Mat) -> faer::Mat<f64> {
    let n = x.rows();
    let xf: Vec<f64> = x.as_slice().iter().map(|&v| v as f64).collect();
    let xv = MatRef::from_row_major_slice(&xf, n, x.cols());
    let mut k = faer::Mat::<f64>::zeros(n, n);
    matmul(
        k.as_mut(),
        Accum::Replace,
        xv,
        xv.transpose(),
        1.0f64,
        faer_par(n * n * x.cols()),
    );
    k
}

fn gram_sums(k: &faer::Mat<f64>) -> GramSums {
    // K is symmetric: row sums are column sums, which are contiguous in faer's layout.
    let n = k.nrows();
    let row: Vec<f64> = (0..n)
        .map(|j| {
            let col = k.col_as_slice(j);
            col.iter().sum::<f64>() - col[j]
        })
        .collect();
    GramSums {
        total: row.iter().sum(),
        row,
    }
}

fn offdiag_dot(k: &faer::Mat<f64>, l: &faer::Mat<f64>) -> f64 {
    let n = k.nrows();
    let mut s = 0.0;
    for j in 0..n {
        for i in 0..n {
            if i != j {
                s += k[(i, j)] * l[(i, j)];
            }
        }
    }
    s
}

fn hsic_triplet_gram(x: &Mat, y: &Mat) -> (f64, f64, f64) {
    let n = x.rows();
    let k = gram_f64(x);
    let l = gram_f64(y);
    let (sk, sl) = (gram_sums(&k), gram_sums(&l));
    (
        hsic_from_parts(n, offdiag_dot(&k, &l), &sk, &sl),
        hsic_from_parts(n, offdiag_dot(&k, &k), &sk, &sk),
        hsic_from_parts(n, offdiag_dot(&l, &l), &sl, &sl),
    )
}

fn frob_sq(m: &faer::Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            s += m[(i, j)] * m[(i, j)];
        }
    }
    s
}

/// Gram sums of X X^T without forming it: row sums are x_i . (X^T 1) - ||x_i||^2.
fn feature_gram_sums(x: &Mat) -> (GramSums, Vec<f64>) {
    let s: Vec<f64> = x.column_sums();
    let sq: Vec<f64> = x.row_norms().into_iter().map(|v| v * v).collect();
    let row: Vec<f64> = x
        .iter_rows()
        .zip(&sq)
        .map(|(r, &k)| r.iter().zip(&s).map(|(&a, &b)| a as f64 * b).sum::<f64>() - k)
        .collect();
    let total = s.iter().map(|v| v * v).sum::<f64>() - sq.iter().sum::<f64>();
    (GramSums { total, row }, sq)
}

fn hsic_triplet_features(x: &Mat, y: &Mat) -> (f64, f64, f64) {
    let n = x.rows();
    let (sk, kd) = feature_gram_sums(x);
    let (sl, ld) = feature_gram_sums(y);
    // tr(K~ L~) = ||X^T Y||_F^2 - sum_i K_ii L_ii. `cross_product_f64` only fails on a row
    // mismatch, which `validate_reps` has excluded.
    let cp = |a: &Mat, b: &Mat| {
        cross_product_f64(a, b)
            .map(|m| frob_sq(&m))
            .unwrap_or(f64::NAN)
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let txy = cp(x, y) - dot(&kd, &ld);
    let txx = cp(x, x) - dot(&kd, &kd);
    let tyy = cp(y, y) - dot(&ld, &ld);
    (
        hsic_from_parts(n, txy, &sk, &sl),
        hsic_from_parts(n, txx, &sk, &sk),
        hsic_from_parts(n, tyy, &sl, &sl),
    )
}

/// Unbiased HSIC estimate with linear kernels between representations `x` (n x d1) and
/// `y` (n x d2) whose rows are the same n >= 4 samples.
pub fn hsic_unbiased_linear(x: &Mat, y: &Mat) -> Result<f64> {
    validate_reps(x, y)?;
    Ok(hsic_triplet(x, y).0)
}

/// Unbiased linear CKA: `HSIC_1(X,Y) / sqrt(HSIC_1(X,X) HSIC_1(Y,Y))`.
///
/// Rows of `x` and `y` must be the same n >= 4 samples (e.g. aligned residual dimensions or
/// shared tokens); columns may differ. Values are near 0 for independent representations
/// and 1 for representations equal up to rotation and scaling; finite-sample estimates can
/// slightly exceed [-1, 1] and are not clamped (clamping would hide the sampling noise).
/// Errors if a self-HSIC is not positive (too few rows for the estimator to be informative).
pub fn linear_cka_unbiased(x: &Mat, y: &Mat) -> Result<f64> {
    validate_reps(x, y)?;
    let (hxy, hxx, hyy) = hsic_triplet(x, y);
    if !(hxx > 0.0 && hyy > 0.0) {
        return Err(StatsError::Degenerate(format!(
            "non-positive self-HSIC ({hxx:e}, {hyy:e}): CKA undefined"
        )));
    }
    Ok(hxy / (hxx.sqrt() * hyy.sqrt()))
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

    /// Direct transcription of the estimator on explicit Gram matrices.
    fn naive_hsic(x: &Mat, y: &Mat) -> f64 {
        let n = x.rows();
        let gram = |m: &Mat| {
            let mut k = vec![vec![0.0f64; n]; n];
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        k[i][j] = m
                            .row(i)
                            .iter()
                            .zip(m.row(j))
                            .map(|(&a, &b)| a as f64 * b as f64)
                            .sum();
                    }
                }
            }
            k
        };
        let (k, l) = (gram(x), gram(y));
        let nf = n as f64;
        let mut tr = 0.0;
        let (mut sk, mut sl) = (0.0, 0.0);
        let mut cross = 0.0;
        for i in 0..n {
            let (mut rk, mut rl) = (0.0, 0.0);
            for j in 0..n {
                tr += k[i][j] * l[j][i];
                rk += k[i][j];
                rl += l[i][j];
            }
            sk += rk;
            sl += rl;
            cross += rk * rl;
        }
        (tr + sk * sl / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * cross) / (nf * (nf - 3.0))
    }

    fn lcg_mat(rows: usize, cols: usize, seed: u64) -> Mat {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Mat::from_fn(rows, cols, |_, _| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
    }

    #[test]
    fn pearson_spearman_known_values() {
        // scipy.stats.pearsonr([1,2,3,4,5,6,7], [10,9,2.5,6,4,3,2]) = -0.8285038835884277
        let r = pearson(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
            &[10.0, 9.0, 2.5, 6.0, 4.0, 3.0, 2.0],
        )
        .unwrap();
        assert!((r - -0.8285038835884277).abs() < 1e-14, "{r}");
        // scipy.stats.spearmanr([1,2,3,4,5], [5,6,7,8,7]) = 0.8207826816681233 (ties).
        let s = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((s - 0.8207826816681233).abs() < 1e-14, "{s}");
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0]).unwrap(),
            vec![3.5, 1.0, 3.5, 2.0]
        );
        // f32 input
        let r32 = pearson(&[1.0f32, 2.0, 3.0], &[2.0f32, 4.0, 6.5]).unwrap();
        assert!(r32 > 0.99);
    }

    #[test]
    fn errors_on_bad_input() {
        assert!(pearson(&[1.0, 2.0], &[1.0]).is_err());
        assert!(pearson(&[1.0], &[1.0]).is_err());
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(pearson(&[1.0, f64::NAN], &[1.0, 2.0]).is_err());
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_err());
        assert!(centred_cosine(&[1.0, 2.0], &[1.0, 2.0], Some(&[1.0, 2.0])).is_err());
        let x = lcg_mat(3, 2, 1);
        assert!(linear_cka_unbiased(&x, &x).is_err());
        assert!(linear_cka_unbiased(&lcg_mat(5, 2, 1), &lcg_mat(6, 2, 1)).is_err());
        assert!(linear_cka_unbiased(&lcg_mat(5, 0, 1), &lcg_mat(5, 2, 1)).is_err());
    }

    #[test]
    fn centred_cosine_removes_shared_offset() {
        // Two unrelated perturbations of a shared all-ones vector: raw cosine ~1, centred ~0.
        let n = 4096;
        let a: Vec<f64> = (0..n)
            .map(|i| 1.0 + 0.01 * ((i * 7919 % 101) as f64 - 50.0) / 50.0)
            .collect();
        let b: Vec<f64> = (0..n)
            .map(|i| 1.0 + 0.01 * ((i * 104729 % 97) as f64 - 48.0) / 48.0)
            .collect();
        let ones = vec![1.0; n];
        let raw = centred_cosine(&a, &b, Some(&vec![0.0; n])).unwrap();
        assert!(raw > 0.99);
        let c = centred_cosine(&a, &b, Some(&ones)).unwrap();
        assert!(c.abs() < 0.1, "{c}");
        // None == Pearson.
        assert_eq!(
            centred_cosine(&a, &b, None).unwrap(),
            pearson(&a, &b).unwrap()
        );
    }

    #[test]
    fn centred_cosine_columns_known() {
        let a = Mat::from_rows(&[[1.0f32, 5.0], [3.0, 5.0], [2.0, 8.0]]).unwrap();
        let b = Mat::from_rows(&[[11.0f32, 0.0], [13.0, 0.0], [12.0, 3.0]]).unwrap();
        // Same deviations from the column means: cosine 1.
        assert!((centred_cosine_columns(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        assert!(centred_cosine_columns(&a, &Mat::zeros(3, 2)).is_err());
    }

    #[test]
    fn both_hsic_paths_match_naive() {
        // n small vs d: Gram path; n large vs d: feature path. Check both explicitly.
        for &(n, d1, d2, seed) in &[
            (6usize, 3usize, 4usize, 1u64),
            (40, 50, 30, 2),
            (300, 5, 7, 3),
            (9, 9, 9, 4),
        ] {
            let x = lcg_mat(n, d1, seed);
            let mut y = lcg_mat(n, d2, seed + 100);
            // Make y partly depend on x.
            for i in 0..n {
                y.row_mut(i)[0] += x.row(i)[0];
            }
            let want = naive_hsic(&x, &y);
            let g = hsic_triplet_gram(&x, &y);
            let f = hsic_triplet_features(&x, &y);
            let tol = 1e-9 * (1.0 + want.abs());
            assert!((g.0 - want).abs() < tol, "gram {} vs {}", g.0, want);
            assert!((f.0 - want).abs() < tol, "feat {} vs {}", f.0, want);
            assert!((g.1 - f.1).abs() < 1e-9 * (1.0 + g.1.abs()));
            assert!((g.2 - f.2).abs() < 1e-9 * (1.0 + g.2.abs()));
        }
    }

    #[test]
    fn cka_reference_value() {
        // Exact rational arithmetic (Python fractions) on this pair:
        // X = [[1,0],[0,1],[1,1],[2,0],[0,3]], Y = [[1],[2],[0],[1],[4]].
        let x = Mat::from_rows(&[
            [1.0f32, 0.0],
            [0.0, 1.0],
            [1.0, 1.0],
            [2.0, 0.0],
            [0.0, 3.0],
        ])
        .unwrap();
        let y = Mat::from_rows(&[[1.0f32], [2.0], [0.0], [1.0], [4.0]]).unwrap();
        let c = linear_cka_unbiased(&x, &y).unwrap();
        assert!((c - CKA_REF).abs() < 1e-12, "{c}");
        let h = hsic_unbiased_linear(&x, &y).unwrap();
        assert!((h - 11.0 / 15.0).abs() < 1e-12, "{h}");
        // Both evaluation orders on the exact case.
        let (g, f) = (hsic_triplet_gram(&x, &y), hsic_triplet_features(&x, &y));
        for (u, w) in [
            (g.0, 11.0 / 15.0),
            (g.1, 2.0),
            (g.2, 2.5),
            (f.0, 11.0 / 15.0),
            (f.1, 2.0),
            (f.2, 2.5),
        ] {
            assert!((u - w).abs() < 1e-12, "{u} vs {w}");
        }
    }

    // HSIC(X,Y) = 11/15, HSIC(X,X) = 2, HSIC(Y,Y) = 5/2 exactly.
    const CKA_REF: f64 = 0.32795663669996915547;

    #[test]
    fn cka_independent_is_near_zero_and_self_is_one() {
        let x = lcg_mat(400, 64, 7);
        let y = lcg_mat(400, 64, 8);
        let c = linear_cka_unbiased(&x, &y).unwrap();
        assert!(c.abs() < 0.05, "{c}");
        assert!((linear_cka_unbiased(&x, &x).unwrap() - 1.0).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn spearman_invariant_under_monotone_maps(v in prop::collection::vec(-100.0f64..100.0, 3..40), w in prop::collection::vec(-100.0f64..100.0, 3..40)) {
            let n = v.len().min(w.len());
            let (v, w) = (&v[..n], &w[..n]);
            if let Ok(s) = spearman(v, w) {
                let v3: Vec<f64> = v.iter().map(|x| x * x * x + 2.0 * x).collect();
                let s2 = spearman(&v3, w).unwrap();
                prop_assert!((s - s2).abs() < 1e-12);
                prop_assert!((-1.0..=1.0).contains(&s));
            }
        }

        #[test]
        fn cka_invariances(seed in 0u64..10_000, n in 5usize..30, d in 1usize..6, scale in 0.1f32..10.0, shift in -5.0f32..5.0) {
            let x = lcg_mat(n, d, seed);
            let y = lcg_mat(n, d + 1, seed ^ 0xABCDEF);
            prop_assume!(linear_cka_unbiased(&x, &y).is_ok());
            let c = linear_cka_unbiased(&x, &y).unwrap();
            // Isotropic scaling and translation of x.
            let mut x2 = x.clone();
            x2.as_mut_slice().iter_mut().for_each(|v| *v = *v * scale + shift);
            let c2 = linear_cka_unbiased(&x2, &y).unwrap();
            prop_assert!((c - c2).abs() < 1e-4, "{} vs {}", c, c2);
            // Orthogonal transform: swap and negate columns (a signed permutation).
            let x3 = Mat::from_fn(n, d, |i, j| -x.row(i)[d - 1 - j]);
            let c3 = linear_cka_unbiased(&x3, &y).unwrap();
            prop_assert!((c - c3).abs() < 1e-9);
            // Symmetric.
            let c4 = linear_cka_unbiased(&y, &x).unwrap();
            prop_assert!((c - c4).abs() < 1e-9);
        }
    }
}
