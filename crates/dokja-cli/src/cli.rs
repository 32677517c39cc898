use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "dokja",
    version,
    about = "Provenance audits and evaluation of foundation models"
)]
pub struct Cli {
    /// Worker threads for reading, hashing and sketching (default: all cores).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
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
    /// Write a compact, deterministic fingerprint of a model: what `compare` and `audit` need
    /// of it, without its weights.
    Fingerprint(FingerprintArgs),
    /// Audit a model against the registry: per component, the verdict against every known
    /// model and the closest parent; then PASS (exit 0), FAIL (1) or REVIEW (3).
    Audit(AuditArgs),
    /// The registry of known models: add, list, show, remove, verify, gc.
    Registry(crate::registry_cmd::RegistryArgs),
    /// Benchmark a model: run suites (resumable), report scores with intervals and the 95%
    /// rule against references, list and export runs.
    Bench(crate::bench_cmd::BenchArgs),
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
    /// For models given as http(s):// URLs: stop with an error rather than fetch more than
    /// this many bytes in all (e.g. 500000, 200MB, 2GiB). Unbounded when not given.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_remote_bytes: Option<u64>,
    /// For URLs: reads are rounded out to aligned blocks of this size, fetched and cached
    /// whole (smaller blocks fetch less around small reads but cost more requests).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "1MiB")]
    pub remote_block_size: u64,
    /// For URLs: memory the block cache may hold; a cache that holds both models lets
    /// `compare` fetch each byte once.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "256MiB")]
    pub remote_cache_size: u64,
}

/// A byte count with an optional unit: K/KB, M/MB, G/GB, T/TB (powers of 1000) or
/// KiB, MiB, GiB, TiB (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a byte count (e.g. 500000, 200MB, 2GiB)"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        other => return Err(format!("unknown unit {other:?} in {s:?}")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is too large"))
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
    /// (model.safetensors.index.json), a Hugging Face model folder (local, or an http(s):// URL
    /// read with range requests), or a local dokja fingerprint (.dfp).
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
    /// The reference model (file, folder or shard index; local or an http(s):// URL) or its
    /// fingerprint (.dfp).
    pub a: PathBuf,
    /// The model under question, or its fingerprint.
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

#[derive(Args)]
pub struct FingerprintArgs {
    /// The model (file, folder or shard index).
    pub model: PathBuf,
    /// Where to write the fingerprint (conventionally NAME.dfp).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Seed for sketches and samples; comparisons with this fingerprint use the same.
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
    Html,
}

#[derive(Args)]
pub struct AuditArgs {
    /// The candidate model (file, folder or shard index).
    pub model: PathBuf,
    /// Registry folder [default: $DOKJA_REGISTRY, else ./dokja-registry].
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Also write the self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Seed (must be the one the registry's fingerprints were made with).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The time recorded in the report (RFC 3339), for byte-identical re-runs [default: now].
    #[arg(long)]
    pub created: Option<String>,
    /// No colour in the terminal report.
    #[arg(long)]
    pub no_colour: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("500000"), Ok(500_000));
        assert_eq!(parse_bytes("200MB"), Ok(200_000_000));
        assert_eq!(parse_bytes("4KiB"), Ok(4096));
        assert_eq!(parse_bytes("2 GiB"), Ok(2 << 30));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5XB").is_err());
        assert!(parse_bytes("99999999999TB").is_err());
        assert!(parse_bytes("").is_err());
    }
}
