//! A model written by the test kit as safetensors (single, sharded, each float dtype) and as
//! GGUF (float and quantized) reads back to the same canonical tensors: the same names,
//! shapes and values, exactly for float types and within quantization error otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use dokja_formats::{Model, OpenOptions};
use dokja_testkit::{
    GgufOptions, GgufType, LlamaSpec, MlaSpec, MoeSpec, QuantType, StDtype, SynthModel,
    WeightsLayout, llama_like, mla_like, moe_like, write_gguf, write_hf_folder, write_safetensors,
    write_sharded,
};

fn open(p: &Path) -> Model {
    Model::open(p, OpenOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn values(m: &Model) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    m.tensors
        .iter()
        .map(|t| (t.name.clone(), (t.shape.clone(), m.read_all(t).unwrap())))
        .collect()
}

fn expected(m: &SynthModel, round: impl Fn(f32) -> f32) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    m.tensors
        .iter()
        .map(|t| {
            let shape = t.shape.iter().map(|&d| d as u64).collect();
            (
                t.name.clone(),
                (shape, t.data.iter().map(|&v| round(v)).collect()),
            )
        })
        .collect()
}

#[test]
fn safetensors_every_float_dtype_exact() {
    let model = llama_like(&LlamaSpec::default(), 7);
    let dir = tempfile::tempdir().unwrap();
    for dtype in [StDtype::F32, StDtype::F16, StDtype::BF16, StDtype::F64] {
        let p = dir.path().join(format!("{}.safetensors", dtype.name()));
        write_safetensors(&model, &p, dtype).unwrap();
        assert_eq!(
            values(&open(&p)),
            expected(&model, |v| dtype.round(v)),
            "{}",
            dtype.name()
        );
    }
}

#[test]
fn sharded_folder_matches_single_file() {
    let model = moe_like(&MoeSpec::default(), 3);
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single.safetensors");
    write_safetensors(&model, &single, StDtype::BF16).unwrap();
    let sharded = dir.path().join("sharded");
    write_hf_folder(
        &model,
        &sharded,
        WeightsLayout::Sharded {
            max_shard_bytes: 20_000,
        },
        StDtype::BF16,
    )
    .unwrap();
    let m = open(&sharded);
    assert!(
        m.files.len() > 2,
        "expected several shards, got {}",
        m.files.len()
    );
    assert_eq!(values(&m), values(&open(&single)));
    assert!(m.sidecars.config.is_some() && m.sidecars.tokenizer.is_some());
    // The index alone opens the same model.
    let shards = dir.path().join("shards");
    write_sharded(&model, &shards, 50_000, StDtype::F32).unwrap();
    assert_eq!(
        values(&open(&shards.join("model.safetensors.index.json"))),
        expected(&model, |v| v)
    );
}

/// GGUF float types read back exactly, in Hugging Face names and order of rows (the Q/K
/// rotary permutation of llama files undone).
#[test]
fn gguf_float_types_match_safetensors_exactly() {
    let model = llama_like(&LlamaSpec::default(), 11);
    let dir = tempfile::tempdir().unwrap();
    for (ty, round) in [
        (GgufType::F32, StDtype::F32),
        (GgufType::F16, StDtype::F16),
        (GgufType::BF16, StDtype::BF16),
    ] {
        let p = dir.path().join(format!("m-{ty:?}.gguf"));
        write_gguf(&model, &p, &GgufOptions::with_type(ty)).unwrap();
        let m = open(&p);
        let q = m.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
        assert!(matches!(
            q.row_order,
            dokja_formats::RowOrder::GgufRotaryInterleaved { .. }
        ));
        // Norms stay F32 in GGUF; matrices are rounded to the chosen type.
        let want: BTreeMap<_, _> = expected(&model, |v| v)
            .into_iter()
            .map(|(name, (shape, vals))| {
                let vals = if shape.len() >= 2 {
                    vals.into_iter().map(|v| round.round(v)).collect()
                } else {
                    vals
                };
                (name, (shape, vals))
            })
            .collect();
        assert_eq!(values(&m), want, "{ty:?}");
    }
}

/// Gemma's GGUF norms are stored as `1 + w`; reading undoes it, so every tensor of a
/// Gemma 3 model matches the safetensors values: exactly, except that the norms carry the
/// f32 rounding of `(1 + w) - 1` (at most half an ulp of 1).
#[test]
fn gemma3_gguf_norms_line_up() {
    let spec = LlamaSpec {
        flavor: dokja_testkit::LlamaFlavor::Gemma3,
        ..LlamaSpec::default()
    };
    let model = llama_like(&spec, 4);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.gguf");
    write_gguf(&model, &p, &GgufOptions::with_type(GgufType::F32)).unwrap();
    let m = open(&p);
    let norms = m
        .tensors
        .iter()
        .filter(|t| t.name.ends_with("norm.weight"))
        .count();
    assert!(norms >= 4 * spec.num_layers, "only {norms} norms");
    let want = expected(&model, |v| v);
    let got = values(&m);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (name, (shape, vals)) in &got {
        let (want_shape, want_vals) = &want[name];
        assert_eq!(shape, want_shape, "{name}");
        let tolerance = if name.ends_with("norm.weight") {
            f32::EPSILON
        } else {
            0.0
        };
        for (a, b) in vals.iter().zip(want_vals) {
            assert!((a - b).abs() <= tolerance, "{name}: {a} vs {b}");
        }
    }
}

