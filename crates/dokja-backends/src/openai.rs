//! A backend that talks to an OpenAI-compatible HTTP server (llama.cpp's `llama-server`,
//! vLLM, OpenAI itself): chat completions for chat prompts, completions for plain text, and
//! prompt log-probabilities (`echo` + `logprobs`) where the server returns them.
//!
//! Decisions (see docs/backends.md for the user-facing description):
//! - One synchronous [`ureq::Agent`] with a connection pool, shared by the runner's threads.
//! - Every request is bounded: `timeout` covers connecting, sending and reading the whole
//!   body; the body is capped at `max_response_bytes`.
//! - 429, 408, 5xx, refused or dropped connections and timeouts are retried with exponential
//!   backoff and seeded jitter; `Retry-After` (seconds or HTTP date) is honoured as a lower
//!   bound. After the last attempt the error is [`BackendError::Transient`], so the runner may
//!   retry the item later. Other 4xx and malformed bodies are [`BackendError::Permanent`].
//! - The API key is read from an environment variable when the backend is built and kept
//!   only in memory: it is never serialized, printed or stored in results.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use dokja_tasks::{GenerationSpec, Prompt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Backend, BackendError, Generation, LogLikelihood, ModelIdentity};

/// Default cap on a response body: far above any completion, small enough to never exhaust
/// memory when a server (or something pretending to be one) streams garbage.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Environment variable holding the API key when the config names none.
pub const DEFAULT_API_KEY_ENV: &str = "OPENAI_API_KEY";

/// How the backend reaches an OpenAI-compatible server. Serializable so a run can record it;
/// it holds the *name* of the key's environment variable, never the key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root, e.g. `http://127.0.0.1:8080/v1`; endpoints are appended to it.
    pub base_url: String,
    /// The model to ask for; `None` takes the first entry of `GET {base_url}/models`.
    #[serde(default)]
    pub model: Option<String>,
    /// Name of the environment variable holding the API key (default `OPENAI_API_KEY`). When
    /// named here the variable must be set; the default one may be absent (local servers).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Bound on one HTTP exchange: connecting, sending, and reading the whole response.
    #[serde(with = "duration_secs", default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Sent as `seed` with every generation request (servers that sample use it; greedy
    /// decoding ignores it). `None` sends no seed.
    #[serde(default = "default_seed")]
    pub seed: Option<u64>,
    /// Largest response body accepted, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

fn default_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_seed() -> Option<u64> {
    Some(0)
}
fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

