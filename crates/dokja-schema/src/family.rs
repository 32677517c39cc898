//! Model families: from config.json / GGUF metadata, or guessed from tensor names.

use serde::{Deserialize, Serialize};

use crate::classify::classify;
use crate::types::{Component, Role};

/// A model family (architecture lineage). Names follow Hugging Face `model_type`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Llama,
    Mistral,
    Mixtral,
    Qwen2,
    Qwen2Moe,
    Qwen3,
    Qwen3Moe,
    #[serde(rename = "qwen2_5_vl")]
    Qwen2_5Vl,
    Gemma,
    Gemma2,
    Gemma3,
    /// DeepSeek-V3 and V2 (MLA attention, shared + routed experts).
    DeepseekV3,
    Glm4Moe,
    Exaone,
    Exaone4,
    Phi3,
    Gpt2,
    Bert,
    Vit,
    Siglip,
    Clip,
    Whisper,
    /// Anything else, by its declared name (`model_type`, architecture or GGUF arch).
    Other(String),
}

impl Family {
    /// Every family except `Other`.
    pub const KNOWN: &'static [Family] = &[
        Family::Llama,
        Family::Mistral,
        Family::Mixtral,
        Family::Qwen2,
        Family::Qwen2Moe,
        Family::Qwen3,
        Family::Qwen3Moe,
        Family::Qwen2_5Vl,
        Family::Gemma,
        Family::Gemma2,
        Family::Gemma3,
        Family::DeepseekV3,
        Family::Glm4Moe,
        Family::Exaone,
        Family::Exaone4,
        Family::Phi3,
        Family::Gpt2,
        Family::Bert,
        Family::Vit,
        Family::Siglip,
        Family::Clip,
        Family::Whisper,
    ];

    /// The snake_case identifier (Hugging Face `model_type` style); `Other` gives its name.
    pub fn as_str(&self) -> &str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Mixtral => "mixtral",
            Family::Qwen2 => "qwen2",
            Family::Qwen2Moe => "qwen2_moe",
            Family::Qwen3 => "qwen3",
            Family::Qwen3Moe => "qwen3_moe",
            Family::Qwen2_5Vl => "qwen2_5_vl",
            Family::Gemma => "gemma",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
            Family::DeepseekV3 => "deepseek_v3",
            Family::Glm4Moe => "glm4_moe",
            Family::Exaone => "exaone",
            Family::Exaone4 => "exaone4",
            Family::Phi3 => "phi3",
            Family::Gpt2 => "gpt2",
            Family::Bert => "bert",
            Family::Vit => "vit",
            Family::Siglip => "siglip",
            Family::Clip => "clip",
            Family::Whisper => "whisper",
            Family::Other(s) => s,
        }
    }

    /// A human-readable name: "Llama", "Qwen2.5-VL", "DeepSeek-V3", "Gemma 3".
    pub fn display_name(&self) -> &str {
        match self {
            Family::Llama => "Llama",
            Family::Mistral => "Mistral",
            Family::Mixtral => "Mixtral",
            Family::Qwen2 => "Qwen2",
            Family::Qwen2Moe => "Qwen2-MoE",
            Family::Qwen3 => "Qwen3",
            Family::Qwen3Moe => "Qwen3-MoE",
            Family::Qwen2_5Vl => "Qwen2.5-VL",
            Family::Gemma => "Gemma",
            Family::Gemma2 => "Gemma 2",
            Family::Gemma3 => "Gemma 3",
            Family::DeepseekV3 => "DeepSeek-V3",
            Family::Glm4Moe => "GLM-4 MoE",
            Family::Exaone => "EXAONE",
            Family::Exaone4 => "EXAONE 4",
            Family::Phi3 => "Phi-3",
            Family::Gpt2 => "GPT-2",
            Family::Bert => "BERT",
            Family::Vit => "ViT",
            Family::Siglip => "SigLIP",
            Family::Clip => "CLIP",
            Family::Whisper => "Whisper",
            Family::Other(s) => s,
        }
    }

    /// Mixture-of-experts families.
    pub fn is_moe(&self) -> bool {
        matches!(
            self,
            Family::Mixtral
                | Family::Qwen2Moe
                | Family::Qwen3Moe
                | Family::DeepseekV3
                | Family::Glm4Moe
        )
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display_name())
    }
}

