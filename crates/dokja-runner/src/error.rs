use std::path::PathBuf;

/// What can go wrong in a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("run store {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("run store {path} is not a dokja run store or is damaged: {message}")]
    Corrupt { path: String, message: String },
    #[error("run store {path} has no run {run_id:?} (see `dokja bench list`)")]
    NoSuchRun { path: String, run_id: String },
    #[error(transparent)]
    Task(#[from] dokja_tasks::TaskError),
    #[error(transparent)]
    Stats(#[from] dokja_evalstats::EvalStatsError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A suite or task name that matches nothing shipped or given.
    #[error("unknown task {name:?}; known: {known}")]
    UnknownTask { name: String, known: String },
    #[error("task {task}: {message}")]
    Data { task: String, message: String },
    /// A resumed run whose inputs changed.
    #[error(
        "cannot resume run {run_id}: {what} changed since the run started ({detail}); \
         start a new run, or pass --force to resume anyway"
    )]
    ResumeMismatch {
        run_id: String,
        what: String,
        detail: String,
    },
    #[error("backend: {0}")]
    Backend(String),
    #[error("invalid argument: {0}")]
    Usage(String),
    #[error("reference {reference}: {message}")]
    Reference { reference: String, message: String },
}

pub type Result<T, E = RunnerError> = std::result::Result<T, E>;
