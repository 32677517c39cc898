//! Derived models: what a copier does to a parent's weights. Each function returns a new
//! model; the function-preserving ones (permutation, rotation, upcycling with zero noise)
//! leave the network's outputs unchanged up to float rounding.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::model::{SynthModel, SynthTensor};
use crate::quant::{QuantType, dequantize_reference, quantize};
use crate::rng::{SynthRng, mix_seed};
use crate::safetensors::StDtype;
use crate::structure::{
    attentions, mlps, permute_col_blocks, permute_row_blocks, select_cols, select_rows,
};

fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    ((x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()) as f32
}

/// Continued training in miniature: every tensor of rank >= 2, seen as a
/// `[rows, row_len]` matrix W, gets `strength * rms(W) * (L + D) / sqrt(2)` with L a random
/// rank-`rank` matrix and D dense noise, both of unit entry variance (so the relative
/// Frobenius change is about `strength`); with `rank == 0` only D is added. Vectors (norms,
/// biases) move by `strength / 10` of their rms.
pub fn fine_tune(model: &SynthModel, strength: f32, rank: usize, seed: u64) -> SynthModel {
    model.map_tensors(|t| {
        let mut t = t.clone();
        let mut rng = SynthRng::for_name(mix_seed(seed, 0xF1), &t.name);
        let scale = strength * rms(&t.data);
        if t.shape.len() < 2 {
            for v in &mut t.data {
                *v += 0.1 * scale * rng.normal() as f32;
            }
            return t;
        }
        let (rows, cols) = (t.n_rows(), t.row_len());
        let (a, b) = if rank > 0 {
            (
                std::f32::consts::FRAC_1_SQRT_2,
                std::f32::consts::FRAC_1_SQRT_2,
            )
        } else {
            (0.0, 1.0)
        };
        let u: Vec<f32> = rng.normal_vec(rows * rank, 0.0, 1.0);
        let v: Vec<f32> = rng.normal_vec(rank * cols, 0.0, 1.0);
        let norm = 1.0 / (rank.max(1) as f32).sqrt();
        for r in 0..rows {
            for c in 0..cols {
                let low: f32 = (0..rank)
                    .map(|k| u[r * rank + k] * v[k * cols + c])
                    .sum::<f32>()
                    * norm;
                let dense = rng.normal() as f32;
                t.data[r * cols + c] += scale * (a * low + b * dense);
            }
        }
        t
    })
}

/// A function-preserving relabelling: MLP units (rows of gate/up, columns of down) in every
/// MLP and expert, attention heads (whole heads; with GQA, kv groups and the query heads
/// within each group), and MoE experts (router rows with their experts).
pub fn permute_hidden_units(model: &SynthModel, seed: u64) -> SynthModel {
    let mut out = model.clone();
    for mlp in mlps(model) {
        let n = model.tensor(&mlp.up).shape[0];
        let order = SynthRng::for_name(mix_seed(seed, 0xA1), &mlp.up).permutation(n);
        for name in mlp.gate.iter().chain([&mlp.up]).chain(&mlp.unit_biases) {
            permute_row_blocks(out.tensor_mut(name), &order);
        }
        permute_col_blocks(out.tensor_mut(&mlp.down), &order);
    }
    for a in attentions(model) {
        let mut rng = SynthRng::for_name(mix_seed(seed, 0xA2), &a.key);
        let group = a.heads / a.kv_heads;
        let sigma = rng.permutation(a.kv_heads);
        let q_order: Vec<usize> = sigma
            .iter()
            .flat_map(|&g| {
                rng.permutation(group)
                    .into_iter()
                    .map(move |p| g * group + p)
            })
            .collect();
        for name in &a.q {
            permute_row_blocks(out.tensor_mut(name), &q_order);
        }
        for name in &a.kv {
            permute_row_blocks(out.tensor_mut(name), &sigma);
        }
        permute_col_blocks(out.tensor_mut(&a.o), &q_order);
    }
    let routers: Vec<String> = model
        .names()
        .into_iter()
        .filter(|n| n.ends_with("mlp.gate.weight") || n.ends_with("block_sparse_moe.gate.weight"))
        .map(str::to_string)
        .collect();
    for router in routers {
        let n = model.tensor(&router).shape[0];
        let order = SynthRng::for_name(mix_seed(seed, 0xA3), &router).permutation(n);
        permute_row_blocks(out.tensor_mut(&router), &order);
        let base = router.strip_suffix("gate.weight").unwrap();
        if let Some(b) = out.get_mut(&format!("{base}gate.e_score_correction_bias")) {
            permute_row_blocks(b, &order);
        }
        let prefix = format!("{base}experts.");
        let old: HashMap<String, Vec<f32>> = model
            .tensors
            .iter()
            .filter(|t| t.name.starts_with(&prefix))
            .map(|t| (t.name.clone(), out.tensor(&t.name).data.clone()))
            .collect();
        for t in out
            .tensors
            .iter_mut()
            .filter(|t| t.name.starts_with(&prefix))
        {
            let (idx, rest) = t.name[prefix.len()..].split_once('.').expect("experts.N.x");
            let i: usize = idx.parse().expect("expert index");
            t.data = old[&format!("{prefix}{}.{rest}", order[i])].clone();
        }
    }
    out
}

