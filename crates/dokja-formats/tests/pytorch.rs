//! PyTorch zip checkpoints written by the test kit (pickle and zip laid out as torch.save
//! writes them) read back to the tensors they hold; pickles that try to run code, archives
//! that lie and zip bombs are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dokja_formats::{FormatError, Model, OpenOptions, ReadMode, StoredLayout, WeightsFormat};
use dokja_testkit::torch::{PickledTensor, Pickler, state_dict_pickle};
use dokja_testkit::{
    LlamaSpec, StDtype, SynthModel, TorchOptions, llama_like, torch_checkpoint_bytes, torch_zip,
    write_torch_checkpoint,
};

fn model() -> SynthModel {
    llama_like(
        &LlamaSpec {
            num_layers: 2,
            vocab_size: 96,
            tokenizer: None,
            ..LlamaSpec::default()
        },
        5,
    )
}

fn values(m: &Model) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    m.tensors
        .iter()
        .map(|t| {
            let v = m.read_all(t).unwrap_or_else(|e| panic!("{e}"));
            (t.name.clone(), (t.shape.clone(), v))
        })
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

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn open_err(p: &Path) -> String {
    match Model::open(p, OpenOptions::default()) {
        Ok(m) => panic!("{} opened with {} tensors", p.display(), m.tensors.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_float_dtype_and_protocol_round_trips() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    for dtype in [StDtype::F32, StDtype::F16, StDtype::BF16, StDtype::F64] {
        for protocol in [2, 4] {
            let p = dir.path().join(format!("{}-{protocol}.bin", dtype.name()));
            let mut opts = TorchOptions::new(dtype);
            opts.protocol = protocol;
            write_torch_checkpoint(&m, &p, &opts).unwrap();
            for mode in [ReadMode::Mmap, ReadMode::Pread] {
                let got = Model::open(&p, OpenOptions { read_mode: mode }).unwrap();
                assert_eq!(got.format, WeightsFormat::PyTorch);
                assert_eq!(
                    values(&got),
                    expected(&m, |v| dtype.round(v)),
                    "{} protocol {protocol}",
                    dtype.name()
                );
                // State-dict order is kept.
                let names: Vec<&str> = got.tensors.iter().map(|t| t.name.as_str()).collect();
                let want: Vec<&str> = m.tensors.iter().map(|t| t.name.as_str()).collect();
                assert_eq!(names, want);
            }
        }
    }
}

#[test]
fn tied_weights_and_transposed_views() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = TorchOptions::new(StDtype::F32);
    let q = "model.layers.0.self_attn.q_proj.weight";
    let k = "model.layers.1.self_attn.k_proj.weight";
    opts.transposed_views = vec![q.into()];
    // A second name viewing the same storage, as tied embeddings are saved.
    let mut tied = m.clone();
    let mut alias = m.tensor("model.embed_tokens.weight").clone();
    alias.name = "lm_head.weight".into();
    tied.tensors.retain(|t| t.name != "lm_head.weight");
    tied.tensors.push(alias);
    opts.tied = vec![("lm_head.weight".into(), "model.embed_tokens.weight".into())];
    let p = dir.path().join("pytorch_model.bin");
    write_torch_checkpoint(&tied, &p, &opts).unwrap();
    let got = Model::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(values(&got), expected(&tied, |v| v));
    assert_eq!(got.tensor(q).unwrap().layout, StoredLayout::Transposed);
    assert_eq!(got.tensor(k).unwrap().layout, StoredLayout::RowMajor);
    let (e, l) = (
        got.tensor("model.embed_tokens.weight").unwrap(),
        got.tensor("lm_head.weight").unwrap(),
    );
    assert_eq!((e.offset, e.byte_len), (l.offset, l.byte_len));
    // Tensors are read in place from the archive's stored entries.
    assert_eq!(got.files.len(), 1);
}

#[test]
fn folder_with_checkpoint_and_sidecars() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    write_torch_checkpoint(
        &m,
        &dir.path().join("pytorch_model.bin"),
        &TorchOptions::new(StDtype::BF16),
    )
    .unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type":"llama"}"#).unwrap();
    std::fs::write(dir.path().join("training_args.bin"), b"not a zip").unwrap();
    let got = Model::open(dir.path(), OpenOptions::default()).unwrap();
    assert_eq!(got.format, WeightsFormat::PyTorch);
    assert!(got.sidecars.config.is_some());
    assert_eq!(got.tensors.len(), m.tensors.len());
}

