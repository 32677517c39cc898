//! Vision-language models: a llama-like decoder, a SigLIP/CLIP-style ViT tower and a
//! two-layer projector. The tower is built with names relative to its prefix, so one
//! tower can be put unchanged into another VLM (the "borrowed vision encoder" case).

use serde_json::{Value, json};

use crate::generate::{Init, LlamaSpec, llama_like};
use crate::model::{SynthModel, SynthTensor};
use crate::rng::mix_seed;

#[derive(Clone, Debug)]
pub struct VitSpec {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub init_std: f32,
}

impl Default for VitSpec {
    fn default() -> Self {
        VitSpec {
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            image_size: 32,
            patch_size: 8,
            num_channels: 3,
            init_std: 0.02,
        }
    }
}

/// Where the parts of a VLM live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VlmLayout {
    /// transformers >= 4.52 LLaVA: `model.language_model.*`, `lm_head.weight`,
    /// `model.vision_tower.vision_model.*`, `model.multi_modal_projector.*`.
    Llava,
    /// Older LLaVA checkpoints: `language_model.model.*`, `language_model.lm_head.weight`,
    /// `vision_tower.vision_model.*`, `multi_modal_projector.*`.
    LlavaLegacy,
    /// Qwen-VL style: `model.*`, `lm_head.weight`, `visual.*`, `multi_modal_projector.*`;
    /// flat config with `vision_config`.
    Visual,
}

impl VlmLayout {
    pub fn lm_prefix(self) -> &'static str {
        match self {
            VlmLayout::Llava => "model.language_model.",
            VlmLayout::LlavaLegacy => "language_model.model.",
            VlmLayout::Visual => "model.",
        }
    }
    pub fn lm_head(self) -> &'static str {
        match self {
            VlmLayout::LlavaLegacy => "language_model.lm_head.weight",
            _ => "lm_head.weight",
        }
    }
    pub fn tower_prefix(self) -> &'static str {
        match self {
            VlmLayout::Llava => "model.vision_tower.vision_model.",
            VlmLayout::LlavaLegacy => "vision_tower.vision_model.",
            VlmLayout::Visual => "visual.",
        }
    }
    pub fn projector_prefix(self) -> &'static str {
        match self {
            VlmLayout::Llava => "model.multi_modal_projector.",
            _ => "multi_modal_projector.",
        }
    }
}

#[derive(Clone, Debug)]
pub struct VlmSpec {
    pub lm: LlamaSpec,
    pub vit: VitSpec,
    pub layout: VlmLayout,
}

impl Default for VlmSpec {
    fn default() -> Self {
        VlmSpec {
            lm: LlamaSpec::default(),
            vit: VitSpec::default(),
            layout: VlmLayout::Llava,
        }
    }
}

fn n_patches(spec: &VitSpec) -> usize {
    (spec.image_size / spec.patch_size).pow(2)
}

/// A ViT tower with names relative to the tower (`embeddings.patch_embedding.weight`,
/// `encoder.layers.N.self_attn.q_proj.weight`, `post_layernorm.weight`, ...).
pub fn vision_tower(spec: &VitSpec, seed: u64) -> Vec<SynthTensor> {
    let init = Init {
        seed,
        std: spec.init_std,
    };
    let (d, p) = (spec.hidden_size, spec.patch_size);
    let ln = |t: &mut Vec<SynthTensor>, name: &str| {
        t.push(init.norm(&format!("{name}.weight"), d, 1.0));
        t.push(init.normal(&format!("{name}.bias"), vec![d], 0.02));
    };
    let lin = |t: &mut Vec<SynthTensor>, name: &str, o: usize, i: usize| {
        t.push(init.linear(&format!("{name}.weight"), o, i));
        t.push(init.bias(&format!("{name}.bias"), o));
    };
    let mut t = vec![
        init.normal(
            "embeddings.patch_embedding.weight",
            vec![d, spec.num_channels, p, p],
            spec.init_std,
        ),
        init.bias("embeddings.patch_embedding.bias", d),
        init.normal(
            "embeddings.position_embedding.weight",
            vec![n_patches(spec), d],
            spec.init_std,
        ),
    ];
    for i in 0..spec.num_layers {
        let l = format!("encoder.layers.{i}.");
        ln(&mut t, &format!("{l}layer_norm1"));
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            lin(&mut t, &format!("{l}self_attn.{n}"), d, d);
        }
        ln(&mut t, &format!("{l}layer_norm2"));
        lin(&mut t, &format!("{l}mlp.fc1"), spec.intermediate_size, d);
        lin(&mut t, &format!("{l}mlp.fc2"), d, spec.intermediate_size);
    }
    ln(&mut t, "post_layernorm");
    t
}

