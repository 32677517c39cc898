//! Trains tiny Llama-style decoders on CPU with candle, deterministically, and returns them
//! in dokja's test-kit form ([`dokja_testkit::SynthModel`]).
//!
//! Why: a provenance test must not call two models "derived" because they learned the same
//! data (provenance-methods.md, pitfall 14). Randomly initialized synthetic models cannot
//! show that trap; real trained ones can. This crate trains same-data/different-seed pairs
//! (independent), different-data pairs (independent) and true derivations made by training
//! (fine-tuning, long continued training), caches them on disk, and labels them.
//!
//! Results are bit-identical for any thread count. On a shared machine run with
//! `CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1` (the examples set both): candle's CPU pool
//! spins between element-wise ops and loses badly to other processes.
//!
//! `cargo run --release -p dokja-train --example pairs_report` builds (or reads) the
//! standard pairs and prints their similarity diagnostics.

mod bpe;
mod cache;
mod corpus;
mod model;
mod pairs;
mod train;

pub use bpe::Bpe;
pub use cache::{cache_root, cached, cached_in, load_trained, save_trained};
pub use corpus::{CorpusName, benchmarks_dir, corpus, corpus_in};
pub use pairs::{
    LabelledPair, MatrixChange, StandardSet, relative_changes, standard_pairs, standard_pairs_in,
    standard_set, standard_set_in,
};
pub use train::{
    TrainSpec, TrainedModel, continue_training, eval_loss, train_from_scratch, unigram_entropy,
};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training data not found at {path}: {hint}")]
    MissingData { path: PathBuf, hint: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("bad training setup: {0}")]
    Spec(String),
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
