//! The tokenizer and licence a GGUF file carries in its metadata.

use std::collections::BTreeMap;
use std::path::Path;

use super::reader::FORMAT;
use super::value::{Array, Value};
use crate::error::{FormatError, Result};
use crate::hf::Licence;
use crate::tokenizer::{MAX_MERGES, MAX_VOCAB, SpecialToken, Tokenizer, TokenizerKind};

type Kv = BTreeMap<String, Value>;

/// Special-token keys, in the order they are reported. GGUF spells "seperator" so; the
/// correct spelling is accepted too.
const SPECIAL_KEYS: &[&str] = &[
    "bos_token_id",
    "eos_token_id",
    "unknown_token_id",
    "padding_token_id",
    "seperator_token_id",
    "separator_token_id",
    "cls_token_id",
    "mask_token_id",
    "eot_token_id",
    "eom_token_id",
];

/// The tokenizer in `tokenizer.ggml.*`, or None if the file has no vocabulary. Moves the
/// token and merge lists out of `kv` (they are large; the metadata keeps a summary).
pub fn tokenizer(path: &Path, kv: &mut Kv) -> Result<Option<Tokenizer>> {
    let bad = |fault: String| FormatError::malformed(path, FORMAT, fault);
    let model = kv
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if model == "no_vocab" {
        return Ok(None);
    }
    let Some(tokens) = kv.remove("tokenizer.ggml.tokens") else {
        return Ok(None);
    };
    let vocab = strings(tokens, "tokenizer.ggml.tokens", MAX_VOCAB).map_err(bad)?;
    let merges = match kv.remove("tokenizer.ggml.merges") {
        Some(m) => strings(m, "tokenizer.ggml.merges", MAX_MERGES).map_err(bad)?,
        None => Vec::new(),
    };
    let scores = match kv.get("tokenizer.ggml.scores") {
        Some(Value::Array(Array::F32(s))) => s.as_slice(),
        _ => &[],
    };
    let kind = kind_of(&model, !merges.is_empty(), scores);
    let special_tokens = special_tokens(kv, &vocab);
    Ok(Some(Tokenizer {
        kind,
        vocab,
        merges,
        special_tokens,
        source: "gguf metadata".into(),
    }))
}

fn strings(v: Value, key: &str, max: usize) -> std::result::Result<Vec<String>, String> {
    match v {
        Value::Array(Array::Str(s)) if s.len() <= max => Ok(s),
        Value::Array(Array::Str(s)) => {
            Err(format!("{key} has {} entries (at most {max})", s.len()))
        }
        Value::Array(Array::Arr(a)) if a.is_empty() => Ok(Vec::new()),
        _ => Err(format!("{key} is not an array of strings")),
    }
}

/// GGUF's tokenizer model names. "llama" is SentencePiece, which may be BPE (scores are
/// minus the merge rank: whole numbers) or unigram (scores are log-probabilities).
fn kind_of(model: &str, has_merges: bool, scores: &[f32]) -> TokenizerKind {
    match model {
        "gpt2" => TokenizerKind::ByteLevelBpe,
        "bert" => TokenizerKind::WordPiece,
        "t5" => TokenizerKind::Unigram,
        "llama" if has_merges => TokenizerKind::Bpe,
        "llama" if scores.iter().any(|s| s.is_finite() && s.fract() != 0.0) => {
            TokenizerKind::Unigram
        }
        "llama" => TokenizerKind::Bpe,
        _ => TokenizerKind::Unknown,
    }
}

/// Declared special tokens whose ids lie inside the vocabulary (others are skipped: some
/// converters write a padding id one past the end).
fn special_tokens(kv: &Kv, vocab: &[String]) -> Vec<SpecialToken> {
    let mut out: Vec<SpecialToken> = Vec::new();
    for key in SPECIAL_KEYS {
        let Some(id) = kv
            .get(&format!("tokenizer.ggml.{key}"))
            .and_then(Value::as_u64)
        else {
            continue;
        };
        let Some(content) = usize::try_from(id).ok().and_then(|i| vocab.get(i)) else {
            continue;
        };
        if out.iter().any(|t| u64::from(t.id) == id) {
            continue;
        }
        out.push(SpecialToken {
            // id < vocab.len() <= MAX_VOCAB, so it fits.
            id: id as u32,
            content: content.clone(),
        });
    }
    out
}

/// `general.license` (an SPDX-like id or a short name), lower-cased.
pub fn licence(kv: &Kv) -> Option<Licence> {
    let id = kv.get("general.license").and_then(Value::as_str)?.trim();
    if id.is_empty() {
        return None;
    }
    Some(Licence {
        id: Some(id.to_lowercase()),
        title: kv
            .get("general.license.name")
            .and_then(Value::as_str)
            .map(str::to_string),
        source: "gguf general.license".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of("gpt2", true, &[]), TokenizerKind::ByteLevelBpe);
        assert_eq!(
            kind_of("llama", false, &[0.0, -1.0, -2.0]),
            TokenizerKind::Bpe
        );
        assert_eq!(
            kind_of("llama", false, &[0.0, -1.5, -2.25]),
            TokenizerKind::Unigram
        );
        assert_eq!(kind_of("llama", true, &[0.0, -1.5]), TokenizerKind::Bpe);
        assert_eq!(kind_of("bert", false, &[]), TokenizerKind::WordPiece);
        assert_eq!(kind_of("rwkv", false, &[]), TokenizerKind::Unknown);
    }

    #[test]
    fn special_ids_are_bounds_checked() {
        let mut kv = Kv::new();
        kv.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(1));
        kv.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(1));
        kv.insert("tokenizer.ggml.padding_token_id".into(), Value::U32(3));
        kv.insert("tokenizer.ggml.unknown_token_id".into(), Value::I32(-1));
        let vocab = vec!["<unk>".to_string(), "<s>".into(), "a".into()];
        let st = special_tokens(&kv, &vocab);
        assert_eq!(
            st,
            vec![SpecialToken {
                id: 1,
                content: "<s>".into()
            }]
        );
    }
}
