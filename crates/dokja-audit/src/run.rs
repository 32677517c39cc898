//! Running an audit: the candidate against every registry entry (prefilter, then the full
//! comparison with the entry as the possible parent), with the significance level shared
//! across the registry (Bonferroni over the entries compared in full).

use std::path::Path;

use dokja_formats::Model;
use dokja_provenance::slots::ModelSlots;
use dokja_provenance::{CompareOptions, Fingerprint, ProvenanceError, Subject};

use crate::input::{
    AuditInput, Candidate, EntryInfo, EntryResult, FileDigest, Prefilter, RegistryInfo,
};

/// Called before each full comparison: (entry name, index among those compared, how many).
pub type EntryProgress = std::sync::Arc<dyn Fn(&str, usize, usize) + Send + Sync>;

/// Describes the candidate, digests its files (what makes the audit reproducible).
pub fn describe_candidate(model: &Model) -> Result<Candidate, ProvenanceError> {
    let slots = ModelSlots::of(model);
    let files = dokja_provenance::fingerprint::file_digests(model)?
        .into_iter()
        .map(|f| FileDigest {
            name: f.name,
            bytes: f.bytes,
            blake3: f.blake3,
        })
        .collect();
    Ok(Candidate {
        path: model.path.display().to_string(),
        format: model.format.name().to_string(),
        family: slots.family.display_name().to_string(),
        parameters: model
            .tensors
            .iter()
            .zip(&slots.classes)
            .filter(|(_, c)| c.learned)
            .map(|(t, _)| t.n_elements())
            .sum(),
        licence: model.sidecars.licence.as_ref().and_then(|l| l.id.clone()),
        files,
        components: slots
            .components
            .keys()
            .filter(|c| **c != dokja_schema::Component::Unclassified)
            .map(|c| c.as_str().to_string())
            .collect(),
    })
}

/// Compares the candidate with each entry. Every entry the prefilter keeps is compared in
/// full at `opts.alpha / (entries compared)`, so the chance of any false `derived` over the
/// whole registry stays at `opts.alpha`.
pub fn compare_with_registry(
    candidate: &Model,
    entries: &[(EntryInfo, &Fingerprint)],
    opts: &CompareOptions,
    progress: Option<EntryProgress>,
) -> Result<Vec<EntryResult>, ProvenanceError> {
    let cand = Subject::Weights(candidate);
    let prefilters: Vec<Prefilter> = entries
        .iter()
        .map(|(_, fp)| {
            let p = dokja_provenance::prefilter(Subject::Fingerprint(fp), cand);
            Prefilter {
                passed: p.passed,
                reason: p.reason,
            }
        })
        .collect();
    let compared = prefilters.iter().filter(|p| p.passed).count();
    let mut per_entry = opts.clone();
    per_entry.alpha = opts.alpha / compared.max(1) as f64;
    let mut results = Vec::with_capacity(entries.len());
    let mut index = 0;
    for ((info, fp), prefilter) in entries.iter().zip(prefilters) {
        let comparison = if prefilter.passed {
            if let Some(p) = &progress {
                p(&info.name, index, compared);
            }
            index += 1;
            Some(dokja_provenance::compare_subjects(
                Subject::Fingerprint(fp),
                cand,
                &per_entry,
            )?)
        } else {
            None
        };
        results.push(EntryResult {
            entry: info.clone(),
            prefilter,
            comparison,
        });
    }
    Ok(results)
}

/// The audit's input, ready for [`crate::decide`].
pub fn audit_input(
    candidate: Candidate,
    registry_path: &Path,
    results: Vec<EntryResult>,
    opts: &CompareOptions,
    created: String,
) -> AuditInput {
    AuditInput {
        candidate,
        registry: RegistryInfo {
            path: registry_path.display().to_string(),
            entries: results.len(),
        },
        results,
        tool: format!("dokja {}", env!("CARGO_PKG_VERSION")),
        seed: opts.seed,
        alpha: opts.alpha,
        created,
    }
}

/// Now, as RFC 3339 UTC (seconds).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_shape() {
        let s = super::now_rfc3339();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
