//! The real GGUF fixtures (scripts/fetch-test-models.sh): runs only when DOKJA_TEST_MODELS
//! points at the fetched models folder, e.g. `export "$(scripts/fetch-test-models.sh)"`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dokja_formats::{Dtype, Model, QuantType, RowOrder, TokenizerKind, WeightsFormat};

fn fixture(rel: &str) -> Option<PathBuf> {
    dokja_testkit::real_model(rel)
}

/// Decodes every tensor (read_rows refuses non-finite values) and returns the dtype mix.
fn decode_everything(m: &Model) -> BTreeMap<String, usize> {
    let mut dtypes = BTreeMap::new();
    for t in &m.tensors {
        let mut n = 0u64;
        let mut sum_sq = 0f64;
        m.for_each_chunk(t, 1 << 20, |_, values| {
            n += values.len() as u64;
            sum_sq += values.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
        })
        .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert_eq!(n, t.n_elements(), "{}", t.name);
        assert!(sum_sq.is_finite(), "{}", t.name);
        // Quantized weights of a trained model are never all zero.
        if t.shape.len() == 2 {
            assert!(sum_sq > 0.0, "{} decodes to zeros", t.name);
        }
        *dtypes.entry(t.dtype.name().to_string()).or_insert(0) += 1;
    }
    dtypes
}

fn shape(m: &Model, name: &str) -> Vec<u64> {
    m.tensor(name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .shape
        .clone()
}

#[test]
fn smollm2_135m_q4_1() {
    let Some(path) = fixture("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m = dokja_formats::gguf::open(&path, Default::default()).unwrap();
    assert_eq!(m.format, WeightsFormat::Gguf);
    assert_eq!(m.metadata["general.architecture"], "llama");
    assert_eq!(m.metadata["llama.block_count"], 30);
    // 30 blocks of 9 tensors, the embedding (tied: no output.weight) and the final norm.
    assert_eq!(m.tensors.len(), 30 * 9 + 2);
    assert!(
        m.tensors
            .iter()
            .all(|t| !t.name.starts_with("blk.") && t.name != t.stored_name)
    );

    let embd = m.tensor("model.embed_tokens.weight").unwrap();
    assert_eq!(embd.shape, vec![49152, 576]);
    assert_eq!(embd.dtype, Dtype::Quant(QuantType::Q8_0));
    assert_eq!(shape(&m, "model.norm.weight"), vec![576]);
    for l in [0, 29] {
        let p = format!("model.layers.{l}.");
        assert_eq!(
            shape(&m, &format!("{p}self_attn.q_proj.weight")),
            vec![576, 576]
        );
        assert_eq!(
            shape(&m, &format!("{p}self_attn.k_proj.weight")),
            vec![192, 576]
        );
        assert_eq!(
            shape(&m, &format!("{p}self_attn.v_proj.weight")),
            vec![192, 576]
        );
        assert_eq!(
            shape(&m, &format!("{p}self_attn.o_proj.weight")),
            vec![576, 576]
        );
        assert_eq!(
            shape(&m, &format!("{p}mlp.gate_proj.weight")),
            vec![1536, 576]
        );
        assert_eq!(
            shape(&m, &format!("{p}mlp.up_proj.weight")),
            vec![1536, 576]
        );
        assert_eq!(
            shape(&m, &format!("{p}mlp.down_proj.weight")),
            vec![576, 1536]
        );
        assert_eq!(shape(&m, &format!("{p}input_layernorm.weight")), vec![576]);
        assert_eq!(
            shape(&m, &format!("{p}post_attention_layernorm.weight")),
            vec![576]
        );
        let q = m.tensor(&format!("{p}self_attn.q_proj.weight")).unwrap();
        let k = m.tensor(&format!("{p}self_attn.k_proj.weight")).unwrap();
        assert_eq!(q.row_order, RowOrder::GgufRotaryInterleaved { n_head: 9 });
        assert_eq!(k.row_order, RowOrder::GgufRotaryInterleaved { n_head: 3 });
    }

    let tok = m.sidecars.tokenizer.as_ref().unwrap();
    assert_eq!(tok.kind, TokenizerKind::ByteLevelBpe);
    assert_eq!(tok.vocab.len(), 49152);
    assert!(!tok.merges.is_empty());
    assert!(!tok.special_tokens.is_empty());

    let dtypes = decode_everything(&m);
    eprintln!(
        "smollm2: {} tensors, dtypes {dtypes:?}, licence {:?}, tokenizer {:?} ({} tokens, {} merges, special {:?})",
        m.tensors.len(),
        m.sidecars.licence.as_ref().and_then(|l| l.id.clone()),
        tok.kind,
        tok.vocab.len(),
        tok.merges.len(),
        tok.special_tokens
    );
}

#[test]
fn gemma3_270m_q4_k_m() {
    let Some(path) = fixture("gemma3-270m/gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let m = dokja_formats::gguf::open(&path, Default::default()).unwrap();
    assert_eq!(m.metadata["general.architecture"], "gemma3");
    assert_eq!(m.metadata["gemma3.block_count"], 18);
    // 18 blocks of 13 tensors (four norms, q/k norms), the embedding and the final norm.
    assert_eq!(m.tensors.len(), 18 * 13 + 2);
    assert!(
        m.tensors
            .iter()
            .all(|t| !t.name.starts_with("blk.") && t.name != t.stored_name)
    );
    assert_eq!(shape(&m, "model.embed_tokens.weight"), vec![262144, 640]);
    for l in [0, 17] {
        let p = format!("model.layers.{l}.");
        for norm in [
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
        ] {
            assert_eq!(shape(&m, &format!("{p}{norm}.weight")), vec![640]);
        }
        for proj in ["q", "k", "v", "o"] {
            let t = m
                .tensor(&format!("{p}self_attn.{proj}_proj.weight"))
                .unwrap();
            assert_eq!(t.row_order, RowOrder::Identity);
        }
        assert!(m.tensor(&format!("{p}self_attn.q_norm.weight")).is_some());
        assert!(m.tensor(&format!("{p}self_attn.k_norm.weight")).is_some());
        assert!(m.tensor(&format!("{p}mlp.gate_proj.weight")).is_some());
    }
    let tok = m.sidecars.tokenizer.as_ref().unwrap();
    assert_eq!(tok.vocab.len(), 262144);

    let dtypes = decode_everything(&m);
    let quantized: Vec<&String> = dtypes.keys().filter(|k| k.starts_with('Q')).collect();
    assert!(quantized.len() >= 3, "{dtypes:?}");
    eprintln!(
        "gemma3: {} tensors, dtypes {dtypes:?}, licence {:?}, tokenizer {:?} ({} tokens, {} merges, special {:?})",
        m.tensors.len(),
        m.sidecars.licence.as_ref().and_then(|l| l.id.clone()),
        tok.kind,
        tok.vocab.len(),
        tok.merges.len(),
        tok.special_tokens
    );
}
