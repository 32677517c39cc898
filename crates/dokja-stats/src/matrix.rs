//! A minimal dense row-major matrix of `f32`.
//!
//! Why `f32` storage: provenance data arrives as canonical f32 rows (dokja-formats decodes
//! bf16/fp16/quantized tensors to f32), and the largest objects this crate builds are
//! unit-by-unit cosine matrices (up to 18432 x 18432 = 1.36 GB in f32, twice that in f64).
//! Precision is recovered where it matters: every reduction (means, norms, dot products of
//! statistics) accumulates in `f64`, and the statistics that cancel large terms (unbiased
//! CKA, Procrustes cross-products) convert chunks of rows to `f64` before multiplying.
//!
//! Matrix products use faer's blocked, SIMD, rayon-parallel GEMM rather than a hand-written
//! O(n^3) loop: at 7168 x 18432 a naive loop would take minutes, faer takes seconds.
//!
//! Reductions whose result a verdict depends on are deterministic: rows are split into fixed
//! chunks and partial sums are combined in a fixed order, whatever rayon's scheduling.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::{Result, StatsError};

/// Dense row-major matrix of `f32` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// Elements below which work is done on the calling thread (parallel overhead dominates).
const PAR_ELEMS: usize = 1 << 16;

/// faer parallelism for a product of about `flops` multiply-adds.
pub(crate) fn faer_par(flops: usize) -> Par {
    if flops < (1 << 20) {
        Par::Seq
    } else {
        Par::rayon(0)
    }
}

