//! Constructing a backend from command-line choices: an OpenAI-compatible server
//! (`dokja_backends::openai`), an in-process GGUF model (`dokja_backends::gguf`), or the
//! documented fake ([`crate::fake`], tests and overhead measurements).

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
            let mut config = dokja_backends::OpenAiConfig::new(url.clone());
            config.model = model.clone();
            let backend = dokja_backends::OpenAiBackend::new(config)
                .map_err(|e| RunnerError::Backend(format!("{url}: {e}")))?;
            Ok(Box::new(backend))
        }
        BackendChoice::InProcess { path } => {
            let backend = dokja_backends::gguf::GgufBackend::open(path)
                .map_err(|e| RunnerError::Backend(e.to_string()))?;
            Ok(Box::new(backend))
        }
        BackendChoice::Fake { spec } => Ok(Box::new(crate::fake::FakeBackend::from_spec(spec)?)),
    }
}
