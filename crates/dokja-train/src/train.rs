//! Training loops: from scratch (test-kit `llama_like` initialization from a seed) and
//! continued training of an existing model, with AdamW, warmup + cosine learning rate and
//! global gradient clipping.
//!
//! Deterministic: initialization and data order come from seeded ChaCha streams, and
//! candle's CPU kernels do not reorder reductions between runs on one machine.

use candle_core::{Device, Tensor, Var};
use dokja_testkit::rng::{SynthRng, mix_seed};
use dokja_testkit::{LlamaSpec, SynthModel, llama_like};
use serde_json::json;

use crate::bpe::Bpe;
use crate::model::Llama;
use crate::{Result, TrainError};

/// Everything that shapes a training run except seeds and data.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSpec {
    /// Vocabulary size (with 2 special tokens) of the tokenizer learned from the training
    /// corpus when `tokenizer` is `None`.
    pub vocab_size: usize,
    /// A fixed tokenizer, e.g. one shared by models trained on different corpora.
    pub tokenizer: Option<Bpe>,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seq_len: usize,
    pub batch: usize,
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// The learning rate decays by cosine to `lr * min_lr_ratio` at the last step.
    pub min_lr_ratio: f64,
    pub warmup_steps: usize,
    /// Decoupled weight decay, applied to matrices only (not to norm weights).
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub adam_eps: f64,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// Std of the normal initialization (output projections scaled down, as GPT-2).
    pub init_std: f32,
}

impl Default for TrainSpec {
    /// 0.43 M parameters (2 layers, width 128) trained for 600 steps of 16 x 64 tokens:
    /// ~32 s on one core; on English (own tokenizer) held-out loss 3.2 nats against a
    /// unigram entropy of 5.3.
    fn default() -> Self {
        TrainSpec {
            vocab_size: 512,
            tokenizer: None,
            hidden_size: 128,
            intermediate_size: 256,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            seq_len: 64,
            batch: 16,
            steps: 600,
            lr: 3e-3,
            min_lr_ratio: 0.1,
            warmup_steps: 50,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            adam_eps: 1e-8,
            grad_clip: 1.0,
            init_std: 0.02,
        }
    }
}

impl TrainSpec {
    /// A few-second configuration for tests. Every activation stays under 64 Ki elements,
    /// below which candle runs element-wise ops inline instead of on its spinning pool.
    pub fn tiny() -> TrainSpec {
        TrainSpec {
            vocab_size: 300,
            hidden_size: 32,
            intermediate_size: 64,
            layers: 1,
            heads: 2,
            kv_heads: 1,
            seq_len: 32,
            batch: 6,
            steps: 120,
            warmup_steps: 10,
            ..TrainSpec::default()
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(TrainError::Spec(m.into()));
        if self.heads == 0 || self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return bad("heads must be a positive multiple of kv_heads");
        }
        if !self.hidden_size.is_multiple_of(self.heads)
            || !(self.hidden_size / self.heads).is_multiple_of(2)
        {
            return bad("hidden_size / heads must be an even head dimension");
        }
        if self.seq_len < 2 || self.batch == 0 || self.layers == 0 {
            return bad("seq_len >= 2, batch >= 1 and layers >= 1 are needed");
        }
        Ok(())
    }

