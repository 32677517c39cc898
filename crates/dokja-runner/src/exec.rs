//! Running a plan: worker threads answer pending items through the backend (retrying transient
//! errors), score them with `dokja-tasks`, and hand each sample to the one writer (this thread),
//! which commits it before counting it done.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dokja_backends::{Backend, BackendError, Generation, LogLikelihood, ModelIdentity};
use dokja_tasks::{GenerationSpec, ItemScore, Request, TaskDef};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Result, RunnerError};
use crate::plan::{Plan, PlannedItem, RunConfig, TaskPlan, build_plan};
use crate::store::{CacheEntry, RunRecord, RunTask, SampleRow, SampleStatus, Store};
use crate::time;

/// How a run executes; none of this changes results, so none of it is checked on resume.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Requests in flight at once against the backend.
    pub concurrency: usize,
    /// Attempts per request for transient errors (at least 1).
    pub max_attempts: u32,
    /// Backoff before the k-th retry: `backoff_base * 2^(k-1)`, at most `backoff_max` (or the
    /// server's Retry-After when it gave one, also capped).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Serve identical requests from the store's cache and fill it.
    pub use_cache: bool,
    pub progress: bool,
    /// Resume even if tasks, data, prompts or the model identity changed.
    pub force: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            concurrency: 4,
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            use_cache: true,
            progress: false,
            force: false,
        }
    }
}

/// What one invocation did.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub run_id: String,
    pub planned: usize,
    /// Items already done before this invocation (resume).
    pub already_done: usize,
    pub answered: usize,
    pub cached: usize,
    pub failed: usize,
}

