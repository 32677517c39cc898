//! Generators of randomly initialized models with real architectures' tensor names and
//! configs. Values follow common init schemes (normal with std 0.02 for matrices, output
//! projections scaled down by sqrt(2 * layers) as in GPT-2, norms 1 + small noise), so
//! statistics have realistic scales; nothing here is trained.

use serde_json::{Value, json};

use crate::model::{SynthModel, SynthTensor, SynthTokenizer, TokenizerKind};
use crate::rng::SynthRng;
use crate::tokenizer::make_tokenizer;

/// Draws each tensor from its own (seed, name) stream.
pub(crate) struct Init {
    pub seed: u64,
    pub std: f32,
}

impl Init {
    pub fn normal(&self, name: &str, shape: Vec<usize>, std: f32) -> SynthTensor {
        let n = shape.iter().product();
        let data = SynthRng::for_name(self.seed, name).normal_vec(n, 0.0, std);
        SynthTensor::new(name, shape, data)
    }

    /// A linear weight `[out, in]` with the default std.
    pub fn linear(&self, name: &str, out: usize, inp: usize) -> SynthTensor {
        self.normal(name, vec![out, inp], self.std)
    }

    /// A norm weight: `center` plus small noise (1 for RMSNorm/LayerNorm, 0 for Gemma's
    /// `1 + w` parameterization).
    pub fn norm(&self, name: &str, n: usize, center: f32) -> SynthTensor {
        let data = SynthRng::for_name(self.seed, name).normal_vec(n, center, 0.02);
        SynthTensor::new(name, vec![n], data)
    }

    pub fn bias(&self, name: &str, n: usize) -> SynthTensor {
        self.normal(name, vec![n], self.std)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlamaFlavor {
    /// Llama / Mistral: no biases, no q/k norms.
    Llama,
    /// Qwen2: biases on q, k and v.
    Qwen2,
    /// Qwen3: per-head RMSNorm on q and k (`q_norm`, `k_norm`).
    Qwen3,
    /// Gemma 3: q/k norms, four norms per layer, norms stored as `w` meaning `1 + w`.
    Gemma3,
}

impl LlamaFlavor {
    fn model_type(self) -> &'static str {
        match self {
            LlamaFlavor::Llama => "llama",
            LlamaFlavor::Qwen2 => "qwen2",
            LlamaFlavor::Qwen3 => "qwen3",
            LlamaFlavor::Gemma3 => "gemma3_text",
        }
    }
    fn architecture(self) -> &'static str {
        match self {
            LlamaFlavor::Llama => "LlamaForCausalLM",
            LlamaFlavor::Qwen2 => "Qwen2ForCausalLM",
            LlamaFlavor::Qwen3 => "Qwen3ForCausalLM",
            LlamaFlavor::Gemma3 => "Gemma3ForCausalLM",
        }
    }
    fn gguf_arch(self) -> &'static str {
        match self {
            LlamaFlavor::Llama => "llama",
            LlamaFlavor::Qwen2 => "qwen2",
            LlamaFlavor::Qwen3 => "qwen3",
            LlamaFlavor::Gemma3 => "gemma3",
        }
    }
    fn qkv_bias(self) -> bool {
        self == LlamaFlavor::Qwen2
    }
    fn qk_norm(self) -> bool {
        matches!(self, LlamaFlavor::Qwen3 | LlamaFlavor::Gemma3)
    }
    fn norm_center(self) -> f32 {
        if self == LlamaFlavor::Gemma3 {
            0.0
        } else {
            1.0
        }
    }
}

#[derive(Clone, Debug)]
pub struct LlamaSpec {
    pub flavor: LlamaFlavor,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub tie_embeddings: bool,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub init_std: f32,
    /// None: no tokenizer (weights only).
    pub tokenizer: Option<TokenizerKind>,
    /// 0: canonical token order; other values shuffle learned-token ids.
    pub tokenizer_variant: u64,
}

