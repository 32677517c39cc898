//! The provenance test corpus: pairs of models whose relation is known because this code
//! made it. Derivations resemble real training where the test kit can (low-rank plus diffuse
//! updates of several sizes, continued training that moves weights far, vocabulary extension,
//! pruning, upcycling, function-preserving permutations and rotations, casts, quantization,
//! a vision tower copied into another model); independent pairs include the traps (same
//! architecture and tokenizer from other seeds, norm weights all near 1, a shared non-learned
//! buffer).

use crate::{
    GgufOptions, GgufType, LlamaSpec, MlaSpec, MoeSpec, QuantType, StDtype, SynthModel,
    SynthTensor, VitSpec, VlmSpec, cast_roundtrip, extend_vocab, fine_tune, llama_like, mla_like,
    moe_like, permute_hidden_units, prune_depth, prune_width, rotate_residual, upcycle_moe,
    vision_tower, vlm, vlm_from_parts,
};

/// What the comparison of a pair must conclude.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Every component the same weights.
    Identical,
    /// Reuse must be detected (derived or identical).
    Derived,
    /// No component may be called derived or identical.
    Independent,
    /// A vision-language pair whose vision tower is copied and language model independent.
    VisionCopied,
}

/// How B is stored, so format, dtype and quantization are part of the corpus.
#[derive(Clone, Debug)]
pub enum Storage {
    Safetensors(StDtype),
    Gguf(GgufOptions),
}

pub struct CorpusPair {
    pub class: &'static str,
    pub name: String,
    pub a: SynthModel,
    pub b: SynthModel,
    pub b_storage: Storage,
    pub expected: Expected,
}

/// A llama-shaped model wide and deep enough for per-layer statistics to mean something,
/// still written and compared in milliseconds.
pub fn corpus_llama_spec() -> LlamaSpec {
    LlamaSpec {
        hidden_size: 128,
        intermediate_size: 256,
        num_layers: 6,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 32,
        vocab_size: 1024,
        ..LlamaSpec::default()
    }
}

fn pair(
    class: &'static str,
    name: impl Into<String>,
    a: &SynthModel,
    b: SynthModel,
    expected: Expected,
) -> CorpusPair {
    CorpusPair {
        class,
        name: name.into(),
        a: a.clone(),
        b,
        b_storage: Storage::Safetensors(StDtype::F32),
        expected,
    }
}

fn stored(mut p: CorpusPair, storage: Storage) -> CorpusPair {
    p.b_storage = storage;
    p
}

/// The same buffer in two models: identical in independent models by construction.
fn with_inv_freq(mut m: SynthModel, dim: usize) -> SynthModel {
    let data = (0..dim / 2)
        .map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / dim as f32))
        .collect();
    m.insert(SynthTensor::new(
        "model.rotary_emb.inv_freq",
        vec![dim / 2],
        data,
    ));
    m
}

