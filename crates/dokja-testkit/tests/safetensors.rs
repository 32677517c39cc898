mod common;

use common::{parse_safetensors, tmpdir};
use dokja_testkit::*;
use serde_json::Value;

fn decode(dtype: &str, b: &[u8]) -> Vec<f32> {
    match dtype {
        "F32" => common::decode_float(0, b),
        "F16" => common::decode_float(1, b),
        "BF16" => common::decode_float(30, b),
        "F64" => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        _ => panic!("{dtype}"),
    }
}

/// Checks the spec's invariants and returns name -> (dtype, shape, values).
fn check_file(bytes: &[u8]) -> Vec<(String, String, Vec<usize>, Vec<f32>)> {
    let f = parse_safetensors(bytes);
    assert_eq!(f.header_len % 8, 0, "header padded to 8");
    let text = String::from_utf8(f.raw_header.clone()).unwrap();
    assert_eq!(text.trim_end(), text.trim_end_matches(' '));
    assert!(text.starts_with('{'));
    let mut end = 0;
    let mut out = Vec::new();
    for (i, (name, info)) in f.header.iter().enumerate() {
        if name == "__metadata__" {
            assert_eq!(i, 0, "__metadata__ comes first");
            assert!(info.as_object().unwrap().values().all(Value::is_string));
            continue;
        }
        let dtype = info["dtype"].as_str().unwrap().to_string();
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let off: Vec<usize> = info["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            off[0], end,
            "{name}: tensors are contiguous in header order"
        );
        let size = match dtype.as_str() {
            "F64" => 8,
            "F32" => 4,
            _ => 2,
        };
        assert_eq!(
            off[1] - off[0],
            shape.iter().product::<usize>() * size,
            "{name}: length"
        );
        end = off[1];
        out.push((
            name.clone(),
            dtype.clone(),
            shape,
            decode(&dtype, &f.data[off[0]..off[1]]),
        ));
    }
    assert_eq!(end, f.data.len(), "no trailing bytes");
    out
}

#[test]
fn single_file_layout_and_values() {
    let m = llama_like(&LlamaSpec::default(), 1);
    for dtype in [StDtype::F32, StDtype::F16, StDtype::BF16, StDtype::F64] {
        let refs: Vec<&SynthTensor> = m.tensors.iter().collect();
        let bytes = safetensors_bytes(&refs, &StOptions::new(dtype));
        let tensors = check_file(&bytes);
        assert_eq!(tensors.len(), m.tensors.len());
        let names: Vec<&String> = tensors.iter().map(|t| &t.0).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "one dtype: sorted by name");
        for (name, dt, shape, values) in &tensors {
            let t = m.tensor(name);
            assert_eq!(dt, dtype.name());
            assert_eq!(shape, &t.shape);
            let expect: Vec<f32> = t.data.iter().map(|v| dtype.round(*v)).collect();
            assert_eq!(values, &expect, "{name} in {dt}");
        }
    }
}

#[test]
fn overrides_and_metadata() {
    let m = llama_like(&LlamaSpec::default(), 1);
    let opts = StOptions::new(StDtype::BF16).with_override("model.norm.weight", StDtype::F32);
    let tmp = tmpdir("st");
    let dir = tmp.path().to_path_buf();
    let path = dir.join("m.safetensors");
    write_safetensors_with(&m, &path, &opts).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let f = parse_safetensors(&bytes);
    assert_eq!(f.header["__metadata__"]["format"], "pt");
    // Wider dtypes are laid out first.
    let first = f.header.keys().nth(1).unwrap();
    assert_eq!(first, "model.norm.weight");
    assert_eq!(f.header["model.norm.weight"]["dtype"], "F32");
    check_file(&bytes);
    let bare = safetensors_bytes(
        &[m.tensor("model.norm.weight")],
        &StOptions::new(StDtype::F32).without_metadata(),
    );
    assert!(!parse_safetensors(&bare).header.contains_key("__metadata__"));
}

