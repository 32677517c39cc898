//! Scoring one item: from log-likelihoods or from generated text to an [`ItemScore`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};
use crate::extract::{answers_match, extract_answer, extract_choice};
use crate::ifeval;
use crate::items::{Item, Target};
use crate::rubric::{judge_prompt, parse_judgement};
use crate::spec::{Compare, TaskDef};

/// The score of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScore {
    pub item_id: String,
    pub group: Option<String>,
    /// The task's primary metric for this item, in `[0, 1]` (0 on extraction failure).
    pub score: f64,
    /// What was read from the response (choice label, number), for audit.
    pub extracted: Option<String>,
    /// No answer could be read from the response; counted in the extraction failure rate.
    pub extraction_failed: bool,
    /// Secondary metrics (IFEval: prompt_loose, instruction_strict, instruction_loose).
    pub metrics: BTreeMap<String, f64>,
}

impl ItemScore {
    fn new(item: &Item, score: f64, extracted: Option<String>, failed: bool) -> ItemScore {
        ItemScore {
            item_id: item.id.clone(),
            group: item.group.clone(),
            score,
            extracted,
            extraction_failed: failed,
            metrics: BTreeMap::new(),
        }
    }
}

impl TaskDef {
    fn usage(&self, message: impl Into<String>) -> TaskError {
        TaskError::Usage {
            task: self.name.clone(),
            message: message.into(),
        }
    }

    /// Scores a multiple-choice item from the log-likelihood of each continuation (in the
    /// order of the request's continuations). With `length_normalize`, each is divided by
    /// its continuation's length in bytes first. Ties go to the first choice.
    pub fn score_loglikelihoods(&self, item: &Item, loglikelihoods: &[f64]) -> Result<ItemScore> {
        let Target::Choice { choices, correct } = &item.target else {
            return Err(self.usage("log-likelihood scoring needs a multiple-choice item"));
        };
        if loglikelihoods.len() != choices.len() {
            return Err(self.usage(format!(
                "item {}: {} log-likelihoods for {} choices",
                item.id,
                loglikelihoods.len(),
                choices.len()
            )));
        }
        if let Some(i) = loglikelihoods.iter().position(|x| x.is_nan()) {
            return Err(self.usage(format!("item {}: log-likelihood {i} is NaN", item.id)));
        }
        let continuations = self.continuations(item);
        let adjusted: Vec<f64> = loglikelihoods
            .iter()
            .zip(&continuations)
            .map(|(&ll, c)| {
                if self.file.scoring.length_normalize {
                    ll / c.len().max(1) as f64
                } else {
                    ll
                }
            })
            .collect();
        let best =
            (0..adjusted.len()).fold(0, |b, i| if adjusted[i] > adjusted[b] { i } else { b });
        let label = self.file.prompt.labels.label(best);
        Ok(ItemScore::new(
            item,
            f64::from(u8::from(best == *correct)),
            Some(label),
            false,
        ))
    }

    /// Scores a generated response.
    pub fn score_response(&self, item: &Item, response: &str) -> Result<ItemScore> {
        Ok(match &item.target {
            Target::Choice { choices, correct } => match extract_choice(response, choices) {
                Some(x) => ItemScore::new(
                    item,
                    f64::from(u8::from(x.index == *correct)),
                    Some(self.file.prompt.labels.label(x.index)),
                    false,
                ),
                None => ItemScore::new(item, 0.0, None, true),
            },
            Target::Answer { answer } => {
                let found = match self.file.scoring.compare {
                    Compare::Numeric => extract_answer(response).map(|(a, _)| a),
                    Compare::Exact => {
                        let t = response.trim();
                        (!t.is_empty()).then(|| t.to_string())
                    }
                };
                match found {
                    Some(a) => {
                        let ok = match self.file.scoring.compare {
                            Compare::Numeric => answers_match(&a, answer),
                            Compare::Exact => a
                                .to_lowercase()
                                .split_whitespace()
                                .eq(answer.to_lowercase().split_whitespace()),
                        };
                        ItemScore::new(item, f64::from(u8::from(ok)), Some(a), false)
                    }
                    None => ItemScore::new(item, 0.0, None, true),
                }
            }
            Target::Instructions { ids, kwargs } => {
                let out = ifeval::evaluate(ids, kwargs, &item.question, response)?;
                let frac = |v: &[bool]| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64;
                let mut s =
                    ItemScore::new(item, f64::from(u8::from(out.prompt_strict())), None, false);
                s.metrics.insert("prompt_strict".into(), s.score);
                s.metrics.insert(
                    "prompt_loose".into(),
                    f64::from(u8::from(out.prompt_loose())),
                );
                s.metrics
                    .insert("instruction_strict".into(), frac(&out.strict));
                s.metrics
                    .insert("instruction_loose".into(), frac(&out.loose));
                s.metrics
                    .insert("instructions".into(), out.strict.len() as f64);
                s
            }
            Target::Rubric { .. } => {
                return Err(
                    self.usage("rubric items are scored with `judge_prompt` and `score_judgement`")
                );
            }
        })
    }

    /// The judge prompt for a rubric item and the response to grade.
    pub fn judge_prompt(&self, item: &Item, response: &str) -> Result<String> {
        let Target::Rubric {
            criteria,
            reference,
        } = &item.target
        else {
            return Err(self.usage("judge prompts are for rubric items"));
        };
        let template = self
            .file
            .rubric
            .as_ref()
            .and_then(|r| r.judge_template.as_deref());
        judge_prompt(
            template,
            &item.question,
            response,
            reference.as_deref(),
            criteria,
        )
        .map_err(|message| TaskError::Template {
            task: self.name.clone(),
            item: item.id.clone(),
            message,
        })
    }

    /// Scores a rubric item from the judge's reply: the fraction of rubric points earned; an
    /// unreadable reply is an extraction failure.
    pub fn score_judgement(&self, item: &Item, judge_reply: &str) -> Result<ItemScore> {
        let Target::Rubric { criteria, .. } = &item.target else {
            return Err(self.usage("judgements are for rubric items"));
        };
        Ok(match parse_judgement(judge_reply, criteria) {
            Ok(g) => {
                let mut s = ItemScore::new(
                    item,
                    g.fraction(),
                    Some(format!("{}/{}", g.total, g.max)),
                    false,
                );
                for (i, p) in g.points.iter().enumerate() {
                    s.metrics.insert(format!("criterion_{}", i + 1), *p);
                }
                s
            }
            Err(_) => ItemScore::new(item, 0.0, None, true),
        })
    }
}
