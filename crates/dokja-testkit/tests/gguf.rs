mod common;

use common::{byte_len, decode_float, parse_gguf, tmpdir};
use dokja_testkit::quant::dequantize_reference;
use dokja_testkit::*;

/// Values of a GGUF tensor in stored order (float types exactly, quants via the reference).
fn stored_values(file: &[u8], g: &common::Gguf, name: &str) -> Vec<f32> {
    let t = g.tensor(name);
    let start = g.data_start + t.offset as usize;
    let bytes = &file[start..start + byte_len(t)];
    match t.ty {
        0 | 1 | 30 => decode_float(t.ty, bytes),
        ty => {
            let q = QuantType::ALL
                .into_iter()
                .find(|q| q.ggml_type() == ty)
                .unwrap();
            dequantize_reference(q, bytes)
        }
    }
}

/// Canonical row `r` of a llama.cpp-permuted tensor sits at this stored row.
fn stored_row(r: usize, n_rows: usize, n_head: usize) -> usize {
    let per = n_rows / n_head;
    let half = per / 2;
    let (h, w) = (r / per, r % per);
    h * per + 2 * (w % half) + w / half
}

#[test]
fn layout_follows_the_spec() {
    let m = llama_like(&LlamaSpec::default(), 1);
    let tmp = tmpdir("gguf");
    let dir = tmp.path().to_path_buf();
    let path = dir.join("m.gguf");
    let summary = write_gguf(&m, &path, &GgufOptions::default()).unwrap();
    let file = std::fs::read(&path).unwrap();
    let g = parse_gguf(&file);
    assert_eq!(g.version, 3);
    assert_eq!(g.tensors.len(), m.tensors.len());
    assert_eq!(g.tensors.len(), summary.len());
    assert_eq!(g.get("general.architecture").unwrap(), "llama");
    assert_eq!(g.type_of("general.alignment"), Some(4));
    assert_eq!(g.get("general.alignment").unwrap(), 32);
    assert_eq!(g.get("general.license").unwrap(), "apache-2.0");
    assert_eq!(g.get("llama.block_count").unwrap(), 2);
    assert_eq!(g.get("llama.embedding_length").unwrap(), 64);
    assert_eq!(g.get("llama.feed_forward_length").unwrap(), 128);
    assert_eq!(g.get("llama.attention.head_count").unwrap(), 4);
    assert_eq!(g.get("llama.attention.head_count_kv").unwrap(), 2);
    assert_eq!(g.get("llama.context_length").unwrap(), 2048);
    assert_eq!(g.type_of("llama.rope.freq_base"), Some(6));
    assert_eq!(g.get("tokenizer.ggml.model").unwrap(), "gpt2");
    let tokens = &g.get("tokenizer.ggml.tokens").unwrap()["items"];
    assert_eq!(tokens.as_array().unwrap().len(), 512);
    assert_eq!(tokens[0], "!");
    assert_eq!(g.get("tokenizer.ggml.merges").unwrap()["elem_type"], 8);
    assert_eq!(g.get("tokenizer.ggml.eos_token_id").unwrap(), 511);
    assert_eq!(g.data_start % 32, 0);
    let mut end = 0;
    for (t, s) in g.tensors.iter().zip(&summary) {
        assert_eq!(t.offset % 32, 0, "{}: offset aligned", t.name);
        assert!(t.offset as usize >= end, "{}: no overlap", t.name);
        end = t.offset as usize + byte_len(t);
        assert_eq!(t.name, s.name);
        assert_eq!(
            t.ne,
            s.shape.iter().rev().map(|&d| d as u64).collect::<Vec<_>>(),
            "{}: ne is reversed",
            t.name
        );
        assert_eq!(byte_len(t) as u64, s.byte_len);
    }
    assert_eq!(file.len(), g.data_start + end.next_multiple_of(32));
    let embd = g.tensor("token_embd.weight");
    assert_eq!(embd.ne, vec![64, 512]);
    assert_eq!(embd.ty, 1, "F16 by default");
    assert_eq!(g.tensor("blk.0.attn_norm.weight").ty, 0, "norms stay F32");
    assert_eq!(g.tensor("output_norm.weight").ty, 0);
    assert!(g.tensors.iter().any(|t| t.name == "output.weight"));
    assert!(g.tensors.iter().any(|t| t.name == "blk.1.ffn_gate.weight"));
}

