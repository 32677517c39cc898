//! `dokja inspect|compare` on http:// URLs served by a real nginx on loopback: the same
//! reports as for the local files, the cost of remote reading, and the byte budget.

use std::path::Path;

use assert_cmd::Command;
use dokja_testkit::nginx::Nginx;
use dokja_testkit::{
    GgufOptions, LlamaSpec, StDtype, WeightsLayout, fine_tune, llama_like, write_gguf,
    write_hf_folder,
};
use serde_json::Value;

mod common;
use common::dokja_json;

const SHARDED: WeightsLayout = WeightsLayout::Sharded {
    max_shard_bytes: 200_000,
};

/// A base model and a fine-tune of it (sharded folders), an independent model, and a GGUF.
fn write_models(root: &Path) {
    let spec = LlamaSpec {
        num_layers: 4,
        ..LlamaSpec::default()
    };
    let base = llama_like(&spec, 1);
    write_hf_folder(&base, &root.join("base"), SHARDED, StDtype::BF16).unwrap();
    let tuned = fine_tune(&base, 0.1, 8, 2);
    write_hf_folder(&tuned, &root.join("tuned"), SHARDED, StDtype::BF16).unwrap();
    let other = llama_like(&spec, 3);
    write_hf_folder(&other, &root.join("other"), SHARDED, StDtype::BF16).unwrap();
    write_gguf(&base, &root.join("base.gguf"), &GgufOptions::default()).unwrap();
}

fn serve() -> Option<(tempfile::TempDir, std::path::PathBuf, Nginx)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("www");
    write_models(&root);
    let nginx = Nginx::serve_or_skip(&root, &dir.path().join("nginx"))?;
    Some((dir, root, nginx))
}

/// A report with the fields that name where the model was read from removed.
fn located_nowhere(mut v: Value) -> Value {
    let obj = v.as_object_mut().unwrap();
    obj.remove("path");
    obj.remove("remote");
    if let Some(s) = obj.get_mut("sidecars").and_then(Value::as_object_mut) {
        s.remove("folder");
    }
    v
}

#[test]
fn remote_inspect_equals_local_inspect() {
    let Some((_dir, root, nginx)) = serve() else {
        return;
    };
    for (url, local) in [
        ("base/", "base"),
        (
            "base/model.safetensors.index.json",
            "base/model.safetensors.index.json",
        ),
        ("base.gguf", "base.gguf"),
    ] {
        let remote = dokja_json(["inspect", "--tensors", &nginx.url(url)]);
        let local = dokja_json(["inspect", "--tensors", root.join(local).to_str().unwrap()]);
        assert_eq!(remote["path"], nginx.url(url));
        let r = &remote["remote"];
        assert!(r["bytes_fetched"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["model_bytes"], local["file_bytes"], "{r}");
        assert!(local.get("remote").is_none());
        assert_eq!(located_nowhere(remote), located_nowhere(local), "{url}");
    }
}

#[test]
fn remote_compare_gives_the_local_verdicts() {
    let Some((_dir, root, nginx)) = serve() else {
        return;
    };
    for (a, b, verdict) in [
        ("base", "tuned", "derived"),
        ("base", "other", "independent"),
    ] {
        let local = dokja_json([
            "compare",
            "-q",
            root.join(a).to_str().unwrap(),
            root.join(b).to_str().unwrap(),
        ]);
        let remote = dokja_json([
            "compare",
            "-q",
            "--remote-block-size",
            "4KiB",
            &nginx.url(&format!("{a}/")),
            &nginx.url(&format!("{b}/")),
        ]);
        assert_eq!(local["verdict"], verdict);
        assert_eq!(remote["verdict"], local["verdict"], "{a} vs {b}");
        let comps = |r: &Value| -> Vec<(Value, Value)> {
            r["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["component"].clone(), c["verdict"].clone()))
                .collect()
        };
        assert_eq!(comps(&remote), comps(&local));
        let r = &remote["remote"];
        let (fetched, size) = (
            r["bytes_fetched"].as_u64().unwrap(),
            r["model_bytes"].as_u64().unwrap(),
        );
        eprintln!(
            "{a} vs {b}: fetched {fetched} of {size} bytes ({:.1}%) in {} requests",
            100.0 * fetched as f64 / size as f64,
            r["requests"]
        );
        // compare reads every matrix of both models; the block cache makes it read each
        // byte once (plus the sidecars and one partial block per file).
        assert!(fetched < size + size / 10, "{r}");
    }
}

#[test]
fn the_byte_budget_ends_the_run_with_a_clear_error() {
    let Some((_dir, _root, nginx)) = serve() else {
        return;
    };
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .args(["compare", "-q", "--max-remote-bytes", "500KB"])
        .args([nginx.url("base/"), nginx.url("tuned/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("would exceed the remote byte budget of 500000 bytes")
            && stderr.contains("raise --max-remote-bytes")
            && stderr.contains(&nginx.url("")),
        "{stderr}"
    );
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .args(["inspect", "--max-remote-bytes", "lots", &nginx.url("base/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a byte count"));
}