impl Default for LlamaSpec {
    fn default() -> Self {
        LlamaSpec {
            flavor: LlamaFlavor::Llama,
            vocab_size: 512,
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            tie_embeddings: false,
            rope_theta: 10000.0,
            max_position_embeddings: 2048,
            init_std: 0.02,
            tokenizer: Some(TokenizerKind::ByteLevelBpe),
            tokenizer_variant: 0,
        }
    }
}

/// Attention geometry shared by the decoder generators.
pub(crate) struct AttnDims {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub bias: bool,
    pub qk_norm: bool,
    /// Stored value of a neutral norm weight (1, or 0 for Gemma's `1 + w`).
    pub norm_center: f32,
}

pub(crate) fn push_gqa_attention(
    out: &mut Vec<SynthTensor>,
    init: &Init,
    p: &str,
    d: &AttnDims,
    out_std: f32,
) {
    let (q, kv) = (d.heads * d.head_dim, d.kv_heads * d.head_dim);
    out.push(init.linear(&format!("{p}self_attn.q_proj.weight"), q, d.hidden));
    out.push(init.linear(&format!("{p}self_attn.k_proj.weight"), kv, d.hidden));
    out.push(init.linear(&format!("{p}self_attn.v_proj.weight"), kv, d.hidden));
    if d.bias {
        out.push(init.bias(&format!("{p}self_attn.q_proj.bias"), q));
        out.push(init.bias(&format!("{p}self_attn.k_proj.bias"), kv));
        out.push(init.bias(&format!("{p}self_attn.v_proj.bias"), kv));
    }
    out.push(init.normal(
        &format!("{p}self_attn.o_proj.weight"),
        vec![d.hidden, q],
        out_std,
    ));
    if d.qk_norm {
        out.push(init.norm(
            &format!("{p}self_attn.q_norm.weight"),
            d.head_dim,
            d.norm_center,
        ));
        out.push(init.norm(
            &format!("{p}self_attn.k_norm.weight"),
            d.head_dim,
            d.norm_center,
        ));
    }
}

/// SwiGLU MLP `{p}gate_proj`, `up_proj`, `down_proj`.
pub(crate) fn push_swiglu(
    out: &mut Vec<SynthTensor>,
    init: &Init,
    p: &str,
    hidden: usize,
    inter: usize,
    out_std: f32,
) {
    out.push(init.linear(&format!("{p}gate_proj.weight"), inter, hidden));
    out.push(init.linear(&format!("{p}up_proj.weight"), inter, hidden));
    out.push(init.normal(
        &format!("{p}down_proj.weight"),
        vec![hidden, inter],
        out_std,
    ));
}

fn tokenizer_for(
    kind: Option<TokenizerKind>,
    vocab: usize,
    variant: u64,
) -> Option<SynthTokenizer> {
    kind.map(|k| make_tokenizer(k, vocab, variant))
}

fn special_ids(tok: &Option<SynthTokenizer>) -> (Value, Value) {
    let id = |x: Option<u32>| x.map_or(Value::Null, |v| json!(v));
    match tok {
        Some(t) => (id(t.bos), id(t.eos)),
        None => (Value::Null, Value::Null),
    }
}

