//! Backends answer benchmark requests ([`dokja_tasks::Request`]): generate a reply, or score
//! continuations by log-likelihood. The runner (`dokja bench`) owns concurrency, retries'
//! bookkeeping, storage and resumption; a backend answers one request at a time and is
//! shared between worker threads.

pub mod openai;

pub use openai::{OpenAiBackend, OpenAiConfig, RetryPolicy};

#[cfg(feature = "in-process")]
pub mod gguf;

use dokja_tasks::{GenerationSpec, Prompt};
use serde::{Deserialize, Serialize};

/// What the backend says it is: recorded with every run so results can be reproduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelIdentity {
    /// "openai-compatible" or "in-process".
    pub backend: String,
    /// The model's name as the server reports it, or the GGUF file name.
    pub model: String,
    /// Whatever else identifies it: server URL, /v1/models entry, file digest, build.
    pub details: serde_json::Value,
}

/// One generated reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// The raw response body (or an in-process equivalent), stored with the sample.
    pub raw: serde_json::Value,
}

/// The log-likelihood of one continuation after the prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLikelihood {
    /// Sum of the continuation tokens' log-probabilities (natural log).
    pub logprob: f64,
    /// Tokens in the continuation.
    pub tokens: u64,
    /// Whether greedy decoding would have produced the continuation.
    pub is_greedy: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Worth retrying: 429, 5xx, a dropped or timed-out connection. `retry_after` is the
    /// server's Retry-After when it gave one.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Retrying will not help: 4xx other than 429, malformed responses, unsupported requests.
    #[error("{0}")]
    Permanent(String),
}

pub trait Backend: Send + Sync {
    fn identity(&self) -> Result<ModelIdentity, BackendError>;

    /// Generates a reply to `prompt`.
    fn generate(&self, prompt: &Prompt, spec: &GenerationSpec) -> Result<Generation, BackendError>;

    /// Scores each continuation after `prompt`; `Ok(None)` if this backend cannot return
    /// prompt log-probabilities (the runner then falls back to generation).
    fn loglikelihoods(
        &self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> Result<Option<Vec<LogLikelihood>>, BackendError>;
}