#[test]
fn sharded_checkpoints_with_and_without_an_index() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let half = m.tensors.len() / 2;
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [&m.tensors[..half], &m.tensors[half..]].iter().enumerate() {
        let name = format!("pytorch_model-0000{}-of-00002.bin", i + 1);
        let mut shard = m.clone();
        shard.tensors = part.to_vec();
        write_torch_checkpoint(
            &shard,
            &dir.path().join(&name),
            &TorchOptions::new(StDtype::F16),
        )
        .unwrap();
        for t in part.iter() {
            weight_map.insert(t.name.clone(), name.clone().into());
        }
    }
    // Trainer state saved beside the weights is not a shard.
    write_torch_checkpoint(
        &model(),
        &dir.path().join("optimizer.pt"),
        &TorchOptions::new(StDtype::F32),
    )
    .unwrap();
    let want = expected(&m, |v| StDtype::F16.round(v));
    let folder = Model::open(dir.path(), OpenOptions::default()).unwrap();
    assert_eq!(folder.files.len(), 2);
    assert_eq!(values(&folder), want);
    let index = dir.path().join("pytorch_model.bin.index.json");
    let json = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(&index, json.to_string()).unwrap();
    for at in [index.as_path(), dir.path()] {
        let got = Model::open(at, OpenOptions::default()).unwrap();
        assert_eq!(got.format, WeightsFormat::PyTorch);
        assert_eq!(values(&got), want);
    }
    // An index may not point outside its folder.
    let evil = serde_json::json!({"weight_map": {"x": "../pytorch_model-00001-of-00002.bin"}});
    std::fs::write(&index, evil.to_string()).unwrap();
    let e = open_err(&index);
    assert!(e.contains("not a plain file name"), "{e}");
}

/// A checkpoint whose data.pkl is `pickle`, with one float storage "0" of 4 elements.
fn archive(pickle: Vec<u8>) -> Vec<u8> {
    torch_zip(&[
        ("archive/data.pkl".into(), pickle),
        ("archive/data/0".into(), vec![0u8; 16]),
    ])
}

fn global_call(module: &str, name: &str, arg: &str, stack_global: bool) -> Vec<u8> {
    let mut p = Pickler::new(if stack_global { 4 } else { 2 });
    p.global(module, name);
    p.string(arg);
    p.op(0x85);
    p.op(b'R');
    p.finish()
}

#[test]
fn pickles_that_import_code_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (module, name) in [
        ("os", "system"),
        ("posix", "system"),
        ("builtins", "exec"),
        ("builtins", "eval"),
        ("__builtin__", "eval"),
        ("subprocess", "Popen"),
        ("torch", "load"),
        ("torch._utils", "_rebuild_tensor_v3"),
    ] {
        for stack_global in [false, true] {
            let pkl = global_call(module, name, "touch /tmp/dokja-pwned", stack_global);
            let p = write(dir.path(), "evil.pt", &archive(pkl));
            let e = open_err(&p);
            assert!(
                e.contains(&format!("{module}.{name}"))
                    && e.contains("evil.pt")
                    && e.contains("refused"),
                "{e}"
            );
        }
    }
    assert!(!Path::new("/tmp/dokja-pwned").exists());
}

fn tensor<'a>(size: Vec<u64>, stride: Vec<u64>, offset: u64, numel: u64) -> PickledTensor<'a> {
    PickledTensor {
        name: "w",
        storage_class: "FloatStorage",
        key: "0",
        numel,
        offset,
        size,
        stride,
    }
}

#[test]
fn exponentially_shared_values_are_not_expanded() {
    // A tuple (x, x) nested 60 deep through the memo: 2^60 leaves in ~300 bytes, passed as
    // a tensor size. Describing it in an error must not walk it.
    let mut p = Pickler::new(2);
    p.op(b'}');
    p.string("w");
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op(b'(');
    p.op(b'(');
    p.string("storage");
    p.global("torch", "FloatStorage");
    p.string("0");
    p.string("cpu");
    p.int(4);
    p.op(b't');
    p.op(b'Q');
    p.int(0);
    p.op(b'N');
    for _ in 0..60 {
        p.out
            .extend_from_slice(&[b'r', 0, 0, 0, 0x7f, b'j', 0, 0, 0, 0x7f, 0x86]);
    }
    p.op(0x85);
    p.int_tuple(&[1]);
    p.op(0x89);
    p.op(b'}');
    p.op(b't');
    p.op(b'R');
    p.op(b's');
    let e = open_err(&write(
        tempfile::tempdir().unwrap().path(),
        "x.pt",
        &archive(p.finish()),
    ));
    assert!(e.contains("tensor size holds a tuple"), "{e}");
}