#[test]
fn values_round_trip_and_llama_qk_is_permuted() {
    let m = llama_like(&LlamaSpec::default(), 4);
    let (file, summary) = gguf_bytes(&m, &GgufOptions::with_type(GgufType::F32)).unwrap();
    let g = parse_gguf(&file);
    for s in &summary {
        let hf = m.tensor(&s.hf_names[0]);
        let got = stored_values(&file, &g, &s.name);
        match s.permuted_heads {
            None => assert_eq!(got, hf.data, "{}", s.name),
            Some(n_head) => {
                let rows = hf.shape[0];
                let cols = hf.row_len();
                for r in 0..rows {
                    let sr = stored_row(r, rows, n_head as usize);
                    assert_eq!(
                        &got[sr * cols..(sr + 1) * cols],
                        hf.row(r),
                        "{} row {r}",
                        s.name
                    );
                }
                assert_ne!(got, hf.data);
            }
        }
    }
    let q = summary
        .iter()
        .find(|s| s.name == "blk.0.attn_q.weight")
        .unwrap();
    let k = summary
        .iter()
        .find(|s| s.name == "blk.0.attn_k.weight")
        .unwrap();
    assert_eq!((q.permuted_heads, k.permuted_heads), (Some(4), Some(2)));
    // Other architectures are not permuted.
    let q2 = llama_like(
        &LlamaSpec {
            flavor: LlamaFlavor::Qwen2,
            ..Default::default()
        },
        4,
    );
    let (_, s2) = gguf_bytes(&q2, &GgufOptions::with_type(GgufType::F32)).unwrap();
    assert!(s2.iter().all(|s| s.permuted_heads.is_none()));
    assert!(
        s2.iter()
            .any(|s| s.name == "blk.0.attn_q.bias" && s.ty == GgufType::F32)
    );
}

#[test]
fn quantized_types_and_fallbacks() {
    let spec = LlamaSpec {
        hidden_size: 256,
        intermediate_size: 512,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 64,
        ..Default::default()
    };
    let m = llama_like(&spec, 2);
    for q in QuantType::ALL {
        let opts = GgufOptions {
            matrix_type: GgufType::Quant(q),
            token_embd_type: Some(GgufType::Quant(QuantType::Q8_0)),
            ..Default::default()
        };
        let (file, summary) = gguf_bytes(&m, &opts).unwrap();
        let g = parse_gguf(&file);
        assert_eq!(g.tensor("token_embd.weight").ty, 8);
        assert_eq!(g.tensor("blk.0.ffn_down.weight").ty, q.ggml_type());
        assert_eq!(g.tensor("blk.0.ffn_norm.weight").ty, 0);
        for s in summary
            .iter()
            .filter(|s| s.name == "blk.1.ffn_up.weight" || s.name == "output.weight")
        {
            let got = stored_values(&file, &g, &s.name);
            let want = &m.tensor(&s.hf_names[0]).data;
            let err: f64 = got
                .iter()
                .zip(want)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / want.iter().map(|b| (*b as f64).powi(2)).sum::<f64>();
            assert!(
                err.sqrt() < 0.4,
                "{} in {}: rel err {}",
                s.name,
                q.name(),
                err.sqrt()
            );
        }
    }
    // Rows of 64 cannot hold 256-blocks: the converter falls back to F16.
    let small = llama_like(&LlamaSpec::default(), 2);
    let (file, _) = gguf_bytes(
        &small,
        &GgufOptions::with_type(GgufType::Quant(QuantType::Q4K)),
    )
    .unwrap();
    let g = parse_gguf(&file);
    assert_eq!(g.tensor("blk.0.attn_q.weight").ty, 1);
    let (file, _) = gguf_bytes(
        &small,
        &GgufOptions::with_type(GgufType::Quant(QuantType::Q4_0)),
    )
    .unwrap();
    assert_eq!(parse_gguf(&file).tensor("blk.0.attn_q.weight").ty, 2);
    assert_eq!(parse_gguf(&file).get("general.file_type").unwrap(), 2);
    let opts = GgufOptions {
        type_overrides: vec![("blk.0.attn_norm.weight".into(), GgufType::BF16)],
        ..GgufOptions::with_type(GgufType::BF16)
    };
    let (file, _) = gguf_bytes(&small, &opts).unwrap();
    let g = parse_gguf(&file);
    assert_eq!(g.tensor("blk.0.attn_norm.weight").ty, 30);
    assert_eq!(g.tensor("blk.0.ffn_up.weight").ty, 30);
}

