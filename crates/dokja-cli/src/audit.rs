use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use dokja_audit::EntryInfo;
use dokja_provenance::{CompareOptions, Fingerprint, Progress};
use dokja_registry::Registry;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{AuditArgs, ReportFormat};

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    let mut opener = crate::open::Opener::new(&args.read);
    let model = opener.open(&args.model)?;
    let dir = crate::registry_cmd::registry_dir(args.registry.clone());
    // Read only: an audit never changes the registry, and works on a read-only disk.
    let registry = Registry::open_read_only(&dir)?;
    let entries = registry.list()?;
    let mut fingerprints = Vec::with_capacity(entries.len());
    for e in &entries {
        // A damaged entry stops the audit: skipping it could hide the very parent.
        let bytes = registry.fingerprint_bytes(e)?;
        let fp = Fingerprint::from_bytes(
            &bytes,
            &registry.fingerprint_path(&e.id).display().to_string(),
        )
        .with_context(|| format!("registry entry {} ({}) cannot be read", e.name, e.id))?;
        fingerprints.push(fp);
    }
    let mut options = CompareOptions::default();
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    if let Some(fp) = fingerprints
        .iter()
        .find(|f| f.params().seed != options.seed)
    {
        anyhow::bail!(
            "registry fingerprint of {} was made with seed {}, the audit uses {}: rebuild the registry or pass --seed {}",
            fp.header.source.name,
            fp.params().seed,
            options.seed,
            fp.params().seed
        );
    }
    let infos: Vec<(EntryInfo, &Fingerprint)> = entries
        .iter()
        .zip(&fingerprints)
        .map(|(e, fp)| {
            (
                EntryInfo {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    org: e.org.clone(),
                    origin_country: Some(e.origin_country.clone()),
                    licence: Some(e.licence.clone()),
                    released: Some(e.released.clone()),
                },
                fp,
            )
        })
        .collect();

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} matrices, {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let b = bar.clone();
    options.progress = Some(Arc::new(move |p: Progress<'_>| {
        b.set_length(p.total);
        b.set_position(p.done);
    }));
    let b = bar.clone();
    let entry_progress: dokja_audit::run::EntryProgress = Arc::new(move |name, i, n| {
        b.set_message(format!("{name} ({}/{n})", i + 1));
    });
    let candidate = dokja_audit::run::describe_candidate(&model)
        .with_context(|| format!("cannot read {}", args.model.display()))?;
    let results =
        dokja_audit::run::compare_with_registry(&model, &infos, &options, Some(entry_progress));
    bar.finish_and_clear();
    let results = results.context("comparison failed")?;
    let created = args
        .created
        .clone()
        .unwrap_or_else(dokja_audit::run::now_rfc3339);
    let input = dokja_audit::run::audit_input(candidate, &dir, results, &options, created);
    dokja_audit::validate(&input)?;
    let audit = dokja_audit::decide(&input);

    for (path, render) in [
        (
            &args.json,
            dokja_audit::render_json as fn(&dokja_audit::Audit) -> String,
        ),
        (&args.markdown, dokja_audit::render_markdown),
        (&args.html, dokja_audit::render_html),
    ] {
        if let Some(path) = path {
            write_atomically(path, &render(&audit))?;
        }
    }
    let colour = !args.no_colour && std::io::IsTerminal::is_terminal(&std::io::stdout());
    match args.format {
        ReportFormat::Text => print!("{}", dokja_audit::render_terminal(&audit, colour)),
        ReportFormat::Json => println!("{}", dokja_audit::render_json(&audit)),
        ReportFormat::Markdown => print!("{}", dokja_audit::render_markdown(&audit)),
        ReportFormat::Html => print!("{}", dokja_audit::render_html(&audit)),
    }
    Ok(ExitCode::from(audit.decision.exit_code() as u8))
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp-dokja");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