/// The vision config matching a tower (read back from its shapes where possible).
fn vision_config(tower: &[SynthTensor], n_heads: usize) -> Value {
    let find = |n: &str| {
        tower
            .iter()
            .find(|t| t.name == n)
            .unwrap_or_else(|| panic!("tower lacks {n}"))
    };
    let patch = find("embeddings.patch_embedding.weight");
    let pos = find("embeddings.position_embedding.weight");
    let fc1 = find("encoder.layers.0.mlp.fc1.weight");
    let layers = tower
        .iter()
        .filter(|t| t.name.ends_with("layer_norm1.weight"))
        .count();
    let side = (pos.shape[0] as f64).sqrt().round() as usize;
    json!({
        "model_type": "siglip_vision_model",
        "hidden_size": patch.shape[0],
        "intermediate_size": fc1.shape[0],
        "num_hidden_layers": layers,
        "num_attention_heads": n_heads,
        "num_channels": patch.shape[1],
        "patch_size": patch.shape[2],
        "image_size": side * patch.shape[2],
        "layer_norm_eps": 1e-6,
        "hidden_act": "gelu_pytorch_tanh",
    })
}

/// The tower of a VLM built here, with names made relative again.
pub fn vision_tower_of(vlm: &SynthModel) -> Vec<SynthTensor> {
    let layout = layout_of(vlm).expect("not a VLM built by dokja-testkit");
    let p = layout.tower_prefix();
    vlm.tensors
        .iter()
        .filter_map(|t| {
            t.name
                .strip_prefix(p)
                .map(|n| SynthTensor::new(n, t.shape.clone(), t.data.clone()))
        })
        .collect()
}

/// Which layout a VLM uses (from where its tower lives).
pub fn layout_of(m: &SynthModel) -> Option<VlmLayout> {
    [VlmLayout::Llava, VlmLayout::LlavaLegacy, VlmLayout::Visual]
        .into_iter()
        .find(|l| {
            m.tensors
                .iter()
                .any(|t| t.name.starts_with(l.tower_prefix()))
        })
}

