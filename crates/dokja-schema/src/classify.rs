//! Tensor name -> [`TensorClass`]. Plain string splitting on `.`, no regular expressions.
//!
//! The name is read in four steps:
//! 1. the parameter suffix (`weight`, `bias`, `gamma`, `beta`, `*_weight`, `*_bias`,
//!    quantization side tensors) is split off;
//! 2. leading wrapper segments are consumed: neutral ones (`model`, `transformer`, `encoder`,
//!    ...), ones that name the language model (`language_model`, `llm`, `text_model`), and ones
//!    that switch the component (`visual`, `vision_tower`, `audio_tower`,
//!    `multi_modal_projector`, `visual.merger`, ...); Whisper's `model.encoder.` is recognized
//!    by what follows it;
//! 3. the first block marker followed by a number (`layers.N`, `h.N`, `layer.N`, `blocks.N`,
//!    `block.N`, `resblocks.N`) gives the layer, `experts.N` the expert;
//! 4. the remaining module path gives the role.

use crate::family::Family;
use crate::types::{Component, Param, Role, TensorClass};

/// Classifies a tensor by its (Hugging Face style) name alone.
///
/// Never fails: names that match nothing come back as [`Component::Unclassified`] and/or
/// [`Role::Other`], for the caller to report.
pub fn classify(name: &str) -> TensorClass {
    classify_impl(name, None)
}

