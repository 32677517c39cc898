//! Errors: statistics that feed a verdict refuse bad input rather than print NaN.

/// Everything that can go wrong in `dokja-evalstats`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalStatsError {
    /// No items where some are needed.
    #[error("empty input: {0}")]
    Empty(String),
    /// A score that is NaN or infinite.
    #[error("non-finite score in {what} at item {index}")]
    NonFinite { what: String, index: usize },
    /// Model and reference were not run on the same items.
    #[error("task `{task}`: model and reference items differ ({detail})")]
    Unpaired { task: String, detail: String },
    /// The statistic is undefined for this data (reference mean of zero, one item...).
    #[error("degenerate input: {0}")]
    Degenerate(String),
    /// A parameter out of range (confidence level, number of resamples).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A date that does not parse or does not exist.
    #[error("invalid date {0:?}: expected YYYY-MM-DD")]
    Date(String),
    /// A reference registry file that does not parse.
    #[error("reference registry: {0}")]
    Registry(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = EvalStatsError> = std::result::Result<T, E>;
