//! Family detection, tied embeddings, serde names and the `classify_with_family` hint.

use dokja_schema::{
    Component, Family, Param, Role, classify, classify_with_family, family_from_config,
    family_from_tensor_names, tied_embeddings,
};

#[test]
fn family_from_model_type() {
    let cases: &[(&str, Family)] = &[
        ("llama", Family::Llama),
        ("mistral", Family::Mistral),
        ("mixtral", Family::Mixtral),
        ("qwen2", Family::Qwen2),
        ("qwen2_moe", Family::Qwen2Moe),
        ("qwen3", Family::Qwen3),
        ("qwen3_moe", Family::Qwen3Moe),
        ("qwen2_5_vl", Family::Qwen2_5Vl),
        ("qwen2_5_vl_text", Family::Qwen2_5Vl),
        ("gemma", Family::Gemma),
        ("gemma2", Family::Gemma2),
        ("gemma3", Family::Gemma3),
        ("gemma3_text", Family::Gemma3),
        ("deepseek_v3", Family::DeepseekV3),
        ("deepseek_v2", Family::DeepseekV3),
        ("glm4_moe", Family::Glm4Moe),
        ("exaone", Family::Exaone),
        ("exaone4", Family::Exaone4),
        ("phi3", Family::Phi3),
        ("gpt2", Family::Gpt2),
        ("bert", Family::Bert),
        ("vit", Family::Vit),
        ("siglip", Family::Siglip),
        ("siglip_vision_model", Family::Siglip),
        ("clip", Family::Clip),
        ("clip_vision_model", Family::Clip),
        ("whisper", Family::Whisper),
        ("Qwen2_5_VL", Family::Qwen2_5Vl),
    ];
    for (mt, want) in cases {
        assert_eq!(&family_from_config(Some(mt), &[], None), want, "{mt}");
    }
}

#[test]
fn family_from_architectures_and_gguf() {
    let cases: &[(&str, Family)] = &[
        ("LlamaForCausalLM", Family::Llama),
        ("MistralForCausalLM", Family::Mistral),
        ("MixtralForCausalLM", Family::Mixtral),
        ("Qwen2MoeForCausalLM", Family::Qwen2Moe),
        ("Qwen3MoeForCausalLM", Family::Qwen3Moe),
        ("Qwen2_5_VLForConditionalGeneration", Family::Qwen2_5Vl),
        ("Gemma3ForConditionalGeneration", Family::Gemma3),
        ("Gemma2ForCausalLM", Family::Gemma2),
        ("DeepseekV3ForCausalLM", Family::DeepseekV3),
        ("DeepseekV2ForCausalLM", Family::DeepseekV3),
        ("Glm4MoeForCausalLM", Family::Glm4Moe),
        ("ExaoneForCausalLM", Family::Exaone),
        ("Exaone4ForCausalLM", Family::Exaone4),
        ("Phi3ForCausalLM", Family::Phi3),
        ("GPT2LMHeadModel", Family::Gpt2),
        ("GPT2Model", Family::Gpt2),
        ("BertForMaskedLM", Family::Bert),
        ("BertModel", Family::Bert),
        ("ViTForImageClassification", Family::Vit),
        ("SiglipVisionModel", Family::Siglip),
        ("CLIPModel", Family::Clip),
        ("WhisperForConditionalGeneration", Family::Whisper),
    ];
    for (arch, want) in cases {
        assert_eq!(&family_from_config(None, &[arch], None), want, "{arch}");
    }
    let gguf: &[(&str, Family)] = &[
        ("llama", Family::Llama),
        ("qwen2", Family::Qwen2),
        ("qwen2moe", Family::Qwen2Moe),
        ("qwen3", Family::Qwen3),
        ("qwen3moe", Family::Qwen3Moe),
        ("qwen2vl", Family::Qwen2_5Vl),
        ("gemma3", Family::Gemma3),
        ("deepseek2", Family::DeepseekV3),
        ("glm4moe", Family::Glm4Moe),
        ("exaone", Family::Exaone),
        ("exaone4", Family::Exaone4),
        ("phi3", Family::Phi3),
        ("gpt2", Family::Gpt2),
        ("bert", Family::Bert),
    ];
    for (arch, want) in gguf {
        assert_eq!(&family_from_config(None, &[], Some(arch)), want, "{arch}");
    }
}

