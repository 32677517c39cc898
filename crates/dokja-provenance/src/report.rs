//! What `compare` returns. The JSON form is a contract other tools rely on: the top-level
//! `verdict` is the overall verdict and `components` is a list of objects each with at least
//! `component` and `verdict`. Add fields; never rename or remove these.

use serde::{Deserialize, Serialize};

use crate::align::AlignmentSummary;
use crate::identity::IdentityFinding;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The same weights (up to dtype rounding, format, names, order).
    Identical,
    /// H0 "initialized independently" rejected: fine-tuned, continued, pruned, quantized...
    Derived,
    /// No evidence against independent initialization. Not proof of it.
    Independent,
    /// Evidence too weak or too ambiguous either way; the reason says why.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::Derived => "derived",
            Verdict::Independent => "independent",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub verdict: Verdict,
    pub summary: String,
    pub a: ModelRef,
    pub b: ModelRef,
    pub components: Vec<ComponentReport>,
    /// Components present in only one model (not compared).
    pub not_compared: Vec<String>,
    pub method: Method,
    pub scope: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRef {
    pub path: String,
    pub format: String,
    /// blake3 of the fingerprint file when this side was a fingerprint, not weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub family: String,
    pub tensors: usize,
    pub parameters: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentReport {
    pub component: String,
    pub verdict: Verdict,
    pub reason: String,
    /// True for findings that are never decisive (tokenizer, config).
    pub circumstantial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityFinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alignment: Option<AlignmentSummary>,
    pub statistics: Vec<Statistic>,
    pub layers: Vec<LayerEvidence>,
    pub transformations: Vec<String>,
}

/// One calibrated statistic.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Statistic {
    pub name: String,
    pub value: f64,
    pub null_mean: f64,
    pub null_sd: f64,
    pub null_max: f64,
    pub null_size: usize,
    pub null_method: String,
    /// (value - null_mean) / null_sd.
    pub z: f64,
    /// log10 of the one-sided p-value (Gaussian tail of the null; see `p_method`).
    pub log10_p: f64,
    pub p_method: String,
    /// value - null_max: how far above anything the null produced.
    pub excess: f64,
}

/// Evidence from one pair of matched layers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LayerEvidence {
    /// None for matrices outside any layer (projectors, tower-level heads).
    pub layer_a: Option<u32>,
    pub layer_b: Option<u32>,
    /// Per matrix kind: (kind, best-partner cosine median, excess over the null's maximum).
    pub kinds: Vec<KindScore>,
    pub log10_p: f64,
    pub median_excess: f64,
    pub carries_evidence: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KindScore {
    pub kind: String,
    pub statistic: String,
    pub score: f64,
    pub same_index: f64,
    pub null_max: f64,
    pub excess: f64,
    pub log10_p: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Method {
    pub tool: String,
    pub seed: u64,
    pub sketch_dim: usize,
    pub query_units: usize,
    pub max_null_pairs: usize,
    pub alpha: f64,
    pub effect_margin: f64,
    pub embedding_effect_margin: f64,
    pub permutation_fit_min: f64,
    pub layer_combination: String,
    pub multiple_testing: String,
}

pub const SCOPE: &str = "H0: the weights of each component were initialized independently of the other model. \
'derived' and 'identical' reject H0 for that component; 'independent' means no evidence against H0, not proof \
of training from scratch. Weights only: distillation, shared data and shared public initializations are not tested. \
Tokenizer and config findings are circumstantial and never decide a verdict.";

/// Whether an audit compares a registry entry in full (see [`crate::engine::prefilter`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefilter {
    pub passed: bool,
    pub reason: String,
}
