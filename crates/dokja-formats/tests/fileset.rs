//! Models read through a `FileSet` (the path remote models take) equal the same models read
//! from their folder.

use dokja_formats::fileset::LocalFolder;
use dokja_formats::{Model, OpenOptions, ReadMode};
use dokja_testkit::{
    GgufOptions, LlamaSpec, StDtype, WeightsLayout, llama_like, write_gguf, write_hf_folder,
};

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn file_sets_read_like_folders() {
    let dir = tempfile::tempdir().unwrap();
    let model = llama_like(&LlamaSpec::default(), 5);
    let sharded = WeightsLayout::Sharded {
        max_shard_bytes: 50_000,
    };
    for (name, layout) in [("single", WeightsLayout::Single), ("sharded", sharded)] {
        let folder = dir.path().join(name);
        write_hf_folder(&model, &folder, layout, StDtype::F16).unwrap();
        let local = Model::open(&folder, OpenOptions::default()).unwrap();
        let set = LocalFolder {
            dir: folder.clone(),
            read_mode: ReadMode::Pread,
        };
        for file in [None, Some("model.safetensors.index.json")] {
            if name == "single" && file.is_some() {
                continue;
            }
            let via_set = Model::open_file_set(&set, file).unwrap();
            assert_eq!(local.format, via_set.format);
            assert_eq!(json(&local.tensors), json(&via_set.tensors));
            assert_eq!(json(&local.metadata), json(&via_set.metadata));
            assert_eq!(json(&local.sidecars), json(&via_set.sidecars));
            for t in &local.tensors {
                assert_eq!(local.read_all(t).unwrap(), via_set.read_all(t).unwrap());
            }
        }
    }
    write_gguf(&model, &dir.path().join("m.gguf"), &GgufOptions::default()).unwrap();
    let set = LocalFolder {
        dir: dir.path().to_path_buf(),
        read_mode: ReadMode::Mmap,
    };
    let local = Model::open(&dir.path().join("m.gguf"), OpenOptions::default()).unwrap();
    let via_set = Model::open_file_set(&set, Some("m.gguf")).unwrap();
    assert_eq!(json(&local.tensors), json(&via_set.tensors));
    assert_eq!(json(&local.sidecars), json(&via_set.sidecars));
    // A folder cannot be listed: a GGUF must be named.
    let err = Model::open_file_set(&set, None).unwrap_err().to_string();
    assert!(err.contains("name the weights file"), "{err}");
    let err = Model::open_file_set(&set, Some("missing.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.safetensors") && err.contains("no such file"),
        "{err}"
    );
}