#[allow(clippy::vec_init_then_push)] // one push per documented case reads best
pub fn pairs() -> Vec<CorpusPair> {
    let spec = corpus_llama_spec();
    let base = llama_like(&spec, 1);
    let mut out = Vec::new();

    // Copies in other dtypes, formats and quantizations.
    let mut renamed = base.clone();
    renamed.rename(|n| {
        if n == "model.layers.2.self_attn.q_proj.weight" {
            "custom_block_2.query_matrix".into()
        } else {
            n.to_string()
        }
    });
    out.push(pair(
        "copy",
        "one tensor renamed beyond the schema (found by content)",
        &base,
        renamed,
        Expected::Identical,
    ));
    out.push(pair(
        "copy",
        "same weights, f32",
        &base,
        base.clone(),
        Expected::Identical,
    ));
    out.push(stored(
        pair(
            "copy",
            "bf16 cast",
            &base,
            base.clone(),
            Expected::Identical,
        ),
        Storage::Safetensors(StDtype::BF16),
    ));
    out.push(stored(
        pair("copy", "f16 cast", &base, base.clone(), Expected::Identical),
        Storage::Safetensors(StDtype::F16),
    ));
    out.push(stored(
        pair(
            "copy",
            "GGUF f16 (renamed, Q/K rows permuted)",
            &base,
            base.clone(),
            Expected::Identical,
        ),
        Storage::Gguf(GgufOptions::with_type(GgufType::F16)),
    ));
    for q in [
        QuantType::Q8_0,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
    ] {
        out.push(stored(
            pair(
                "quantization",
                format!("GGUF {}", q.name()),
                &base,
                base.clone(),
                Expected::Derived,
            ),
            Storage::Gguf(GgufOptions::with_type(GgufType::Quant(q))),
        ));
    }

    // Training-like derivations: low-rank plus diffuse updates of growing size.
    for (strength, rank) in [
        (0.02, 4),
        (0.1, 8),
        (0.3, 16),
        (0.6, 0),
        (1.0, 8),
        (1.5, 16),
        (2.0, 8),
    ] {
        let class = if strength >= 1.0 {
            "continued training (moves weights far)"
        } else {
            "fine-tune"
        };
        out.push(pair(
            class,
            format!("relative change {strength}, rank {rank}"),
            &base,
            fine_tune(&base, strength, rank, 11),
            Expected::Derived,
        ));
    }
    out.push(stored(
        pair(
            "fine-tune",
            "fine-tune stored as bf16",
            &base,
            fine_tune(&base, 0.1, 8, 12),
            Expected::Derived,
        ),
        Storage::Safetensors(StDtype::BF16),
    ));
    let extended = extend_vocab(
        &base,
        &[
            "<|tool|>",
            "<|think|>",
            "한국어",
            "독자",
            "서울",
            "부산",
            "정답",
            "모델",
        ],
        13,
    );
    out.push(pair(
        "vocabulary extension",
        "8 new tokens",
        &base,
        fine_tune(&extended, 0.05, 4, 14),
        Expected::Derived,
    ));
    out.push(pair(
        "depth pruning",
        "keep 4 of 6 layers",
        &base,
        prune_depth(&base, &[0, 1, 3, 5]),
        Expected::Derived,
    ));
    out.push(pair(
        "depth pruning",
        "keep 3 of 6 layers, then fine-tune",
        &base,
        fine_tune(&prune_depth(&base, &[0, 2, 4]), 0.2, 8, 15),
        Expected::Derived,
    ));
    out.push(pair(
        "width pruning",
        "MLP 256 -> 160 units",
        &base,
        prune_width(&base, 160),
        Expected::Derived,
    ));
    out.push(pair(
        "permutation",
        "hidden units and heads permuted",
        &base,
        permute_hidden_units(&base, 16),
        Expected::Derived,
    ));
    out.push(pair(
        "permutation",
        "permuted, then fine-tuned",
        &base,
        fine_tune(&permute_hidden_units(&base, 17), 0.3, 8, 18),
        Expected::Derived,
    ));
    out.push(pair(
        "rotation",
        "residual stream rotated",
        &base,
        rotate_residual(&base, 19),
        Expected::Derived,
    ));
    out.push(pair(
        "rotation",
        "rotated, then fine-tuned",
        &base,
        fine_tune(&rotate_residual(&base, 20), 0.2, 8, 21),
        Expected::Derived,
    ));
    out.push(pair(
        "cast",
        "bf16 round trip stored as f32, fine-tuned",
        &base,
        cast_roundtrip(&fine_tune(&base, 0.05, 4, 22), StDtype::BF16),
        Expected::Derived,
    ));
    out.push(pair(
        "MoE upcycling",
        "dense MLP to 4 experts",
        &base,
        upcycle_moe(&base, 4, 0.05, 23),
        Expected::Derived,
    ));
    let moe_spec = MoeSpec::default();
    let moe = moe_like(&moe_spec, 24);
    out.push(pair(
        "fine-tune",
        "MoE fine-tune",
        &moe,
        fine_tune(&moe, 0.2, 8, 25),
        Expected::Derived,
    ));
    out.push(pair(
        "permutation",
        "MoE with experts reordered",
        &moe,
        permute_hidden_units(&moe, 26),
        Expected::Derived,
    ));
    let mla = mla_like(&MlaSpec::default(), 27);
    out.push(pair(
        "fine-tune",
        "MLA + MoE fine-tune",
        &mla,
        fine_tune(&mla, 0.2, 8, 28),
        Expected::Derived,
    ));

    // Multimodal: a vision tower copied unchanged into a model with its own language model.
    let vspec = VlmSpec::default();
    let donor = vlm(&vspec, 29);
    let tower = crate::vision_tower_of(&donor);
    let own_lm = llama_like(&vspec.lm, 30);
    let copied = vlm_from_parts(own_lm, tower, vspec.layout, vspec.vit.num_heads, 31);
    out.push(pair(
        "vision tower copy",
        "tower unchanged, language model independent",
        &donor,
        copied,
        Expected::VisionCopied,
    ));

    out.push(pair(
        "fine-tune",
        "vision-language model fine-tuned (tower, projector and language model)",
        &donor,
        fine_tune(&donor, 0.1, 8, 37),
        Expected::Derived,
    ));

    // Independent pairs, including the traps.
    for seed in [2, 3, 4] {
        out.push(pair(
            "independent",
            format!("same architecture and tokenizer, seed {seed}"),
            &base,
            llama_like(&spec, seed),
            Expected::Independent,
        ));
    }
    out.push(stored(
        pair(
            "independent",
            "other seed, stored as GGUF Q8_0",
            &base,
            llama_like(&spec, 5),
            Expected::Independent,
        ),
        Storage::Gguf(GgufOptions::with_type(GgufType::Quant(QuantType::Q8_0))),
    ));
    let inv_dim = spec.head_dim;
    out.push(pair(
        "independent (shared buffer)",
        "same rotary inv_freq buffer",
        &with_inv_freq(base.clone(), inv_dim),
        with_inv_freq(llama_like(&spec, 6), inv_dim),
        Expected::Independent,
    ));
    let mut ones_a = base.clone();
    let mut ones_b = llama_like(&spec, 7);
    for m in [&mut ones_a, &mut ones_b] {
        m.for_each_tensor_mut(|t| {
            if t.name.ends_with("norm.weight") {
                t.data.iter_mut().for_each(|v| *v = 1.0 + (*v - 1.0) * 0.01);
            }
        });
    }
    out.push(pair(
        "independent (norms near 1)",
        "every norm weight within 1e-3 of 1",
        &ones_a,
        ones_b,
        Expected::Independent,
    ));
    out.push(pair(
        "independent",
        "MoE from another seed",
        &moe,
        moe_like(&moe_spec, 32),
        Expected::Independent,
    ));
    out.push(pair(
        "independent",
        "MLA + MoE from another seed",
        &mla,
        mla_like(&MlaSpec::default(), 33),
        Expected::Independent,
    ));
    let other_tower = vision_tower(&VitSpec::default(), 34);
    let other = vlm_from_parts(
        llama_like(&vspec.lm, 35),
        other_tower,
        vspec.layout,
        vspec.vit.num_heads,
        36,
    );
    out.push(pair(
        "independent",
        "vision-language model from other seeds",
        &donor,
        other,
        Expected::Independent,
    ));
    out
}
