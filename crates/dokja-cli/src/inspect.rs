use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use dokja_inspect::{InspectOptions, Inspection, LmHead};

use crate::cli::{InspectArgs, OutputFormat};
use crate::open::Opener;

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let mut opener = Opener::new(&args.read);
    // A fingerprint describes its model too (every header fact, no weights).
    let opened = opener.open_model_or_fingerprint(&args.path)?;
    let report = dokja_inspect::inspect(
        opened.subject().model(),
        InspectOptions {
            list_tensors: args.tensors,
        },
    );
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&opener.with_report(serde_json::to_value(&report)?))?
        ),
        OutputFormat::Text => {
            if let Some(fp) = opened.fingerprint() {
                println!(
                    "fingerprint {} (blake3 {}), made by {} from {} file(s), {} bytes",
                    args.path.display(),
                    fp.digest,
                    fp.header.tool,
                    fp.header.source.files.len(),
                    fp.model_bytes()
                );
            }
            print!("{}", render_text(&report))
        }
    }
    opener.print_report();
    Ok(ExitCode::SUCCESS)
}

fn human(n: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "B"), (1e6, "M"), (1e3, "K")];
    for (scale, unit) in UNITS {
        if n as f64 >= scale {
            return format!("{:.2}{unit}", n as f64 / scale);
        }
    }
    n.to_string()
}

fn bytes(n: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1073741824.0, "GiB"), (1048576.0, "MiB"), (1024.0, "KiB")];
    for (scale, unit) in UNITS {
        if n as f64 >= scale {
            return format!("{:.1} {unit}", n as f64 / scale);
        }
    }
    format!("{n} B")
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn render_text(r: &Inspection) -> String {
    let mut s = String::new();
    let a = &r.architecture;
    let _ = writeln!(s, "{}", r.path);
    let _ = writeln!(
        s,
        "  format        {} ({} file{}, {})",
        r.format,
        r.files,
        if r.files == 1 { "" } else { "s" },
        bytes(r.file_bytes)
    );
    let declared = a
        .declared
        .as_deref()
        .map(|d| format!(" [{d}]"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "  architecture  {}{declared} (from {})",
        a.family, a.evidence
    );
    if !a.names.is_empty() {
        let _ = writeln!(s, "  names         {}", a.names.join(", "));
    }
    let d = &r.dimensions;
    let _ = writeln!(
        s,
        "  dimensions    hidden {}, layers {}, ffn {}, heads {}/{} kv, vocab {}, context {}",
        opt(d.hidden_size),
        opt(d.layers),
        opt(d.intermediate_size),
        opt(d.attention_heads),
        opt(d.kv_heads),
        opt(d.vocab_size),
        opt(d.context_length)
    );
    if d.experts.is_some() {
        let _ = writeln!(
            s,
            "  experts       {} ({} per token)",
            opt(d.experts),
            opt(d.experts_per_token)
        );
    }
    let _ = writeln!(
        s,
        "  parameters    {} ({})",
        human(r.parameters),
        r.parameters
    );
    let lm_head = match r.lm_head {
        LmHead::Tied => "tied to the token embedding",
        LmHead::Separate => "separate tensor",
        LmHead::None => "none (encoder-only)",
    };
    let _ = writeln!(s, "  lm_head       {lm_head}");
    let dtypes: Vec<String> = r
        .dtypes
        .iter()
        .map(|(k, v)| format!("{k} x{} ({})", v.tensors, human(v.parameters)))
        .collect();
    let _ = writeln!(
        s,
        "  dtypes        {}{}",
        dtypes.join(", "),
        if r.quantized { "  [quantized]" } else { "" }
    );
    let _ = writeln!(
        s,
        "\n  component          tensors   parameters  layers  experts"
    );
    for c in &r.components {
        let _ = writeln!(
            s,
            "  {:<18} {:>7} {:>12} {:>7} {:>8}",
            c.component.as_str(),
            c.tensors,
            human(c.parameters),
            c.layers,
            c.experts
        );
    }
    match &r.tokenizer {
        Some(t) => {
            let _ = writeln!(
                s,
                "\n  tokenizer     {}, vocab {}, {} merges, {} special ({}) [from {}]",
                t.kind,
                t.vocab_size,
                t.merges,
                t.special_token_count,
                t.special_tokens.join(" "),
                t.source
            );
        }
        None => {
            let _ = writeln!(s, "\n  tokenizer     none found");
        }
    }
    match &r.licence {
        Some(l) => {
            let _ = writeln!(
                s,
                "  licence       {}{} [from {}]",
                l.id.as_deref().unwrap_or("unrecognized"),
                l.title
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default(),
                l.source
            );
        }
        None => {
            let _ = writeln!(s, "  licence       none found");
        }
    }
    if !r.non_learned.is_empty() {
        let _ = writeln!(
            s,
            "  non-learned   {} buffer(s): {}",
            r.non_learned.len(),
            r.non_learned.join(", ")
        );
    }
    if r.unclassified.is_empty() {
        let _ = writeln!(s, "  unclassified  none");
    } else {
        let _ = writeln!(s, "  unclassified  {} tensor(s):", r.unclassified.len());
        for n in &r.unclassified {
            let _ = writeln!(s, "    {n}");
        }
    }
    if let Some(rows) = &r.tensors {
        let _ = writeln!(
            s,
            "\n  {:<60} {:<16} {:<20} {:<22} dtype",
            "tensor", "component", "role", "shape"
        );
        for t in rows {
            let shape = format!("{:?}", t.shape);
            let _ = writeln!(
                s,
                "  {:<60} {:<16} {:<20} {:<22} {}",
                t.name,
                t.component.as_str(),
                t.role.as_str(),
                shape,
                t.dtype
            );
        }
    }
    s
}