/// A random orthogonal matrix (Gram-Schmidt on a Gaussian matrix), row-major.
pub fn random_orthogonal(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SynthRng::new(seed);
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    while q.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        // Twice, for numerical orthogonality.
        for _ in 0..2 {
            for u in &q {
                let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(x, y)| *x -= d * y);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    q.concat()
}

/// `R * v` for a row-major n x n matrix.
fn mat_vec(r: &[f64], v: &[f64]) -> Vec<f32> {
    let n = v.len();
    (0..n)
        .map(|i| {
            r[i * n..(i + 1) * n]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum::<f64>() as f32
        })
        .collect()
}

/// Each row w becomes `R (g ∘ w)`: a reader of the residual stream, with the preceding
/// norm's weights `g` folded in.
fn rotate_reader(t: &mut SynthTensor, r: &[f64], g: &[f32]) {
    for i in 0..t.n_rows() {
        let row = t.row_mut(i);
        let v: Vec<f64> = row
            .iter()
            .zip(g)
            .map(|(w, g)| (*w as f64) * (*g as f64))
            .collect();
        row.copy_from_slice(&mat_vec(r, &v));
    }
}

/// `W` becomes `R W` (a writer into the residual stream: its output dimension rotates).
fn rotate_writer(t: &mut SynthTensor, r: &[f64]) {
    let (h, k) = (t.shape[0], t.n_elements() / t.shape[0]);
    let old = t.data.clone();
    for j in 0..k {
        let col: Vec<f64> = (0..h).map(|i| old[i * k + j] as f64).collect();
        for (i, v) in mat_vec(r, &col).into_iter().enumerate() {
            t.data[i * k + j] = v;
        }
    }
}

/// Sets a norm's weights to 1 after folding them into the matrices reading its output.
fn fold_norm(
    out: &mut SynthModel,
    norm: &str,
    readers: Vec<String>,
    r: &[f64],
    touched: &mut BTreeSet<String>,
) {
    let n = out.tensor(norm).n_elements();
    let g = std::mem::replace(&mut out.tensor_mut(norm).data, vec![1.0; n]);
    for name in readers {
        rotate_reader(out.tensor_mut(&name), r, &g);
        touched.insert(name);
    }
}

/// Rotates the residual stream of a llama-family decoder (Llama, Qwen2/3, MoE, MLA) by a
/// random orthogonal R, after folding every RMSNorm weight into the matrices that read its
/// output (SliceGPT-style; the norms become 1). Tied embeddings are untied, since the
/// input and output embeddings now differ. Function-preserving. Panics on Gemma (its
/// post-norms do not commute with a rotation).
pub fn rotate_residual(model: &SynthModel, seed: u64) -> SynthModel {
    let mt = model.text_config()["model_type"].as_str().unwrap_or("");
    assert!(
        !mt.contains("gemma"),
        "rotate_residual: Gemma's post-norms are not rotation invariant"
    );
    let p = model
        .lm_prefix()
        .expect("rotate_residual needs a decoder with embed_tokens");
    let h = model
        .cfg_usize("hidden_size")
        .expect("config lacks hidden_size");
    let n_layers = model
        .cfg_usize("num_hidden_layers")
        .expect("config lacks num_hidden_layers");
    let r = random_orthogonal(h, mix_seed(seed, 0x20));
    let mut out = model.clone();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let embed = format!("{p}embed_tokens.weight");
    let head = match model.lm_head_name() {
        Some(n) => n,
        None => {
            let name = if p.starts_with("language_model.") {
                "language_model.lm_head.weight"
            } else {
                "lm_head.weight"
            };
            out.tensors.push(SynthTensor {
                name: name.into(),
                ..model.tensor(&embed).clone()
            });
            out.text_config_mut()["tie_word_embeddings"] = json!(false);
            if out.config.get("tie_word_embeddings").is_some() {
                out.config["tie_word_embeddings"] = json!(false);
            }
            name.to_string()
        }
    };
    rotate_reader(out.tensor_mut(&embed), &r, &vec![1.0; h]);
    touched.insert(embed);
    let names: Vec<String> = model.names().into_iter().map(str::to_string).collect();
    for i in 0..n_layers {
        let l = format!("{p}layers.{i}.");
        let under = |s: &str| {
            names
                .iter()
                .filter(|n| n.starts_with(&format!("{l}{s}")))
                .cloned()
                .collect::<Vec<_>>()
        };
        let attn_readers = under("self_attn.")
            .into_iter()
            .filter(|n| {
                [
                    "q_proj.weight",
                    "k_proj.weight",
                    "v_proj.weight",
                    "q_a_proj.weight",
                    "kv_a_proj_with_mqa.weight",
                ]
                .iter()
                .any(|s| n.ends_with(&format!(".{s}")))
            })
            .collect();
        fold_norm(
            &mut out,
            &format!("{l}input_layernorm.weight"),
            attn_readers,
            &r,
            &mut touched,
        );
        let ffn: Vec<String> = under("mlp.")
            .into_iter()
            .chain(under("block_sparse_moe."))
            .collect();
        let ffn_readers = ffn
            .iter()
            .filter(|n| {
                n.ends_with("gate_proj.weight")
                    || n.ends_with("up_proj.weight")
                    || n.ends_with(".w1.weight")
                    || n.ends_with(".w3.weight")
                    || n.ends_with("mlp.gate.weight")
                    || n.ends_with("block_sparse_moe.gate.weight")
                    || n.ends_with("shared_expert_gate.weight")
            })
            .cloned()
            .collect();
        fold_norm(
            &mut out,
            &format!("{l}post_attention_layernorm.weight"),
            ffn_readers,
            &r,
            &mut touched,
        );
        let writers = ffn
            .iter()
            .filter(|n| n.ends_with("down_proj.weight") || n.ends_with(".w2.weight"))
            .cloned()
            .chain([
                format!("{l}self_attn.o_proj.weight"),
                format!("{l}self_attn.o_proj.bias"),
            ])
            .filter(|n| out.contains(n));
        for w in writers.collect::<Vec<_>>() {
            rotate_writer(out.tensor_mut(&w), &r);
            touched.insert(w);
        }
    }
    fold_norm(
        &mut out,
        &format!("{p}norm.weight"),
        vec![head],
        &r,
        &mut touched,
    );
    // A projector writes image features into the residual stream.
    for t in out
        .tensors
        .iter_mut()
        .filter(|t| t.name.contains("multi_modal_projector.linear_2."))
    {
        rotate_writer(t, &r);
        touched.insert(t.name.clone());
    }
    // Refuse to return a silently broken model.
    for t in &model.tensors {
        let internal = ["q_b_proj.weight", "kv_b_proj.weight"]
            .iter()
            .any(|s| t.name.ends_with(s));
        let lm = t.name.starts_with(&p) || t.name.ends_with("lm_head.weight");
        if lm && t.shape.len() >= 2 && !internal && !touched.contains(&t.name) {
            panic!(
                "rotate_residual: does not know how {} reads or writes the residual stream",
                t.name
            );
        }
    }
    out.name = format!("{}-rotated", model.name);
    out
}

/// Parses `{prefix}{N}.{rest}` layer names.
fn layer_index<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let (i, rest) = name.strip_prefix(prefix)?.split_once('.')?;
    Some((i.parse().ok()?, rest))
}

