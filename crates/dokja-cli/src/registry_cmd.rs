//! `dokja registry ...`: the registry of known models (see crates/dokja-registry).
//!
//! Exit codes: 0 success; 1 `verify` found a problem other than garbage; 2 usage or input
//! error (bad flags, refused fingerprint, unknown entry, foreign or read-only registry).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use dokja_registry::{
    AddOptions, AddOutcome, Entry, EntryMeta, FileState, FingerprintCodec, FingerprintSummary,
    Registry, VerifyReport,
};
use serde_json::json;

use crate::cli::OutputFormat;

/// Registry folder used when neither `--registry` nor `DOKJA_REGISTRY` is given.
const DEFAULT_REGISTRY: &str = "dokja-registry";

#[derive(Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
    /// Registry folder [default: $DOKJA_REGISTRY, else ./dokja-registry].
    #[arg(long, global = true, value_name = "DIR")]
    pub registry: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Subcommand)]
pub enum RegistryCommand {
    /// Register a model's fingerprint file (creates the registry on first use).
    Add(AddArgs),
    /// List the registered models.
    List,
    /// Show one entry, by id, name or unique id prefix.
    Show { entry: String },
    /// Unregister an entry (by id, name or unique id prefix) and delete its fingerprint.
    Remove { entry: String },
    /// Check every entry's fingerprint file and the database; exit 1 on a problem.
    Verify,
    /// Delete fingerprint files no entry refers to, left by interrupted commands.
    Gc,
}

#[derive(Args)]
pub struct AddArgs {
    /// The fingerprint file.
    pub file: PathBuf,
    /// Unique name for the model in this registry.
    #[arg(long)]
    pub name: String,
    /// The organisation that released the model.
    #[arg(long)]
    pub org: String,
    /// Country of the organisation (ISO 3166 code recommended).
    #[arg(long)]
    pub origin_country: String,
    #[arg(long)]
    pub licence: String,
    /// Release date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub released: String,
    /// If this fingerprint is already registered with other metadata, replace it.
    #[arg(long)]
    pub replace: bool,
}

/// The registry stores fingerprints as opaque files; this is how it checks and describes one.
struct FingerprintFiles;

impl FingerprintCodec for FingerprintFiles {
    fn inspect(&self, bytes: &[u8]) -> Result<FingerprintSummary, String> {
        let fp = dokja_provenance::Fingerprint::from_bytes(bytes, "fingerprint")
            .map_err(|e| e.to_string())?;
        let d = fp.describe();
        Ok(FingerprintSummary {
            format_version: fp.header.version,
            model: d.model,
            family: d.family,
            parameters: d.parameters,
            components: d.components,
        })
    }
}

pub fn codec() -> impl FingerprintCodec {
    FingerprintFiles
}

