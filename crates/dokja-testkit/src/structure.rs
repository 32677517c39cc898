//! Finds the functional blocks (MLPs, attention) of a model by tensor names, for the
//! derivations that must move rows and columns consistently across tensors.

use crate::model::{SynthModel, SynthTensor};

/// An MLP: rows of `gate`/`up` (and their biases) and columns of `down` are its units.
#[derive(Clone, Debug)]
pub(crate) struct Mlp {
    pub gate: Option<String>,
    pub up: String,
    pub down: String,
    /// Biases indexed by unit (`up`'s and `gate`'s).
    pub unit_biases: Vec<String>,
    pub vision: bool,
}

/// Attention whose heads are blocks of rows of `q` and `kv` tensors and blocks of columns
/// of `o`. Query head h belongs to kv group h / (heads / kv_heads).
#[derive(Clone, Debug)]
pub(crate) struct Attn {
    pub key: String,
    /// Tensors whose rows are `heads` blocks.
    pub q: Vec<String>,
    /// Tensors whose rows are `kv_heads` blocks.
    pub kv: Vec<String>,
    /// Tensor whose columns are `heads` blocks.
    pub o: String,
    pub heads: usize,
    pub kv_heads: usize,
}

pub(crate) fn is_vision(name: &str) -> bool {
    name.starts_with("visual.") || name.contains("vision_tower.") || name.contains("vision_model.")
}

fn existing(m: &SynthModel, names: &[String]) -> Vec<String> {
    names.iter().filter(|n| m.contains(n)).cloned().collect()
}

/// (key module, gate, up, down) of the MLP naming schemes: HF SwiGLU, Mixtral experts,
/// BERT, ViT.
const MLP_PATTERNS: [(&str, Option<&str>, &str, &str); 4] = [
    ("gate_proj", Some("gate_proj"), "up_proj", "down_proj"),
    ("w1", Some("w1"), "w3", "w2"),
    (
        "intermediate.dense",
        None,
        "intermediate.dense",
        "output.dense",
    ),
    ("fc1", None, "fc1", "fc2"),
];

pub(crate) fn mlps(m: &SynthModel) -> Vec<Mlp> {
    let mut out = Vec::new();
    for t in &m.tensors {
        let n = t.name.as_str();
        let found = MLP_PATTERNS.iter().find_map(|&(key, gate, up, down)| {
            n.strip_suffix(&format!("{key}.weight"))
                .map(|p| (p, gate, up, down))
        });
        let Some((p, gate, up, down)) = found else {
            continue;
        };
        let up_w = format!("{p}{up}.weight");
        let down_w = format!("{p}{down}.weight");
        if !m.contains(&up_w) || !m.contains(&down_w) {
            continue;
        }
        let mut biases = vec![format!("{p}{up}.bias")];
        if let Some(g) = gate {
            biases.push(format!("{p}{g}.bias"));
        }
        out.push(Mlp {
            gate: gate.map(|g| format!("{p}{g}.weight")),
            up: up_w,
            down: down_w,
            unit_biases: existing(m, &biases),
            vision: is_vision(n),
        });
    }
    out
}

