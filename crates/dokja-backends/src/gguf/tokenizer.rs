//! Byte-level BPE (GGUF `tokenizer.ggml.model = "gpt2"`), matching llama.cpp's tokenizer:
//!
//! 1. Special tokens (token types CONTROL, USER_DEFINED and UNKNOWN) are cut out of the text
//!    first, longest first, and become single tokens.
//! 2. The remaining text is pre-tokenized by the regexes llama.cpp assigns to
//!    `tokenizer.ggml.pre` (each regex splits the pieces the previous one left; unmatched text
//!    between matches is kept as its own piece).
//! 3. Each piece is byte-encoded (GPT-2's byte-to-unicode table) and merged by rank, lowest
//!    rank first and leftmost first among equals; a merged symbol missing from the vocabulary
//!    falls back to its single-byte tokens.

use std::collections::{BinaryHeap, HashMap};

use regex::Regex;

/// GGUF token types (`tokenizer.ggml.token_type`).
const TOKEN_TYPE_UNKNOWN: i32 = 2;
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Most bytes one tokenize call accepts (prompts are bounded upstream at 8 MiB).
pub const MAX_TEXT_BYTES: usize = 16 << 20;

/// How text is split before BPE, per llama.cpp's `tokenizer.ggml.pre` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's regex alone (`gpt-2`, `default`, `mpt`, `olmo`, ...).
    Gpt2,
    /// Every digit alone, then GPT-2's regex (`smollm`, `starcoder`, `refact`, ...).
    DigitsThenGpt2,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre = name`.
    pub fn from_gguf_name(name: &str) -> Option<PreTokenizer> {
        match name {
            "default" | "gpt-2" | "gpt2" | "mpt" | "olmo" | "jais" | "trillion" => {
                Some(PreTokenizer::Gpt2)
            }
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" => Some(PreTokenizer::DigitsThenGpt2),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer: {0}")]
    Invalid(String),
}

/// The character classes GPT-2's regex distinguishes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Whitespace,
    Other,
}

struct Classifier {
    letter: Regex,
    number: Regex,
}

impl Classifier {
    fn new() -> Classifier {
        Classifier {
            letter: Regex::new(r"^\p{L}$").expect("static regex"),
            number: Regex::new(r"^\p{N}$").expect("static regex"),
        }
    }

    fn class(&self, c: char) -> Class {
        if c.is_ascii() {
            return match c {
                'a'..='z' | 'A'..='Z' => Class::Letter,
                '0'..='9' => Class::Number,
                _ if c.is_whitespace() => Class::Whitespace,
                _ => Class::Other,
            };
        }
        let mut buf = [0u8; 4];
        let s = c.encode_utf8(&mut buf);
        if c.is_whitespace() {
            Class::Whitespace
        } else if self.letter.is_match(s) {
            Class::Letter
        } else if self.number.is_match(s) {
            Class::Number
        } else {
            Class::Other
        }
    }
}

/// A GGUF byte-level BPE tokenizer.
pub struct BpeTokenizer {
    vocab: Vec<String>,
    token_ids: HashMap<String, u32>,
    /// (left, right) -> rank, on byte-encoded strings.
    merge_ranks: HashMap<(String, String), u32>,
    /// Special tokens' (text, id), longest text first, as llama.cpp orders them.
    special: Vec<(String, u32)>,
    /// Token ids whose text is not written when decoding (control tokens).
    control: Vec<bool>,
    pre: PreTokenizer,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
    classifier: Classifier,
}

impl BpeTokenizer {
    /// Builds the tokenizer from the GGUF vocabulary, merges ("left right") and token types
    /// (empty when the file has none: then no token is special).
    pub fn new(
        vocab: Vec<String>,
        merges: &[String],
        token_types: &[i32],
        pre: PreTokenizer,
    ) -> Result<BpeTokenizer, TokenizerError> {
        if vocab.is_empty() || u32::try_from(vocab.len()).is_err() {
            return Err(TokenizerError::Invalid(format!(
                "vocabulary of {} tokens",
                vocab.len()
            )));
        }
        if !token_types.is_empty() && token_types.len() != vocab.len() {
            return Err(TokenizerError::Invalid(format!(
                "{} token types for {} tokens",
                token_types.len(),
                vocab.len()
            )));
        }
        let mut token_ids = HashMap::with_capacity(vocab.len());
        for (id, text) in vocab.iter().enumerate() {
            // The first id of a duplicated text wins, as in llama.cpp's text_to_token map.
            token_ids.entry(text.clone()).or_insert(id as u32);
        }
        let mut merge_ranks = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let Some((left, right)) = merge.split_once(' ') else {
                return Err(TokenizerError::Invalid(format!(
                    "merge #{rank} {merge:?} is not \"left right\""
                )));
            };
            merge_ranks
                .entry((left.to_string(), right.to_string()))
                .or_insert(rank as u32);
        }
        let mut special: Vec<(String, u32)> = Vec::new();
        let mut control = vec![false; vocab.len()];
        for (id, &ty) in token_types.iter().enumerate() {
            if matches!(
                ty,
                TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED | TOKEN_TYPE_UNKNOWN
            ) && !vocab[id].is_empty()
            {
                special.push((vocab[id].clone(), id as u32));
            }
            control[id] = ty == TOKEN_TYPE_CONTROL;
        }
        // Stable sort: among equal lengths, lower ids first (llama.cpp's std::sort is not
        // stable, but equal-length special texts cannot overlap at one position unless equal).
        special.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
        let byte_to_char = byte_to_unicode();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        Ok(BpeTokenizer {
            vocab,
            token_ids,
            merge_ranks,
            special,
            control,
            pre,
            byte_to_char,
            char_to_byte,
            classifier: Classifier::new(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The id of a token's exact text, if it is in the vocabulary.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_ids.get(text).copied()
    }

    /// Tokenizes `text`, recognizing special tokens' texts as those tokens (llama.cpp's
    /// `parse_special = true`). No BOS is added here.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(TokenizerError::Invalid(format!(
                "text of {} bytes (at most {MAX_TEXT_BYTES})",
                text.len()
            )));
        }
        let mut out = Vec::new();
        for fragment in self.split_special(text) {
            match fragment {
                Fragment::Special(id) => out.push(id),
                Fragment::Text(t) => {
                    for piece in self.pre_tokenize(t) {
                        self.bpe(piece, &mut out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The text of `ids`. Control tokens (BOS, EOS, `<|im_start|>`) are written only when
    /// `with_special`; bytes that do not form UTF-8 are replaced (U+FFFD).
    pub fn decode(&self, ids: &[u32], with_special: bool) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, with_special)).into_owned()
    }

    /// The raw bytes of `ids` (a token may end inside a multi-byte character).
    pub fn decode_bytes(&self, ids: &[u32], with_special: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        for &id in ids {
            let Some(text) = self.vocab.get(id as usize) else {
                continue;
            };
            if self.control[id as usize] {
                if with_special {
                    bytes.extend_from_slice(text.as_bytes());
                }
                continue;
            }
            if self.special.iter().any(|(_, s)| *s == id) {
                // User-defined tokens are stored as plain text, not byte-encoded.
                bytes.extend_from_slice(text.as_bytes());
                continue;
            }
            for c in text.chars() {
                match self.char_to_byte.get(&c) {
                    Some(&b) => bytes.push(b),
                    None => bytes.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
                }
            }
        }
        bytes
    }

    fn split_special<'t>(&self, text: &'t str) -> Vec<Fragment<'t>> {
        // Text fragments are given as (start, end) into `text`, as llama.cpp keeps offsets.
        let mut fragments: Vec<Frag> = vec![Frag::Text(0, text.len())];
        for (special, id) in &self.special {
            let mut next = Vec::with_capacity(fragments.len());
            for frag in fragments {
                let Frag::Text(mut start, end) = frag else {
                    next.push(frag);
                    continue;
                };
                while let Some(pos) = text[start..end].find(special.as_str()) {
                    if pos > 0 {
                        next.push(Frag::Text(start, start + pos));
                    }
                    next.push(Frag::Special(*id));
                    start += pos + special.len();
                }
                if start < end {
                    next.push(Frag::Text(start, end));
                }
            }
            fragments = next;
        }
        fragments
            .into_iter()
            .map(|f| match f {
                Frag::Text(s, e) => Fragment::Text(&text[s..e]),
                Frag::Special(id) => Fragment::Special(id),
            })
            .collect()
    }

    /// Splits text into the pieces BPE sees, as llama.cpp's `unicode_regex_split`.
    fn pre_tokenize<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let classes: Vec<Class> = chars
            .iter()
            .map(|&(_, c)| self.classifier.class(c))
            .collect();
        // Pieces as char ranges.
        let mut pieces: Vec<(usize, usize)> = vec![(0, chars.len())];
        if self.pre == PreTokenizer::DigitsThenGpt2 {
            let mut split = Vec::new();
            for (start, end) in pieces {
                let mut run = start;
                for (i, class) in classes.iter().enumerate().take(end).skip(start) {
                    if *class == Class::Number {
                        if run < i {
                            split.push((run, i));
                        }
                        split.push((i, i + 1));
                        run = i + 1;
                    }
                }
                if run < end {
                    split.push((run, end));
                }
            }
            pieces = split;
        }
        let mut out_ranges = Vec::new();
        for (start, end) in pieces {
            gpt2_split(&chars, &classes, start, end, &mut out_ranges);
        }
        let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
        out_ranges
            .into_iter()
            .map(|(s, e)| &text[byte_at(s)..byte_at(e)])
            .collect()
    }

    fn bpe(&self, piece: &str, out: &mut Vec<u32>) {
        let encoded: String = piece
            .bytes()
            .map(|b| self.byte_to_char[b as usize])
            .collect();
        let mut symbols: Vec<Symbol> = Vec::new();
        let mut offset = 0;
        for c in encoded.chars() {
            let n = c.len_utf8();
            symbols.push(Symbol {
                start: offset,
                len: n,
                prev: symbols.len().checked_sub(1),
                next: None,
            });
            offset += n;
        }
        for i in 1..symbols.len() {
            symbols[i - 1].next = Some(i);
        }
        let mut queue = BinaryHeap::new();
        for i in 1..symbols.len() {
            self.push_bigram(&encoded, &symbols, i - 1, i, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (bigram.left, bigram.right);
            if symbols[l].len == 0 || symbols[r].len == 0 || symbols[l].next != Some(r) {
                continue;
            }
            if symbols[l].len + symbols[r].len != bigram.len {
                continue; // stale: one side has been merged since
            }
            symbols[l].len += symbols[r].len;
            symbols[r].len = 0;
            symbols[l].next = symbols[r].next;
            if let Some(n) = symbols[r].next {
                symbols[n].prev = Some(l);
            }
            if let Some(p) = symbols[l].prev {
                self.push_bigram(&encoded, &symbols, p, l, &mut queue);
            }
            if let Some(n) = symbols[l].next {
                self.push_bigram(&encoded, &symbols, l, n, &mut queue);
            }
        }
        let mut i = if symbols.is_empty() { None } else { Some(0) };
        while let Some(k) = i {
            let s = &symbols[k];
            let text = &encoded[s.start..s.start + s.len];
            match self.token_ids.get(text) {
                Some(&id) => out.push(id),
                None => {
                    for c in text.chars() {
                        if let Some(&id) = self.token_ids.get(c.encode_utf8(&mut [0u8; 4]) as &str)
                        {
                            out.push(id);
                        }
                    }
                }
            }
            i = s.next;
        }
    }

    fn push_bigram(
        &self,
        encoded: &str,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        queue: &mut BinaryHeap<Bigram>,
    ) {
        let l = &symbols[left];
        let r = &symbols[right];
        let key = (
            encoded[l.start..l.start + l.len].to_string(),
            encoded[r.start..r.start + r.len].to_string(),
        );
        if let Some(&rank) = self.merge_ranks.get(&key) {
            queue.push(Bigram {
                rank,
                left,
                right,
                len: l.len + r.len,
            });
        }
    }
}

enum Frag {
    Text(usize, usize),
    Special(u32),
}

enum Fragment<'t> {
    Text(&'t str),
    Special(u32),
}

struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(PartialEq, Eq)]
struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for Bigram {
    /// BinaryHeap pops the greatest: the lowest rank, then the leftmost.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// GPT-2's `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` over
/// chars `start..end`, pushing char ranges (llama.cpp's hand-written matcher, which the
/// `regex` crate cannot express: it has no look-ahead).
fn gpt2_split(
    chars: &[(usize, char)],
    classes: &[Class],
    start: usize,
    end: usize,
    out: &mut Vec<(usize, usize)>,
) {
    let cpt = |i: usize| (i < end).then(|| chars[i].1);
    let class = |i: usize| (i < end).then(|| classes[i]);
    let mut pos = start;
    let mut prev_end = start;
    let mut add = |to: usize, prev_end: &mut usize| {
        if to > *prev_end {
            out.push((*prev_end, to));
        }
        *prev_end = to;
    };
    while pos < end {
        let c = chars[pos].1;
        if c == '\'' && pos + 1 < end {
            let n = cpt(pos + 1);
            if matches!(n, Some('s' | 't' | 'm' | 'd')) {
                pos += 2;
                add(pos, &mut prev_end);
                continue;
            }
            if pos + 2 < end {
                let nn = cpt(pos + 2);
                if matches!(
                    (n, nn),
                    (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
                ) {
                    pos += 3;
                    add(pos, &mut prev_end);
                    continue;
                }
            }
        }
        let lead = if c == ' ' { class(pos + 1) } else { class(pos) };
        if let Some(k @ (Class::Letter | Class::Number | Class::Other)) = lead {
            if c == ' ' {
                pos += 1;
            }
            while class(pos) == Some(k) {
                pos += 1;
            }
            add(pos, &mut prev_end);
            continue;
        }
        let mut spaces = 0;
        while class(pos + spaces) == Some(Class::Whitespace) {
            spaces += 1;
        }
        if spaces > 1 && pos + spaces < end {
            // \s+(?!\S): leave the last whitespace to lead the next word.
            pos += spaces - 1;
            add(pos, &mut prev_end);
            continue;
        }
        if spaces > 0 {
            pos += spaces;
            add(pos, &mut prev_end);
            continue;
        }
        pos += 1;
        add(pos, &mut prev_end);
    }
}

/// GPT-2's reversible byte-to-unicode map: printable bytes stand for themselves, the others
/// map to U+0100 upwards.
fn byte_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).expect("below U+0200");
            next += 1;
            c
        };
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, pre: PreTokenizer) -> Vec<String> {
        let t = BpeTokenizer::new(vec!["a".into()], &[], &[], pre).unwrap();
        t.pre_tokenize(text).into_iter().map(String::from).collect()
    }

    #[test]
    fn gpt2_pre_tokenizer_splits_like_the_regex() {
        assert_eq!(
            split("Hello world's  end 123!!\n\nok", PreTokenizer::Gpt2),
            [
                "Hello", " world", "'s", " ", " end", " 123", "!!", "\n", "\n", "ok"
            ]
        );
        assert_eq!(
            split("  trailing  ", PreTokenizer::Gpt2),
            [" ", " trailing", "  "]
        );
        assert_eq!(
            split("안녕하세요 세계", PreTokenizer::Gpt2),
            ["안녕하세요", " 세계"]
        );
    }

    #[test]
    fn digits_are_isolated_for_smollm() {
        assert_eq!(
            split("x 2024ab", PreTokenizer::DigitsThenGpt2),
            ["x", " ", "2", "0", "2", "4", "ab"]
        );
    }

    #[test]
    fn merges_apply_by_rank_and_bytes_fall_back() {
        let vocab: Vec<String> = ["a", "b", "c", "ab", "abc", "Ġ", "Ġa"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let merges = ["a b".to_string(), "Ġ a".into(), "ab c".into()];
        let t = BpeTokenizer::new(vocab, &merges, &[], PreTokenizer::Gpt2).unwrap();
        assert_eq!(t.encode("abc").unwrap(), [4]);
        assert_eq!(t.encode("abc a").unwrap(), [4, 6]);
        // "d" is in neither vocabulary nor bytes: dropped, as llama.cpp drops it.
        assert_eq!(t.encode("cab").unwrap(), [2, 3]);
        assert_eq!(t.decode(&[4, 6], false), "abc a");
    }

    #[test]
    fn special_tokens_are_cut_out_first() {
        let vocab: Vec<String> = ["<|im_start|>", "a", "<", "|"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = BpeTokenizer::new(vocab, &[], &[3, 1, 1, 1], PreTokenizer::Gpt2).unwrap();
        assert_eq!(t.encode("a<|im_start|>a").unwrap(), [1, 0, 1]);
        assert_eq!(t.decode(&[1, 0, 1], false), "aa");
        assert_eq!(t.decode(&[1, 0, 1], true), "a<|im_start|>a");
    }

    /// Every byte as a token, a few merges, and two special tokens.
    fn byte_tokenizer() -> BpeTokenizer {
        let mut vocab: Vec<String> = byte_to_unicode().iter().map(|c| c.to_string()).collect();
        let merges: Vec<String> = ["Ġ t", "h e", "Ġt he", "ì ķ"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for m in &merges {
            vocab.push(m.replace(' ', ""));
        }
        vocab.push("<|im_start|>".into());
        vocab.push("<|im_end|>".into());
        let mut types = vec![1; vocab.len()];
        let n = types.len();
        types[n - 2] = 3;
        types[n - 1] = 3;
        BpeTokenizer::new(vocab, &merges, &types, PreTokenizer::DigitsThenGpt2).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips(text in "(\\PC|\\s|<\\|im_start\\|>|<\\|im_end\\|>| the){0,40}") {
            let t = byte_tokenizer();
            let ids = t.encode(&text).unwrap();
            proptest::prop_assert_eq!(t.decode(&ids, true), text);
        }

        #[test]
        fn pieces_cover_the_text_in_order(text in "\\PC{0,60}") {
            let t = byte_tokenizer();
            let pieces = t.pre_tokenize(&text);
            proptest::prop_assert!(pieces.iter().all(|p| !p.is_empty()));
            proptest::prop_assert_eq!(pieces.concat(), text);
        }
    }

    #[test]
    fn byte_table_is_a_bijection() {
        let table = byte_to_unicode();
        let distinct: std::collections::HashSet<char> = table.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
    }
}