pub fn run(args: RegistryArgs) -> Result<ExitCode> {
    let dir = registry_dir(args.registry);
    let format = args.format;
    match args.command {
        RegistryCommand::Add(a) => add(&dir, a, format),
        RegistryCommand::List => {
            let entries = Registry::open_read_only(&dir)?.list()?;
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
                OutputFormat::Text => print!("{}", render_list(&entries)),
            }
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Show { entry } => {
            let entry = Registry::open_read_only(&dir)?.get(&entry)?;
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&entry)?),
                OutputFormat::Text => print!("{}", render_entry(&entry)),
            }
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Remove { entry } => {
            let removed = Registry::open(&dir)?.remove(&entry)?;
            if let Some(leftover) = &removed.leftover_file {
                eprintln!("warning: could not delete {leftover}; `dokja registry gc` will");
            }
            match format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "removed": removed.entry,
                        "leftover_file": removed.leftover_file,
                    }))?
                ),
                OutputFormat::Text => println!(
                    "removed {} ({})",
                    removed.entry.name,
                    removed.entry.short_id()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        RegistryCommand::Verify => {
            let codec = codec();
            let report = Registry::open_read_only(&dir)?.verify(Some(&codec))?;
            match format {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Text => print!("{}", render_verify(&report)),
            }
            Ok(if report.is_healthy() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        RegistryCommand::Gc => {
            let deleted = Registry::open(&dir)?.gc()?;
            match format {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "deleted": deleted }))?
                ),
                OutputFormat::Text => {
                    for path in &deleted {
                        println!("deleted {}", path.display());
                    }
                    println!("{} file(s) deleted", deleted.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn registry_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("DOKJA_REGISTRY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from(DEFAULT_REGISTRY))
}

fn add(dir: &Path, a: AddArgs, format: OutputFormat) -> Result<ExitCode> {
    let meta = EntryMeta {
        name: a.name,
        org: a.org,
        origin_country: a.origin_country,
        licence: a.licence,
        released: a.released,
    };
    let options = AddOptions {
        replace: a.replace,
        ..AddOptions::default()
    };
    let outcome = Registry::create_or_open(dir)?.add(&a.file, meta, &codec(), &options)?;
    let (word, entry) = match &outcome {
        AddOutcome::Added(e) => ("added", e),
        AddOutcome::AlreadyPresent(e) => ("already_present", e),
        AddOutcome::MetadataReplaced { entry, .. } => ("metadata_replaced", entry),
    };
    match format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "outcome": word, "entry": entry }))?
        ),
        OutputFormat::Text => println!(
            "{} {} ({}) in {}",
            word.replace('_', " "),
            entry.name,
            entry.short_id(),
            dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn file_note(state: &FileState) -> String {
    match state {
        FileState::Present => String::new(),
        FileState::Missing => "FINGERPRINT MISSING".into(),
        FileState::SizeMismatch { actual } => format!("FINGERPRINT DAMAGED ({actual} bytes)"),
        FileState::Unreadable { reason } => format!("FINGERPRINT UNREADABLE ({reason})"),
    }
}

fn render_list(entries: &[Entry]) -> String {
    let mut s = String::new();
    if entries.is_empty() {
        s.push_str("no entries\n");
        return s;
    }
    let _ = writeln!(
        s,
        "{:<12}  {:<24} {:<20} {:<8} {:<14} released",
        "id", "name", "org", "country", "licence"
    );
    for e in entries {
        let line = format!(
            "{:<12}  {:<24} {:<20} {:<8} {:<14} {:<10} {}",
            e.short_id(),
            e.name,
            e.org,
            e.origin_country,
            e.licence,
            e.released,
            file_note(&e.file)
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

fn render_entry(e: &Entry) -> String {
    let mut s = String::new();
    let rows = [
        ("id", e.id.clone()),
        ("name", e.name.clone()),
        ("org", e.org.clone()),
        ("origin country", e.origin_country.clone()),
        ("licence", e.licence.clone()),
        ("released", e.released.clone()),
        ("added at", e.added_at.clone()),
        ("model", e.summary.model.clone()),
        ("family", e.summary.family.clone()),
        ("parameters", e.summary.parameters.to_string()),
        ("components", e.summary.components.join(", ")),
        (
            "fingerprint",
            format!(
                "{} bytes, format {} {}",
                e.bytes,
                e.summary.format_version,
                file_note(&e.file)
            ),
        ),
    ];
    for (k, v) in rows {
        let line = format!("{k:<15} {v}");
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

fn render_verify(r: &VerifyReport) -> String {
    let mut s = String::new();
    for p in &r.problems {
        let tag = if p.kind.is_garbage() {
            "garbage"
        } else {
            "PROBLEM"
        };
        let path = p.path.display().to_string();
        if p.message.contains(&path) {
            let _ = writeln!(s, "{tag}: {}", p.message);
        } else {
            let _ = writeln!(s, "{tag}: {} ({path})", p.message);
        }
    }
    let serious = r.problems.iter().filter(|p| !p.kind.is_garbage()).count();
    let garbage = r.problems.len() - serious;
    let _ = writeln!(
        s,
        "{} entries checked: {}",
        r.entries,
        if serious == 0 {
            "ok".to_string()
        } else {
            format!("{serious} problem(s)")
        }
    );
    if garbage > 0 {
        let _ = writeln!(
            s,
            "{garbage} leftover file(s) of interrupted commands; `dokja registry gc` deletes them"
        );
    }
    s
}