pub fn llama_like(spec: &LlamaSpec, seed: u64) -> SynthModel {
    assert!(
        spec.num_heads.is_multiple_of(spec.num_kv_heads),
        "num_heads must be a multiple of num_kv_heads"
    );
    let init = Init {
        seed,
        std: spec.init_std,
    };
    let h = spec.hidden_size;
    let out_std = spec.init_std / (2.0 * spec.num_layers as f32).sqrt();
    let c = spec.flavor.norm_center();
    let dims = AttnDims {
        hidden: h,
        heads: spec.num_heads,
        kv_heads: spec.num_kv_heads,
        head_dim: spec.head_dim,
        bias: spec.flavor.qkv_bias(),
        qk_norm: spec.flavor.qk_norm(),
        norm_center: c,
    };
    let mut t = vec![init.linear("model.embed_tokens.weight", spec.vocab_size, h)];
    for i in 0..spec.num_layers {
        let p = format!("model.layers.{i}.");
        t.push(init.norm(&format!("{p}input_layernorm.weight"), h, c));
        push_gqa_attention(&mut t, &init, &p, &dims, out_std);
        if spec.flavor == LlamaFlavor::Gemma3 {
            t.push(init.norm(&format!("{p}post_attention_layernorm.weight"), h, 0.0));
            t.push(init.norm(&format!("{p}pre_feedforward_layernorm.weight"), h, 0.0));
            t.push(init.norm(&format!("{p}post_feedforward_layernorm.weight"), h, 0.0));
        } else {
            t.push(init.norm(&format!("{p}post_attention_layernorm.weight"), h, c));
        }
        push_swiglu(
            &mut t,
            &init,
            &format!("{p}mlp."),
            h,
            spec.intermediate_size,
            out_std,
        );
    }
    t.push(init.norm("model.norm.weight", h, c));
    if !spec.tie_embeddings {
        t.push(init.linear("lm_head.weight", spec.vocab_size, h));
    }
    let tokenizer = tokenizer_for(spec.tokenizer, spec.vocab_size, spec.tokenizer_variant);
    let (bos, eos) = special_ids(&tokenizer);
    let mut config = json!({
        "architectures": [spec.flavor.architecture()],
        "model_type": spec.flavor.model_type(),
        "vocab_size": spec.vocab_size,
        "hidden_size": h,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": spec.max_position_embeddings,
        "rms_norm_eps": 1e-5,
        "rope_theta": spec.rope_theta,
        "tie_word_embeddings": spec.tie_embeddings,
        "attention_bias": spec.flavor.qkv_bias(),
        "initializer_range": spec.init_std,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.57.0",
    });
    if spec.flavor == LlamaFlavor::Gemma3 {
        config["hidden_activation"] = json!("gelu_pytorch_tanh");
        config["query_pre_attn_scalar"] = json!(spec.head_dim);
        config["sliding_window"] = json!(512);
        config["rms_norm_eps"] = json!(1e-6);
    }
    SynthModel {
        name: format!("synth-{}-{seed}", spec.flavor.gguf_arch()),
        tensors: t,
        config,
        tokenizer,
        gguf_arch: spec.flavor.gguf_arch().to_string(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoeFlavor {
    /// Qwen3-MoE: `mlp.gate` router, `mlp.experts.E.{gate,up,down}_proj`, q/k norms.
    Qwen3Moe,
    /// Qwen2-MoE: like Qwen3-MoE with q/k/v biases and no q/k norms.
    Qwen2Moe,
    /// Mixtral: `block_sparse_moe.gate`, `block_sparse_moe.experts.E.w1/w2/w3`.
    Mixtral,
}

#[derive(Clone, Debug)]
pub struct MoeSpec {
    pub flavor: MoeFlavor,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub num_experts: usize,
    pub experts_per_token: usize,
    pub moe_intermediate_size: usize,
    /// Qwen-style shared expert (`mlp.shared_expert.*` + `mlp.shared_expert_gate`).
    pub shared_expert_intermediate_size: Option<usize>,
    pub tie_embeddings: bool,
    pub rope_theta: f64,
    pub init_std: f32,
    pub tokenizer: Option<TokenizerKind>,
    pub tokenizer_variant: u64,
}

impl Default for MoeSpec {
    fn default() -> Self {
        MoeSpec {
            flavor: MoeFlavor::Qwen3Moe,
            vocab_size: 512,
            hidden_size: 64,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 16,
            num_experts: 8,
            experts_per_token: 2,
            moe_intermediate_size: 32,
            shared_expert_intermediate_size: None,
            tie_embeddings: false,
            rope_theta: 1_000_000.0,
            init_std: 0.02,
            tokenizer: Some(TokenizerKind::ByteLevelBpe),
            tokenizer_variant: 0,
        }
    }
}

pub fn moe_like(spec: &MoeSpec, seed: u64) -> SynthModel {
    let mixtral = spec.flavor == MoeFlavor::Mixtral;
    assert!(
        !(mixtral && spec.shared_expert_intermediate_size.is_some()),
        "Mixtral has no shared expert"
    );
    let init = Init {
        seed,
        std: spec.init_std,
    };
    let h = spec.hidden_size;
    let out_std = spec.init_std / (2.0 * spec.num_layers as f32).sqrt();
    let dims = AttnDims {
        hidden: h,
        heads: spec.num_heads,
        kv_heads: spec.num_kv_heads,
        head_dim: spec.head_dim,
        bias: spec.flavor == MoeFlavor::Qwen2Moe,
        qk_norm: spec.flavor == MoeFlavor::Qwen3Moe,
        norm_center: 1.0,
    };
    let inter = spec.moe_intermediate_size;
    let mut t = vec![init.linear("model.embed_tokens.weight", spec.vocab_size, h)];
    for i in 0..spec.num_layers {
        let p = format!("model.layers.{i}.");
        t.push(init.norm(&format!("{p}input_layernorm.weight"), h, 1.0));
        push_gqa_attention(&mut t, &init, &p, &dims, out_std);
        t.push(init.norm(&format!("{p}post_attention_layernorm.weight"), h, 1.0));
        if mixtral {
            t.push(init.linear(
                &format!("{p}block_sparse_moe.gate.weight"),
                spec.num_experts,
                h,
            ));
            for e in 0..spec.num_experts {
                let q = format!("{p}block_sparse_moe.experts.{e}.");
                t.push(init.linear(&format!("{q}w1.weight"), inter, h));
                t.push(init.normal(&format!("{q}w2.weight"), vec![h, inter], out_std));
                t.push(init.linear(&format!("{q}w3.weight"), inter, h));
            }
        } else {
            t.push(init.linear(&format!("{p}mlp.gate.weight"), spec.num_experts, h));
            for e in 0..spec.num_experts {
                push_swiglu(
                    &mut t,
                    &init,
                    &format!("{p}mlp.experts.{e}."),
                    h,
                    inter,
                    out_std,
                );
            }
            if let Some(s) = spec.shared_expert_intermediate_size {
                push_swiglu(
                    &mut t,
                    &init,
                    &format!("{p}mlp.shared_expert."),
                    h,
                    s,
                    out_std,
                );
                t.push(init.linear(&format!("{p}mlp.shared_expert_gate.weight"), 1, h));
            }
        }
    }
    t.push(init.norm("model.norm.weight", h, 1.0));
    if !spec.tie_embeddings {
        t.push(init.linear("lm_head.weight", spec.vocab_size, h));
    }
    let tokenizer = tokenizer_for(spec.tokenizer, spec.vocab_size, spec.tokenizer_variant);
    let (bos, eos) = special_ids(&tokenizer);
    let (model_type, arch, gguf) = match spec.flavor {
        MoeFlavor::Qwen3Moe => ("qwen3_moe", "Qwen3MoeForCausalLM", "qwen3moe"),
        MoeFlavor::Qwen2Moe => ("qwen2_moe", "Qwen2MoeForCausalLM", "qwen2moe"),
        MoeFlavor::Mixtral => ("mixtral", "MixtralForCausalLM", "llama"),
    };
    let mut config = json!({
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": spec.vocab_size,
        "hidden_size": h,
        "intermediate_size": inter,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": spec.rope_theta,
        "tie_word_embeddings": spec.tie_embeddings,
        "num_experts_per_tok": spec.experts_per_token,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.57.0",
    });
    if mixtral {
        config["num_local_experts"] = json!(spec.num_experts);
    } else {
        config["num_experts"] = json!(spec.num_experts);
        config["moe_intermediate_size"] = json!(inter);
        config["norm_topk_prob"] = json!(spec.flavor == MoeFlavor::Qwen3Moe);
        config["decoder_sparse_step"] = json!(1);
        config["attention_bias"] = json!(spec.flavor == MoeFlavor::Qwen2Moe);
        if let Some(s) = spec.shared_expert_intermediate_size {
            config["shared_expert_intermediate_size"] = json!(s);
        }
    }
    SynthModel {
        name: format!("synth-{gguf}-moe-{seed}"),
        tensors: t,
        config,
        tokenizer,
        gguf_arch: gguf.to_string(),
    }
}

/// DeepSeek-V3 style: multi-head latent attention and MoE after `first_k_dense` dense layers.
#[derive(Clone, Debug)]
pub struct MlaSpec {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub first_k_dense: usize,
    pub num_heads: usize,
    /// None: a plain `q_proj` (DeepSeek-V2-Lite); Some: `q_a_proj` / `q_b_proj`.
    pub q_lora_rank: Option<usize>,
    pub kv_lora_rank: usize,
    pub qk_nope_head_dim: usize,
    pub qk_rope_head_dim: usize,
    pub v_head_dim: usize,
    pub intermediate_size: usize,
    pub moe_intermediate_size: usize,
    pub n_routed_experts: usize,
    pub n_shared_experts: usize,
    pub experts_per_token: usize,
    /// V3's `mlp.gate.e_score_correction_bias` (absent in V2).
    pub score_correction_bias: bool,
    pub tie_embeddings: bool,
    pub init_std: f32,
    pub tokenizer: Option<TokenizerKind>,
    pub tokenizer_variant: u64,
}

impl Default for MlaSpec {
    fn default() -> Self {
        MlaSpec {
            vocab_size: 512,
            hidden_size: 64,
            num_layers: 3,
            first_k_dense: 1,
            num_heads: 4,
            q_lora_rank: Some(32),
            kv_lora_rank: 32,
            qk_nope_head_dim: 16,
            qk_rope_head_dim: 8,
            v_head_dim: 16,
            intermediate_size: 128,
            moe_intermediate_size: 32,
            n_routed_experts: 8,
            n_shared_experts: 1,
            experts_per_token: 2,
            score_correction_bias: true,
            tie_embeddings: false,
            init_std: 0.02,
            tokenizer: Some(TokenizerKind::ByteLevelBpe),
            tokenizer_variant: 0,
        }
    }
}

pub fn mla_like(spec: &MlaSpec, seed: u64) -> SynthModel {
    let init = Init {
        seed,
        std: spec.init_std,
    };
    let h = spec.hidden_size;
    let out_std = spec.init_std / (2.0 * spec.num_layers as f32).sqrt();
    let qk_head = spec.qk_nope_head_dim + spec.qk_rope_head_dim;
    let mut t = vec![init.linear("model.embed_tokens.weight", spec.vocab_size, h)];
    for i in 0..spec.num_layers {
        let p = format!("model.layers.{i}.");
        let a = format!("{p}self_attn.");
        t.push(init.norm(&format!("{p}input_layernorm.weight"), h, 1.0));
        match spec.q_lora_rank {
            Some(r) => {
                t.push(init.linear(&format!("{a}q_a_proj.weight"), r, h));
                t.push(init.norm(&format!("{a}q_a_layernorm.weight"), r, 1.0));
                t.push(init.linear(&format!("{a}q_b_proj.weight"), spec.num_heads * qk_head, r));
            }
            None => t.push(init.linear(&format!("{a}q_proj.weight"), spec.num_heads * qk_head, h)),
        }
        t.push(init.linear(
            &format!("{a}kv_a_proj_with_mqa.weight"),
            spec.kv_lora_rank + spec.qk_rope_head_dim,
            h,
        ));
        t.push(init.norm(&format!("{a}kv_a_layernorm.weight"), spec.kv_lora_rank, 1.0));
        t.push(init.linear(
            &format!("{a}kv_b_proj.weight"),
            spec.num_heads * (spec.qk_nope_head_dim + spec.v_head_dim),
            spec.kv_lora_rank,
        ));
        t.push(init.normal(
            &format!("{a}o_proj.weight"),
            vec![h, spec.num_heads * spec.v_head_dim],
            out_std,
        ));
        t.push(init.norm(&format!("{p}post_attention_layernorm.weight"), h, 1.0));
        if i < spec.first_k_dense {
            push_swiglu(
                &mut t,
                &init,
                &format!("{p}mlp."),
                h,
                spec.intermediate_size,
                out_std,
            );
        } else {
            t.push(init.linear(&format!("{p}mlp.gate.weight"), spec.n_routed_experts, h));
            if spec.score_correction_bias {
                let name = format!("{p}mlp.gate.e_score_correction_bias");
                t.push(init.normal(&name, vec![spec.n_routed_experts], 0.01));
            }
            for e in 0..spec.n_routed_experts {
                push_swiglu(
                    &mut t,
                    &init,
                    &format!("{p}mlp.experts.{e}."),
                    h,
                    spec.moe_intermediate_size,
                    out_std,
                );
            }
            if spec.n_shared_experts > 0 {
                let s = spec.moe_intermediate_size * spec.n_shared_experts;
                push_swiglu(
                    &mut t,
                    &init,
                    &format!("{p}mlp.shared_experts."),
                    h,
                    s,
                    out_std,
                );
            }
        }
    }
    t.push(init.norm("model.norm.weight", h, 1.0));
    if !spec.tie_embeddings {
        t.push(init.linear("lm_head.weight", spec.vocab_size, h));
    }
    let tokenizer = tokenizer_for(spec.tokenizer, spec.vocab_size, spec.tokenizer_variant);
    let (bos, eos) = special_ids(&tokenizer);
    let config = json!({
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "vocab_size": spec.vocab_size,
        "hidden_size": h,
        "intermediate_size": spec.intermediate_size,
        "moe_intermediate_size": spec.moe_intermediate_size,
        "num_hidden_layers": spec.num_layers,
        "first_k_dense_replace": spec.first_k_dense,
        "num_attention_heads": spec.num_heads,
        "num_key_value_heads": spec.num_heads,
        "q_lora_rank": spec.q_lora_rank,
        "kv_lora_rank": spec.kv_lora_rank,
        "qk_nope_head_dim": spec.qk_nope_head_dim,
        "qk_rope_head_dim": spec.qk_rope_head_dim,
        "v_head_dim": spec.v_head_dim,
        "n_routed_experts": spec.n_routed_experts,
        "n_shared_experts": spec.n_shared_experts,
        "num_experts_per_tok": spec.experts_per_token,
        "moe_layer_freq": 1,
        "n_group": 1,
        "topk_group": 1,
        "topk_method": if spec.score_correction_bias { "noaux_tc" } else { "greedy" },
        "scoring_func": if spec.score_correction_bias { "sigmoid" } else { "softmax" },
        "norm_topk_prob": true,
        "routed_scaling_factor": 2.5,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": spec.tie_embeddings,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.57.0",
    });
    SynthModel {
        name: format!("synth-deepseek2-{seed}"),
        tensors: t,
        config,
        tokenizer,
        gguf_arch: "deepseek2".into(),
    }
}

#[derive(Clone, Debug)]
pub struct BertSpec {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub init_std: f32,
    pub tokenizer_variant: u64,
}

impl Default for BertSpec {
    fn default() -> Self {
        BertSpec {
            vocab_size: 512,
            hidden_size: 64,
            num_layers: 2,
            num_heads: 4,
            intermediate_size: 128,
            max_position_embeddings: 128,
            type_vocab_size: 2,
            init_std: 0.02,
            tokenizer_variant: 0,
        }
    }
}

fn push_layer_norm(out: &mut Vec<SynthTensor>, init: &Init, p: &str, n: usize) {
    out.push(init.norm(&format!("{p}.weight"), n, 1.0));
    out.push(init.normal(&format!("{p}.bias"), vec![n], 0.02));
}

fn push_linear_b(out: &mut Vec<SynthTensor>, init: &Init, p: &str, o: usize, i: usize) {
    out.push(init.linear(&format!("{p}.weight"), o, i));
    out.push(init.bias(&format!("{p}.bias"), o));
}

/// BertModel (no `bert.` prefix), WordPiece tokenizer.
pub fn bert_like(spec: &BertSpec, seed: u64) -> SynthModel {
    let init = Init {
        seed,
        std: spec.init_std,
    };
    let h = spec.hidden_size;
    let mut t = vec![
        init.linear("embeddings.word_embeddings.weight", spec.vocab_size, h),
        init.linear(
            "embeddings.position_embeddings.weight",
            spec.max_position_embeddings,
            h,
        ),
        init.linear(
            "embeddings.token_type_embeddings.weight",
            spec.type_vocab_size,
            h,
        ),
    ];
    push_layer_norm(&mut t, &init, "embeddings.LayerNorm", h);
    for i in 0..spec.num_layers {
        let p = format!("encoder.layer.{i}.");
        for n in ["query", "key", "value"] {
            push_linear_b(&mut t, &init, &format!("{p}attention.self.{n}"), h, h);
        }
        push_linear_b(&mut t, &init, &format!("{p}attention.output.dense"), h, h);
        push_layer_norm(&mut t, &init, &format!("{p}attention.output.LayerNorm"), h);
        push_linear_b(
            &mut t,
            &init,
            &format!("{p}intermediate.dense"),
            spec.intermediate_size,
            h,
        );
        push_linear_b(
            &mut t,
            &init,
            &format!("{p}output.dense"),
            h,
            spec.intermediate_size,
        );
        push_layer_norm(&mut t, &init, &format!("{p}output.LayerNorm"), h);
    }
    push_linear_b(&mut t, &init, "pooler.dense", h, h);
    let tokenizer = Some(make_tokenizer(
        TokenizerKind::WordPiece,
        spec.vocab_size,
        spec.tokenizer_variant,
    ));
    let config = json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": spec.vocab_size,
        "hidden_size": h,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "intermediate_size": spec.intermediate_size,
        "hidden_act": "gelu",
        "max_position_embeddings": spec.max_position_embeddings,
        "type_vocab_size": spec.type_vocab_size,
        "layer_norm_eps": 1e-12,
        "initializer_range": spec.init_std,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.57.0",
    });
    SynthModel {
        name: format!("synth-bert-{seed}"),
        tensors: t,
        config,
        tokenizer,
        gguf_arch: "bert".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_unique_names(m: &SynthModel) {
        let mut names = m.names();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len(), "duplicate names in {}", m.name);
    }

    #[test]
    fn llama_shapes_and_config() {
        let m = llama_like(&LlamaSpec::default(), 1);
        assert_unique_names(&m);
        assert_eq!(m.tensor("model.embed_tokens.weight").shape, vec![512, 64]);
        assert_eq!(
            m.tensor("model.layers.1.self_attn.k_proj.weight").shape,
            vec![32, 64]
        );
        assert_eq!(
            m.tensor("model.layers.0.mlp.down_proj.weight").shape,
            vec![64, 128]
        );
        assert_eq!(m.tensor("lm_head.weight").shape, vec![512, 64]);
        assert_eq!(m.config["num_key_value_heads"], 2);
        assert_eq!(m.tokenizer.as_ref().unwrap().vocab.len(), 512);
        let norm = &m.tensor("model.norm.weight").data;
        assert!(norm.iter().all(|v| (v - 1.0).abs() < 0.15));
        let tied = llama_like(
            &LlamaSpec {
                tie_embeddings: true,
                ..Default::default()
            },
            1,
        );
        assert!(!tied.contains("lm_head.weight"));
        // Per-name streams: the shared tensors of a deeper model are identical.
        let deep = llama_like(
            &LlamaSpec {
                num_layers: 4,
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            deep.tensor("model.layers.1.mlp.up_proj.weight").data.len(),
            128 * 64
        );
        assert_eq!(
            deep.tensor("model.embed_tokens.weight"),
            m.tensor("model.embed_tokens.weight")
        );
    }

    #[test]
    fn matrices_have_requested_std() {
        let m = llama_like(&LlamaSpec::default(), 5);
        let d = &m.tensor("model.layers.0.mlp.up_proj.weight").data;
        let var = d.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / d.len() as f64;
        assert!((var.sqrt() - 0.02).abs() < 0.001, "std {}", var.sqrt());
    }

    #[test]
    fn flavors_have_their_tensors() {
        let q2 = llama_like(
            &LlamaSpec {
                flavor: LlamaFlavor::Qwen2,
                ..Default::default()
            },
            1,
        );
        assert!(q2.contains("model.layers.0.self_attn.q_proj.bias"));
        let q3 = llama_like(
            &LlamaSpec {
                flavor: LlamaFlavor::Qwen3,
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            q3.tensor("model.layers.0.self_attn.k_norm.weight").shape,
            vec![16]
        );
        let g = llama_like(
            &LlamaSpec {
                flavor: LlamaFlavor::Gemma3,
                tie_embeddings: true,
                ..Default::default()
            },
            1,
        );
        assert_unique_names(&g);
        assert!(g.contains("model.layers.1.post_feedforward_layernorm.weight"));
        assert!(
            g.tensor("model.norm.weight")
                .data
                .iter()
                .all(|v| v.abs() < 0.15)
        );
    }

    #[test]
    fn moe_and_mla_shapes() {
        for flavor in [MoeFlavor::Qwen3Moe, MoeFlavor::Qwen2Moe, MoeFlavor::Mixtral] {
            let shared = (flavor == MoeFlavor::Qwen2Moe).then_some(48);
            let m = moe_like(
                &MoeSpec {
                    flavor,
                    shared_expert_intermediate_size: shared,
                    ..Default::default()
                },
                2,
            );
            assert_unique_names(&m);
        }
        let m = moe_like(&MoeSpec::default(), 2);
        assert_eq!(
            m.tensor("model.layers.1.mlp.gate.weight").shape,
            vec![8, 64]
        );
        assert_eq!(
            m.tensor("model.layers.1.mlp.experts.7.down_proj.weight")
                .shape,
            vec![64, 32]
        );
        let d = mla_like(&MlaSpec::default(), 3);
        assert_unique_names(&d);
        assert!(d.contains("model.layers.0.mlp.gate_proj.weight"));
        assert_eq!(
            d.tensor("model.layers.1.self_attn.kv_a_proj_with_mqa.weight")
                .shape,
            vec![40, 64]
        );
        assert_eq!(
            d.tensor("model.layers.1.self_attn.kv_b_proj.weight").shape,
            vec![128, 32]
        );
        assert_eq!(
            d.tensor("model.layers.2.self_attn.q_b_proj.weight").shape,
            vec![96, 32]
        );
        assert_eq!(
            d.tensor("model.layers.2.mlp.gate.e_score_correction_bias")
                .shape,
            vec![8]
        );
        assert_eq!(
            d.tensor("model.layers.2.mlp.shared_experts.up_proj.weight")
                .shape,
            vec![32, 64]
        );
    }

    #[test]
    fn bert_shapes() {
        let b = bert_like(&BertSpec::default(), 4);
        assert_unique_names(&b);
        assert_eq!(
            b.tensor("encoder.layer.1.intermediate.dense.weight").shape,
            vec![128, 64]
        );
        assert_eq!(
            b.tensor("embeddings.token_type_embeddings.weight").shape,
            vec![2, 64]
        );
        assert_eq!(b.tokenizer.as_ref().unwrap().vocab[2], "[CLS]");
    }
}
