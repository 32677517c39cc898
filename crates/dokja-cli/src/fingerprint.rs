use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use dokja_provenance::{CompareOptions, Fingerprint};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{FingerprintArgs, OutputFormat};

pub fn run(args: FingerprintArgs) -> Result<ExitCode> {
    let mut opener = crate::open::Opener::new(&args.read);
    let model = opener.open(&args.model)?;
    let mut options = CompareOptions::default();
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "fingerprint [{bar:30}] {bytes}/{total_bytes} at {bytes_per_sec}, {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let b = bar.clone();
    let progress = Arc::new(move |done: u64, total: u64| {
        b.set_length(total);
        b.set_position(done);
    });
    let fp = Fingerprint::build(&model, &options, Some(progress));
    bar.finish_and_clear();
    let fp = fp.with_context(|| format!("cannot fingerprint {}", args.model.display()))?;
    fp.write(&args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let bytes = std::fs::metadata(&args.output)?.len();
    let model_bytes = model.total_bytes();
    let summary = serde_json::json!({
        "fingerprint": args.output.display().to_string(),
        "blake3": fp.digest,
        "bytes": bytes,
        "model": fp.header.source.name,
        "model_bytes": model_bytes,
        "ratio": bytes as f64 / model_bytes.max(1) as f64,
        "seed": fp.params().seed,
    });
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        OutputFormat::Text => println!(
            "wrote {} ({} bytes, {:.3}% of the model's {} bytes)\nblake3 {}",
            args.output.display(),
            bytes,
            100.0 * bytes as f64 / model_bytes.max(1) as f64,
            model_bytes,
            fp.digest
        ),
    }
    Ok(ExitCode::SUCCESS)
}
