//! The provenance engine on really trained models (pitfall 14): independent models trained on
//! the same data from different seeds must not be called derived, and fine-tunes and long
//! continued training of a trained model must be. Models are trained once and cached.

use dokja_formats::{Model, OpenOptions};
use dokja_provenance::{CompareOptions, Fingerprint, Subject, Verdict, compare, compare_subjects};
use dokja_testkit::{StDtype, SynthModel, WeightsLayout, write_hf_folder};

fn save(m: &SynthModel, dir: &std::path::Path) -> Model {
    write_hf_folder(m, dir, WeightsLayout::Single, StDtype::BF16).unwrap();
    Model::open(dir, OpenOptions::default()).unwrap()
}

#[test]
fn trained_pairs_get_the_right_verdicts() {
    let pairs = dokja_train::standard_pairs().expect("train or load the standard pairs");
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let a = save(&p.a, &dir.path().join(format!("{i}-a")));
        let b = save(&p.b, &dir.path().join(format!("{i}-b")));
        let c = compare(&a, &b, &CompareOptions::default()).unwrap();
        let lm = c
            .components
            .iter()
            .find(|x| x.component == "language_model")
            .unwrap();
        let excess = lm
            .statistics
            .iter()
            .map(|s| s.excess)
            .fold(f64::INFINITY, f64::min);
        println!(
            "{:<28} derived={:<5} -> {:?} ({}); weakest excess {excess:+.3}",
            p.name, p.derived, c.verdict, c.summary
        );
        // A fingerprint of the possible parent (how an audit sees it) reaches the same verdict.
        let fa = Fingerprint::build(&a, &CompareOptions::default(), None).unwrap();
        let cf = compare_subjects(
            Subject::Fingerprint(&fa),
            Subject::Weights(&b),
            &CompareOptions::default(),
        )
        .unwrap();
        if cf.verdict != c.verdict {
            wrong.push(format!(
                "{}: weights {:?} but fingerprint vs weights {:?}",
                p.name, c.verdict, cf.verdict
            ));
        }
        let reuse = matches!(c.verdict, Verdict::Derived | Verdict::Identical);
        if reuse != p.derived {
            wrong.push(format!(
                "{}: expected derived={}, got {:?}: {}",
                p.name, p.derived, c.verdict, c.summary
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