#[test]
fn family_precedence_and_unknowns() {
    // model_type wins over architectures, architectures over GGUF.
    assert_eq!(
        family_from_config(Some("mistral"), &["LlamaForCausalLM"], Some("llama")),
        Family::Mistral
    );
    assert_eq!(
        family_from_config(Some("my_custom"), &["Qwen3ForCausalLM"], None),
        Family::Qwen3
    );
    assert_eq!(
        family_from_config(None, &["FooForCausalLM"], Some("gemma2")),
        Family::Gemma2
    );
    assert_eq!(
        family_from_config(Some("baichuan"), &["BaichuanForCausalLM"], None),
        Family::Other("baichuan".into())
    );
    assert_eq!(
        family_from_config(None, &["BaichuanForCausalLM"], None),
        Family::Other("BaichuanForCausalLM".into())
    );
    assert_eq!(
        family_from_config(None, &[], Some("falcon")),
        Family::Other("falcon".into())
    );
    assert_eq!(
        family_from_config(None, &[], None),
        Family::Other("unknown".into())
    );
    assert_eq!(
        family_from_config(Some(""), &[""], Some(" ")),
        Family::Other("unknown".into())
    );
}

#[test]
fn family_names() {
    assert_eq!(Family::Qwen2_5Vl.as_str(), "qwen2_5_vl");
    assert_eq!(Family::Qwen2_5Vl.display_name(), "Qwen2.5-VL");
    assert_eq!(Family::DeepseekV3.display_name(), "DeepSeek-V3");
    assert_eq!(Family::Gemma3.display_name(), "Gemma 3");
    assert_eq!(Family::Other("falcon".into()).display_name(), "falcon");
    assert_eq!(Family::Other("falcon".into()).as_str(), "falcon");
    for f in Family::KNOWN {
        // as_str round-trips through model_type lookup and matches the serde name.
        assert_eq!(&family_from_config(Some(f.as_str()), &[], None), f, "{f:?}");
        assert_eq!(
            serde_json::to_value(f).unwrap(),
            serde_json::Value::String(f.as_str().to_string())
        );
        assert!(!f.display_name().is_empty());
    }
    assert_eq!(
        serde_json::to_string(&Family::Other("x".into())).unwrap(),
        r#"{"other":"x"}"#
    );
}

#[test]
fn enum_serde_names_match_as_str() {
    for &c in Component::ALL {
        assert_eq!(
            serde_json::to_value(c).unwrap(),
            serde_json::Value::String(c.as_str().into())
        );
        assert_eq!(Component::from_name(c.as_str()), Some(c));
    }
    for &r in Role::ALL {
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::Value::String(r.as_str().into())
        );
        assert_eq!(Role::from_name(r.as_str()), Some(r));
        assert_eq!(r.to_string(), r.as_str());
    }
    for &p in Param::ALL {
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            serde_json::Value::String(p.as_str().into())
        );
    }
    assert_eq!(Component::LanguageModel.as_str(), "language_model");
    assert_eq!(Role::AttnQkvFused.as_str(), "attn_qkv_fused");
    assert_eq!(Role::AttnKvA.as_str(), "attn_kv_a");
    let c = classify("model.layers.3.mlp.experts.1.up_proj.weight");
    let v = serde_json::to_value(c).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "component": "language_model", "role": "expert_up", "param": "weight",
            "layer": 3, "expert": 1, "learned": true
        })
    );
}