fn layer_prefix(model: &SynthModel) -> String {
    match model.lm_prefix() {
        Some(p) => format!("{p}layers."),
        None if model
            .tensors
            .iter()
            .any(|t| t.name.starts_with("encoder.layer.")) =>
        {
            "encoder.layer.".into()
        }
        None => panic!("no decoder or encoder layers in {}", model.name),
    }
}

/// Keeps the listed layers (in the given order) and renumbers them from 0.
pub fn prune_depth(model: &SynthModel, keep_layers: &[usize]) -> SynthModel {
    let prefix = layer_prefix(model);
    let new_index: HashMap<usize, usize> = keep_layers
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new))
        .collect();
    let mut out = model.clone();
    out.tensors.clear();
    for &old in keep_layers {
        let mut found = false;
        for t in &model.tensors {
            if let Some((i, rest)) = layer_index(&t.name, &prefix)
                && i == old
            {
                out.tensors.push(SynthTensor {
                    name: format!("{prefix}{}.{rest}", new_index[&old]),
                    ..t.clone()
                });
                found = true;
            }
        }
        assert!(found, "prune_depth: layer {old} does not exist");
    }
    // Non-layer tensors keep their places: those before the layers, then those after.
    let first_layer = model
        .tensors
        .iter()
        .position(|t| t.name.starts_with(&prefix))
        .unwrap_or(0);
    let (before, after): (Vec<_>, Vec<_>) = model
        .tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| !t.name.starts_with(&prefix))
        .partition(|(i, _)| *i < first_layer);
    let mut tensors: Vec<SynthTensor> = before.into_iter().map(|(_, t)| t.clone()).collect();
    tensors.append(&mut out.tensors);
    tensors.extend(after.into_iter().map(|(_, t)| t.clone()));
    out.tensors = tensors;
    let cfg = out.text_config_mut();
    if let Some(k) = cfg.get("first_k_dense_replace").and_then(Value::as_u64) {
        cfg["first_k_dense_replace"] =
            json!(keep_layers.iter().filter(|&&l| (l as u64) < k).count());
    }
    cfg["num_hidden_layers"] = json!(keep_layers.len());
    out.name = format!("{}-depth{}", model.name, keep_layers.len());
    out
}

