//! Plausible small vocabularies. They depend only on the size and a `variant` (never on
//! the model seed): independent models sharing one tokenizer is the common, legitimate
//! case that provenance must not mistake for weight reuse. A non-zero `variant` shuffles
//! the ids of the learned tokens, so the same strings sit at different ids.

use std::collections::HashSet;

use crate::model::{SynthTokenizer, TokenizerKind};
use crate::rng::SynthRng;

/// Common English words and pieces, most frequent first.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "what", "them", "than", "some", "him", "time", "into", "only", "do", "could", "new",
    "about", "two", "first", "then", "also", "any", "like", "our", "over", "after", "such", "most",
    "made", "out", "many", "before", "must", "through", "years", "where", "much", "your", "way",
    "well", "down", "should", "because", "each", "just", "those", "people", "how", "too", "little",
    "state", "good", "very", "make", "world", "still", "own", "see", "men", "work", "long", "get",
    "here", "between", "both", "life", "being", "under", "never", "day", "same", "another", "know",
    "while", "last", "might", "us", "great", "old", "year", "off", "come", "since", "against",
    "go", "came", "right", "used", "take", "three", "model", "data", "weight", "layer", "token",
    "value", "number", "system", "water", "house", "school", "place", "found", "point", "group",
    "order", "number", "part", "light", "small", "large", "ing", "ed", "er", "es", "ly", "tion",
    "al", "en", "re", "on", "st", "ar", "or", "an", "ic", "le", "ent", "ation", "ers", "ness",
    "ment", "able", "ity", "ive", "ous", "ful", "less", "est", "ism", "ist", "ize",
];

/// Syllables for filler words once `WORDS` runs out.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ra", "te", "su", "no", "vi", "pa", "de", "ro", "li", "ma", "ne", "to", "sa",
    "bi", "ku", "re", "zo", "an", "el", "or", "un", "is", "at", "en", "ol",
];

fn filler_words(n: usize) -> impl Iterator<Item = String> {
    let s = SYLLABLES.len();
    (0..n).map(move |i| {
        let (a, b, c) = (i % s, (i / s) % s, (i / (s * s)) % s);
        format!(
            "{}{}{}",
            SYLLABLES[a],
            SYLLABLES[b],
            if i >= s * s { SYLLABLES[c] } else { "" }
        )
    })
}

/// GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100...
pub fn gpt2_byte_to_char(b: u8) -> char {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    if printable(b as u32) {
        return char::from(b);
    }
    let n = (0..b as u32).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(0x100 + n).unwrap()
}

/// The 256 byte tokens in GPT-2's vocabulary order (printable bytes first).
fn gpt2_byte_tokens() -> Vec<String> {
    let printable = |b: &u8| {
        (0x21..=0x7E).contains(b) || (0xA1..=0xAC).contains(b) || (0xAE..=0xFF).contains(b)
    };
    let order = (0..=255u8)
        .filter(printable)
        .chain((0..=255u8).filter(|b| !printable(b)));
    order.map(|b| gpt2_byte_to_char(b).to_string()).collect()
}

/// Learns merges for `word` left to right, appending new tokens and merges.
fn add_word_merges(
    word: &[String],
    vocab: &mut Vec<String>,
    seen: &mut HashSet<String>,
    merges: &mut Vec<String>,
    limit: usize,
) {
    let mut acc = word[0].clone();
    for piece in &word[1..] {
        if vocab.len() >= limit {
            return;
        }
        let joined = format!("{acc}{piece}");
        if seen.insert(joined.clone()) {
            merges.push(format!("{acc} {piece}"));
            vocab.push(joined.clone());
        }
        acc = joined;
    }
}

