//! The files around the weights in a Hugging Face model folder: config.json,
//! generation_config.json, tokenizer files and the licence.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::tokenizer::{Tokenizer, read};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Licence {
    /// Short identifier as declared (e.g. "apache-2.0", "gemma", "llama3.1"), lower-cased.
    pub id: Option<String>,
    /// The first non-empty line of a licence text, when a text was found.
    pub title: Option<String>,
    /// Where it was found: "LICENSE", "README.md front matter", "gguf general.license", ...
    pub source: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sidecars {
    /// The folder the sidecars were looked for in.
    pub folder: Option<PathBuf>,
    pub config: Option<serde_json::Value>,
    pub generation_config: Option<serde_json::Value>,
    pub tokenizer_config: Option<serde_json::Value>,
    pub tokenizer: Option<Tokenizer>,
    pub licence: Option<Licence>,
}

/// Config and tokenizer files are small; anything this large is not one.
pub const MAX_SIDECAR_BYTES: u64 = 256 << 20;
const SIDECAR: &str = "model sidecar";

fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FormatError::io(path, e)),
    };
    if meta.len() > MAX_SIDECAR_BYTES {
        return Err(FormatError::malformed(
            path,
            SIDECAR,
            format!("{} bytes is too large for this file", meta.len()),
        ));
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| FormatError::io(path, e))
}

fn read_json(
    folder: &Path,
    name: &str,
    read: &SidecarReader<'_>,
) -> Result<Option<serde_json::Value>> {
    let Some(bytes) = read(name)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| FormatError::malformed(folder.join(name), "JSON", e.to_string()))
}

pub fn read_sidecars(folder: &Path) -> Result<Sidecars> {
    read_sidecars_with(folder, &|name| read_small(&folder.join(name)))
}

/// Reads a small file of the folder by name: its bytes, or `None` when it does not exist.
/// Implementations refuse files over [`MAX_SIDECAR_BYTES`] before reading them.
pub type SidecarReader<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>> + 'a;

/// The sidecars of a folder whose files `read` fetches (a local folder, a folder URL).
/// `folder` labels it in the result and in errors.
pub fn read_sidecars_with(folder: &Path, read: &SidecarReader<'_>) -> Result<Sidecars> {
    let tokenizer = read_tokenizer(folder, read)?;
    Ok(Sidecars {
        folder: Some(folder.to_path_buf()),
        config: read_json(folder, "config.json", read)?,
        generation_config: read_json(folder, "generation_config.json", read)?,
        tokenizer_config: read_json(folder, "tokenizer_config.json", read)?,
        tokenizer,
        licence: read_licence(read)?,
    })
}

/// tokenizer.json is the most complete description; tokenizer.model and vocab.txt are the
/// older SentencePiece and WordPiece forms.
fn read_tokenizer(folder: &Path, read: &SidecarReader<'_>) -> Result<Option<Tokenizer>> {
    type Parser = fn(&[u8], &str) -> std::result::Result<Tokenizer, String>;
    let candidates: [(&str, Parser); 3] = [
        ("tokenizer.json", read::from_tokenizer_json),
        ("tokenizer.model", read::from_sentencepiece),
        ("vocab.txt", read::from_vocab_txt),
    ];
    for (name, parse) in candidates {
        if let Some(bytes) = read(name)? {
            return parse(&bytes, name)
                .map(Some)
                .map_err(|fault| FormatError::malformed(folder.join(name), "tokenizer", fault));
        }
    }
    Ok(None)
}

const LICENCE_FILES: [&str; 8] = [
    "LICENSE",
    "LICENSE.txt",
    "LICENSE.md",
    "LICENCE",
    "LICENCE.txt",
    "license",
    "license.txt",
    "LICENSE-MODEL",
];

fn read_licence(read: &SidecarReader<'_>) -> Result<Option<Licence>> {
    let declared = match read("README.md")? {
        Some(bytes) => front_matter_licence(&String::from_utf8_lossy(&bytes)),
        None => None,
    };
    let mut text_title = None;
    let mut text_source = None;
    for name in LICENCE_FILES {
        if let Some(bytes) = read(name)? {
            let text = String::from_utf8_lossy(&bytes);
            text_title = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(|l| l.chars().take(200).collect());
            text_source = Some(name);
            break;
        }
    }
    let id = declared
        .clone()
        .or_else(|| text_title.as_deref().and_then(licence_id_from_title));
    let source = match (&declared, text_source) {
        (Some(_), Some(f)) => format!("README.md front matter; {f}"),
        (Some(_), None) => "README.md front matter".to_string(),
        (None, Some(f)) => f.to_string(),
        (None, None) => return Ok(None),
    };
    Ok(Some(Licence {
        id,
        title: text_title,
        source,
    }))
}

/// `license: xxx` in a model card's YAML front matter.
pub fn front_matter_licence(readme: &str) -> Option<String> {
    let rest = readme.strip_prefix("---")?;
    let end = rest.find("\n---")?;
    rest[..end].lines().find_map(|line| {
        let value = line.trim().strip_prefix("license:")?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_lowercase())
    })
}

/// Recognizes the titles of the licences models actually ship under.
pub fn licence_id_from_title(title: &str) -> Option<String> {
    let t = title.to_lowercase();
    let id = if t.contains("apache license") {
        "apache-2.0"
    } else if t.starts_with("mit license") || t == "mit" {
        "mit"
    } else if t.contains("gemma") {
        "gemma"
    } else if t.contains("llama 3.1") {
        "llama3.1"
    } else if t.contains("llama 3.2") {
        "llama3.2"
    } else if t.contains("llama 3") {
        "llama3"
    } else if t.contains("llama 2") {
        "llama2"
    } else if t.contains("creative commons") && t.contains("noncommercial") {
        "cc-by-nc-4.0"
    } else if t.contains("qwen") {
        "qwen"
    } else if t.contains("exaone") {
        "exaone"
    } else {
        return None;
    };
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter() {
        let card = "---\nlanguage: en\nlicense: Apache-2.0\ntags: [x]\n---\n# Model\n";
        assert_eq!(front_matter_licence(card).as_deref(), Some("apache-2.0"));
        assert_eq!(
            front_matter_licence("# no front matter\nlicense: mit"),
            None
        );
    }

    #[test]
    fn titles() {
        assert_eq!(
            licence_id_from_title("Apache License").as_deref(),
            Some("apache-2.0")
        );
        assert_eq!(
            licence_id_from_title("Gemma Terms of Use").as_deref(),
            Some("gemma")
        );
        assert_eq!(licence_id_from_title("Something else"), None);
    }
}
