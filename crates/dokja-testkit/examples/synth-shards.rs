//! Writes a large synthetic model for the benchmark suite, streaming: BF16 sharded
//! safetensors written tensor by tensor, never holding more than one chunk of values, so
//! models of tens of GB need no more memory than small ones.
//!
//! `synth-shards SHAPE SEED OUT_DIR [--tune STRENGTH] [--layers N] [--experts E]`
//!
//! SHAPE: `1b` (TinyLlama-1.1B dims), `7b` (Llama-2-7B dims) or `moe` (Qwen3-30B-A3B dims
//! under Mixtral tensor names: d 2048, 128 routed experts of width 768, 48 layers, 1.2 GB of
//! BF16 per layer; `--layers` cuts it to fit a disk).
//! `--tune S` writes a fine-tune of the seed's model: every weight moved by S times its
//! init scale in a fresh direction (relative change S).
//!
//! Values are drawn from a counter-based generator keyed by (seed, tensor name, index), so a
//! chunk can be generated anywhere, in parallel, and the fine-tune regenerates its base
//! exactly. The distribution is Irwin-Hall(4) rescaled to unit variance (close to a
//! Gaussian; the statistics under test only see directions).

use std::io::{BufWriter, Write};
use std::path::Path;

use dokja_testkit::{
    LlamaSpec, MoeFlavor, MoeSpec, StDtype, WeightsLayout, llama_like, moe_like, write_hf_folder,
};
use serde_json::{Map, Value, json};

const SHARD_BYTES: u64 = 2 << 30;
const CHUNK: usize = 1 << 22;

struct Tensor {
    name: String,
    shape: Vec<usize>,
    /// Values are `center + std * noise`.
    center: f32,
    std: f32,
}