impl Mat {
    /// A `rows x cols` matrix of zeros. Panics only if `rows * cols` overflows `usize`.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        let len = rows.checked_mul(cols).expect("matrix size overflows usize");
        Mat {
            rows,
            cols,
            data: vec![0.0; len],
        }
    }

    /// Wraps row-major `data`; errors if `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        match rows.checked_mul(cols) {
            Some(len) if len == data.len() => Ok(Mat { rows, cols, data }),
            _ => Err(StatsError::Shape(format!(
                "{} values cannot fill a {rows} x {cols} matrix",
                data.len()
            ))),
        }
    }

    /// Builds a matrix from equally long rows.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Result<Self> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != cols {
                return Err(StatsError::Shape(format!(
                    "row {i} has {} values, row 0 has {cols}",
                    r.len()
                )));
            }
            data.extend_from_slice(r);
        }
        Ok(Mat {
            rows: rows.len(),
            cols,
            data,
        })
    }

    /// Builds a matrix with `f(i, j)` at row `i`, column `j`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut m = Mat::zeros(rows, cols);
        for i in 0..rows {
            for j in 0..cols {
                m.data[i * cols + j] = f(i, j);
            }
        }
        m
    }

    /// The `n x n` identity.
    pub fn identity(n: usize) -> Self {
        Mat::from_fn(n, n, |i, j| if i == j { 1.0 } else { 0.0 })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// True if the matrix holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The row-major elements.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Row `i`. Panics if `i >= rows` (like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutably. Panics if `i >= rows`.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Element `(i, j)`, or `None` out of bounds.
    pub fn get(&self, i: usize, j: usize) -> Option<f32> {
        (i < self.rows && j < self.cols).then(|| self.data[i * self.cols + j])
    }

    /// Iterator over rows.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &[f32]> + '_ {
        (0..self.rows).map(move |i| &self.data[i * self.cols..(i + 1) * self.cols])
    }

    /// Errors (naming the flat index) if any element is NaN or infinite.
    pub fn check_finite(&self, what: &'static str) -> Result<()> {
        crate::error::check_finite(what, &self.data)
    }

    /// faer view of this matrix (zero copy).
    pub(crate) fn faer(&self) -> MatRef<'_, f32> {
        MatRef::from_row_major_slice(&self.data, self.rows, self.cols)
    }

    /// The transpose, by 32 x 32 cache blocks (parallel over output row blocks).
    pub fn transpose(&self) -> Mat {
        let (r, c) = (self.rows, self.cols);
        let mut out = Mat::zeros(c, r);
        if r == 0 || c == 0 {
            return out;
        }
        const B: usize = 32;
        let src = &self.data;
        let body = |(jb, chunk): (usize, &mut [f32])| {
            let j0 = jb * B;
            let jn = chunk.len() / r;
            for i0 in (0..r).step_by(B) {
                let i1 = (i0 + B).min(r);
                for dj in 0..jn {
                    let j = j0 + dj;
                    let dst = &mut chunk[dj * r..(dj + 1) * r];
                    for i in i0..i1 {
                        dst[i] = src[i * c + j];
                    }
                }
            }
        };
        if r * c >= PAR_ELEMS {
            out.data.par_chunks_mut(B * r).enumerate().for_each(body);
        } else {
            out.data.chunks_mut(B * r).enumerate().for_each(body);
        }
        out
    }

    /// The product `self * rhs` (faer GEMM, f32 accumulation).
    pub fn matmul(&self, rhs: &Mat) -> Result<Mat> {
        if self.cols != rhs.rows {
            return Err(StatsError::Shape(format!(
                "cannot multiply {}x{} by {}x{}",
                self.rows, self.cols, rhs.rows, rhs.cols
            )));
        }
        let mut out = Mat::zeros(self.rows, rhs.cols);
        if out.is_empty() {
            return Ok(out);
        }
        let par = faer_par(self.rows * self.cols * rhs.cols);
        let dst = MatMut::from_row_major_slice_mut(&mut out.data, self.rows, rhs.cols);
        matmul(dst, Accum::Replace, self.faer(), rhs.faer(), 1.0f32, par);
        Ok(out)
    }

    /// The product `self * rhs^T`: dot products between the rows of `self` and the rows of
    /// `rhs`, the shape provenance comparisons need (units are rows). No transpose is copied.
    pub fn matmul_transpose(&self, rhs: &Mat) -> Result<Mat> {
        if self.cols != rhs.cols {
            return Err(StatsError::Shape(format!(
                "rows of {}x{} and {}x{} have different lengths",
                self.rows, self.cols, rhs.rows, rhs.cols
            )));
        }
        let mut out = Mat::zeros(self.rows, rhs.rows);
        if out.is_empty() {
            return Ok(out);
        }
        let par = faer_par(self.rows * self.cols * rhs.rows);
        let dst = MatMut::from_row_major_slice_mut(&mut out.data, self.rows, rhs.rows);
        matmul(
            dst,
            Accum::Replace,
            self.faer(),
            rhs.faer().transpose(),
            1.0f32,
            par,
        );
        Ok(out)
    }

    /// Column means, accumulated in f64 (deterministically: fixed row chunks, fixed order).
    pub fn column_means(&self) -> Vec<f64> {
        let mut sums = self.column_sums();
        if self.rows > 0 {
            let inv = 1.0 / self.rows as f64;
            sums.iter_mut().for_each(|s| *s *= inv);
        }
        sums
    }

    /// Column sums in f64.
    pub(crate) fn column_sums(&self) -> Vec<f64> {
        let c = self.cols;
        if c == 0 || self.rows == 0 {
            return vec![0.0; c];
        }
        // Fixed chunks of rows so the result does not depend on the thread count.
        const ROWS_PER_CHUNK: usize = 256;
        let partial = |chunk: &[f32]| {
            let mut acc = vec![0.0f64; c];
            for row in chunk.chunks_exact(c) {
                for (a, &x) in acc.iter_mut().zip(row) {
                    *a += x as f64;
                }
            }
            acc
        };
        let parts: Vec<Vec<f64>> = if self.data.len() >= PAR_ELEMS {
            self.data
                .par_chunks(ROWS_PER_CHUNK * c)
                .map(partial)
                .collect()
        } else {
            self.data.chunks(ROWS_PER_CHUNK * c).map(partial).collect()
        };
        let mut total = vec![0.0f64; c];
        for p in parts {
            for (t, x) in total.iter_mut().zip(p) {
                *t += x;
            }
        }
        total
    }

    /// Row means in f64.
    pub fn row_means(&self) -> Vec<f64> {
        let c = self.cols;
        self.map_rows(|row| {
            if c == 0 {
                0.0
            } else {
                row.iter().map(|&x| x as f64).sum::<f64>() / c as f64
            }
        })
    }

    /// Subtracts each column's mean from that column (the "mean row" is removed, so a shared
    /// offset such as norm weights near 1 no longer dominates cosines). Returns the means.
    pub fn centre_columns(&mut self) -> Vec<f64> {
        let means = self.column_means();
        let c = self.cols;
        if c == 0 {
            return means;
        }
        let body = |row: &mut [f32]| {
            for (x, &m) in row.iter_mut().zip(&means) {
                *x = (*x as f64 - m) as f32;
            }
        };
        if self.data.len() >= PAR_ELEMS {
            self.data.par_chunks_mut(c).for_each(body);
        } else {
            self.data.chunks_mut(c).for_each(body);
        }
        means
    }

    /// Subtracts each row's mean from that row. Returns the means.
    pub fn centre_rows(&mut self) -> Vec<f64> {
        let means = self.row_means();
        let c = self.cols;
        if c == 0 {
            return means;
        }
        let body = |(row, &m): (&mut [f32], &f64)| {
            for x in row.iter_mut() {
                *x = (*x as f64 - m) as f32;
            }
        };
        if self.data.len() >= PAR_ELEMS {
            self.data.par_chunks_mut(c).zip(&means).for_each(body);
        } else {
            self.data.chunks_mut(c).zip(&means).for_each(body);
        }
        means
    }

    /// Euclidean norm of every row, accumulated in f64.
    pub fn row_norms(&self) -> Vec<f64> {
        self.map_rows(|row| {
            row.iter()
                .map(|&x| (x as f64) * (x as f64))
                .sum::<f64>()
                .sqrt()
        })
    }

    /// Scales every row to unit norm; zero rows stay zero. Returns the original norms.
    pub fn normalize_rows(&mut self) -> Vec<f64> {
        let norms = self.row_norms();
        let c = self.cols;
        if c == 0 {
            return norms;
        }
        let body = |(row, &n): (&mut [f32], &f64)| {
            if n > 0.0 {
                let inv = 1.0 / n;
                for x in row.iter_mut() {
                    *x = (*x as f64 * inv) as f32;
                }
            }
        };
        if self.data.len() >= PAR_ELEMS {
            self.data.par_chunks_mut(c).zip(&norms).for_each(body);
        } else {
            self.data.chunks_mut(c).zip(&norms).for_each(body);
        }
        norms
    }

    /// Frobenius norm (f64 accumulation).
    pub fn frobenius_norm(&self) -> f64 {
        self.row_norms().iter().map(|n| n * n).sum::<f64>().sqrt()
    }

    /// The rows listed in `indices`, in that order (a row permutation when `indices` is one).
    pub fn select_rows(&self, indices: &[usize]) -> Result<Mat> {
        let c = self.cols;
        let mut out = Mat::zeros(indices.len(), c);
        for (k, &i) in indices.iter().enumerate() {
            if i >= self.rows {
                return Err(StatsError::InvalidArgument(format!(
                    "row index {i} out of range for {} rows",
                    self.rows
                )));
            }
            out.data[k * c..(k + 1) * c].copy_from_slice(self.row(i));
        }
        Ok(out)
    }

    /// Applies `f` to every row (in parallel for large matrices), collecting in row order.
    fn map_rows<T: Send>(&self, f: impl Fn(&[f32]) -> T + Sync + Send) -> Vec<T> {
        let c = self.cols;
        if c == 0 {
            return (0..self.rows).map(|_| f(&[])).collect();
        }
        if self.data.len() >= PAR_ELEMS {
            self.data.par_chunks(c).map(f).collect()
        } else {
            self.data.chunks(c).map(f).collect()
        }
    }
}