#[test]
fn moe_experts_are_stacked() {
    for flavor in [MoeFlavor::Qwen3Moe, MoeFlavor::Mixtral, MoeFlavor::Qwen2Moe] {
        let shared = (flavor == MoeFlavor::Qwen2Moe).then_some(64);
        let m = moe_like(
            &MoeSpec {
                flavor,
                shared_expert_intermediate_size: shared,
                ..Default::default()
            },
            3,
        );
        let (file, summary) = gguf_bytes(&m, &GgufOptions::with_type(GgufType::F32)).unwrap();
        let g = parse_gguf(&file);
        let arch = g
            .get("general.architecture")
            .unwrap()
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            g.get(&format!("{arch}.expert_count")).unwrap(),
            8,
            "{flavor:?}"
        );
        let down = g.tensor("blk.1.ffn_down_exps.weight");
        assert_eq!(down.ne, vec![32, 64, 8], "{flavor:?}: [in, out, n_expert]");
        assert_eq!(g.tensor("blk.1.ffn_gate_exps.weight").ne, vec![64, 32, 8]);
        assert_eq!(
            g.tensor("blk.0.ffn_gate_inp.weight").ty,
            0,
            "router stays F32"
        );
        let values = stored_values(&file, &g, "blk.1.ffn_down_exps.weight");
        let e5 = if flavor == MoeFlavor::Mixtral {
            m.tensor("model.layers.1.block_sparse_moe.experts.5.w2.weight")
        } else {
            m.tensor("model.layers.1.mlp.experts.5.down_proj.weight")
        };
        assert_eq!(&values[5 * 64 * 32..6 * 64 * 32], &e5.data[..]);
        let s = summary
            .iter()
            .find(|s| s.name == "blk.1.ffn_up_exps.weight")
            .unwrap();
        assert_eq!(s.hf_names.len(), 8);
        assert_eq!(g.tensors.len(), summary.len());
        if shared.is_some() {
            assert_eq!(g.tensor("blk.0.ffn_up_shexp.weight").ne, vec![64, 64]);
            assert_eq!(g.tensor("blk.0.ffn_gate_inp_shexp.weight").ty, 0);
        }
    }
}

#[test]
fn mla_names_and_kv_b_split() {
    let m = mla_like(&MlaSpec::default(), 5);
    let (file, _) = gguf_bytes(&m, &GgufOptions::with_type(GgufType::F32)).unwrap();
    let g = parse_gguf(&file);
    assert_eq!(g.get("general.architecture").unwrap(), "deepseek2");
    assert_eq!(g.get("deepseek2.leading_dense_block_count").unwrap(), 1);
    assert_eq!(g.get("deepseek2.attention.kv_lora_rank").unwrap(), 32);
    for n in [
        "attn_q_a",
        "attn_q_a_norm",
        "attn_q_b",
        "attn_kv_a_mqa",
        "attn_kv_a_norm",
        "attn_output",
    ] {
        g.tensor(&format!("blk.1.{n}.weight"));
    }
    g.tensor("blk.0.ffn_gate.weight");
    g.tensor("blk.2.ffn_gate_exps.weight");
    g.tensor("blk.2.ffn_down_shexp.weight");
    assert_eq!(g.tensor("blk.2.exp_probs_b.bias").ty, 0);
    let kb = g.tensor("blk.1.attn_k_b.weight");
    let vb = g.tensor("blk.1.attn_v_b.weight");
    assert_eq!(
        kb.ne,
        vec![16, 32, 4],
        "k_b [n_head, kv_lora, nope] reversed"
    );
    assert_eq!(vb.ne, vec![32, 16, 4]);
    assert!(!g.tensors.iter().any(|t| t.name == "blk.1.attn_kv_b.weight"));
    // k_b[h, c, r] = kv_b[h*(nope+v) + r, c]; v_b[h, r, c] = kv_b[h*(nope+v) + nope + r, c].
    let kv_b = m.tensor("model.layers.1.self_attn.kv_b_proj.weight");
    let k = stored_values(&file, &g, "blk.1.attn_k_b.weight");
    let v = stored_values(&file, &g, "blk.1.attn_v_b.weight");
    let (h, c, r) = (2, 7, 5);
    assert_eq!(k[(h * 32 + c) * 16 + r], kv_b.at(h * 32 + r, c));
    assert_eq!(v[(h * 16 + r) * 32 + c], kv_b.at(h * 32 + 16 + r, c));
    let old = GgufOptions {
        split_mla_kv_b: false,
        ..GgufOptions::with_type(GgufType::F32)
    };
    let (file, _) = gguf_bytes(&m, &old).unwrap();
    assert_eq!(
        parse_gguf(&file).tensor("blk.1.attn_kv_b.weight").ne,
        vec![32, 128]
    );
}