/// Lower-case, without `_`, `-`, `.` and spaces: `qwen2_5_vl` and `Qwen2_5_VL` both give
/// `qwen25vl`.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A normalized `model_type` or architecture stem -> family.
fn lookup(key: &str) -> Option<Family> {
    Some(match key {
        "llama" => Family::Llama,
        "mistral" => Family::Mistral,
        "mixtral" => Family::Mixtral,
        "qwen2" => Family::Qwen2,
        "qwen2moe" => Family::Qwen2Moe,
        "qwen3" => Family::Qwen3,
        "qwen3moe" => Family::Qwen3Moe,
        "qwen25vl" | "qwen25vltext" => Family::Qwen2_5Vl,
        "gemma" => Family::Gemma,
        "gemma2" => Family::Gemma2,
        "gemma3" | "gemma3text" => Family::Gemma3,
        "deepseekv3" | "deepseekv2" => Family::DeepseekV3,
        "glm4moe" => Family::Glm4Moe,
        "exaone" => Family::Exaone,
        "exaone4" => Family::Exaone4,
        "phi3" => Family::Phi3,
        "gpt2" => Family::Gpt2,
        "bert" => Family::Bert,
        "vit" => Family::Vit,
        "siglip" | "siglipvisionmodel" | "siglip2" | "siglip2visionmodel" => Family::Siglip,
        "clip" | "clipvisionmodel" | "cliptextmodel" => Family::Clip,
        "whisper" => Family::Whisper,
        _ => return None,
    })
}

/// `LlamaForCausalLM` -> `llama`, `GPT2LMHeadModel` -> `gpt2`, `SiglipVisionModel` -> `siglip`.
fn architecture_stem(arch: &str) -> String {
    let stem = match arch.find("For") {
        Some(i) if i > 0 => &arch[..i],
        _ => {
            let mut s = arch;
            for suffix in ["LMHeadModel", "VisionModel", "TextModel", "Model"] {
                if let Some(t) = s.strip_suffix(suffix).filter(|t| !t.is_empty()) {
                    s = t;
                    break;
                }
            }
            s
        }
    };
    normalize(stem)
}

/// llama.cpp `general.architecture` -> family. llama.cpp calls DeepSeek-V2/V3 `deepseek2`,
/// Qwen2/2.5-VL `qwen2vl`, and Mistral/Mixtral `llama`.
fn gguf_lookup(arch: &str) -> Option<Family> {
    Some(match arch {
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        "qwen2moe" => Family::Qwen2Moe,
        "qwen3" => Family::Qwen3,
        "qwen3moe" => Family::Qwen3Moe,
        "qwen2vl" => Family::Qwen2_5Vl,
        "gemma" => Family::Gemma,
        "gemma2" => Family::Gemma2,
        "gemma3" => Family::Gemma3,
        "deepseek2" | "deepseek3" => Family::DeepseekV3,
        "glm4moe" => Family::Glm4Moe,
        "exaone" => Family::Exaone,
        "exaone4" => Family::Exaone4,
        "phi3" => Family::Phi3,
        "gpt2" => Family::Gpt2,
        "bert" => Family::Bert,
        _ => return None,
    })
}

/// The family from declared metadata. Precedence: config.json `model_type`, then
/// `architectures`, then GGUF `general.architecture`. Unknown declarations give
/// `Other(<first declared name>)`; nothing declared gives `Other("unknown")`.
pub fn family_from_config(
    model_type: Option<&str>,
    architectures: &[&str],
    gguf_arch: Option<&str>,
) -> Family {
    let model_type = model_type.map(str::trim).filter(|s| !s.is_empty());
    let gguf_arch = gguf_arch.map(str::trim).filter(|s| !s.is_empty());
    if let Some(f) = model_type.and_then(|t| lookup(&normalize(t))) {
        return f;
    }
    for a in architectures {
        if let Some(f) = lookup(&architecture_stem(a)) {
            return f;
        }
    }
    if let Some(f) = gguf_arch.and_then(|a| gguf_lookup(&a.to_ascii_lowercase())) {
        return f;
    }
    let declared = model_type
        .or_else(|| {
            architectures
                .iter()
                .map(|a| a.trim())
                .find(|a| !a.is_empty())
        })
        .or(gguf_arch)
        .unwrap_or("unknown");
    Family::Other(declared.to_string())
}

