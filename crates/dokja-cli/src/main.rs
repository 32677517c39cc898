//! `dokja`: the command line. It parses arguments, calls the libraries and prints; every
//! decision lives in a library crate.
//!
//! Exit codes: 0 success; 2 usage or input error (bad flags, unreadable or malformed model
//! files). Later commands add 1 (audit FAIL) and 3 (audit REVIEW).

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod inspect;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let result = match args.command {
        cli::Command::Inspect(a) => inspect::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
