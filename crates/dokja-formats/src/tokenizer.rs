//! Tokenizer vocabularies, read from tokenizer.json, SentencePiece's tokenizer.model or GGUF
//! metadata. Provenance aligns embeddings through token *strings*, so every reader yields
//! the vocabulary by id plus a normalized form in which byte-level BPE's "Ġ" and
//! SentencePiece's "▁" both mean a space.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// GPT-2 style byte-level BPE (Ġ for space).
    ByteLevelBpe,
    /// BPE over characters (SentencePiece-style "▁" or plain).
    Bpe,
    /// SentencePiece unigram.
    Unigram,
    WordPiece,
    WordLevel,
    Unknown,
}

impl TokenizerKind {
    pub fn name(self) -> &'static str {
        match self {
            TokenizerKind::ByteLevelBpe => "byte-level BPE",
            TokenizerKind::Bpe => "BPE",
            TokenizerKind::Unigram => "unigram (SentencePiece)",
            TokenizerKind::WordPiece => "WordPiece",
            TokenizerKind::WordLevel => "word-level",
            TokenizerKind::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpecialToken {
    pub id: u32,
    pub content: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tokenizer {
    pub kind: TokenizerKind,
    /// Token strings by id; ids the file leaves unassigned are empty strings.
    pub vocab: Vec<String>,
    /// BPE merges as "left right", in priority order (empty for other kinds).
    pub merges: Vec<String>,
    pub special_tokens: Vec<SpecialToken>,
    /// Where it was read from (file name or "gguf metadata").
    pub source: String,
}

/// Largest vocabulary accepted from any file (the largest real ones are ~262k).
pub const MAX_VOCAB: usize = 4 << 20;
pub const MAX_MERGES: usize = 8 << 20;

impl Tokenizer {
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The token's text with tokenizer-specific space markers turned into spaces, so that
    /// "Ġthe" (byte-level BPE), "▁the" (SentencePiece) and " the" compare equal.
    pub fn normalized(&self, id: usize) -> Option<String> {
        self.vocab.get(id).map(|s| normalize_token(s, self.kind))
    }
}

pub fn normalize_token(token: &str, kind: TokenizerKind) -> String {
    match kind {
        TokenizerKind::ByteLevelBpe => byte_level_decode(token),
        TokenizerKind::WordPiece => match token.strip_prefix("##") {
            Some(rest) => rest.to_string(),
            None => format!(" {token}"),
        },
        _ => token.replace('\u{2581}', " "),
    }
}

/// Undoes GPT-2's byte-to-unicode mapping; characters outside it are kept as they are.
fn byte_level_decode(token: &str) -> String {
    let mut bytes = Vec::with_capacity(token.len());
    for ch in token.chars() {
        match byte_of_char(ch) {
            Some(b) => bytes.push(b),
            None => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// GPT-2 maps printable bytes to themselves and the other 68 bytes to U+0100.. in order.
fn byte_of_char(ch: char) -> Option<u8> {
    let c = ch as u32;
    let printable = |b: u32| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if c < 256 && printable(c) {
        return Some(c as u8);
    }
    if (0x100..0x100 + 68).contains(&c) {
        let mut n = 0u32;
        for b in 0u32..256 {
            if !printable(b) {
                if n == c - 0x100 {
                    return Some(b as u8);
                }
                n += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_markers_normalize_alike() {
        assert_eq!(normalize_token("Ġthe", TokenizerKind::ByteLevelBpe), " the");
        assert_eq!(normalize_token("\u{2581}the", TokenizerKind::Unigram), " the");
        assert_eq!(normalize_token("Ċ", TokenizerKind::ByteLevelBpe), "\n");
        assert_eq!(normalize_token("##ing", TokenizerKind::WordPiece), "ing");
        assert_eq!(normalize_token("the", TokenizerKind::WordPiece), " the");
    }
}
