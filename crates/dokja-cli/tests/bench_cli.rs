//! `dokja bench` end to end on a real run store and the real benchmark files, answered by
//! dokja-runner's documented fake backend (hidden `--fake-backend`, test only): run, resume,
//! list, report and export, exit codes and error messages.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn benchmarks() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("DOKJA_BENCHMARKS") {
        Some(p) => PathBuf::from(p),
        None => manifest
            .ancestors()
            .skip(3)
            .map(|a| a.join("shared/data/benchmarks"))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| manifest.join("../../../shared/data/benchmarks")),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("benchmark data not found at {}", dir.display());
    if std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn bench(db: &Path) -> Command {
    let mut cmd = Command::cargo_bin("dokja").unwrap();
    cmd.arg("bench").arg("--db").arg(db);
    cmd
}

fn run_id(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    text.split_whitespace()
        .nth(1)
        .map(|s| s.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no run id in {text:?}"))
}

#[test]
fn run_report_list_export() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.sqlite");
    let run = |extra: &[&str]| {
        let out = bench(&db)
            .args(["run", "--suite", "kmmlu-criminal-law,gsm8k", "--data"])
            .arg(&data)
            .args(["--limit", "4", "--quiet"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run_id(&out.stdout)
    };
    let candidate = run(&["--fake-backend", "model=cand"]);
    let reference = run(&["--fake-backend", "model=ref,variant=2"]);

    let list = bench(&db).arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains(&candidate) && text.contains(&reference),
        "{text}"
    );

    let html = dir.path().join("r.html");
    let json = dir.path().join("r.json");
    let md = dir.path().join("r.md");
    let out = bench(&db)
        .args(["report", &candidate, "--reference", &reference, "--html"])
        .arg(&html)
        .arg("--json")
        .arg(&json)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(results["schema"], "dokja-bench-results/1");
    assert_eq!(results["counts"]["done"], 8);
    assert_eq!(results["comparisons"][0]["reference"], "ref");
    let md_text = std::fs::read_to_string(&md).unwrap();
    let mean = results["suites"][0]["mean"].as_f64().unwrap();
    assert!(md_text.contains(&format!("{:.2}", mean * 100.0)));
    let html_text = std::fs::read_to_string(&html).unwrap();
    assert!(html_text.contains("<svg") && !html_text.contains("http"));

    let jsonl = dir.path().join("s.jsonl");
    let out = bench(&db)
        .args(["export", &candidate, "--jsonl"])
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 8);

    // Resuming a finished run answers nothing; a different model is refused.
    let out = bench(&db)
        .args([
            "run",
            "--resume",
            &candidate,
            "--quiet",
            "--fake-backend",
            "model=cand",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 of 8 samples done (0 answered"));
    let out = bench(&db)
        .args([
            "run",
            "--resume",
            &candidate,
            "--quiet",
            "--fake-backend",
            "model=other",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model identity"));
}

#[test]
fn failures_exit_1_and_errors_exit_2() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.sqlite");
    let out = bench(&db)
        .args(["run", "--suite", "gsm8k", "--data"])
        .arg(&data)
        .args([
            "--limit",
            "2",
            "--quiet",
            "--fake-backend",
            "permanent_every=1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--resume"));
    let out = bench(&db)
        .args(["run", "--suite", "no-such-suite", "--data"])
        .arg(&data)
        .args(["--fake-backend", ""])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown task \"no-such-suite\""));
    let out = bench(&db)
        .args(["run", "--suite", "gsm8k", "--data"])
        .arg(&data)
        .args(["--endpoint", "http://127.0.0.1:9/v1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Nothing listens there: a clear error naming the endpoint.
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:9"));
}