fn shuffle_range(
    vocab: &mut [String],
    scores: Option<&mut [f32]>,
    range: std::ops::Range<usize>,
    variant: u64,
) {
    if variant == 0 {
        return;
    }
    let perm = SynthRng::new(variant).permutation(range.len());
    let old: Vec<String> = vocab[range.clone()].to_vec();
    for (i, &p) in perm.iter().enumerate() {
        vocab[range.start + i] = old[p].clone();
    }
    if let Some(scores) = scores {
        let old: Vec<f32> = scores[range.clone()].to_vec();
        for (i, &p) in perm.iter().enumerate() {
            scores[range.start + i] = old[p];
        }
    }
}

/// Llama-3 style byte-level BPE: 256 byte tokens, learned merges, then
/// `<|begin_of_text|>` and `<|end_of_text|>` as the last two ids.
pub fn byte_level_bpe(vocab_size: usize, variant: u64) -> SynthTokenizer {
    let specials = ["<|begin_of_text|>", "<|end_of_text|>"];
    assert!(
        vocab_size >= 256 + specials.len(),
        "byte-level BPE needs a vocabulary of at least 258"
    );
    let limit = vocab_size - specials.len();
    let mut vocab = gpt2_byte_tokens();
    let mut seen: HashSet<String> = vocab.iter().cloned().collect();
    let mut merges = Vec::new();
    let space = gpt2_byte_to_char(b' ').to_string(); // "Ġ"
    let words = WORDS
        .iter()
        .map(|w| w.to_string())
        .chain(filler_words(usize::MAX / 4));
    for w in words {
        if vocab.len() >= limit {
            break;
        }
        // The space-prefixed form is the common one in running text; learn it first.
        for form in [format!("{space}{w}"), w.clone()] {
            let chars: Vec<String> = form.chars().map(|c| c.to_string()).collect();
            // "Ġ" + word: merge the word first, then attach the space, like GPT-2's merges.
            if chars[0] == space && chars.len() > 2 {
                add_word_merges(&chars[1..], &mut vocab, &mut seen, &mut merges, limit);
                add_word_merges(
                    &[space.clone(), chars[1..].concat()],
                    &mut vocab,
                    &mut seen,
                    &mut merges,
                    limit,
                );
            } else {
                add_word_merges(&chars, &mut vocab, &mut seen, &mut merges, limit);
            }
        }
    }
    let learned = 256..vocab.len();
    shuffle_range(&mut vocab, None, learned, variant);
    let bos = vocab.len() as u32;
    vocab.extend(specials.iter().map(|s| s.to_string()));
    SynthTokenizer {
        kind: TokenizerKind::ByteLevelBpe,
        vocab,
        merges,
        scores: Vec::new(),
        special: vec![bos, bos + 1],
        bos: Some(bos),
        eos: Some(bos + 1),
        unk: None,
        pad: None,
    }
}

/// SentencePiece unigram: `<unk>`, `<s>`, `</s>`, 256 `<0xNN>` byte pieces, then "▁word"
/// pieces and single characters with decreasing log-probabilities.
pub fn unigram(vocab_size: usize, variant: u64) -> SynthTokenizer {
    assert!(
        vocab_size > 3 + 256,
        "unigram needs a vocabulary of at least 260"
    );
    let mut vocab: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    vocab.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let mut scores = vec![0.0f32; vocab.len()];
    let mut seen: HashSet<String> = vocab.iter().cloned().collect();
    let pieces = ["\u{2581}".to_string()]
        .into_iter()
        .chain(('a'..='z').map(|c| c.to_string()))
        .chain(
            WORDS
                .iter()
                .flat_map(|w| [format!("\u{2581}{w}"), w.to_string()]),
        )
        .chain(filler_words(usize::MAX / 4).map(|w| format!("\u{2581}{w}")));
    for p in pieces {
        if vocab.len() >= vocab_size {
            break;
        }
        if seen.insert(p.clone()) {
            scores.push(-(1.0 + 0.01 * (vocab.len() - 259) as f32));
            vocab.push(p);
        }
    }
    let learned = 259..vocab.len();
    shuffle_range(&mut vocab, Some(&mut scores), learned, variant);
    SynthTokenizer {
        kind: TokenizerKind::Unigram,
        vocab,
        merges: Vec::new(),
        scores,
        special: vec![0, 1, 2],
        bos: Some(1),
        eos: Some(2),
        unk: Some(0),
        pad: None,
    }
}