/// Digest identifying a backend for the request cache.
pub fn backend_key(identity: &ModelIdentity) -> String {
    let text = serde_json::to_string(identity).unwrap_or_default();
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn new_run_id() -> String {
    let now = time::now();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let salt = blake3::hash(format!("{nanos}:{}", std::process::id()).as_bytes()).to_hex();
    // 2026-11-23T07:37:22.123Z -> 20261123T073722Z-1a2b3c
    let compact: String = now[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{compact}Z-{}", &salt[..6])
}

fn identity_of(backend: &dyn Backend) -> Result<ModelIdentity> {
    backend
        .identity()
        .map_err(|e| RunnerError::Backend(format!("cannot identify the model: {e}")))
}

/// Starts a new run of `config` and runs it to the end.
pub fn start_run(
    store: &mut Store,
    backend: &dyn Backend,
    config: &RunConfig,
    opts: &ExecOptions,
) -> Result<RunOutcome> {
    let plan = build_plan(config)?;
    let run = record_run(store, backend, config, &plan)?;
    execute(store, backend, &run, &plan, opts)
}

/// Records a new run of `config` without answering anything yet (run it with [`resume_run`]).
pub fn create_run(store: &mut Store, backend: &dyn Backend, config: &RunConfig) -> Result<String> {
    let plan = build_plan(config)?;
    Ok(record_run(store, backend, config, &plan)?.run_id)
}

fn record_run(
    store: &mut Store,
    backend: &dyn Backend,
    config: &RunConfig,
    plan: &Plan,
) -> Result<RunRecord> {
    let identity = identity_of(backend)?;
    let run = RunRecord {
        run_id: new_run_id(),
        created: time::now(),
        label: config
            .label
            .clone()
            .unwrap_or_else(|| identity.model.clone()),
        dokja_version: env!("CARGO_PKG_VERSION").to_string(),
        config: serde_json::to_value(config).unwrap_or(Value::Null),
        tasks_digest: plan.tasks_digest.clone(),
        data_digest: plan.data_digest.clone(),
        prompts_digest: plan.prompts_digest.clone(),
        model_identity: serde_json::to_value(&identity).unwrap_or(Value::Null),
        backend_key: backend_key(&identity),
    };
    let tasks: Vec<RunTask> = plan
        .tasks
        .iter()
        .map(|t| RunTask {
            task: t.def.name.clone(),
            suite: t.suite.clone(),
            kind: serde_json::to_value(t.def.kind())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            task_file_digest: t.task_file_digest.clone(),
            data_files: Value::Array(
                t.data_files
                    .iter()
                    .map(|(p, d)| json!({"path": p.display().to_string(), "blake3": d}))
                    .collect(),
            ),
            n_items: t.n_items,
        })
        .collect();
    store.insert_run(&run, &tasks)?;
    Ok(run)
}

/// Continues run `run_id`: rebuilds its plan from the stored configuration, refuses if the
/// tasks, data, prompts or model identity differ (unless `opts.force`), then answers every item
/// that has no `done` sample.
pub fn resume_run(
    store: &mut Store,
    backend: &dyn Backend,
    run_id: &str,
    opts: &ExecOptions,
) -> Result<RunOutcome> {
    let run = store.run(run_id)?;
    let config: RunConfig =
        serde_json::from_value(run.config.clone()).map_err(|e| RunnerError::Corrupt {
            path: store.path().to_string(),
            message: format!("run {run_id}: configuration: {e}"),
        })?;
    let plan = build_plan(&config)?;
    let identity = identity_of(backend)?;
    let identity_json = serde_json::to_value(&identity).unwrap_or(Value::Null);
    let checks = [
        ("the task files", &run.tasks_digest, &plan.tasks_digest),
        ("the data files", &run.data_digest, &plan.data_digest),
        ("the prompts", &run.prompts_digest, &plan.prompts_digest),
    ];
    if !opts.force {
        for (what, was, now) in checks {
            if was != now {
                return Err(RunnerError::ResumeMismatch {
                    run_id: run_id.to_string(),
                    what: what.to_string(),
                    detail: format!("digest was {}, now {}", &was[..12], &now[..12]),
                });
            }
        }
        if run.model_identity != identity_json {
            return Err(RunnerError::ResumeMismatch {
                run_id: run_id.to_string(),
                what: "the model identity".into(),
                detail: format!("was {}, now {}", run.model_identity, identity_json),
            });
        }
    }
    execute(store, backend, &run, &plan, opts)
}

/// A finished sample on its way to the writer.
struct Finished {
    row: SampleRow,
    cache: Option<(String, Value)>,
    tokens: u64,
}

fn execute(
    store: &mut Store,
    backend: &dyn Backend,
    run: &RunRecord,
    plan: &Plan,
    opts: &ExecOptions,
) -> Result<RunOutcome> {
    let done = store.done_keys(&run.run_id)?;
    let pending: VecDeque<&PlannedItem> = plan
        .items
        .iter()
        .filter(|p| !done.contains(&(plan.tasks[p.task].def.name.clone(), p.key.clone())))
        .collect();
    let mut outcome = RunOutcome {
        run_id: run.run_id.clone(),
        planned: plan.items.len(),
        already_done: plan.items.len() - pending.len(),
        answered: 0,
        cached: 0,
        failed: 0,
    };
    if pending.is_empty() {
        return Ok(outcome);
    }
    let bar = progress_bar(opts.progress, pending.len());
    let workers = opts.concurrency.clamp(1, pending.len());
    let queue = Mutex::new(pending);
    let (tx, rx) = mpsc::channel::<Finished>();
    let store_path = store.path().to_string();
    let started = Instant::now();
    let mut tokens = 0u64;
    let mut write_error = None;
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let queue = &queue;
            let store_path = &store_path;
            scope.spawn(move || {
                // Each worker reads the cache through its own connection (WAL readers do not
                // block the writer).
                let reader = if opts.use_cache {
                    Store::open_reader(std::path::Path::new(store_path)).ok()
                } else {
                    None
                };
                let ctx = Ctx {
                    backend,
                    reader: reader.as_ref(),
                    backend_key: &run.backend_key,
                    opts,
                };
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(p) = next else { break };
                    let finished = ctx.answer(&plan.tasks[p.task], p);
                    if tx.send(finished).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for f in rx {
            let cache = f.cache.as_ref().map(|(digest, response)| CacheEntry {
                backend_key: &run.backend_key,
                request_digest: digest,
                response,
            });
            if let Err(e) = store.put_sample(&run.run_id, &f.row, cache) {
                // Stop handing out work; in-flight samples are redone on resume.
                if let Ok(mut q) = queue.lock() {
                    q.clear();
                }
                write_error.get_or_insert(e);
                continue;
            }
            outcome.answered += 1;
            outcome.cached += usize::from(f.row.cached);
            outcome.failed += usize::from(f.row.status == SampleStatus::Failed);
            tokens += f.tokens;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{:.0} tok/s, {} failed",
                tokens as f64 / secs,
                outcome.failed
            ));
            bar.inc(1);
        }
    });
    bar.finish();
    match write_error {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

fn progress_bar(show: bool, len: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} samples, {per_sec}, {msg}, ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

struct Ctx<'a> {
    backend: &'a dyn Backend,
    reader: Option<&'a Store>,
    backend_key: &'a str,
    opts: &'a ExecOptions,
}

/// The backend's answer as stored (`response_json`) and cached.
#[derive(Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Answer {
    Loglikelihoods { loglikelihoods: Vec<LogLikelihood> },
    Generation(Generation),
}

