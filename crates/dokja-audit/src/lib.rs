//! `dokja audit`'s decision and documents. The comparisons of a candidate against every
//! registry entry (made elsewhere, with `dokja_provenance::compare`) become:
//!
//! - per candidate component, the most serious verdict over the registry and the closest
//!   known parent with its evidence;
//! - the programme's decision: FAIL when a weight component was not initialized by the team
//!   (identical to or derived from a registry model) or when a reused component's parent
//!   carries a restrictive licence; REVIEW when a component is inconclusive; PASS otherwise,
//!   always with its scope ("no evidence" is not proof);
//! - reports: terminal text, Markdown, one self-contained HTML file (inline CSS and SVG, no
//!   scripts, no external reference) and JSON (serde of [`Audit`], docs/audit-report.md).
//!
//! Every number a report shows is read from the [`Audit`]; the HTML carries each one in a
//! `data-json` (JSON pointer into the audit's JSON) / `data-value` pair so tests can check it.

mod audit;
mod html;
pub mod input;
pub mod licence;
mod render;
pub mod run;
mod svg;

pub use audit::{
    Audit, AuditInputs, Axes, Axis, AxisOutcome, CircumstantialFinding, ClosestParent,
    ComponentAudit, ComponentVerdict, Decision, EntryOutcome, EntryVerdict, Reason, SCHEMA, Scope,
    Strength, decide, seriousness,
};
pub use html::render_html;
pub use input::{
    AuditInput, Candidate, EntryInfo, EntryResult, FileDigest, Prefilter, RegistryInfo,
};
pub use render::{render_json, render_markdown, render_terminal};

/// An input that does not describe one audit consistently: the CLI's exit code 2.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the registry has {registry} entries but {results} results were given")]
    EntryCount { registry: usize, results: usize },
    #[error("registry entry {0:?} appears twice")]
    DuplicateEntry(String),
    #[error("registry entry {0:?} passed the prefilter but has no comparison")]
    MissingComparison(String),
    #[error("registry entry {0:?} was dropped by the prefilter but has a comparison")]
    UnexpectedComparison(String),
    #[error("{0} is empty")]
    EmptyField(&'static str),
}

/// Checks that `input` describes one audit consistently (the decision itself is total).
pub fn validate(input: &AuditInput) -> Result<(), InputError> {
    if input.results.len() != input.registry.entries {
        return Err(InputError::EntryCount {
            registry: input.registry.entries,
            results: input.results.len(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &input.results {
        if r.entry.id.is_empty() {
            return Err(InputError::EmptyField("a registry entry's id"));
        }
        if !seen.insert(r.entry.id.as_str()) {
            return Err(InputError::DuplicateEntry(r.entry.id.clone()));
        }
        match (r.prefilter.passed, r.comparison.is_some()) {
            (true, false) => return Err(InputError::MissingComparison(r.entry.id.clone())),
            (false, true) => return Err(InputError::UnexpectedComparison(r.entry.id.clone())),
            _ => {}
        }
    }
    for (field, value) in [
        ("created", &input.created),
        ("tool", &input.tool),
        ("candidate.path", &input.candidate.path),
    ] {
        if value.trim().is_empty() {
            return Err(InputError::EmptyField(field));
        }
    }
    Ok(())
}
