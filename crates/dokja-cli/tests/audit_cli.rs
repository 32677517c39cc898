//! `dokja audit` end to end: a registry built with `dokja fingerprint` and `dokja registry
//! add`, candidates whose relation to it is known because the test kit made them, the exit
//! codes (0 PASS, 1 FAIL, 3 REVIEW, 2 error), and damaged registries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use dokja_testkit::corpus::corpus_llama_spec;
use dokja_testkit::{
    StDtype, SynthModel, VlmSpec, WeightsLayout, fine_tune, llama_like, vision_tower_of, vlm,
    vlm_from_parts, write_hf_folder,
};
use serde_json::Value;

fn dokja() -> Command {
    let mut cmd = Command::cargo_bin("dokja").unwrap();
    cmd.env_remove("DOKJA_REGISTRY");
    cmd
}

fn save(m: &SynthModel, dir: &Path) -> PathBuf {
    write_hf_folder(m, dir, WeightsLayout::Single, StDtype::BF16).unwrap();
    dir.to_path_buf()
}

fn register(registry: &Path, model: &Path, name: &str, licence: &str) {
    let fp = model.with_extension("dfp");
    let out = dokja()
        .args(["fingerprint", "--quiet", "-o"])
        .arg(&fp)
        .arg(model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dokja()
        .args(["registry", "--registry"])
        .arg(registry)
        .arg("add")
        .arg(&fp)
        .args([
            "--name",
            name,
            "--org",
            "Test Lab",
            "--origin-country",
            "KR",
        ])
        .args(["--licence", licence, "--released", "2025-06-01"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the audit; returns (exit code, JSON report, stderr).
fn audit(registry: &Path, candidate: &Path, html: Option<&Path>) -> (i32, Option<Value>, String) {
    let mut cmd = dokja();
    cmd.arg("audit")
        .arg(candidate)
        .arg("--registry")
        .arg(registry)
        .args([
            "--format",
            "json",
            "--quiet",
            "--created",
            "2026-01-01T00:00:00Z",
        ]);
    if let Some(h) = html {
        cmd.arg("--html").arg(h);
    }
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).ok();
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn component<'a>(audit: &'a Value, name: &str) -> &'a Value {
    audit["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == name)
        .unwrap_or_else(|| panic!("no component {name}: {audit}"))
}

/// Every file under `dir` with its bytes: a registry must look exactly the same afterwards.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    registry: PathBuf,
}

/// A registry of three models: a vision-language model (apache-2.0), a language model
/// (apache-2.0) and a language model under a restrictive licence.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let registry = root.join("registry");
    let spec = VlmSpec::default();
    register(
        &registry,
        &save(&vlm(&spec, 11), &root.join("donor-vlm")),
        "donor-vlm",
        "apache-2.0",
    );
    register(
        &registry,
        &save(&llama_like(&corpus_llama_spec(), 12), &root.join("base-lm")),
        "base-lm",
        "apache-2.0",
    );
    register(
        &registry,
        &save(
            &llama_like(&corpus_llama_spec(), 13),
            &root.join("gated-lm"),
        ),
        "gated-lm",
        "llama3.1",
    );
    Fixture {
        _dir: dir,
        root,
        registry,
    }
}

#[test]
fn audits_reach_the_programme_decisions() {
    let f = fixture();
    let spec = VlmSpec::default();
    let before = snapshot(&f.registry);

    // The first-stage case: the team's own language model, a registry model's vision tower.
    let donor = vlm(&spec, 11);
    let copied_tower = vlm_from_parts(
        llama_like(&spec.lm, 21),
        vision_tower_of(&donor),
        spec.layout,
        spec.vit.num_heads,
        22,
    );
    let html = f.root.join("report.html");
    let (code, report, err) = audit(
        &f.registry,
        &save(&copied_tower, &f.root.join("c-tower")),
        Some(&html),
    );
    let report = report.unwrap_or_else(|| panic!("no JSON: {err}"));
    assert_eq!(code, 1, "{err}");
    assert_eq!(report["decision"], "FAIL");
    let tower = component(&report, "vision_encoder");
    assert_eq!(tower["verdict"], "identical");
    assert_eq!(
        tower["closest_parent"]["entry"]["name"], "donor-vlm",
        "{tower}"
    );
    assert_eq!(
        component(&report, "language_model")["verdict"],
        "independent"
    );
    let reasons = report["reasons"].to_string();
    assert!(
        reasons.contains("vision_encoder") && reasons.contains("donor-vlm"),
        "{reasons}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("donor-vlm") && page.contains("<svg"),
        "HTML report"
    );

    // A fine-tune of a registry model: FAIL, derived, the base named.
    let tuned = fine_tune(&llama_like(&corpus_llama_spec(), 12), 0.05, 8, 31);
    let (code, report, err) = audit(&f.registry, &save(&tuned, &f.root.join("c-tuned")), None);
    let report = report.unwrap_or_else(|| panic!("no JSON: {err}"));
    assert_eq!(code, 1, "{err}");
    let lm = component(&report, "language_model");
    assert_eq!(lm["verdict"], "derived", "{lm}");
    assert_eq!(lm["closest_parent"]["entry"]["name"], "base-lm", "{lm}");

    // Reuse of a restrictively licensed model fails the policy axis as well.
    let tuned_gated = fine_tune(&llama_like(&corpus_llama_spec(), 13), 0.05, 8, 32);
    let (code, report, err) = audit(
        &f.registry,
        &save(&tuned_gated, &f.root.join("c-gated")),
        None,
    );
    let report = report.unwrap_or_else(|| panic!("no JSON: {err}"));
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        report["axes"]["policy"]["decision"], "FAIL",
        "{}",
        report["axes"]
    );

    // A model trained from its own initialization: PASS.
    let own = llama_like(&corpus_llama_spec(), 41);
    let (code, report, err) = audit(&f.registry, &save(&own, &f.root.join("c-own")), None);
    let report = report.unwrap_or_else(|| panic!("no JSON: {err}"));
    assert_eq!(code, 0, "{err}\n{report}");
    assert_eq!(report["decision"], "PASS");

    // Audits never write to the registry.
    assert_eq!(
        snapshot(&f.registry),
        before,
        "the registry changed during audits"
    );
}