pub(crate) fn attentions(m: &SynthModel) -> Vec<Attn> {
    let cfg_heads = m.cfg_usize("num_attention_heads");
    let cfg_kv = m.cfg_usize("num_key_value_heads").or(cfg_heads);
    let vit_heads = m
        .config
        .get("vision_config")
        .and_then(|v| v["num_attention_heads"].as_u64())
        .map(|v| v as usize);
    let mut out = Vec::new();
    for t in &m.tensors {
        let n = t.name.as_str();
        let wb =
            |p: &str, x: &str| existing(m, &[format!("{p}{x}.weight"), format!("{p}{x}.bias")]);
        if let Some(p) = n.strip_suffix("kv_b_proj.weight") {
            // MLA: every head has its own q and kv_b rows; kv_a is shared by all heads.
            let h = cfg_heads.expect("config lacks num_attention_heads");
            let mut q = wb(p, "q_b_proj");
            q.extend(wb(p, "q_proj"));
            out.push(Attn {
                key: p.into(),
                q,
                kv: wb(p, "kv_b_proj"),
                o: format!("{p}o_proj.weight"),
                heads: h,
                kv_heads: h,
            });
        } else if let Some(p) = n.strip_suffix("q_proj.weight") {
            if m.contains(&format!("{p}kv_b_proj.weight"))
                || !m.contains(&format!("{p}k_proj.weight"))
            {
                continue;
            }
            let mut kv = wb(p, "k_proj");
            kv.extend(wb(p, "v_proj"));
            let (o, heads, kv_heads) = if m.contains(&format!("{p}out_proj.weight")) {
                let h = vit_heads.expect("vision_config lacks num_attention_heads");
                (format!("{p}out_proj.weight"), h, h)
            } else {
                let h = cfg_heads.expect("config lacks num_attention_heads");
                (format!("{p}o_proj.weight"), h, cfg_kv.unwrap_or(h))
            };
            out.push(Attn {
                key: p.into(),
                q: wb(p, "q_proj"),
                kv,
                o,
                heads,
                kv_heads,
            });
        } else if let Some(p) = n.strip_suffix("attention.self.query.weight") {
            let h = cfg_heads.expect("config lacks num_attention_heads");
            let s = format!("{p}attention.self.");
            let mut kv = wb(&s, "key");
            kv.extend(wb(&s, "value"));
            out.push(Attn {
                key: p.into(),
                q: wb(&s, "query"),
                kv,
                o: format!("{p}attention.output.dense.weight"),
                heads: h,
                kv_heads: h,
            });
        }
    }
    out
}

/// Reorders blocks of outermost rows: new block i = old block `order[i]`.
pub(crate) fn permute_row_blocks(t: &mut SynthTensor, order: &[usize]) {
    let rows = t.shape.first().copied().unwrap_or(1);
    assert!(
        rows.is_multiple_of(order.len()),
        "{}: {rows} rows in {} blocks",
        t.name,
        order.len()
    );
    let block = t.n_elements() / order.len();
    let old = t.data.clone();
    for (i, &o) in order.iter().enumerate() {
        t.data[i * block..(i + 1) * block].copy_from_slice(&old[o * block..(o + 1) * block]);
    }
}

/// Reorders blocks of columns of a 2-D tensor: new block i = old block `order[i]`.
pub(crate) fn permute_col_blocks(t: &mut SynthTensor, order: &[usize]) {
    let cols = t.row_len();
    assert!(
        cols.is_multiple_of(order.len()),
        "{}: {cols} columns in {} blocks",
        t.name,
        order.len()
    );
    let block = cols / order.len();
    for r in 0..t.n_rows() {
        let row = t.row_mut(r);
        let old = row.to_vec();
        for (i, &o) in order.iter().enumerate() {
            row[i * block..(i + 1) * block].copy_from_slice(&old[o * block..(o + 1) * block]);
        }
    }
}

/// Keeps the listed outermost rows, in the given order.
pub(crate) fn select_rows(t: &mut SynthTensor, keep: &[usize]) {
    let rest = t.n_elements() / t.shape[0].max(1);
    t.data = keep
        .iter()
        .flat_map(|&r| t.data[r * rest..(r + 1) * rest].to_vec())
        .collect();
    t.shape[0] = keep.len();
}

/// Keeps the listed columns of a 2-D tensor.
pub(crate) fn select_cols(t: &mut SynthTensor, keep: &[usize]) {
    let cols = t.row_len();
    t.data = t
        .data
        .chunks_exact(cols)
        .flat_map(|row| keep.iter().map(|&c| row[c]).collect::<Vec<_>>())
        .collect();
    let last = t.shape.len() - 1;
    t.shape[last] = keep.len();
}