/// Keeps the `keep_mlp_units` most important units (largest squared norm over their gate and
/// up rows and down column, Minitron-style) of every language-model MLP and expert that is
/// wider, in their original order. Config sizes are lowered to match.
pub fn prune_width(model: &SynthModel, keep_mlp_units: usize) -> SynthModel {
    let mut out = model.clone();
    for mlp in mlps(model).into_iter().filter(|m| !m.vision) {
        let up = model.tensor(&mlp.up);
        let n = up.shape[0];
        if n <= keep_mlp_units {
            continue;
        }
        let down = model.tensor(&mlp.down);
        let mut score: Vec<f64> = (0..n)
            .map(|u| up.row(u).iter().map(|v| (*v as f64).powi(2)).sum())
            .collect();
        if let Some(g) = &mlp.gate {
            let g = model.tensor(g);
            score
                .iter_mut()
                .enumerate()
                .for_each(|(u, s)| *s += g.row(u).iter().map(|v| (*v as f64).powi(2)).sum::<f64>());
        }
        for r in 0..down.n_rows() {
            score
                .iter_mut()
                .zip(down.row(r))
                .for_each(|(s, v)| *s += (*v as f64).powi(2));
        }
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|a, b| score[*b].total_cmp(&score[*a]));
        let mut keep = idx[..keep_mlp_units].to_vec();
        keep.sort_unstable();
        for name in mlp.gate.iter().chain([&mlp.up]).chain(&mlp.unit_biases) {
            select_rows(out.tensor_mut(name), &keep);
        }
        select_cols(out.tensor_mut(&mlp.down), &keep);
    }
    let cfg = out.text_config_mut();
    for k in [
        "intermediate_size",
        "moe_intermediate_size",
        "shared_expert_intermediate_size",
    ] {
        if let Some(v) = cfg.get(k).and_then(Value::as_u64) {
            cfg[k] = json!(v.min(keep_mlp_units as u64));
        }
    }
    out.name = format!("{}-width{keep_mlp_units}", model.name);
    out
}

