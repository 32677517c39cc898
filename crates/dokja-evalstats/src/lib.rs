//! Statistics for benchmark results that hold up.
//!
//! - [`summary`]: per task, the mean score with its standard error (clustered where items are
//!   grouped), a normal and a seeded percentile-bootstrap interval, and the answer-extraction
//!   failure rate beside it; per suite, micro or macro averaging, stated in the result.
//! - [`compare`]: against a reference model on the same items, the paired difference and the
//!   ratio (delta method and bootstrap), and the 95% rule computed as ratio of means and as
//!   mean of ratios, the verdict on the ratio of suite means (reason in
//!   [`compare::CHOSEN_AGGREGATION_REASON`]).
//! - [`registry`]: reference models with release dates, and the global models released in the
//!   six calendar months before an evaluation date.
//!
//! Decisions are recorded in `docs/bench-statistics.md`.

pub mod compare;
pub mod error;
pub mod normal;
pub mod registry;
mod rng;
pub mod summary;

pub use compare::{
    Estimate, PairedComparison, RatioAggregation, RatioRule, compare_paired, ratio_rule,
};
pub use error::{EvalStatsError, Result};
pub use registry::{Date, ReferenceModel, ReferenceRegistry, ReleaseWindow};
pub use summary::{
    Averaging, Interval, IntervalConfig, ItemObs, SeKind, SuiteSummary, TaskScores, TaskSummary,
    summarize, summarize_suite,
};
