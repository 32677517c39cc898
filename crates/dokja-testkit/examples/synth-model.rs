//! Writes a synthetic llama-shaped model for benchmarks:
//! `synth-model SHAPE SEED OUT_DIR [FINE_TUNE_STRENGTH]`, SHAPE one of `1b` (TinyLlama-1.1B
//! dims) or `7b` (Llama-2-7B dims). With a strength, writes a fine-tune of the seed's model.

use dokja_testkit::{LlamaSpec, StDtype, WeightsLayout, fine_tune, llama_like, write_hf_folder};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: synth-model 1b|7b SEED OUT_DIR [FINE_TUNE_STRENGTH]");
        std::process::exit(2);
    }
    let spec = match args[1].as_str() {
        "1b" => LlamaSpec {
            hidden_size: 2048,
            intermediate_size: 5632,
            num_layers: 22,
            num_heads: 32,
            num_kv_heads: 4,
            head_dim: 64,
            vocab_size: 32000,
            tie_embeddings: false,
            ..LlamaSpec::default()
        },
        "7b" => LlamaSpec {
            hidden_size: 4096,
            intermediate_size: 11008,
            num_layers: 32,
            num_heads: 32,
            num_kv_heads: 32,
            head_dim: 128,
            vocab_size: 32000,
            tie_embeddings: false,
            ..LlamaSpec::default()
        },
        other => {
            eprintln!("unknown shape {other}");
            std::process::exit(2);
        }
    };
    let seed: u64 = args[2].parse().expect("seed");
    let mut model = llama_like(&spec, seed);
    if let Some(strength) = args.get(4) {
        model = fine_tune(&model, strength.parse().expect("strength"), 8, seed + 1000);
    }
    write_hf_folder(
        &model,
        std::path::Path::new(&args[3]),
        WeightsLayout::Sharded {
            max_shard_bytes: 2 << 30,
        },
        StDtype::BF16,
    )
    .expect("write model");
    eprintln!("{}: {} parameters", args[3], model.n_params());
}
