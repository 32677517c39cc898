//! Hugging Face -> llama.cpp tensor names, as convert_hf_to_gguf.py maps them for the
//! architectures the generators produce.

/// Where one HF tensor goes in a GGUF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GgufTarget {
    /// A tensor of its own.
    Single(String),
    /// Expert `index` of a stacked 3-D tensor `[n_expert, out, in]`.
    Expert { name: String, index: usize },
    /// MLA `kv_b_proj` of block `layer`: current llama.cpp splits it into `attn_k_b` and
    /// `attn_v_b`; older files keep `attn_kv_b`.
    KvB { layer: usize },
    /// Dropped by the converter (pooler, rotary buffers).
    Skip,
}

const LM_PREFIXES: [&str; 3] = ["model.language_model.", "language_model.model.", "model."];

/// The GGUF placement of `hf_name` for llama.cpp architecture `arch`, or None if the
/// converter has no name for it (e.g. a vision tower, which goes to a separate mmproj file).
pub fn gguf_target(arch: &str, hf_name: &str) -> Option<GgufTarget> {
    if arch == "bert" {
        return bert_target(hf_name.strip_prefix("bert.").unwrap_or(hf_name));
    }
    if hf_name == "lm_head.weight" || hf_name == "language_model.lm_head.weight" {
        return Some(GgufTarget::Single("output.weight".into()));
    }
    let body = LM_PREFIXES.iter().find_map(|p| hf_name.strip_prefix(p))?;
    match body {
        "embed_tokens.weight" => return Some(GgufTarget::Single("token_embd.weight".into())),
        "norm.weight" => return Some(GgufTarget::Single("output_norm.weight".into())),
        _ => {}
    }
    let rest = body.strip_prefix("layers.")?;
    let (idx, rest) = rest.split_once('.')?;
    let bid: usize = idx.parse().ok()?;
    let (module, suffix) = rest.rsplit_once('.')?;
    if module.ends_with("rotary_emb") {
        return Some(GgufTarget::Skip);
    }
    let blk = |n: &str| Some(GgufTarget::Single(format!("blk.{bid}.{n}.{suffix}")));
    if let Some(e) = module.strip_prefix("mlp.experts.") {
        let (e, proj) = e.split_once('.')?;
        let name = match proj {
            "gate_proj" => "ffn_gate_exps",
            "up_proj" => "ffn_up_exps",
            "down_proj" => "ffn_down_exps",
            _ => return None,
        };
        return Some(GgufTarget::Expert {
            name: format!("blk.{bid}.{name}.{suffix}"),
            index: e.parse().ok()?,
        });
    }
    if let Some(e) = module.strip_prefix("block_sparse_moe.experts.") {
        let (e, w) = e.split_once('.')?;
        let name = match w {
            "w1" => "ffn_gate_exps",
            "w3" => "ffn_up_exps",
            "w2" => "ffn_down_exps",
            _ => return None,
        };
        return Some(GgufTarget::Expert {
            name: format!("blk.{bid}.{name}.{suffix}"),
            index: e.parse().ok()?,
        });
    }
    if module == "self_attn.kv_b_proj" && suffix == "weight" {
        return Some(GgufTarget::KvB { layer: bid });
    }
    if module == "mlp.gate" && suffix == "e_score_correction_bias" {
        return Some(GgufTarget::Single(format!("blk.{bid}.exp_probs_b.bias")));
    }
    let gemma = arch.starts_with("gemma");
    let n = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "self_attn.q_a_proj" => "attn_q_a",
        "self_attn.q_a_layernorm" => "attn_q_a_norm",
        "self_attn.q_b_proj" => "attn_q_b",
        "self_attn.kv_a_proj_with_mqa" => "attn_kv_a_mqa",
        "self_attn.kv_a_layernorm" => "attn_kv_a_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "mlp.gate" | "block_sparse_moe.gate" => "ffn_gate_inp",
        "mlp.shared_expert.gate_proj" | "mlp.shared_experts.gate_proj" => "ffn_gate_shexp",
        "mlp.shared_expert.up_proj" | "mlp.shared_experts.up_proj" => "ffn_up_shexp",
        "mlp.shared_expert.down_proj" | "mlp.shared_experts.down_proj" => "ffn_down_shexp",
        "mlp.shared_expert_gate" => "ffn_gate_inp_shexp",
        _ => return None,
    };
    blk(n)
}