/// Appends tokens: new embedding (and untied head) rows are the mean of the old rows plus
/// noise of a tenth of the per-dimension spread; the tokenizer gets the strings at the end.
pub fn extend_vocab(model: &SynthModel, extra_tokens: &[&str], seed: u64) -> SynthModel {
    let mut out = model.clone();
    let embed = match model.lm_prefix() {
        Some(p) => format!("{p}embed_tokens.weight"),
        None => "embeddings.word_embeddings.weight".into(),
    };
    let mut targets = vec![embed];
    targets.extend(model.lm_head_name());
    let n_new = extra_tokens.len();
    for name in targets {
        let t = out.tensor_mut(&name);
        let (rows, d) = (t.shape[0], t.row_len());
        let mean: Vec<f64> = (0..d)
            .map(|c| (0..rows).map(|r| t.data[r * d + c] as f64).sum::<f64>() / rows as f64)
            .collect();
        let sd: Vec<f64> = (0..d)
            .map(|c| {
                ((0..rows)
                    .map(|r| (t.data[r * d + c] as f64 - mean[c]).powi(2))
                    .sum::<f64>()
                    / rows as f64)
                    .sqrt()
            })
            .collect();
        let mut rng = SynthRng::for_name(mix_seed(seed, 0xE0), &name);
        for _ in 0..n_new {
            t.data
                .extend((0..d).map(|c| (mean[c] + 0.1 * sd[c] * rng.normal()) as f32));
        }
        t.shape[0] = rows + n_new;
    }
    if let Some(tok) = &mut out.tokenizer {
        tok.vocab.extend(extra_tokens.iter().map(|s| s.to_string()));
    }
    let cfg = out.text_config_mut();
    let v = cfg["vocab_size"].as_u64().unwrap_or(0);
    cfg["vocab_size"] = json!(v + n_new as u64);
    out.name = format!("{}-vocab+{n_new}", model.name);
    out
}

