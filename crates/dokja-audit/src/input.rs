//! What the audit is given: the candidate, the registry, and the comparison of the candidate
//! against each registry entry (made by `dokja_provenance::compare(entry, candidate)`, so the
//! entry is model A, the possible parent, and the candidate model B).

use dokja_provenance::Comparison;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditInput {
    pub candidate: Candidate,
    pub registry: RegistryInfo,
    /// One per registry entry, in registry order.
    pub results: Vec<EntryResult>,
    /// The tool and version that made the comparisons, e.g. "dokja 0.1.0".
    pub tool: String,
    pub seed: u64,
    /// Significance level of a `derived` verdict (before the per-comparison Bonferroni).
    pub alpha: f64,
    /// RFC 3339 time given by the caller: the only field that varies between two runs on the
    /// same inputs.
    pub created: String,
}

/// The model under audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub path: String,
    pub format: String,
    pub family: String,
    /// Learned parameters.
    pub parameters: u64,
    /// Declared licence identifier, if any.
    pub licence: Option<String>,
    /// Every file read, with its digest: what makes the audit reproducible.
    pub files: Vec<FileDigest>,
    /// The candidate's weight components (from `inspect`), so that a component no registry
    /// entry has is still listed. Optional: components seen in the comparisons are always listed.
    #[serde(default)]
    pub components: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub name: String,
    pub bytes: u64,
    /// Hex BLAKE3 of the file's bytes.
    pub blake3: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    pub path: String,
    pub entries: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryResult {
    pub entry: EntryInfo,
    pub prefilter: Prefilter,
    /// None when the prefilter dropped the entry.
    pub comparison: Option<Comparison>,
}

/// A registry entry: a public model the candidate is checked against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    pub id: String,
    pub name: String,
    pub org: String,
    pub origin_country: Option<String>,
    /// Licence identifier as the registry records it (SPDX-like, lower case); None if unknown.
    pub licence: Option<String>,
    /// Release date (free text, usually YYYY-MM-DD).
    pub released: Option<String>,
}

/// The cheap check run before a full comparison (`dokja_provenance::prefilter`): an entry
/// that shares no matrix kind or tensor shape with the candidate cannot be a parent.
pub use dokja_provenance::Prefilter;