/// Like [`classify`], with the declared model family as a hint where the name alone is
/// ambiguous:
/// - [`Family::Vit`]: recognized names without a component prefix (a standalone `ViTModel`'s
///   `encoder.layer.N.mlp.fc1`, `layernorm`, `pooler`) are the vision encoder;
/// - any declared family other than Whisper (or an `Other` whose name mentions whisper, audio,
///   speech or omni) keeps `model.encoder.*` in the language model (BART, Marian, NLLB);
/// - `Other(..)` naming a GLM/ChatGLM: `dense_h_to_4h` is a fused gate+up projection.
pub fn classify_with_family(name: &str, family: &Family) -> TensorClass {
    classify_impl(name, Some(family))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Implicit {
    /// No parameter suffix: decided from the role.
    Unknown,
    Known(Param),
}

/// Segments that are only containers: consumed without changing the component.
const NEUTRAL_WRAPPERS: &[&str] = &[
    "model",
    "transformer",
    "encoder",
    "decoder",
    "bert",
    "roberta",
    "xlm_roberta",
    "gpt_neox",
    "base_model",
    "thinker",
    "backbone",
    "module",
    "_orig_mod",
];

/// Segments that name the text model.
const LM_WRAPPERS: &[&str] = &["language_model", "llm", "text_model", "text_decoder", "lm"];

const VISION_WRAPPERS: &[&str] = &[
    "visual",
    "vision_tower",
    "vision_model",
    "vision_encoder",
    "vision",
    "vit",
    "vpm",
    "image_encoder",
    "img_processor",
    "vision_embed_tokens",
    "vision_backbone",
    "vision_transformer",
    "visual_encoder",
    "image_tower",
    "vision_tower_high",
    "vision_tower_low",
    "sam_model",
];

const AUDIO_WRAPPERS: &[&str] = &[
    "audio_tower",
    "audio_encoder",
    "audio_model",
    "audio",
    "apm",
    "whisper_encoder",
    "speech_encoder",
    "audio_backbone",
];

const PROJECTOR_WRAPPERS: &[&str] = &[
    "multi_modal_projector",
    "mm_projector",
    "connector",
    "audio_projector",
    "audio_projection",
    "vision_projection",
    "visual_projection",
    "text_projection",
    "img_projection",
    "vision_adapter",
    "resampler",
    "aligner",
    "projector",
    "mm_proj",
    "mm_projection",
    "multi_modal_proj",
    "speech_projector",
    "audio_adapter",
    "embed_vision",
    "embed_audio",
    "mlp1",
];

/// Only a projector when inside a vision tower (`visual.merger`, Qwen3-VL deepstack mergers).
const VISION_PROJECTOR_WRAPPERS: &[&str] = &["merger", "deepstack_merger_list"];

const LAYER_MARKERS: &[&str] = &["layers", "h", "layer", "blocks", "block", "resblocks"];

/// Trailing segments of bitsandbytes quantization state after `.weight`.
fn is_quant_state(s: &str) -> bool {
    matches!(
        s,
        "absmax" | "quant_map" | "quant_state" | "nested_absmax" | "nested_quant_map" | "SCB"
    ) || s.starts_with("bitsandbytes__")
}

/// Quantization side tensors stored in place of (or next to) `.weight`.
fn is_quant_leaf(s: &str) -> bool {
    matches!(
        s,
        "weight_scale_inv"
            | "weight_scale"
            | "weight_scale_2"
            | "input_scale"
            | "weight_global_scale"
            | "input_global_scale"
            | "weight_packed"
            | "weight_shape"
            | "weight_zero_point"
            | "weight_g_idx"
            | "qweight"
            | "qzeros"
            | "scales"
            | "g_idx"
            | "SCB"
    )
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_num(s: &str) -> Option<u32> {
    if is_num(s) { s.parse().ok() } else { None }
}

/// Leaves that end in `_bias` / `_weight` but are whole parameter names.
fn is_whole_leaf(s: &str) -> bool {
    matches!(
        s,
        "e_score_correction_bias"
            | "masked_bias"
            | "relative_attention_bias"
            | "logit_bias"
            | "position_bias"
            | "attention_bias"
            | "attn_bias"
    )
}

/// Splits the parameter suffix off. Returns the module path and the parameter.
fn split_param<'a>(segs: &[&'a str]) -> (Vec<&'a str>, Implicit) {
    let n = segs.len();
    // `x.weight`, `x.bias`, legacy TF `x.gamma` / `x.beta`; bitsandbytes `x.weight.absmax`.
    if let Some(i) = segs
        .iter()
        .rposition(|s| matches!(*s, "weight" | "bias" | "gamma" | "beta"))
    {
        if i > 0 && i == n - 1 {
            let p = match segs[i] {
                "weight" | "gamma" => Param::Weight,
                _ => Param::Bias,
            };
            return (segs[..i].to_vec(), Implicit::Known(p));
        }
        if i > 0 && segs[i + 1..].iter().all(|s| is_quant_state(s)) {
            return (segs[..i].to_vec(), Implicit::Known(Param::Other));
        }
    }
    let last = segs[n - 1];
    if n > 1 && is_quant_leaf(last) {
        return (segs[..n - 1].to_vec(), Implicit::Known(Param::Other));
    }
    if !is_whole_leaf(last) {
        let mut body = segs[..n - 1].to_vec();
        for (suffix, p) in [
            ("_weight", Param::Weight),
            ("_bias", Param::Bias),
            ("_blocks", Param::Other),
            ("_scales", Param::Other),
        ] {
            if let Some(stem) = last.strip_suffix(suffix).filter(|s| !s.is_empty()) {
                body.push(stem);
                return (body, Implicit::Known(p));
            }
        }
    }
    (segs.to_vec(), Implicit::Unknown)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wrapper {
    Neutral,
    Lm,
    Vision,
    Audio,
    Projector,
}

fn wrapper_kind(s: &str, current: Option<Component>) -> Option<Wrapper> {
    if PROJECTOR_WRAPPERS.contains(&s) {
        return Some(Wrapper::Projector);
    }
    if VISION_PROJECTOR_WRAPPERS.contains(&s) && current == Some(Component::VisionEncoder) {
        return Some(Wrapper::Projector);
    }
    if VISION_WRAPPERS.contains(&s) || s.starts_with("siglip") {
        return Some(Wrapper::Vision);
    }
    if AUDIO_WRAPPERS.contains(&s) {
        return Some(Wrapper::Audio);
    }
    if LM_WRAPPERS.contains(&s) {
        return Some(Wrapper::Lm);
    }
    if NEUTRAL_WRAPPERS.contains(&s) {
        return Some(Wrapper::Neutral);
    }
    None
}

/// Whisper-style audio encoder without an audio wrapper: HF `model.encoder.{conv1, conv2,
/// embed_positions, layers, layer_norm}` and openai `encoder.{conv1, conv2,
/// positional_embedding, blocks, ln_post}`. Returns how many segments the prefix spans.
fn whisper_encoder_prefix(body: &[&str]) -> Option<usize> {
    match body {
        ["model", "encoder", next, ..]
            if matches!(
                *next,
                "conv1" | "conv2" | "embed_positions" | "layers" | "layer_norm"
            ) =>
        {
            Some(2)
        }
        ["encoder", next, ..]
            if matches!(
                *next,
                "conv1" | "conv2" | "positional_embedding" | "blocks" | "ln_post"
            ) =>
        {
            Some(1)
        }
        _ => None,
    }
}

/// The outcome of role matching.
struct RoleMatch {
    role: Role,
    learned: bool,
    /// A component the name itself implies (vision-only or audio-only tensors).
    implied: Option<Component>,
    /// Forces the parameter kind (buffers).
    param: Option<Param>,
}

impl RoleMatch {
    fn new(role: Role) -> Self {
        RoleMatch {
            role,
            learned: true,
            implied: None,
            param: None,
        }
    }
    fn buffer(role: Role) -> Self {
        RoleMatch {
            role,
            learned: false,
            implied: None,
            param: Some(Param::Other),
        }
    }
    fn implies(mut self, c: Component) -> Self {
        self.implied = Some(c);
        self
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mlp {
    Gate,
    Up,
    Down,
    GateUp,
}

struct Ctx<'a> {
    /// Module path after wrappers, block marker and expert index removed.
    path: Vec<&'a str>,
    component: Option<Component>,
    /// Wrapper segments consumed (in order).
    wrappers: Vec<&'a str>,
    /// The block marker that gave the layer (`layers`, `h`, ...).
    marker: Option<&'a str>,
    layer: Option<u32>,
    in_experts: bool,
    in_shared: bool,
    param: Implicit,
}

impl Ctx<'_> {
    fn has(&self, s: &str) -> bool {
        self.path.contains(&s)
    }
    fn has_any(&self, set: &[&str]) -> bool {
        self.path.iter().any(|p| set.contains(p))
    }
    fn leaf(&self) -> &str {
        self.path.last().copied().unwrap_or("")
    }
    fn parent(&self) -> &str {
        let n = self.path.len();
        if n >= 2 { self.path[n - 2] } else { "" }
    }
    fn is_bias(&self) -> bool {
        self.param == Implicit::Known(Param::Bias)
    }
}

const ATTN_CONTAINERS: &[&str] = &[
    "self_attn",
    "attn",
    "attention",
    "self_attention",
    "SelfAttention",
    "self",
    "attn_block",
];

const CROSS_ATTN_CONTAINERS: &[&str] = &[
    "encoder_attn",
    "cross_attn",
    "crossattention",
    "cross_attention",
    "EncDecAttention",
    "xattn",
];

const SHARED_EXPERT: &[&str] = &["shared_expert", "shared_experts", "shared_mlp"];

const MOE_CONTAINERS: &[&str] = &[
    "mlp",
    "block_sparse_moe",
    "moe",
    "feed_forward",
    "ffn",
    "moe_block",
    "sparse_moe",
];

fn is_norm_name(s: &str) -> bool {
    s == "ln"
        || s.starts_with("ln_")
        || s.ends_with("_ln")
        || s.to_ascii_lowercase().contains("norm")
        || matches!(s, "running_mean" | "running_var")
}

fn classify_impl(name: &str, family: Option<&Family>) -> TensorClass {
    let segs: Vec<&str> = name.split('.').filter(|s| !s.is_empty()).collect();
    if segs.is_empty() {
        return unclassified();
    }
    let (body, param) = split_param(&segs);

    // 2. Wrappers.
    let mut component: Option<Component> = None;
    let mut i = 0;
    let mut wrappers = Vec::new();
    // A declared non-audio family (BART, Marian, ...) keeps `model.encoder.` in the text model.
    let whisper_allowed = match family {
        None | Some(Family::Whisper) => true,
        Some(Family::Other(f)) => {
            let f = f.to_ascii_lowercase();
            f.contains("whisper")
                || f.contains("audio")
                || f.contains("speech")
                || f.contains("omni")
        }
        Some(_) => false,
    };
    if let Some(k) = whisper_encoder_prefix(&body).filter(|_| whisper_allowed) {
        component = Some(Component::AudioEncoder);
        wrappers.extend_from_slice(&body[..k]);
        i = k;
    }
    // A wrapper is consumed only when something follows it; otherwise it is the module itself
    // (`mm_projector.weight`, `visual_projection.weight`).
    while i + 1 < body.len() {
        let s = body[i];
        let Some(kind) = wrapper_kind(s, component) else {
            break;
        };
        match kind {
            Wrapper::Neutral => {}
            Wrapper::Lm => {
                if component.is_none() {
                    component = Some(Component::LanguageModel);
                }
            }
            Wrapper::Vision => {
                if component != Some(Component::Projector) {
                    component = Some(Component::VisionEncoder);
                }
            }
            Wrapper::Audio => {
                if component != Some(Component::Projector) {
                    component = Some(Component::AudioEncoder);
                }
            }
            Wrapper::Projector => component = Some(Component::Projector),
        }
        wrappers.push(s);
        i += 1;
    }
    let rest = &body[i..];

    // 3. Layer and expert.
    let mut path: Vec<&str> = Vec::with_capacity(rest.len());
    let mut layer = None;
    let mut marker = None;
    let mut expert = None;
    let mut in_experts = false;
    let mut j = 0;
    while j < rest.len() {
        let s = rest[j];
        let next = rest.get(j + 1).copied();
        if layer.is_none()
            && LAYER_MARKERS.contains(&s)
            && let Some(n) = next.and_then(parse_num)
        {
            layer = Some(n);
            marker = Some(s);
            j += 2;
            continue;
        }
        if !in_experts && matches!(s, "experts" | "local_experts") {
            in_experts = true;
            if let Some(n) = next.and_then(parse_num) {
                expert = Some(n);
                j += 2;
            } else {
                j += 1;
            }
            continue;
        }
        path.push(s);
        j += 1;
    }
    // A wrapper name as the whole remaining path: the wrapper is the module.
    if path.len() == 1 && i == body.len() - 1 {
        match wrapper_kind(path[0], component) {
            Some(Wrapper::Projector) => component = Some(Component::Projector),
            Some(Wrapper::Vision) if component != Some(Component::Projector) => {
                component = Some(Component::VisionEncoder)
            }
            Some(Wrapper::Audio) if component != Some(Component::Projector) => {
                component = Some(Component::AudioEncoder)
            }
            _ => {}
        }
    }
    let in_shared = path.iter().any(|p| SHARED_EXPERT.contains(p));
    let ctx = Ctx {
        path,
        component,
        wrappers,
        marker,
        layer,
        in_experts,
        in_shared,
        param,
    };

    let m = role_of(&ctx, family);
    let recognized = m.is_some();
    let m = m.unwrap_or(RoleMatch::new(Role::Other));

    // Component.
    let hinted = family.and_then(|f| match f {
        Family::Vit => Some(Component::VisionEncoder),
        _ => None,
    });
    // Standalone ViT/DINOv2 blocks carry no prefix but have vision-only names.
    let vision_hint = ctx.path.windows(2).any(|w| w == ["attention", "attention"])
        || ctx.has_any(&[
            "layernorm_before",
            "layernorm_after",
            "layer_scale1",
            "layer_scale2",
        ]);
    let implied = m
        .implied
        .or(vision_hint.then_some(Component::VisionEncoder));
    let component = match (ctx.component, implied, hinted) {
        // Learned image separators sit in the vision wrapper but belong to the connector.
        (_, Some(Component::Projector), _) => Component::Projector,
        (Some(c), _, _) => c,
        (None, Some(c), _) => c,
        (None, None, Some(c)) if recognized => c,
        (None, None, _) if recognized || ctx.layer.is_some() => Component::LanguageModel,
        _ => Component::Unclassified,
    };

    let param = match (m.param, ctx.param) {
        (Some(p), _) => p,
        (None, Implicit::Known(p)) => p,
        (None, Implicit::Unknown) => {
            if m.learned && m.role != Role::Other {
                Param::Weight
            } else {
                Param::Other
            }
        }
    };
    TensorClass {
        component,
        role: m.role,
        param,
        layer: ctx.layer,
        expert: if ctx.in_experts { expert } else { None },
        learned: m.learned,
    }
}

fn unclassified() -> TensorClass {
    TensorClass {
        component: Component::Unclassified,
        role: Role::Other,
        param: Param::Other,
        layer: None,
        expert: None,
        learned: true,
    }
}

fn lift(kind: Mlp, ctx: &Ctx, stacked_experts: bool) -> Role {
    use Mlp::*;
    if ctx.in_shared {
        return match kind {
            Gate => Role::SharedExpertGate,
            Up => Role::SharedExpertUp,
            Down => Role::SharedExpertDown,
            // No canonical role for a fused shared expert (Granite `shared_mlp.input_linear`).
            GateUp => Role::Other,
        };
    }
    if ctx.in_experts || stacked_experts {
        return match kind {
            Gate => Role::ExpertGate,
            Up => Role::ExpertUp,
            Down => Role::ExpertDown,
            GateUp => Role::ExpertGateUpFused,
        };
    }
    match kind {
        Gate => Role::MlpGate,
        Up => Role::MlpUp,
        Down => Role::MlpDown,
        GateUp => Role::MlpGateUpFused,
    }
}

fn role_of(ctx: &Ctx, family: Option<&Family>) -> Option<RoleMatch> {
    use Role::*;
    let leaf = ctx.leaf();
    let parent = ctx.parent();
    let top = ctx.layer.is_none();

    if ctx.path.is_empty() {
        return None;
    }

    // Buffers and special leaves, anywhere.
    match leaf {
        "inv_freq" => return Some(RoleMatch::buffer(RotaryInvFreq)),
        "cos_cached" | "sin_cached" | "_cos_cached" | "_sin_cached" | "cos_cache" | "sin_cache" => {
            return Some(RoleMatch::buffer(Other));
        }
        "position_ids"
        | "token_type_ids"
        | "masked_bias"
        | "attn_mask"
        | "causal_mask"
        | "num_batches_tracked" => {
            return Some(RoleMatch::buffer(Other));
        }
        "mel_filters"
        | "mel_basis"
        | "melscale_fbanks"
        | "mel_fb"
        | "mel_filterbank"
        | "fbank"
        | "filterbank"
        | "forward_basis"
        | "inverse_basis"
        | "forward_basis_buffer"
        | "stft_basis"
        | "dft_basis" => {
            return Some(RoleMatch::buffer(AudioFeatureBasis).implies(Component::AudioEncoder));
        }
        "window"
            if matches!(
                parent,
                "stft" | "spectrogram" | "feature_extractor" | "mel" | "preprocessor"
            ) || ctx.component == Some(Component::AudioEncoder) =>
        {
            return Some(RoleMatch::buffer(AudioFeatureBasis).implies(Component::AudioEncoder));
        }
        "e_score_correction_bias" => {
            let mut m = RoleMatch::new(RouterBias);
            m.param = Some(Param::Bias);
            return Some(m);
        }
        "class_embedding" | "cls_token" => {
            return Some(RoleMatch::new(ClassEmbedding).implies(Component::VisionEncoder));
        }
        "mask_token" | "register_tokens" | "reg_token" | "dist_token" => {
            return Some(RoleMatch::new(Other).implies(Component::VisionEncoder));
        }
        "image_newline" | "glb_GN" | "sub_GN" | "view_seperator" | "image_newline_embed" => {
            return Some(RoleMatch::new(Other).implies(Component::Projector));
        }
        // GPT-OSS attention sinks: learned per-head scalars.
        "sinks" => return Some(RoleMatch::new(Other)),
        "relative_position_index" => return Some(RoleMatch::buffer(Other)),
        "relative_attention_bias"
        | "rel_pos_h"
        | "rel_pos_w"
        | "rel_pos_bias"
        | "relative_position_bias_table" => {
            return Some(RoleMatch::new(PositionEmbedding));
        }
        _ => {}
    }
    // Attention-mask buffers: GPT-2/GPT-J `attn.bias`, GPT-Neo `attn.attention.bias`,
    // GPT-NeoX `attention.bias` (the module is the attention block itself, not a linear).
    if ctx.is_bias()
        && matches!(leaf, "attn" | "attention" | "self_attention")
        && ctx.layer.is_some()
    {
        return Some(RoleMatch::buffer(Other));
    }

    let cross = ctx.has_any(CROSS_ATTN_CONTAINERS);

    // Norms.
    if is_norm_name(leaf) {
        return Some(RoleMatch::new(Norm));
    }
    // InternVL `mlp1` = Sequential(LayerNorm, Linear, GELU, Linear).
    if ctx.wrappers.last() == Some(&"mlp1") && ctx.path.len() == 1 {
        return match leaf {
            "0" => Some(RoleMatch::new(Norm)),
            "1" => Some(RoleMatch::new(MlpUp)),
            "3" => Some(RoleMatch::new(MlpDown)),
            _ => None,
        };
    }

    // Embeddings.
    if matches!(
        leaf,
        "embed_tokens"
            | "wte"
            | "word_embeddings"
            | "tok_embeddings"
            | "embed_in"
            | "token_embedding"
            | "tok_emb"
    ) || (matches!(leaf, "shared" | "embeddings" | "embedding") && top && ctx.path.len() == 1)
    {
        return Some(RoleMatch::new(TokenEmbedding));
    }
    if matches!(
        leaf,
        "wpe"
            | "position_embeddings"
            | "position_embedding"
            | "embed_positions"
            | "pos_embed"
            | "pos_emb"
            | "absolute_pos_embed"
            | "pos_embedding"
    ) || leaf.starts_with("positional_embedding")
        || ctx.has("pos_conv_embed")
    {
        let mut m = RoleMatch::new(PositionEmbedding);
        // Whisper-family audio encoders use frozen sinusoidal positions.
        if ctx.component == Some(Component::AudioEncoder)
            && matches!(leaf, "embed_positions" | "positional_embedding")
        {
            m.learned = false;
        }
        return Some(m);
    }
    if leaf == "token_type_embeddings" {
        return Some(RoleMatch::new(TokenTypeEmbedding));
    }
    if ctx.has_any(&[
        "patch_embedding",
        "patch_embeddings",
        "patch_embed",
        "patch_conv",
        "patch_embedder",
    ]) {
        return Some(RoleMatch::new(PatchEmbedding).implies(Component::VisionEncoder));
    }

    // Heads.
    if matches!(leaf, "lm_head" | "embed_out" | "output_layer")
        || (leaf == "output" && top && ctx.path.len() == 1)
        || (leaf == "proj_out" && top && ctx.path.len() == 1 && ctx.component.is_none())
        || (leaf == "head" && parent == "shared_head")
        || (ctx.path.first() == Some(&"cls")
            && (leaf == "decoder" || (leaf == "predictions" && ctx.is_bias())))
    {
        return Some(RoleMatch::new(LmHead));
    }
    if ctx.has("pooler") {
        return Some(RoleMatch::new(Pooler));
    }
    if top && ctx.component == Some(Component::VisionEncoder) && ctx.path.first() == Some(&"head") {
        // SigLIP attention-pooling head (`head.probe`, `head.attention.*`, `head.mlp.*`);
        // a bare `head.weight` is a classifier.
        return Some(RoleMatch::new(if ctx.path.len() > 1 {
            Pooler
        } else {
            Classifier
        }));
    }
    if matches!(
        leaf,
        "classifier" | "score" | "qa_outputs" | "seq_relationship"
    ) || ctx.path.first() == Some(&"cls")
        || ctx.path.first() == Some(&"classifier")
        || (leaf == "head" && top && ctx.path.len() == 1)
    {
        return Some(RoleMatch::new(Classifier));
    }

    // Convolutional stems.
    if top {
        let conv = ctx
            .path
            .iter()
            .any(|p| p.starts_with("conv") || p.starts_with("subsampl"));
        match ctx.component {
            Some(Component::AudioEncoder) if conv || leaf == "conv_out" => {
                return Some(RoleMatch::new(ConvStem));
            }
            Some(Component::VisionEncoder) if leaf == "conv1" && ctx.path.len() == 1 => {
                return Some(RoleMatch::new(PatchEmbedding));
            }
            _ => {}
        }
    }

    // Routers (before MLP names: `mlp.gate` is a router, `mlp.gate_proj` a projection).
    if leaf == "shared_expert_gate" {
        return Some(RoleMatch::new(SharedExpertRouter));
    }
    if !ctx.in_experts && !ctx.in_shared {
        if leaf == "gate" && MOE_CONTAINERS.contains(&parent) {
            return Some(RoleMatch::new(Router));
        }
        if leaf == "router"
            || parent == "router"
            || leaf == "gate_network"
            || (leaf == "wg" && parent == "gate")
        {
            return Some(RoleMatch::new(Router));
        }
    }

    // Attention.
    let in_attn = ctx.has_any(ATTN_CONTAINERS);
    let attn_role = match leaf {
        "q_proj" => Some(AttnQ),
        "k_proj" => Some(AttnK),
        "v_proj" => Some(AttnV),
        "o_proj" => Some(AttnO),
        "qkv_proj" | "W_pack" | "query_key_value" | "c_attn" | "Wqkv" | "wqkv" => {
            Some(AttnQkvFused)
        }
        // `in_proj_weight` / `in_proj_bias` of torch MultiheadAttention (Mamba's
        // `in_proj.weight` is not attention).
        "in_proj" if ctx.param != Implicit::Unknown && in_attn => Some(AttnQkvFused),
        "q_a_proj" => Some(AttnQA),
        "q_b_proj" => Some(AttnQB),
        "kv_a_proj_with_mqa" => Some(AttnKvA),
        "kv_b_proj" => Some(AttnKvB),
        _ if !in_attn => None,
        "query" | "q" | "wq" | "linear_q" | "to_q" => Some(AttnQ),
        "key" | "k" | "wk" | "linear_k" | "to_k" => Some(AttnK),
        "value" | "v" | "wv" | "linear_v" | "to_v" => Some(AttnV),
        "out_proj" | "dense" | "c_proj" | "proj" | "out" | "o" | "wo" | "linear_out" | "to_out" => {
            Some(AttnO)
        }
        "qkv" => Some(AttnQkvFused),
        _ => None,
    };
    if let Some(r) = attn_role {
        // Cross-attention (Whisper decoder `encoder_attn`, Mllama `cross_attn`, T5
        // `EncDecAttention`) has no canonical role: it would collide with self-attention.
        return Some(RoleMatch::new(if cross { Other } else { r }));
    }
    if in_attn {
        // An attention block member we do not know.
        return None;
    }

    // MLP.
    let chatglm = ctx.wrappers.contains(&"encoder")
        && ctx.wrappers.contains(&"transformer")
        && ctx.marker == Some("layers");
    let qwen1 = ctx.marker == Some("h") && parent == "mlp" && matches!(leaf, "w1" | "w2");
    let fused_h_to_4h = chatglm || matches!(family, Some(Family::Other(f)) if f.contains("glm"));
    let kind = match leaf {
        "gate_proj" | "c_fc_0" | "wi_0" => Some(Mlp::Gate),
        "up_proj" | "c_fc_1" | "wi_1" | "c_fc" | "fc1" | "linear_fc1" | "wi" | "fc_in" => {
            Some(Mlp::Up)
        }
        "down_proj" | "fc2" | "linear_fc2" | "dense_4h_to_h" | "fc_out" | "output_linear" => {
            Some(Mlp::Down)
        }
        "gate_up_proj" | "input_linear" => Some(Mlp::GateUp),
        "dense_h_to_4h" => Some(if fused_h_to_4h { Mlp::GateUp } else { Mlp::Up }),
        // Qwen (v1): `a1 = w1(x); a2 = w2(x); c_proj(a1 * silu(a2))`.
        "w1" if qwen1 => Some(Mlp::Up),
        "w2" if qwen1 => Some(Mlp::Gate),
        // Llama/Mixtral/InternLM2 semantics: w1 = gate, w3 = up, w2 = down.
        "w1" => Some(Mlp::Gate),
        "w3" => Some(Mlp::Up),
        "w2" => Some(Mlp::Down),
        // DBRX stacked experts: w1 = gate, v1 = up, w2 = down.
        "v1" if ctx.in_experts => Some(Mlp::Up),
        "c_proj" if parent == "mlp" => Some(Mlp::Down),
        "wo" if matches!(parent, "DenseReluDense" | "mlp" | "ffn" | "feed_forward") => {
            Some(Mlp::Down)
        }
        "dense" if parent == "intermediate" => Some(Mlp::Up),
        "dense" if parent == "output" => Some(Mlp::Down),
        "0" if parent == "mlp" => Some(Mlp::Up),
        "2" if parent == "mlp" => Some(Mlp::Down),
        _ => None,
    };
    if let Some(k) = kind {
        // Granite-MoE stores stacked experts directly under `block_sparse_moe`.
        let granite =
            matches!(leaf, "input_linear" | "output_linear") && parent == "block_sparse_moe";
        return Some(RoleMatch::new(lift(k, ctx, granite)));
    }

    // Projectors: first linear = up, last = down; a single linear projection = up.
    if ctx.component == Some(Component::Projector) {
        let r = match leaf {
            "linear_1" | "0" => Some(MlpUp),
            "linear_2" | "2" => Some(MlpDown),
            "linear"
            | "proj"
            | "projection"
            | "mm_input_projection"
            | "modality_projection"
            | "img_projection"
            | "mm_projector"
            | "visual_projection"
            | "text_projection"
            | "vision_projection"
            | "audio_projection"
            | "embedding_projection" => Some(MlpUp),
            // A bare wrapper name as the module: `model.mm_projector.weight` (LLaVA v1),
            // Mllama `multi_modal_projector.weight`.
            _ if PROJECTOR_WRAPPERS.contains(&leaf) && leaf != "mlp1" => Some(MlpUp),
            _ => None,
        };
        return r.map(RoleMatch::new);
    }
    None
}
