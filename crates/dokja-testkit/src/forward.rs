//! A plain reference forward pass for the llama-family decoders built here (Llama, Qwen2,
//! Qwen3, Qwen-MoE, Mixtral), in f64. It exists to check that derivations which claim to
//! preserve the function do, and for tests that need activations. Slow and exact.

use crate::model::{SynthModel, SynthTensor};

/// `W x` for `W` of shape `[out, in]`.
pub fn linear(w: &SynthTensor, x: &[f64]) -> Vec<f64> {
    assert_eq!(
        w.row_len(),
        x.len(),
        "{}: input of {} for rows of {}",
        w.name,
        x.len(),
        w.row_len()
    );
    (0..w.n_rows())
        .map(|r| w.row(r).iter().zip(x).map(|(a, b)| *a as f64 * b).sum())
        .collect()
}

fn add_bias(m: &SynthModel, name: &str, y: &mut [f64]) {
    if let Some(b) = m.get(name) {
        y.iter_mut().zip(&b.data).for_each(|(y, b)| *y += *b as f64);
    }
}

pub fn rms_norm(x: &[f64], g: &[f32], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + eps).sqrt();
    x.iter().zip(g).map(|(v, g)| v * s * *g as f64).collect()
}

fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

/// SwiGLU: `down(silu(gate x) * up x)`.
pub fn swiglu(gate: &SynthTensor, up: &SynthTensor, down: &SynthTensor, x: &[f64]) -> Vec<f64> {
    let g = linear(gate, x);
    let u = linear(up, x);
    let a: Vec<f64> = g.iter().zip(&u).map(|(g, u)| silu(*g) * u).collect();
    linear(down, &a)
}

