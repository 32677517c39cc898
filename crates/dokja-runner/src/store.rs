//! The run store: one SQLite file holding runs, their samples and the request cache.
//!
//! Durability: WAL journal with `synchronous = FULL`, and every sample is written in its own
//! transaction together with its cache entry, so a sample is either fully stored or not at all
//! when the process dies. The key `(run_id, task, item_id)` makes a sample unique: a resumed run
//! only asks for items with no `done` row, and a failed row is replaced when redone.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RunnerError};

/// Version of the schema below, stored in `PRAGMA user_version`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    label TEXT NOT NULL,
    dokja_version TEXT NOT NULL,
    config_json TEXT NOT NULL,
    tasks_digest TEXT NOT NULL,
    data_digest TEXT NOT NULL,
    prompts_digest TEXT NOT NULL,
    model_identity_json TEXT NOT NULL,
    backend_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_tasks (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task TEXT NOT NULL,
    suite TEXT NOT NULL,
    kind TEXT NOT NULL,
    task_file_digest TEXT NOT NULL,
    data_files_json TEXT NOT NULL,
    n_items INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (run_id, task)
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task TEXT NOT NULL,
    item_id TEXT NOT NULL,
    item_index INTEGER NOT NULL,
    cluster TEXT,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    request_json TEXT NOT NULL,
    response_json TEXT,
    extracted TEXT,
    score REAL,
    extraction_failed INTEGER NOT NULL DEFAULT 0,
    metrics_json TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    attempts INTEGER NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    completed_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task, item_id)
);
CREATE TABLE IF NOT EXISTS cache (
    backend_key TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    response_json TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (backend_key, request_digest)
);
";

/// A run's header row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// RFC 3339 UTC.
    pub created: String,
    /// The name reference registries match (default: the model name the backend reports).
    pub label: String,
    pub dokja_version: String,
    /// The [`crate::RunConfig`] as JSON: what a resume needs to rebuild the plan.
    pub config: serde_json::Value,
    pub tasks_digest: String,
    pub data_digest: String,
    pub prompts_digest: String,
    pub model_identity: serde_json::Value,
    /// Digest of the model identity: the request cache's scope.
    pub backend_key: String,
}

/// One task of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    pub task: String,
    pub suite: String,
    pub kind: String,
    pub task_file_digest: String,
    /// `[{"path": ..., "blake3": ...}]`
    pub data_files: serde_json::Value,
    pub n_items: usize,
}

/// Whether a sample was answered and scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleStatus {
    Done,
    /// The backend or the scorer failed; redone on resume.
    Failed,
}

impl SampleStatus {
    fn as_str(self) -> &'static str {
        match self {
            SampleStatus::Done => "done",
            SampleStatus::Failed => "failed",
        }
    }
}

/// One stored sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRow {
    pub task: String,
    pub item_id: String,
    pub item_index: usize,
    pub cluster: Option<String>,
    pub status: SampleStatus,
    /// The request actually answered (a log-likelihood request, or the generation request
    /// used when the backend has no log-likelihoods).
    pub request: serde_json::Value,
    pub response: Option<serde_json::Value>,
    pub extracted: Option<String>,
    pub score: Option<f64>,
    pub extraction_failed: bool,
    pub metrics: serde_json::Value,
    pub error: Option<String>,
    pub attempts: u32,
    pub cached: bool,
    pub latency_ms: f64,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub completed_at: String,
}

/// A cache entry to write with a sample.
pub struct CacheEntry<'a> {
    pub backend_key: &'a str,
    pub request_digest: &'a str,
    pub response: &'a serde_json::Value,
}

/// Counts of a run's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleCounts {
    pub planned: usize,
    pub done: usize,
    pub failed: usize,
}

pub struct Store {
    conn: Connection,
    path: String,
}

fn sql(path: &str) -> impl Fn(rusqlite::Error) -> RunnerError + '_ {
    move |source| RunnerError::Store {
        path: path.to_string(),
        source,
    }
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

