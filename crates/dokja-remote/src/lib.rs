//! Reads model files over HTTP(S) range requests, so `dokja inspect|compare` can audit a
//! model where it is published without downloading it: headers first, then only the byte
//! ranges the analysis asks for. See README.md for the design (block cache, retries,
//! resumption, budget, response validation).
//!
//! dokja-formats knows no transport; this crate implements its [`dokja_formats::FileSet`]
//! ([`RemoteFolder`]) and [`dokja_formats::source::ByteSource`] ([`RemoteFile`]).

mod cache;
mod client;
mod error;
mod file;
mod folder;
mod http;
pub mod url;

use std::sync::Arc;

use dokja_formats::{FormatError, Model};

pub use client::{Client, RemoteConfig, RemoteStats};
pub use error::RemoteError;
pub use file::RemoteFile;
pub use folder::RemoteFolder;
pub use url::is_url;

/// Opens the model at `url`: a folder URL (ending in '/', or whose last segment has no file
/// extension) read as a Hugging Face folder, or a named `.safetensors`, `*.index.json` or
/// `.gguf` file (sidecars are looked for beside it).
pub fn open_model(client: &Arc<Client>, url: &str) -> Result<Model, FormatError> {
    let parsed = url::Url::parse(url).map_err(|why| {
        FormatError::io(
            url,
            RemoteError::InvalidUrl {
                url: url.to_string(),
                why,
            }
            .into(),
        )
    })?;
    let name = parsed.file_name();
    let names_file = [".safetensors", ".gguf", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext));
    let (base, name) = if names_file {
        (parsed.folder(), Some(name))
    } else if name.is_empty() {
        (parsed, None)
    } else {
        let mut folder = parsed.clone();
        folder.path = format!("{}/", folder.path.split('?').next().unwrap_or(""));
        (folder, None)
    };
    let folder = RemoteFolder::new(client.clone(), base);
    Model::open_file_set(&folder, name.as_deref())
}

/// The remote error behind a model-reading error, if there is one.
pub fn remote_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a RemoteError> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<RemoteError>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<RemoteError>()
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}
