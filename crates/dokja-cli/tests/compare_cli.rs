//! `dokja compare` end to end: the JSON contract other tools rely on, the programme's
//! decisive case (a vision tower copied unchanged), and the real model pairs.

use std::ffi::OsStr;
use std::path::Path;

use assert_cmd::Command;
use dokja_testkit::{
    StDtype, VlmSpec, WeightsLayout, llama_like, vision_tower_of, vlm, vlm_from_parts,
    write_hf_folder,
};
use serde_json::Value;

mod common;
use common::{component, dokja_json};

fn compare_json(a: &Path, b: &Path) -> Value {
    dokja_json([OsStr::new("compare"), a.as_os_str(), b.as_os_str()])
}

#[test]
fn copied_vision_tower_is_identical_and_language_model_independent() {
    let spec = VlmSpec::default();
    let donor = vlm(&spec, 1);
    let suspect = vlm_from_parts(
        llama_like(&spec.lm, 2),
        vision_tower_of(&donor),
        spec.layout,
        spec.vit.num_heads,
        3,
    );
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("donor"), dir.path().join("suspect"));
    write_hf_folder(&donor, &a, WeightsLayout::Single, StDtype::BF16).unwrap();
    write_hf_folder(
        &suspect,
        &b,
        WeightsLayout::Sharded {
            max_shard_bytes: 100_000,
        },
        StDtype::BF16,
    )
    .unwrap();
    let r = compare_json(&a, &b);
    // The contract: top-level verdict, components as a list of {component, verdict, ...}.
    assert_eq!(r["verdict"], "derived");
    for c in r["components"].as_array().unwrap() {
        assert!(
            c["component"].is_string() && c["verdict"].is_string(),
            "{c}"
        );
    }
    assert_eq!(component(&r, "vision_encoder")["verdict"], "identical");
    assert_eq!(component(&r, "language_model")["verdict"], "independent");
    assert!(
        component(&r, "tokenizer")["circumstantial"]
            .as_bool()
            .unwrap()
    );
}

#[test]
fn text_report_names_the_verdict_and_scope() {
    let spec = dokja_testkit::corpus::corpus_llama_spec();
    let base = llama_like(&spec, 1);
    let tuned = dokja_testkit::fine_tune(&base, 0.1, 8, 2);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write_hf_folder(&base, &a, WeightsLayout::Single, StDtype::F32).unwrap();
    write_hf_folder(&tuned, &b, WeightsLayout::Single, StDtype::BF16).unwrap();
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "verdict: DERIVED",
        "language_model   derived",
        "layers carrying evidence: 0, 1, 2, 3, 4, 5",
        "scope: H0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn compare_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .arg("compare")
        .arg(dir.path())
        .arg("/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn real_pairs() {
    let (Some(smol), Some(gemma), Some(minilm), Some(twin)) = (
        dokja_testkit::real_model("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        dokja_testkit::real_model("gemma3-270m/gemma-3-270m-q4_k_m.gguf"),
        dokja_testkit::real_model("minilm"),
        dokja_testkit::real_model("minilm-zip"),
    ) else {
        return;
    };
    let r = compare_json(&smol, &gemma);
    assert_eq!(r["verdict"], "independent", "{r}");
    assert_eq!(component(&r, "language_model")["verdict"], "independent");
    let r = compare_json(&minilm, &twin);
    assert_eq!(r["verdict"], "identical", "{r}");
}

/// SmolLM2 re-quantized by the real llama-quantize (scripts/requantized-models.sh): the same
/// model in another quantization is derived, never independent.
#[test]
fn real_requantized_copies_are_derived() {
    let Some(original) = dokja_testkit::real_model("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    else {
        return;
    };
    for q in ["Q8_0", "Q4_0"] {
        let Some(copy) =
            dokja_testkit::real_model(&format!("smollm2-requant/SmolLM2-135M-Instruct.{q}.gguf"))
        else {
            return;
        };
        let r = compare_json(&original, &copy);
        assert_eq!(r["verdict"], "derived", "{q}: {r}");
        let lm = component(&r, "language_model");
        assert_eq!(lm["verdict"], "derived", "{q}");
        assert!(
            lm["transformations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "quantization"),
            "{q}: {lm}"
        );
    }
}
