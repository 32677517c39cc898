//! Alignment of one basis to another: orthogonal Procrustes and signed permutations.
//!
//! Why (pitfall 11): a function-preserving orthogonal rotation of the residual stream
//! (R applied to embeddings and every matrix that reads or writes the residual) defeats any
//! permutation-only alignment, while leaving the model's function intact. Given row-aligned
//! observations of both bases (e.g. embeddings of shared tokens, with norm weights folded in),
//! the best rotation is the orthogonal Procrustes solution; if the residual was only permuted
//! and sign-flipped, [`signed_permutation_alignment`] recovers that exactly, and it is the
//! stronger evidence (a rotation can align any two bases somewhat; a signed permutation of
//! thousands of dimensions cannot happen by chance).

use faer::Accum;
use faer::linalg::matmul::matmul;

use crate::assignment::{Objective, assignment_by};
use crate::error::{Result, StatsError};
use crate::matrix::{Mat, cross_product_f64, faer_par, from_faer_f64};

/// Result of [`orthogonal_procrustes`].
#[derive(Clone, Debug)]
pub struct ProcrustesFit {
    /// R (da x db) with orthonormal rows or columns (R R^T = I if da <= db, else R^T R = I)
    /// minimizing ||A R - B||_F.
    pub rotation: Mat,
    /// Singular values of A^T B, descending.
    pub singular_values: Vec<f64>,
    /// ||A R - B||_F^2 at the optimum.
    pub residual_sq: f64,
    /// residual_sq / ||B||_F^2: 0 for a perfect fit. Below 2 even for unrelated data of equal
    /// norm, because R is fitted: judge it against a null of unrelated pairs, never alone.
    pub relative_residual: f64,
}

/// Orthogonal Procrustes: `R = argmin ||A R - B||_F` over R with orthonormal rows/columns,
/// `R = U V^T` from the (thin) SVD `A^T B = U S V^T` (Schönemann 1966).
///
/// `a` is n x da, `b` is n x db with the same n rows (the same observations in both bases).
/// A^T B is accumulated in f64 by chunks of rows and decomposed by faer's SVD, so the cost is
/// O(n da db + min(da,db) da db) and memory O(da db). Errors on shape mismatch, NaN/inf, no
/// rows, or an all-zero `b`.
pub fn orthogonal_procrustes(a: &Mat, b: &Mat) -> Result<ProcrustesFit> {
    if a.rows() != b.rows() {
        return Err(StatsError::Shape(format!(
            "Procrustes needs the same observations (rows): {} vs {}",
            a.rows(),
            b.rows()
        )));
    }
    if a.rows() == 0 || a.cols() == 0 || b.cols() == 0 {
        return Err(StatsError::Empty("Procrustes input"));
    }
    a.check_finite("Procrustes A")?;
    b.check_finite("Procrustes B")?;
    let (da, db) = (a.cols(), b.cols());
    let m = cross_product_f64(a, b)?;
    let svd = m
        .thin_svd()
        .map_err(|e| StatsError::Numerical(format!("SVD of A^T B failed: {e:?}")))?;
    let (u, v) = (svd.U(), svd.V());
    let k = da.min(db);
    let s = svd.S().column_vector();
    let singular_values: Vec<f64> = (0..k).map(|i| s[i]).collect();
    let mut r = faer::Mat::<f64>::zeros(da, db);
    matmul(
        r.as_mut(),
        Accum::Replace,
        u,
        v.transpose(),
        1.0f64,
        faer_par(da * db * k),
    );
    let rotation = from_faer_f64(r.as_ref());

    let b_sq: f64 = b.row_norms().iter().map(|x| x * x).sum();
    let trace: f64 = singular_values.iter().sum();
    // ||AR||^2 = ||A||^2 when R R^T = I (da <= db); otherwise it must be computed.
    let ar_sq = if da <= db {
        a.row_norms().iter().map(|x| x * x).sum::<f64>()
    } else {
        let ata = cross_product_f64(a, a)?;
        // ||A R||^2 = tr(R^T A^T A R).
        let mut t = faer::Mat::<f64>::zeros(da, db);
        matmul(
            t.as_mut(),
            Accum::Replace,
            ata.as_ref(),
            r.as_ref(),
            1.0f64,
            faer_par(da * da * db),
        );
        let mut acc = 0.0;
        for j in 0..db {
            for i in 0..da {
                acc += r[(i, j)] * t[(i, j)];
            }
        }
        acc
    };
    let residual_sq = (ar_sq + b_sq - 2.0 * trace).max(0.0);
    if b_sq <= 0.0 {
        return Err(StatsError::Degenerate("B is all zeros".into()));
    }
    Ok(ProcrustesFit {
        rotation,
        singular_values,
        residual_sq,
        relative_residual: residual_sq / b_sq,
    })
}