/// Cosine similarity between every row of `a` and every row of `b`: an `a.rows x b.rows`
/// matrix. This is the unit-by-unit comparison behind phi_U-style tests.
///
/// Computed as one GEMM `a b^T` followed by scaling with f64 row norms, so no normalized copy
/// of either input is made. A zero row has cosine 0 with everything (it carries no
/// direction, and 0 is the value an unrelated direction would score). Results are clamped
/// to [-1, 1] (f32 rounding can otherwise give 1.0000001).
pub fn cosine_similarity(a: &Mat, b: &Mat) -> Result<Mat> {
    if a.cols != b.cols {
        return Err(StatsError::Shape(format!(
            "cosine between rows of length {} and {}",
            a.cols, b.cols
        )));
    }
    a.check_finite("cosine_similarity lhs")?;
    b.check_finite("cosine_similarity rhs")?;
    let mut g = a.matmul_transpose(b)?;
    let inv = |v: Vec<f64>| -> Vec<f64> {
        v.into_iter()
            .map(|n| if n > 0.0 { 1.0 / n } else { 0.0 })
            .collect()
    };
    let ia = inv(a.row_norms());
    let ib = inv(b.row_norms());
    let nb = b.rows;
    if nb == 0 {
        return Ok(g);
    }
    let body = |(row, &sa): (&mut [f32], &f64)| {
        for (x, &sb) in row.iter_mut().zip(&ib) {
            *x = ((*x as f64) * sa * sb).clamp(-1.0, 1.0) as f32;
        }
    };
    if g.data.len() >= PAR_ELEMS {
        g.data.par_chunks_mut(nb).zip(&ia).for_each(body);
    } else {
        g.data.chunks_mut(nb).zip(&ia).for_each(body);
    }
    Ok(g)
}

