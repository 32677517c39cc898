//! A deterministic fake backend, documented as such: it answers from a hash of the prompt so
//! runs are reproducible, and injects the faults a real server cannot be made to produce on
//! demand (transient errors a given number of times per prompt, permanent errors, missing
//! log-likelihoods, slow answers). Tests use it to drive kills and resumes; `bench/` uses it to
//! measure the runner's own per-sample overhead. The real backends come from `dokja-backends`.
//!
//! Spec string (comma-separated, all optional):
//! `model=NAME` (default `fake`), `variant=N` (changes every answer: a different "model"),
//! `delay_ms=N` (sleep per call), `transient_every=N` + `transient_times=K` (prompts whose hash
//! is divisible by N fail transiently K times first), `permanent_every=N` (prompts whose hash is
//! N-1 mod N fail permanently), `no_ll` (no log-likelihoods: the runner falls back to generation).
//! Only `model` and `variant` are part of the identity: faults and delays do not change answers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dokja_backends::{Backend, BackendError, Generation, LogLikelihood, ModelIdentity};
use dokja_tasks::{GenerationSpec, Prompt};

use crate::error::{Result, RunnerError};

#[derive(Debug, Default)]
pub struct FakeBackend {
    pub model: String,
    pub variant: u64,
    pub delay: Duration,
    pub transient_every: u64,
    pub transient_times: u32,
    pub permanent_every: u64,
    pub no_loglikelihoods: bool,
    calls: AtomicUsize,
    failures: Mutex<HashMap<u64, u32>>,
}

const ANSWERS: [&str; 7] = [
    "Answer: A",
    "Answer: B",
    "정답: C",
    "The answer is (D).",
    "Let me think. The answer is 18",
    "#### 42",
    "I am not sure.",
];

impl FakeBackend {
    pub fn new(model: &str) -> FakeBackend {
        FakeBackend {
            model: model.to_string(),
            ..FakeBackend::default()
        }
    }

    /// Parses the spec string described in the module documentation.
    pub fn from_spec(spec: &str) -> Result<FakeBackend> {
        let mut f = FakeBackend::new("fake");
        let bad = |m: String| RunnerError::Usage(format!("fake backend spec {spec:?}: {m}"));
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{k} needs a number, got {v:?}")))
            };
            match k {
                "model" => f.model = v.to_string(),
                "variant" => f.variant = num()?,
                "delay_ms" => f.delay = Duration::from_millis(num()?.min(60_000)),
                "transient_every" => f.transient_every = num()?,
                "transient_times" => f.transient_times = num()?.min(1000) as u32,
                "permanent_every" => f.permanent_every = num()?,
                "no_ll" => f.no_loglikelihoods = true,
                _ => return Err(bad(format!("unknown key {k:?}"))),
            }
        }
        Ok(f)
    }

    /// Backend calls made so far (including failed ones).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn hash(&self, prompt: &Prompt, extra: &str) -> u64 {
        let text = serde_json::to_string(prompt).unwrap_or_default();
        let h = blake3::hash(format!("{}\0{text}\0{extra}", self.variant).as_bytes());
        u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    }

    fn enter(&self, prompt: &Prompt) -> std::result::Result<(), BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        // Faults depend on the prompt only, not on the variant.
        let text = serde_json::to_string(prompt).unwrap_or_default();
        let h = u64::from_le_bytes(
            blake3::hash(text.as_bytes()).as_bytes()[..8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        if self.permanent_every > 0 && h % self.permanent_every == self.permanent_every - 1 {
            return Err(BackendError::Permanent("fake: refused this prompt".into()));
        }
        if self.transient_every > 0 && h % self.transient_every == 0 {
            let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(h).or_insert(0);
            if *n < self.transient_times {
                *n += 1;
                return Err(BackendError::Transient {
                    message: format!("fake: 503 (failure {} for this prompt)", *n),
                    retry_after: None,
                });
            }
        }
        Ok(())
    }
}

impl Backend for FakeBackend {
    fn identity(&self) -> std::result::Result<ModelIdentity, BackendError> {
        Ok(ModelIdentity {
            backend: "fake".into(),
            model: self.model.clone(),
            details: serde_json::json!({ "variant": self.variant }),
        })
    }

    fn generate(
        &self,
        prompt: &Prompt,
        _spec: &GenerationSpec,
    ) -> std::result::Result<Generation, BackendError> {
        self.enter(prompt)?;
        let h = self.hash(prompt, "generate");
        let text = ANSWERS[(h % ANSWERS.len() as u64) as usize].to_string();
        let completion_tokens = text.split_whitespace().count() as u64;
        Ok(Generation {
            raw: serde_json::json!({ "fake": true, "text": text }),
            text,
            finish_reason: Some("stop".into()),
            prompt_tokens: Some((h % 500) + 20),
            completion_tokens: Some(completion_tokens),
        })
    }

    fn loglikelihoods(
        &self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> std::result::Result<Option<Vec<LogLikelihood>>, BackendError> {
        self.enter(prompt)?;
        if self.no_loglikelihoods {
            return Ok(None);
        }
        Ok(Some(
            continuations
                .iter()
                .map(|c| {
                    let h = self.hash(prompt, c);
                    LogLikelihood {
                        logprob: -((h % 10_000) as f64) / 1000.0,
                        tokens: c.chars().count() as u64,
                        is_greedy: Some(false),
                    }
                })
                .collect(),
        ))
    }
}
