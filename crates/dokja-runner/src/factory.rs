//! Constructing a backend from command-line choices. The OpenAI-compatible and in-process
//! GGUF backends are being written in `dokja-backends`; until they are wired in, asking for one
//! is an error, and only the documented fake ([`crate::fake`]) can be built (tests, overhead
//! measurements).

use std::path::PathBuf;

use dokja_backends::Backend;

use crate::error::{Result, RunnerError};

/// Which backend to answer requests with.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    /// An OpenAI-compatible server (`/v1/completions`, `/v1/chat/completions`).
    Endpoint { url: String, model: Option<String> },
    /// A GGUF model run in-process.
    InProcess { path: PathBuf },
    /// The deterministic fake of [`crate::fake`], configured by a spec string.
    Fake { spec: String },
}

/// Builds the backend for `choice`.
pub fn make_backend(choice: &BackendChoice) -> Result<Box<dyn Backend>> {
    match choice {
        BackendChoice::Endpoint { url, model } => {
            // integration: Ok(Box::new(dokja_backends::openai::OpenAiBackend::new(url, model.as_deref())?))
            let _ = (url, model);
            Err(RunnerError::Backend(
                "the OpenAI-compatible backend is not available in this build".into(),
            ))
        }
        BackendChoice::InProcess { path } => {
            // integration: Ok(Box::new(dokja_backends::gguf::GgufBackend::open(path)?))
            let _ = path;
            Err(RunnerError::Backend(
                "the in-process GGUF backend is not available in this build".into(),
            ))
        }
        BackendChoice::Fake { spec } => Ok(Box::new(crate::fake::FakeBackend::from_spec(spec)?)),
    }
}
