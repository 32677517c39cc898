//! Tokenizer lineage: circumstantial evidence only. Reusing or extending a public tokenizer is
//! common and legitimate (pitfall 4), so these findings are reported but never decide.

use std::collections::HashSet;

use dokja_formats::Tokenizer;
use serde::Serialize;

use crate::report::Verdict;

#[derive(Clone, Debug, Serialize)]
pub struct TokenizerFinding {
    pub kind_a: &'static str,
    pub kind_b: &'static str,
    pub vocab_a: usize,
    pub vocab_b: usize,
    /// Jaccard overlap of the normalized token strings.
    pub string_jaccard: f64,
    /// Of the ids both have, the fraction holding the same string.
    pub same_id_same_string: f64,
    /// Length of the common prefix of the merge lists, as a fraction of the shorter list.
    pub merges_common_prefix: f64,
    pub verdict: Verdict,
    pub reason: String,
}

pub fn compare(a: &Tokenizer, b: &Tokenizer) -> TokenizerFinding {
    let norm = |t: &Tokenizer| -> HashSet<String> {
        (0..t.vocab.len())
            .filter(|&i| !t.vocab[i].is_empty())
            .filter_map(|i| t.normalized(i))
            .collect()
    };
    let (sa, sb) = (norm(a), norm(b));
    let inter = sa.intersection(&sb).count();
    let union = sa.len() + sb.len() - inter;
    let common_ids = a.vocab.len().min(b.vocab.len());
    let same = (0..common_ids)
        .filter(|&i| a.vocab[i] == b.vocab[i] && !a.vocab[i].is_empty())
        .count();
    let shorter = a.merges.len().min(b.merges.len());
    let prefix = a
        .merges
        .iter()
        .zip(&b.merges)
        .take_while(|(x, y)| x == y)
        .count();
    let same_id_same_string = same as f64 / common_ids.max(1) as f64;
    let merges_common_prefix = if shorter == 0 {
        0.0
    } else {
        prefix as f64 / shorter as f64
    };
    let (verdict, reason) = if a.vocab == b.vocab && a.merges == b.merges {
        (
            Verdict::Identical,
            "the same vocabulary and merges".to_string(),
        )
    } else if same_id_same_string > 0.99 || (shorter > 0 && merges_common_prefix > 0.99) {
        (
            Verdict::Derived,
            format!(
                "one vocabulary extends or edits the other ({:.1}% of shared ids hold the same string)",
                100.0 * same_id_same_string
            ),
        )
    } else {
        (
            Verdict::Independent,
            "different vocabularies (overlap of common strings is expected)".to_string(),
        )
    };
    TokenizerFinding {
        kind_a: a.kind.name(),
        kind_b: b.kind.name(),
        vocab_a: a.vocab.len(),
        vocab_b: b.vocab.len(),
        string_jaccard: inter as f64 / union.max(1) as f64,
        same_id_same_string,
        merges_common_prefix,
        verdict,
        reason,
    }
}
