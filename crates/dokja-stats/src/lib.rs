//! Numerics and statistics for dokja's provenance tests.
//!
//! The question is a hypothesis test, H0 = "these weights were initialized independently of
//! model X" (Zhu et al., ICML 2025), and the answers must be calibrated. This crate provides
//! the building blocks, each documented with the reason it exists:
//!
//! - [`matrix`]: a row-major f32 matrix with faer GEMM, centring, norms, cosine matrices.
//! - [`assignment`]: rectangular linear sum assignment (Jonker–Volgenant / Crouse), to undo
//!   unit permutations and match pruned or reordered units.
//! - [`similarity`]: unbiased linear CKA, Pearson, Spearman, centred cosine.
//! - [`procrustes`]: orthogonal Procrustes (for residual-stream rotations) and signed
//!   permutation alignment.
//! - [`pvalue`]: p-values in log space ([`pvalue::LogP`]), empirical and Gaussian-tail
//!   p-values, Cauchy and harmonic-mean combinations, Holm and Bonferroni corrections.
//! - [`ranktest`]: phi_U-style unit matching statistics, their exact null for the identity
//!   count, and deterministic permutation nulls.
//! - [`random`]: seeded, chunk-deterministic Gaussian projections, streaming sketches and
//!   index sampling.
//! - [`special`]: erfc/erfcx, log normal tails, log factorials.
//!
//! Bad input (empty, NaN/inf, mismatched shapes, degenerate variance) is a [`StatsError`],
//! never a panic or a silent NaN.

pub mod assignment;
pub mod error;
pub mod matrix;
pub mod procrustes;
pub mod pvalue;
pub mod random;
pub mod ranktest;
pub mod similarity;
pub mod special;

pub use assignment::{Assignment, Objective, linear_sum_assignment, linear_sum_assignment_mat};
pub use error::{Result, StatsError};
pub use matrix::{Mat, cosine_similarity};
pub use pvalue::LogP;