fn names(list: &[&'static str]) -> Vec<&'static str> {
    list.to_vec()
}

#[test]
fn family_from_names() {
    let cases: Vec<(Vec<&str>, Option<Family>)> = vec![
        (
            names(&[
                "model.layers.0.self_attn.q_a_proj.weight",
                "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                "model.layers.3.mlp.experts.0.gate_proj.weight",
            ]),
            Some(Family::DeepseekV3),
        ),
        (
            names(&[
                "model.layers.3.mlp.experts.0.gate_proj.weight",
                "model.layers.3.mlp.shared_experts.up_proj.weight",
                "model.layers.3.mlp.gate.e_score_correction_bias",
            ]),
            Some(Family::Glm4Moe),
        ),
        (
            names(&[
                "transformer.h.0.mlp.c_fc_0.weight",
                "transformer.wte.weight",
            ]),
            Some(Family::Exaone),
        ),
        (
            names(&[
                "bert.encoder.layer.0.attention.self.query.weight",
                "bert.embeddings.word_embeddings.weight",
            ]),
            Some(Family::Bert),
        ),
        (
            names(&[
                "encoder.layer.0.output.dense.weight",
                "embeddings.word_embeddings.weight",
            ]),
            Some(Family::Bert),
        ),
        (
            names(&[
                "model.layers.0.block_sparse_moe.experts.0.w1.weight",
                "model.layers.0.block_sparse_moe.gate.weight",
            ]),
            Some(Family::Mixtral),
        ),
        (
            names(&[
                "model.layers.0.mlp.experts.0.up_proj.weight",
                "model.layers.0.mlp.shared_expert_gate.weight",
            ]),
            Some(Family::Qwen2Moe),
        ),
        (
            names(&[
                "model.layers.0.mlp.experts.0.up_proj.weight",
                "model.layers.0.mlp.gate.weight",
                "model.layers.0.self_attn.q_norm.weight",
            ]),
            Some(Family::Qwen3Moe),
        ),
        (
            names(&[
                "visual.blocks.0.attn.qkv.weight",
                "visual.merger.mlp.0.weight",
                "model.layers.0.mlp.up_proj.weight",
            ]),
            Some(Family::Qwen2_5Vl),
        ),
        (
            names(&[
                "language_model.model.layers.0.pre_feedforward_layernorm.weight",
                "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",
                "multi_modal_projector.mm_input_projection_weight",
            ]),
            Some(Family::Gemma3),
        ),
        (
            names(&[
                "model.layers.0.pre_feedforward_layernorm.weight",
                "model.layers.0.self_attn.q_proj.weight",
            ]),
            Some(Family::Gemma2),
        ),
        (
            names(&[
                "model.layers.0.self_attn.qkv_proj.weight",
                "model.layers.0.mlp.gate_up_proj.weight",
            ]),
            Some(Family::Phi3),
        ),
        (
            names(&["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight"]),
            Some(Family::Gpt2),
        ),
        (
            names(&[
                "model.encoder.conv1.weight",
                "model.decoder.layers.0.encoder_attn.q_proj.weight",
            ]),
            Some(Family::Whisper),
        ),
        (
            names(&["vit.encoder.layer.0.attention.attention.query.weight"]),
            Some(Family::Vit),
        ),
        (
            names(&[
                "vision_model.embeddings.patch_embedding.weight",
                "vision_model.post_layernorm.weight",
            ]),
            Some(Family::Siglip),
        ),
        (
            names(&[
                "vision_model.embeddings.patch_embedding.weight",
                "vision_model.embeddings.class_embedding",
                "vision_model.pre_layrnorm.weight",
            ]),
            Some(Family::Clip),
        ),
        (
            names(&[
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.mlp.gate_proj.weight",
            ]),
            Some(Family::Qwen2),
        ),
        (
            names(&[
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.q_norm.weight",
                "model.layers.0.mlp.gate_proj.weight",
            ]),
            Some(Family::Qwen3),
        ),
        (
            names(&[
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.self_attn.q_norm.weight",
                "model.layers.0.post_feedforward_layernorm.weight",
            ]),
            Some(Family::Exaone4),
        ),
        (
            names(&[
                "model.embed_tokens.weight",
                "model.layers.0.self_attn.q_proj.weight",
                "model.layers.0.mlp.gate_proj.weight",
                "model.layers.0.mlp.up_proj.weight",
                "model.layers.0.mlp.down_proj.weight",
            ]),
            Some(Family::Llama),
        ),
        (
            names(&["model.layers.0.self_attn.W_pack.weight"]),
            Some(Family::Other("baichuan".into())),
        ),
        (names(&["foo.weight", "bar.bias"]), None),
        (vec![], None),
    ];
    for (n, want) in cases {
        assert_eq!(family_from_tensor_names(&n), want, "{n:?}");
    }
}

#[test]
fn tied() {
    let untied = [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "lm_head.weight",
    ];
    let tied_names = [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.norm.weight",
    ];
    assert!(!tied_embeddings(&untied, None));
    assert!(!tied_embeddings(&untied, Some(false)));
    assert!(tied_embeddings(&untied, Some(true)));
    assert!(tied_embeddings(&tied_names, None));
    assert!(tied_embeddings(&tied_names, Some(false)));
    // Gemma 3 multimodal: no lm_head, vision tensors do not count.
    let gemma3 = [
        "language_model.model.embed_tokens.weight",
        "vision_tower.vision_model.embeddings.patch_embedding.weight",
        "multi_modal_projector.mm_input_projection_weight",
    ];
    assert!(tied_embeddings(&gemma3, None));
    // DeepSeek MTP layer has its own embedding and head; the trunk head decides.
    let deepseek = [
        "model.embed_tokens.weight",
        "model.layers.61.embed_tokens.weight",
        "model.layers.61.shared_head.head.weight",
    ];
    assert!(tied_embeddings(&deepseek, None));
    let deepseek_untied = [&deepseek[..], &["lm_head.weight"]].concat();
    assert!(!tied_embeddings(&deepseek_untied, None));
    // GPT-2 and Whisper drop the tied copy.
    assert!(tied_embeddings(
        &["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight"],
        None
    ));
    assert!(tied_embeddings(
        &[
            "model.decoder.embed_tokens.weight",
            "model.encoder.conv1.weight"
        ],
        None
    ));
    assert!(!tied_embeddings(
        &["model.decoder.embed_tokens.weight", "proj_out.weight"],
        None
    ));
    // A vision encoder alone has nothing to tie.
    assert!(!tied_embeddings(
        &["vision_model.embeddings.patch_embedding.weight"],
        None
    ));
    assert!(!tied_embeddings(&[], None));
}

#[test]
fn family_hint() {
    let vit = Family::Vit;
    let c = classify_with_family("encoder.layer.0.mlp.fc1.weight", &vit);
    assert_eq!(
        (c.component, c.role),
        (Component::VisionEncoder, Role::MlpUp)
    );
    let c = classify_with_family("layernorm.weight", &vit);
    assert_eq!(c.component, Component::VisionEncoder);
    let c = classify_with_family("pooler.dense.weight", &vit);
    assert_eq!(
        (c.component, c.role),
        (Component::VisionEncoder, Role::Pooler)
    );
    // Without the hint the same name is a language-model tensor.
    assert_eq!(
        classify("encoder.layer.0.mlp.fc1.weight").component,
        Component::LanguageModel
    );
    // Unknown names stay unclassified even with a hint.
    assert_eq!(
        classify_with_family("mystery.weight", &vit).component,
        Component::Unclassified
    );
    // ChatGLM-family hint makes dense_h_to_4h a fused gate+up.
    let c = classify_with_family(
        "transformer.h.0.mlp.dense_h_to_4h.weight",
        &Family::Other("chatglm".into()),
    );
    assert_eq!(c.role, Role::MlpGateUpFused);
    // BART-style text encoders are not Whisper when the family says so.
    let bart = Family::Other("bart".into());
    assert_eq!(
        classify("model.encoder.layers.0.fc1.weight").component,
        Component::AudioEncoder
    );
    assert_eq!(
        classify_with_family("model.encoder.layers.0.fc1.weight", &bart).component,
        Component::LanguageModel
    );
    let w = classify_with_family("model.encoder.layers.0.fc1.weight", &Family::Whisper);
    assert_eq!(
        (w.component, w.role),
        (Component::AudioEncoder, Role::MlpUp)
    );
    // Prefixed names ignore the hint.
    let c = classify_with_family(
        "text_model.encoder.layers.0.mlp.fc1.weight",
        &Family::Siglip,
    );
    assert_eq!(c.component, Component::LanguageModel);
}