/// Cache key of a request: what is asked (log-likelihoods or a generation) and the request.
fn request_digest(kind: &str, request: &Request) -> String {
    let text = serde_json::to_string(request).unwrap_or_default();
    blake3::hash(format!("{kind}\0{text}").as_bytes())
        .to_hex()
        .to_string()
}

/// What happened while answering one item.
#[derive(Default)]
struct Attempt {
    attempts: u32,
    cached: bool,
    cache_write: Option<(String, Value)>,
    /// The generation request used when the backend had no log-likelihoods.
    fallback: Option<Request>,
}

enum Failure {
    Backend { message: String, attempts: u32 },
    Scoring(String),
}

impl Ctx<'_> {
    fn answer(&self, task: &TaskPlan, p: &PlannedItem) -> Finished {
        let started = Instant::now();
        let mut state = Attempt::default();
        let result = self.fetch_and_score(task, p, &mut state);
        let Attempt {
            attempts,
            cached,
            mut cache_write,
            fallback,
        } = state;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let request = fallback.as_ref().unwrap_or(&p.request);
        let mut row = SampleRow {
            task: task.def.name.clone(),
            item_id: p.key.clone(),
            item_index: p.item.index,
            cluster: p.item.group.clone(),
            status: SampleStatus::Done,
            request: serde_json::to_value(request).unwrap_or(Value::Null),
            response: None,
            extracted: None,
            score: None,
            extraction_failed: false,
            metrics: json!({}),
            error: None,
            attempts,
            cached,
            latency_ms,
            prompt_tokens: None,
            completion_tokens: None,
            completed_at: time::now(),
        };
        let mut tokens = 0;
        match result {
            Ok((answer, score)) => {
                if let Answer::Generation(g) = &answer {
                    row.prompt_tokens = g.prompt_tokens;
                    row.completion_tokens = g.completion_tokens;
                    tokens = g.prompt_tokens.unwrap_or(0) + g.completion_tokens.unwrap_or(0);
                }
                row.response = serde_json::to_value(&answer).ok();
                row.extracted = score.extracted;
                row.score = Some(score.score);
                row.extraction_failed = score.extraction_failed;
                row.metrics = serde_json::to_value(&score.metrics).unwrap_or(json!({}));
            }
            Err(f) => {
                row.status = SampleStatus::Failed;
                row.error = Some(match f {
                    Failure::Backend { message, attempts } => {
                        format!("backend failed after {attempts} attempt(s): {message}")
                    }
                    Failure::Scoring(m) => format!("scoring failed: {m}"),
                });
                cache_write = None;
            }
        }
        Finished {
            row,
            cache: cache_write,
            tokens,
        }
    }

    /// Answers one item (from the cache or the backend) and scores it; `state` records what
    /// happened on the way even when it fails.
    fn fetch_and_score(
        &self,
        task: &TaskPlan,
        p: &PlannedItem,
        state: &mut Attempt,
    ) -> std::result::Result<(Answer, ItemScore), Failure> {
        let mut def: &TaskDef = &task.def;
        let gen_def;
        let mut request = &p.request;
        if !request.continuations.is_empty() {
            let digest = request_digest("loglikelihoods", request);
            if let Some(answer @ Answer::Loglikelihoods { .. }) = self.lookup(&digest) {
                state.cached = true;
                return score_answer(def, p, answer);
            }
            let got = self.retry(&mut state.attempts, || {
                self.backend
                    .loglikelihoods(&request.prompt, &request.continuations)
            })?;
            if let Some(loglikelihoods) = got {
                let answer = Answer::Loglikelihoods { loglikelihoods };
                state.cache_write = self.cacheable(true, &digest, &answer);
                return score_answer(def, p, answer);
            }
            // No log-likelihoods from this backend: generate and extract instead.
            request = state.fallback.insert(
                task.generation_request(&p.item)
                    .map_err(|e| Failure::Scoring(e.to_string()))?,
            );
            gen_def = task.generation_def();
            def = &gen_def;
        }
        let spec = request.generation.clone().unwrap_or_else(default_spec);
        let digest = request_digest("generation", request);
        let deterministic = spec.temperature == 0.0;
        if deterministic && let Some(answer @ Answer::Generation(_)) = self.lookup(&digest) {
            state.cached = true;
            return score_answer(def, p, answer);
        }
        let g = self.retry(&mut state.attempts, || {
            self.backend.generate(&request.prompt, &spec)
        })?;
        let answer = Answer::Generation(g);
        state.cache_write = self.cacheable(deterministic, &digest, &answer);
        score_answer(def, p, answer)
    }

    fn lookup(&self, digest: &str) -> Option<Answer> {
        let reader = self.reader?;
        let value = reader.cached(self.backend_key, digest).ok()??;
        serde_json::from_value(value).ok()
    }

    fn cacheable(&self, ok: bool, digest: &str, answer: &Answer) -> Option<(String, Value)> {
        (ok && self.opts.use_cache)
            .then(|| serde_json::to_value(answer).ok())
            .flatten()
            .map(|v| (digest.to_string(), v))
    }

    /// Calls `f`, retrying transient errors with backoff; counts attempts into `attempts`.
    fn retry<T>(
        &self,
        attempts: &mut u32,
        mut f: impl FnMut() -> std::result::Result<T, BackendError>,
    ) -> std::result::Result<T, Failure> {
        let max = self.opts.max_attempts.max(1);
        let mut tries = 0u32;
        loop {
            tries += 1;
            *attempts += 1;
            match f() {
                Ok(v) => return Ok(v),
                Err(BackendError::Permanent(message)) => {
                    return Err(Failure::Backend {
                        message,
                        attempts: tries,
                    });
                }
                Err(BackendError::Transient {
                    message,
                    retry_after,
                }) => {
                    if tries >= max {
                        return Err(Failure::Backend {
                            message,
                            attempts: tries,
                        });
                    }
                    let exp = self
                        .opts
                        .backoff_base
                        .saturating_mul(1u32 << (tries - 1).min(16));
                    let wait = retry_after.unwrap_or(exp).min(self.opts.backoff_max);
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

fn default_spec() -> GenerationSpec {
    GenerationSpec {
        max_tokens: 1024,
        temperature: 0.0,
        stop: Vec::new(),
    }
}

fn score_answer(
    def: &TaskDef,
    p: &PlannedItem,
    answer: Answer,
) -> std::result::Result<(Answer, ItemScore), Failure> {
    let score = match &answer {
        Answer::Loglikelihoods { loglikelihoods } => {
            let values: Vec<f64> = loglikelihoods.iter().map(|l| l.logprob).collect();
            def.score_loglikelihoods(&p.item, &values)
        }
        Answer::Generation(g) => def.score_response(&p.item, &g.text),
    }
    .map_err(|e| Failure::Scoring(e.to_string()))?;
    Ok((answer, score))
}