#[test]
fn repeated_keys_keep_the_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = tensor(vec![2], vec![1], 0, 4);
    let second = tensor(vec![2], vec![1], 2, 4);
    first.name = "w";
    let p = write(
        dir.path(),
        "dup.pt",
        &archive(state_dict_pickle(&[first, second], 2)),
    );
    let m = Model::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(m.tensors.len(), 1);
    assert_eq!(m.tensors[0].offset % 64, 8, "the second view, 2 floats in");
}

#[test]
fn views_that_do_not_fit_their_storage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (label, t, fault) in [
        (
            "strided",
            tensor(vec![2, 2], vec![4, 2], 0, 4),
            "reach past",
        ),
        (
            "noncontig",
            tensor(vec![2, 2, 1], vec![1, 2, 1], 0, 4),
            "non-contiguous",
        ),
        ("offset", tensor(vec![4], vec![1], 1, 4), "reach past"),
        (
            "numel",
            tensor(vec![8], vec![1], 0, 8),
            "entry has 16 bytes",
        ),
        (
            "huge",
            tensor(vec![1 << 62, 1 << 62], vec![1 << 62, 1], 0, 4),
            "overflows",
        ),
    ] {
        let p = write(dir.path(), "v.pt", &archive(state_dict_pickle(&[t], 2)));
        let e = open_err(&p);
        assert!(e.contains(fault) && e.contains("tensor w"), "{label}: {e}");
    }
    let mut missing = tensor(vec![4], vec![1], 0, 4);
    missing.key = "7";
    let p = write(
        dir.path(),
        "v.pt",
        &archive(state_dict_pickle(&[missing], 2)),
    );
    assert!(open_err(&p).contains("no entry data/7"));
    let ok = tensor(vec![2, 2], vec![1, 2], 0, 4);
    let p = write(dir.path(), "v.pt", &archive(state_dict_pickle(&[ok], 4)));
    let m = Model::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(m.tensors[0].layout, StoredLayout::Transposed);
}

#[test]
fn malformed_pickles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "truncated"),
        ("underflow", vec![0x80, 2, b'R', b'.'], "underflow"),
        ("unknown-op", vec![0x80, 2, b'i', b'.'], "opcode 0x69"),
        ("memo", vec![0x80, 2, b'h', 9, b'.'], "memo key 9"),
        (
            "long-string",
            [&[0x80, 2, b'X'][..], &u32::MAX.to_le_bytes()].concat(),
            "truncated",
        ),
        ("not-dict", vec![0x80, 2, b'N', b'.'], "not a dict"),
        ("no-tensors", vec![0x80, 2, b'}', b'.'], "no tensors"),
        (
            "deep",
            [vec![0x80, 2, b'N'], vec![0x85; 100_000], vec![b'.']].concat(),
            "nested",
        ),
        (
            "marks",
            [vec![0x80, 2], vec![b'('; 100_000]].concat(),
            "MARK",
        ),
        ("protocol", vec![0x80, 9, b'.'], "protocol 9"),
        // A dict shared with the memo and grown one item at a time: each SETITEMS would
        // copy it, quadratic work without the copy budget.
        (
            "copying",
            [
                vec![0x80, 2, b'}', b'q', 0],
                [b'(', b'K', 1, b'K', 1, b'u', b'q', 0].repeat(300_000),
                vec![b'.'],
            ]
            .concat(),
            "too much copying",
        ),
    ];
    for (label, pkl, fault) in cases {
        let p = write(dir.path(), "bad.pt", &archive(pkl));
        let e = open_err(&p);
        assert!(e.contains(fault) && e.contains("bad.pt"), "{label}: {e}");
    }
}

