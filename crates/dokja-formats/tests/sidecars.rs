//! Config, tokenizer and licence files beside the weights.

use std::path::Path;

use dokja_formats::{Model, OpenOptions, TokenizerKind};

fn minimal_weights(dir: &Path) {
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(dir.join("model.safetensors"), v).unwrap();
}

#[test]
fn tokenizer_json_byte_level_bpe() {
    let dir = tempfile::tempdir().unwrap();
    minimal_weights(dir.path());
    let tok = r#"{"added_tokens":[{"id":3,"content":"<|endoftext|>","special":true}],
        "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"ByteLevel"}]},
        "model":{"type":"BPE","vocab":{"a":0,"Ġthe":1,"the":2},"merges":["Ġ t","t h",["th","e"]]}}"#;
    std::fs::write(dir.path().join("tokenizer.json"), tok).unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type":"llama"}"#).unwrap();
    std::fs::write(
        dir.path().join("README.md"),
        "---\nlicense: apache-2.0\n---\n",
    )
    .unwrap();
    let m = Model::open(dir.path(), OpenOptions::default()).unwrap();
    let t = m.sidecars.tokenizer.as_ref().unwrap();
    assert_eq!(t.kind, TokenizerKind::ByteLevelBpe);
    assert_eq!(t.vocab, ["a", "Ġthe", "the", "<|endoftext|>"]);
    assert_eq!(t.merges, ["Ġ t", "t h", "th e"]);
    assert_eq!(t.special_tokens.len(), 1);
    assert_eq!(t.normalized(1).unwrap(), " the");
    assert_eq!(m.sidecars.config.as_ref().unwrap()["model_type"], "llama");
    assert_eq!(
        m.sidecars.licence.as_ref().unwrap().id.as_deref(),
        Some("apache-2.0")
    );
    // Opening the file directly finds the same sidecars.
    let m = Model::open(
        &dir.path().join("model.safetensors"),
        OpenOptions::default(),
    )
    .unwrap();
    assert!(m.sidecars.tokenizer.is_some());
}

#[test]
fn sparse_or_hostile_vocab_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    minimal_weights(dir.path());
    let tok = r#"{"model":{"type":"BPE","vocab":{"a":0,"b":4000000},"merges":[]}}"#;
    std::fs::write(dir.path().join("tokenizer.json"), tok).unwrap();
    let e = Model::open(dir.path(), OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer.json"), "{e}");
}

#[test]
fn corrupt_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    minimal_weights(dir.path());
    std::fs::write(dir.path().join("config.json"), "{ nope").unwrap();
    let e = Model::open(dir.path(), OpenOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("config.json"), "{e}");
}

/// Encodes a minimal SentencePiece ModelProto: pieces (field 1) and trainer spec (field 2).
fn sentencepiece(pieces: &[(&str, u64)], model_type: u64) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    for (piece, ty) in pieces {
        let mut msg = vec![0x0A];
        varint(piece.len() as u64, &mut msg);
        msg.extend_from_slice(piece.as_bytes());
        msg.extend_from_slice(&[0x15, 0, 0, 0, 0]); // score, fixed32
        msg.push(0x18);
        varint(*ty, &mut msg);
        out.push(0x0A);
        varint(msg.len() as u64, &mut out);
        out.extend(msg);
    }
    out.extend_from_slice(&[0x12, 2, 0x18, model_type as u8]);
    out
}

#[test]
fn sentencepiece_model() {
    let dir = tempfile::tempdir().unwrap();
    minimal_weights(dir.path());
    let bytes = sentencepiece(&[("<unk>", 2), ("<s>", 3), ("\u{2581}the", 1), ("a", 1)], 2);
    std::fs::write(dir.path().join("tokenizer.model"), &bytes).unwrap();
    let m = Model::open(dir.path(), OpenOptions::default()).unwrap();
    let t = m.sidecars.tokenizer.as_ref().unwrap();
    assert_eq!(t.kind, TokenizerKind::Bpe);
    assert_eq!(t.vocab.len(), 4);
    assert_eq!(t.special_tokens.len(), 2);
    assert_eq!(t.normalized(2).unwrap(), " the");
    // Every truncation is an error naming the file, never a panic.
    for cut in 1..bytes.len() {
        std::fs::write(dir.path().join("tokenizer.model"), &bytes[..cut]).unwrap();
        if let Err(e) = Model::open(dir.path(), OpenOptions::default()) {
            assert!(e.to_string().contains("tokenizer.model"));
        }
    }
}

#[test]
fn wordpiece_vocab_txt_and_licence_file() {
    let dir = tempfile::tempdir().unwrap();
    minimal_weights(dir.path());
    std::fs::write(
        dir.path().join("vocab.txt"),
        "[PAD]\n[unused0]\n[CLS]\nthe\n##ing\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("LICENSE"),
        "\n   Apache License\n Version 2.0\n",
    )
    .unwrap();
    let m = Model::open(dir.path(), OpenOptions::default()).unwrap();
    let t = m.sidecars.tokenizer.as_ref().unwrap();
    assert_eq!(t.kind, TokenizerKind::WordPiece);
    assert_eq!(t.special_tokens.len(), 2);
    let l = m.sidecars.licence.as_ref().unwrap();
    assert_eq!(l.id.as_deref(), Some("apache-2.0"));
    assert_eq!(l.source, "LICENSE");
}