/// `a^T b` in f64, streaming `chunk` rows at a time through f64 buffers so memory stays
/// bounded by `chunk * (da + db)` whatever the number of rows. Used where cancellation makes
/// f32 accumulation unsafe (unbiased HSIC, Procrustes residuals).
pub(crate) fn cross_product_f64(a: &Mat, b: &Mat) -> Result<faer::Mat<f64>> {
    if a.rows != b.rows {
        return Err(StatsError::Shape(format!(
            "cross product needs equal row counts, got {} and {}",
            a.rows, b.rows
        )));
    }
    let (n, da, db) = (a.rows, a.cols, b.cols);
    let mut acc = faer::Mat::<f64>::zeros(da, db);
    if n == 0 || da == 0 || db == 0 {
        return Ok(acc);
    }
    const CHUNK: usize = 1024;
    let cap = CHUNK.min(n);
    let mut ba = vec![0.0f64; cap * da];
    let mut bb = vec![0.0f64; cap * db];
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        let sa = &a.data[start * da..(start + len) * da];
        let sb = &b.data[start * db..(start + len) * db];
        ba[..len * da]
            .iter_mut()
            .zip(sa)
            .for_each(|(d, &s)| *d = s as f64);
        bb[..len * db]
            .iter_mut()
            .zip(sb)
            .for_each(|(d, &s)| *d = s as f64);
        let va = MatRef::from_row_major_slice(&ba[..len * da], len, da);
        let vb = MatRef::from_row_major_slice(&bb[..len * db], len, db);
        matmul(
            acc.as_mut(),
            Accum::Add,
            va.transpose(),
            vb,
            1.0f64,
            faer_par(len * da * db),
        );
        start += len;
    }
    Ok(acc)
}