    fn llama_spec(&self, vocab: usize) -> LlamaSpec {
        LlamaSpec {
            vocab_size: vocab,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_layers: self.layers,
            num_heads: self.heads,
            num_kv_heads: self.kv_heads,
            head_dim: self.hidden_size / self.heads,
            max_position_embeddings: self.seq_len,
            init_std: self.init_std,
            tokenizer: None,
            ..LlamaSpec::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainedModel {
    pub model: SynthModel,
    /// Training loss (mean next-token cross-entropy, nats) at every step.
    pub losses: Vec<f32>,
}

impl TrainedModel {
    /// Mean of the first / last `n` step losses.
    pub fn loss_head_tail(&self, n: usize) -> (f32, f32) {
        let n = n.clamp(1, self.losses.len().max(1));
        let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len().max(1) as f32;
        (
            mean(&self.losses[..n.min(self.losses.len())]),
            mean(&self.losses[self.losses.len().saturating_sub(n)..]),
        )
    }
}

/// The share of a corpus's tokens held out from training (its tail), for [`eval_loss`].
const HELDOUT: f64 = 0.05;

fn split(tokens: &[u32]) -> (&[u32], &[u32]) {
    let cut = tokens.len() - (tokens.len() as f64 * HELDOUT) as usize;
    tokens.split_at(cut)
}

/// Trains a new model on `corpus` from the `llama_like` initialization of `init_seed`,
/// drawing batches in the order given by `data_seed`.
pub fn train_from_scratch(
    spec: &TrainSpec,
    corpus: &[u8],
    init_seed: u64,
    data_seed: u64,
) -> Result<TrainedModel> {
    spec.check()?;
    let bpe = match &spec.tokenizer {
        Some(b) => b.clone(),
        None => Bpe::learn(corpus, spec.vocab_size)?,
    };
    let mut init = llama_like(&spec.llama_spec(bpe.vocab_size()), init_seed);
    let tok = bpe.tokenizer().clone();
    init.name = format!("dokja-train-s{init_seed}-d{data_seed}");
    init.config["bos_token_id"] = json!(tok.bos);
    init.config["eos_token_id"] = json!(tok.eos);
    init.config["torch_dtype"] = json!("float32");
    init.tokenizer = Some(tok);
    run(init, &bpe, spec, corpus, spec.steps, spec.lr, data_seed)
}

/// Trains `model` further on `corpus` for `steps` steps with peak learning rate `lr` (fresh
/// optimizer state, the schedule and other settings of `spec`; the model's own tokenizer).
pub fn continue_training(
    model: &SynthModel,
    spec: &TrainSpec,
    corpus: &[u8],
    steps: usize,
    lr: f64,
    data_seed: u64,
) -> Result<TrainedModel> {
    spec.check()?;
    let tok = model
        .tokenizer
        .as_ref()
        .ok_or_else(|| TrainError::Unsupported(format!("{}: no tokenizer", model.name)))?;
    let bpe = Bpe::from_tokenizer(tok)?;
    let mut start = model.clone();
    start.name = format!("{}-c{data_seed}", model.name);
    run(start, &bpe, spec, corpus, steps, lr, data_seed)
}

fn run(
    init: SynthModel,
    bpe: &Bpe,
    spec: &TrainSpec,
    corpus: &[u8],
    steps: usize,
    lr: f64,
    data_seed: u64,
) -> Result<TrainedModel> {
    let tokens = bpe.encode(corpus);
    let (train, _) = split(&tokens);
    if train.len() < spec.seq_len + 2 {
        return Err(TrainError::Spec(format!(
            "corpus too small: {} training tokens for windows of {}",
            train.len(),
            spec.seq_len + 1
        )));
    }
    let llama = Llama::from_synth(&init)?;
    if llama.arch.vocab != bpe.vocab_size() {
        return Err(TrainError::Spec(format!(
            "model vocabulary {} vs tokenizer {}",
            llama.arch.vocab,
            bpe.vocab_size()
        )));
    }
    thread_hint();
    let mut rng = SynthRng::new(mix_seed(data_seed, 0xDA7A));
    let mut opt = AdamW::new(&llama.params, spec)?;
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let (x, y) = batch(train, spec, &mut rng, llama.device())?;
        let loss = llama.loss(&x, &y)?;
        let grads = loss.backward()?;
        opt.step(&grads, schedule(spec, step, steps, lr))?;
        losses.push(loss.to_scalar::<f32>()?);
    }
    Ok(TrainedModel {
        model: llama.to_synth()?,
        losses,
    })
}

/// candle runs large element-wise ops on a pool whose workers spin between ops; with
/// other processes on the cores that made training 6x slower here. Results do not depend
/// on the thread count, so suggest one thread (once per process).
fn thread_hint() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores > 1 && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            eprintln!(
                "dokja-train: set CANDLE_NUM_THREADS=1 (and RAYON_NUM_THREADS=1) on a shared \
                 machine; candle's {cores} spinning workers slow training down there"
            );
        }
    });
}

/// Linear warmup, then cosine decay to `lr * min_lr_ratio` at the last step.
fn schedule(spec: &TrainSpec, step: usize, steps: usize, lr: f64) -> f64 {
    let warm = spec.warmup_steps.min(steps / 2);
    if step < warm {
        return lr * (step + 1) as f64 / warm as f64;
    }
    let span = (steps - warm).max(1) as f64;
    let progress = (step - warm) as f64 / span;
    let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    lr * (spec.min_lr_ratio + (1.0 - spec.min_lr_ratio) * cos)
}

/// Random windows of `seq_len + 1` tokens: inputs and next-token targets.
fn batch(
    tokens: &[u32],
    spec: &TrainSpec,
    rng: &mut SynthRng,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let (b, t) = (spec.batch, spec.seq_len);
    let mut x = Vec::with_capacity(b * t);
    let mut y = Vec::with_capacity(b * t);
    for _ in 0..b {
        let s = rng.below(tokens.len() - t);
        x.extend_from_slice(&tokens[s..s + t]);
        y.extend_from_slice(&tokens[s + 1..s + t + 1]);
    }
    Ok((
        Tensor::from_vec(x, (b, t), dev)?,
        Tensor::from_vec(y, (b, t), dev)?,
    ))
}