/// A fallback guess from tensor names when nothing is declared. Name layouts are shared
/// between families (Mistral and Llama are indistinguishable; so are Gemma and a Llama with
/// tied embeddings), so this answers "which family's layout", not "which model".
///
/// Returns `None` when no rule applies.
pub fn family_from_tensor_names(names: &[&str]) -> Option<Family> {
    if names.is_empty() {
        return None;
    }
    let any = |pat: &str| names.iter().any(|n| n.contains(pat));
    let experts = any(".experts.") || any("block_sparse_moe");

    // Multimodal layouts first: their language models look like text families.
    if any("visual.merger.") || (any("visual.blocks.") && any(".attn.qkv.")) {
        return Some(Family::Qwen2_5Vl);
    }
    if any("mm_input_projection_weight")
        || (any("pre_feedforward_layernorm") && any("vision_tower."))
    {
        return Some(Family::Gemma3);
    }
    let whisper_encoder = any("encoder.conv1") || any("encoder.conv2");
    if whisper_encoder && (any("decoder.") || any("encoder_attn")) {
        return Some(Family::Whisper);
    }

    // MoE and attention variants.
    if any("kv_a_proj_with_mqa") || any("q_a_proj") {
        return Some(Family::DeepseekV3);
    }
    if experts && any("e_score_correction_bias") {
        return Some(Family::Glm4Moe);
    }
    if any("block_sparse_moe") && (any(".w1.") || any(".w1")) {
        return Some(Family::Mixtral);
    }
    if any("shared_expert_gate") || (experts && any("mlp.shared_expert.")) {
        return Some(Family::Qwen2Moe);
    }
    if experts && any("mlp.gate.") {
        return Some(Family::Qwen3Moe);
    }

    // Renamed dense layouts.
    if any("c_fc_0") {
        return Some(Family::Exaone);
    }
    if any(".attn.c_attn.") && any("wpe") {
        return Some(Family::Gpt2);
    }
    if any("W_pack") {
        return Some(Family::Other("baichuan".to_string()));
    }
    if any("word_embeddings_layernorm") {
        return Some(Family::Other("bloom".to_string()));
    }
    if any("self_attention.query_key_value") && any("transformer.encoder.layers") {
        return Some(Family::Other("chatglm".to_string()));
    }
    if any("self_attention.query_key_value") {
        return Some(Family::Other("falcon".to_string()));
    }
    if any("gpt_neox.") {
        return Some(Family::Other("gpt_neox".to_string()));
    }
    if any("qkv_proj") && any("gate_up_proj") {
        return Some(Family::Phi3);
    }
    if any("attention.self.query") || (any("encoder.layer.") && any("word_embeddings")) {
        return Some(Family::Bert);
    }
    if any("pre_feedforward_layernorm") {
        return Some(if any("q_norm") {
            Family::Gemma3
        } else {
            Family::Gemma2
        });
    }
    if any("q_norm") && any("post_feedforward_layernorm") {
        return Some(Family::Exaone4);
    }
    if any("self_attn.q_norm") {
        return Some(Family::Qwen3);
    }
    if any("self_attn.q_proj.bias") && any("mlp.gate_proj") {
        return Some(Family::Qwen2);
    }

    // Vision and audio encoders on their own.
    if any("attention.attention.query") || any("patch_embeddings.projection") {
        return Some(Family::Vit);
    }
    if any("embeddings.patch_embedding") {
        return Some(if any("class_embedding") || any("pre_layrnorm") {
            Family::Clip
        } else {
            Family::Siglip
        });
    }
    if whisper_encoder {
        return Some(Family::Whisper);
    }

    // A plain Llama layout: q/k/v/o and gate/up/down projections in the language model.
    let lm = |role: Role| {
        names.iter().any(|n| {
            let c = classify(n);
            c.component == Component::LanguageModel && c.role == role
        })
    };
    if any("self_attn.q_proj") && lm(Role::MlpGate) && lm(Role::MlpUp) && lm(Role::MlpDown) {
        return Some(Family::Llama);
    }
    None
}

/// Whether the output head shares the token embedding: the config says so, or the language
/// model has a token embedding and no LM head (checkpoints drop the tied copy).
/// An explicit `Some(false)` is overridden only by the missing head: a model cannot project
/// to the vocabulary without one.
pub fn tied_embeddings(names: &[&str], tie_word_embeddings: Option<bool>) -> bool {
    if tie_word_embeddings == Some(true) {
        return true;
    }
    let mut embedding = false;
    let mut head = false;
    for n in names {
        let c = classify(n);
        // Trunk-level tensors only: DeepSeek's multi-token-prediction layer has its own
        // `embed_tokens` and `shared_head.head` inside `layers.N`.
        if c.component != Component::LanguageModel || c.layer.is_some() {
            continue;
        }
        match c.role {
            Role::TokenEmbedding => embedding = true,
            Role::LmHead => head = true,
            _ => {}
        }
    }
    embedding && !head
}
