//! `dokja`: the command line. It parses arguments, calls the libraries and prints; every
//! decision lives in a library crate.
//!
//! Exit codes: 0 success (for `compare`, whatever the verdict: the verdict is in the output;
//! for `audit`, PASS); 1 `audit` FAIL (and `registry verify` found problems); 2 usage or
//! input error (bad flags, unreadable or malformed model, fingerprint or registry files);
//! 3 `audit` REVIEW.

use std::process::ExitCode;

use clap::Parser;

mod audit;
mod bench_cmd;
mod cli;
mod compare;
mod fingerprint;
mod inspect;
mod open;
mod registry_cmd;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if let Some(n) = args.threads {
        if n == 0 {
            eprintln!("error: --threads must be at least 1");
            return ExitCode::from(2);
        }
        if let Err(err) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            eprintln!("error: cannot start {n} worker threads: {err}");
            return ExitCode::from(2);
        }
    }
    let result = match args.command {
        cli::Command::Inspect(a) => inspect::run(a),
        cli::Command::Compare(a) => compare::run(a),
        cli::Command::Fingerprint(a) => fingerprint::run(a),
        cli::Command::Audit(a) => audit::run(a),
        cli::Command::Registry(a) => registry_cmd::run(a),
        cli::Command::Bench(a) => bench_cmd::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, joined by ": ", leaving out a cause already stated (an
/// io::Error wrapping an error displays it and also returns it as its source).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