/// Mean next-token loss (nats) of `model` on the held-out tail of `corpus` (the part that
/// training never samples), over at most `max_windows` windows of `seq_len` tokens.
pub fn eval_loss(
    model: &SynthModel,
    corpus: &[u8],
    seq_len: usize,
    max_windows: usize,
) -> Result<f32> {
    let tok = model
        .tokenizer
        .as_ref()
        .ok_or_else(|| TrainError::Unsupported(format!("{}: no tokenizer", model.name)))?;
    let tokens = Bpe::from_tokenizer(tok)?.encode(corpus);
    let (_, held) = split(&tokens);
    let n = ((held.len().saturating_sub(1)) / seq_len).min(max_windows);
    if n == 0 {
        return Err(TrainError::Spec(
            "held-out text shorter than one window".into(),
        ));
    }
    let llama = Llama::from_synth(model)?;
    let mut total = 0.0;
    for w in 0..n {
        let s = w * seq_len;
        let x = Tensor::new(&held[s..s + seq_len], llama.device())?.unsqueeze(0)?;
        let y = Tensor::new(&held[s + 1..s + seq_len + 1], llama.device())?.unsqueeze(0)?;
        total += llama.loss(&x, &y)?.to_scalar::<f32>()?;
    }
    Ok(total / n as f32)
}

/// Entropy (nats) of the corpus's unigram token distribution under `bpe`: the loss of the
/// best model that ignores context, which a trained model must beat by a wide margin.
pub fn unigram_entropy(bpe: &Bpe, corpus: &[u8]) -> f64 {
    let tokens = bpe.encode(corpus);
    let mut counts = vec![0u64; bpe.vocab_size()];
    for &t in &tokens {
        counts[t as usize] += 1;
    }
    let n = tokens.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// AdamW with decoupled weight decay on matrices only and global-norm gradient clipping.
struct AdamW {
    slots: Vec<Slot>,
    t: i32,
    b1: f64,
    b2: f64,
    eps: f64,
    clip: f64,
}

struct Slot {
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: f64,
}

impl AdamW {
    fn new(params: &[(String, Var)], spec: &TrainSpec) -> Result<AdamW> {
        let slots = params
            .iter()
            .map(|(_, var)| {
                let zeros = var.as_tensor().zeros_like()?;
                let decay = if var.rank() >= 2 {
                    spec.weight_decay
                } else {
                    0.0
                };
                Ok(Slot {
                    var: var.clone(),
                    m: zeros.clone(),
                    v: zeros,
                    decay,
                })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW {
            slots,
            t: 0,
            b1: spec.beta1,
            b2: spec.beta2,
            eps: spec.adam_eps,
            clip: spec.grad_clip,
        })
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore, lr: f64) -> Result<()> {
        self.t += 1;
        let mut sq = 0.0f64;
        for s in &self.slots {
            if let Some(g) = grads.get(s.var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        let scale = if norm > self.clip && norm > 0.0 {
            self.clip / norm
        } else {
            1.0
        };
        let c1 = 1.0 / (1.0 - self.b1.powi(self.t));
        let c2 = 1.0 / (1.0 - self.b2.powi(self.t));
        for s in &mut self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            let g = (g * scale)?;
            s.m = ((&s.m * self.b1)? + (&g * (1.0 - self.b1))?)?;
            s.v = ((&s.v * self.b2)? + (g.sqr()? * (1.0 - self.b2))?)?;
            let update = ((&s.m * c1)? / ((&s.v * c2)?.sqrt()? + self.eps)?)?;
            let theta = (s.var.as_tensor() * (1.0 - lr * s.decay))?;
            s.var.set(&(theta - (update * lr)?)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let spec = TrainSpec::default();
        let lr = |s| schedule(&spec, s, 1000, 1.0);
        assert!(lr(0) < 0.05);
        assert!((lr(49) - 1.0).abs() < 1e-9);
        assert!(lr(500) < 1.0 && lr(500) > 0.5);
        assert!((lr(999) - 0.1).abs() < 0.01);
    }

    #[test]
    fn bad_specs_are_errors() {
        let spec = TrainSpec {
            heads: 3,
            ..TrainSpec::tiny()
        };
        assert!(train_from_scratch(&spec, b"tiny", 1, 1).is_err());
        let err = train_from_scratch(&TrainSpec::tiny(), b"too short", 1, 1).unwrap_err();
        assert!(err.to_string().contains("corpus too small"), "{err}");
    }
}
