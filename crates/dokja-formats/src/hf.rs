//! The files around the weights in a Hugging Face model folder: config.json,
//! generation_config.json, tokenizer files and the licence.

use std::path::PathBuf;

use serde::Serialize;

use crate::tokenizer::Tokenizer;

#[derive(Clone, Debug, Serialize)]
pub struct Licence {
    /// Short identifier as declared (e.g. "apache-2.0", "gemma", "llama3.1"), lower-cased.
    pub id: Option<String>,
    /// The first non-empty line of a licence text, when a text was found.
    pub title: Option<String>,
    /// Where it was found: "LICENSE", "README.md front matter", "gguf general.license", ...
    pub source: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Sidecars {
    /// The folder the sidecars were looked for in.
    pub folder: Option<PathBuf>,
    pub config: Option<serde_json::Value>,
    pub generation_config: Option<serde_json::Value>,
    pub tokenizer_config: Option<serde_json::Value>,
    pub tokenizer: Option<Tokenizer>,
    pub licence: Option<Licence>,
}

pub fn read_sidecars(folder: &std::path::Path) -> crate::Result<Sidecars> {
    Ok(Sidecars {
        folder: Some(folder.to_path_buf()),
        ..Default::default()
    })
}
