//! The canonical vocabulary: components, roles, parameter kinds and the class of one tensor.

use serde::{Deserialize, Serialize};

/// Implements `as_str`, `ALL` and `Display` for a fieldless enum.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The snake_case name, identical to the serde name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The variant whose [`as_str`](Self::as_str) is `name`.
            pub fn from_name(name: &str) -> Option<$ty> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// The part of a model a tensor belongs to. Provenance is judged per component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The text trunk: embeddings, decoder (or encoder) blocks, final norm, LM head.
    LanguageModel,
    VisionEncoder,
    AudioEncoder,
    /// Modality connectors: LLaVA `multi_modal_projector`, Qwen2.5-VL `visual.merger`, ...
    Projector,
    /// The name matched no known layout. Reported, never dropped.
    Unclassified,
}

names!(Component {
    LanguageModel => "language_model",
    VisionEncoder => "vision_encoder",
    AudioEncoder => "audio_encoder",
    Projector => "projector",
    Unclassified => "unclassified",
});

/// What a tensor does inside its component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    TokenEmbedding,
    /// Learned (or, in Whisper-style audio encoders, fixed sinusoidal) absolute positions;
    /// also T5 relative-attention bias tables.
    PositionEmbedding,
    TokenTypeEmbedding,
    /// The patchifying convolution or linear of a vision tower.
    PatchEmbedding,
    /// ViT/CLIP class token.
    ClassEmbedding,
    AttnQ,
    AttnK,
    AttnV,
    AttnO,
    /// Fused Q/K/V: `qkv_proj`, `c_attn`, `W_pack`, `query_key_value`, `attn.qkv`, `in_proj_weight`.
    AttnQkvFused,
    /// MLA (DeepSeek-V2/V3): `q_a_proj`.
    AttnQA,
    /// MLA: `q_b_proj`.
    AttnQB,
    /// MLA: `kv_a_proj_with_mqa`.
    AttnKvA,
    /// MLA: `kv_b_proj`.
    AttnKvB,
    MlpGate,
    MlpUp,
    MlpDown,
    MlpGateUpFused,
    ExpertGate,
    ExpertUp,
    ExpertDown,
    ExpertGateUpFused,
    SharedExpertGate,
    SharedExpertUp,
    SharedExpertDown,
    /// Qwen2-MoE `shared_expert_gate`: the scalar gate of the shared expert.
    SharedExpertRouter,
    /// MoE router (`mlp.gate`, `block_sparse_moe.gate`, `mlp.router`).
    Router,
    /// DeepSeek-V3 / GLM-4 MoE `e_score_correction_bias`.
    RouterBias,
    /// Any normalization weight or bias (LayerNorm, RMSNorm, q_norm, ...).
    Norm,
    LmHead,
    /// Convolutional front end of an audio encoder (Whisper `conv1`/`conv2`).
    ConvStem,
    Pooler,
    Classifier,
    /// Rotary `inv_freq` buffers (not learned).
    RotaryInvFreq,
    /// Fixed mel / STFT bases and windows (not learned).
    AudioFeatureBasis,
    /// Recognized as a buffer or scalar without a canonical role, or not recognized at all.
    Other,
}

names!(Role {
    TokenEmbedding => "token_embedding",
    PositionEmbedding => "position_embedding",
    TokenTypeEmbedding => "token_type_embedding",
    PatchEmbedding => "patch_embedding",
    ClassEmbedding => "class_embedding",
    AttnQ => "attn_q",
    AttnK => "attn_k",
    AttnV => "attn_v",
    AttnO => "attn_o",
    AttnQkvFused => "attn_qkv_fused",
    AttnQA => "attn_q_a",
    AttnQB => "attn_q_b",
    AttnKvA => "attn_kv_a",
    AttnKvB => "attn_kv_b",
    MlpGate => "mlp_gate",
    MlpUp => "mlp_up",
    MlpDown => "mlp_down",
    MlpGateUpFused => "mlp_gate_up_fused",
    ExpertGate => "expert_gate",
    ExpertUp => "expert_up",
    ExpertDown => "expert_down",
    ExpertGateUpFused => "expert_gate_up_fused",
    SharedExpertGate => "shared_expert_gate",
    SharedExpertUp => "shared_expert_up",
    SharedExpertDown => "shared_expert_down",
    SharedExpertRouter => "shared_expert_router",
    Router => "router",
    RouterBias => "router_bias",
    Norm => "norm",
    LmHead => "lm_head",
    ConvStem => "conv_stem",
    Pooler => "pooler",
    Classifier => "classifier",
    RotaryInvFreq => "rotary_inv_freq",
    AudioFeatureBasis => "audio_feature_basis",
    Other => "other",
});

