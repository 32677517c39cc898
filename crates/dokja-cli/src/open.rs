//! Opening what the command line names: models at local paths or http(s):// URLs (read
//! through one shared remote client: one byte budget, one cache per run), or local
//! fingerprint files (sniffed by their magic).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use dokja_formats::Model;
use dokja_provenance::{Fingerprint, Subject};
use dokja_remote::{Client, RemoteConfig};
use serde::Serialize;

use crate::cli::ReadArgs;

/// A model's weights, or a fingerprint standing in for them.
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

pub struct Opener {
    options: dokja_formats::OpenOptions,
    max_remote_bytes: Option<u64>,
    block_size: u64,
    cache_bytes: u64,
    client: Option<Arc<Client>>,
    /// Bytes of the remote models opened (what a full download would cost).
    remote_model_bytes: u64,
}

/// What reading remote models cost, against what downloading them would have.
#[derive(Serialize)]
pub struct RemoteReport {
    pub bytes_fetched: u64,
    pub model_bytes: u64,
    pub fraction: f64,
    pub requests: u64,
    pub retries: u64,
    pub resumes: u64,
    pub max_remote_bytes: Option<u64>,
}

impl Opener {
    pub fn new(read: &ReadArgs) -> Opener {
        Opener {
            options: read.open_options(),
            max_remote_bytes: read.max_remote_bytes,
            block_size: read.remote_block_size.max(1),
            cache_bytes: read.remote_cache_size,
            client: None,
            remote_model_bytes: 0,
        }
    }

    /// A fingerprint if `path` is a local file that starts like one, else a model.
    pub fn open_model_or_fingerprint(&mut self, path: &Path) -> Result<Opened> {
        if path.is_file() && Fingerprint::sniff(path) {
            let f = Fingerprint::read(path)
                .with_context(|| format!("cannot read fingerprint {}", path.display()))?;
            return Ok(Opened::Fingerprint(Box::new(f)));
        }
        Ok(Opened::Weights(Box::new(self.open(path)?)))
    }

    pub fn open(&mut self, path: &Path) -> Result<Model> {
        let text = path.to_string_lossy();
        if !dokja_remote::is_url(&text) {
            return Model::open(path, self.options)
                .with_context(|| format!("cannot open {}", path.display()));
        }
        let config = RemoteConfig {
            max_bytes: self.max_remote_bytes,
            block_size: self.block_size,
            cache_bytes: self.cache_bytes,
            ..RemoteConfig::default()
        };
        let client = self
            .client
            .get_or_insert_with(|| Arc::new(Client::new(config)));
        let model = dokja_remote::open_model(client, &text)
            .with_context(|| format!("cannot open {text}"))?;
        self.remote_model_bytes += model.total_bytes();
        Ok(model)
    }

    /// None when no model was remote.
    pub fn report(&self) -> Option<RemoteReport> {
        let stats = self.client.as_ref()?.stats();
        Some(RemoteReport {
            bytes_fetched: stats.bytes_fetched,
            model_bytes: self.remote_model_bytes,
            fraction: stats.bytes_fetched as f64 / self.remote_model_bytes.max(1) as f64,
            requests: stats.requests,
            retries: stats.retries,
            resumes: stats.resumes,
            max_remote_bytes: self.max_remote_bytes,
        })
    }

    /// Tells (on stderr) what the remote reading cost.
    pub fn print_report(&self) {
        if let Some(r) = self.report() {
            eprintln!(
                "remote: fetched {} bytes of {} model bytes ({:.1}%) in {} requests ({} retried, {} resumed)",
                r.bytes_fetched,
                r.model_bytes,
                r.fraction * 100.0,
                r.requests,
                r.retries,
                r.resumes
            );
        }
    }

    /// `value` (a JSON object) with a `remote` field added when models were remote.
    pub fn with_report(&self, mut value: serde_json::Value) -> serde_json::Value {
        if let (Some(r), Some(obj)) = (self.report(), value.as_object_mut()) {
            obj.insert(
                "remote".into(),
                serde_json::to_value(r).expect("plain numbers"),
            );
        }
        value
    }
}
