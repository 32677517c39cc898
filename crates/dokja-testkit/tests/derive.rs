use dokja_testkit::forward::{decoder_logits, linear, rms_norm, swiglu};
use dokja_testkit::rng::SynthRng;
use dokja_testkit::*;

fn max_rel_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

const TOKENS: [u32; 5] = [3, 300, 17, 450, 99];

fn assert_same_function(a: &SynthModel, b: &SynthModel, what: &str) {
    let (la, lb) = (decoder_logits(a, &TOKENS), decoder_logits(b, &TOKENS));
    let d = max_rel_diff(&la, &lb);
    assert!(d < 1e-5, "{what}: logits differ by {d}");
}

fn decoders() -> Vec<(&'static str, SynthModel)> {
    vec![
        ("llama", llama_like(&LlamaSpec::default(), 1)),
        (
            "llama tied",
            llama_like(
                &LlamaSpec {
                    tie_embeddings: true,
                    ..Default::default()
                },
                2,
            ),
        ),
        (
            "qwen2",
            llama_like(
                &LlamaSpec {
                    flavor: LlamaFlavor::Qwen2,
                    ..Default::default()
                },
                3,
            ),
        ),
        (
            "qwen3",
            llama_like(
                &LlamaSpec {
                    flavor: LlamaFlavor::Qwen3,
                    num_kv_heads: 1,
                    ..Default::default()
                },
                4,
            ),
        ),
        ("qwen3moe", moe_like(&MoeSpec::default(), 5)),
        (
            "qwen2moe",
            moe_like(
                &MoeSpec {
                    flavor: MoeFlavor::Qwen2Moe,
                    shared_expert_intermediate_size: Some(48),
                    ..Default::default()
                },
                6,
            ),
        ),
        (
            "mixtral",
            moe_like(
                &MoeSpec {
                    flavor: MoeFlavor::Mixtral,
                    ..Default::default()
                },
                7,
            ),
        ),
    ]
}

#[test]
fn forward_is_sensitive() {
    // Guards the equality tests below: a different model gives different logits.
    let a = llama_like(&LlamaSpec::default(), 1);
    let b = fine_tune(&a, 0.5, 4, 1);
    let d = max_rel_diff(&decoder_logits(&a, &TOKENS), &decoder_logits(&b, &TOKENS));
    assert!(d > 1e-3, "forward pass ignores weights ({d})");
}

#[test]
fn permutation_preserves_function() {
    for (what, m) in decoders() {
        let p = permute_hidden_units(&m, 42);
        assert_ne!(p.tensors, m.tensors, "{what}: nothing was permuted");
        assert_same_function(&m, &p, what);
    }
    // Experts really move: the router rows of the permuted model are a reordering.
    let m = moe_like(&MoeSpec::default(), 5);
    let p = permute_hidden_units(&m, 42);
    let (a, b) = (
        m.tensor("model.layers.0.mlp.gate.weight"),
        p.tensor("model.layers.0.mlp.gate.weight"),
    );
    assert_ne!(a.data, b.data);
    let mut ra: Vec<Vec<f32>> = (0..8).map(|r| a.row(r).to_vec()).collect();
    let mut rb: Vec<Vec<f32>> = (0..8).map(|r| b.row(r).to_vec()).collect();
    ra.sort_by(|x, y| x[0].total_cmp(&y[0]));
    rb.sort_by(|x, y| x[0].total_cmp(&y[0]));
    assert_eq!(ra, rb);
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + (0.797_884_560_8 * (x + 0.044715 * x.powi(3))).tanh())
}