/// Rewrites the compression method and uncompressed size of every entry (local and
/// central headers) of a stored archive.
fn patch_entries(zip: &mut [u8], method: u16, size: u32) {
    let mut i = 0;
    while i + 46 <= zip.len() {
        match &zip[i..i + 4] {
            b"PK\x03\x04" => {
                zip[i + 8..i + 10].copy_from_slice(&method.to_le_bytes());
                zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            }
            b"PK\x01\x02" => {
                zip[i + 10..i + 12].copy_from_slice(&method.to_le_bytes());
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
            _ => {}
        }
        i += 1;
    }
}

#[test]
fn zip_bombs_and_lying_archives_are_refused() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let good = torch_checkpoint_bytes(&m, &TorchOptions::new(StDtype::F32));
    // Deflate declaring 4 GiB per entry: nothing is inflated.
    let mut bomb = good.clone();
    patch_entries(&mut bomb, 8, u32::MAX - 1);
    let e = open_err(&write(dir.path(), "bomb.pt", &bomb));
    assert!(e.contains("is compressed (Deflated)"), "{e}");
    // Stored, but declaring more bytes than the archive holds.
    let mut lying = good.clone();
    patch_entries(&mut lying, 0, u32::MAX - 1);
    let e = open_err(&write(dir.path(), "lying.pt", &lying));
    assert!(
        e.contains("lying.pt") && e.contains("declares 4294967294 bytes"),
        "{e}"
    );
    // Entry names that climb out of the archive.
    for evil in ["../../evil/data.pkl", "/abs/data.pkl", "a/./data.pkl"] {
        let z = torch_zip(&[(evil.to_string(), b"\x80\x02}.".to_vec())]);
        let e = open_err(&write(dir.path(), "names.pt", &z));
        assert!(e.contains("not a plain relative path"), "{evil}: {e}");
    }
    // A legacy (pre-1.6) checkpoint is a bare pickle.
    let e = open_err(&write(dir.path(), "old.pt", b"\x80\x02\x8a\x0alegacy"));
    assert!(e.contains("legacy"), "{e}");
    let e = open_err(&write(
        dir.path(),
        "nopkl.pt",
        &torch_zip(&[("a/b".into(), vec![1])]),
    ));
    assert!(e.contains("data.pkl"), "{e}");
}

#[test]
fn truncation_at_every_length_never_panics() {
    let m = llama_like(
        &LlamaSpec {
            num_layers: 1,
            vocab_size: 8,
            hidden_size: 8,
            intermediate_size: 8,
            num_heads: 2,
            num_kv_heads: 1,
            head_dim: 4,
            tokenizer: None,
            ..LlamaSpec::default()
        },
        1,
    );
    let bytes = torch_checkpoint_bytes(&m, &TorchOptions::new(StDtype::F16));
    let dir = tempfile::tempdir().unwrap();
    for len in 0..bytes.len() {
        // A new file each time: rewriting one in place makes ext4 flush it to disk.
        let p = dir.path().join(format!("t{len}.pt"));
        std::fs::write(&p, &bytes[..len]).unwrap();
        let e = Model::open(&p, OpenOptions::default()).unwrap_err();
        assert!(
            matches!(
                e,
                FormatError::Malformed { .. } | FormatError::Unsupported { .. }
            ),
            "{len}: {e}"
        );
    }
    // And the pickle alone, cut at every length inside an intact archive.
    let opts = TorchOptions::new(StDtype::F16);
    let full = torch_checkpoint_bytes(&m, &opts);
    let ok = Model::open(&write(dir.path(), "full.pt", &full), OpenOptions::default()).unwrap();
    assert_eq!(ok.tensors.len(), m.tensors.len());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn random_pickles_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut pkl = vec![0x80, 2];
            pkl.extend(bytes);
            let dir = tempfile::tempdir().unwrap();
            let p = write(dir.path(), "r.pt", &archive(pkl));
            let _ = Model::open(&p, OpenOptions::default());
        }

        #[test]
        fn mutated_pickles_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
        ) {
            let t = [tensor(vec![2, 2], vec![2, 1], 0, 4)];
            let mut pkl = state_dict_pickle(&t, 2);
            for (i, b) in flips {
                let i = i.index(pkl.len());
                pkl[i] = b;
            }
            let dir = tempfile::tempdir().unwrap();
            let p = write(dir.path(), "m.pt", &archive(pkl));
            if let Ok(m) = Model::open(&p, OpenOptions::default()) {
                for t in &m.tensors {
                    let _ = m.read_all(t);
                }
            }
        }

        #[test]
        fn random_archives_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut z = b"PK\x03\x04".to_vec();
            z.extend(bytes);
            let dir = tempfile::tempdir().unwrap();
            let p = write(dir.path(), "z.pt", &z);
            let _ = Model::open(&p, OpenOptions::default());
        }
    }
}