impl OpenAiConfig {
    /// A config with the defaults: first served model, `OPENAI_API_KEY`, 600 s timeout,
    /// [`RetryPolicy::default`], seed 0, 64 MiB responses.
    pub fn new(base_url: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            base_url: base_url.into(),
            model: None,
            api_key_env: None,
            timeout: default_timeout(),
            retry: RetryPolicy::default(),
            seed: default_seed(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Retries of transient failures within one call. Fields left out of a config take their
/// [`Default`] values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles for each further one.
    #[serde(with = "duration_secs")]
    pub base_delay: Duration,
    /// Cap on the backoff (before jitter).
    #[serde(with = "duration_secs")]
    pub max_delay: Duration,
    /// Longest `Retry-After` waited for inside a call; a server asking for more gets no more
    /// attempts now, and the call fails `Transient` with its `retry_after` for the runner.
    #[serde(with = "duration_secs")]
    pub max_retry_after: Duration,
    /// Seed of the jitter sequence, so backoffs are reproducible.
    pub jitter_seed: u64,
}

fn default_max_retry_after() -> Duration {
    Duration::from_secs(120)
}

impl Default for RetryPolicy {
    /// 5 attempts, 0.5 s doubling to at most 30 s, `Retry-After` honoured up to 120 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: default_max_retry_after(),
            jitter_seed: 0,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based), with "equal jitter": half
    /// the exponential delay is fixed, the other half drawn from `random`.
    pub fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let exponential = self
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        let half = exponential / 2;
        let spread = half.as_nanos().min(u128::from(u64::MAX)) as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`; a date in
/// the past means no wait). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values rather than reject them; the policy's cap decides.
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether the server returns prompt log-probabilities, as learnt from its answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LogprobSupport {
    /// Not asked yet.
    Unknown,
    /// A `/completions` request with `echo` returned the prompt's token log-probabilities.
    Supported,
    /// The server ignored or refused `echo`; `reason` says how.
    Unsupported { reason: String },
}

const SUPPORT_UNKNOWN: u8 = 0;
const SUPPORT_YES: u8 = 1;
const SUPPORT_NO: u8 = 2;

/// The OpenAI-compatible backend. `Send + Sync`: share one behind an `Arc` between threads.
pub struct OpenAiBackend {
    config: OpenAiConfig,
    base: String,
    agent: ureq::Agent,
    api_key: Option<String>,
    model: Mutex<Option<String>>,
    logprob_support: AtomicU8,
    logprob_reason: Mutex<Option<String>>,
    jitter_state: AtomicU64,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("config", &self.config)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// How one call failed, before it becomes a [`BackendError`].
#[derive(Debug)]
enum CallError {
    /// Still failing after the retries (or a Retry-After beyond the policy's cap).
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The server answered with a 4xx other than 408/429.
    Rejected { status: u16, message: String },
    /// Anything else retrying cannot fix: malformed body, body too large, bad URL, TLS.
    Permanent(String),
}

impl From<CallError> for BackendError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Transient {
                message,
                retry_after,
            } => BackendError::Transient {
                message,
                retry_after,
            },
            CallError::Rejected { message, .. } | CallError::Permanent(message) => {
                BackendError::Permanent(message)
            }
        }
    }
}

/// One failed attempt.
enum AttemptError {
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    Final(CallError),
}

const MAX_EXCERPT_CHARS: usize = 300;

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_EXCERPT_CHARS)]);
    let mut out: String = text
        .chars()
        .take(MAX_EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > MAX_EXCERPT_CHARS || body.len() > 4 * MAX_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

impl OpenAiBackend {
    /// Builds the backend. Touches no network: the model is resolved on first use. Fails when
    /// the base URL is not http(s) or a named API-key variable is unset.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiBackend, BackendError> {
        let base = config.base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(BackendError::Permanent(format!(
                "base URL {:?} must start with http:// or https://",
                config.base_url
            )));
        }
        if config.retry.max_attempts == 0 {
            return Err(BackendError::Permanent(
                "retry.max_attempts must be at least 1".into(),
            ));
        }
        let api_key = match &config.api_key_env {
            Some(name) => match std::env::var(name) {
                Ok(key) if !key.is_empty() => Some(key),
                _ => {
                    return Err(BackendError::Permanent(format!(
                        "the API key variable {name} named in the config is not set"
                    )));
                }
            },
            None => std::env::var(DEFAULT_API_KEY_ENV)
                .ok()
                .filter(|k| !k.is_empty()),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections_per_host(64)
            .user_agent(concat!("dokja/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(OpenAiBackend {
            base,
            agent,
            api_key,
            model: Mutex::new(config.model.clone()),
            logprob_support: AtomicU8::new(SUPPORT_UNKNOWN),
            logprob_reason: Mutex::new(None),
            jitter_state: AtomicU64::new(config.retry.jitter_seed),
            config,
        })
    }

    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// What the backend has learnt about prompt log-probabilities.
    pub fn logprob_support(&self) -> LogprobSupport {
        match self.logprob_support.load(Ordering::Acquire) {
            SUPPORT_YES => LogprobSupport::Supported,
            SUPPORT_NO => LogprobSupport::Unsupported {
                reason: lock(&self.logprob_reason).clone().unwrap_or_default(),
            },
            _ => LogprobSupport::Unknown,
        }
    }

    /// The model requests name: the configured one, else the first served one (asked once).
    pub fn model(&self) -> Result<String, BackendError> {
        if let Some(m) = lock(&self.model).as_ref() {
            return Ok(m.clone());
        }
        let (_, entry) = self.first_model_entry()?;
        let id = entry["id"].as_str().unwrap_or_default().to_string();
        *lock(&self.model) = Some(id.clone());
        Ok(id)
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.base)
    }

    /// `GET /models`: the whole answer and the entry of the configured (or first) model.
    fn first_model_entry(&self) -> Result<(Value, Value), BackendError> {
        let url = self.url("models");
        let listing = self.call("GET", &url, None)?;
        let Some(data) = listing["data"].as_array() else {
            return Err(BackendError::Permanent(format!(
                "GET {url}: the answer has no `data` list of models"
            )));
        };
        let wanted = self.config.model.as_deref();
        let entry = match wanted {
            Some(name) => data.iter().find(|e| e["id"].as_str() == Some(name)),
            None => data.first(),
        };
        match entry {
            Some(e) if e["id"].is_string() => Ok((listing.clone(), e.clone())),
            Some(_) => Err(BackendError::Permanent(format!(
                "GET {url}: the model entry has no string `id`"
            ))),
            // A server may serve a model under a name it does not list; keep going.
            None if wanted.is_some() => Ok((listing.clone(), json!({ "id": wanted }))),
            None => Err(BackendError::Permanent(format!(
                "GET {url}: the server lists no model"
            ))),
        }
    }

    /// llama-server's `/props` (at the server root, beside `/v1`), reduced to what identifies
    /// the run. `None` when the server does not answer it: one attempt, errors ignored.
    fn server_props(&self) -> Option<Value> {
        let root = self.base.strip_suffix("/v1")?;
        let url = format!("{root}/props");
        let props = match self.attempt("GET", &url, None) {
            Ok(v) => v,
            Err(_) => return None,
        };
        let mut kept = serde_json::Map::new();
        for key in [
            "build_info",
            "model_path",
            "model_alias",
            "model_ftype",
            "total_slots",
            "chat_template",
        ] {
            if let Some(v) = props.get(key) {
                kept.insert(key.into(), v.clone());
            }
        }
        if let Some(n_ctx) = props["default_generation_settings"].get("n_ctx") {
            kept.insert("n_ctx".into(), n_ctx.clone());
        }
        (!kept.is_empty()).then_some(Value::Object(kept))
    }

    fn next_random(&self) -> u64 {
        // SplitMix64 over an atomic counter: thread-safe and reproducible from the seed.
        let mut z = self
            .jitter_state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// One request with the retry policy applied.
    fn call(&self, method: &str, url: &str, body: Option<&Value>) -> Result<Value, CallError> {
        let policy = &self.config.retry;
        let mut attempt = 1;
        loop {
            let (message, retry_after) = match self.attempt(method, url, body) {
                Ok(v) => return Ok(v),
                Err(AttemptError::Final(e)) => return Err(e),
                Err(AttemptError::Retryable {
                    message,
                    retry_after,
                }) => (message, retry_after),
            };
            let give_up = |why: String| CallError::Transient {
                message: format!("{method} {url}: {message} ({why})"),
                retry_after,
            };
            if attempt >= policy.max_attempts {
                return Err(give_up(format!(
                    "gave up after {attempt} attempt{}",
                    if attempt == 1 { "" } else { "s" }
                )));
            }
            if let Some(wait) = retry_after
                && wait > policy.max_retry_after
            {
                return Err(give_up(format!(
                    "the server asks to wait {} s, more than the policy's {} s",
                    wait.as_secs(),
                    policy.max_retry_after.as_secs()
                )));
            }
            let backoff = policy.backoff(attempt, self.next_random());
            std::thread::sleep(retry_after.map_or(backoff, |w| w.max(backoff)));
            attempt += 1;
        }
    }

    /// One HTTP exchange: status, size and JSON checked.
    fn attempt(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, AttemptError> {
        let result = match body {
            Some(body) => {
                let mut request = self
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json");
                if let Some(key) = &self.api_key {
                    request = request.header("Authorization", format!("Bearer {key}"));
                }
                request.send(serde_json::to_vec(body).expect("JSON values serialize"))
            }
            None => {
                let mut request = self.agent.get(url);
                if let Some(key) = &self.api_key {
                    request = request.header("Authorization", format!("Bearer {key}"));
                }
                request.call()
            }
        };
        let mut response = match result {
            Ok(r) => r,
            Err(e) => return Err(classify_transport_error(e, self.config.timeout)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = match response
            .body_mut()
            .with_config()
            .limit(self.config.max_response_bytes)
            .read_to_vec()
        {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(limit)) => {
                return Err(AttemptError::Final(CallError::Permanent(format!(
                    "{method} {url}: the response body exceeds {limit} bytes"
                ))));
            }
            Err(e) => {
                return Err(match classify_transport_error(e, self.config.timeout) {
                    AttemptError::Retryable { message, .. } => AttemptError::Retryable {
                        message: format!("HTTP {status}, then reading the body: {message}"),
                        retry_after,
                    },
                    other => other,
                });
            }
        };
        match status {
            200..=299 => serde_json::from_slice(&bytes).map_err(|e| {
                AttemptError::Final(CallError::Permanent(format!(
                    "{method} {url}: HTTP {status} with a body that is not valid JSON ({e}): {}",
                    excerpt(&bytes)
                )))
            }),
            408 | 429 | 500..=599 => Err(AttemptError::Retryable {
                message: format!("HTTP {status}: {}", excerpt(&bytes)),
                retry_after,
            }),
            _ => Err(AttemptError::Final(CallError::Rejected {
                status,
                message: format!("{method} {url}: HTTP {status}: {}", excerpt(&bytes)),
            })),
        }
    }

    fn sampling_fields(&self, body: &mut serde_json::Map<String, Value>, spec: &GenerationSpec) {
        body.insert("max_tokens".into(), json!(spec.max_tokens));
        body.insert("temperature".into(), json!(spec.temperature));
        if !spec.stop.is_empty() {
            body.insert("stop".into(), json!(spec.stop));
        }
        if let Some(seed) = self.config.seed {
            body.insert("seed".into(), json!(seed));
        }
        body.insert("stream".into(), json!(false));
    }

    fn mark_unsupported(&self, reason: String) {
        let mut r = lock(&self.logprob_reason);
        if r.is_none() {
            *r = Some(reason);
        }
        self.logprob_support.store(SUPPORT_NO, Ordering::Release);
    }

    fn score_one(
        &self,
        model: &str,
        context: &str,
        continuation: &str,
    ) -> Result<Option<LogLikelihood>, BackendError> {
        let url = self.url("completions");
        let full = format!("{context}{continuation}");
        // max_tokens 1, not 0: some servers reject 0; the generated token lies after the
        // prompt's end and is excluded by its offset.
        let mut body = json!({
            "model": model,
            "prompt": full,
            "echo": true,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0,
            "stream": false,
        });
        if let Some(seed) = self.config.seed {
            body["seed"] = json!(seed);
        }
        let known = self.logprob_support.load(Ordering::Acquire) == SUPPORT_YES;
        let response = match self.call("POST", &url, Some(&body)) {
            Ok(v) => v,
            Err(CallError::Rejected { status, message })
                if !known && matches!(status, 400 | 404 | 405 | 422 | 501) =>
            {
                self.mark_unsupported(format!(
                    "the server refused echo+logprobs (HTTP {status}): {message}"
                ));
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        match parse_echo_logprobs(&response, context, &full) {
            Ok(ll) => {
                self.logprob_support.store(SUPPORT_YES, Ordering::Release);
                Ok(Some(ll))
            }
            Err(EchoError::NotEchoed(reason)) if !known => {
                self.mark_unsupported(format!("POST {url}: {reason}"));
                Ok(None)
            }
            Err(EchoError::NotEchoed(reason) | EchoError::Malformed(reason)) => {
                Err(BackendError::Permanent(format!("POST {url}: {reason}")))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are plain caches: a panic elsewhere cannot leave them half-written.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn classify_transport_error(e: ureq::Error, timeout: Duration) -> AttemptError {
    let retryable = |message: String| AttemptError::Retryable {
        message,
        retry_after: None,
    };
    match e {
        ureq::Error::Timeout(what) => retryable(format!(
            "timed out ({what}) against the {:.1} s limit",
            timeout.as_secs_f64()
        )),
        ureq::Error::Io(io) => retryable(format!("connection failed: {io}")),
        ureq::Error::ConnectionFailed => retryable("connection failed".into()),
        ureq::Error::HostNotFound => retryable("host not found".into()),
        ureq::Error::BodyStalled => retryable("the response body stalled".into()),
        ureq::Error::Protocol(p) => retryable(format!("HTTP protocol error: {p}")),
        other => AttemptError::Final(CallError::Permanent(format!("request failed: {other}"))),
    }
}

/// Why an echo answer gives no log-likelihood.
#[derive(Debug, PartialEq)]
pub enum EchoError {
    /// The server did not echo the prompt with per-token log-probabilities (not supported).
    NotEchoed(String),
    /// It claimed to, but the numbers do not add up.
    Malformed(String),
}

/// Reads a legacy-completions answer with `echo: true, logprobs: k` (OpenAI, vLLM): the
/// tokens of `full` = `context` + continuation, their log-probabilities and character
/// offsets. The continuation's tokens are those that end after `context`'s last character
/// and start before `full`'s end (a token straddling the boundary counts as continuation;
/// tokens generated after the prompt are excluded).
pub fn parse_echo_logprobs(
    response: &Value,
    context: &str,
    full: &str,
) -> Result<LogLikelihood, EchoError> {
    let choice = &response["choices"][0];
    let Some(text) = choice["text"].as_str() else {
        return Err(EchoError::Malformed(
            "the answer has no choices[0].text".into(),
        ));
    };
    if !text.starts_with(full) {
        return Err(EchoError::NotEchoed(
            "the server ignored `echo`: choices[0].text does not repeat the prompt".into(),
        ));
    }
    let lp = &choice["logprobs"];
    let (Some(tokens), Some(token_logprobs), Some(offsets)) = (
        lp["tokens"].as_array(),
        lp["token_logprobs"].as_array(),
        lp["text_offset"].as_array(),
    ) else {
        return Err(EchoError::NotEchoed(
            "no `tokens`/`token_logprobs`/`text_offset` lists in choices[0].logprobs".into(),
        ));
    };
    let n = tokens.len();
    if token_logprobs.len() != n || offsets.len() != n {
        return Err(EchoError::Malformed(format!(
            "logprobs lists differ in length: {n} tokens, {} logprobs, {} offsets",
            token_logprobs.len(),
            offsets.len()
        )));
    }
    let top = lp["top_logprobs"].as_array().filter(|t| t.len() == n);
    let context_chars = context.chars().count() as u64;
    let full_chars = full.chars().count() as u64;
    let text_chars = text.chars().count() as u64;
    let mut starts = Vec::with_capacity(n);
    for (i, o) in offsets.iter().enumerate() {
        let Some(o) = o.as_u64() else {
            return Err(EchoError::Malformed(format!(
                "text_offset[{i}] is not an offset"
            )));
        };
        if o > text_chars || starts.last().is_some_and(|&prev| o < prev) {
            return Err(EchoError::Malformed(format!(
                "text_offset[{i}] = {o} is out of order or beyond the text"
            )));
        }
        starts.push(o);
    }
    let mut sum = 0.0;
    let mut count = 0u64;
    let mut greedy = Some(true);
    for i in 0..n {
        let start = starts[i];
        let end = starts.get(i + 1).copied().unwrap_or(text_chars);
        if start >= full_chars || end <= context_chars {
            continue;
        }
        let Some(logprob) = token_logprobs[i].as_f64() else {
            return Err(EchoError::Malformed(format!(
                "continuation token {i} has no log-probability (an empty prompt has none for \
                 its first token)"
            )));
        };
        if !logprob.is_finite() && logprob != f64::NEG_INFINITY {
            return Err(EchoError::Malformed(format!(
                "token_logprobs[{i}] is {logprob}"
            )));
        }
        sum += logprob;
        count += 1;
        greedy = match (greedy, top.map(|t| &t[i])) {
            (Some(g), Some(Value::Object(alternatives))) => {
                let best = alternatives
                    .values()
                    .filter_map(Value::as_f64)
                    .fold(f64::NEG_INFINITY, f64::max);
                Some(g && logprob >= best - 1e-6)
            }
            _ => None,
        };
    }
    Ok(LogLikelihood {
        logprob: sum,
        tokens: count,
        is_greedy: greedy,
    })
}

fn completion_text(response: &Value, chat: bool) -> Option<String> {
    let choice = &response["choices"][0];
    if chat {
        match &choice["message"]["content"] {
            Value::String(s) => Some(s.clone()),
            // A reply that is only a refusal or tool call has null content.
            Value::Null if choice["message"].is_object() => Some(String::new()),
            _ => None,
        }
    } else {
        choice["text"].as_str().map(str::to_string)
    }
}

impl Backend for OpenAiBackend {
    fn identity(&self) -> Result<ModelIdentity, BackendError> {
        let (_, entry) = self.first_model_entry()?;
        let model = entry["id"].as_str().unwrap_or_default().to_string();
        {
            let mut cached = lock(&self.model);
            if cached.is_none() {
                *cached = Some(model.clone());
            }
        }
        let mut details = json!({
            "base_url": self.base,
            "models_entry": entry,
        });
        if let Some(props) = self.server_props() {
            details["server_props"] = props;
        }
        Ok(ModelIdentity {
            backend: "openai-compatible".into(),
            model,
            details,
        })
    }

    fn generate(&self, prompt: &Prompt, spec: &GenerationSpec) -> Result<Generation, BackendError> {
        let model = self.model()?;
        let mut body = serde_json::Map::new();
        body.insert("model".into(), json!(model));
        let (endpoint, chat) = match prompt {
            Prompt::Chat { messages } => {
                body.insert("messages".into(), json!(messages));
                ("chat/completions", true)
            }
            Prompt::Completion { text } => {
                body.insert("prompt".into(), json!(text));
                ("completions", false)
            }
        };
        self.sampling_fields(&mut body, spec);
        let url = self.url(endpoint);
        let raw = self.call("POST", &url, Some(&Value::Object(body)))?;
        let Some(text) = completion_text(&raw, chat) else {
            return Err(BackendError::Permanent(format!(
                "POST {url}: the answer has no {}",
                if chat {
                    "choices[0].message.content"
                } else {
                    "choices[0].text"
                }
            )));
        };
        Ok(Generation {
            text,
            finish_reason: raw["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string),
            prompt_tokens: raw["usage"]["prompt_tokens"].as_u64(),
            completion_tokens: raw["usage"]["completion_tokens"].as_u64(),
            raw,
        })
    }

    /// Completion prompts only: chat prompts would need the server's chat template applied
    /// to text, which the OpenAI API does not expose, so they return `Ok(None)`.
    fn loglikelihoods(
        &self,
        prompt: &Prompt,
        continuations: &[String],
    ) -> Result<Option<Vec<LogLikelihood>>, BackendError> {
        let Prompt::Completion { text } = prompt else {
            return Ok(None);
        };
        if self.logprob_support.load(Ordering::Acquire) == SUPPORT_NO {
            return Ok(None);
        }
        let model = self.model()?;
        let mut out = Vec::with_capacity(continuations.len());
        for continuation in continuations {
            match self.score_one(&model, text, continuation)? {
                Some(ll) => out.push(ll),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }
}

/// Durations as (fractional) seconds in configs.
mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