/// Bidirectional multi-head attention with biases (BERT/ViT style) on a few inputs.
fn encoder_attention(
    m: &SynthModel,
    q: &str,
    k: &str,
    v: &str,
    o: &str,
    heads: usize,
    xs: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let lin = |name: &str, x: &[f64]| {
        let mut y = linear(m.tensor(&format!("{name}.weight")), x);
        y.iter_mut()
            .zip(&m.tensor(&format!("{name}.bias")).data)
            .for_each(|(y, b)| *y += *b as f64);
        y
    };
    let qs: Vec<Vec<f64>> = xs.iter().map(|x| lin(q, x)).collect();
    let ks: Vec<Vec<f64>> = xs.iter().map(|x| lin(k, x)).collect();
    let vs: Vec<Vec<f64>> = xs.iter().map(|x| lin(v, x)).collect();
    let hd = qs[0].len() / heads;
    qs.iter()
        .map(|qt| {
            let mut att = vec![0.0; qt.len()];
            for h in 0..heads {
                let r = h * hd..(h + 1) * hd;
                let s: Vec<f64> = ks
                    .iter()
                    .map(|k| {
                        qt[r.clone()]
                            .iter()
                            .zip(&k[r.clone()])
                            .map(|(a, b)| a * b)
                            .sum()
                    })
                    .collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for (j, w) in e.iter().enumerate() {
                    for d in r.clone() {
                        att[d] += w / z * vs[j][d];
                    }
                }
            }
            lin(o, &att)
        })
        .collect()
}

fn gelu_mlp(m: &SynthModel, up: &str, down: &str, x: &[f64]) -> Vec<f64> {
    let mut a = linear(m.tensor(&format!("{up}.weight")), x);
    a.iter_mut()
        .zip(&m.tensor(&format!("{up}.bias")).data)
        .for_each(|(a, b)| *a = gelu(*a + *b as f64));
    let mut y = linear(m.tensor(&format!("{down}.weight")), &a);
    y.iter_mut()
        .zip(&m.tensor(&format!("{down}.bias")).data)
        .for_each(|(y, b)| *y += *b as f64);
    y
}

#[test]
fn permutation_preserves_encoder_blocks() {
    let mut rng = SynthRng::new(1);
    let xs: Vec<Vec<f64>> = (0..4)
        .map(|_| (0..64).map(|_| rng.normal()).collect())
        .collect();
    let close = |a: &[Vec<f64>], b: &[Vec<f64>], what: &str| {
        let d = max_rel_diff(a, b);
        assert!(d < 1e-5, "{what}: {d}");
    };
    let b = bert_like(&BertSpec::default(), 1);
    let pb = permute_hidden_units(&b, 3);
    let l = "encoder.layer.1.";
    let att = |m: &SynthModel| {
        encoder_attention(
            m,
            &format!("{l}attention.self.query"),
            &format!("{l}attention.self.key"),
            &format!("{l}attention.self.value"),
            &format!("{l}attention.output.dense"),
            4,
            &xs,
        )
    };
    close(&att(&b), &att(&pb), "bert attention");
    assert_ne!(
        b.tensor(&format!("{l}attention.self.key.weight")),
        pb.tensor(&format!("{l}attention.self.key.weight"))
    );
    let mlp = |m: &SynthModel| {
        xs.iter()
            .map(|x| {
                gelu_mlp(
                    m,
                    &format!("{l}intermediate.dense"),
                    &format!("{l}output.dense"),
                    x,
                )
            })
            .collect::<Vec<_>>()
    };
    close(&mlp(&b), &mlp(&pb), "bert mlp");

    let v = vlm(&VlmSpec::default(), 2);
    let pv = permute_hidden_units(&v, 3);
    let t = "model.vision_tower.vision_model.encoder.layers.0.";
    let att = |m: &SynthModel| {
        encoder_attention(
            m,
            &format!("{t}self_attn.q_proj"),
            &format!("{t}self_attn.k_proj"),
            &format!("{t}self_attn.v_proj"),
            &format!("{t}self_attn.out_proj"),
            4,
            &xs,
        )
    };
    close(&att(&v), &att(&pv), "vit attention");
    let mlp = |m: &SynthModel| {
        xs.iter()
            .map(|x| gelu_mlp(m, &format!("{t}mlp.fc1"), &format!("{t}mlp.fc2"), x))
            .collect::<Vec<_>>()
    };
    close(&mlp(&v), &mlp(&pv), "vit mlp");
    assert_ne!(
        v.tensor(&format!("{t}mlp.fc1.weight")),
        pv.tensor(&format!("{t}mlp.fc1.weight"))
    );
}