struct Shape {
    vocab: usize,
    hidden: usize,
    inter: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    experts: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: synth-shards 1b|7b|moe SEED OUT_DIR [--tune STRENGTH] [--layers N] [--experts E]";
    if args.len() < 4 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let mut tune: Option<f32> = None;
    let mut layers: Option<usize> = None;
    let mut experts: Option<usize> = None;
    let mut i = 4;
    while i < args.len() {
        let value = args.get(i + 1).unwrap_or_else(|| {
            eprintln!("{usage}");
            std::process::exit(2)
        });
        match args[i].as_str() {
            "--tune" => tune = Some(value.parse().expect("strength")),
            "--layers" => layers = Some(value.parse().expect("layers")),
            "--experts" => experts = Some(value.parse().expect("experts")),
            other => {
                eprintln!("unknown option {other}\n{usage}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let mut shape = match args[1].as_str() {
        "1b" => Shape {
            vocab: 32000,
            hidden: 2048,
            inter: 5632,
            layers: 22,
            heads: 32,
            kv_heads: 4,
            head_dim: 64,
            experts: 0,
        },
        "7b" => Shape {
            vocab: 32000,
            hidden: 4096,
            inter: 11008,
            layers: 32,
            heads: 32,
            kv_heads: 32,
            head_dim: 128,
            experts: 0,
        },
        "moe" => Shape {
            vocab: 32000,
            hidden: 2048,
            inter: 768,
            layers: 48,
            heads: 32,
            kv_heads: 4,
            head_dim: 128,
            experts: 128,
        },
        other => {
            eprintln!("unknown shape {other}\n{usage}");
            std::process::exit(2);
        }
    };
    if let Some(l) = layers {
        shape.layers = l;
    }
    if let Some(e) = experts {
        shape.experts = e;
    }
    let seed: u64 = args[2].parse().expect("seed");
    let out = Path::new(&args[3]);
    write_sidecars(&shape, out).expect("write sidecars");
    let tensors = tensor_list(&shape);
    let n_params: usize = tensors
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    write_shards(&tensors, seed, tune, out).expect("write shards");
    eprintln!("{}: {n_params} parameters", out.display());
}

/// config.json, tokenizer and licence from a tiny model of the same family, vocabulary and
/// depth, with the real dimensions written into the config.
fn write_sidecars(s: &Shape, out: &Path) -> std::io::Result<()> {
    let tiny = if s.experts > 0 {
        moe_like(
            &MoeSpec {
                flavor: MoeFlavor::Mixtral,
                vocab_size: s.vocab,
                hidden_size: 8,
                num_layers: 1,
                num_heads: 2,
                num_kv_heads: 1,
                head_dim: 4,
                num_experts: 2,
                moe_intermediate_size: 4,
                ..MoeSpec::default()
            },
            0,
        )
    } else {
        llama_like(
            &LlamaSpec {
                vocab_size: s.vocab,
                hidden_size: 8,
                intermediate_size: 8,
                num_layers: 1,
                num_heads: 2,
                num_kv_heads: 1,
                head_dim: 4,
                ..LlamaSpec::default()
            },
            0,
        )
    };
    write_hf_folder(&tiny, out, WeightsLayout::Single, StDtype::BF16)?;
    std::fs::remove_file(out.join("model.safetensors"))?;
    let mut config = tiny.config.clone();
    config["hidden_size"] = json!(s.hidden);
    config["intermediate_size"] = json!(s.inter);
    config["num_hidden_layers"] = json!(s.layers);
    config["num_attention_heads"] = json!(s.heads);
    config["num_key_value_heads"] = json!(s.kv_heads);
    config["head_dim"] = json!(s.head_dim);
    if s.experts > 0 {
        config["num_local_experts"] = json!(s.experts);
    }
    std::fs::write(
        out.join("config.json"),
        serde_json::to_string_pretty(&config).expect("json") + "\n",
    )
}

fn tensor_list(s: &Shape) -> Vec<Tensor> {
    let std = 0.02f32;
    let out_std = std / (2.0 * s.layers as f32).sqrt();
    let h = s.hidden;
    let mat = |name: String, shape: Vec<usize>, std: f32| Tensor {
        name,
        shape,
        center: 0.0,
        std,
    };
    let norm = |name: String| Tensor {
        name,
        shape: vec![h],
        center: 1.0,
        std: 0.02,
    };
    let mut t = vec![mat(
        "model.embed_tokens.weight".into(),
        vec![s.vocab, h],
        std,
    )];
    for l in 0..s.layers {
        let p = format!("model.layers.{l}.");
        t.push(norm(format!("{p}input_layernorm.weight")));
        let (q, kv) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
        t.push(mat(format!("{p}self_attn.q_proj.weight"), vec![q, h], std));
        t.push(mat(format!("{p}self_attn.k_proj.weight"), vec![kv, h], std));
        t.push(mat(format!("{p}self_attn.v_proj.weight"), vec![kv, h], std));
        t.push(mat(
            format!("{p}self_attn.o_proj.weight"),
            vec![h, q],
            out_std,
        ));
        t.push(norm(format!("{p}post_attention_layernorm.weight")));
        if s.experts > 0 {
            let m = format!("{p}block_sparse_moe.");
            t.push(mat(format!("{m}gate.weight"), vec![s.experts, h], std));
            for e in 0..s.experts {
                let q = format!("{m}experts.{e}.");
                t.push(mat(format!("{q}w1.weight"), vec![s.inter, h], std));
                t.push(mat(format!("{q}w2.weight"), vec![h, s.inter], out_std));
                t.push(mat(format!("{q}w3.weight"), vec![s.inter, h], std));
            }
        } else {
            let m = format!("{p}mlp.");
            t.push(mat(format!("{m}gate_proj.weight"), vec![s.inter, h], std));
            t.push(mat(format!("{m}up_proj.weight"), vec![s.inter, h], std));
            t.push(mat(
                format!("{m}down_proj.weight"),
                vec![h, s.inter],
                out_std,
            ));
        }
    }
    t.push(norm("model.norm.weight".into()));
    t.push(mat("lm_head.weight".into(), vec![s.vocab, h], std));
    t
}

fn write_shards(
    tensors: &[Tensor],
    seed: u64,
    tune: Option<f32>,
    out: &Path,
) -> std::io::Result<()> {
    let bytes = |t: &Tensor| 2 * t.shape.iter().product::<usize>() as u64;
    let mut shards: Vec<Vec<&Tensor>> = vec![Vec::new()];
    let mut current = 0u64;
    for t in tensors {
        if current + bytes(t) > SHARD_BYTES && !shards.last().expect("one").is_empty() {
            shards.push(Vec::new());
            current = 0;
        }
        shards.last_mut().expect("one").push(t);
        current += bytes(t);
    }
    let n = shards.len();
    let mut weight_map = Map::new();
    let mut total = 0u64;
    let mut chunk_bytes = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{n:05}.safetensors", i + 1);
        let mut header = Map::new();
        header.insert("__metadata__".into(), json!({"format": "pt"}));
        let mut offset = 0u64;
        for t in shard {
            header.insert(
                t.name.clone(),
                json!({"dtype": "BF16", "shape": t.shape, "data_offsets": [offset, offset + bytes(t)]}),
            );
            offset += bytes(t);
            weight_map.insert(t.name.clone(), json!(file));
        }
        total += offset;
        let mut head = serde_json::to_vec(&Value::Object(header)).expect("json");
        while !head.len().is_multiple_of(8) {
            head.push(b' ');
        }
        let mut w = BufWriter::with_capacity(1 << 22, std::fs::File::create(out.join(&file))?);
        w.write_all(&(head.len() as u64).to_le_bytes())?;
        w.write_all(&head)?;
        for t in shard {
            let key = name_key(&t.name);
            let len: usize = t.shape.iter().product();
            let mut start = 0;
            while start < len {
                let end = (start + CHUNK).min(len);
                fill_chunk(t, seed ^ key, tune, start, end, &mut chunk_bytes);
                w.write_all(&chunk_bytes)?;
                start = end;
            }
        }
        w.flush()?;
    }
    let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    std::fs::write(
        out.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).expect("json"),
    )
}

/// BF16 bytes of elements `start..end` of a tensor, generated on all cores.
fn fill_chunk(
    t: &Tensor,
    key: u64,
    tune: Option<f32>,
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
) {
    out.resize(2 * (end - start), 0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = (end - start).div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for (part, bytes) in out.chunks_mut(2 * per).enumerate() {
            let first = start + part * per;
            scope.spawn(move || {
                for (j, b) in bytes.chunks_exact_mut(2).enumerate() {
                    let i = (first + j) as u64;
                    let mut v = t.center + t.std * noise(key, i);
                    if let Some(s) = tune {
                        v += s * t.std * noise(key ^ 0x7E57_7E57_7E57_7E57, i);
                    }
                    b.copy_from_slice(&half::bf16::from_f32(v).to_le_bytes());
                }
            });
        }
    });
}

/// Approximately standard normal, a pure function of (key, index).
fn noise(key: u64, i: u64) -> f32 {
    let mut z = key.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let sum = (z & 0xFFFF) + ((z >> 16) & 0xFFFF) + ((z >> 32) & 0xFFFF) + (z >> 48);
    // Sum of 4 uniforms on [0, 65536): mean 131070, sd 65536 / sqrt(3).
    ((sum as f32) - 131_070.0) * (1.732_050_8 / 65_536.0)
}

fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}
