//! Running the `dokja` binary in tests.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use std::ffi::OsStr;

use assert_cmd::Command;
use serde_json::Value;

/// Runs `dokja ARGS --format json`, asserts success, and parses the output.
pub fn dokja_json<I, S>(args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The entry of a report's `components` list named `name`.
pub fn component<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == name)
        .unwrap_or_else(|| panic!("no component {name} in {report}"))
}
