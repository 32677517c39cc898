use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "dokja",
    version,
    about = "Provenance audits and evaluation of foundation models"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Describe a model from its headers: architecture, components, parameter counts,
    /// dtypes and quantization, tokenizer, licence, unclassified tensors.
    Inspect(InspectArgs),
    /// Decide, per component, whether B's weights are identical to, derived from, or
    /// independent of A's (or say why the evidence is inconclusive).
    Compare(CompareArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct ReadArgs {
    /// Read files with positioned reads instead of memory maps (safe if files may be
    /// truncated while dokja runs; slightly slower).
    #[arg(long)]
    pub no_mmap: bool,
}

impl ReadArgs {
    pub fn open_options(&self) -> dokja_formats::OpenOptions {
        dokja_formats::OpenOptions {
            read_mode: if self.no_mmap {
                dokja_formats::ReadMode::Pread
            } else {
                dokja_formats::ReadMode::Mmap
            },
        }
    }
}

#[derive(Args)]
pub struct InspectArgs {
    /// A model file (.safetensors, .gguf, .onnx, pytorch_model.bin / .pt / .pth), a shard index
    /// (model.safetensors.index.json) or a Hugging Face model folder.
    pub path: PathBuf,
    /// List every tensor with its canonical name, role, shape and dtype.
    #[arg(long)]
    pub tensors: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The reference model (file, folder or shard index).
    pub a: PathBuf,
    /// The model under question.
    pub b: PathBuf,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Seed for sketches, query sampling and nulls (results are deterministic per seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}
