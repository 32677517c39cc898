//! Training on real text: the loss falls far, runs are reproducible bit for bit, continued
//! training moves a model without changing its form, and the cache returns what was built.
//! Small models on the GSM8K corpus, so the suite stays fast in debug builds.

use dokja_testkit::SynthModel;
use dokja_train::{
    Bpe, CorpusName, TrainSpec, cached_in, continue_training, corpus, eval_loss, relative_changes,
    train_from_scratch, unigram_entropy,
};

fn text(name: CorpusName) -> Vec<u8> {
    corpus(name).unwrap_or_else(|e| panic!("benchmark corpus needed by this test: {e}"))
}

fn bits(m: &SynthModel) -> Vec<u32> {
    m.tensors
        .iter()
        .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
        .collect()
}

#[test]
fn loss_falls_well_below_unigram_entropy() {
    let en = text(CorpusName::Gsm8k);
    let spec = TrainSpec {
        steps: 200,
        ..TrainSpec::tiny()
    };
    let t = train_from_scratch(&spec, &en, 1, 1).unwrap();
    assert_eq!(t.losses.len(), 200);
    let (first, last) = t.loss_head_tail(20);
    let bpe = Bpe::from_tokenizer(t.model.tokenizer.as_ref().unwrap()).unwrap();
    let h = unigram_entropy(&bpe, &en) as f32;
    let held = eval_loss(&t.model, &en, spec.seq_len, 32).unwrap();
    eprintln!("loss {first:.3} -> {last:.3}; held-out {held:.3}; unigram entropy {h:.3}");
    let l0 = t.losses[0];
    assert!(
        (l0 - (spec.vocab_size as f32).ln()).abs() < 0.1,
        "starts near uniform: {l0}"
    );
    assert!(last < first - 1.5, "{first} -> {last}");
    assert!(
        held < h - 0.5,
        "held-out {held} vs unigram {h}: context was learned"
    );
}

#[test]
fn training_is_deterministic() {
    let en = text(CorpusName::Gsm8k);
    let spec = TrainSpec {
        steps: 25,
        ..TrainSpec::tiny()
    };
    let a = train_from_scratch(&spec, &en, 7, 3).unwrap();
    let b = train_from_scratch(&spec, &en, 7, 3).unwrap();
    assert_eq!(bits(&a.model), bits(&b.model));
    assert_eq!(a.losses, b.losses);
    assert_eq!(a.model, b.model);
    // Another init seed or data order gives another model.
    let c = train_from_scratch(&spec, &en, 8, 3).unwrap();
    let d = train_from_scratch(&spec, &en, 7, 4).unwrap();
    assert_ne!(bits(&a.model), bits(&c.model));
    assert_ne!(bits(&a.model), bits(&d.model));
    assert_ne!(a.losses, d.losses);
}

#[test]
fn continued_training_moves_weights_and_keeps_form() {
    let en = text(CorpusName::Gsm8k);
    let ko = text(CorpusName::Korean);
    let spec = TrainSpec {
        steps: 60,
        ..TrainSpec::tiny()
    };
    // One tokenizer for both corpora, as the standard pairs use.
    let mut mix = en[..200_000].to_vec();
    mix.extend_from_slice(&ko[..200_000]);
    let spec = TrainSpec {
        tokenizer: Some(Bpe::learn(&mix, spec.vocab_size).unwrap()),
        ..spec
    };
    let base = train_from_scratch(&spec, &en, 1, 1).unwrap();
    let before = eval_loss(&base.model, &ko, spec.seq_len, 16).unwrap();
    let ft = continue_training(&base.model, &spec, &ko, 60, 3e-3, 2).unwrap();
    let after = eval_loss(&ft.model, &ko, spec.seq_len, 16).unwrap();
    assert!(after < before - 0.3, "Korean loss {before} -> {after}");
    assert_eq!(ft.model.names(), base.model.names());
    assert_eq!(ft.model.tokenizer, base.model.tokenizer);
    assert_eq!(ft.model.config, base.model.config);
    let moved = relative_changes(&base.model, &ft.model);
    assert_eq!(
        moved.len(),
        2 + 7 * spec.layers,
        "embed, head and 7 per layer"
    );
    assert!(
        moved
            .iter()
            .all(|c| c.relative > 0.0 && c.relative.is_finite())
    );
}

#[test]
fn trained_models_round_trip_through_the_cache() {
    let en = text(CorpusName::Gsm8k);
    let spec = TrainSpec {
        steps: 5,
        ..TrainSpec::tiny()
    };
    let root = tempfile::tempdir().unwrap();
    let built = train_from_scratch(&spec, &en, 1, 1).unwrap();
    let cold = cached_in(root.path(), "tiny", || Ok(built.clone())).unwrap();
    let warm = cached_in(root.path(), "tiny", || panic!("must not rebuild")).unwrap();
    assert_eq!(cold, built);
    assert_eq!(warm, built);
    assert_eq!(bits(&warm.model), bits(&built.model));
    // A cached model trains on exactly like the original.
    let a = continue_training(&built.model, &spec, &en, 3, 1e-3, 9).unwrap();
    let b = continue_training(&warm.model, &spec, &en, 3, 1e-3, 9).unwrap();
    assert_eq!(bits(&a.model), bits(&b.model));
}

/// The full calibration set (minutes from an empty cache, then cached outside the repo).
#[test]
fn standard_pairs_are_labelled_and_comparable() {
    let pairs = dokja_train::standard_pairs().unwrap();
    assert!(pairs.iter().filter(|p| !p.derived).count() >= 5);
    assert!(pairs.iter().filter(|p| p.derived).count() >= 2);
    for p in &pairs {
        assert_eq!(p.a.names(), p.b.names(), "{}", p.name);
        assert_eq!(p.a.tokenizer, p.b.tokenizer, "{}", p.name);
        assert_ne!(bits(&p.a), bits(&p.b), "{}", p.name);
    }
}
