//! Classification of a real checkpoint's tensor names (the pinned MiniLM test model, a
//! `BertModel` without prefix). Reads only the safetensors header.

use std::path::PathBuf;

use dokja_schema::{Component, Family, Role, classify, family_from_tensor_names};

fn models_dir() -> Option<PathBuf> {
    match std::env::var_os("DOKJA_TEST_MODELS") {
        Some(d) => Some(PathBuf::from(d)),
        None if std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1") => {
            panic!("DOKJA_REQUIRE_TEST_MODELS=1 but DOKJA_TEST_MODELS is not set")
        }
        None => None,
    }
}

fn safetensors_names(path: &std::path::Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

#[test]
fn minilm_bert_names() {
    let Some(dir) = models_dir() else {
        eprintln!("DOKJA_TEST_MODELS not set: skipping");
        return;
    };
    let names = safetensors_names(&dir.join("minilm/model.safetensors"));
    assert_eq!(
        names.len(),
        104,
        "MiniLM-L6: 6 embedding tensors, 16 per layer, 2 pooler"
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(family_from_tensor_names(&refs), Some(Family::Bert));
    let mut layers = std::collections::BTreeSet::new();
    for name in &names {
        let c = classify(name);
        assert_eq!(c.component, Component::LanguageModel, "{name}");
        if name == "embeddings.position_ids" {
            assert!(!c.learned, "{name}");
            continue;
        }
        assert_ne!(c.role, Role::Other, "{name}");
        assert!(c.learned, "{name}");
        layers.extend(c.layer);
    }
    assert_eq!(
        layers.into_iter().collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    let count = |role| names.iter().filter(|n| classify(n).role == role).count();
    // Weight + bias per layer.
    for role in [
        Role::AttnQ,
        Role::AttnK,
        Role::AttnV,
        Role::AttnO,
        Role::MlpUp,
        Role::MlpDown,
    ] {
        assert_eq!(count(role), 12, "{role}");
    }
    assert_eq!(count(Role::Norm), 2 + 6 * 4);
}
