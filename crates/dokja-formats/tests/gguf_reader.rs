//! GGUF reader: round trips, name/shape translation, Q/K unpermutation, sidecars.

mod gguf_support;

use dokja_formats::{
    Dtype, FormatError, Model, QuantType, ReadMode, RowOrder, TokenizerKind, WeightsFormat,
};
use gguf_support::*;
use serde_json::json;

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 - n as f32 / 2.0) * scale)
        .collect()
}

/// A qwen2 model (no Q/K permutation) with one tensor per float dtype.
fn float_model() -> (Gguf, Vec<f32>, Vec<f32>, Vec<f32>) {
    let embd = ramp(8 * 4, 0.25);
    let half_vals = ramp(4 * 6, 0.5);
    let bf_vals = ramp(4, 2.0);
    let mut g = Gguf::arch("qwen2");
    g.kv("qwen2.block_count", Val::U32(1))
        .f32_tensor("token_embd.weight", &[4, 8], &embd)
        .tensor(
            "blk.0.ffn_up.weight",
            &[4, 6],
            ggml::F16,
            f16_bytes(&half_vals),
        )
        .tensor(
            "blk.0.attn_norm.weight",
            &[4],
            ggml::BF16,
            bf16_bytes(&bf_vals),
        );
    (g, embd, half_vals, bf_vals)
}

#[test]
fn float_tensors_round_trip_in_both_read_modes() {
    let (g, embd, half_vals, bf_vals) = float_model();
    let bytes = g.build();
    for mode in [ReadMode::Mmap, ReadMode::Pread] {
        let m = open_bytes_with(&bytes, mode).unwrap();
        assert_eq!(m.format, WeightsFormat::Gguf);
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.tensors.len(), 3);

        let t = m.tensor("model.embed_tokens.weight").unwrap();
        assert_eq!(t.stored_name, "token_embd.weight");
        assert_eq!(t.shape, vec![8, 4]);
        assert_eq!(t.dtype, Dtype::F32);
        assert_eq!(t.row_order, RowOrder::Identity);
        assert_eq!(m.read_all(t).unwrap(), embd);

        let t = m.tensor("model.layers.0.mlp.up_proj.weight").unwrap();
        assert_eq!((t.shape.clone(), t.dtype), (vec![6, 4], Dtype::F16));
        assert_eq!(m.read_all(t).unwrap(), half_vals);

        let t = m.tensor("model.layers.0.input_layernorm.weight").unwrap();
        assert_eq!((t.shape.clone(), t.dtype), (vec![4], Dtype::BF16));
        assert_eq!(m.read_all(t).unwrap(), bf_vals);
    }
}

#[test]
fn offsets_are_absolute_and_aligned() {
    let (g, ..) = float_model();
    let bytes = g.build();
    let m = open_bytes(&bytes).unwrap();
    let data_start = align(g.header().len() as u64, 32);
    for (t, off) in m.tensors.iter().zip(g.offsets()) {
        assert_eq!(t.offset, data_start + off, "{}", t.stored_name);
        assert_eq!(t.offset % 32, 0);
    }
    assert_eq!(m.path, m.files[0].path);
}

#[test]
fn custom_alignment_is_respected() {
    let mut g = Gguf::arch("qwen2");
    g.alignment = 256;
    g.kv("general.alignment", Val::U32(256))
        .f32_tensor("a.weight", &[3], &[1.0, 2.0, 3.0])
        .f32_tensor("b.weight", &[2], &[4.0, 5.0]);
    let m = open_bytes(&g.build()).unwrap();
    assert_eq!(m.tensors[0].offset % 256, 0);
    assert_eq!(m.tensors[1].offset - m.tensors[0].offset, 256);
    assert_eq!(m.read_all(&m.tensors[1]).unwrap(), vec![4.0, 5.0]);
}

#[test]
fn dims_are_reversed_to_outermost_first() {
    let values = ramp(2 * 3 * 4, 1.0);
    let mut g = Gguf::arch("qwen2moe");
    g.f32_tensor("blk.0.ffn_gate_exps.weight", &[2, 3, 4], &values);
    g.f32_tensor("token_embd.weight", &[576, 2], &ramp(1152, 0.01));
    let m = open_bytes(&g.build()).unwrap();
    let t = m
        .tensor("model.layers.0.mlp.experts.gate_proj.weight")
        .unwrap();
    assert_eq!(t.shape, vec![4, 3, 2]);
    assert_eq!(t.row_len(), 2);
    assert_eq!(t.n_rows(), 12);
    assert_eq!(m.read_all(t).unwrap(), values);
    assert_eq!(
        m.tensor("model.embed_tokens.weight").unwrap().shape,
        vec![2, 576]
    );
}