fn parse_json(path: &str, what: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| RunnerError::Corrupt {
        path: path.to_string(),
        message: format!("{what}: {e}"),
    })
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let p = path.display().to_string();
        let conn = Connection::open(path).map_err(sql(&p))?;
        Store::init(conn, p)
    }

    fn init(conn: Connection, path: String) -> Result<Store> {
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sql(&path))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql(&path))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql(&path))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql(&path))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql(&path))?;
        if version != 0 && version != SCHEMA_VERSION {
            return Err(RunnerError::Corrupt {
                path,
                message: format!(
                    "schema version {version}, this dokja reads version {SCHEMA_VERSION}"
                ),
            });
        }
        conn.execute_batch(SCHEMA).map_err(sql(&path))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql(&path))?;
        Ok(Store { conn, path })
    }

    /// A second connection to an existing store, for cache reads from worker threads.
    pub fn open_reader(path: &Path) -> Result<Store> {
        let p = path.display().to_string();
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql(&p))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sql(&p))?;
        Ok(Store { conn, path: p })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Records a new run and its tasks in one transaction.
    pub fn insert_run(&mut self, run: &RunRecord, tasks: &[RunTask]) -> Result<()> {
        let e = sql(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute(
            "INSERT INTO runs (run_id, created, label, dokja_version, config_json, tasks_digest,
                data_digest, prompts_digest, model_identity_json, backend_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                run.run_id,
                run.created,
                run.label,
                run.dokja_version,
                json_text(&run.config),
                run.tasks_digest,
                run.data_digest,
                run.prompts_digest,
                json_text(&run.model_identity),
                run.backend_key
            ],
        )
        .map_err(&e)?;
        for (i, t) in tasks.iter().enumerate() {
            tx.execute(
                "INSERT INTO run_tasks (run_id, task, suite, kind, task_file_digest,
                    data_files_json, n_items, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run.run_id,
                    t.task,
                    t.suite,
                    t.kind,
                    t.task_file_digest,
                    json_text(&t.data_files),
                    t.n_items as i64,
                    i as i64
                ],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// The run `run_id`, or an error naming the store if there is none.
    pub fn run(&self, run_id: &str) -> Result<RunRecord> {
        self.try_run(run_id)?.ok_or_else(|| RunnerError::NoSuchRun {
            path: self.path.clone(),
            run_id: run_id.to_string(),
        })
    }

    fn try_run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let row = self
            .conn
            .query_row(
                "SELECT run_id, created, label, dokja_version, config_json, tasks_digest,
                    data_digest, prompts_digest, model_identity_json, backend_key
                 FROM runs WHERE run_id = ?1",
                [run_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                    ))
                },
            )
            .optional()
            .map_err(sql(&self.path))?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(RunRecord {
            config: parse_json(&self.path, "runs.config_json", &r.4)?,
            model_identity: parse_json(&self.path, "runs.model_identity_json", &r.8)?,
            run_id: r.0,
            created: r.1,
            label: r.2,
            dokja_version: r.3,
            tasks_digest: r.5,
            data_digest: r.6,
            prompts_digest: r.7,
            backend_key: r.9,
        }))
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let ids: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT run_id FROM runs ORDER BY created, run_id")
                .map_err(sql(&self.path))?;
            st.query_map([], |r| r.get(0))
                .map_err(sql(&self.path))?
                .collect::<std::result::Result<_, _>>()
                .map_err(sql(&self.path))?
        };
        ids.iter().map(|id| self.run(id)).collect()
    }

    /// The tasks of a run, in plan order.
    pub fn run_tasks(&self, run_id: &str) -> Result<Vec<RunTask>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT task, suite, kind, task_file_digest, data_files_json, n_items
                 FROM run_tasks WHERE run_id = ?1 ORDER BY position",
            )
            .map_err(sql(&self.path))?;
        let rows = st
            .query_map([run_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(sql(&self.path))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(sql(&self.path))?;
        rows.into_iter()
            .map(|r| {
                Ok(RunTask {
                    task: r.0,
                    suite: r.1,
                    kind: r.2,
                    task_file_digest: r.3,
                    data_files: parse_json(&self.path, "run_tasks.data_files_json", &r.4)?,
                    n_items: usize::try_from(r.5).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The (task, item id) pairs of a run that are stored as done.
    pub fn done_keys(&self, run_id: &str) -> Result<std::collections::HashSet<(String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT task, item_id FROM samples WHERE run_id = ?1 AND status = 'done'")
            .map_err(sql(&self.path))?;
        st.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql(&self.path))?
            .collect::<std::result::Result<_, _>>()
            .map_err(sql(&self.path))
    }

    /// Stores one sample (replacing a failed row for the same item) and, if given, its cache
    /// entry, in one durable transaction.
    pub fn put_sample(
        &mut self,
        run_id: &str,
        s: &SampleRow,
        cache: Option<CacheEntry<'_>>,
    ) -> Result<()> {
        let e = sql(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute(
            "INSERT INTO samples (run_id, task, item_id, item_index, cluster, status,
                request_json, response_json, extracted, score, extraction_failed, metrics_json,
                error, attempts, cached, latency_ms, prompt_tokens, completion_tokens, completed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19)
             ON CONFLICT (run_id, task, item_id) DO UPDATE SET
                item_index = excluded.item_index, cluster = excluded.cluster,
                status = excluded.status, request_json = excluded.request_json,
                response_json = excluded.response_json, extracted = excluded.extracted,
                score = excluded.score, extraction_failed = excluded.extraction_failed,
                metrics_json = excluded.metrics_json, error = excluded.error,
                attempts = samples.attempts + excluded.attempts, cached = excluded.cached,
                latency_ms = excluded.latency_ms, prompt_tokens = excluded.prompt_tokens,
                completion_tokens = excluded.completion_tokens,
                completed_at = excluded.completed_at
             WHERE samples.status = 'failed'",
            params![
                run_id,
                s.task,
                s.item_id,
                s.item_index as i64,
                s.cluster,
                s.status.as_str(),
                json_text(&s.request),
                s.response.as_ref().map(json_text),
                s.extracted,
                s.score,
                s.extraction_failed,
                json_text(&s.metrics),
                s.error,
                i64::from(s.attempts),
                s.cached,
                s.latency_ms,
                s.prompt_tokens.map(|t| t as i64),
                s.completion_tokens.map(|t| t as i64),
                s.completed_at
            ],
        )
        .map_err(&e)?;
        if let Some(c) = cache {
            tx.execute(
                "INSERT OR IGNORE INTO cache (backend_key, request_digest, response_json, created)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    c.backend_key,
                    c.request_digest,
                    json_text(c.response),
                    s.completed_at
                ],
            )
            .map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// A cached response for this backend and request digest.
    pub fn cached(
        &self,
        backend_key: &str,
        request_digest: &str,
    ) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT response_json FROM cache WHERE backend_key = ?1 AND request_digest = ?2",
                [backend_key, request_digest],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(&self.path))?;
        text.map(|t| parse_json(&self.path, "cache.response_json", &t))
            .transpose()
    }

    /// Every sample of a run, ordered by task plan position then item index.
    pub fn samples(&self, run_id: &str) -> Result<Vec<SampleRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT s.task, s.item_id, s.item_index, s.cluster, s.status, s.request_json,
                    s.response_json, s.extracted, s.score, s.extraction_failed, s.metrics_json,
                    s.error, s.attempts, s.cached, s.latency_ms, s.prompt_tokens,
                    s.completion_tokens, s.completed_at
                 FROM samples s JOIN run_tasks t ON t.run_id = s.run_id AND t.task = s.task
                 WHERE s.run_id = ?1 ORDER BY t.position, s.item_index, s.item_id",
            )
            .map_err(sql(&self.path))?;
        type Raw = (
            String,
            String,
            i64,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<f64>,
            bool,
            String,
            Option<String>,
            i64,
            bool,
            f64,
            Option<i64>,
            Option<i64>,
            String,
        );
        let raws: Vec<Raw> = st
            .query_map([run_id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                    r.get(14)?,
                    r.get(15)?,
                    r.get(16)?,
                    r.get(17)?,
                ))
            })
            .map_err(sql(&self.path))?
            .collect::<std::result::Result<_, _>>()
            .map_err(sql(&self.path))?;
        let p = &self.path;
        raws.into_iter()
            .map(|r| {
                Ok(SampleRow {
                    task: r.0,
                    item_id: r.1,
                    item_index: usize::try_from(r.2).unwrap_or(0),
                    cluster: r.3,
                    status: match r.4.as_str() {
                        "done" => SampleStatus::Done,
                        _ => SampleStatus::Failed,
                    },
                    request: parse_json(p, "samples.request_json", &r.5)?,
                    response: r
                        .6
                        .as_deref()
                        .map(|t| parse_json(p, "samples.response_json", t))
                        .transpose()?,
                    extracted: r.7,
                    score: r.8,
                    extraction_failed: r.9,
                    metrics: parse_json(p, "samples.metrics_json", &r.10)?,
                    error: r.11,
                    attempts: u32::try_from(r.12).unwrap_or(u32::MAX),
                    cached: r.13,
                    latency_ms: r.14,
                    prompt_tokens: r.15.and_then(|t| u64::try_from(t).ok()),
                    completion_tokens: r.16.and_then(|t| u64::try_from(t).ok()),
                    completed_at: r.17,
                })
            })
            .collect()
    }

    /// Planned, done and failed sample counts of a run.
    pub fn counts(&self, run_id: &str) -> Result<SampleCounts> {
        let e = sql(&self.path);
        let planned: i64 = self
            .conn
            .query_row(
                "SELECT COALESCE(SUM(n_items), 0) FROM run_tasks WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(&e)?;
        let (done, failed): (i64, i64) = self
            .conn
            .query_row(
                "SELECT COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'failed'), 0)
                 FROM samples WHERE run_id = ?1",
                [run_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(&e)?;
        Ok(SampleCounts {
            planned: planned as usize,
            done: done as usize,
            failed: failed as usize,
        })
    }
}
