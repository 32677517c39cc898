//! The README's main job on real models: `scripts/starter-registry.sh` fingerprints the real
//! public models into a registry with their metadata, and auditing a real copy published under
//! another package gives FAIL naming the parent; auditing a registry model's real
//! re-quantization (made by llama.cpp's own llama-quantize) gives FAIL with "derived".

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn audit(registry: &Path, model: &Path) -> (i32, Value) {
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .arg("audit")
        .arg(model)
        .arg("--registry")
        .arg(registry)
        .args(["--format", "json", "--quiet"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

fn parent_of(report: &Value, component: &str) -> (String, String) {
    let c = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == component)
        .unwrap();
    (
        c["verdict"].as_str().unwrap().to_string(),
        c["closest_parent"]["entry"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[test]
fn starter_registry_audits_real_models() {
    let (Some(minilm_copy), Some(requant)) = (
        dokja_testkit::real_model("minilm-zip"),
        dokja_testkit::real_model("smollm2-requant/SmolLM2-135M-Instruct.Q8_0.gguf"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/starter-registry.sh"))
        .arg(assert_cmd::cargo::cargo_bin("dokja"))
        .arg(&registry)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let list: Value = serde_json::from_slice(
        &Command::cargo_bin("dokja")
            .unwrap()
            .args(["registry", "--format", "json", "--registry"])
            .arg(&registry)
            .arg("list")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Gemma-3-270M", "SmolLM2-135M-Instruct", "all-MiniLM-L6-v2"]
    );

    let (code, report) = audit(&registry, &minilm_copy);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        parent_of(&report, "language_model"),
        ("identical".to_string(), "all-MiniLM-L6-v2".to_string())
    );

    let (code, report) = audit(&registry, &requant);
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        parent_of(&report, "language_model"),
        ("derived".to_string(), "SmolLM2-135M-Instruct".to_string())
    );
    // Gemma's licence is restrictive but nothing was reused from it: the policy axis passes.
    assert_eq!(
        report["axes"]["policy"]["decision"], "PASS",
        "{}",
        report["axes"]
    );
}
