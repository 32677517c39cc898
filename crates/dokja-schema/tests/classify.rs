//! Table-driven classification tests, one per family, with real checkpoint tensor names.

use dokja_schema::Role::*;
use dokja_schema::{Component, Param, Role, TensorClass, classify};

const LM: Component = Component::LanguageModel;
const VIS: Component = Component::VisionEncoder;
const AUD: Component = Component::AudioEncoder;
const PRJ: Component = Component::Projector;
const UNC: Component = Component::Unclassified;
const W: Param = Param::Weight;
const B: Param = Param::Bias;
const PO: Param = Param::Other;
const N: Option<u32> = None;
/// Learned / not learned.
const Y: bool = true;
const NL: bool = false;

type Row = (
    &'static str,
    Component,
    Role,
    Param,
    Option<u32>,
    Option<u32>,
    bool,
);

fn check(rows: &[Row]) {
    let mut failures = Vec::new();
    for &(name, component, role, param, layer, expert, learned) in rows {
        let want = TensorClass {
            component,
            role,
            param,
            layer,
            expert,
            learned,
        };
        let got = classify(name);
        if got != want {
            failures.push(format!("{name}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} misclassified:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
#[rustfmt::skip]
fn llama_mistral() {
    check(&[
        ("model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("model.layers.0.self_attn.q_proj.weight", LM, AttnQ, W, Some(0), N, Y),
        ("model.layers.0.self_attn.k_proj.weight", LM, AttnK, W, Some(0), N, Y),
        ("model.layers.0.self_attn.v_proj.weight", LM, AttnV, W, Some(0), N, Y),
        ("model.layers.31.self_attn.o_proj.weight", LM, AttnO, W, Some(31), N, Y),
        ("model.layers.7.mlp.gate_proj.weight", LM, MlpGate, W, Some(7), N, Y),
        ("model.layers.7.mlp.up_proj.weight", LM, MlpUp, W, Some(7), N, Y),
        ("model.layers.7.mlp.down_proj.weight", LM, MlpDown, W, Some(7), N, Y),
        ("model.layers.7.input_layernorm.weight", LM, Norm, W, Some(7), N, Y),
        ("model.layers.7.post_attention_layernorm.weight", LM, Norm, W, Some(7), N, Y),
        ("model.norm.weight", LM, Norm, W, N, N, Y),
        ("lm_head.weight", LM, LmHead, W, N, N, Y),
        ("model.layers.0.self_attn.rotary_emb.inv_freq", LM, RotaryInvFreq, PO, Some(0), N, NL),
        // Original Meta layout (consolidated.*.pth converted to safetensors).
        ("tok_embeddings.weight", LM, TokenEmbedding, W, N, N, Y),
        ("layers.5.attention.wq.weight", LM, AttnQ, W, Some(5), N, Y),
        ("layers.5.attention.wk.weight", LM, AttnK, W, Some(5), N, Y),
        ("layers.5.attention.wv.weight", LM, AttnV, W, Some(5), N, Y),
        ("layers.5.attention.wo.weight", LM, AttnO, W, Some(5), N, Y),
        ("layers.5.feed_forward.w1.weight", LM, MlpGate, W, Some(5), N, Y),
        ("layers.5.feed_forward.w2.weight", LM, MlpDown, W, Some(5), N, Y),
        ("layers.5.feed_forward.w3.weight", LM, MlpUp, W, Some(5), N, Y),
        ("layers.5.attention_norm.weight", LM, Norm, W, Some(5), N, Y),
        ("layers.5.ffn_norm.weight", LM, Norm, W, Some(5), N, Y),
        ("norm.weight", LM, Norm, W, N, N, Y),
        ("output.weight", LM, LmHead, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn qwen2_qwen3_dense() {
    check(&[
        ("model.layers.2.self_attn.q_proj.bias", LM, AttnQ, B, Some(2), N, Y),
        ("model.layers.2.self_attn.k_proj.bias", LM, AttnK, B, Some(2), N, Y),
        ("model.layers.2.self_attn.v_proj.bias", LM, AttnV, B, Some(2), N, Y),
        ("model.layers.2.self_attn.q_proj.weight", LM, AttnQ, W, Some(2), N, Y),
        ("model.layers.2.self_attn.q_norm.weight", LM, Norm, W, Some(2), N, Y),
        ("model.layers.2.self_attn.k_norm.weight", LM, Norm, W, Some(2), N, Y),
        ("model.layers.27.mlp.down_proj.weight", LM, MlpDown, W, Some(27), N, Y),
        ("model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("lm_head.weight", LM, LmHead, W, N, N, Y),
        // Qwen (v1): w1 = up, w2 = gate (a1 * silu(a2)).
        ("transformer.wte.weight", LM, TokenEmbedding, W, N, N, Y),
        ("transformer.h.0.attn.c_attn.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("transformer.h.0.attn.c_attn.bias", LM, AttnQkvFused, B, Some(0), N, Y),
        ("transformer.h.0.attn.c_proj.weight", LM, AttnO, W, Some(0), N, Y),
        ("transformer.h.0.mlp.w1.weight", LM, MlpUp, W, Some(0), N, Y),
        ("transformer.h.0.mlp.w2.weight", LM, MlpGate, W, Some(0), N, Y),
        ("transformer.h.0.mlp.c_proj.weight", LM, MlpDown, W, Some(0), N, Y),
        ("transformer.h.0.ln_1.weight", LM, Norm, W, Some(0), N, Y),
        ("transformer.ln_f.weight", LM, Norm, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn qwen_moe() {
    check(&[
        // Qwen2-MoE
        ("model.layers.4.mlp.experts.0.gate_proj.weight", LM, ExpertGate, W, Some(4), Some(0), Y),
        ("model.layers.4.mlp.experts.59.up_proj.weight", LM, ExpertUp, W, Some(4), Some(59), Y),
        ("model.layers.4.mlp.experts.59.down_proj.weight", LM, ExpertDown, W, Some(4), Some(59), Y),
        ("model.layers.4.mlp.gate.weight", LM, Router, W, Some(4), N, Y),
        ("model.layers.4.mlp.shared_expert.gate_proj.weight", LM, SharedExpertGate, W, Some(4), N, Y),
        ("model.layers.4.mlp.shared_expert.up_proj.weight", LM, SharedExpertUp, W, Some(4), N, Y),
        ("model.layers.4.mlp.shared_expert.down_proj.weight", LM, SharedExpertDown, W, Some(4), N, Y),
        ("model.layers.4.mlp.shared_expert_gate.weight", LM, SharedExpertRouter, W, Some(4), N, Y),
        ("model.layers.4.self_attn.q_proj.bias", LM, AttnQ, B, Some(4), N, Y),
        // Qwen3-MoE
        ("model.layers.47.mlp.experts.127.gate_proj.weight", LM, ExpertGate, W, Some(47), Some(127), Y),
        ("model.layers.47.mlp.gate.weight", LM, Router, W, Some(47), N, Y),
        ("model.layers.47.self_attn.k_norm.weight", LM, Norm, W, Some(47), N, Y),
        // Stacked experts (GGUF translated upstream; transformers v5 layout).
        ("model.layers.3.mlp.experts.gate_proj.weight", LM, ExpertGate, W, Some(3), N, Y),
        ("model.layers.3.mlp.experts.up_proj.weight", LM, ExpertUp, W, Some(3), N, Y),
        ("model.layers.3.mlp.experts.down_proj.weight", LM, ExpertDown, W, Some(3), N, Y),
        ("model.layers.3.mlp.experts.gate_up_proj", LM, ExpertGateUpFused, W, Some(3), N, Y),
        ("model.layers.3.mlp.experts.down_proj", LM, ExpertDown, W, Some(3), N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn qwen2_5_vl() {
    check(&[
        ("visual.patch_embed.proj.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("visual.blocks.0.norm1.weight", VIS, Norm, W, Some(0), N, Y),
        ("visual.blocks.0.norm2.weight", VIS, Norm, W, Some(0), N, Y),
        ("visual.blocks.0.attn.qkv.weight", VIS, AttnQkvFused, W, Some(0), N, Y),
        ("visual.blocks.0.attn.qkv.bias", VIS, AttnQkvFused, B, Some(0), N, Y),
        ("visual.blocks.31.attn.proj.weight", VIS, AttnO, W, Some(31), N, Y),
        ("visual.blocks.31.attn.proj.bias", VIS, AttnO, B, Some(31), N, Y),
        ("visual.blocks.31.mlp.gate_proj.weight", VIS, MlpGate, W, Some(31), N, Y),
        ("visual.blocks.31.mlp.up_proj.bias", VIS, MlpUp, B, Some(31), N, Y),
        ("visual.blocks.31.mlp.down_proj.weight", VIS, MlpDown, W, Some(31), N, Y),
        ("visual.merger.ln_q.weight", PRJ, Norm, W, N, N, Y),
        ("visual.merger.mlp.0.weight", PRJ, MlpUp, W, N, N, Y),
        ("visual.merger.mlp.0.bias", PRJ, MlpUp, B, N, N, Y),
        ("visual.merger.mlp.2.weight", PRJ, MlpDown, W, N, N, Y),
        ("model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("model.layers.0.self_attn.q_proj.bias", LM, AttnQ, B, Some(0), N, Y),
        // transformers >= 4.52 save layout
        ("model.visual.blocks.3.attn.qkv.weight", VIS, AttnQkvFused, W, Some(3), N, Y),
        ("model.visual.merger.mlp.2.bias", PRJ, MlpDown, B, N, N, Y),
        ("model.language_model.layers.3.mlp.up_proj.weight", LM, MlpUp, W, Some(3), N, Y),
        ("model.language_model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        // Qwen2-VL / Qwen3-VL variants
        ("visual.blocks.0.mlp.fc1.weight", VIS, MlpUp, W, Some(0), N, Y),
        ("visual.blocks.0.mlp.fc2.bias", VIS, MlpDown, B, Some(0), N, Y),
        ("model.visual.pos_embed.weight", VIS, PositionEmbedding, W, N, N, Y),
        ("model.visual.blocks.0.mlp.linear_fc1.weight", VIS, MlpUp, W, Some(0), N, Y),
        ("model.visual.merger.linear_fc2.weight", PRJ, MlpDown, W, N, N, Y),
        ("model.visual.deepstack_merger_list.0.linear_fc1.weight", PRJ, MlpUp, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn gemma() {
    check(&[
        ("model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("model.layers.0.pre_feedforward_layernorm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.post_feedforward_layernorm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.post_attention_layernorm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.self_attn.q_norm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.mlp.gate_proj.weight", LM, MlpGate, W, Some(0), N, Y),
        // Gemma 3 multimodal, old layout
        ("language_model.model.layers.12.self_attn.k_proj.weight", LM, AttnK, W, Some(12), N, Y),
        ("language_model.model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("language_model.model.norm.weight", LM, Norm, W, N, N, Y),
        ("vision_tower.vision_model.embeddings.patch_embedding.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("vision_tower.vision_model.embeddings.patch_embedding.bias", VIS, PatchEmbedding, B, N, N, Y),
        ("vision_tower.vision_model.embeddings.position_embedding.weight", VIS, PositionEmbedding, W, N, N, Y),
        ("vision_tower.vision_model.encoder.layers.26.self_attn.q_proj.weight", VIS, AttnQ, W, Some(26), N, Y),
        ("vision_tower.vision_model.encoder.layers.26.self_attn.out_proj.bias", VIS, AttnO, B, Some(26), N, Y),
        ("vision_tower.vision_model.encoder.layers.26.layer_norm1.weight", VIS, Norm, W, Some(26), N, Y),
        ("vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight", VIS, MlpUp, W, Some(26), N, Y),
        ("vision_tower.vision_model.encoder.layers.26.mlp.fc2.weight", VIS, MlpDown, W, Some(26), N, Y),
        ("vision_tower.vision_model.post_layernorm.weight", VIS, Norm, W, N, N, Y),
        ("multi_modal_projector.mm_input_projection_weight", PRJ, MlpUp, W, N, N, Y),
        ("multi_modal_projector.mm_soft_emb_norm.weight", PRJ, Norm, W, N, N, Y),
        // Gemma 3 multimodal, transformers >= 4.52 layout
        ("model.language_model.layers.1.pre_feedforward_layernorm.weight", LM, Norm, W, Some(1), N, Y),
        ("model.vision_tower.vision_model.encoder.layers.0.self_attn.v_proj.weight", VIS, AttnV, W, Some(0), N, Y),
        ("model.multi_modal_projector.mm_input_projection_weight", PRJ, MlpUp, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn deepseek_v3() {
    check(&[
        ("model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("model.layers.0.self_attn.q_a_proj.weight", LM, AttnQA, W, Some(0), N, Y),
        ("model.layers.0.self_attn.q_a_layernorm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.self_attn.q_b_proj.weight", LM, AttnQB, W, Some(0), N, Y),
        ("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", LM, AttnKvA, W, Some(0), N, Y),
        ("model.layers.0.self_attn.kv_a_layernorm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.self_attn.kv_b_proj.weight", LM, AttnKvB, W, Some(0), N, Y),
        ("model.layers.0.self_attn.o_proj.weight", LM, AttnO, W, Some(0), N, Y),
        // First dense layers.
        ("model.layers.2.mlp.gate_proj.weight", LM, MlpGate, W, Some(2), N, Y),
        ("model.layers.2.mlp.down_proj.weight", LM, MlpDown, W, Some(2), N, Y),
        // MoE layers.
        ("model.layers.3.mlp.experts.255.gate_proj.weight", LM, ExpertGate, W, Some(3), Some(255), Y),
        ("model.layers.3.mlp.experts.255.up_proj.weight", LM, ExpertUp, W, Some(3), Some(255), Y),
        ("model.layers.3.mlp.experts.255.down_proj.weight", LM, ExpertDown, W, Some(3), Some(255), Y),
        ("model.layers.3.mlp.shared_experts.gate_proj.weight", LM, SharedExpertGate, W, Some(3), N, Y),
        ("model.layers.3.mlp.shared_experts.up_proj.weight", LM, SharedExpertUp, W, Some(3), N, Y),
        ("model.layers.3.mlp.shared_experts.down_proj.weight", LM, SharedExpertDown, W, Some(3), N, Y),
        ("model.layers.3.mlp.gate.weight", LM, Router, W, Some(3), N, Y),
        ("model.layers.3.mlp.gate.e_score_correction_bias", LM, RouterBias, B, Some(3), N, Y),
        // FP8 block scales: same role, parameter Other.
        ("model.layers.3.mlp.experts.7.down_proj.weight_scale_inv", LM, ExpertDown, PO, Some(3), Some(7), Y),
        ("model.layers.0.self_attn.q_a_proj.weight_scale_inv", LM, AttnQA, PO, Some(0), N, Y),
        // Multi-token-prediction layer 61.
        ("model.layers.61.embed_tokens.weight", LM, TokenEmbedding, W, Some(61), N, Y),
        ("model.layers.61.enorm.weight", LM, Norm, W, Some(61), N, Y),
        ("model.layers.61.hnorm.weight", LM, Norm, W, Some(61), N, Y),
        ("model.layers.61.eh_proj.weight", LM, Other, W, Some(61), N, Y),
        ("model.layers.61.shared_head.head.weight", LM, LmHead, W, Some(61), N, Y),
        ("model.layers.61.shared_head.norm.weight", LM, Norm, W, Some(61), N, Y),
        ("model.norm.weight", LM, Norm, W, N, N, Y),
        ("lm_head.weight", LM, LmHead, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn glm4_moe() {
    check(&[
        ("model.layers.0.self_attn.q_proj.weight", LM, AttnQ, W, Some(0), N, Y),
        ("model.layers.0.self_attn.q_proj.bias", LM, AttnQ, B, Some(0), N, Y),
        ("model.layers.0.self_attn.k_norm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.layers.0.mlp.gate_proj.weight", LM, MlpGate, W, Some(0), N, Y),
        ("model.layers.10.mlp.experts.100.up_proj.weight", LM, ExpertUp, W, Some(10), Some(100), Y),
        ("model.layers.10.mlp.shared_experts.down_proj.weight", LM, SharedExpertDown, W, Some(10), N, Y),
        ("model.layers.10.mlp.gate.weight", LM, Router, W, Some(10), N, Y),
        ("model.layers.10.mlp.gate.e_score_correction_bias", LM, RouterBias, B, Some(10), N, Y),
        ("model.layers.92.eh_proj.weight", LM, Other, W, Some(92), N, Y),
        // GLM-4 dense (glm4): fused gate_up and extra post norms.
        ("model.layers.5.mlp.gate_up_proj.weight", LM, MlpGateUpFused, W, Some(5), N, Y),
        ("model.layers.5.post_self_attn_layernorm.weight", LM, Norm, W, Some(5), N, Y),
        ("model.layers.5.post_mlp_layernorm.weight", LM, Norm, W, Some(5), N, Y),
        // ChatGLM / original GLM-4 layout
        ("transformer.embedding.word_embeddings.weight", LM, TokenEmbedding, W, N, N, Y),
        ("transformer.encoder.layers.0.self_attention.query_key_value.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("transformer.encoder.layers.0.self_attention.query_key_value.bias", LM, AttnQkvFused, B, Some(0), N, Y),
        ("transformer.encoder.layers.0.self_attention.dense.weight", LM, AttnO, W, Some(0), N, Y),
        ("transformer.encoder.layers.0.mlp.dense_h_to_4h.weight", LM, MlpGateUpFused, W, Some(0), N, Y),
        ("transformer.encoder.layers.0.mlp.dense_4h_to_h.weight", LM, MlpDown, W, Some(0), N, Y),
        ("transformer.encoder.final_layernorm.weight", LM, Norm, W, N, N, Y),
        ("transformer.output_layer.weight", LM, LmHead, W, N, N, Y),
        ("transformer.rotary_pos_emb.inv_freq", LM, RotaryInvFreq, PO, N, N, NL),
    ]);
}

#[test]
#[rustfmt::skip]
fn exaone() {
    check(&[
        ("transformer.wte.weight", LM, TokenEmbedding, W, N, N, Y),
        ("transformer.h.0.ln_1.weight", LM, Norm, W, Some(0), N, Y),
        ("transformer.h.0.attn.attention.q_proj.weight", LM, AttnQ, W, Some(0), N, Y),
        ("transformer.h.0.attn.attention.k_proj.weight", LM, AttnK, W, Some(0), N, Y),
        ("transformer.h.0.attn.attention.v_proj.weight", LM, AttnV, W, Some(0), N, Y),
        ("transformer.h.0.attn.attention.out_proj.weight", LM, AttnO, W, Some(0), N, Y),
        ("transformer.h.0.ln_2.weight", LM, Norm, W, Some(0), N, Y),
        ("transformer.h.0.mlp.c_fc_0.weight", LM, MlpGate, W, Some(0), N, Y),
        ("transformer.h.0.mlp.c_fc_1.weight", LM, MlpUp, W, Some(0), N, Y),
        ("transformer.h.0.mlp.c_proj.weight", LM, MlpDown, W, Some(0), N, Y),
        ("transformer.ln_f.weight", LM, Norm, W, N, N, Y),
        ("lm_head.weight", LM, LmHead, W, N, N, Y),
        // EXAONE 4: Llama-like names, QK-norm, post-norms.
        ("model.layers.3.self_attn.q_proj.weight", LM, AttnQ, W, Some(3), N, Y),
        ("model.layers.3.self_attn.q_norm.weight", LM, Norm, W, Some(3), N, Y),
        ("model.layers.3.post_attention_layernorm.weight", LM, Norm, W, Some(3), N, Y),
        ("model.layers.3.post_feedforward_layernorm.weight", LM, Norm, W, Some(3), N, Y),
        ("model.layers.3.mlp.down_proj.weight", LM, MlpDown, W, Some(3), N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn phi3() {
    check(&[
        ("model.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("model.layers.0.self_attn.qkv_proj.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("model.layers.0.self_attn.o_proj.weight", LM, AttnO, W, Some(0), N, Y),
        ("model.layers.0.mlp.gate_up_proj.weight", LM, MlpGateUpFused, W, Some(0), N, Y),
        ("model.layers.0.mlp.down_proj.weight", LM, MlpDown, W, Some(0), N, Y),
        ("model.layers.0.input_layernorm.weight", LM, Norm, W, Some(0), N, Y),
        ("model.norm.weight", LM, Norm, W, N, N, Y),
        ("lm_head.weight", LM, LmHead, W, N, N, Y),
        // Phi-3-vision
        ("model.vision_embed_tokens.img_processor.vision_model.encoder.layers.0.self_attn.q_proj.weight", VIS, AttnQ, W, Some(0), N, Y),
        ("model.vision_embed_tokens.img_projection.0.weight", PRJ, MlpUp, W, N, N, Y),
        ("model.vision_embed_tokens.img_projection.2.weight", PRJ, MlpDown, W, N, N, Y),
        ("model.vision_embed_tokens.glb_GN", PRJ, Other, PO, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn gpt2() {
    check(&[
        ("wte.weight", LM, TokenEmbedding, W, N, N, Y),
        ("wpe.weight", LM, PositionEmbedding, W, N, N, Y),
        ("h.0.ln_1.weight", LM, Norm, W, Some(0), N, Y),
        ("h.0.ln_1.bias", LM, Norm, B, Some(0), N, Y),
        ("h.0.attn.c_attn.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("h.0.attn.c_attn.bias", LM, AttnQkvFused, B, Some(0), N, Y),
        ("h.0.attn.c_proj.weight", LM, AttnO, W, Some(0), N, Y),
        ("h.0.attn.bias", LM, Other, PO, Some(0), N, NL),
        ("h.0.attn.masked_bias", LM, Other, PO, Some(0), N, NL),
        ("h.11.ln_2.weight", LM, Norm, W, Some(11), N, Y),
        ("h.11.mlp.c_fc.weight", LM, MlpUp, W, Some(11), N, Y),
        ("h.11.mlp.c_fc.bias", LM, MlpUp, B, Some(11), N, Y),
        ("h.11.mlp.c_proj.weight", LM, MlpDown, W, Some(11), N, Y),
        ("ln_f.weight", LM, Norm, W, N, N, Y),
        ("transformer.h.3.attn.c_attn.weight", LM, AttnQkvFused, W, Some(3), N, Y),
        ("transformer.wte.weight", LM, TokenEmbedding, W, N, N, Y),
        ("lm_head.weight", LM, LmHead, W, N, N, Y),
        // GPT-J / GPT-Neo buffers and MLP names.
        ("transformer.h.0.mlp.fc_in.weight", LM, MlpUp, W, Some(0), N, Y),
        ("transformer.h.0.mlp.fc_out.weight", LM, MlpDown, W, Some(0), N, Y),
        ("transformer.h.0.attn.attention.bias", LM, Other, PO, Some(0), N, NL),
    ]);
}

#[test]
#[rustfmt::skip]
fn fused_qkv_baichuan_falcon_bloom_neox() {
    check(&[
        // Baichuan
        ("model.layers.0.self_attn.W_pack.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("model.layers.0.self_attn.o_proj.weight", LM, AttnO, W, Some(0), N, Y),
        // Falcon
        ("transformer.word_embeddings.weight", LM, TokenEmbedding, W, N, N, Y),
        ("transformer.h.0.self_attention.query_key_value.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("transformer.h.0.self_attention.dense.weight", LM, AttnO, W, Some(0), N, Y),
        ("transformer.h.0.mlp.dense_h_to_4h.weight", LM, MlpUp, W, Some(0), N, Y),
        ("transformer.h.0.mlp.dense_4h_to_h.weight", LM, MlpDown, W, Some(0), N, Y),
        ("transformer.h.0.ln_attn.weight", LM, Norm, W, Some(0), N, Y),
        ("transformer.h.0.ln_mlp.bias", LM, Norm, B, Some(0), N, Y),
        // BLOOM
        ("word_embeddings_layernorm.weight", LM, Norm, W, N, N, Y),
        ("h.3.self_attention.query_key_value.bias", LM, AttnQkvFused, B, Some(3), N, Y),
        ("h.3.input_layernorm.weight", LM, Norm, W, Some(3), N, Y),
        // GPT-NeoX / Pythia
        ("gpt_neox.embed_in.weight", LM, TokenEmbedding, W, N, N, Y),
        ("gpt_neox.layers.0.attention.query_key_value.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("gpt_neox.layers.0.attention.dense.weight", LM, AttnO, W, Some(0), N, Y),
        ("gpt_neox.layers.0.attention.bias", LM, Other, PO, Some(0), N, NL),
        ("gpt_neox.layers.0.attention.masked_bias", LM, Other, PO, Some(0), N, NL),
        ("gpt_neox.layers.0.attention.rotary_emb.inv_freq", LM, RotaryInvFreq, PO, Some(0), N, NL),
        ("gpt_neox.layers.0.mlp.dense_h_to_4h.weight", LM, MlpUp, W, Some(0), N, Y),
        ("gpt_neox.final_layer_norm.weight", LM, Norm, W, N, N, Y),
        ("embed_out.weight", LM, LmHead, W, N, N, Y),
        // InternLM2 fused wqkv
        ("model.layers.0.attention.wqkv.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("model.tok_embeddings.weight", LM, TokenEmbedding, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn bert() {
    check(&[
        ("bert.embeddings.word_embeddings.weight", LM, TokenEmbedding, W, N, N, Y),
        ("bert.embeddings.position_embeddings.weight", LM, PositionEmbedding, W, N, N, Y),
        ("bert.embeddings.token_type_embeddings.weight", LM, TokenTypeEmbedding, W, N, N, Y),
        ("bert.embeddings.LayerNorm.weight", LM, Norm, W, N, N, Y),
        ("bert.embeddings.LayerNorm.gamma", LM, Norm, W, N, N, Y),
        ("bert.embeddings.LayerNorm.beta", LM, Norm, B, N, N, Y),
        ("bert.embeddings.position_ids", LM, Other, PO, N, N, NL),
        ("bert.encoder.layer.0.attention.self.query.weight", LM, AttnQ, W, Some(0), N, Y),
        ("bert.encoder.layer.0.attention.self.key.bias", LM, AttnK, B, Some(0), N, Y),
        ("bert.encoder.layer.0.attention.self.value.weight", LM, AttnV, W, Some(0), N, Y),
        ("bert.encoder.layer.0.attention.output.dense.weight", LM, AttnO, W, Some(0), N, Y),
        ("bert.encoder.layer.0.attention.output.LayerNorm.weight", LM, Norm, W, Some(0), N, Y),
        ("bert.encoder.layer.11.intermediate.dense.weight", LM, MlpUp, W, Some(11), N, Y),
        ("bert.encoder.layer.11.output.dense.weight", LM, MlpDown, W, Some(11), N, Y),
        ("bert.encoder.layer.11.output.dense.bias", LM, MlpDown, B, Some(11), N, Y),
        ("bert.encoder.layer.11.output.LayerNorm.bias", LM, Norm, B, Some(11), N, Y),
        ("bert.pooler.dense.weight", LM, Pooler, W, N, N, Y),
        ("cls.predictions.transform.dense.weight", LM, Classifier, W, N, N, Y),
        ("cls.predictions.transform.LayerNorm.weight", LM, Norm, W, N, N, Y),
        ("cls.predictions.decoder.weight", LM, LmHead, W, N, N, Y),
        ("cls.predictions.bias", LM, LmHead, B, N, N, Y),
        ("cls.seq_relationship.weight", LM, Classifier, W, N, N, Y),
        ("classifier.weight", LM, Classifier, W, N, N, Y),
        // BertModel without prefix
        ("embeddings.word_embeddings.weight", LM, TokenEmbedding, W, N, N, Y),
        ("encoder.layer.3.attention.self.query.weight", LM, AttnQ, W, Some(3), N, Y),
        ("encoder.layer.3.output.dense.weight", LM, MlpDown, W, Some(3), N, Y),
        ("pooler.dense.bias", LM, Pooler, B, N, N, Y),
        ("roberta.encoder.layer.1.intermediate.dense.bias", LM, MlpUp, B, Some(1), N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn vit_siglip_clip() {
    check(&[
        // ViT (ViTForImageClassification)
        ("vit.embeddings.cls_token", VIS, ClassEmbedding, W, N, N, Y),
        ("vit.embeddings.position_embeddings", VIS, PositionEmbedding, W, N, N, Y),
        ("vit.embeddings.patch_embeddings.projection.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("vit.encoder.layer.0.attention.attention.query.weight", VIS, AttnQ, W, Some(0), N, Y),
        ("vit.encoder.layer.0.attention.attention.value.bias", VIS, AttnV, B, Some(0), N, Y),
        ("vit.encoder.layer.0.attention.output.dense.weight", VIS, AttnO, W, Some(0), N, Y),
        ("vit.encoder.layer.0.intermediate.dense.weight", VIS, MlpUp, W, Some(0), N, Y),
        ("vit.encoder.layer.0.output.dense.weight", VIS, MlpDown, W, Some(0), N, Y),
        ("vit.encoder.layer.0.layernorm_before.weight", VIS, Norm, W, Some(0), N, Y),
        ("vit.encoder.layer.0.layernorm_after.bias", VIS, Norm, B, Some(0), N, Y),
        ("vit.layernorm.weight", VIS, Norm, W, N, N, Y),
        // Unprefixed ViTModel / DINOv2: vision-only names still land in the vision encoder.
        ("embeddings.cls_token", VIS, ClassEmbedding, W, N, N, Y),
        ("embeddings.mask_token", VIS, Other, PO, N, N, Y),
        ("embeddings.patch_embeddings.projection.bias", VIS, PatchEmbedding, B, N, N, Y),
        ("encoder.layer.0.attention.attention.key.weight", VIS, AttnK, W, Some(0), N, Y),
        ("encoder.layer.0.layernorm_before.weight", VIS, Norm, W, Some(0), N, Y),
        // SigLIP
        ("vision_model.embeddings.patch_embedding.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("vision_model.embeddings.position_embedding.weight", VIS, PositionEmbedding, W, N, N, Y),
        ("vision_model.encoder.layers.11.self_attn.k_proj.weight", VIS, AttnK, W, Some(11), N, Y),
        ("vision_model.encoder.layers.11.mlp.fc1.bias", VIS, MlpUp, B, Some(11), N, Y),
        ("vision_model.encoder.layers.11.layer_norm2.weight", VIS, Norm, W, Some(11), N, Y),
        ("vision_model.post_layernorm.bias", VIS, Norm, B, N, N, Y),
        ("vision_model.head.probe", VIS, Pooler, W, N, N, Y),
        ("vision_model.head.attention.in_proj_weight", VIS, Pooler, W, N, N, Y),
        ("vision_model.head.attention.out_proj.weight", VIS, Pooler, W, N, N, Y),
        ("vision_model.head.layernorm.weight", VIS, Norm, W, N, N, Y),
        ("vision_model.head.mlp.fc1.weight", VIS, Pooler, W, N, N, Y),
        ("text_model.embeddings.token_embedding.weight", LM, TokenEmbedding, W, N, N, Y),
        ("text_model.encoder.layers.0.self_attn.q_proj.weight", LM, AttnQ, W, Some(0), N, Y),
        ("logit_scale", UNC, Other, PO, N, N, Y),
        // CLIP
        ("vision_model.embeddings.class_embedding", VIS, ClassEmbedding, W, N, N, Y),
        ("vision_model.embeddings.position_ids", VIS, Other, PO, N, N, NL),
        ("vision_model.pre_layrnorm.weight", VIS, Norm, W, N, N, Y),
        ("vision_model.encoder.layers.23.self_attn.out_proj.weight", VIS, AttnO, W, Some(23), N, Y),
        ("vision_model.encoder.layers.23.layer_norm1.bias", VIS, Norm, B, Some(23), N, Y),
        ("visual_projection.weight", PRJ, MlpUp, W, N, N, Y),
        ("text_projection.weight", PRJ, MlpUp, W, N, N, Y),
        // LLaVA with a CLIP tower
        ("vision_tower.vision_model.encoder.layers.0.mlp.fc2.weight", VIS, MlpDown, W, Some(0), N, Y),
        ("multi_modal_projector.linear_1.weight", PRJ, MlpUp, W, N, N, Y),
        ("multi_modal_projector.linear_2.bias", PRJ, MlpDown, B, N, N, Y),
        ("model.mm_projector.0.weight", PRJ, MlpUp, W, N, N, Y),
        ("model.mm_projector.2.weight", PRJ, MlpDown, W, N, N, Y),
        ("model.image_newline", PRJ, Other, PO, N, N, Y),
        ("model.mm_projector.weight", PRJ, MlpUp, W, N, N, Y),
        ("multi_modal_projector.weight", PRJ, MlpUp, W, N, N, Y),
        ("model.connector.modality_projection.proj.weight", PRJ, MlpUp, W, N, N, Y),
        ("model.vision_model.encoder.layers.0.self_attn.q_proj.weight", VIS, AttnQ, W, Some(0), N, Y),
        ("model.text_model.layers.0.self_attn.q_proj.weight", LM, AttnQ, W, Some(0), N, Y),
        // BEiT / EVA style
        ("blocks.0.attn.q_bias", LM, AttnQ, B, Some(0), N, Y),
        ("visual.blocks.0.attn.relative_position_bias_table", VIS, PositionEmbedding, W, Some(0), N, Y),
        ("visual.blocks.0.attn.relative_position_index", VIS, Other, PO, Some(0), N, NL),
        // openai CLIP layout
        ("visual.conv1.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("visual.class_embedding", VIS, ClassEmbedding, W, N, N, Y),
        ("visual.positional_embedding", VIS, PositionEmbedding, W, N, N, Y),
        ("visual.ln_pre.weight", VIS, Norm, W, N, N, Y),
        ("visual.transformer.resblocks.5.attn.in_proj_weight", VIS, AttnQkvFused, W, Some(5), N, Y),
        ("visual.transformer.resblocks.5.attn.in_proj_bias", VIS, AttnQkvFused, B, Some(5), N, Y),
        ("visual.transformer.resblocks.5.attn.out_proj.weight", VIS, AttnO, W, Some(5), N, Y),
        ("visual.transformer.resblocks.5.mlp.c_fc.weight", VIS, MlpUp, W, Some(5), N, Y),
        ("visual.transformer.resblocks.5.mlp.c_proj.weight", VIS, MlpDown, W, Some(5), N, Y),
        // InternVL
        ("vision_model.embeddings.patch_embedding.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("vision_model.encoder.layers.3.attn.qkv.weight", VIS, AttnQkvFused, W, Some(3), N, Y),
        ("vision_model.encoder.layers.3.attn.q_norm.weight", VIS, Norm, W, Some(3), N, Y),
        ("vision_model.encoder.layers.3.ls1", VIS, Other, PO, Some(3), N, Y),
        ("mlp1.0.weight", PRJ, Norm, W, N, N, Y),
        ("mlp1.1.weight", PRJ, MlpUp, W, N, N, Y),
        ("mlp1.3.weight", PRJ, MlpDown, W, N, N, Y),
        // Pixtral / Mistral 3
        ("vision_tower.patch_conv.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("vision_tower.ln_pre.weight", VIS, Norm, W, N, N, Y),
        ("vision_tower.transformer.layers.4.attention.q_proj.weight", VIS, AttnQ, W, Some(4), N, Y),
        ("vision_tower.transformer.layers.4.feed_forward.gate_proj.weight", VIS, MlpGate, W, Some(4), N, Y),
        ("vision_tower.transformer.layers.4.attention_norm.weight", VIS, Norm, W, Some(4), N, Y),
        ("multi_modal_projector.patch_merger.merging_layer.weight", PRJ, Other, W, N, N, Y),
        ("multi_modal_projector.norm.weight", PRJ, Norm, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn whisper_and_audio_towers() {
    check(&[
        ("model.encoder.conv1.weight", AUD, ConvStem, W, N, N, Y),
        ("model.encoder.conv1.bias", AUD, ConvStem, B, N, N, Y),
        ("model.encoder.conv2.weight", AUD, ConvStem, W, N, N, Y),
        ("model.encoder.embed_positions.weight", AUD, PositionEmbedding, W, N, N, NL),
        ("model.encoder.layers.0.self_attn.k_proj.weight", AUD, AttnK, W, Some(0), N, Y),
        ("model.encoder.layers.0.self_attn.q_proj.bias", AUD, AttnQ, B, Some(0), N, Y),
        ("model.encoder.layers.0.self_attn.out_proj.weight", AUD, AttnO, W, Some(0), N, Y),
        ("model.encoder.layers.0.self_attn_layer_norm.weight", AUD, Norm, W, Some(0), N, Y),
        ("model.encoder.layers.0.fc1.weight", AUD, MlpUp, W, Some(0), N, Y),
        ("model.encoder.layers.0.fc2.weight", AUD, MlpDown, W, Some(0), N, Y),
        ("model.encoder.layers.0.final_layer_norm.bias", AUD, Norm, B, Some(0), N, Y),
        ("model.encoder.layer_norm.weight", AUD, Norm, W, N, N, Y),
        // The decoder is a language model; its positions are learned.
        ("model.decoder.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("model.decoder.embed_positions.weight", LM, PositionEmbedding, W, N, N, Y),
        ("model.decoder.layers.3.self_attn.v_proj.weight", LM, AttnV, W, Some(3), N, Y),
        ("model.decoder.layers.3.encoder_attn.q_proj.weight", LM, Other, W, Some(3), N, Y),
        ("model.decoder.layers.3.encoder_attn_layer_norm.weight", LM, Norm, W, Some(3), N, Y),
        ("model.decoder.layers.3.fc1.weight", LM, MlpUp, W, Some(3), N, Y),
        ("model.decoder.layer_norm.weight", LM, Norm, W, N, N, Y),
        ("proj_out.weight", LM, LmHead, W, N, N, Y),
        // openai-whisper layout
        ("encoder.conv1.weight", AUD, ConvStem, W, N, N, Y),
        ("encoder.positional_embedding", AUD, PositionEmbedding, PO, N, N, NL),
        ("encoder.blocks.2.attn.query.weight", AUD, AttnQ, W, Some(2), N, Y),
        ("encoder.blocks.2.attn.out.weight", AUD, AttnO, W, Some(2), N, Y),
        ("encoder.blocks.2.attn_ln.weight", AUD, Norm, W, Some(2), N, Y),
        ("encoder.blocks.2.mlp.0.weight", AUD, MlpUp, W, Some(2), N, Y),
        ("encoder.blocks.2.mlp.2.weight", AUD, MlpDown, W, Some(2), N, Y),
        ("encoder.blocks.2.mlp_ln.bias", AUD, Norm, B, Some(2), N, Y),
        ("encoder.ln_post.weight", AUD, Norm, W, N, N, Y),
        ("decoder.token_embedding.weight", LM, TokenEmbedding, W, N, N, Y),
        ("decoder.positional_embedding", LM, PositionEmbedding, W, N, N, Y),
        ("decoder.blocks.0.cross_attn.key.weight", LM, Other, W, Some(0), N, Y),
        // Qwen2-Audio
        ("audio_tower.conv1.weight", AUD, ConvStem, W, N, N, Y),
        ("audio_tower.embed_positions.weight", AUD, PositionEmbedding, W, N, N, NL),
        ("audio_tower.layers.31.self_attn.v_proj.bias", AUD, AttnV, B, Some(31), N, Y),
        ("audio_tower.layers.31.fc2.weight", AUD, MlpDown, W, Some(31), N, Y),
        ("audio_tower.layer_norm.weight", AUD, Norm, W, N, N, Y),
        ("multi_modal_projector.linear.weight", PRJ, MlpUp, W, N, N, Y),
        ("language_model.model.layers.0.self_attn.q_proj.weight", LM, AttnQ, W, Some(0), N, Y),
        // Qwen2.5-Omni thinker
        ("thinker.audio_tower.conv2.weight", AUD, ConvStem, W, N, N, Y),
        ("thinker.audio_tower.positional_embedding.positional_embedding", AUD, PositionEmbedding, PO, N, N, NL),
        ("thinker.audio_tower.audio_bos_eos_token.weight", AUD, Other, W, N, N, Y),
        ("thinker.audio_tower.proj.weight", AUD, Other, W, N, N, Y),
        ("thinker.visual.blocks.0.attn.q.weight", VIS, AttnQ, W, Some(0), N, Y),
        ("thinker.model.layers.0.mlp.up_proj.weight", LM, MlpUp, W, Some(0), N, Y),
        // Other audio prefixes and fixed feature bases
        ("audio_encoder.layers.0.self_attn.q_proj.weight", AUD, AttnQ, W, Some(0), N, Y),
        ("audio_model.layers.0.fc1.weight", AUD, MlpUp, W, Some(0), N, Y),
        ("audio_tower.mel_filters", AUD, AudioFeatureBasis, PO, N, N, NL),
        ("audio_encoder.stft.window", AUD, AudioFeatureBasis, PO, N, N, NL),
        ("audio_encoder.stft.forward_basis_buffer", AUD, AudioFeatureBasis, PO, N, N, NL),
        ("mel_filters", AUD, AudioFeatureBasis, PO, N, N, NL),
        ("audio_projector.linear_1.weight", PRJ, MlpUp, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn mixtral() {
    check(&[
        ("model.layers.0.block_sparse_moe.gate.weight", LM, Router, W, Some(0), N, Y),
        ("model.layers.0.block_sparse_moe.experts.0.w1.weight", LM, ExpertGate, W, Some(0), Some(0), Y),
        ("model.layers.0.block_sparse_moe.experts.0.w2.weight", LM, ExpertDown, W, Some(0), Some(0), Y),
        ("model.layers.0.block_sparse_moe.experts.7.w3.weight", LM, ExpertUp, W, Some(0), Some(7), Y),
        ("model.layers.31.self_attn.q_proj.weight", LM, AttnQ, W, Some(31), N, Y),
        ("model.layers.31.post_attention_layernorm.weight", LM, Norm, W, Some(31), N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn other_moe_layouts() {
    check(&[
        // GPT-OSS
        ("model.layers.0.mlp.router.weight", LM, Router, W, Some(0), N, Y),
        ("model.layers.0.mlp.router.bias", LM, Router, B, Some(0), N, Y),
        ("model.layers.0.mlp.experts.gate_up_proj", LM, ExpertGateUpFused, W, Some(0), N, Y),
        ("model.layers.0.mlp.experts.gate_up_proj_bias", LM, ExpertGateUpFused, B, Some(0), N, Y),
        ("model.layers.0.mlp.experts.down_proj_bias", LM, ExpertDown, B, Some(0), N, Y),
        ("model.layers.0.mlp.experts.gate_up_proj_blocks", LM, ExpertGateUpFused, PO, Some(0), N, Y),
        ("model.layers.0.mlp.experts.gate_up_proj_scales", LM, ExpertGateUpFused, PO, Some(0), N, Y),
        ("model.layers.0.self_attn.sinks", LM, Other, PO, Some(0), N, Y),
        // Llama 4
        ("language_model.model.layers.1.feed_forward.router.weight", LM, Router, W, Some(1), N, Y),
        ("language_model.model.layers.1.feed_forward.experts.gate_up_proj", LM, ExpertGateUpFused, W, Some(1), N, Y),
        ("language_model.model.layers.1.feed_forward.experts.down_proj", LM, ExpertDown, W, Some(1), N, Y),
        ("language_model.model.layers.1.feed_forward.shared_expert.gate_proj.weight", LM, SharedExpertGate, W, Some(1), N, Y),
        ("language_model.model.layers.0.feed_forward.gate_proj.weight", LM, MlpGate, W, Some(0), N, Y),
        ("vision_model.class_embedding", VIS, ClassEmbedding, W, N, N, Y),
        ("vision_model.positional_embedding_vlm", VIS, PositionEmbedding, W, N, N, Y),
        ("vision_model.patch_embedding.linear.weight", VIS, PatchEmbedding, W, N, N, Y),
        ("vision_model.model.layers.3.self_attn.q_proj.weight", VIS, AttnQ, W, Some(3), N, Y),
        ("vision_model.vision_adapter.mlp.fc1.weight", PRJ, MlpUp, W, N, N, Y),
        // DBRX
        ("transformer.wte.weight", LM, TokenEmbedding, W, N, N, Y),
        ("transformer.blocks.0.norm_attn_norm.attn.Wqkv.weight", LM, AttnQkvFused, W, Some(0), N, Y),
        ("transformer.blocks.0.norm_attn_norm.attn.out_proj.weight", LM, AttnO, W, Some(0), N, Y),
        ("transformer.blocks.0.norm_attn_norm.norm_1.weight", LM, Norm, W, Some(0), N, Y),
        ("transformer.blocks.0.ffn.router.layer.weight", LM, Router, W, Some(0), N, Y),
        ("transformer.blocks.0.ffn.experts.mlp.w1", LM, ExpertGate, W, Some(0), N, Y),
        ("transformer.blocks.0.ffn.experts.mlp.v1", LM, ExpertUp, W, Some(0), N, Y),
        ("transformer.blocks.0.ffn.experts.mlp.w2", LM, ExpertDown, W, Some(0), N, Y),
        // Granite-MoE
        ("model.layers.0.block_sparse_moe.input_linear.weight", LM, ExpertGateUpFused, W, Some(0), N, Y),
        ("model.layers.0.block_sparse_moe.output_linear.weight", LM, ExpertDown, W, Some(0), N, Y),
        ("model.layers.0.block_sparse_moe.router.layer.weight", LM, Router, W, Some(0), N, Y),
        ("model.layers.0.shared_mlp.output_linear.weight", LM, SharedExpertDown, W, Some(0), N, Y),
        // Hunyuan
        ("model.layers.0.mlp.gate.wg.weight", LM, Router, W, Some(0), N, Y),
        // ERNIE 4.5
        ("model.layers.3.mlp.moe_statics.e_score_correction_bias", LM, RouterBias, B, Some(3), N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn t5() {
    check(&[
        ("shared.weight", LM, TokenEmbedding, W, N, N, Y),
        ("encoder.embed_tokens.weight", LM, TokenEmbedding, W, N, N, Y),
        ("encoder.block.0.layer.0.SelfAttention.q.weight", LM, AttnQ, W, Some(0), N, Y),
        ("encoder.block.0.layer.0.SelfAttention.o.weight", LM, AttnO, W, Some(0), N, Y),
        ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", LM, PositionEmbedding, W, Some(0), N, Y),
        ("encoder.block.0.layer.0.layer_norm.weight", LM, Norm, W, Some(0), N, Y),
        ("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", LM, MlpGate, W, Some(0), N, Y),
        ("encoder.block.0.layer.1.DenseReluDense.wi_1.weight", LM, MlpUp, W, Some(0), N, Y),
        ("encoder.block.0.layer.1.DenseReluDense.wo.weight", LM, MlpDown, W, Some(0), N, Y),
        ("decoder.block.5.layer.1.EncDecAttention.k.weight", LM, Other, W, Some(5), N, Y),
        ("encoder.final_layer_norm.weight", LM, Norm, W, N, N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn quantized_side_tensors() {
    check(&[
        ("model.layers.0.self_attn.q_proj.qweight", LM, AttnQ, PO, Some(0), N, Y),
        ("model.layers.0.self_attn.q_proj.qzeros", LM, AttnQ, PO, Some(0), N, Y),
        ("model.layers.0.self_attn.q_proj.scales", LM, AttnQ, PO, Some(0), N, Y),
        ("model.layers.0.self_attn.q_proj.g_idx", LM, AttnQ, PO, Some(0), N, Y),
        ("model.layers.0.mlp.up_proj.weight_scale", LM, MlpUp, PO, Some(0), N, Y),
        ("model.layers.0.mlp.up_proj.input_scale", LM, MlpUp, PO, Some(0), N, Y),
        ("model.layers.0.mlp.up_proj.weight.absmax", LM, MlpUp, PO, Some(0), N, Y),
        ("model.layers.0.mlp.up_proj.weight.quant_state.bitsandbytes__nf4", LM, MlpUp, PO, Some(0), N, Y),
    ]);
}

#[test]
#[rustfmt::skip]
fn unknown_names_are_reported_not_guessed() {
    check(&[
        ("foo.bar.weight", UNC, Other, W, N, N, Y),
        ("something", UNC, Other, PO, N, N, Y),
        ("", UNC, Other, PO, N, N, Y),
        ("...", UNC, Other, PO, N, N, Y),
        ("weight", UNC, Other, PO, N, N, Y),
        // Inside a trunk block: the component is known, the role is not.
        ("model.layers.0.mixer.A_log", LM, Other, PO, Some(0), N, Y),
        ("model.layers.0.mixer.in_proj.weight", LM, Other, W, Some(0), N, Y),
        ("model.layers.0.self_attn.mystery.weight", LM, Other, W, Some(0), N, Y),
        ("visual.some_new_thing.weight", VIS, Other, W, N, N, Y),
        ("multi_modal_projector.mystery.weight", PRJ, Other, W, N, N, Y),
        ("audio_tower.layers.0.conv_module.depthwise_conv.weight", AUD, Other, W, Some(0), N, Y),
        ("talker.codec_head.weight", UNC, Other, W, N, N, Y),
    ]);
}

#[test]
fn layer_markers() {
    let cases: &[(&str, Option<u32>)] = &[
        ("model.layers.12.mlp.up_proj.weight", Some(12)),
        ("transformer.h.7.mlp.c_fc.weight", Some(7)),
        ("bert.encoder.layer.4.intermediate.dense.weight", Some(4)),
        ("visual.blocks.30.attn.qkv.weight", Some(30)),
        ("encoder.block.2.layer.1.DenseReluDense.wo.weight", Some(2)),
        ("visual.transformer.resblocks.9.mlp.c_fc.weight", Some(9)),
        ("model.layers.4294967295.mlp.up_proj.weight", Some(u32::MAX)),
        // Overflow is not a layer index.
        ("model.layers.4294967296.mlp.up_proj.weight", None),
        ("model.layers.x.mlp.up_proj.weight", None),
        ("model.embed_tokens.weight", None),
    ];
    for &(name, layer) in cases {
        assert_eq!(classify(name).layer, layer, "{name}");
    }
}

#[test]
fn every_large_matrix_is_learned_weight_and_never_low_information() {
    // Sanity over all names used above would need the tables; check role-level invariants.
    for &r in Role::ALL {
        assert!(!(r.is_large_matrix() && r.is_low_information()), "{r}");
        if r.is_expert() {
            assert!(r.is_mlp(), "{r}");
        }
    }
    let c = classify("model.layers.0.self_attn.q_proj.weight");
    assert!(c.is_large_matrix() && !c.is_low_information());
    let c = classify("model.layers.0.self_attn.q_proj.bias");
    assert!(!c.is_large_matrix() && c.is_low_information());
    let c = classify("model.layers.0.input_layernorm.weight");
    assert!(!c.is_large_matrix() && c.is_low_information());
    let c = classify("model.layers.0.self_attn.rotary_emb.inv_freq");
    assert!(!c.is_large_matrix() && c.is_low_information());
    let c = classify("model.encoder.embed_positions.weight");
    assert!(!c.is_large_matrix() && c.is_low_information());
    let c = classify("model.layers.3.mlp.gate.e_score_correction_bias");
    assert!(c.is_low_information());
    let c = classify("model.layers.3.mlp.experts.gate_up_proj");
    assert!(c.is_large_matrix());
    let c = classify("model.layers.3.mlp.experts.1.down_proj.weight_scale_inv");
    assert!(!c.is_large_matrix());
}
