//! Tokenizer vocabularies, read from tokenizer.json, SentencePiece's tokenizer.model or GGUF
//! metadata. Provenance aligns embeddings through token *strings*, so every reader yields
//! the vocabulary by id plus a normalized form in which byte-level BPE's "Ġ" and
//! SentencePiece's "▁" both mean a space.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialToken {
    pub id: u32,
    pub content: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
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
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
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
        assert_eq!(
            normalize_token("\u{2581}the", TokenizerKind::Unigram),
            " the"
        );
        assert_eq!(normalize_token("Ċ", TokenizerKind::ByteLevelBpe), "\n");
        assert_eq!(normalize_token("##ing", TokenizerKind::WordPiece), "ing");
        assert_eq!(normalize_token("the", TokenizerKind::WordPiece), " the");
    }
}

pub mod read {
    //! Parsers for tokenizer files. Each returns the fault as text; the caller names the file.

    use super::*;
    use serde_json::Value;

    type Fault = String;

    /// Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(bytes: &[u8], source: &str) -> Result<Tokenizer, Fault> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        let model = root
            .get("model")
            .and_then(Value::as_object)
            .ok_or("no \"model\" object")?;
        let model_type = model.get("type").and_then(Value::as_str).unwrap_or("");
        let byte_level = mentions_byte_level(root.get("pre_tokenizer"))
            || mentions_byte_level(root.get("decoder"));
        let kind = match model_type {
            "BPE" if byte_level => TokenizerKind::ByteLevelBpe,
            "BPE" => TokenizerKind::Bpe,
            "Unigram" => TokenizerKind::Unigram,
            "WordPiece" => TokenizerKind::WordPiece,
            "WordLevel" => TokenizerKind::WordLevel,
            // Older files omit "type"; a vocab map with merges is BPE.
            "" if model.get("merges").is_some() => {
                if byte_level {
                    TokenizerKind::ByteLevelBpe
                } else {
                    TokenizerKind::Bpe
                }
            }
            _ => TokenizerKind::Unknown,
        };
        let mut entries: Vec<(u32, String)> = Vec::new();
        match model.get("vocab") {
            Some(Value::Object(map)) => {
                bound(map.len(), MAX_VOCAB, "vocabulary entries")?;
                for (tok, id) in map {
                    let id = id
                        .as_u64()
                        .ok_or_else(|| format!("vocab id of {tok:?} is not an integer"))?;
                    entries.push((id_u32(id)?, tok.clone()));
                }
            }
            Some(Value::Array(list)) => {
                // Unigram: [[piece, score], ...] with ids by position.
                bound(list.len(), MAX_VOCAB, "vocabulary entries")?;
                for (i, item) in list.iter().enumerate() {
                    let tok = item
                        .get(0)
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("vocab entry {i} is not [piece, score]"))?;
                    entries.push((i as u32, tok.to_string()));
                }
            }
            _ => return Err("model has no vocab".into()),
        }
        let mut special_tokens = Vec::new();
        if let Some(added) = root.get("added_tokens").and_then(Value::as_array) {
            bound(added.len(), MAX_VOCAB, "added tokens")?;
            for a in added {
                let (Some(id), Some(content)) = (
                    a.get("id").and_then(Value::as_u64),
                    a.get("content").and_then(Value::as_str),
                ) else {
                    return Err("an added token lacks id or content".into());
                };
                let id = id_u32(id)?;
                entries.push((id, content.to_string()));
                if a.get("special").and_then(Value::as_bool).unwrap_or(false) {
                    special_tokens.push(SpecialToken {
                        id,
                        content: content.to_string(),
                    });
                }
            }
        }
        let vocab = vocab_by_id(entries)?;
        let merges = match model.get("merges") {
            Some(Value::Array(list)) => {
                bound(list.len(), MAX_MERGES, "merges")?;
                list.iter()
                    .map(|m| match m {
                        Value::String(s) => Ok(s.clone()),
                        Value::Array(pair) if pair.len() == 2 => {
                            match (pair[0].as_str(), pair[1].as_str()) {
                                (Some(a), Some(b)) => Ok(format!("{a} {b}")),
                                _ => Err("a merge pair is not two strings".to_string()),
                            }
                        }
                        _ => Err("a merge is neither \"a b\" nor [a, b]".to_string()),
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => Vec::new(),
        };
        special_tokens.sort_by_key(|s| s.id);
        special_tokens.dedup();
        Ok(Tokenizer {
            kind,
            vocab,
            merges,
            special_tokens,
            source: source.to_string(),
        })
    }

    fn mentions_byte_level(v: Option<&Value>) -> bool {
        match v {
            Some(Value::Object(m)) => {
                m.get("type").and_then(Value::as_str) == Some("ByteLevel")
                    || m.values().any(|x| mentions_byte_level(Some(x)))
            }
            Some(Value::Array(a)) => a.iter().any(|x| mentions_byte_level(Some(x))),
            _ => false,
        }
    }

    fn bound(n: usize, max: usize, what: &str) -> Result<(), Fault> {
        if n > max {
            Err(format!("{n} {what} (at most {max})"))
        } else {
            Ok(())
        }
    }

    fn id_u32(id: u64) -> Result<u32, Fault> {
        if id as usize >= MAX_VOCAB {
            Err(format!(
                "token id {id} is beyond any real vocabulary ({MAX_VOCAB})"
            ))
        } else {
            Ok(id as u32)
        }
    }

    /// Places (id, token) pairs by id. Ids must be reasonably dense: a file declaring one
    /// token with id 4,000,000 must not make us allocate four million strings.
    fn vocab_by_id(entries: Vec<(u32, String)>) -> Result<Vec<String>, Fault> {
        let Some(max_id) = entries.iter().map(|e| e.0).max() else {
            return Ok(Vec::new());
        };
        let size = max_id as usize + 1;
        if size > 2 * entries.len() + 1024 {
            return Err(format!(
                "token ids reach {max_id} but only {} tokens are defined",
                entries.len()
            ));
        }
        let mut vocab = vec![String::new(); size];
        for (id, tok) in entries {
            vocab[id as usize] = tok;
        }
        Ok(vocab)
    }

    /// BERT-style `vocab.txt`: one token a line, id = line number.
    pub fn from_vocab_txt(bytes: &[u8], source: &str) -> Result<Tokenizer, Fault> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let vocab: Vec<String> = text.lines().map(str::to_string).collect();
        bound(vocab.len(), MAX_VOCAB, "lines")?;
        let special_tokens = vocab
            .iter()
            .enumerate()
            .filter(|(_, t)| t.starts_with('[') && t.ends_with(']') && !t.starts_with("[unused"))
            .map(|(i, t)| SpecialToken {
                id: i as u32,
                content: t.clone(),
            })
            .collect();
        Ok(Tokenizer {
            kind: TokenizerKind::WordPiece,
            vocab,
            merges: Vec::new(),
            special_tokens,
            source: source.to_string(),
        })
    }

    /// SentencePiece `tokenizer.model` (a protobuf ModelProto): field 1 holds the pieces
    /// (piece = 1, score = 2, type = 3), field 2 the trainer spec (model_type = 3).
    pub fn from_sentencepiece(bytes: &[u8], source: &str) -> Result<Tokenizer, Fault> {
        let mut vocab = Vec::new();
        let mut special_tokens = Vec::new();
        let mut kind = TokenizerKind::Unigram;
        let mut r = Proto::new(bytes);
        while let Some((field, value)) = r.next_field()? {
            match (field, value) {
                (1, Wire::Bytes(piece_msg)) => {
                    bound(vocab.len() + 1, MAX_VOCAB, "pieces")?;
                    let mut p = Proto::new(piece_msg);
                    let (mut piece, mut ty) = (String::new(), 1u64);
                    while let Some((f, v)) = p.next_field()? {
                        match (f, v) {
                            (1, Wire::Bytes(s)) => piece = String::from_utf8_lossy(s).into_owned(),
                            (3, Wire::Varint(t)) => ty = t,
                            _ => {}
                        }
                    }
                    // 2 = UNKNOWN, 3 = CONTROL.
                    if ty == 2 || ty == 3 {
                        special_tokens.push(SpecialToken {
                            id: vocab.len() as u32,
                            content: piece.clone(),
                        });
                    }
                    vocab.push(piece);
                }
                (2, Wire::Bytes(spec)) => {
                    let mut p = Proto::new(spec);
                    while let Some((f, v)) = p.next_field()? {
                        if let (3, Wire::Varint(t)) = (f, v) {
                            kind = match t {
                                2 => TokenizerKind::Bpe,
                                3 | 4 => TokenizerKind::WordLevel,
                                _ => TokenizerKind::Unigram,
                            };
                        }
                    }
                }
                _ => {}
            }
        }
        if vocab.is_empty() {
            return Err("no pieces: not a SentencePiece model".into());
        }
        Ok(Tokenizer {
            kind,
            vocab,
            merges: Vec::new(),
            special_tokens,
            source: source.to_string(),
        })
    }

    enum Wire<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    /// Just enough protobuf to walk SentencePiece models, with every length bounded by the
    /// bytes actually present.
    struct Proto<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    impl<'a> Proto<'a> {
        fn new(buf: &'a [u8]) -> Self {
            Proto { buf, pos: 0 }
        }

        fn varint(&mut self) -> Result<u64, Fault> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = *self
                    .buf
                    .get(self.pos)
                    .ok_or("protobuf truncated inside a varint")?;
                self.pos += 1;
                v |= ((b & 0x7F) as u64) << shift;
                if b & 0x80 == 0 {
                    return Ok(v);
                }
            }
            Err("protobuf varint longer than 10 bytes".into())
        }

        fn take(&mut self, n: u64) -> Result<&'a [u8], Fault> {
            let end = (self.pos as u64)
                .checked_add(n)
                .filter(|&e| e <= self.buf.len() as u64);
            let end = end.ok_or("protobuf field runs past the end of the file")? as usize;
            let s = &self.buf[self.pos..end];
            self.pos = end;
            Ok(s)
        }

        fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>, Fault> {
            if self.pos >= self.buf.len() {
                return Ok(None);
            }
            let key = self.varint()?;
            let (field, wire) = (key >> 3, key & 7);
            let value = match wire {
                0 => Wire::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Wire::Fixed
                }
                2 => {
                    let n = self.varint()?;
                    Wire::Bytes(self.take(n)?)
                }
                5 => {
                    self.take(4)?;
                    Wire::Fixed
                }
                w => {
                    return Err(format!(
                        "protobuf wire type {w} is not used by SentencePiece models"
                    ));
                }
            };
            Ok(Some((field, value)))
        }
    }
}
