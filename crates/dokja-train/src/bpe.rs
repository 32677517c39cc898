//! A byte-level BPE tokenizer learned from text, with GPT-2's byte-to-character mapping for
//! token strings (so `" the"` is `"Ġthe"`), so dokja can align embeddings across models by
//! token string exactly as it does for real checkpoints.
//!
//! Layout (as Llama 3 / the test kit): 256 byte tokens in GPT-2 order, learned merges, then
//! `<|begin_of_text|>` and `<|end_of_text|>` as the last two ids.

use std::collections::HashMap;

use dokja_testkit::tokenizer::gpt2_byte_to_char;
use dokja_testkit::{SynthTokenizer, TokenizerKind};

use crate::{Result, TrainError};

const SPECIALS: [&str; 2] = ["<|begin_of_text|>", "<|end_of_text|>"];

#[derive(Clone, Debug, PartialEq)]
pub struct Bpe {
    tokenizer: SynthTokenizer,
    /// Token id of each byte.
    byte_id: [u32; 256],
    /// (left, right) -> (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
}

fn printable(b: u8) -> bool {
    (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
}

/// Pre-tokenization classes (GPT-2 style): letters (any non-ASCII byte counts as a letter,
/// so Hangul words stay whole), digits, other symbols, spaces, other whitespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Symbol,
    Space,
    Newline,
}

fn class(b: u8) -> Class {
    match b {
        b' ' => Class::Space,
        b'\n' | b'\r' | b'\t' => Class::Newline,
        b'0'..=b'9' => Class::Digit,
        _ if b.is_ascii_alphabetic() || b >= 0x80 => Class::Letter,
        _ => Class::Symbol,
    }
}

/// Splits text into chunks that merges never cross: a run of one class, with a single
/// leading space attached to a following word, digit run or symbol run.
fn chunks(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= text.len() {
            return None;
        }
        let start = i;
        let mut c = class(text[i]);
        if c == Class::Space && i + 1 < text.len() {
            let next = class(text[i + 1]);
            if matches!(next, Class::Letter | Class::Digit | Class::Symbol) {
                i += 1;
                c = next;
            }
        }
        i += 1;
        while i < text.len() && class(text[i]) == c {
            i += 1;
        }
        Some(&text[start..i])
    })
}

impl Bpe {
    /// Learns merges from `text` until the vocabulary (with the two specials) has
    /// `vocab_size` tokens. Ties in pair counts go to the smallest id pair: deterministic.
    pub fn learn(text: &[u8], vocab_size: usize) -> Result<Bpe> {
        if vocab_size < 256 + SPECIALS.len() {
            return Err(TrainError::Spec(format!(
                "byte-level BPE needs a vocabulary of at least 258, got {vocab_size}"
            )));
        }
        let mut vocab = byte_tokens();
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for c in chunks(text) {
            *counts.entry(c).or_default() += 1;
        }
        let byte_id = byte_ids(&vocab);
        // Sorted so that the merge loop's work is independent of hash order.
        let mut words: Vec<(Vec<u32>, u64)> = counts
            .into_iter()
            .map(|(w, n)| (w.iter().map(|&b| byte_id[b as usize]).collect(), n))
            .collect();
        words.sort_unstable();
        let mut ids: HashMap<String, u32> = vocab
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let mut merges = Vec::new();
        while vocab.len() < vocab_size - SPECIALS.len() {
            let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
            for (w, n) in &words {
                for p in w.windows(2) {
                    *pairs.entry((p[0], p[1])).or_default() += n;
                }
            }
            let Some((&(a, b), _)) = pairs
                .iter()
                .max_by(|x, y| x.1.cmp(y.1).then_with(|| y.0.cmp(x.0)))
            else {
                break; // every chunk is a single token
            };
            let joined = format!("{}{}", vocab[a as usize], vocab[b as usize]);
            // Two merge paths can spell one string; the token keeps its first id.
            let id = *ids.entry(joined.clone()).or_insert_with(|| {
                vocab.push(joined);
                vocab.len() as u32 - 1
            });
            merges.push(format!("{} {}", vocab[a as usize], vocab[b as usize]));
            for (w, _) in &mut words {
                merge_in_place(w, a, b, id);
            }
        }
        let bos = vocab.len() as u32;
        vocab.extend(SPECIALS.iter().map(|s| s.to_string()));
        let tokenizer = SynthTokenizer {
            kind: TokenizerKind::ByteLevelBpe,
            vocab,
            merges,
            scores: Vec::new(),
            special: vec![bos, bos + 1],
            bos: Some(bos),
            eos: Some(bos + 1),
            unk: None,
            pad: None,
        };
        Bpe::from_tokenizer(&tokenizer)
    }