#[test]
fn sharded_index_matches_shards() {
    let m = llama_like(&LlamaSpec::default(), 2);
    let tmp = tmpdir("shard");
    let dir = tmp.path().to_path_buf();
    let paths = write_sharded(&m, &dir, 40_000, StDtype::F16).unwrap();
    assert!(
        paths.len() > 2,
        "expected several shards, got {}",
        paths.len()
    );
    let n = paths.len();
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.safetensors.index.json")).unwrap())
            .unwrap();
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), m.tensors.len());
    let mut total = 0;
    let mut seen = 0;
    for (i, p) in paths.iter().enumerate() {
        let file = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(file, format!("model-{:05}-of-{:05}.safetensors", i + 1, n));
        let bytes = std::fs::read(p).unwrap();
        for (name, _, _, values) in check_file(&bytes) {
            assert_eq!(map[&name], file, "{name}");
            assert_eq!(values.len(), m.tensor(&name).n_elements());
            total += values.len() * 2;
            seen += 1;
        }
        // No shard exceeds the limit unless it holds a single tensor.
        let f = parse_safetensors(&bytes);
        assert!(f.data.len() <= 40_000 || f.header.len() == 2);
    }
    assert_eq!(seen, m.tensors.len());
    assert_eq!(index["metadata"]["total_size"], total);
}

#[test]
fn hf_folder_contents() {
    let m = llama_like(&LlamaSpec::default(), 3);
    let tmp = tmpdir("hf");
    let dir = tmp.path().to_path_buf();
    write_hf_folder(&m, &dir, WeightsLayout::Single, StDtype::BF16).unwrap();
    for f in [
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "LICENSE",
        "README.md",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["torch_dtype"], "bfloat16");
    assert_eq!(cfg["model_type"], "llama");
    let tok: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(tok["model"]["type"], "BPE");
    let vocab = tok["model"]["vocab"].as_object().unwrap();
    assert_eq!(vocab.len(), 512);
    assert_eq!(
        vocab["Ġthe"].as_u64().unwrap() as u32,
        m.tokenizer.as_ref().unwrap().id_of("Ġthe").unwrap()
    );
    assert!(
        tok["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.as_str().unwrap().contains(' '))
    );
    let added = tok["added_tokens"].as_array().unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(added[1]["content"], "<|end_of_text|>");
    assert_eq!(added[1]["special"], true);
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.starts_with("---\nlicense: apache-2.0\n"));
    assert!(
        std::fs::read_to_string(dir.join("LICENSE"))
            .unwrap()
            .contains("Apache License")
    );

    let tmp = tmpdir("hf-sharded");
    let dir = tmp.path().to_path_buf();
    let mut opts = HfFolderOptions::new(
        WeightsLayout::Sharded {
            max_shard_bytes: 50_000,
        },
        StDtype::F32,
    );
    opts.license = License::other("llama3", "LLAMA 3 COMMUNITY LICENSE AGREEMENT");
    opts.merges_as_pairs = true;
    write_hf_folder_with(&m, &dir, &opts).unwrap();
    assert!(dir.join("model.safetensors.index.json").is_file());
    assert!(!dir.join("model.safetensors").exists());
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("license: other\nlicense_name: llama3\n"));
    let tok: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(tok["model"]["merges"][0].as_array().unwrap().len(), 2);
}

#[test]
fn other_tokenizer_kinds_in_tokenizer_json() {
    let b = bert_like(&BertSpec::default(), 1);
    let tmp = tmpdir("bert");
    let dir = tmp.path().to_path_buf();
    write_hf_folder(&b, &dir, WeightsLayout::Single, StDtype::F32).unwrap();
    let tok: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(tok["model"]["type"], "WordPiece");
    assert_eq!(tok["model"]["vocab"]["[CLS]"], 2);
    let u = llama_like(
        &LlamaSpec {
            tokenizer: Some(TokenizerKind::Unigram),
            ..Default::default()
        },
        1,
    );
    let j = hf_folder::tokenizer_json(u.tokenizer.as_ref().unwrap(), false);
    assert_eq!(j["model"]["type"], "Unigram");
    let v = j["model"]["vocab"].as_array().unwrap();
    assert_eq!(v.len(), 512);
    assert_eq!(v[3][0], "<0x00>");
    assert!(v[300][1].as_f64().unwrap() < 0.0);
}

#[test]
fn same_seed_same_bytes() {
    let opts = StOptions::new(StDtype::BF16);
    let bytes = |seed| {
        let m = moe_like(&MoeSpec::default(), seed);
        safetensors_bytes(&m.tensors.iter().collect::<Vec<_>>(), &opts)
    };
    assert_eq!(bytes(5), bytes(5));
    assert_ne!(bytes(5), bytes(6));
}