/// Rows numbered by their Hugging Face index (row r holds r*100 + column).
fn numbered(rows: usize, cols: usize) -> Vec<Vec<f32>> {
    (0..rows)
        .map(|r| (0..cols).map(|c| (r * 100 + c) as f32).collect())
        .collect()
}

#[test]
fn llama_qk_rows_read_back_in_hugging_face_order() {
    let (n_head, n_kv, head_dim, d) = (4usize, 2usize, 4usize, 32usize);
    let q_hf = numbered(n_head * head_dim, d);
    // K in Q8_0 with small integers so the values are exact: whole quantized rows move.
    let k_hf: Vec<Vec<f32>> = (0..n_kv * head_dim)
        .map(|r| (0..d).map(|c| (r as f32) - (c % 3) as f32).collect())
        .collect();
    let v_hf = numbered(n_kv * head_dim, d);
    let flat = |rows: &[Vec<f32>]| rows.concat();

    let mut g = Gguf::arch("llama");
    g.kv("llama.attention.head_count", Val::U32(n_head as u32))
        .kv("llama.attention.head_count_kv", Val::U32(n_kv as u32))
        .f32_tensor(
            "blk.0.attn_q.weight",
            &[d as u64, (n_head * head_dim) as u64],
            &flat(&llama_permute(&q_hf, n_head)),
        )
        .tensor(
            "blk.0.attn_k.weight",
            &[d as u64, (n_kv * head_dim) as u64],
            ggml::Q8_0,
            q8_0_bytes(&flat(&llama_permute(&k_hf, n_kv))),
        )
        .f32_tensor(
            "blk.0.attn_v.weight",
            &[d as u64, (n_kv * head_dim) as u64],
            &flat(&v_hf),
        );
    let m = open_bytes(&g.build()).unwrap();

    let q = m.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(q.row_order, RowOrder::GgufRotaryInterleaved { n_head: 4 });
    assert_eq!(m.read_all(q).unwrap(), flat(&q_hf));
    let k = m.tensor("model.layers.0.self_attn.k_proj.weight").unwrap();
    assert_eq!(k.row_order, RowOrder::GgufRotaryInterleaved { n_head: 2 });
    assert_eq!(k.dtype, Dtype::Quant(QuantType::Q8_0));
    assert_eq!(m.read_all(k).unwrap(), flat(&k_hf));
    // Row ranges too: rows 5..7 of Q.
    let mut out = Vec::new();
    m.read_rows(q, 5..7, &mut out).unwrap();
    assert_eq!(out, flat(&q_hf[5..7]));
    // V is never permuted.
    let v = m.tensor("model.layers.0.self_attn.v_proj.weight").unwrap();
    assert_eq!(v.row_order, RowOrder::Identity);
    assert_eq!(m.read_all(v).unwrap(), flat(&v_hf));
}

#[test]
fn k_falls_back_to_head_count_and_per_layer_counts_work() {
    let mut g = Gguf::arch("llama");
    g.kv("llama.attention.head_count", Val::U32(2)).f32_tensor(
        "blk.0.attn_k.weight",
        &[1, 8],
        &ramp(8, 1.0),
    );
    let m = open_bytes(&g.build()).unwrap();
    assert_eq!(
        m.tensors[0].row_order,
        RowOrder::GgufRotaryInterleaved { n_head: 2 }
    );

    // deci stores head counts per layer.
    let mut g = Gguf::arch("deci");
    g.kv(
        "deci.attention.head_count",
        Val::Arr(ty::U32, vec![Val::U32(2), Val::U32(4)]),
    )
    .kv(
        "deci.attention.head_count_kv",
        Val::Arr(ty::U32, vec![Val::U32(1), Val::U32(2)]),
    )
    .f32_tensor("blk.1.attn_q.weight", &[1, 8], &ramp(8, 1.0))
    .f32_tensor("blk.1.attn_k.weight", &[1, 4], &ramp(4, 1.0));
    let m = open_bytes(&g.build()).unwrap();
    assert_eq!(
        m.tensors[0].row_order,
        RowOrder::GgufRotaryInterleaved { n_head: 4 }
    );
    assert_eq!(
        m.tensors[1].row_order,
        RowOrder::GgufRotaryInterleaved { n_head: 2 }
    );
}

#[test]
fn non_llama_archs_are_not_unpermuted() {
    for arch in ["qwen2", "gemma3", "phi3", "llama4"] {
        let mut g = Gguf::arch(arch);
        g.kv(&format!("{arch}.attention.head_count"), Val::U32(2))
            .f32_tensor("blk.0.attn_q.weight", &[1, 8], &ramp(8, 1.0));
        let m = open_bytes(&g.build()).unwrap();
        assert_eq!(m.tensors[0].row_order, RowOrder::Identity, "{arch}");
    }
}

