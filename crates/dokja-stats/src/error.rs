//! One error type for the whole crate. Statistics feed verdicts that a committee must be able
//! to defend, so bad input (empty, NaN/inf, mismatched shapes, degenerate variance) is reported
//! as an error instead of silently producing NaN, a panic, or an endless loop.

/// Everything that can go wrong in `dokja-stats`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// An input that must hold data holds none.
    #[error("empty input: {0}")]
    Empty(&'static str),
    /// A NaN or infinity where only finite numbers make sense.
    #[error("non-finite value in {what} at index {index}")]
    NonFinite { what: &'static str, index: usize },
    /// Dimensions that must agree do not.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A parameter outside its valid range (k > n, weights that sum to zero, p > 1, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The statistic is undefined for this data (zero variance, too few rows, ...).
    #[error("degenerate input: {0}")]
    Degenerate(String),
    /// A numerical procedure failed (overflow during assignment, SVD did not converge).
    #[error("numerical failure: {0}")]
    Numerical(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = StatsError> = std::result::Result<T, E>;

/// Returns an error naming the first non-finite value of `values`.
pub(crate) fn check_finite<T: Copy + Into<f64>>(what: &'static str, values: &[T]) -> Result<()> {
    match values.iter().position(|&v| !v.into().is_finite()) {
        Some(index) => Err(StatsError::NonFinite { what, index }),
        None => Ok(()),
    }
}
