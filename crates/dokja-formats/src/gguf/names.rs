//! llama.cpp tensor names -> Hugging Face names, per `general.architecture`.
//!
//! llama.cpp names tensors `token_embd.weight`, `blk.N.attn_q.weight`, ...; the schema and
//! every comparison work on Hugging Face names (`model.embed_tokens.weight`,
//! `model.layers.N.self_attn.q_proj.weight`). Names this table does not know are kept as
//! stored, never dropped.

/// Architectures whose converter (convert_hf_to_gguf.py) applies `LlamaModel.permute` (or
/// an equivalent) to the rows of q_proj and k_proj, so that llama.cpp's interleaved
/// ("NORM") rotary embedding works on Hugging Face's rotate-half weights. Files converted
/// from Meta's or Mistral's native checkpoints are already interleaved, so a GGUF of one of
/// these architectures is always in interleaved order whichever checkpoint it came from.
const PERMUTED_QK_ARCHS: &[&str] = &[
    "llama",
    "mistral3",
    "deci",
    "granite",
    "granitemoe",
    "granitehybrid",
    "baichuan",
    "xverse",
    "internlm2",
    "minicpm",
    "deepseek",
    "arcee",
    "smollm3",
    "bailingmoe",
    "olmo",
    "arctic",
    "chameleon",
];

/// Whether `arch`'s GGUF stores attn_q/attn_k rows interleaved per head.
pub fn permutes_qk(arch: &str) -> bool {
    PERMUTED_QK_ARCHS.contains(&arch)
}

/// Which rotary projection a stored tensor is, for undoing the permutation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkRole {
    Q,
    K,
}

/// `Some((layer, role))` for `blk.N.attn_q.weight` and `blk.N.attn_k.weight`.
pub fn qk_role(stored: &str) -> Option<(u64, QkRole)> {
    let p = parse(stored)?;
    let layer = p.layer?.parse().ok()?;
    if p.suffix != Some("weight") || p.expert.is_some() {
        return None;
    }
    match p.base {
        "attn_q" => Some((layer, QkRole::Q)),
        "attn_k" => Some((layer, QkRole::K)),
        _ => None,
    }
}

/// The Hugging Face name of stored tensor `stored` in a model of architecture `arch`, or
/// the stored name itself when the table does not know it.
pub fn hf_name(arch: &str, stored: &str) -> String {
    translate(Family::of(arch), stored).unwrap_or_else(|| stored.to_string())
}

/// Naming conventions that differ between architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// Llama-style decoders (`model.layers.N.self_attn.q_proj`), the default.
    Decoder,
    /// Gemma 2/3: four norms per block.
    Gemma2,
    /// Phi-3: fused gate_up_proj stored as ffn_up.
    Phi3,
    /// Phi-2: dense / fc1 / fc2 / final_layernorm.
    Phi2,
    /// Qwen MoE: one `shared_expert` plus `shared_expert_gate`.
    QwenMoe,
    /// BERT-style encoders (`encoder.layer.N.attention.self.query`).
    Bert,
}

impl Family {
    fn of(arch: &str) -> Family {
        match arch {
            "bert" | "nomic-bert" | "nomic-bert-moe" | "jina-bert-v2" | "jina-bert-v3"
            | "neo-bert" => Family::Bert,
            "phi3" | "phimoe" => Family::Phi3,
            "phi2" => Family::Phi2,
            a if a.starts_with("gemma") && a != "gemma" => Family::Gemma2,
            a if (a.starts_with("qwen") && a.contains("moe")) || a == "qwen3next" => {
                Family::QwenMoe
            }
            _ => Family::Decoder,
        }
    }
}

/// A stored name split into `blk.{layer}.{base}[.{expert}].{suffix}`.
struct Parsed<'a> {
    layer: Option<&'a str>,
    base: &'a str,
    /// Old (pre-stacking) MoE files store one tensor per expert: `blk.N.ffn_up.E.weight`.
    expert: Option<&'a str>,
    suffix: Option<&'a str>,
}