fn relative_rms(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Quantized GGUF reads back within the quantization error of each type, and exactly as
/// the test kit's reference decoder (written from ggml's code independently) says.
#[test]
fn gguf_quantized_within_quantization_error() {
    // Rows of 256 so the k-quants apply too.
    let spec = LlamaSpec {
        hidden_size: 256,
        intermediate_size: 512,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 64,
        ..LlamaSpec::default()
    };
    let model = llama_like(&spec, 5);
    let dir = tempfile::tempdir().unwrap();
    let bounds = [
        (QuantType::Q8_0, 0.01),
        (QuantType::Q6K, 0.03),
        (QuantType::Q5_0, 0.06),
        (QuantType::Q5_1, 0.06),
        (QuantType::Q5K, 0.06),
        (QuantType::Q4_0, 0.12),
        (QuantType::Q4_1, 0.12),
        (QuantType::Q4K, 0.12),
        (QuantType::Q3K, 0.25),
        (QuantType::Q2K, 0.5),
    ];
    for (q, bound) in bounds {
        let p = dir.path().join(format!("m-{}.gguf", q.name()));
        write_gguf(&model, &p, &GgufOptions::with_type(GgufType::Quant(q))).unwrap();
        let m = open(&p);
        let mut quantized = 0;
        for t in &m.tensors {
            let got = m.read_all(t).unwrap();
            let want = &model.tensor(&t.name).data;
            assert_eq!(got.len(), want.len(), "{}", t.name);
            let err = relative_rms(want, &got);
            assert!(
                err < bound,
                "{} {}: relative RMS error {err} over {bound}",
                q.name(),
                t.name
            );
            if t.dtype.is_quantized() {
                quantized += 1;
                // Exactly the reference decoding of the stored blocks (rows in HF order).
                let raw = m.raw_bytes(t).unwrap();
                let mut reference = dokja_testkit::quant::dequantize_reference(q, &raw);
                if let dokja_formats::RowOrder::GgufRotaryInterleaved { .. } = t.row_order {
                    let row_len = t.row_len() as usize;
                    let n_rows = t.n_rows();
                    let stored = reference.clone();
                    for r in 0..n_rows {
                        let s = t.row_order.stored_row(r, n_rows) as usize;
                        reference[r as usize * row_len..(r as usize + 1) * row_len]
                            .copy_from_slice(&stored[s * row_len..(s + 1) * row_len]);
                    }
                }
                let max_diff = reference
                    .iter()
                    .zip(&got)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                let scale = got.iter().map(|v| v.abs()).fold(0f32, f32::max);
                assert!(
                    max_diff <= scale * 1e-6,
                    "{} {}: differs from the reference decoder by {max_diff}",
                    q.name(),
                    t.name
                );
            }
        }
        assert!(
            quantized >= 7 * spec.num_layers,
            "{}: only {quantized} quantized tensors",
            q.name()
        );
    }
}

#[test]
fn gguf_moe_and_mla_names_and_shapes_line_up() {
    for (model, arch) in [
        (moe_like(&MoeSpec::default(), 1), "qwen3moe"),
        (mla_like(&MlaSpec::default(), 2), "deepseek2"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        let opts = GgufOptions {
            arch: Some(arch.into()),
            split_mla_kv_b: false,
            ..GgufOptions::with_type(GgufType::F32)
        };
        write_gguf(&model, &p, &opts).unwrap();
        let m = open(&p);
        let unclassified: Vec<_> = m
            .tensors
            .iter()
            .filter(|t| dokja_schema_free_check(&t.name))
            .map(|t| t.name.clone())
            .collect();
        assert!(
            unclassified.is_empty(),
            "{arch}: untranslated names {unclassified:?}"
        );
        // Per-expert safetensors tensors are stacked in GGUF: the reader shows the stack.
        let n_expert = model
            .config
            .get("num_experts")
            .or(model.config.get("n_routed_experts"))
            .and_then(|v| v.as_u64())
            .unwrap();
        let stacked = m
            .tensors
            .iter()
            .find(|t| t.name.contains("experts") && t.shape.len() == 3)
            .expect("stacked experts");
        assert_eq!(stacked.shape[0], n_expert, "{arch}");
        // Every non-expert tensor reads back exactly as written.
        for t in m.tensors.iter().filter(|t| t.shape.len() < 3) {
            let want = &model.tensor(&t.name).data;
            assert_eq!(&m.read_all(t).unwrap(), want, "{arch} {}", t.name);
        }
    }
}

/// GGUF names the reader did not translate still look like llama.cpp's.
fn dokja_schema_free_check(name: &str) -> bool {
    name.starts_with("blk.") || name == "token_embd.weight" || name == "output_norm.weight"
}
