//! One error type for every reader. Each variant names the file it concerns, so a user
//! auditing a folder of shards knows which file is at fault and why.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file breaks its format's rules (truncated, offsets out of range, counts absurd, ...).
    #[error("{path}: malformed {format}: {fault}")]
    Malformed {
        path: PathBuf,
        format: &'static str,
        fault: String,
    },
    /// Well formed, but uses something dokja does not read (a dtype, a quantization, a version).
    #[error("{path}: unsupported {format}: {what}")]
    Unsupported {
        path: PathBuf,
        format: &'static str,
        what: String,
    },
    #[error("{path}: not a model file or folder dokja can read ({why})")]
    UnknownFormat { path: PathBuf, why: String },
    /// A tensor's values are unusable (NaN/inf where weights must be finite).
    #[error("{path}: tensor {tensor}: {fault}")]
    BadTensor {
        path: PathBuf,
        tensor: String,
        fault: String,
    },
}

impl FormatError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }
    pub fn malformed(
        path: impl Into<PathBuf>,
        format: &'static str,
        fault: impl Into<String>,
    ) -> Self {
        FormatError::Malformed {
            path: path.into(),
            format,
            fault: fault.into(),
        }
    }
    pub fn unsupported(
        path: impl Into<PathBuf>,
        format: &'static str,
        what: impl Into<String>,
    ) -> Self {
        FormatError::Unsupported {
            path: path.into(),
            format,
            what: what.into(),
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