fn bert_target(name: &str) -> Option<GgufTarget> {
    let single = |s: String| Some(GgufTarget::Single(s));
    if name.starts_with("pooler.") || name == "embeddings.position_ids" {
        return Some(GgufTarget::Skip);
    }
    if let Some(rest) = name.strip_prefix("embeddings.") {
        let (module, suffix) = rest.rsplit_once('.')?;
        let n = match module {
            "word_embeddings" => "token_embd",
            "position_embeddings" => "position_embd",
            "token_type_embeddings" => "token_types",
            "LayerNorm" => "token_embd_norm",
            _ => return None,
        };
        return single(format!("{n}.{suffix}"));
    }
    let rest = name.strip_prefix("encoder.layer.")?;
    let (idx, rest) = rest.split_once('.')?;
    let bid: usize = idx.parse().ok()?;
    let (module, suffix) = rest.rsplit_once('.')?;
    let n = match module {
        "attention.self.query" => "attn_q",
        "attention.self.key" => "attn_k",
        "attention.self.value" => "attn_v",
        "attention.output.dense" => "attn_output",
        "attention.output.LayerNorm" => "attn_output_norm",
        "intermediate.dense" => "ffn_up",
        "output.dense" => "ffn_down",
        "output.LayerNorm" => "layer_output_norm",
        _ => return None,
    };
    single(format!("blk.{bid}.{n}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(arch: &str, n: &str) -> String {
        match gguf_target(arch, n) {
            Some(GgufTarget::Single(s)) => s,
            other => panic!("{n}: {other:?}"),
        }
    }

    #[test]
    fn decoder_names() {
        assert_eq!(
            single("llama", "model.embed_tokens.weight"),
            "token_embd.weight"
        );
        assert_eq!(single("llama", "lm_head.weight"), "output.weight");
        assert_eq!(single("llama", "model.norm.weight"), "output_norm.weight");
        assert_eq!(
            single("llama", "model.layers.3.self_attn.o_proj.weight"),
            "blk.3.attn_output.weight"
        );
        assert_eq!(
            single("qwen2", "model.layers.0.self_attn.k_proj.bias"),
            "blk.0.attn_k.bias"
        );
        assert_eq!(
            single("llama", "model.layers.0.post_attention_layernorm.weight"),
            "blk.0.ffn_norm.weight"
        );
        assert_eq!(
            single("gemma3", "model.layers.0.post_attention_layernorm.weight"),
            "blk.0.post_attention_norm.weight"
        );
        assert_eq!(
            single("qwen3moe", "model.layers.1.mlp.gate.weight"),
            "blk.1.ffn_gate_inp.weight"
        );
        assert_eq!(
            single(
                "deepseek2",
                "model.layers.1.mlp.gate.e_score_correction_bias"
            ),
            "blk.1.exp_probs_b.bias"
        );
        assert_eq!(
            single(
                "deepseek2",
                "model.layers.1.mlp.shared_experts.down_proj.weight"
            ),
            "blk.1.ffn_down_shexp.weight"
        );
        assert_eq!(
            single("llama", "model.language_model.layers.0.mlp.up_proj.weight"),
            "blk.0.ffn_up.weight"
        );
        assert_eq!(
            gguf_target(
                "llama",
                "model.layers.2.block_sparse_moe.experts.5.w2.weight"
            ),
            Some(GgufTarget::Expert {
                name: "blk.2.ffn_down_exps.weight".into(),
                index: 5
            })
        );
        assert_eq!(
            gguf_target("deepseek2", "model.layers.4.self_attn.kv_b_proj.weight"),
            Some(GgufTarget::KvB { layer: 4 })
        );
        assert_eq!(
            gguf_target(
                "llama",
                "model.vision_tower.vision_model.post_layernorm.weight"
            ),
            None
        );
        assert_eq!(gguf_target("llama", "visual.post_layernorm.weight"), None);
    }

    #[test]
    fn bert_names() {
        assert_eq!(
            single("bert", "embeddings.LayerNorm.bias"),
            "token_embd_norm.bias"
        );
        assert_eq!(
            single("bert", "encoder.layer.1.output.LayerNorm.weight"),
            "blk.1.layer_output_norm.weight"
        );
        assert_eq!(
            single("bert", "encoder.layer.0.intermediate.dense.bias"),
            "blk.0.ffn_up.bias"
        );
        assert_eq!(
            gguf_target("bert", "pooler.dense.weight"),
            Some(GgufTarget::Skip)
        );
    }
}
