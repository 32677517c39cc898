//! Provenance: were the weights of each component of model B initialized independently of
//! model A? Evidence is layered from cheap to strong:
//!
//! 1. identity ([`identity`]): the same numbers, up to dtype rounding or quantization;
//! 2. alignment ([`align`]): B's residual basis put in correspondence with A's through
//!    anchors both models share (token strings, pixels, positions);
//! 3. unit matching ([`units`]): after alignment, does each unit of A have a partner in B?
//!    Calibrated per matrix kind against a null computed from the pair itself: the same
//!    statistic between *different* layers (which share the residual space and the data but
//!    not initialization) and between units whose correspondence was destroyed;
//! 4. circumstantial findings ([`tokenizer`]) reported, never decisive.
//!
//! A verdict of `derived` needs both a small p-value and an effect that no null pair came
//! close to (see [`EFFECT_MARGIN`]): a false "derived" on an independent model is the worst
//! failure this crate can have.

pub mod align;
mod config;
mod engine;
pub mod fingerprint;
pub mod identity;
mod onepass;
pub mod report;
pub mod slots;
pub mod subject;
pub mod tokenizer;
pub mod units;

pub use engine::{compare, compare_subjects, prefilter};
pub use fingerprint::Fingerprint;
pub use report::{Comparison, ComponentReport, Prefilter, Verdict};
pub use subject::Subject;

/// Overall significance level of a `derived` verdict, before Bonferroni over components.
pub const ALPHA: f64 = 1e-6;
/// A layer carries evidence when its units' best-partner cosine exceeds the largest value of
/// its null by this much (median over matrix kinds). Inherited units keep cosines near 1
/// after fine-tuning and above 0.5 after long continued training; independent models stay
/// within the null's range.
pub const EFFECT_MARGIN: f64 = 0.2;
/// Held-out token embeddings must align this far above random pairings to count. Independent
/// models share language structure: SmolLM2-135M and Gemma-3-270M (unrelated) align at a
/// median cosine of 0.13 against a null maximum of 0.004, so a significant p alone means
/// nothing here.
pub const EMBEDDING_EFFECT_MARGIN: f64 = 0.3;

/// A progress event: `done` of `total` matrices of `component` read and sketched.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    pub component: &'a str,
    pub done: u64,
    pub total: u64,
    /// Weight bytes read so far in this component (throughput).
    pub bytes: u64,
}

pub type ProgressFn = std::sync::Arc<dyn Fn(Progress<'_>) + Send + Sync>;

#[derive(Clone)]
pub struct CompareOptions {
    pub seed: u64,
    /// Sketch dimension k for unit directions.
    pub sketch_dim: usize,
    /// Query units per matrix.
    pub query_units: usize,
    /// Cross-layer null pairs per matrix kind.
    pub max_null_pairs: usize,
    /// Shared token strings used as anchors.
    pub max_anchors: usize,
    /// Family-wise significance level of a `derived` verdict for this comparison (an audit
    /// divides [`ALPHA`] by the number of registry models it tests).
    pub alpha: f64,
    /// Called as matrices are read; the library never prints.
    pub progress: Option<ProgressFn>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            seed: 0x646f6b6a61,
            sketch_dim: 128,
            query_units: 256,
            max_null_pairs: 48,
            max_anchors: 4096,
            alpha: ALPHA,
            progress: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error(transparent)]
    Format(#[from] dokja_formats::FormatError),
    #[error(transparent)]
    Fingerprint(#[from] fingerprint::FingerprintError),
    #[error("{0}")]
    Mismatch(String),
    #[error("statistics: {0}")]
    Stats(#[from] dokja_stats::StatsError),
}

pub type Result<T, E = ProvenanceError> = std::result::Result<T, E>;
