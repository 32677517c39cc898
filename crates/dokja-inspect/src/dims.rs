//! The dimensions that identify a model's shape, from config.json, GGUF metadata, or
//! failing both, from the tensors themselves.

use dokja_formats::Model;
use dokja_schema::{Component, Role, TensorClass};
use serde::Serialize;
use serde_json::Value;

use crate::Architecture;

#[derive(Debug, Default, Serialize)]
pub struct Dimensions {
    pub hidden_size: Option<u64>,
    pub layers: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub attention_heads: Option<u64>,
    pub kv_heads: Option<u64>,
    pub vocab_size: Option<u64>,
    pub experts: Option<u64>,
    pub experts_per_token: Option<u64>,
    pub context_length: Option<u64>,
}

pub(crate) fn dimensions(
    model: &Model,
    arch: &Architecture,
    classes: &[TensorClass],
) -> Dimensions {
    let mut d = if let Some(cfg) = model.sidecars.config.as_ref() {
        // Multimodal configs keep the language model's numbers under text_config.
        let text = cfg
            .get("text_config")
            .filter(|v| v.is_object())
            .unwrap_or(cfg);
        let get = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                text.get(*k)
                    .and_then(Value::as_u64)
                    .or_else(|| cfg.get(*k).and_then(Value::as_u64))
            })
        };
        Dimensions {
            hidden_size: get(&["hidden_size", "d_model", "n_embd", "dim"]),
            layers: get(&["num_hidden_layers", "n_layer", "num_layers", "n_layers"]),
            intermediate_size: get(&["intermediate_size", "ffn_dim", "n_inner"]),
            attention_heads: get(&["num_attention_heads", "n_head", "num_heads"]),
            kv_heads: get(&[
                "num_key_value_heads",
                "num_kv_heads",
                "multi_query_group_num",
            ]),
            vocab_size: get(&["vocab_size", "padded_vocab_size"]),
            experts: get(&["num_experts", "n_routed_experts", "num_local_experts"]),
            experts_per_token: get(&["num_experts_per_tok", "moe_top_k", "num_experts_per_token"]),
            context_length: get(&["max_position_embeddings", "n_positions", "seq_length"]),
        }
    } else if let Some(arch_key) = arch
        .declared
        .as_deref()
        .filter(|_| model.metadata.contains_key("general.architecture"))
    {
        let get = |suffix: &str| {
            model
                .metadata
                .get(&format!("{arch_key}.{suffix}"))
                .and_then(Value::as_u64)
        };
        Dimensions {
            hidden_size: get("embedding_length"),
            layers: get("block_count"),
            intermediate_size: get("feed_forward_length"),
            attention_heads: get("attention.head_count"),
            kv_heads: get("attention.head_count_kv"),
            vocab_size: get("vocab_size"),
            experts: get("expert_count"),
            experts_per_token: get("expert_used_count"),
            context_length: get("context_length"),
        }
    } else {
        Dimensions::default()
    };
    // Fill gaps from the tensors of the language model.
    for (t, c) in model.tensors.iter().zip(classes) {
        if c.component != Component::LanguageModel {
            continue;
        }
        if c.role == Role::TokenEmbedding && t.shape.len() == 2 {
            d.vocab_size.get_or_insert(t.shape[0]);
            d.hidden_size.get_or_insert(t.shape[1]);
        }
    }
    if d.layers.is_none() {
        let layers = classes
            .iter()
            .filter(|c| c.component == Component::LanguageModel)
            .filter_map(|c| c.layer)
            .max();
        d.layers = layers.map(|l| l as u64 + 1);
    }
    if d.vocab_size.is_none() {
        d.vocab_size = model
            .sidecars
            .tokenizer
            .as_ref()
            .map(|t| t.vocab_size() as u64);
    }
    d
}