fn is_index(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse(stored: &str) -> Option<Parsed<'_>> {
    let (layer, rest) = match stored.strip_prefix("blk.") {
        Some(rest) => {
            let (layer, rest) = rest.split_once('.')?;
            if !is_index(layer) {
                return None;
            }
            (Some(layer), rest)
        }
        None => (None, stored),
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let (base, expert, suffix) = match parts.as_slice() {
        [base] => (*base, None, None),
        [base, suffix] => (*base, None, Some(*suffix)),
        [base, expert, suffix] if is_index(expert) => (*base, Some(*expert), Some(*suffix)),
        _ => return None,
    };
    if base.is_empty() || suffix.is_some_and(str::is_empty) {
        return None;
    }
    Some(Parsed {
        layer,
        base,
        expert,
        suffix,
    })
}

/// Where a stored base name goes: a module (the stored suffix, e.g. `.weight`, is kept) or
/// a complete parameter name (buffers and biases whose Hugging Face name has no suffix).
enum Target {
    Module(String),
    Param(String),
}

fn module(s: &str) -> Option<Target> {
    Some(Target::Module(s.to_string()))
}

fn translate(family: Family, stored: &str) -> Option<String> {
    let p = parse(stored)?;
    let target = match (p.layer, p.expert) {
        (None, None) => global(family, p.base)?,
        (Some(layer), None) => {
            let (prefix, inner) = match family {
                Family::Bert => (format!("encoder.layer.{layer}."), bert_layer(p.base)?),
                _ => (
                    format!("model.layers.{layer}."),
                    decoder_layer(family, p.base)?,
                ),
            };
            match inner {
                Target::Module(m) => Target::Module(prefix + &m),
                Target::Param(m) => Target::Param(prefix + &m),
            }
        }
        (Some(layer), Some(expert)) => {
            let proj = match p.base {
                "ffn_gate" => "gate_proj",
                "ffn_up" => "up_proj",
                "ffn_down" => "down_proj",
                _ => return None,
            };
            Target::Module(format!("model.layers.{layer}.mlp.experts.{expert}.{proj}"))
        }
        (None, Some(_)) => return None,
    };
    Some(match (target, p.suffix) {
        (Target::Module(m), Some(suffix)) => format!("{m}.{suffix}"),
        (Target::Module(m), None) | (Target::Param(m), _) => m,
    })
}

/// Tensors outside the blocks.
fn global(family: Family, base: &str) -> Option<Target> {
    if family == Family::Bert {
        return match base {
            "token_embd" => module("embeddings.word_embeddings"),
            "token_types" => module("embeddings.token_type_embeddings"),
            "position_embd" => module("embeddings.position_embeddings"),
            "token_embd_norm" => module("embeddings.LayerNorm"),
            _ => None,
        };
    }
    match base {
        "token_embd" => module("model.embed_tokens"),
        "output" => module("lm_head"),
        "output_norm" if family == Family::Phi2 => module("model.final_layernorm"),
        "output_norm" => module("model.norm"),
        // Not learned (llama3 / longrope frequency factors): named so that the schema can
        // recognize and exclude them like Hugging Face's rotary_emb.inv_freq buffers.
        "rope_freqs" => Some(Target::Param("model.rotary_emb.inv_freq".into())),
        "rope_factors_long" => Some(Target::Param(
            "model.rotary_emb.inv_freq.long_factor".into(),
        )),
        "rope_factors_short" => Some(Target::Param(
            "model.rotary_emb.inv_freq.short_factor".into(),
        )),
        _ => None,
    }
}

/// Block tensors of decoder families, relative to `model.layers.N.`.
fn decoder_layer(family: Family, base: &str) -> Option<Target> {
    let shared = if family == Family::QwenMoe {
        "shared_expert"
    } else {
        "shared_experts"
    };
    let name = match (family, base) {
        (Family::Gemma2, "ffn_norm") => "pre_feedforward_layernorm",
        (Family::Phi3, "ffn_up") => "mlp.gate_up_proj",
        (Family::Phi2, "attn_output") => "self_attn.dense",
        (Family::Phi2, "ffn_up") => "mlp.fc1",
        (Family::Phi2, "ffn_down") => "mlp.fc2",
        (_, "exp_probs_b") => {
            return Some(Target::Param("mlp.gate.e_score_correction_bias".into()));
        }
        (_, "ffn_gate_shexp") => return module(&format!("mlp.{shared}.gate_proj")),
        (_, "ffn_up_shexp") => return module(&format!("mlp.{shared}.up_proj")),
        (_, "ffn_down_shexp") => return module(&format!("mlp.{shared}.down_proj")),
        (_, base) => common_layer(base)?,
    };
    module(name)
}

/// Block tensor names shared by the decoder families.
fn common_layer(base: &str) -> Option<&'static str> {
    Some(match base {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_qkv" => "self_attn.qkv_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "attn_sinks" => "self_attn.sinks",
        "ffn_norm" => "post_attention_layernorm",
        "post_attention_norm" => "post_attention_layernorm",
        "post_ffw_norm" => "post_feedforward_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        // MoE: router and stacked experts ([n_expert, out, in]).
        "ffn_gate_inp" => "mlp.gate",
        "ffn_gate_exps" => "mlp.experts.gate_proj",
        "ffn_up_exps" => "mlp.experts.up_proj",
        "ffn_down_exps" => "mlp.experts.down_proj",
        "ffn_gate_up_exps" => "mlp.experts.gate_up_proj",
        "ffn_gate_inp_shexp" => "mlp.shared_expert_gate",
        // DeepSeek-style multi-head latent attention.
        "attn_q_a" => "self_attn.q_a_proj",
        "attn_q_a_norm" => "self_attn.q_a_layernorm",
        "attn_q_b" => "self_attn.q_b_proj",
        "attn_kv_a_mqa" => "self_attn.kv_a_proj_with_mqa",
        "attn_kv_a_norm" => "self_attn.kv_a_layernorm",
        "attn_kv_b" => "self_attn.kv_b_proj",
        // Newer converters split kv_b_proj into these (k_b transposed per head).
        "attn_k_b" => "self_attn.k_b_proj",
        "attn_v_b" => "self_attn.v_b_proj",
        _ => return None,
    })
}