#[test]
fn quantized_tensor_dequantizes_through_the_model() {
    // One Q4_0 block: d = 0.5, nibbles j / 15-j.
    let mut block = half::f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let mut g = Gguf::arch("qwen2");
    g.tensor("blk.0.ffn_down.weight", &[32, 1], ggml::Q4_0, block);
    let m = open_bytes(&g.build()).unwrap();
    let t = m.tensor("model.layers.0.mlp.down_proj.weight").unwrap();
    assert_eq!(t.byte_len, 18);
    let v = m.read_all(t).unwrap();
    assert_eq!(v[0], -4.0);
    assert_eq!(v[16], 3.5);
}

#[test]
fn metadata_values_of_every_type() {
    let big: Vec<Val> = (0..1000).map(Val::I32).collect();
    let mut g = Gguf::arch("qwen2");
    g.kv("t.u8", Val::U8(200))
        .kv("t.i8", Val::I8(-5))
        .kv("t.u16", Val::U16(60000))
        .kv("t.i16", Val::I16(-30000))
        .kv("t.u32", Val::U32(4_000_000_000))
        .kv("t.i32", Val::I32(-2_000_000_000))
        .kv("t.f32", Val::F32(1e-6))
        .kv("t.bool", Val::Bool(true))
        .kv("t.str", Val::str("héllo"))
        .kv("t.u64", Val::U64(u64::MAX))
        .kv("t.i64", Val::I64(i64::MIN))
        .kv("t.f64", Val::F64(0.1))
        .kv("t.nan", Val::F32(f32::NAN))
        .kv(
            "t.arr",
            Val::Arr(ty::F32, vec![Val::F32(0.5), Val::F32(-2.0)]),
        )
        .kv(
            "t.nested",
            Val::Arr(
                ty::ARRAY,
                vec![
                    Val::Arr(ty::U8, vec![Val::U8(1), Val::U8(2)]),
                    Val::strs(&["a", "b"]),
                ],
            ),
        )
        .kv("t.empty", Val::Arr(ty::STR, vec![]))
        .kv("t.big", Val::Arr(ty::I32, big));
    let m = open_bytes(&g.build()).unwrap();
    let md = &m.metadata;
    assert_eq!(md["general.architecture"], json!("qwen2"));
    assert_eq!(md["t.u8"], json!(200));
    assert_eq!(md["t.i8"], json!(-5));
    assert_eq!(md["t.u16"], json!(60000));
    assert_eq!(md["t.i16"], json!(-30000));
    assert_eq!(md["t.u32"], json!(4_000_000_000u32));
    assert_eq!(md["t.i32"], json!(-2_000_000_000));
    assert_eq!(md["t.f32"], json!(1e-6));
    assert_eq!(md["t.bool"], json!(true));
    assert_eq!(md["t.str"], json!("héllo"));
    assert_eq!(md["t.u64"], json!(u64::MAX));
    assert_eq!(md["t.i64"], json!(i64::MIN));
    assert_eq!(md["t.f64"], json!(0.1));
    assert_eq!(md["t.nan"], json!("NaN"));
    assert_eq!(md["t.arr"], json!([0.5, -2.0]));
    assert_eq!(md["t.nested"], json!([[1, 2], ["a", "b"]]));
    assert_eq!(md["t.empty"], json!([]));
    assert_eq!(
        md["t.big"],
        json!({"array_of": "int32", "len": 1000, "first": [0, 1, 2, 3, 4, 5, 6, 7]})
    );
    assert!(m.tensors.is_empty());
}

fn with_tokenizer(model: &str, scores: Option<Vec<f32>>, merges: bool) -> Gguf {
    let mut g = Gguf::arch("llama");
    g.kv("general.license", Val::str("Apache-2.0"))
        .kv("tokenizer.ggml.model", Val::str(model))
        .kv(
            "tokenizer.ggml.tokens",
            Val::strs(&["<unk>", "<s>", "</s>", "▁the", "Ġa"]),
        )
        .kv("tokenizer.ggml.bos_token_id", Val::U32(1))
        .kv("tokenizer.ggml.eos_token_id", Val::U32(2))
        .kv("tokenizer.ggml.padding_token_id", Val::U32(99));
    if let Some(s) = scores {
        g.kv(
            "tokenizer.ggml.scores",
            Val::Arr(ty::F32, s.into_iter().map(Val::F32).collect()),
        );
    }
    if merges {
        g.kv("tokenizer.ggml.merges", Val::strs(&["▁ t", "h e"]));
    }
    g
}

