use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result};
use dokja_provenance::{CompareOptions, Comparison, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;

use crate::cli::{CompareArgs, OutputFormat};
use crate::open::Opener;

pub fn run(args: CompareArgs) -> Result<ExitCode> {
    let mut opener = Opener::new(&args.read);
    let a = opener.open_model_or_fingerprint(&args.a)?;
    let b = opener.open_model_or_fingerprint(&args.b)?;
    let mut options = CompareOptions::default();
    // A fingerprint fixes the seed it was made with.
    if let Some(f) = a.fingerprint().or(b.fingerprint()) {
        options.seed = f.params().seed;
    }
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    // Drawn on stderr only when it is a terminal (indicatif hides it otherwise).
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>28} [{bar:30}] {pos}/{len} matrices, {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let progress_bar = bar.clone();
    let started = std::time::Instant::now();
    options.progress = Some(Arc::new(move |p: Progress<'_>| {
        progress_bar.set_length(p.total);
        progress_bar.set_position(p.done);
        let rate = p.bytes as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress_bar.set_message(format!("{} {:.0} MB/s", p.component, rate / 1e6));
    }));
    let result = dokja_provenance::compare_subjects(a.subject(), b.subject(), &options)
        .context("comparison failed");
    bar.finish_and_clear();
    let result = result?;
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&opener.with_report(serde_json::to_value(&result)?))?
        ),
        OutputFormat::Text => print!("{}", render(&result)),
    }
    opener.print_report();
    Ok(ExitCode::SUCCESS)
}

fn render(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "A  {} ({}, {}, {} tensors)",
        c.a.path, c.a.family, c.a.format, c.a.tensors
    );
    let _ = writeln!(
        s,
        "B  {} ({}, {}, {} tensors)",
        c.b.path, c.b.family, c.b.format, c.b.tensors
    );
    let _ = writeln!(s, "\nverdict: {}\n", c.verdict.as_str().to_uppercase());
    let _ = writeln!(s, "  {:<16} {:<13} reason", "component", "verdict");
    for comp in &c.components {
        // Circumstantial reasons end with the word already.
        let _ = writeln!(
            s,
            "  {:<16} {:<13} {}",
            comp.component,
            comp.verdict.as_str(),
            comp.reason
        );
        if let Some(al) = &comp.alignment {
            let fit = match (al.permutation_fit, al.rotation_fit) {
                (_, Some(r)) => format!("rotation fit {r:.3}"),
                (Some(p), None) => format!("permutation fit {p:.3}"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<30} alignment: {:?} via {} {fit}",
                "", al.kind, al.anchor_source
            );
        }
        for st in &comp.statistics {
            let _ = writeln!(
                s,
                "  {:<30} {}: {:.3} (null {:.3} ± {:.3}, max {:.3}, n={}; z {:.1}, log10 p {:.1})",
                "",
                st.name,
                st.value,
                st.null_mean,
                st.null_sd,
                st.null_max,
                st.null_size,
                st.z,
                st.log10_p
            );
        }
        if !comp.layers.is_empty() {
            let carrying: Vec<String> = comp
                .layers
                .iter()
                .filter(|l| l.carries_evidence)
                .map(|l| {
                    let name =
                        |x: Option<u32>| x.map_or("outside layers".to_string(), |n| n.to_string());
                    if l.layer_a == l.layer_b {
                        name(l.layer_a)
                    } else {
                        format!("{}->{}", name(l.layer_a), name(l.layer_b))
                    }
                })
                .collect();
            let _ = writeln!(
                s,
                "  {:<30} layers carrying evidence: {}",
                "",
                if carrying.is_empty() {
                    "none".into()
                } else {
                    carrying.join(", ")
                }
            );
        }
        if !comp.transformations.is_empty() {
            let _ = writeln!(
                s,
                "  {:<30} transformations: {}",
                "",
                comp.transformations.join("; ")
            );
        }
    }
    if !c.not_compared.is_empty() {
        let _ = writeln!(s, "\n  not compared: {}", c.not_compared.join(", "));
    }
    let _ = writeln!(s, "\nscope: {}", c.scope);
    s
}
