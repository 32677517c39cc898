//! A Llama decoder in candle whose parameters are exactly the tensors of a test-kit
//! `llama_like` model (same Hugging Face names and shapes), so a trained model goes back to
//! a [`SynthModel`] by copying values. Semantics follow HF Llama (and the test kit's
//! reference forward pass): RMSNorm, rotate-half RoPE, GQA, SwiGLU, untied or tied head.
//!
//! Only differentiable candle ops are used (`rms_norm_slow`, `rope_slow`, composed
//! softmax): the fused CPU kernels have no backward pass.

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::ops::{rms_norm_slow, softmax};
use candle_nn::rotary_emb::rope_slow;
use dokja_testkit::{SynthModel, SynthTensor};

use crate::{Result, TrainError};

/// The shape of a Llama decoder, read from its config.
#[derive(Clone, Debug)]
pub(crate) struct Arch {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f64,
    pub theta: f64,
    pub tied: bool,
}

impl Arch {
    pub fn of(m: &SynthModel) -> Result<Arch> {
        let need = |k: &str| {
            m.cfg_usize(k)
                .ok_or_else(|| TrainError::Unsupported(format!("{}: config lacks {k}", m.name)))
        };
        let model_type = m.text_config()["model_type"].as_str().unwrap_or("");
        if model_type != "llama" {
            return Err(TrainError::Unsupported(format!(
                "{}: model_type {model_type:?}; only plain llama decoders are trained",
                m.name
            )));
        }
        if m.tensors.iter().any(|t| t.name.ends_with(".bias")) {
            return Err(TrainError::Unsupported(format!("{}: biases", m.name)));
        }
        let (hidden, heads) = (need("hidden_size")?, need("num_attention_heads")?);
        let kv_heads = m.cfg_usize("num_key_value_heads").unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(TrainError::Unsupported(format!(
                "{heads} heads over {kv_heads} kv heads"
            )));
        }
        let tied = m.text_config()["tie_word_embeddings"]
            .as_bool()
            .unwrap_or(false);
        Ok(Arch {
            vocab: need("vocab_size")?,
            hidden,
            layers: need("num_hidden_layers")?,
            heads,
            kv_heads,
            head_dim: m.cfg_usize("head_dim").unwrap_or(hidden / heads),
            eps: m.cfg_f64("rms_norm_eps").unwrap_or(1e-5),
            theta: m.cfg_f64("rope_theta").unwrap_or(10000.0),
            tied,
        })
    }
}

pub(crate) struct Llama {
    pub arch: Arch,
    /// Trainable parameters in the model's tensor order.
    pub params: Vec<(String, Var)>,
    index: HashMap<String, usize>,
    template: SynthModel,
    device: Device,
}

