//! Registries and candidates whose relations are known because the test kit made them.

use dokja_audit::AuditInput;
use dokja_testkit::corpus::corpus_llama_spec;
use dokja_testkit::{VlmSpec, fine_tune, llama_like, vision_tower_of, vlm, vlm_from_parts};
use tempfile::TempDir;

use super::{compared, compared_as_fingerprint, dropped, entry, input, save};

pub struct Scenario {
    /// Keeps the model files alive as long as the input names them.
    pub dir: TempDir,
    pub input: AuditInput,
}

/// A vision-language candidate with its own language model and a vision tower copied from
/// `donor-vlm` (licensed `donor_licence`). The registry also holds a fine-tune of the donor
/// (listed first, so the most serious verdict has to be found, not taken), an unrelated
/// language model (known by its fingerprint only) and an entry the prefilter dropped.
pub fn vision_tower_copy(donor_licence: Option<&str>) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let spec = VlmSpec::default();
    let donor = vlm(&spec, 29);
    let candidate = vlm_from_parts(
        llama_like(&spec.lm, 30),
        vision_tower_of(&donor),
        spec.layout,
        spec.vit.num_heads,
        31,
    );
    let donor_fine_tuned = fine_tune(&donor, 0.1, 8, 37);
    let unrelated = llama_like(&spec.lm, 40);

    let cand_dir = dir.path().join("candidate");
    let cand = save(&candidate, &cand_dir);
    let results = vec![
        compared(
            entry("vlm-finetuned", Some("mit")),
            &save(&donor_fine_tuned, &dir.path().join("ft")),
            &cand,
        ),
        compared(
            entry("donor-vlm", donor_licence),
            &save(&donor, &dir.path().join("donor")),
            &cand,
        ),
        compared_as_fingerprint(
            entry("other-lm", Some("apache-2.0")),
            &save(&unrelated, &dir.path().join("other")),
            &dir.path().join("other.dokjafp"),
            &cand,
        ),
        dropped(entry("big-moe", Some("apache-2.0"))),
    ];
    let input = input(&cand_dir, results);
    Scenario { dir, input }
}

/// A fine-tune of `base-lm` (licence `apache-2.0`). Listed before it: another fine-tune of
/// the same base (a sibling: also `derived`, with weaker evidence) and an unrelated model.
pub fn fine_tuned() -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let spec = corpus_llama_spec();
    let base = llama_like(&spec, 1);
    let candidate = fine_tune(&base, 0.1, 8, 12);
    let cand_dir = dir.path().join("candidate");
    let cand = save(&candidate, &cand_dir);
    let sibling = fine_tune(&base, 0.3, 8, 99);
    let results = vec![
        compared(
            entry("sibling-lm", Some("mit")),
            &save(&sibling, &dir.path().join("sibling")),
            &cand,
        ),
        compared(
            entry("seed-3-lm", Some("apache-2.0")),
            &save(&llama_like(&spec, 3), &dir.path().join("s3")),
            &cand,
        ),
        compared(
            entry("base-lm", Some("apache-2.0")),
            &save(&base, &dir.path().join("base")),
            &cand,
        ),
    ];
    let input = input(&cand_dir, results);
    Scenario { dir, input }
}

/// A model initialized from its own seed: same architecture and tokenizer as the registry's.
pub fn independent() -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let spec = corpus_llama_spec();
    let candidate = llama_like(&spec, 4);
    let cand_dir = dir.path().join("candidate");
    let cand = save(&candidate, &cand_dir);
    let results = vec![
        compared(
            entry("base-lm", Some("gemma")),
            &save(&llama_like(&spec, 1), &dir.path().join("base")),
            &cand,
        ),
        compared(
            entry("seed-3-lm", Some("llama3.1")),
            &save(&llama_like(&spec, 3), &dir.path().join("s3")),
            &cand,
        ),
        dropped(entry("big-moe", None)),
    ];
    let input = input(&cand_dir, results);
    Scenario { dir, input }
}