#[test]
fn bert_gemma_and_vlm() {
    let b = bert_like(&BertSpec::default(), 1);
    let (file, _) = gguf_bytes(&b, &GgufOptions::default()).unwrap();
    let g = parse_gguf(&file);
    assert_eq!(g.get("tokenizer.ggml.model").unwrap(), "bert");
    assert_eq!(g.get("tokenizer.ggml.token_type_count").unwrap(), 2);
    assert_eq!(g.get("bert.attention.causal").unwrap(), false);
    assert_eq!(g.tensor("position_embd.weight").ty, 0);
    assert_eq!(g.tensor("token_types.weight").ty, 0);
    assert_eq!(g.tensor("blk.1.attn_output_norm.bias").ty, 0);
    assert!(!g.tensors.iter().any(|t| t.name.starts_with("pooler")));
    let tokens = g.get("tokenizer.ggml.tokens").unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tokens[2], "[CLS]");
    assert!(
        tokens.iter().any(|t| t == "\u{2581}the"),
        "phantom-space vocab"
    );

    let gm = llama_like(
        &LlamaSpec {
            flavor: LlamaFlavor::Gemma3,
            tie_embeddings: true,
            ..Default::default()
        },
        1,
    );
    let (file, _) = gguf_bytes(&gm, &GgufOptions::with_type(GgufType::F32)).unwrap();
    let g = parse_gguf(&file);
    let stored = stored_values(&file, &g, "blk.0.post_ffw_norm.weight");
    let hf = &gm
        .tensor("model.layers.0.post_feedforward_layernorm.weight")
        .data;
    assert!(
        stored.iter().zip(hf).all(|(s, h)| *s == h + 1.0),
        "gemma norms stored as 1 + w"
    );
    assert!(!g.tensors.iter().any(|t| t.name == "output.weight"));
    g.tensor("blk.0.post_attention_norm.weight");
    g.tensor("blk.0.attn_k_norm.weight");

    let v = vlm(&VlmSpec::default(), 1);
    assert!(
        gguf_bytes(&v, &GgufOptions::default()).is_err(),
        "vision tensors have no llama.cpp name"
    );
    let opts = GgufOptions {
        skip_unmapped: true,
        ..Default::default()
    };
    let (file, summary) = gguf_bytes(&v, &opts).unwrap();
    let g = parse_gguf(&file);
    assert_eq!(
        g.tensors.len(),
        llama_like(&LlamaSpec::default(), 1).tensors.len()
    );
    assert!(
        summary
            .iter()
            .any(|s| s.hf_names[0] == "model.language_model.layers.0.mlp.up_proj.weight")
    );
}

#[test]
fn unigram_tokenizer_metadata() {
    let m = llama_like(
        &LlamaSpec {
            tokenizer: Some(TokenizerKind::Unigram),
            ..Default::default()
        },
        1,
    );
    let (file, _) = gguf_bytes(&m, &GgufOptions::default()).unwrap();
    let g = parse_gguf(&file);
    assert_eq!(g.get("tokenizer.ggml.model").unwrap(), "llama");
    assert_eq!(
        g.get("tokenizer.ggml.scores").unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        512
    );
    let types = &g.get("tokenizer.ggml.token_type").unwrap()["items"];
    assert_eq!(types[0], 2, "unk");
    assert_eq!(types[1], 3, "control");
    assert_eq!(types[3], 6, "byte");
    assert_eq!(types[300], 1);
    assert!(g.get("tokenizer.ggml.merges").is_none());
}

#[test]
fn deterministic_bytes() {
    let opts = GgufOptions::with_type(GgufType::Quant(QuantType::Q4_0));
    let a = gguf_bytes(&moe_like(&MoeSpec::default(), 9), &opts)
        .unwrap()
        .0;
    let b = gguf_bytes(&moe_like(&MoeSpec::default(), 9), &opts)
        .unwrap()
        .0;
    let c = gguf_bytes(&moe_like(&MoeSpec::default(), 10), &opts)
        .unwrap()
        .0;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn hostile_files_can_be_written() {
    let tmp = tmpdir("raw");
    let dir = tmp.path().to_path_buf();
    let g = GgufBytes::new()
        .kv("general.architecture", GgufValue::Str("llama".into()))
        .tensor("t", &[u64::MAX, 2], 999, 12345)
        .data(vec![1; 8]);
    g.write(&dir.join("bad.gguf")).unwrap();
    let b = std::fs::read(dir.join("bad.gguf")).unwrap();
    let parsed = parse_gguf(&b);
    assert_eq!(parsed.tensors[0].ne, vec![u64::MAX, 2]);
    assert_eq!(parsed.tensors[0].ty, 999);
    let s = SafetensorsBytes::new(
        r#"{"x":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#,
    )
    .data(vec![0; 4]);
    s.write(&dir.join("bad.safetensors")).unwrap();
    assert_eq!(
        std::fs::metadata(dir.join("bad.safetensors"))
            .unwrap()
            .len(),
        8 + s.header.len() as u64 + 4
    );
    // A valid writer's output can be taken apart and corrupted.
    let m = llama_like(&LlamaSpec::default(), 1);
    let valid = safetensors_bytes(
        &[m.tensor("model.norm.weight")],
        &StOptions::new(StDtype::F32),
    );
    let mut parts = SafetensorsBytes::from_file_bytes(&valid);
    parts.truncate_to = Some(valid.len() - 1);
    assert_eq!(parts.build(), valid[..valid.len() - 1]);
}