#[test]
fn tokenizer_and_licence_come_from_metadata() {
    let m = open_bytes(&with_tokenizer("gpt2", None, true).build()).unwrap();
    let tok = m.sidecars.tokenizer.as_ref().unwrap();
    assert_eq!(tok.kind, TokenizerKind::ByteLevelBpe);
    assert_eq!(tok.vocab, vec!["<unk>", "<s>", "</s>", "▁the", "Ġa"]);
    assert_eq!(tok.merges, vec!["▁ t", "h e"]);
    assert_eq!(tok.source, "gguf metadata");
    let ids: Vec<(u32, &str)> = tok
        .special_tokens
        .iter()
        .map(|t| (t.id, t.content.as_str()))
        .collect();
    assert_eq!(ids, vec![(1, "<s>"), (2, "</s>")]); // padding id 99 is out of range
    let lic = m.sidecars.licence.as_ref().unwrap();
    assert_eq!(lic.id.as_deref(), Some("apache-2.0"));
    assert_eq!(lic.source, "gguf general.license");
    assert!(m.sidecars.config.is_none() && m.sidecars.folder.is_none());
    // The token list is summarized only when long; this one is short.
    assert_eq!(
        m.metadata["tokenizer.ggml.tokens"],
        json!(["<unk>", "<s>", "</s>", "▁the", "Ġa"])
    );

    let kind = |model, scores, merges| {
        let m = open_bytes(&with_tokenizer(model, scores, merges).build()).unwrap();
        m.sidecars.tokenizer.unwrap().kind
    };
    assert_eq!(
        kind("llama", Some(vec![0.0, 0.0, 0.0, -1.0, -2.0]), false),
        TokenizerKind::Bpe
    );
    assert_eq!(
        kind("llama", Some(vec![0.0, 0.0, 0.0, -3.25, -7.5]), false),
        TokenizerKind::Unigram
    );
    assert_eq!(kind("bert", None, false), TokenizerKind::WordPiece);
    assert_eq!(kind("t5", None, false), TokenizerKind::Unigram);
    assert_eq!(kind("rwkv", None, false), TokenizerKind::Unknown);
}

#[test]
fn long_token_lists_are_summarized_in_metadata() {
    let tokens: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut g = Gguf::arch("llama");
    g.kv("tokenizer.ggml.model", Val::str("gpt2"))
        .kv("tokenizer.ggml.tokens", Val::strs(&refs));
    let m = open_bytes(&g.build()).unwrap();
    assert_eq!(
        m.metadata["tokenizer.ggml.tokens"],
        json!({"array_of": "string", "len": 100, "first": ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"]})
    );
    assert_eq!(m.sidecars.tokenizer.unwrap().vocab.len(), 100);
}

#[test]
fn no_vocab_means_no_tokenizer() {
    let mut g = Gguf::arch("llama");
    g.kv("tokenizer.ggml.model", Val::str("no_vocab"));
    let m = open_bytes(&g.build()).unwrap();
    assert!(m.sidecars.tokenizer.is_none());
    assert!(m.sidecars.licence.is_none());
}

#[test]
fn version_2_reads_like_version_3() {
    let (mut g, embd, ..) = float_model();
    g.version = 2;
    let m = open_bytes(&g.build()).unwrap();
    assert_eq!(
        m.read_all(m.tensor("model.embed_tokens.weight").unwrap())
            .unwrap(),
        embd
    );
}

#[test]
fn unknown_names_are_kept_and_model_open_dispatches_here() {
    let mut g = Gguf::arch("mamba");
    g.f32_tensor("blk.0.ssm_a", &[2], &[1.0, 2.0]).f32_tensor(
        "output_norm.weight",
        &[2],
        &[3.0, 4.0],
    );
    let t = write_temp(&g.build());
    let m = Model::open(&t.path, Default::default()).unwrap();
    assert_eq!(m.tensors[0].name, "blk.0.ssm_a");
    assert_eq!(m.tensors[0].stored_name, "blk.0.ssm_a");
    assert_eq!(m.tensors[1].name, "model.norm.weight");
    assert_eq!(m.format, WeightsFormat::Gguf);
}

#[test]
fn errors_name_the_file() {
    let mut g = Gguf::arch("qwen2");
    g.tensor("x.weight", &[4], 16, vec![0; 64]);
    let t = write_temp(&g.build());
    let err = dokja_formats::gguf::open(&t.path, Default::default()).unwrap_err();
    assert!(matches!(err, FormatError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&t.path.display().to_string()), "{msg}");
    assert!(msg.contains("IQ2_XXS") && msg.contains("x.weight"), "{msg}");
}
