//! Running benchmark suites (`dokja bench`): a durable, resumable run store in SQLite, a
//! request cache, worker threads with retries against a [`dokja_backends::Backend`], results
//! computed from the stored samples with `dokja-evalstats`, and Markdown / HTML reports.
//!
//! - [`store`]: the SQLite schema; every sample is committed the moment it completes.
//! - [`plan`]: task selection, data files, the `--limit` sample, requests and digests.
//! - [`exec`]: [`start_run`] and [`resume_run`].
//! - [`results`]: [`compute_results`] (JSON, `docs/bench-results.md`) and JSONL export.
//! - [`report`]: Markdown and self-contained HTML.
//! - [`factory`]: backend construction for the CLI; [`fake`]: the documented fault-injecting fake.
//!
//! Decisions are recorded in `docs/bench-runs.md`.

pub mod error;
pub mod exec;
pub mod factory;
pub mod fake;
pub mod plan;
pub mod report;
pub mod results;
pub mod store;
mod time;

pub use error::{Result, RunnerError};
pub use exec::{ExecOptions, RunOutcome, backend_key, create_run, resume_run, start_run};
pub use factory::{BackendChoice, make_backend};
pub use plan::{RunConfig, build_plan};
pub use results::{
    BenchResults, ReferenceComparison, ReferenceSpec, ResultOptions, TaskResult, compute_results,
    export_jsonl, load_registry,
};
pub use store::{RunRecord, RunTask, SampleCounts, SampleRow, SampleStatus, Store};
pub use time::today;