/// Sparse upcycling: every dense MLP becomes `n_experts` copies plus `noise * rms(W)`
/// Gaussian noise, with a fresh router (std 0.02). Llama/Mistral become Mixtral-style,
/// Qwen2/Qwen3 become Qwen2-MoE/Qwen3-MoE-style (config and GGUF arch follow).
pub fn upcycle_moe(dense: &SynthModel, n_experts: usize, noise: f32, seed: u64) -> SynthModel {
    let mt = dense.text_config()["model_type"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mixtral = matches!(mt.as_str(), "llama" | "mistral");
    assert!(
        mixtral || mt == "qwen2" || mt == "qwen3",
        "upcycle_moe: unsupported model_type {mt}"
    );
    let p = dense.lm_prefix().expect("decoder");
    let layers = format!("{p}layers.");
    let h = dense.cfg_usize("hidden_size").expect("hidden_size");
    let mut tensors = Vec::new();
    for t in &dense.tensors {
        let Some((i, rest)) = layer_index(&t.name, &layers) else {
            tensors.push(t.clone());
            continue;
        };
        let l = format!("{layers}{i}.");
        let proj = match rest {
            "mlp.gate_proj.weight" => "gate",
            "mlp.up_proj.weight" => "up",
            "mlp.down_proj.weight" => "down",
            _ => {
                tensors.push(t.clone());
                continue;
            }
        };
        if proj == "gate" {
            let router = if mixtral {
                format!("{l}block_sparse_moe.gate.weight")
            } else {
                format!("{l}mlp.gate.weight")
            };
            let data = SynthRng::for_name(mix_seed(seed, 0xB0), &router).normal_vec(
                n_experts * h,
                0.0,
                0.02,
            );
            tensors.push(SynthTensor::new(router, vec![n_experts, h], data));
        }
        let scale = noise * rms(&t.data);
        for e in 0..n_experts {
            let name = if mixtral {
                let w = match proj {
                    "gate" => "w1",
                    "up" => "w3",
                    _ => "w2",
                };
                format!("{l}block_sparse_moe.experts.{e}.{w}.weight")
            } else {
                format!("{l}mlp.experts.{e}.{proj}_proj.weight")
            };
            let mut rng = SynthRng::for_name(mix_seed(seed, 0xB1), &name);
            let data = t
                .data
                .iter()
                .map(|v| v + scale * rng.normal() as f32)
                .collect();
            tensors.push(SynthTensor::new(name, t.shape.clone(), data));
        }
    }
    let mut out = SynthModel {
        tensors,
        ..dense.clone()
    };
    let inter = dense
        .cfg_usize("intermediate_size")
        .expect("intermediate_size");
    let (model_type, arch, gguf) = match mt.as_str() {
        "qwen2" => ("qwen2_moe", "Qwen2MoeForCausalLM", "qwen2moe"),
        "qwen3" => ("qwen3_moe", "Qwen3MoeForCausalLM", "qwen3moe"),
        _ => ("mixtral", "MixtralForCausalLM", "llama"),
    };
    let is_vlm = out.config.get("text_config").is_some();
    let cfg = out.text_config_mut();
    cfg["model_type"] = json!(model_type);
    if !is_vlm {
        cfg["architectures"] = json!([arch]);
    }
    cfg["num_experts_per_tok"] = json!(n_experts.min(2));
    if mixtral {
        cfg["num_local_experts"] = json!(n_experts);
    } else {
        cfg["num_experts"] = json!(n_experts);
        cfg["moe_intermediate_size"] = json!(inter);
        cfg["norm_topk_prob"] = json!(true);
        cfg["decoder_sparse_step"] = json!(1);
    }
    out.gguf_arch = gguf.into();
    out.name = format!("{}-upcycled{n_experts}", dense.name);
    out
}

/// Values as they read back after storing in `dtype` (bf16/f16 rounding).
pub fn cast_roundtrip(model: &SynthModel, dtype: StDtype) -> SynthModel {
    model.map_tensors(|t| SynthTensor {
        data: t.data.iter().map(|v| dtype.round(*v)).collect(),
        ..t.clone()
    })
}

/// Values as they read back after quantizing every matrix whose rows fit `q`'s blocks
/// (other tensors are unchanged), decoded with [`dequantize_reference`].
pub fn quant_roundtrip(model: &SynthModel, q: QuantType) -> SynthModel {
    model.map_tensors(|t| {
        if t.shape.len() >= 2 && q.fits_row(t.row_len()) {
            SynthTensor {
                data: dequantize_reference(q, &quantize(q, &t.data)),
                ..t.clone()
            }
        } else {
            t.clone()
        }
    })
}