/// Block tensors of BERT-style encoders, relative to `encoder.layer.N.`.
fn bert_layer(base: &str) -> Option<Target> {
    module(match base {
        "attn_q" => "attention.self.query",
        "attn_k" => "attention.self.key",
        "attn_v" => "attention.self.value",
        "attn_qkv" => "attention.self.qkv",
        "attn_output" => "attention.output.dense",
        "attn_output_norm" => "attention.output.LayerNorm",
        "ffn_up" => "intermediate.dense",
        "ffn_gate" => "intermediate.gate",
        "ffn_down" => "output.dense",
        "layer_output_norm" => "output.LayerNorm",
        _ => return None,
    })
}

/// llama.cpp's converter stores Gemma's RMSNorm weights as `1 + w` (the HF modules add the
/// 1 at run time); reading subtracts it again so a GGUF lines up with its safetensors source.
pub fn value_shift(arch: &str, stored: &str) -> f32 {
    if matches!(arch, "gemma" | "gemma2" | "gemma3") && stored.ends_with("norm.weight") {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_names() {
        let cases = [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output.weight", "lm_head.weight"),
            ("output_norm.weight", "model.norm.weight"),
            (
                "blk.0.attn_q.weight",
                "model.layers.0.self_attn.q_proj.weight",
            ),
            (
                "blk.12.attn_k.bias",
                "model.layers.12.self_attn.k_proj.bias",
            ),
            (
                "blk.3.attn_v.weight",
                "model.layers.3.self_attn.v_proj.weight",
            ),
            (
                "blk.3.attn_output.weight",
                "model.layers.3.self_attn.o_proj.weight",
            ),
            (
                "blk.3.attn_norm.weight",
                "model.layers.3.input_layernorm.weight",
            ),
            (
                "blk.3.ffn_norm.weight",
                "model.layers.3.post_attention_layernorm.weight",
            ),
            (
                "blk.3.ffn_gate.weight",
                "model.layers.3.mlp.gate_proj.weight",
            ),
            ("blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"),
            (
                "blk.3.ffn_down.weight",
                "model.layers.3.mlp.down_proj.weight",
            ),
            (
                "blk.3.attn_q_norm.weight",
                "model.layers.3.self_attn.q_norm.weight",
            ),
            (
                "blk.3.attn_k_norm.weight",
                "model.layers.3.self_attn.k_norm.weight",
            ),
            ("rope_freqs.weight", "model.rotary_emb.inv_freq"),
            // MoE, stacked and per expert.
            (
                "blk.1.ffn_gate_inp.weight",
                "model.layers.1.mlp.gate.weight",
            ),
            (
                "blk.1.ffn_gate_exps.weight",
                "model.layers.1.mlp.experts.gate_proj.weight",
            ),
            (
                "blk.1.ffn_down_exps.weight",
                "model.layers.1.mlp.experts.down_proj.weight",
            ),
            (
                "blk.1.ffn_up.7.weight",
                "model.layers.1.mlp.experts.7.up_proj.weight",
            ),
            // Unknown names survive unchanged.
            ("blk.1.ssm_conv1d.weight", "blk.1.ssm_conv1d.weight"),
            ("weird", "weird"),
            ("blk.x.attn_q.weight", "blk.x.attn_q.weight"),
            ("blk.1.attn_q.a.b.weight", "blk.1.attn_q.a.b.weight"),
        ];
        for (stored, hf) in cases {
            assert_eq!(hf_name("llama", stored), hf, "{stored}");
        }
    }

    #[test]
    fn gemma3_norms() {
        let cases = [
            (
                "blk.0.attn_norm.weight",
                "model.layers.0.input_layernorm.weight",
            ),
            (
                "blk.0.post_attention_norm.weight",
                "model.layers.0.post_attention_layernorm.weight",
            ),
            (
                "blk.0.ffn_norm.weight",
                "model.layers.0.pre_feedforward_layernorm.weight",
            ),
            (
                "blk.0.post_ffw_norm.weight",
                "model.layers.0.post_feedforward_layernorm.weight",
            ),
        ];
        for (stored, hf) in cases {
            assert_eq!(hf_name("gemma3", stored), hf);
            assert_eq!(hf_name("gemma2", stored), hf);
        }
        assert_eq!(
            hf_name("gemma", "blk.0.ffn_norm.weight"),
            "model.layers.0.post_attention_layernorm.weight"
        );
    }

    #[test]
    fn moe_and_mla_names() {
        let ds = [
            (
                "blk.5.attn_q_a.weight",
                "model.layers.5.self_attn.q_a_proj.weight",
            ),
            (
                "blk.5.attn_q_a_norm.weight",
                "model.layers.5.self_attn.q_a_layernorm.weight",
            ),
            (
                "blk.5.attn_q_b.weight",
                "model.layers.5.self_attn.q_b_proj.weight",
            ),
            (
                "blk.5.attn_kv_a_mqa.weight",
                "model.layers.5.self_attn.kv_a_proj_with_mqa.weight",
            ),
            (
                "blk.5.attn_kv_a_norm.weight",
                "model.layers.5.self_attn.kv_a_layernorm.weight",
            ),
            (
                "blk.5.attn_kv_b.weight",
                "model.layers.5.self_attn.kv_b_proj.weight",
            ),
            (
                "blk.5.exp_probs_b.bias",
                "model.layers.5.mlp.gate.e_score_correction_bias",
            ),
            (
                "blk.5.ffn_gate_shexp.weight",
                "model.layers.5.mlp.shared_experts.gate_proj.weight",
            ),
            (
                "blk.5.ffn_up_exps.weight",
                "model.layers.5.mlp.experts.up_proj.weight",
            ),
        ];
        for (stored, hf) in ds {
            assert_eq!(hf_name("deepseek2", stored), hf);
        }
        assert_eq!(
            hf_name("qwen2moe", "blk.2.ffn_down_shexp.weight"),
            "model.layers.2.mlp.shared_expert.down_proj.weight"
        );
        assert_eq!(
            hf_name("qwen2moe", "blk.2.ffn_gate_inp_shexp.weight"),
            "model.layers.2.mlp.shared_expert_gate.weight"
        );
    }

    #[test]
    fn bert_and_phi_names() {
        let bert = [
            ("token_embd.weight", "embeddings.word_embeddings.weight"),
            (
                "token_types.weight",
                "embeddings.token_type_embeddings.weight",
            ),
            (
                "position_embd.weight",
                "embeddings.position_embeddings.weight",
            ),
            ("token_embd_norm.bias", "embeddings.LayerNorm.bias"),
            (
                "blk.4.attn_q.weight",
                "encoder.layer.4.attention.self.query.weight",
            ),
            (
                "blk.4.attn_output_norm.weight",
                "encoder.layer.4.attention.output.LayerNorm.weight",
            ),
            (
                "blk.4.ffn_up.bias",
                "encoder.layer.4.intermediate.dense.bias",
            ),
            (
                "blk.4.ffn_down.weight",
                "encoder.layer.4.output.dense.weight",
            ),
            (
                "blk.4.layer_output_norm.weight",
                "encoder.layer.4.output.LayerNorm.weight",
            ),
        ];
        for (stored, hf) in bert {
            assert_eq!(hf_name("bert", stored), hf);
        }
        assert_eq!(
            hf_name("phi3", "blk.0.ffn_up.weight"),
            "model.layers.0.mlp.gate_up_proj.weight"
        );
        assert_eq!(
            hf_name("phi3", "blk.0.attn_qkv.weight"),
            "model.layers.0.self_attn.qkv_proj.weight"
        );
        assert_eq!(
            hf_name("phi2", "output_norm.bias"),
            "model.final_layernorm.bias"
        );
    }

    #[test]
    fn qk_roles_and_archs() {
        assert_eq!(qk_role("blk.7.attn_q.weight"), Some((7, QkRole::Q)));
        assert_eq!(qk_role("blk.7.attn_k.weight"), Some((7, QkRole::K)));
        assert_eq!(qk_role("blk.7.attn_k.bias"), None);
        assert_eq!(qk_role("blk.7.attn_v.weight"), None);
        assert!(permutes_qk("llama"));
        assert!(!permutes_qk("qwen2"));
        assert!(!permutes_qk("gemma3"));
        assert!(!permutes_qk("phi3"));
        assert!(!permutes_qk("llama4"));
    }
}