#[test]
fn mla_permutation_keeps_per_head_circuits() {
    // Sum over heads of O_h V_h (the OV circuit through the latent) is invariant under a
    // head permutation; each head's block moves as a whole.
    let m = mla_like(&MlaSpec::default(), 1);
    let p = permute_hidden_units(&m, 9);
    let ov = |m: &SynthModel| {
        let o = m.tensor("model.layers.1.self_attn.o_proj.weight");
        let kvb = m.tensor("model.layers.1.self_attn.kv_b_proj.weight");
        let (hidden, lora, nope, v, heads) = (64, 32, 16, 16, 4);
        let mut sum = vec![0.0f64; hidden * lora];
        for h in 0..heads {
            for i in 0..hidden {
                for c in 0..lora {
                    sum[i * lora + c] += (0..v)
                        .map(|r| {
                            o.at(i, h * v + r) as f64 * kvb.at(h * (nope + v) + nope + r, c) as f64
                        })
                        .sum::<f64>();
                }
            }
        }
        sum
    };
    assert_ne!(
        m.tensor("model.layers.1.self_attn.q_b_proj.weight"),
        p.tensor("model.layers.1.self_attn.q_b_proj.weight")
    );
    let (a, b) = (ov(&m), ov(&p));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-9));
    // Experts of the MoE layers and the score bias move together.
    let bias = |m: &SynthModel| {
        m.tensor("model.layers.2.mlp.gate.e_score_correction_bias")
            .data
            .clone()
    };
    let mut x = bias(&m);
    let mut y = bias(&p);
    assert_ne!(x, y);
    x.sort_by(f32::total_cmp);
    y.sort_by(f32::total_cmp);
    assert_eq!(x, y);
}

#[test]
fn rotation_preserves_function() {
    for (what, m) in decoders() {
        let r = rotate_residual(&m, 7);
        assert_same_function(&m, &r, what);
        let e = r.tensor("model.embed_tokens.weight");
        assert!(
            e.max_abs_diff(m.tensor("model.embed_tokens.weight")) > 0.01,
            "{what}: embedding not rotated"
        );
        assert!(
            r.tensor("model.norm.weight").data.iter().all(|v| *v == 1.0),
            "{what}: norm not folded"
        );
        assert!(r.contains("lm_head.weight"));
        assert_eq!(r.config["tie_word_embeddings"], false);
    }
    // MLA and VLMs rotate too (no forward pass here; the structure check inside would panic).
    rotate_residual(&mla_like(&MlaSpec::default(), 1), 3);
    let v = rotate_residual(&vlm(&VlmSpec::default(), 1), 3);
    assert_eq!(v.text_config()["tie_word_embeddings"], false);
}