impl Role {
    /// Attention, MLP, expert, embedding and head matrices: the tensors that carry provenance
    /// evidence (many independent random entries at initialization).
    pub const fn is_large_matrix(self) -> bool {
        use Role::*;
        matches!(
            self,
            TokenEmbedding
                | PositionEmbedding
                | PatchEmbedding
                | AttnQ
                | AttnK
                | AttnV
                | AttnO
                | AttnQkvFused
                | AttnQA
                | AttnQB
                | AttnKvA
                | AttnKvB
                | MlpGate
                | MlpUp
                | MlpDown
                | MlpGateUpFused
                | ExpertGate
                | ExpertUp
                | ExpertDown
                | ExpertGateUpFused
                | SharedExpertGate
                | SharedExpertUp
                | SharedExpertDown
                | LmHead
                | ConvStem
        )
    }

    /// Roles that must never decide a verdict: norms (weights near 1 look alike in every
    /// model), router correction biases, and non-learned buffers (identical in independent
    /// models). Biases of any role are low-information too: see
    /// [`TensorClass::is_low_information`].
    pub const fn is_low_information(self) -> bool {
        matches!(
            self,
            Role::Norm | Role::RouterBias | Role::RotaryInvFreq | Role::AudioFeatureBasis
        )
    }

    /// Q, K, V, O, fused QKV and the MLA low-rank projections.
    pub const fn is_attention(self) -> bool {
        use Role::*;
        matches!(
            self,
            AttnQ | AttnK | AttnV | AttnO | AttnQkvFused | AttnQA | AttnQB | AttnKvA | AttnKvB
        )
    }

    /// Dense MLP, routed-expert and shared-expert projections (not routers).
    pub const fn is_mlp(self) -> bool {
        use Role::*;
        matches!(
            self,
            MlpGate
                | MlpUp
                | MlpDown
                | MlpGateUpFused
                | ExpertGate
                | ExpertUp
                | ExpertDown
                | ExpertGateUpFused
                | SharedExpertGate
                | SharedExpertUp
                | SharedExpertDown
        )
    }

    /// Routed-expert projections (per-expert or stacked).
    pub const fn is_expert(self) -> bool {
        use Role::*;
        matches!(self, ExpertGate | ExpertUp | ExpertDown | ExpertGateUpFused)
    }
}

/// Which parameter of a module a tensor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    /// `.weight` (also legacy `.gamma`, `*_weight`, and suffix-less learned parameters such as
    /// `class_embedding` or stacked-expert `gate_up_proj`).
    Weight,
    /// `.bias` (also legacy `.beta`, `*_bias`, `e_score_correction_bias`).
    Bias,
    /// Buffers, quantization side tensors (`weight_scale_inv`, `qzeros`, `scales`, ...),
    /// and anything else.
    Other,
}

names!(Param {
    Weight => "weight",
    Bias => "bias",
    Other => "other",
});

/// The canonical class of one tensor, from its name alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorClass {
    pub component: Component,
    pub role: Role,
    pub param: Param,
    /// Block index within the component (`layers.N`, `h.N`, `blocks.N`, ...).
    pub layer: Option<u32>,
    /// Expert index for per-expert tensors (`experts.N`); `None` for stacked experts.
    pub expert: Option<u32>,
    /// False for buffers that are not trained: rotary `inv_freq`, fixed mel/STFT bases,
    /// `position_ids`, attention-mask buffers, Whisper's sinusoidal encoder positions.
    pub learned: bool,
}

impl TensorClass {
    /// A learned weight of a role that carries provenance evidence.
    pub const fn is_large_matrix(&self) -> bool {
        self.learned && matches!(self.param, Param::Weight) && self.role.is_large_matrix()
    }

    /// Must never decide a verdict: low-information role, any bias, or a non-learned buffer.
    pub const fn is_low_information(&self) -> bool {
        !self.learned || matches!(self.param, Param::Bias) || self.role.is_low_information()
    }

    /// The name matched no known layout (unknown component or unknown role).
    pub fn is_unclassified(&self) -> bool {
        self.component == Component::Unclassified || self.role == Role::Other
    }
}