/// Rotary embedding, "rotate_half" convention of HF llama: pairs (i, i + d/2).
fn rope(x: &mut [f64], pos: usize, theta: f64) {
    let d = x.len();
    for i in 0..d / 2 {
        let freq = theta.powf(-2.0 * i as f64 / d as f64);
        let (s, c) = (pos as f64 * freq).sin_cos();
        let (a, b) = (x[i], x[i + d / 2]);
        x[i] = a * c - b * s;
        x[i + d / 2] = b * c + a * s;
    }
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn ffn(m: &SynthModel, l: &str, x: &[f64]) -> Vec<f64> {
    let t = |n: String| m.tensor(&n);
    if m.contains(&format!("{l}mlp.gate_proj.weight")) {
        return swiglu(
            t(format!("{l}mlp.gate_proj.weight")),
            t(format!("{l}mlp.up_proj.weight")),
            t(format!("{l}mlp.down_proj.weight")),
            x,
        );
    }
    let mixtral = m.contains(&format!("{l}block_sparse_moe.gate.weight"));
    let router = if mixtral {
        format!("{l}block_sparse_moe.gate.weight")
    } else {
        format!("{l}mlp.gate.weight")
    };
    let probs = softmax(&linear(t(router), x));
    let k = m.cfg_usize("num_experts_per_tok").unwrap_or(2);
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
    let top = &idx[..k];
    let norm = mixtral || m.text_config()["norm_topk_prob"].as_bool().unwrap_or(false);
    let total: f64 = if norm {
        top.iter().map(|&e| probs[e]).sum()
    } else {
        1.0
    };
    let mut out = vec![0.0; x.len()];
    for &e in top {
        let y = if mixtral {
            let p = format!("{l}block_sparse_moe.experts.{e}.");
            swiglu(
                t(format!("{p}w1.weight")),
                t(format!("{p}w3.weight")),
                t(format!("{p}w2.weight")),
                x,
            )
        } else {
            let p = format!("{l}mlp.experts.{e}.");
            swiglu(
                t(format!("{p}gate_proj.weight")),
                t(format!("{p}up_proj.weight")),
                t(format!("{p}down_proj.weight")),
                x,
            )
        };
        out.iter_mut()
            .zip(y)
            .for_each(|(o, y)| *o += probs[e] / total * y);
    }
    let s = format!("{l}mlp.shared_expert.");
    if m.contains(&format!("{s}up_proj.weight")) {
        let y = swiglu(
            t(format!("{s}gate_proj.weight")),
            t(format!("{s}up_proj.weight")),
            t(format!("{s}down_proj.weight")),
            x,
        );
        let g = 1.0 / (1.0 + (-linear(t(format!("{l}mlp.shared_expert_gate.weight")), x)[0]).exp());
        out.iter_mut().zip(y).for_each(|(o, y)| *o += g * y);
    }
    out
}

/// Logits `[position][vocab]` of a causal decoder on `tokens`.
pub fn decoder_logits(m: &SynthModel, tokens: &[u32]) -> Vec<Vec<f64>> {
    let mt = m.text_config()["model_type"].as_str().unwrap_or("");
    assert!(
        !mt.contains("gemma") && !mt.contains("deepseek"),
        "forward: {mt} is not supported"
    );
    let p = m.lm_prefix().expect("decoder");
    let c = |k: &str| m.cfg_usize(k).unwrap_or_else(|| panic!("config lacks {k}"));
    let (n_heads, hidden) = (c("num_attention_heads"), c("hidden_size"));
    let n_kv = m.cfg_usize("num_key_value_heads").unwrap_or(n_heads);
    let hd = m.cfg_usize("head_dim").unwrap_or(hidden / n_heads);
    let eps = m.cfg_f64("rms_norm_eps").unwrap_or(1e-6);
    let theta = m.cfg_f64("rope_theta").unwrap_or(10000.0);
    let embed = m.tensor(&format!("{p}embed_tokens.weight"));
    let mut h: Vec<Vec<f64>> = tokens
        .iter()
        .map(|&t| embed.row(t as usize).iter().map(|v| *v as f64).collect())
        .collect();
    for i in 0..c("num_hidden_layers") {
        let l = format!("{p}layers.{i}.");
        let a = format!("{l}self_attn.");
        let g_in = &m.tensor(&format!("{l}input_layernorm.weight")).data;
        let proj = |name: &str, x: &[f64]| {
            let mut y = linear(m.tensor(&format!("{a}{name}.weight")), x);
            add_bias(m, &format!("{a}{name}.bias"), &mut y);
            y
        };
        let (mut qs, mut ks, mut vs) = (Vec::new(), Vec::new(), Vec::new());
        for (pos, x) in h.iter().enumerate() {
            let x = rms_norm(x, g_in, eps);
            let (mut q, mut k) = (proj("q_proj", &x), proj("k_proj", &x));
            for (y, norm, n) in [(&mut q, "q_norm", n_heads), (&mut k, "k_norm", n_kv)] {
                let w = m.get(&format!("{a}{norm}.weight"));
                for head in y.chunks_exact_mut(hd).take(n) {
                    if let Some(w) = w {
                        let normed = rms_norm(head, &w.data, eps);
                        head.copy_from_slice(&normed);
                    }
                    rope(head, pos, theta);
                }
            }
            qs.push(q);
            ks.push(k);
            vs.push(proj("v_proj", &x));
        }
        let group = n_heads / n_kv;
        for t in 0..h.len() {
            let mut att = vec![0.0; n_heads * hd];
            for head in 0..n_heads {
                let kv = head / group;
                let q = &qs[t][head * hd..(head + 1) * hd];
                let scores: Vec<f64> = (0..=t)
                    .map(|s| {
                        q.iter()
                            .zip(&ks[s][kv * hd..(kv + 1) * hd])
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            / (hd as f64).sqrt()
                    })
                    .collect();
                for (s, w) in softmax(&scores).into_iter().enumerate() {
                    for d in 0..hd {
                        att[head * hd + d] += w * vs[s][kv * hd + d];
                    }
                }
            }
            let o = proj("o_proj", &att);
            h[t].iter_mut().zip(o).for_each(|(h, o)| *h += o);
        }
        let g_post = &m
            .tensor(&format!("{l}post_attention_layernorm.weight"))
            .data;
        for x in h.iter_mut() {
            let y = ffn(m, &l, &rms_norm(x, g_post, eps));
            x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
        }
    }
    let g = &m.tensor(&format!("{p}norm.weight")).data;
    let head = m.lm_head_name().map_or(embed, |n| m.tensor(&n));
    h.iter()
        .map(|x| linear(head, &rms_norm(x, g, eps)))
        .collect()
}
