//! Opening what the user named: a model (file, folder, shard index) or a fingerprint file.

use std::path::Path;

use anyhow::{Context, Result};
use dokja_formats::Model;
use dokja_provenance::{Fingerprint, Subject};

use crate::cli::ReadArgs;

pub enum Opened {
    Weights(Box<Model>),
    Fingerprint(Box<Fingerprint>),
}

impl Opened {
    pub fn subject(&self) -> Subject<'_> {
        match self {
            Opened::Weights(m) => Subject::Weights(m),
            Opened::Fingerprint(f) => Subject::Fingerprint(f),
        }
    }

    pub fn fingerprint(&self) -> Option<&Fingerprint> {
        match self {
            Opened::Weights(_) => None,
            Opened::Fingerprint(f) => Some(f),
        }
    }
}

pub fn open_model(path: &Path, read: &ReadArgs) -> Result<Model> {
    Model::open(path, read.open_options())
        .with_context(|| format!("cannot open {}", path.display()))
}

/// A fingerprint if the file starts like one, else a model.
pub fn open_model_or_fingerprint(path: &Path, read: &ReadArgs) -> Result<Opened> {
    if path.is_file() && Fingerprint::sniff(path) {
        let f = Fingerprint::read(path)
            .with_context(|| format!("cannot read fingerprint {}", path.display()))?;
        return Ok(Opened::Fingerprint(Box::new(f)));
    }
    Ok(Opened::Weights(Box::new(open_model(path, read)?)))
}