/// Assembles a VLM from a decoder built by [`llama_like`] (names `model.*`, `lm_head.weight`),
/// a tower from [`vision_tower`] or [`vision_tower_of`], and a fresh projector. `vit_heads`
/// is recorded in the vision config (heads cannot be read from shapes).
pub fn vlm_from_parts(
    lm: SynthModel,
    tower: Vec<SynthTensor>,
    layout: VlmLayout,
    vit_heads: usize,
    projector_seed: u64,
) -> SynthModel {
    let lm_hidden = lm
        .cfg_usize("hidden_size")
        .expect("lm config has hidden_size");
    let vision_config = vision_config(&tower, vit_heads);
    let d_vit = vision_config["hidden_size"].as_u64().unwrap() as usize;
    let vocab = lm.cfg_usize("vocab_size").unwrap_or(0);
    let mut tensors = Vec::new();
    for t in lm.tensors {
        let name = if t.name == "lm_head.weight" {
            layout.lm_head().to_string()
        } else {
            let rest = t
                .name
                .strip_prefix("model.")
                .unwrap_or_else(|| panic!("unexpected lm tensor {}", t.name));
            format!("{}{rest}", layout.lm_prefix())
        };
        tensors.push(SynthTensor { name, ..t });
    }
    for t in tower {
        tensors.push(SynthTensor {
            name: format!("{}{}", layout.tower_prefix(), t.name),
            ..t
        });
    }
    let init = Init {
        seed: projector_seed,
        std: 0.02,
    };
    let pp = layout.projector_prefix();
    tensors.push(init.linear(&format!("{pp}linear_1.weight"), lm_hidden, d_vit));
    tensors.push(init.bias(&format!("{pp}linear_1.bias"), lm_hidden));
    tensors.push(init.linear(&format!("{pp}linear_2.weight"), lm_hidden, lm_hidden));
    tensors.push(init.bias(&format!("{pp}linear_2.bias"), lm_hidden));
    let config = match layout {
        VlmLayout::Visual => {
            let mut c = lm.config.clone();
            c["architectures"] = json!(["Qwen2VLForConditionalGeneration"]);
            c["model_type"] = json!("qwen2_vl");
            c["vision_config"] = vision_config;
            c["image_token_id"] = json!(vocab.saturating_sub(1));
            c
        }
        _ => json!({
            "architectures": ["LlavaForConditionalGeneration"],
            "model_type": "llava",
            "text_config": lm.config,
            "vision_config": vision_config,
            "image_token_index": vocab.saturating_sub(1),
            "projector_hidden_act": "gelu",
            "vision_feature_layer": -1,
            "vision_feature_select_strategy": "full",
            "tie_word_embeddings": lm.config["tie_word_embeddings"],
            "torch_dtype": "bfloat16",
            "transformers_version": "4.57.0",
        }),
    };
    SynthModel {
        name: format!("{}-vl", lm.name),
        tensors,
        config,
        tokenizer: lm.tokenizer,
        gguf_arch: lm.gguf_arch,
    }
}

/// A VLM whose three parts come from independent sub-seeds of `seed`.
pub fn vlm(spec: &VlmSpec, seed: u64) -> SynthModel {
    let lm = llama_like(&spec.lm, mix_seed(seed, 1));
    let tower = vision_tower(&spec.vit, mix_seed(seed, 2));
    vlm_from_parts(
        lm,
        tower,
        spec.layout,
        spec.vit.num_heads,
        mix_seed(seed, 3),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn towers_can_be_shared() {
        let a = vlm(&VlmSpec::default(), 1);
        let b = vlm(&VlmSpec::default(), 2);
        assert!(a.contains("model.language_model.layers.0.self_attn.q_proj.weight"));
        assert!(a.contains("model.vision_tower.vision_model.encoder.layers.1.mlp.fc2.weight"));
        assert_eq!(
            a.tensor("model.vision_tower.vision_model.embeddings.patch_embedding.weight")
                .shape,
            vec![64, 3, 8, 8]
        );
        assert_eq!(a.text_config()["hidden_size"], 64);
        let tower = vision_tower_of(&a);
        assert_eq!(tower, vision_tower(&VitSpec::default(), mix_seed(1, 2)));
        let lm_b = llama_like(&LlamaSpec::default(), 77);
        let c = vlm_from_parts(lm_b, tower, VlmLayout::Visual, 4, 5);
        let name = "encoder.layers.0.self_attn.k_proj.weight";
        assert_eq!(
            c.tensor(&format!("visual.{name}")).data,
            a.tensor(&format!("model.vision_tower.vision_model.{name}"))
                .data
        );
        assert_ne!(
            b.tensor(&format!("model.vision_tower.vision_model.{name}"))
                .data,
            a.tensor(&format!("model.vision_tower.vision_model.{name}"))
                .data
        );
        assert_eq!(c.config["vision_config"]["image_size"], 32);
        assert_eq!(c.lm_prefix().as_deref(), Some("model."));
        assert_eq!(layout_of(&c), Some(VlmLayout::Visual));
    }
}