/// A signed partial permutation: row `rows[k]` of the source corresponds to column `cols[k]`
/// of the target with sign `signs[k]` (+1 or -1).
#[derive(Clone, Debug, PartialEq)]
pub struct SignedPermutation {
    pub rows: Vec<usize>,
    pub cols: Vec<usize>,
    pub signs: Vec<f32>,
    /// The signed cosine of each matched pair (|value| is what was maximized).
    pub cosines: Vec<f64>,
}

impl SignedPermutation {
    /// Mean |cosine| over matched pairs (NaN if nothing matched).
    pub fn mean_abs_cosine(&self) -> f64 {
        self.cosines.iter().map(|c| c.abs()).sum::<f64>() / self.cosines.len() as f64
    }

    /// Number of matched pairs.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The (rows x cols) matrix P with `P[rows[k], cols[k]] = signs[k]`, so that
    /// `source_basis * P` expresses source coordinates in the target's order and signs.
    pub fn to_matrix(&self, n_rows: usize, n_cols: usize) -> Result<Mat> {
        let mut p = Mat::zeros(n_rows, n_cols);
        for ((&r, &c), &s) in self.rows.iter().zip(&self.cols).zip(&self.signs) {
            if r >= n_rows || c >= n_cols {
                return Err(StatsError::Shape(format!(
                    "pair ({r}, {c}) outside a {n_rows} x {n_cols} matrix"
                )));
            }
            p.row_mut(r)[c] = s;
        }
        Ok(p)
    }
}

/// Best signed permutation from a cosine matrix `cos` (source dims x target dims, e.g. the
/// cosines between embedding columns of A and B over shared tokens): maximum-weight
/// assignment on |cos|, then the sign of each matched cosine. Rectangular input gives a
/// partial matching of min(rows, cols) pairs. The |cos| matrix is never materialized.
pub fn signed_permutation_alignment(cos: &Mat) -> Result<SignedPermutation> {
    let a = assignment_by(
        cos.as_slice(),
        cos.rows(),
        cos.cols(),
        Objective::Maximize,
        |x: f32| (x as f64).abs(),
    )?;
    let m = cos.cols();
    let cosines: Vec<f64> = a
        .rows
        .iter()
        .zip(&a.cols)
        .map(|(&i, &j)| cos.as_slice()[i * m + j] as f64)
        .collect();
    let signs = cosines
        .iter()
        .map(|&c| if c < 0.0 { -1.0 } else { 1.0 })
        .collect();
    Ok(SignedPermutation {
        rows: a.rows,
        cols: a.cols,
        signs,
        cosines,
    })
}