/// Copies a faer f64 matrix into a row-major f32 [`Mat`].
pub(crate) fn from_faer_f64(m: MatRef<'_, f64>) -> Mat {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] as f32)
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

    fn naive_matmul(a: &Mat, b: &Mat) -> Vec<f64> {
        let mut out = vec![0.0; a.rows() * b.cols()];
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                for k in 0..a.cols() {
                    out[i * b.cols() + j] += a.row(i)[k] as f64 * b.row(k)[j] as f64;
                }
            }
        }
        out
    }

    fn small_mat(max: usize) -> impl Strategy<Value = Mat> {
        (1..max, 1..max).prop_flat_map(|(r, c)| {
            prop::collection::vec(-10.0f32..10.0, r * c)
                .prop_map(move |v| Mat::from_vec(r, c, v).unwrap())
        })
    }

    #[test]
    fn shapes_are_checked() {
        assert!(Mat::from_vec(2, 3, vec![0.0; 5]).is_err());
        assert!(Mat::from_rows(&[vec![1.0f32, 2.0], vec![3.0]]).is_err());
        let a = Mat::zeros(2, 3);
        assert!(a.matmul(&Mat::zeros(2, 3)).is_err());
        assert!(a.matmul_transpose(&Mat::zeros(2, 2)).is_err());
        assert!(cosine_similarity(&a, &Mat::zeros(4, 2)).is_err());
        assert!(a.select_rows(&[2]).is_err());
    }

    #[test]
    fn empty_matrices_work() {
        let a = Mat::zeros(0, 3);
        let b = Mat::zeros(3, 4);
        assert_eq!(a.matmul(&b).unwrap().shape(), (0, 4));
        assert_eq!(a.transpose().shape(), (3, 0));
        assert_eq!(
            Mat::zeros(2, 0).matmul(&Mat::zeros(0, 2)).unwrap(),
            Mat::zeros(2, 2)
        );
        assert_eq!(Mat::zeros(2, 0).row_norms(), vec![0.0, 0.0]);
        assert_eq!(a.column_means(), vec![0.0; 3]);
    }

    #[test]
    fn nan_rejected_by_cosine() {
        let mut a = Mat::zeros(2, 2);
        a.as_mut_slice()[3] = f32::NAN;
        let err = cosine_similarity(&a, &Mat::identity(2)).unwrap_err();
        assert_eq!(
            err,
            StatsError::NonFinite {
                what: "cosine_similarity lhs",
                index: 3
            }
        );
    }

    #[test]
    fn cosine_known_values() {
        let a = Mat::from_rows(&[[1.0f32, 0.0], [1.0, 1.0], [0.0, 0.0]]).unwrap();
        let b = Mat::from_rows(&[[2.0f32, 0.0], [0.0, -3.0]]).unwrap();
        let c = cosine_similarity(&a, &b).unwrap();
        let want = [1.0, 0.0, 0.5f64.sqrt(), -(0.5f64.sqrt()), 0.0, 0.0];
        for (x, w) in c.as_slice().iter().zip(want) {
            assert!((*x as f64 - w).abs() < 1e-6, "{x} vs {w}");
        }
    }

    #[test]
    fn large_matmul_matches_naive_and_parallel_paths() {
        // Large enough to take the parallel faer and rayon paths.
        let a = Mat::from_fn(130, 70, |i, j| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b = Mat::from_fn(70, 90, |i, j| ((i * 5 + j * 2) % 13) as f32 - 6.0);
        let got = a.matmul(&b).unwrap();
        let want = naive_matmul(&a, &b);
        for (g, w) in got.as_slice().iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-3);
        }
        let t = Mat::from_fn(300, 400, |i, j| (i * 400 + j) as f32);
        let tt = t.transpose();
        assert_eq!(tt.shape(), (400, 300));
        assert_eq!(tt.get(399, 299), Some((299 * 400 + 399) as f32));
        assert_eq!(tt.transpose(), t);
    }

    #[test]
    fn centring() {
        let mut a = Mat::from_rows(&[[1.0f32, 10.0], [3.0, 20.0]]).unwrap();
        let means = a.clone().centre_columns();
        assert_eq!(means, vec![2.0, 15.0]);
        let rm = a.centre_rows();
        assert_eq!(rm, vec![5.5, 11.5]);
        assert_eq!(a.as_slice(), &[-4.5, 4.5, -8.5, 8.5]);
    }

    #[test]
    fn cross_product_matches_naive() {
        let a = Mat::from_fn(2100, 3, |i, j| ((i + 2 * j) % 7) as f32 * 0.5);
        let b = Mat::from_fn(2100, 2, |i, j| ((3 * i + j) % 5) as f32 - 2.0);
        let got = cross_product_f64(&a, &b).unwrap();
        let want = naive_matmul(&a.transpose(), &b);
        for i in 0..3 {
            for j in 0..2 {
                assert!((got[(i, j)] - want[i * 2 + j]).abs() < 1e-9);
            }
        }
    }

    proptest! {
        #[test]
        fn matmul_matches_naive(a in small_mat(9), seed in 0u64..1000) {
            let b = Mat::from_fn(a.cols(), 5, |i, j| (((i * 31 + j * 17) as u64 + seed) % 19) as f32 - 9.0);
            let got = a.matmul(&b).unwrap();
            let want = naive_matmul(&a, &b);
            for (g, w) in got.as_slice().iter().zip(&want) {
                prop_assert!((*g as f64 - w).abs() < 1e-3 * (1.0 + w.abs()));
            }
            let got_t = a.matmul_transpose(&b.transpose()).unwrap();
            prop_assert_eq!(got_t.shape(), got.shape());
            for (g, w) in got_t.as_slice().iter().zip(&want) {
                prop_assert!((*g as f64 - w).abs() < 1e-3 * (1.0 + w.abs()));
            }
        }

        #[test]
        fn transpose_involution(a in small_mat(40)) {
            let t = a.transpose();
            for i in 0..a.rows() {
                for j in 0..a.cols() {
                    prop_assert_eq!(a.get(i, j), t.get(j, i));
                }
            }
            prop_assert_eq!(t.transpose(), a);
        }

        #[test]
        fn cosine_in_range_and_normalized(a in small_mat(12)) {
            let c = cosine_similarity(&a, &a).unwrap();
            let norms = a.row_norms();
            for i in 0..a.rows() {
                for j in 0..a.rows() {
                    let x = c.get(i, j).unwrap();
                    prop_assert!((-1.0..=1.0).contains(&x));
                }
                if norms[i] > 1e-3 {
                    prop_assert!((c.get(i, i).unwrap() - 1.0).abs() < 1e-4);
                }
            }
            let mut n = a.clone();
            n.normalize_rows();
            for (k, norm) in n.row_norms().into_iter().enumerate() {
                if norms[k] > 0.0 {
                    prop_assert!((norm - 1.0).abs() < 1e-5);
                }
            }
        }

        #[test]
        fn centred_columns_have_zero_mean(a in small_mat(20)) {
            let mut c = a.clone();
            c.centre_columns();
            for m in c.column_means() {
                prop_assert!(m.abs() < 1e-4);
            }
        }
    }
}