impl Llama {
    /// Wraps every tensor of `m` as a trainable variable.
    pub fn from_synth(m: &SynthModel) -> Result<Llama> {
        let arch = Arch::of(m)?;
        let device = Device::Cpu;
        let mut params = Vec::with_capacity(m.tensors.len());
        for t in &m.tensors {
            let v = Var::from_slice(&t.data, t.shape.as_slice(), &device)?;
            params.push((t.name.clone(), v));
        }
        let index = params
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i))
            .collect();
        let llama = Llama {
            arch,
            params,
            index,
            template: m.clone(),
            device,
        };
        llama.check_names()?;
        Ok(llama)
    }

    fn check_names(&self) -> Result<()> {
        let mut names = vec![
            "model.embed_tokens.weight".to_string(),
            "model.norm.weight".into(),
        ];
        if !self.arch.tied {
            names.push("lm_head.weight".into());
        }
        for l in 0..self.arch.layers {
            for s in [
                "input_layernorm",
                "post_attention_layernorm",
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj",
            ] {
                names.push(format!("model.layers.{l}.{s}.weight"));
            }
        }
        match names.iter().find(|n| !self.index.contains_key(*n)) {
            Some(n) => Err(TrainError::Unsupported(format!(
                "{}: missing tensor {n}",
                self.template.name
            ))),
            None if names.len() != self.params.len() => Err(TrainError::Unsupported(format!(
                "{}: {} tensors, expected exactly {}",
                self.template.name,
                self.params.len(),
                names.len()
            ))),
            None => Ok(()),
        }
    }

    fn p(&self, name: &str) -> &Tensor {
        self.params[self.index[name]].1.as_tensor()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` (u32).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let a = &self.arch;
        let (b, t) = ids.dims2()?;
        let eps = a.eps as f32;
        let (cos, sin) = rope_tables(t, a.head_dim, a.theta, &self.device)?;
        let mask = causal_mask(t, &self.device)?;
        let embed = self.p("model.embed_tokens.weight");
        let mut x = embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, a.hidden))?;
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, n, a.head_dim))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let group = a.heads / a.kv_heads;
        // HF repeat_kv: query head h reads kv head h / group.
        let repeat = |y: Tensor| -> Result<Tensor> {
            if group == 1 {
                return Ok(y);
            }
            Ok(y.unsqueeze(2)?
                .expand((b, a.kv_heads, group, t, a.head_dim))?
                .reshape((b, a.heads, t, a.head_dim))?)
        };
        for l in 0..a.layers {
            let w = |s: &str| self.p(&format!("model.layers.{l}.{s}.weight"));
            let h = rms_norm_slow(&x, w("input_layernorm"), eps)?;
            let q = rope_slow(
                &heads(linear(&h, w("self_attn.q_proj"))?, a.heads)?,
                &cos,
                &sin,
            )?;
            let k = rope_slow(
                &heads(linear(&h, w("self_attn.k_proj"))?, a.kv_heads)?,
                &cos,
                &sin,
            )?;
            let v = heads(linear(&h, w("self_attn.v_proj"))?, a.kv_heads)?;
            let (k, v) = (repeat(k)?, repeat(v)?);
            let scores = (q.matmul(&k.t()?)? / (a.head_dim as f64).sqrt())?;
            let att = softmax(&scores.broadcast_add(&mask)?, D::Minus1)?;
            let y = att
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b, t, a.heads * a.head_dim))?;
            x = (x + linear(&y, w("self_attn.o_proj"))?)?;
            let h = rms_norm_slow(&x, w("post_attention_layernorm"), eps)?;
            let act = (linear(&h, w("mlp.gate_proj"))?.silu()? * linear(&h, w("mlp.up_proj"))?)?;
            x = (x + linear(&act, w("mlp.down_proj"))?)?;
        }
        let x = rms_norm_slow(&x, self.p("model.norm.weight"), eps)?;
        let head = if a.tied {
            embed
        } else {
            self.p("lm_head.weight")
        };
        linear(&x, head)
    }

    /// Mean next-token cross-entropy (nats) of `targets` given `ids`, both `[batch, seq]`.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self.forward(ids)?;
        let (b, t, v) = logits.dims3()?;
        Ok(candle_nn::loss::cross_entropy(
            &logits.reshape((b * t, v))?,
            &targets.reshape(b * t)?,
        )?)
    }

    /// The current parameters as a test-kit model (config and tokenizer of the original).
    pub fn to_synth(&self) -> Result<SynthModel> {
        let mut m = self.template.clone();
        for (t, (name, v)) in m.tensors.iter_mut().zip(&self.params) {
            debug_assert_eq!(&t.name, name);
            let data = v.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            *t = SynthTensor::new(name.clone(), t.shape.clone(), data);
        }
        Ok(m)
    }
}

/// `x W^T` for `x` of shape `[b, t, in]` and `W` of shape `[out, in]`.
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, t, inp) = x.dims3()?;
    let out = w.dim(0)?;
    Ok(x.reshape((b * t, inp))?
        .matmul(&w.t()?)?
        .reshape((b, t, out))?)
}

/// RoPE cos/sin tables `[t, head_dim / 2]`, frequencies theta^(-2i/d) as HF Llama.
fn rope_tables(t: usize, head_dim: usize, theta: f64, dev: &Device) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for pos in 0..t {
        for i in 0..half {
            let angle = pos as f64 * theta.powf(-2.0 * i as f64 / head_dim as f64);
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (t, half), dev)?,
        Tensor::from_vec(sin, (t, half), dev)?,
    ))
}

fn causal_mask(t: usize, dev: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t * t)
        .map(|i| {
            if i % t > i / t {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Ok(Tensor::from_vec(m, (t, t), dev)?.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dokja_testkit::forward::decoder_logits;
    use dokja_testkit::{LlamaSpec, llama_like};

    /// The candle forward pass agrees with the test kit's f64 reference, so a model trained
    /// here means in dokja's eyes what it meant in training.
    #[test]
    fn matches_testkit_reference_forward() {
        for (tie, kv) in [(false, 2), (true, 4)] {
            let spec = LlamaSpec {
                vocab_size: 300,
                hidden_size: 32,
                intermediate_size: 48,
                num_layers: 2,
                num_heads: 4,
                num_kv_heads: kv,
                head_dim: 8,
                tie_embeddings: tie,
                // Larger weights than the default so attention is far from uniform.
                init_std: 0.3,
                ..LlamaSpec::default()
            };
            let m = llama_like(&spec, 5);
            let tokens: Vec<u32> = (0..7).map(|i| (i * 37 + 3) % 300).collect();
            let want = decoder_logits(&m, &tokens);
            let llama = Llama::from_synth(&m).unwrap();
            let ids = Tensor::new(tokens.as_slice(), llama.device())
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let got = llama.forward(&ids).unwrap().squeeze(0).unwrap();
            let got = got.to_vec2::<f32>().unwrap();
            for (g, w) in got.iter().zip(&want) {
                for (g, w) in g.iter().zip(w) {
                    assert!((*g as f64 - w).abs() < 1e-3 * (1.0 + w.abs()), "{g} vs {w}");
                }
            }
            assert_eq!(llama.to_synth().unwrap(), m);
        }
    }
}