/// Applies R (da x db) to A (n x da): the rotated source, A R, for comparing with B.
pub fn apply_rotation(a: &Mat, rotation: &Mat) -> Result<Mat> {
    a.matmul(rotation)
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

    /// A random orthogonal matrix from QR-free Gram-Schmidt on Gaussian columns.
    fn random_orthogonal(d: usize, seed: u64) -> Mat {
        let g = gaussian_matrix(seed, d, d);
        let mut q: Vec<Vec<f64>> = Vec::new();
        for j in 0..d {
            let mut v: Vec<f64> = (0..d).map(|i| g.row(i)[j] as f64).collect();
            for u in &q {
                let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
            }
            let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v.iter_mut().for_each(|a| *a /= n);
            q.push(v);
        }
        Mat::from_fn(d, d, |i, j| q[j][i] as f32)
    }

    #[test]
    fn recovers_rotation() {
        let (n, d) = (200, 16);
        let a = gaussian_matrix(1, n, d);
        let r = random_orthogonal(d, 2);
        let b = a.matmul(&r).unwrap();
        let fit = orthogonal_procrustes(&a, &b).unwrap();
        for (x, y) in fit.rotation.as_slice().iter().zip(r.as_slice()) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        assert!(fit.relative_residual < 1e-8, "{}", fit.relative_residual);
        // R is orthogonal.
        let rrt = fit.rotation.matmul_transpose(&fit.rotation).unwrap();
        for i in 0..d {
            for j in 0..d {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((rrt.get(i, j).unwrap() - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn residual_matches_direct_computation_rectangular() {
        for &(da, db) in &[(5usize, 8usize), (8, 5), (6, 6)] {
            let a = gaussian_matrix(3, 50, da);
            let b = gaussian_matrix(4, 50, db);
            let fit = orthogonal_procrustes(&a, &b).unwrap();
            let ar = apply_rotation(&a, &fit.rotation).unwrap();
            let direct: f64 = ar
                .as_slice()
                .iter()
                .zip(b.as_slice())
                .map(|(&x, &y)| ((x - y) as f64).powi(2))
                .sum();
            assert!(
                (direct - fit.residual_sq).abs() < 1e-3 * direct,
                "{da}x{db}: {direct} vs {}",
                fit.residual_sq
            );
            // Optimality against random orthogonal competitors (square case).
            if da == db {
                for s in 0..5 {
                    let q = random_orthogonal(da, 100 + s);
                    let aq = a.matmul(&q).unwrap();
                    let other: f64 = aq
                        .as_slice()
                        .iter()
                        .zip(b.as_slice())
                        .map(|(&x, &y)| ((x - y) as f64).powi(2))
                        .sum();
                    assert!(other >= fit.residual_sq - 1e-6);
                }
            }
        }
    }

    #[test]
    fn procrustes_errors() {
        assert!(orthogonal_procrustes(&Mat::zeros(3, 2), &Mat::zeros(4, 2)).is_err());
        assert!(orthogonal_procrustes(&Mat::zeros(0, 2), &Mat::zeros(0, 2)).is_err());
        assert!(orthogonal_procrustes(&Mat::identity(2), &Mat::zeros(2, 2)).is_err());
        let mut a = Mat::identity(2);
        a.as_mut_slice()[0] = f32::INFINITY;
        assert!(orthogonal_procrustes(&a, &Mat::identity(2)).is_err());
    }

    #[test]
    fn signed_permutation_recovered() {
        let (n, d) = (300, 24);
        let a = gaussian_matrix(5, n, d);
        // B's column j = sign_j * A's column perm[j].
        let perm: Vec<usize> = (0..d).map(|j| (j * 5 + 7) % d).collect();
        let sign: Vec<f32> = (0..d)
            .map(|j| if j % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let b = Mat::from_fn(n, d, |i, j| sign[j] * a.row(i)[perm[j]]);
        // Cosine between columns of A (source dims) and columns of B (target dims).
        let cos = crate::matrix::cosine_similarity(&a.transpose(), &b.transpose()).unwrap();
        let sp = signed_permutation_alignment(&cos).unwrap();
        for j in 0..d {
            // Source dim perm[j] maps to target dim j with sign sign[j].
            let k = sp.rows.iter().position(|&r| r == perm[j]).unwrap();
            assert_eq!(sp.cols[k], j);
            assert_eq!(sp.signs[k], sign[j]);
        }
        assert!((sp.mean_abs_cosine() - 1.0).abs() < 1e-5);
        // Applying P maps A onto B exactly.
        let p = sp.to_matrix(d, d).unwrap();
        let ap = a.matmul(&p).unwrap();
        for (x, y) in ap.as_slice().iter().zip(b.as_slice()) {
            assert!((x - y).abs() < 1e-6);
        }
    }
}