/// BERT WordPiece: `[PAD] [UNK] [CLS] [SEP] [MASK]`, characters, `##` continuations, words.
pub fn wordpiece(vocab_size: usize, variant: u64) -> SynthTokenizer {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(
        vocab_size > vocab.len(),
        "wordpiece needs a vocabulary of at least 6"
    );
    let mut seen: HashSet<String> = vocab.iter().cloned().collect();
    let chars = ('a'..='z').chain('0'..='9').chain(".,;:!?'\"()-".chars());
    let pieces = chars
        .clone()
        .map(|c| c.to_string())
        .chain(('a'..='z').map(|c| format!("##{c}")))
        .chain(WORDS.iter().map(|w| {
            if w.len() <= 4 && !["the", "of", "and", "to", "in", "a"].contains(w) {
                format!("##{w}")
            } else {
                w.to_string()
            }
        }))
        .chain(WORDS.iter().map(|w| w.to_string()))
        .chain(filler_words(usize::MAX / 4));
    for p in pieces {
        if vocab.len() >= vocab_size {
            break;
        }
        if seen.insert(p.clone()) {
            vocab.push(p);
        }
    }
    let learned = 5..vocab.len();
    shuffle_range(&mut vocab, None, learned, variant);
    SynthTokenizer {
        kind: TokenizerKind::WordPiece,
        vocab,
        merges: Vec::new(),
        scores: Vec::new(),
        special: vec![0, 1, 2, 3, 4],
        bos: Some(2),
        eos: Some(3),
        unk: Some(1),
        pad: Some(0),
    }
}

pub fn make_tokenizer(kind: TokenizerKind, vocab_size: usize, variant: u64) -> SynthTokenizer {
    match kind {
        TokenizerKind::ByteLevelBpe => byte_level_bpe(vocab_size, variant),
        TokenizerKind::Unigram => unigram(vocab_size, variant),
        TokenizerKind::WordPiece => wordpiece(vocab_size, variant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpe_vocab_is_consistent() {
        let t = byte_level_bpe(512, 0);
        assert_eq!(t.vocab.len(), 512);
        let set: HashSet<&String> = t.vocab.iter().collect();
        assert_eq!(set.len(), 512, "duplicate tokens");
        assert!(t.vocab.contains(&"Ġthe".to_string()));
        assert_eq!(t.vocab[0], "!");
        assert_eq!(gpt2_byte_to_char(b' '), 'Ġ');
        assert_eq!(gpt2_byte_to_char(b'\n'), 'Ċ');
        // Every merge joins two existing tokens into another existing token.
        for m in &t.merges {
            let (a, b) = m.split_once(' ').unwrap();
            assert!(
                set.contains(&a.to_string()) && set.contains(&b.to_string()),
                "{m}"
            );
            assert!(set.contains(&format!("{a}{b}")), "{m}");
        }
        assert_eq!(t.token(t.eos.unwrap()), Some("<|end_of_text|>"));
    }

    #[test]
    fn variants_share_strings_not_ids() {
        for kind in [
            TokenizerKind::ByteLevelBpe,
            TokenizerKind::Unigram,
            TokenizerKind::WordPiece,
        ] {
            let a = make_tokenizer(kind, 400, 0);
            let b = make_tokenizer(kind, 400, 9);
            assert_eq!(a.vocab.len(), 400);
            let mut sa = a.vocab.clone();
            let mut sb = b.vocab.clone();
            sa.sort();
            sb.sort();
            assert_eq!(sa, sb, "{kind:?}");
            assert_ne!(a.vocab, b.vocab, "{kind:?}");
        }
    }
}
