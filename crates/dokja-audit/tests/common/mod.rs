//! Real comparisons of synthetic models (written by dokja-testkit, read by dokja-formats,
//! compared by dokja-provenance), assembled into audit inputs.

#![allow(dead_code)] // each test file uses its own part

pub mod page;
pub mod scenarios;

use std::path::Path;

use dokja_audit::{
    AuditInput, Candidate, EntryInfo, EntryResult, FileDigest, Prefilter, RegistryInfo,
};
use dokja_formats::{Model, OpenOptions};
use dokja_provenance::{
    CompareOptions, Fingerprint, Subject, compare, compare_subjects, prefilter,
};
use dokja_testkit::{StDtype, SynthModel, WeightsLayout, write_hf_folder};

pub fn save(m: &SynthModel, dir: &Path) -> Model {
    write_hf_folder(m, dir, WeightsLayout::Single, StDtype::F32).unwrap();
    Model::open(dir, OpenOptions::default()).unwrap()
}

pub fn entry(id: &str, licence: Option<&str>) -> EntryInfo {
    EntryInfo {
        id: id.to_string(),
        name: format!("Model {id}"),
        org: format!("Org of {id}"),
        origin_country: Some("XX".into()),
        licence: licence.map(str::to_string),
        released: Some("2025-01-01".into()),
    }
}

/// The entry (model A, the possible parent) compared with the candidate (model B) as the
/// audit does it: the real prefilter, then the real comparison.
pub fn compared(entry: EntryInfo, parent: &Model, candidate: &Model) -> EntryResult {
    let prefilter = prefilter(Subject::Weights(parent), Subject::Weights(candidate));
    assert!(prefilter.passed, "{}: {}", entry.id, prefilter.reason);
    EntryResult {
        entry,
        prefilter,
        comparison: Some(compare(parent, candidate, &CompareOptions::default()).unwrap()),
    }
}

/// The same with the entry known only by its fingerprint file (as a registry ships it).
pub fn compared_as_fingerprint(
    entry: EntryInfo,
    parent: &Model,
    file: &Path,
    candidate: &Model,
) -> EntryResult {
    let opts = CompareOptions::default();
    Fingerprint::build(parent, &opts, None)
        .unwrap()
        .write(file)
        .unwrap();
    let fingerprint = Fingerprint::read(file).unwrap();
    let prefilter = prefilter(
        Subject::Fingerprint(&fingerprint),
        Subject::Weights(candidate),
    );
    assert!(prefilter.passed, "{}: {}", entry.id, prefilter.reason);
    EntryResult {
        entry,
        prefilter,
        comparison: Some(
            compare_subjects(
                Subject::Fingerprint(&fingerprint),
                Subject::Weights(candidate),
                &opts,
            )
            .unwrap(),
        ),
    }
}

/// An entry the prefilter dropped (no synthetic model shares nothing with the candidates
/// here, so the prefilter's answer is given).
pub fn dropped(entry: EntryInfo) -> EntryResult {
    EntryResult {
        entry,
        prefilter: Prefilter {
            passed: false,
            reason: "no component of the same architecture".into(),
        },
        comparison: None,
    }
}

/// Digests of the candidate's files, computed from the files themselves.
pub fn digests(dir: &Path) -> Vec<FileDigest> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).unwrap();
            FileDigest {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                bytes: bytes.len() as u64,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
            }
        })
        .collect()
}

pub fn input(dir: &Path, results: Vec<EntryResult>) -> AuditInput {
    let b = results
        .iter()
        .find_map(|r| r.comparison.as_ref().map(|c| c.b.clone()));
    AuditInput {
        candidate: Candidate {
            path: dir.display().to_string(),
            format: b
                .as_ref()
                .map_or("safetensors".into(), |b| b.format.clone()),
            family: b.as_ref().map_or("llama".into(), |b| b.family.clone()),
            parameters: b.as_ref().map_or(0, |b| b.parameters),
            licence: Some("apache-2.0".into()),
            files: digests(dir),
            components: Vec::new(),
        },
        registry: RegistryInfo {
            path: "registry/test.json".into(),
            entries: results.len(),
        },
        results,
        tool: "dokja 0.1.0".into(),
        seed: CompareOptions::default().seed,
        alpha: dokja_provenance::ALPHA,
        created: "2026-11-23T07:00:00Z".into(),
    }
}
