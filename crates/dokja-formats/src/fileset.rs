//! Models whose files are not on the local file system (a folder URL, an archive): the
//! [`FileSet`] names files and hands out a [`ByteSource`] per file, and the readers work
//! unchanged on those sources. This crate knows no transport: dokja-remote implements
//! `FileSet` over HTTP range requests.
//!
//! A file set cannot be listed (HTTP has no directory listing), so a folder is read by the
//! names Hugging Face uses: `model.safetensors.index.json`, then `model.safetensors`. Any other
//! weights file (a GGUF, a differently named shard index) must be named.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{FormatError, Result};
use crate::hf::{self, MAX_SIDECAR_BYTES, Sidecars};
use crate::model::{Model, WeightsFormat};
use crate::source::{ByteSource, ModelFile};

/// Named files somewhere else than the local file system.
pub trait FileSet: Send + Sync + std::fmt::Debug {
    /// How file `name` is shown in reports and errors (for a folder URL, the file's URL);
    /// `label("")` names the set itself.
    fn label(&self, name: &str) -> PathBuf;
    /// Opens file `name` of the set: `Ok(None)` when the set has no such file.
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn ByteSource>>>;
}

const SHARD_INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";

/// Opens the model in `set`: the file `name` when given (a safetensors file, a shard index
/// `*.index.json` or a GGUF file), else the set as a Hugging Face folder. Config, tokenizer
/// and licence files of the set are read as sidecars of safetensors weights, as for a local
/// folder.
pub fn open_file_set(set: &dyn FileSet, name: Option<&str>) -> Result<Model> {
    let mut model = match name {
        Some(name) if name.ends_with(".index.json") => open_index(set, name)?,
        Some(name) => {
            let file = open_file(set, name)?.ok_or_else(|| not_found(set.label(name)))?;
            if is_gguf(&file)? {
                // As for a local GGUF file: its metadata carries tokenizer and licence.
                return crate::gguf::open_file(file);
            }
            crate::safetensors::open_single_file(file)?
        }
        None => {
            if set
                .open(SHARD_INDEX)
                .map_err(|e| FormatError::io(set.label(SHARD_INDEX), e))?
                .is_some()
            {
                open_index(set, SHARD_INDEX)?
            } else if let Some(file) = open_file(set, SINGLE)? {
                crate::safetensors::open_single_file(file)?
            } else {
                return Err(FormatError::UnknownFormat {
                    path: set.label(""),
                    why: format!(
                        "neither {SHARD_INDEX} nor {SINGLE} is there (a remote folder cannot be listed: name the weights file, e.g. a .gguf)"
                    ),
                });
            }
        }
    };
    model.path = set.label(name.unwrap_or(""));
    model.sidecars = read_sidecars(set)?;
    if model.format == WeightsFormat::Safetensors && model.files.len() > 1 {
        model.format = WeightsFormat::SafetensorsSharded;
    }
    Ok(model)
}

fn not_found(path: PathBuf) -> FormatError {
    FormatError::io(
        path,
        io::Error::new(io::ErrorKind::NotFound, "no such file"),
    )
}

fn open_file(set: &dyn FileSet, name: &str) -> Result<Option<ModelFile>> {
    let path = set.label(name);
    match set.open(name) {
        Ok(Some(source)) => Ok(Some(ModelFile { path, source })),
        Ok(None) => Ok(None),
        Err(e) => Err(FormatError::io(path, e)),
    }
}

fn is_gguf(file: &ModelFile) -> Result<bool> {
    if file.len() < 4 {
        return Ok(false);
    }
    Ok(&file.bytes(0, 4, "model file", "magic")?[..] == b"GGUF")
}

fn open_index(set: &dyn FileSet, name: &str) -> Result<Model> {
    let index_path = set.label(name);
    let index = open_file(set, name)?.ok_or_else(|| not_found(index_path.clone()))?;
    crate::safetensors::check_index_len(&index_path, index.len())?;
    let bytes = read_whole(&index)?;
    crate::safetensors::open_sharded_with(&index_path, &bytes, &mut |shard| open_file(set, shard))
}

/// A whole (small, length-checked by the caller) file.
fn read_whole(file: &ModelFile) -> Result<Vec<u8>> {
    let len = usize::try_from(file.len())
        .map_err(|_| FormatError::malformed(&file.path, "file", "length does not fit in memory"))?;
    Ok(file.bytes(0, len, "file", "contents")?.into_owned())
}

fn read_sidecars(set: &dyn FileSet) -> Result<Sidecars> {
    let folder = set.label("");
    hf::read_sidecars_with(&folder, &|name| {
        let Some(file) = open_file(set, name)? else {
            return Ok(None);
        };
        if file.len() > MAX_SIDECAR_BYTES {
            return Err(FormatError::malformed(
                &file.path,
                "model sidecar",
                format!("{} bytes is too large for this file", file.len()),
            ));
        }
        read_whole(&file).map(Some)
    })
}

/// A file set over a local folder: what the remote readers are tested against.
#[derive(Debug)]
pub struct LocalFolder {
    pub dir: PathBuf,
    pub read_mode: crate::ReadMode,
}

impl FileSet for LocalFolder {
    fn label(&self, name: &str) -> PathBuf {
        if name.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(name)
        }
    }
    fn open(&self, name: &str) -> io::Result<Option<Box<dyn ByteSource>>> {
        let path = self.dir.join(name);
        if !is_plain_name(name) || !path.is_file() {
            return Ok(None);
        }
        let file = ModelFile::open(&path, self.read_mode).map_err(io::Error::other)?;
        Ok(Some(file.source))
    }
}

/// File names in a set are single components: a hostile index must not reach outside.
pub fn is_plain_name(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty()
        && p.components().count() == 1
        && matches!(p.components().next(), Some(std::path::Component::Normal(_)))
}
