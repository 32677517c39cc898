//! Random bytes and random mutations of a valid GGUF: opening (and reading whatever opens)
//! returns Ok or Err and never panics.

mod gguf_support;

use dokja_formats::{Model, OpenOptions, ReadMode};
use gguf_support::*;
use proptest::prelude::*;

/// A valid file touching most of the format: several value types, nested arrays, a
/// tokenizer, permuted Q/K, float and quantized tensors.
fn seed_file() -> Vec<u8> {
    let mut g = Gguf::arch("llama");
    let mut q4 = half::f16::from_f32(0.5).to_bits().to_le_bytes().to_vec();
    q4.extend([0x5Au8; 16]);
    g.kv("llama.attention.head_count", Val::U32(2))
        .kv("llama.attention.head_count_kv", Val::U32(1))
        .kv("general.license", Val::str("apache-2.0"))
        .kv("general.alignment", Val::U32(32))
        .kv("t.f64", Val::F64(1.5))
        .kv(
            "t.nested",
            Val::Arr(
                ty::ARRAY,
                vec![
                    Val::strs(&["x", "y"]),
                    Val::Arr(ty::I64, vec![Val::I64(-1)]),
                ],
            ),
        )
        .kv("tokenizer.ggml.model", Val::str("llama"))
        .kv("tokenizer.ggml.tokens", Val::strs(&["<unk>", "<s>", "▁a"]))
        .kv(
            "tokenizer.ggml.scores",
            Val::Arr(ty::F32, vec![Val::F32(0.0), Val::F32(0.0), Val::F32(-1.5)]),
        )
        .kv("tokenizer.ggml.bos_token_id", Val::U32(1))
        .f32_tensor("token_embd.weight", &[4, 3], &[0.25; 12])
        .f32_tensor("blk.0.attn_q.weight", &[4, 4], &[1.0; 16])
        .tensor(
            "blk.0.attn_k.weight",
            &[4, 2],
            ggml::F16,
            f16_bytes(&[2.0; 8]),
        )
        .tensor("blk.0.ffn_down.weight", &[32, 1], ggml::Q4_0, q4)
        .tensor(
            "output_norm.weight",
            &[4],
            ggml::BF16,
            bf16_bytes(&[1.0; 4]),
        );
    g.build()
}

/// Opens `bytes` and, if that works, reads every tensor: anything but a panic is fine.
fn exercise(bytes: &[u8], mode: ReadMode) {
    let t = write_temp(bytes);
    if let Ok(m) = dokja_formats::gguf::open(&t.path, OpenOptions { read_mode: mode }) {
        read_everything(&m);
    }
}

fn read_everything(m: &Model) {
    for t in &m.tensors {
        let _ = m.read_all(t);
    }
    let _ = serde_json::to_string(&m.metadata);
}

/// Values that make interesting 8-byte counts and offsets.
fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(0u64),
        Just(1u64),
        Just(1u64 << 32),
        Just(1u64 << 24),
        0u64..4096,
        any::<u64>(),
    ]
}

#[test]
fn seed_file_is_valid() {
    let t = write_temp(&seed_file());
    let m = dokja_formats::gguf::open(&t.path, Default::default()).unwrap();
    assert_eq!(m.tensors.len(), 5);
    read_everything(&m);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), version in 0u32..5) {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(version.to_le_bytes());
        bytes.extend(body);
        exercise(&bytes, ReadMode::Mmap);
    }

    #[test]
    fn byte_mutations_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        truncate in any::<bool>(),
        pread in any::<bool>(),
    ) {
        let mut bytes = seed_file();
        for (at, v) in edits {
            let i = at % bytes.len();
            bytes[i] = v;
        }
        if truncate {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        exercise(&bytes, if pread { ReadMode::Pread } else { ReadMode::Mmap });
    }

    #[test]
    fn word_mutations_never_panic(edits in proptest::collection::vec((any::<usize>(), extreme_u64()), 1..4)) {
        let mut bytes = seed_file();
        for (at, v) in edits {
            let i = at % (bytes.len() - 8);
            bytes[i..i + 8].copy_from_slice(&v.to_le_bytes());
        }
        exercise(&bytes, ReadMode::Mmap);
    }
}
