//! Architecture hyperparameters and non-learned buffers: circumstantial findings only. Shared
//! architecture is not evidence of shared weights (A.X K1 and DeepSeek-V3), and non-learned
//! buffers (rotary inv_freq, fixed mel bases) are identical in independent models.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::report::Verdict;
use crate::slots::ModelSlots;

/// (dokja name, config.json keys, GGUF metadata suffix)
const FIELDS: [(&str, &[&str], &str); 8] = [
    (
        "hidden_size",
        &["hidden_size", "d_model", "n_embd"],
        "embedding_length",
    ),
    (
        "layers",
        &["num_hidden_layers", "n_layer", "num_layers"],
        "block_count",
    ),
    (
        "intermediate_size",
        &["intermediate_size", "ffn_dim", "n_inner"],
        "feed_forward_length",
    ),
    (
        "attention_heads",
        &["num_attention_heads", "n_head"],
        "attention.head_count",
    ),
    (
        "kv_heads",
        &["num_key_value_heads"],
        "attention.head_count_kv",
    ),
    (
        "experts",
        &["num_experts", "n_routed_experts", "num_local_experts"],
        "expert_count",
    ),
    (
        "context_length",
        &["max_position_embeddings", "n_positions"],
        "context_length",
    ),
    ("rope_theta", &["rope_theta"], "rope.freq_base"),
];

pub fn hyperparameters(s: &ModelSlots<'_>) -> BTreeMap<&'static str, Value> {
    let mut out = BTreeMap::new();
    let m = s.model;
    let config = m
        .sidecars
        .config
        .as_ref()
        .map(|c| c.get("text_config").filter(|t| t.is_object()).unwrap_or(c));
    let arch = m
        .metadata
        .get("general.architecture")
        .and_then(Value::as_str);
    for (name, keys, suffix) in FIELDS {
        let from_config = config.and_then(|c| keys.iter().find_map(|k| c.get(*k)).cloned());
        let from_gguf = arch.and_then(|a| m.metadata.get(&format!("{a}.{suffix}")).cloned());
        if let Some(v) = from_config.or(from_gguf) {
            out.insert(name, v);
        }
    }
    out
}

pub struct ConfigFinding {
    pub verdict: Verdict,
    pub reason: String,
}

pub fn compare(a: &ModelSlots<'_>, b: &ModelSlots<'_>) -> crate::Result<ConfigFinding> {
    let (ha, hb) = (hyperparameters(a), hyperparameters(b));
    let shared: Vec<&&str> = ha.keys().filter(|k| hb.contains_key(*k)).collect();
    let equal: Vec<String> = shared
        .iter()
        .filter(|k| numeric_eq(&ha[**k], &hb[**k]))
        .map(|k| k.to_string())
        .collect();
    let differ: Vec<String> = shared
        .iter()
        .filter(|k| !numeric_eq(&ha[**k], &hb[**k]))
        .map(|k| format!("{k} {} vs {}", ha[**k], hb[**k]))
        .collect();
    let buffers = shared_buffers(a, b)?;
    let verdict = if !shared.is_empty() && differ.is_empty() {
        Verdict::Identical
    } else {
        Verdict::Independent
    };
    let mut reason = match (equal.is_empty(), differ.is_empty()) {
        (true, true) => "no comparable hyperparameters".to_string(),
        (false, true) => format!("same hyperparameters ({})", equal.join(", ")),
        (true, false) => format!("different hyperparameters ({})", differ.join("; ")),
        (false, false) => format!("same {}; different {}", equal.join(", "), differ.join("; ")),
    };
    if !buffers.is_empty() {
        reason.push_str(&format!(
            "; {} non-learned buffer(s) identical and excluded from evidence ({})",
            buffers.len(),
            buffers.join(", ")
        ));
    }
    reason.push_str("; shared architecture is not evidence of shared weights");
    Ok(ConfigFinding { verdict, reason })
}

fn numeric_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Non-learned tensors with the same name and values in both models.
fn shared_buffers(a: &ModelSlots<'_>, b: &ModelSlots<'_>) -> crate::Result<Vec<String>> {
    let mut out = Vec::new();
    for (ta, ca) in a.model.tensors.iter().zip(&a.classes) {
        if ca.learned || ta.n_elements() > 1 << 20 {
            continue;
        }
        let Some(tb) = b
            .model
            .tensors
            .iter()
            .find(|t| t.name == ta.name && t.shape == ta.shape)
        else {
            continue;
        };
        let whole = |s: &ModelSlots<'_>, t: &dokja_formats::TensorInfo| crate::identity::Piece {
            tensor: s
                .model
                .tensors
                .iter()
                .position(|x| std::ptr::eq(x, t))
                .expect("tensor of this model"),
            rows: 0..t.n_rows(),
            shape: t.shape.clone(),
            expert: false,
        };
        // A fingerprint keeps digests of small buffers only; anything else is skipped.
        let (Ok(da), Ok(db)) = (
            a.subject.piece_digests(&whole(a, ta)),
            b.subject.piece_digests(&whole(b, tb)),
        ) else {
            continue;
        };
        if da.exact == db.exact {
            out.push(ta.name.clone());
        }
    }
    Ok(out)
}