    /// Rebuilds the encoder of a byte-level BPE tokenizer (e.g. one read from the cache or
    /// carried by a model being fine-tuned).
    pub fn from_tokenizer(t: &SynthTokenizer) -> Result<Bpe> {
        let bad = |msg: String| TrainError::Spec(format!("tokenizer: {msg}"));
        if t.kind != TokenizerKind::ByteLevelBpe {
            return Err(bad(format!("{:?} is not byte-level BPE", t.kind)));
        }
        let ids: HashMap<&str, u32> = t
            .vocab
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        let id = |s: &str| {
            ids.get(s)
                .copied()
                .ok_or_else(|| bad(format!("no token {s:?}")))
        };
        let mut byte_id = [0u32; 256];
        for b in 0..=255u8 {
            byte_id[b as usize] = id(&gpt2_byte_to_char(b).to_string())?;
        }
        let mut merges = HashMap::new();
        for (rank, m) in t.merges.iter().enumerate() {
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| bad(format!("merge {m:?}")))?;
            let pair = (id(a)?, id(b)?);
            let joined = id(&format!("{a}{b}"))?;
            merges.entry(pair).or_insert((rank as u32, joined));
        }
        Ok(Bpe {
            tokenizer: t.clone(),
            byte_id,
            merges,
        })
    }

    pub fn tokenizer(&self) -> &SynthTokenizer {
        &self.tokenizer
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.vocab.len()
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &[u8]) -> Vec<u32> {
        let mut memo: HashMap<&[u8], Vec<u32>> = HashMap::new();
        let mut out = Vec::with_capacity(text.len() / 2);
        for c in chunks(text) {
            let ids = memo.entry(c).or_insert_with(|| self.encode_chunk(c));
            out.extend_from_slice(ids);
        }
        out
    }

    fn encode_chunk(&self, chunk: &[u8]) -> Vec<u32> {
        let mut w: Vec<u32> = chunk.iter().map(|&b| self.byte_id[b as usize]).collect();
        // Apply the best-ranked merge present until none applies (standard BPE).
        loop {
            let best = w
                .windows(2)
                .filter_map(|p| self.merges.get(&(p[0], p[1])).map(|&(r, id)| (r, p, id)))
                .min_by_key(|x| x.0);
            let Some((_, p, id)) = best else {
                return w;
            };
            let (a, b) = (p[0], p[1]);
            merge_in_place(&mut w, a, b, id);
        }
    }

    /// The bytes of `ids` (special tokens are skipped).
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        let mut char_byte: HashMap<char, u8> = HashMap::new();
        for b in 0..=255u8 {
            char_byte.insert(gpt2_byte_to_char(b), b);
        }
        ids.iter()
            .filter(|&&i| !self.tokenizer.is_special(i))
            .filter_map(|&i| self.tokenizer.token(i))
            .flat_map(|s| s.chars().filter_map(|c| char_byte.get(&c).copied()))
            .collect()
    }
}

fn merge_in_place(w: &mut Vec<u32>, a: u32, b: u32, id: u32) {
    if w.len() < 2 {
        return;
    }
    let mut out = 0;
    let mut i = 0;
    while i < w.len() {
        if i + 1 < w.len() && w[i] == a && w[i + 1] == b {
            w[out] = id;
            i += 2;
        } else {
            w[out] = w[i];
            i += 1;
        }
        out += 1;
    }
    w.truncate(out);
}

/// The 256 byte tokens in GPT-2's vocabulary order (printable bytes first).
fn byte_tokens() -> Vec<String> {
    (0..=255u8)
        .filter(|&b| printable(b))
        .chain((0..=255u8).filter(|&b| !printable(b)))
        .map(|b| gpt2_byte_to_char(b).to_string())
        .collect()
}

fn byte_ids(vocab: &[String]) -> [u32; 256] {
    let mut out = [0u32; 256];
    for b in 0..=255u8 {
        let s = gpt2_byte_to_char(b).to_string();
        out[b as usize] = vocab.iter().position(|t| *t == s).unwrap_or(0) as u32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "the cat sat on the mat. the cat ate the rat! 12 cats, 345 mats.\n\
                        한국어 문장도 있습니다. 한국어 문장.\n";

    #[test]
    fn learns_merges_and_round_trips() {
        let text = TEXT.repeat(20);
        let bpe = Bpe::learn(text.as_bytes(), 300).unwrap();
        let t = bpe.tokenizer();
        assert_eq!(t.vocab.len(), 300);
        assert_eq!(t.vocab[0], "!");
        assert!(
            t.vocab.contains(&"Ġthe".to_string()),
            "{:?}",
            &t.vocab[256..]
        );
        assert_eq!(t.token(t.eos.unwrap()), Some("<|end_of_text|>"));
        let ids = bpe.encode(text.as_bytes());
        assert!(ids.len() * 2 < text.len(), "{} tokens", ids.len());
        assert_eq!(bpe.decode(&ids), text.as_bytes());
        // Unseen text still encodes (byte fallback) and round-trips.
        let other = "zebra ÿ\u{1F600}";
        assert_eq!(bpe.decode(&bpe.encode(other.as_bytes())), other.as_bytes());
        // Rebuilding from the stored tokenizer gives the same encoder.
        assert_eq!(Bpe::from_tokenizer(t).unwrap(), bpe);
    }

    #[test]
    fn learning_is_deterministic() {
        let text = TEXT.repeat(5);
        let a = Bpe::learn(text.as_bytes(), 290).unwrap();
        let b = Bpe::learn(text.as_bytes(), 290).unwrap();
        assert_eq!(a.tokenizer(), b.tokenizer());
    }

    #[test]
    fn chunks_keep_words_whole() {
        let c: Vec<&[u8]> = chunks(b"Hi there, 42 cats\n\n").collect();
        let c: Vec<&str> = c.iter().map(|s| std::str::from_utf8(s).unwrap()).collect();
        assert_eq!(c, ["Hi", " there", ",", " 42", " cats", "\n\n"]);
    }
}
