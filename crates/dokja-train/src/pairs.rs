//! The labelled calibration set: independent pairs that share architecture, tokenizer and
//! (for some) training data, and true derivations made by training. All models are cached.

use std::path::Path;

use dokja_testkit::SynthModel;
use dokja_testkit::rng::name_hash;

use crate::bpe::Bpe;
use crate::cache::{cache_root, cached_in};
use crate::corpus::{CorpusName, benchmarks_dir, corpus_in};
use crate::train::{TrainSpec, TrainedModel, continue_training, train_from_scratch};
use crate::{Result, TrainError};

#[derive(Clone, Debug)]
pub struct LabelledPair {
    pub name: String,
    pub a: SynthModel,
    pub b: SynthModel,
    /// True when `b` was made from `a`'s weights.
    pub derived: bool,
    pub note: String,
}

/// Bump when the recipe below changes, so stale cache entries are not reused.
const RECIPE: &str = "r1";

/// A fine-tune that moves the weights a little: few steps, low learning rate.
const FT_STEPS: usize = 200;
const FT_LR: f64 = 3e-4;
/// Continued training that moves the weights far: long, at a high learning rate.
const FAR_STEPS: usize = 400;
const FAR_LR: f64 = 4e-3;
/// Continued training on the same data, at the from-scratch learning rate.
const CONT_STEPS: usize = 400;

/// A continued-training run: tag, corpus, steps, peak learning rate, data seed.
struct Continue(&'static str, CorpusName, usize, f64, u64);

/// How far one matrix moved: `||W' - W||_F / ||W||_F`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixChange {
    pub name: String,
    pub relative: f32,
}

/// The relative Frobenius change of every matrix (rank >= 2) present in both models with
/// one shape.
pub fn relative_changes(base: &SynthModel, moved: &SynthModel) -> Vec<MatrixChange> {
    base.tensors
        .iter()
        .filter(|t| t.shape.len() >= 2)
        .filter_map(|t| {
            let u = moved.get(&t.name).filter(|u| u.shape == t.shape)?;
            let (mut diff, mut norm) = (0.0f64, 0.0f64);
            for (a, b) in t.data.iter().zip(&u.data) {
                diff += ((b - a) as f64).powi(2);
                norm += (*a as f64).powi(2);
            }
            Some(MatrixChange {
                name: t.name.clone(),
                relative: (diff / norm.max(f64::MIN_POSITIVE)).sqrt() as f32,
            })
        })
        .collect()
}

fn mean_change(base: &SynthModel, moved: &SynthModel) -> (f32, f32, f32) {
    let c: Vec<f32> = relative_changes(base, moved)
        .iter()
        .map(|c| c.relative)
        .collect();
    let mean = c.iter().sum::<f32>() / c.len().max(1) as f32;
    let min = c.iter().copied().fold(f32::INFINITY, f32::min);
    let max = c.iter().copied().fold(0.0, f32::max);
    (mean, min, max)
}

/// The trained models behind the standard pairs (with their loss curves) and the pairs.
#[derive(Clone, Debug)]
pub struct StandardSet {
    pub models: Vec<TrainedModel>,
    pub pairs: Vec<LabelledPair>,
}

/// [`standard_set_in`] with the default benchmark folder and cache.
pub fn standard_pairs() -> Result<Vec<LabelledPair>> {
    Ok(standard_set_in(&benchmarks_dir(), &cache_root())?.pairs)
}

/// The pairs of [`standard_set_in`].
pub fn standard_pairs_in(bench: &Path, cache: &Path) -> Result<Vec<LabelledPair>> {
    Ok(standard_set_in(bench, cache)?.pairs)
}

/// [`standard_set_in`] with the default benchmark folder and cache.
pub fn standard_set() -> Result<StandardSet> {
    standard_set_in(&benchmarks_dir(), &cache_root())
}

/// Loads the corpora and the shared tokenizer only when a model must be trained, so a warm
/// cache needs neither.
struct Inputs<'a> {
    bench: &'a Path,
    english: Option<Vec<u8>>,
    korean: Option<Vec<u8>>,
    spec: Option<TrainSpec>,
}

impl Inputs<'_> {
    fn text(&mut self, c: CorpusName) -> Result<&[u8]> {
        let slot = match c {
            CorpusName::English => &mut self.english,
            CorpusName::Korean => &mut self.korean,
            _ => return Err(TrainError::Spec(format!("{c:?} is not a standard corpus"))),
        };
        if slot.is_none() {
            *slot = Some(corpus_in(self.bench, c)?);
        }
        Ok(slot.as_deref().unwrap_or_default())
    }

    /// The default spec with one tokenizer for all models, learned from equal shares of
    /// English and Korean, so every pair shares its vocabulary (ids and strings).
    fn spec(&mut self) -> Result<TrainSpec> {
        if self.spec.is_none() {
            let ko = self.text(CorpusName::Korean)?.to_vec();
            let en = self.text(CorpusName::English)?;
            let mut mix = en[..en.len().min(ko.len())].to_vec();
            mix.extend_from_slice(&ko);
            let base = TrainSpec::default();
            let tokenizer = Bpe::learn(&mix, base.vocab_size)?;
            self.spec = Some(TrainSpec {
                tokenizer: Some(tokenizer),
                ..base
            });
        }
        Ok(self.spec.clone().unwrap_or_default())
    }
}

