//! One error type for the crate. Every error about a file names the file (and the line, record or
//! key where the fault is), because users supply the benchmark files and write the task files.

use std::path::PathBuf;

/// Everything that can go wrong in `dokja-tasks`.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than the reader accepts.
    #[error("{path}: file is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    /// A task file is not valid TOML or does not follow the task format.
    #[error("{path}: invalid task file: {message}")]
    TaskFile { path: PathBuf, message: String },
    /// A benchmark data file is malformed (bad JSON line, unbalanced CSV quote...).
    #[error("{path}: {location}: {message}")]
    Data {
        path: PathBuf,
        location: String,
        message: String,
    },
    /// A record lacks a column the task needs or holds a value of the wrong kind.
    #[error("{path}: record {record}: {message}")]
    Record {
        path: PathBuf,
        record: usize,
        message: String,
    },
    /// The data file's columns match none of the task's layouts.
    #[error(
        "{path}: columns {columns:?} match no layout of task `{task}` (expected one of: {expected})"
    )]
    NoLayout {
        path: PathBuf,
        task: String,
        columns: Vec<String>,
        expected: String,
    },
    /// A prompt template names a field the item does not have, or is malformed.
    #[error("task `{task}`, item `{item}`: template: {message}")]
    Template {
        task: String,
        item: String,
        message: String,
    },
    /// An IFEval instruction is unknown or its arguments are missing or malformed.
    #[error("instruction `{id}`: {message}")]
    Instruction { id: String, message: String },
    /// A request does not fit the task (a judge prompt for a task without rubric, ...).
    #[error("task `{task}`: {message}")]
    Usage { task: String, message: String },
}

/// Result alias used throughout the crate.
pub type Result<T, E = TaskError> = std::result::Result<T, E>;
