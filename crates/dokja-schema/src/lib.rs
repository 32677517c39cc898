//! The canonical model schema: Hugging Face-style tensor names mapped to components
//! (language model, vision encoder, audio encoder, projector) and roles (attention Q/K/V/O,
//! MLP gate/up/down, experts, embeddings, norms, ...), across model families.
//!
//! GGUF names are translated to Hugging Face names upstream; this crate sees only HF names.
//!
//! ```
//! use dokja_schema::{classify, Component, Param, Role};
//!
//! let c = classify("model.layers.3.mlp.experts.17.gate_proj.weight");
//! assert_eq!(c.component, Component::LanguageModel);
//! assert_eq!(c.role, Role::ExpertGate);
//! assert_eq!((c.layer, c.expert, c.param), (Some(3), Some(17), Param::Weight));
//!
//! let v = classify("visual.blocks.0.attn.qkv.bias");
//! assert_eq!((v.component, v.role, v.param), (Component::VisionEncoder, Role::AttnQkvFused, Param::Bias));
//!
//! let buffer = classify("model.layers.0.self_attn.rotary_emb.inv_freq");
//! assert!(!buffer.learned);
//! ```
//!
//! Conventions worth knowing:
//! - MLP semantics are canonical, not literal: Mixtral/Llama-original `w1` = gate, `w3` = up,
//!   `w2` = down; EXAONE `c_fc_0` = gate, `c_fc_1` = up; GPT-2 `c_fc` / `fc1` / BERT
//!   `intermediate.dense` = up; `fc2` / `c_proj` / BERT `output.dense` = down; Qwen (v1)
//!   `mlp.w1` = up, `mlp.w2` = gate; ChatGLM/GLM-4 (original layout) `dense_h_to_4h` = fused
//!   gate+up, elsewhere (Falcon, BLOOM, GPT-NeoX) = up.
//! - Projectors: the first linear is `MlpUp`, the last `MlpDown`; a single linear projection
//!   (Gemma 3 `mm_input_projection_weight`, Qwen2-Audio `linear`) is `MlpUp`.
//! - Cross-attention (Whisper decoder `encoder_attn`, Mllama `cross_attn`, T5
//!   `EncDecAttention`) is `Role::Other`, so it never collides with self-attention.
//! - Whisper's `model.encoder.*` is the audio encoder; `model.decoder.*` is a language model.
//!   Its encoder `embed_positions` is frozen sinusoidal, hence `learned: false`.

mod classify;
mod family;
mod types;

pub use classify::{classify, classify_with_family};
pub use family::{Family, family_from_config, family_from_tensor_names, tied_embeddings};
pub use types::{Component, Param, Role, TensorClass};