/// The calibration pairs, each model trained once and then read from the cache under
/// `cache`:
/// - independent, same data: English x3 seeds (3 pairs), Korean x2 seeds (1 pair);
/// - independent, different data: English vs Korean (2 pairs);
/// - derived: an English model fine-tuned briefly on Korean (small move), continued long
///   on Korean at a high learning rate (far move), continued on English with new data
///   order; a Korean model fine-tuned briefly on English.
pub fn standard_set_in(bench: &Path, cache: &Path) -> Result<StandardSet> {
    let mut inp = Inputs {
        bench,
        english: None,
        korean: None,
        spec: None,
    };
    // The cache key covers the recipe and every spec field (the tokenizer is a function
    // of the corpora and the vocabulary size, both covered).
    let fp = name_hash(&format!("{RECIPE}{:?}", TrainSpec::default()));
    let key = |what: &str| format!("std-{RECIPE}-{fp:016x}-{what}");
    let scratch = |inp: &mut Inputs, c: CorpusName, init: u64, data: u64| {
        let what = format!("{}-s{init}-d{data}", c.label());
        cached_in(cache, &key(&what), || {
            let spec = inp.spec()?;
            train_from_scratch(&spec, inp.text(c)?, init, data)
        })
    };
    let en: Vec<TrainedModel> = [(1, 11), (2, 12), (3, 13)]
        .into_iter()
        .map(|(i, d)| scratch(&mut inp, CorpusName::English, i, d))
        .collect::<Result<_>>()?;
    let ko: Vec<TrainedModel> = [(4, 14), (5, 15)]
        .into_iter()
        .map(|(i, d)| scratch(&mut inp, CorpusName::Korean, i, d))
        .collect::<Result<_>>()?;
    let cont = |inp: &mut Inputs, base: &TrainedModel, plan: Continue| {
        let Continue(tag, c, steps, lr, data) = plan;
        let what = format!(
            "{}-{tag}-{}-n{steps}-lr{lr}-d{data}",
            base.model.name,
            c.label()
        );
        cached_in(cache, &key(&what), || {
            let spec = inp.spec()?;
            continue_training(&base.model, &spec, inp.text(c)?, steps, lr, data)
        })
    };
    let lr0 = TrainSpec::default().lr;
    let (ko_c, en_c) = (CorpusName::Korean, CorpusName::English);
    let en_ft_ko = cont(&mut inp, &en[0], Continue("ft", ko_c, FT_STEPS, FT_LR, 21))?;
    let en_far_ko = cont(
        &mut inp,
        &en[0],
        Continue("far", ko_c, FAR_STEPS, FAR_LR, 22),
    )?;
    let en_cont_en = cont(
        &mut inp,
        &en[0],
        Continue("cont", en_c, CONT_STEPS, lr0, 23),
    )?;
    let ko_ft_en = cont(&mut inp, &ko[0], Continue("ft", en_c, FT_STEPS, FT_LR, 24))?;

    let loss = |m: &TrainedModel| m.loss_head_tail(50).1;
    let indep = |name: &str, a: &TrainedModel, b: &TrainedModel, what: &str| LabelledPair {
        name: name.into(),
        a: a.model.clone(),
        b: b.model.clone(),
        derived: false,
        note: format!(
            "independent: {what}; final train loss {:.2} / {:.2}",
            loss(a),
            loss(b)
        ),
    };
    let derived = |name: &str, a: &TrainedModel, b: &TrainedModel, what: &str| {
        let (mean, min, max) = mean_change(&a.model, &b.model);
        LabelledPair {
            name: name.into(),
            a: a.model.clone(),
            b: b.model.clone(),
            derived: true,
            note: format!(
                "derived: {what}; relative Frobenius change of matrices mean {mean:.3} \
                 (min {min:.3}, max {max:.3}); final train loss {:.2} -> {:.2}",
                loss(a),
                loss(b)
            ),
        }
    };
    let same = "same data (English), different init seed and data order";
    let same_ko = "same data (Korean), different init seed and data order";
    let diff = "different data (English vs Korean), different init seed";
    let pairs = vec![
        indep("indep-same-en-1v2", &en[0], &en[1], same),
        indep("indep-same-en-1v3", &en[0], &en[2], same),
        indep("indep-same-en-2v3", &en[1], &en[2], same),
        indep("indep-same-ko-1v2", &ko[0], &ko[1], same_ko),
        indep("indep-diff-en1-ko1", &en[0], &ko[0], diff),
        indep("indep-diff-en2-ko2", &en[1], &ko[1], diff),
        derived(
            "derived-ft-en1-on-ko",
            &en[0],
            &en_ft_ko,
            &format!("English model fine-tuned on Korean, {FT_STEPS} steps at lr {FT_LR}"),
        ),
        derived(
            "derived-ft-ko1-on-en",
            &ko[0],
            &ko_ft_en,
            &format!("Korean model fine-tuned on English, {FT_STEPS} steps at lr {FT_LR}"),
        ),
        derived(
            "derived-cont-en1-on-en",
            &en[0],
            &en_cont_en,
            &format!(
                "English model continued on English (new data order), {CONT_STEPS} steps at lr {lr0}"
            ),
        ),
        derived(
            "derived-far-en1-on-ko",
            &en[0],
            &en_far_ko,
            &format!("English model continued on Korean, {FAR_STEPS} steps at lr {FAR_LR}"),
        ),
    ];
    let mut models = en;
    models.extend(ko);
    models.extend([en_ft_ko, ko_ft_en, en_cont_en, en_far_ko]);
    Ok(StandardSet { models, pairs })
}