#[test]
fn random_orthogonal_is_orthogonal() {
    let n = 24;
    let r = random_orthogonal(n, 5);
    for i in 0..n {
        for j in 0..n {
            let d: f64 = (0..n).map(|k| r[i * n + k] * r[j * n + k]).sum();
            assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
    }
}

#[test]
#[should_panic(expected = "Gemma")]
fn rotation_refuses_gemma() {
    rotate_residual(
        &llama_like(
            &LlamaSpec {
                flavor: LlamaFlavor::Gemma3,
                ..Default::default()
            },
            1,
        ),
        1,
    );
}

#[test]
fn fine_tune_changes_everything_by_about_strength() {
    let m = llama_like(&LlamaSpec::default(), 1);
    let f = fine_tune(&m, 0.1, 4, 2);
    for (a, b) in m.tensors.iter().zip(&f.tensors) {
        assert_eq!(a.shape, b.shape);
        let num: f64 = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum();
        let den: f64 = a.data.iter().map(|x| (*x as f64).powi(2)).sum();
        let rel = (num / den).sqrt();
        let want = if a.shape.len() >= 2 { 0.1 } else { 0.01 };
        assert!(
            rel > 0.5 * want && rel < 1.5 * want,
            "{}: relative change {rel}",
            a.name
        );
    }
    // The low-rank part shows: the update of a matrix correlates across rows.
    let d: Vec<f32> = {
        let (a, b) = (
            m.tensor("model.layers.0.mlp.up_proj.weight"),
            f.tensor("model.layers.0.mlp.up_proj.weight"),
        );
        a.data.iter().zip(&b.data).map(|(x, y)| y - x).collect()
    };
    let dense = fine_tune(&m, 0.1, 0, 2);
    assert_ne!(dense.tensors, f.tensors);
    assert!(d.iter().any(|v| *v != 0.0));
    assert_eq!(fine_tune(&m, 0.1, 4, 2), f, "deterministic");
}

#[test]
fn depth_and_width_pruning() {
    let m = llama_like(
        &LlamaSpec {
            num_layers: 4,
            ..Default::default()
        },
        1,
    );
    let d = prune_depth(&m, &[0, 2, 3]);
    assert_eq!(d.config["num_hidden_layers"], 3);
    assert!(!d.contains("model.layers.3.mlp.up_proj.weight"));
    assert_eq!(
        d.tensor("model.layers.1.mlp.up_proj.weight").data,
        m.tensor("model.layers.2.mlp.up_proj.weight").data
    );
    assert_eq!(d.tensors.first().unwrap().name, "model.embed_tokens.weight");
    assert_eq!(d.tensors.last().unwrap().name, "lm_head.weight");
    assert_eq!(d.tensors.len(), m.tensors.len() - 9);
    decoder_logits(&d, &TOKENS);
    let mla = prune_depth(
        &mla_like(
            &MlaSpec {
                num_layers: 4,
                first_k_dense: 2,
                ..Default::default()
            },
            1,
        ),
        &[1, 3],
    );
    assert_eq!(mla.config["first_k_dense_replace"], 1);
    let b = prune_depth(&bert_like(&BertSpec::default(), 1), &[1]);
    assert!(
        b.contains("encoder.layer.0.output.dense.weight")
            && !b.contains("encoder.layer.1.output.dense.weight")
    );

    let w = prune_width(&m, 96);
    assert_eq!(w.config["intermediate_size"], 96);
    let (up, wup) = (
        m.tensor("model.layers.1.mlp.up_proj.weight"),
        w.tensor("model.layers.1.mlp.up_proj.weight"),
    );
    assert_eq!(wup.shape, vec![96, 64]);
    assert_eq!(
        w.tensor("model.layers.1.mlp.down_proj.weight").shape,
        vec![64, 96]
    );
    // Kept units are original rows, in order.
    let mut last = None;
    for r in 0..96 {
        let pos = (0..128)
            .find(|&u| up.row(u) == wup.row(r))
            .expect("kept row is an original row");
        assert!(last.is_none_or(|l| pos > l));
        last = Some(pos);
    }
    decoder_logits(&w, &TOKENS);
    let moe = prune_width(&moe_like(&MoeSpec::default(), 1), 16);
    assert_eq!(
        moe.tensor("model.layers.0.mlp.experts.3.down_proj.weight")
            .shape,
        vec![64, 16]
    );
    assert_eq!(moe.config["moe_intermediate_size"], 16);
}

#[test]
fn vocabulary_extension() {
    let m = llama_like(&LlamaSpec::default(), 1);
    let e = extend_vocab(&m, &["<|im_start|>", "<|im_end|>", "Ġdokja"], 3);
    assert_eq!(e.config["vocab_size"], 515);
    assert_eq!(e.tensor("model.embed_tokens.weight").shape, vec![515, 64]);
    assert_eq!(e.tensor("lm_head.weight").shape, vec![515, 64]);
    assert_eq!(
        &e.tensor("model.embed_tokens.weight").data[..512 * 64],
        &m.tensor("model.embed_tokens.weight").data[..]
    );
    let tok = e.tokenizer.as_ref().unwrap();
    assert_eq!(tok.vocab.len(), 515);
    assert_eq!(tok.id_of("Ġdokja"), Some(514));
    decoder_logits(&e, &[514, 2]);
    let b = extend_vocab(&bert_like(&BertSpec::default(), 1), &["[NEW]"], 1);
    assert_eq!(b.tensor("embeddings.word_embeddings.weight").shape[0], 513);
}

#[test]
fn upcycling_without_noise_preserves_function() {
    for spec in [
        LlamaSpec::default(),
        LlamaSpec {
            flavor: LlamaFlavor::Qwen3,
            ..Default::default()
        },
    ] {
        let dense = llama_like(&spec, 1);
        let moe = upcycle_moe(&dense, 4, 0.0, 2);
        assert_same_function(&dense, &moe, "upcycled");
        let noisy = upcycle_moe(&dense, 4, 0.05, 2);
        assert!(noisy.names().iter().any(|n| n.contains("experts.3.")));
    }
    let moe = upcycle_moe(&llama_like(&LlamaSpec::default(), 1), 4, 0.01, 2);
    assert_eq!(moe.gguf_arch, "llama");
    assert_eq!(moe.config["model_type"], "mixtral");
    assert_eq!(
        moe.tensor("model.layers.0.block_sparse_moe.experts.2.w2.weight")
            .shape,
        vec![64, 128]
    );
    let (file, _) = gguf_bytes(&moe, &GgufOptions::default()).unwrap();
    assert!(!file.is_empty());
    let q = upcycle_moe(
        &llama_like(
            &LlamaSpec {
                flavor: LlamaFlavor::Qwen3,
                ..Default::default()
            },
            1,
        ),
        4,
        0.01,
        2,
    );
    assert_eq!(q.gguf_arch, "qwen3moe");
    assert!(q.contains("model.layers.1.mlp.experts.0.up_proj.weight"));
}

#[test]
fn casts_round_values() {
    let m = llama_like(&LlamaSpec::default(), 1);
    let b = cast_roundtrip(&m, StDtype::BF16);
    assert_eq!(cast_roundtrip(&b, StDtype::BF16), b, "idempotent");
    assert!(
        b.tensors
            .iter()
            .flat_map(|t| &t.data)
            .all(|v| v.to_bits() & 0xFFFF == 0)
    );
    let d = b
        .tensor("model.layers.0.mlp.up_proj.weight")
        .max_abs_diff(m.tensor("model.layers.0.mlp.up_proj.weight"));
    assert!(d > 0.0 && d < 0.001);
    let q = quant_roundtrip(&m, QuantType::Q8_0);
    assert_eq!(q.tensor("model.norm.weight"), m.tensor("model.norm.weight"));
    let d = q
        .tensor("model.layers.0.mlp.up_proj.weight")
        .max_abs_diff(m.tensor("model.layers.0.mlp.up_proj.weight"));
    assert!(d > 0.0 && d < 0.001);
}

#[test]
fn forward_helpers_agree_with_definitions() {
    let x = vec![1.0, -2.0, 3.0, 0.5];
    let n = rms_norm(&x, &[1.0; 4], 0.0);
    let ms: f64 = n.iter().map(|v| v * v).sum::<f64>() / 4.0;
    assert!((ms - 1.0).abs() < 1e-12);
    let w = SynthTensor::new("w", vec![1, 4], vec![1.0, 1.0, 1.0, 1.0]);
    assert_eq!(linear(&w, &x), vec![2.5]);
    let y = swiglu(&w, &w, &SynthTensor::new("d", vec![1, 1], vec![2.0]), &x);
    let silu = 2.5 / (1.0 + (-2.5f64).exp());
    assert!((y[0] - 2.0 * silu * 2.5).abs() < 1e-12);
}