#[test]
fn damaged_registries_are_reported_and_left_as_they_were() {
    let f = fixture();
    let candidate = save(&llama_like(&corpus_llama_spec(), 51), &f.root.join("cand"));

    // A truncated fingerprint is refused by `registry add`, naming the file.
    let good = f.root.join("base-lm.dfp");
    let truncated = f.root.join("truncated.dfp");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let before = snapshot(&f.registry);
    let out = dokja()
        .args(["registry", "--registry"])
        .arg(&f.registry)
        .arg("add")
        .arg(&truncated)
        .args([
            "--name",
            "t",
            "--org",
            "o",
            "--origin-country",
            "KR",
            "--licence",
            "mit",
        ])
        .args(["--released", "2025-01-01"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("truncated.dfp") && err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(
        snapshot(&f.registry),
        before,
        "a refused add changed the registry"
    );

    // A registry entry whose stored fingerprint was damaged stops the audit (skipping it
    // could hide the parent) with an error naming the entry.
    let list: Value = serde_json::from_slice(
        &dokja()
            .args(["registry", "--registry"])
            .arg(&f.registry)
            .args(["--format", "json", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "base-lm")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = f.registry.join("fingerprints").join(format!("{id}.dfp"));
    let mut damaged = std::fs::read(&stored).unwrap();
    let i = damaged.len() / 3;
    damaged[i] ^= 0x10;
    std::fs::write(&stored, &damaged).unwrap();
    let before = snapshot(&f.registry);
    let (code, report, err) = audit(&f.registry, &candidate, None);
    assert_eq!(code, 2, "{err}");
    assert!(report.is_none());
    assert!(err.contains(&id[..12]) || err.contains("base-lm"), "{err}");
    assert!(err.contains("corrupt") || err.contains("digest"), "{err}");
    assert_eq!(
        snapshot(&f.registry),
        before,
        "the audit changed the registry"
    );

    // A registry that is not one.
    let (code, _, err) = audit(&f.root.join("no-such-registry"), &candidate, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-registry"), "{err}");
}

/// A tmpfs mounted read-only: a real read-only disk (needs root; unmounted on drop).
struct ReadOnlyDisk {
    mount: PathBuf,
}

impl ReadOnlyDisk {
    /// Mounts a tmpfs at `mount`, lets `fill` write into it, then remounts it read-only.
    fn new(mount: &Path, fill: impl FnOnce(&Path)) -> Option<ReadOnlyDisk> {
        std::fs::create_dir_all(mount).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(mount)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let disk = ReadOnlyDisk {
            mount: mount.to_path_buf(),
        };
        fill(mount);
        let ro = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(mount)
            .status()
            .unwrap();
        assert!(ro.success(), "remount read-only failed");
        Some(disk)
    }
}

impl Drop for ReadOnlyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.mount)
            .status();
    }
}

#[test]
fn a_registry_on_a_read_only_disk_is_read_and_never_written() {
    let f = fixture();
    let mount = f.root.join("ro");
    let Some(_disk) = ReadOnlyDisk::new(&mount, |m| {
        let out = std::process::Command::new("cp")
            .arg("-r")
            .arg(&f.registry)
            .arg(m.join("registry"))
            .status()
            .unwrap();
        assert!(out.success());
    }) else {
        assert!(
            std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_none(),
            "cannot mount a tmpfs read-only (root is needed) but DOKJA_REQUIRE_TEST_MODELS is set"
        );
        eprintln!("notice: mount not permitted; read-only disk test skipped");
        return;
    };
    let registry = mount.join("registry");
    let before = snapshot(&registry);

    // Reading and auditing work.
    let out = dokja()
        .args(["registry", "--registry"])
        .arg(&registry)
        .arg("list")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tuned = fine_tune(&llama_like(&corpus_llama_spec(), 12), 0.05, 8, 61);
    let (code, report, err) = audit(&registry, &save(&tuned, &f.root.join("c")), None);
    assert_eq!(code, 1, "{err}");
    assert_eq!(report.unwrap()["decision"], "FAIL");

    // Writing is refused with a clear error, and nothing changes.
    let out = dokja()
        .args(["registry", "--registry"])
        .arg(&registry)
        .arg("add")
        .arg(f.root.join("donor-vlm.dfp"))
        .args([
            "--name",
            "again",
            "--org",
            "o",
            "--origin-country",
            "KR",
            "--licence",
            "mit",
        ])
        .args(["--released", "2025-01-01", "--replace"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.to_lowercase().contains("read-only"), "{err}");
    let out = dokja()
        .args(["registry", "--registry"])
        .arg(&registry)
        .args(["remove", "base-lm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(snapshot(&registry), before, "a read-only registry changed");
}
