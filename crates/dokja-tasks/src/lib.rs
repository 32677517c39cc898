//! Benchmark tasks as data.
//!
//! A task file (TOML, see `docs/task-files.md`) says where a benchmark's rows are, which
//! columns hold what, how prompts are written and how answers are scored. This crate reads
//! task files and the benchmark files users supply (JSONL, JSON, CSV, Parquet), turns rows into
//! [`Item`]s, builds backend-neutral [`Request`]s (chat messages or a completion prompt, plus
//! per-choice continuations for log-likelihood scoring), and scores responses: robust choice
//! and number extraction (English and Korean answer forms), the IFEval instruction checkers,
//! and judge rubrics. Suites shipped with the project are in [`suites`].
//!
//! No backend and no statistics here: the runner sends requests, `dokja-evalstats` aggregates
//! the [`ItemScore`]s.

pub mod error;
pub mod extract;
pub mod ifeval;
pub mod items;
#[cfg(feature = "parquet")]
mod parquet_reader;
pub mod prompt;
pub mod records;
pub mod rubric;
pub mod score;
pub mod spec;
pub mod suites;

pub use error::{Result, TaskError};
pub use items::{Item, Target};
pub use prompt::{ChatMessage, Prompt, Request, Role};
pub use records::{FileFormat, Record, read_records};
pub use score::ItemScore;
pub use spec::{GenerationSpec, PromptMode, TaskDef, TaskFile, TaskKind};
