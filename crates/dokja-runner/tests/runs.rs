//! Runs over the real benchmark files (`shared/data/benchmarks`, or `$DOKJA_BENCHMARKS`) with
//! a real SQLite store, answered by the documented fake backend (`dokja_runner::fake`), which
//! injects the faults and the kills a real server cannot be made to produce on demand.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dokja_evalstats::{Date, ReferenceModel, ReferenceRegistry};
use dokja_runner::fake::FakeBackend;
use dokja_runner::{
    ExecOptions, ReferenceSpec, ResultOptions, RunConfig, RunnerError, SampleStatus, Store,
    compute_results, create_run, export_jsonl, report, resume_run, start_run,
};

/// `$DOKJA_BENCHMARKS`, else `shared/data/benchmarks` in the nearest ancestor of the
/// repository holding one (worktrees may sit deeper than the main checkout).
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
    let msg = format!(
        "benchmark data not found at {} (set DOKJA_BENCHMARKS to shared/data/benchmarks)",
        dir.display()
    );
    if std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

fn config(data: &Path, limit: usize) -> RunConfig {
    RunConfig {
        tasks: vec![
            "click".into(),
            "kmmlu-criminal-law".into(),
            "gsm8k".into(),
            "ifeval".into(),
        ],
        task_files: Vec::new(),
        data_dir: data.to_path_buf(),
        data_files: Default::default(),
        limit: Some(limit),
        seed: 7,
        prompt_mode: None,
        label: None,
    }
}

fn fast() -> ExecOptions {
    ExecOptions {
        concurrency: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        ..ExecOptions::default()
    }
}

/// The parts of a sample that must not depend on kills, retries or the cache.
fn essence(store: &Store, run_id: &str) -> Vec<String> {
    store
        .samples(run_id)
        .unwrap()
        .into_iter()
        .map(|s| {
            format!(
                "{}|{}|{}|{:?}|{}|{}|{:?}|{:?}|{}|{}",
                s.task,
                s.item_id,
                s.item_index,
                s.status,
                s.request,
                s.response.map(|r| r.to_string()).unwrap_or_default(),
                s.extracted,
                s.score,
                s.extraction_failed,
                s.metrics
            )
        })
        .collect()
}

#[test]
fn store_round_trip_and_refusals() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.sqlite");
    let backend = FakeBackend::new("m");
    let cfg = config(&data, 2);
    let run_id = {
        let mut store = Store::open(&db).unwrap();
        create_run(&mut store, &backend, &cfg).unwrap()
    };
    // Reopened: the run, its config and tasks read back as written.
    let store = Store::open(&db).unwrap();
    let run = store.run(&run_id).unwrap();
    let back: RunConfig = serde_json::from_value(run.config.clone()).unwrap();
    assert_eq!(back, cfg);
    assert_eq!(run.model_identity["model"], "m");
    let tasks = store.run_tasks(&run_id).unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).collect();
    assert_eq!(names, ["click", "kmmlu/Criminal-Law", "gsm8k", "ifeval"]);
    assert!(tasks.iter().all(|t| t.n_items == 2));
    assert_eq!(store.counts(&run_id).unwrap().planned, 8);
    assert_eq!(store.runs().unwrap().len(), 1);
    assert!(matches!(
        store.run("nope"),
        Err(RunnerError::NoSuchRun { .. })
    ));
    // A file that is not a run store is refused with its name.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, b"not a database at all, just text........").unwrap();
    let err = Store::open(&junk).err().expect("refused").to_string();
    assert!(err.contains("junk.sqlite"), "{err}");
}

#[test]
fn sample_rows_round_trip_and_done_rows_are_never_replaced() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("runs.sqlite")).unwrap();
    let backend = FakeBackend::new("m");
    let out = start_run(&mut store, &backend, &config(&data, 2), &fast()).unwrap();
    let rows = store.samples(&out.run_id).unwrap();
    assert_eq!(rows.len(), 8);
    let mut row = rows[0].clone();
    // Writing a failed row over a done one changes nothing.
    let mut failed = row.clone();
    failed.status = SampleStatus::Failed;
    failed.score = None;
    store.put_sample(&out.run_id, &failed, None).unwrap();
    assert_eq!(store.samples(&out.run_id).unwrap()[0], rows[0]);
    // A failed row is replaced by the redone sample, attempts accumulate.
    row.item_id = "synthetic".into();
    row.status = SampleStatus::Failed;
    row.attempts = 2;
    store.put_sample(&out.run_id, &row, None).unwrap();
    row.status = SampleStatus::Done;
    row.attempts = 1;
    store.put_sample(&out.run_id, &row, None).unwrap();
    let back = store.samples(&out.run_id).unwrap();
    let synthetic: Vec<_> = back.iter().filter(|s| s.item_id == "synthetic").collect();
    assert_eq!(synthetic.len(), 1);
    assert_eq!(synthetic[0].status, SampleStatus::Done);
    assert_eq!(synthetic[0].attempts, 3);
    assert_eq!(synthetic[0].request, row.request);
}

#[test]
fn run_over_real_files_reports_and_exports() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("runs.sqlite")).unwrap();
    let backend = FakeBackend::new("candidate");
    let out = start_run(&mut store, &backend, &config(&data, 6), &fast()).unwrap();
    assert_eq!((out.planned, out.answered, out.failed), (24, 24, 0));
    let rows = store.samples(&out.run_id).unwrap();
    for r in &rows {
        let kind = r.response.as_ref().unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string();
        let mc = r.task == "click" || r.task.starts_with("kmmlu");
        assert_eq!(
            kind,
            if mc { "loglikelihoods" } else { "generation" },
            "{}",
            r.task
        );
        assert!(r.score.is_some_and(|s| (0.0..=1.0).contains(&s)));
    }
    // IFEval rows carry the secondary metrics.
    assert!(
        rows.iter()
            .filter(|r| r.task == "ifeval")
            .all(|r| r.metrics.get("prompt_loose").is_some())
    );

    // A reference: another "model" (a different variant) labelled for the registry.
    let reference = FakeBackend::from_spec("model=ref-model,variant=3").unwrap();
    let ref_out = start_run(&mut store, &reference, &config(&data, 6), &fast()).unwrap();
    let registry = ReferenceRegistry {
        models: vec![
            ReferenceModel {
                name: "ref-model".into(),
                organization: "x".into(),
                release_date: Date::new(2026, 9, 1).unwrap(),
                global: true,
                source: String::new(),
            },
            ReferenceModel {
                name: "absent-model".into(),
                organization: "y".into(),
                release_date: Date::new(2026, 10, 1).unwrap(),
                global: true,
                source: String::new(),
            },
            ReferenceModel {
                name: "old-model".into(),
                organization: "z".into(),
                release_date: Date::new(2025, 1, 1).unwrap(),
                global: true,
                source: String::new(),
            },
        ],
    };
    let refs = [
        ReferenceSpec::Run(ref_out.run_id.clone()),
        ReferenceSpec::Registry {
            registry,
            evaluation_date: Date::new(2026, 11, 23).unwrap(),
        },
    ];
    let results = compute_results(&store, &out.run_id, &refs, &ResultOptions::default()).unwrap();
    assert!(results.complete);
    assert_eq!(results.tasks.len(), 4);
    assert_eq!(results.suites.len(), 4);
    let eligible = &results.registry.as_ref().unwrap().eligible;
    assert_eq!(eligible, &["absent-model", "ref-model"]);
    assert_eq!(results.comparisons.len(), 3);
    let by_run = &results.comparisons[0];
    let by_registry = results
        .comparisons
        .iter()
        .find(|c| c.reference == "ref-model" && c.source == "registry")
        .unwrap();
    assert_eq!(by_run.suites, ["click", "kmmlu", "gsm8k", "ifeval"]);
    // (Compared as JSON: a bootstrap bound may be NaN when a resampled reference mean is 0.)
    assert_eq!(
        serde_json::to_value(&by_run.rule).unwrap(),
        serde_json::to_value(&by_registry.rule).unwrap()
    );
    let absent = results
        .comparisons
        .iter()
        .find(|c| c.reference == "absent-model")
        .unwrap();
    assert!(absent.rule.is_none() && absent.error.is_some());

    // Every number in the reports is the JSON's.
    let json: serde_json::Value = serde_json::to_value(&results).unwrap();
    let md = report::markdown(&results);
    let html = report::html(&results);
    for t in json["tasks"].as_array().unwrap() {
        let s = &t["summary"];
        for text in [&md, &html] {
            assert!(text.contains(&report::pct(s["mean"].as_f64().unwrap())));
            assert!(text.contains(&report::pct(s["ci_bootstrap"]["lo"].as_f64().unwrap())));
            assert!(text.contains(&report::pct(s["ci_bootstrap"]["hi"].as_f64().unwrap())));
        }
    }
    let ifeval = json["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["suite"] == "ifeval")
        .unwrap();
    let loose = report::pct(ifeval["secondary"]["prompt_loose"].as_f64().unwrap());
    assert!(md.contains(&format!("prompt_loose {loose} %")));
    let rule = &json["comparisons"][0]["rule"];
    let ratio_text = report::ratio(rule["ratio_of_means"]["value"].as_f64().unwrap());
    assert!(md.contains(&ratio_text) && html.contains(&ratio_text));
    // The rule's means are the macro means of the suites' scores.
    let suite_means: Vec<f64> = results.suites.iter().map(|s| s.mean).collect();
    let macro_mean = suite_means.iter().sum::<f64>() / suite_means.len() as f64;
    assert!((rule["model_suite_mean"].as_f64().unwrap() - macro_mean).abs() < 1e-12);
    // Self-contained HTML: nothing fetched from anywhere.
    assert!(html.contains("<svg"));
    for needle in [
        "http:", "https:", "src=", "href=", "<script", "@import", "url(",
    ] {
        assert!(!html.contains(needle), "HTML contains {needle}");
    }
    // The JSONL export has every sample once.
    let mut buf = Vec::new();
    assert_eq!(export_jsonl(&store, &out.run_id, &mut buf).unwrap(), 24);
    let lines: Vec<serde_json::Value> = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: HashSet<(String, String)> = lines
        .iter()
        .map(|l| (l["task"].to_string(), l["item_id"].to_string()))
        .collect();
    assert_eq!(keys.len(), 24);
}

#[test]
fn rerun_is_served_from_the_cache() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("runs.sqlite")).unwrap();
    let first = FakeBackend::new("m");
    let a = start_run(&mut store, &first, &config(&data, 3), &fast()).unwrap();
    assert_eq!(a.cached, 0);
    assert_eq!(first.calls(), 12);
    let second = FakeBackend::new("m");
    let b = start_run(&mut store, &second, &config(&data, 3), &fast()).unwrap();
    assert_eq!((b.cached, second.calls()), (12, 0));
    assert!(store.samples(&b.run_id).unwrap().iter().all(|s| s.cached));
    assert_eq!(essence(&store, &a.run_id), essence(&store, &b.run_id));
    // Another model identity does not share the cache.
    let other = FakeBackend::from_spec("model=m,variant=1").unwrap();
    let c = start_run(&mut store, &other, &config(&data, 3), &fast()).unwrap();
    assert_eq!((c.cached, other.calls()), (0, 12));
}

#[test]
fn transient_failures_are_retried_then_recorded_and_redone_on_resume() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("runs.sqlite")).unwrap();
    // Every prompt fails twice, then answers: five attempts are enough.
    let flaky = FakeBackend::from_spec("transient_every=1,transient_times=2").unwrap();
    let out = start_run(&mut store, &flaky, &config(&data, 2), &fast()).unwrap();
    assert_eq!(out.failed, 0);
    assert!(
        store
            .samples(&out.run_id)
            .unwrap()
            .iter()
            .all(|s| s.attempts == 3)
    );
    let clean = FakeBackend::new("fake");
    let reference = start_run(
        &mut store,
        &clean,
        &config(&data, 2),
        &ExecOptions {
            use_cache: false,
            ..fast()
        },
    )
    .unwrap();
    assert_eq!(
        essence(&store, &out.run_id),
        essence(&store, &reference.run_id)
    );

    // Two attempts are not enough: recorded as failed, with the message.
    let flaky = FakeBackend::from_spec("transient_every=1,transient_times=3").unwrap();
    let opts = ExecOptions {
        max_attempts: 2,
        use_cache: false,
        ..fast()
    };
    let out = start_run(&mut store, &flaky, &config(&data, 2), &opts).unwrap();
    assert_eq!(out.failed, 8);
    let rows = store.samples(&out.run_id).unwrap();
    assert!(rows.iter().all(|s| s.status == SampleStatus::Failed
        && s.attempts == 2
        && s.error.as_deref().unwrap().contains("503")));
    let results = compute_results(&store, &out.run_id, &[], &ResultOptions::default()).unwrap();
    assert!(!results.complete && results.tasks.is_empty());
    // Resumed (the fake's third failure per prompt is used up by the next attempt): all done.
    let again = resume_run(&mut store, &flaky, &out.run_id, &opts).unwrap();
    assert_eq!(
        (again.already_done, again.answered, again.failed),
        (0, 8, 0)
    );
    assert_eq!(store.counts(&out.run_id).unwrap().done, 8);
    assert_eq!(
        essence(&store, &out.run_id),
        essence(&store, &reference.run_id)
    );
}

#[test]
fn permanent_failures_and_missing_loglikelihoods() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("runs.sqlite")).unwrap();
    let refusing = FakeBackend::from_spec("permanent_every=1").unwrap();
    let out = start_run(&mut store, &refusing, &config(&data, 2), &fast()).unwrap();
    assert_eq!(out.failed, 8);
    assert_eq!(refusing.calls(), 8, "permanent errors are not retried");
    assert!(
        store.samples(&out.run_id).unwrap().iter().all(|s| s
            .error
            .as_deref()
            .unwrap()
            .contains("refused this prompt"))
    );

    // Without log-likelihoods, multiple choice falls back to generation and extraction.
    let generating = FakeBackend::from_spec("no_ll").unwrap();
    let out = start_run(&mut store, &generating, &config(&data, 4), &fast()).unwrap();
    assert_eq!(out.failed, 0);
    for s in store.samples(&out.run_id).unwrap() {
        assert_eq!(s.response.unwrap()["kind"], "generation");
        assert!(s.request.get("generation").is_some_and(|g| !g.is_null()));
    }
}

#[test]
fn resume_refuses_changed_data_or_model() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data");
    std::fs::create_dir_all(copy.join("gsm8k")).unwrap();
    std::fs::copy(data.join("gsm8k/test.jsonl"), copy.join("gsm8k/test.jsonl")).unwrap();
    let cfg = RunConfig {
        tasks: vec!["gsm8k".into()],
        ..config(&copy, 3)
    };
    let mut store = Store::open(&dir.path().join("runs.sqlite")).unwrap();
    let backend = FakeBackend::new("m");
    let run_id = create_run(&mut store, &backend, &cfg).unwrap();
    // Another model.
    let other = FakeBackend::from_spec("model=m,variant=9").unwrap();
    let err = resume_run(&mut store, &other, &run_id, &fast()).unwrap_err();
    assert!(err.to_string().contains("model identity"), "{err}");
    // Changed data.
    let mut text = std::fs::read_to_string(copy.join("gsm8k/test.jsonl")).unwrap();
    text = text.replacen("Janet", "Janette", 1);
    std::fs::write(copy.join("gsm8k/test.jsonl"), text).unwrap();
    let err = resume_run(&mut store, &backend, &run_id, &fast()).unwrap_err();
    assert!(
        matches!(&err, RunnerError::ResumeMismatch { what, .. } if what == "the data files"),
        "{err}"
    );
    assert!(err.to_string().contains("--force"));
    assert_eq!(store.counts(&run_id).unwrap().done, 0);
    let forced = resume_run(
        &mut store,
        &backend,
        &run_id,
        &ExecOptions {
            force: true,
            ..fast()
        },
    )
    .unwrap();
    assert_eq!(forced.answered, 3);
}

/// Child process of `kill_and_resume_matches_an_uninterrupted_run`: resumes the run named in
/// the environment until killed.
#[test]
#[ignore = "helper: run as a child process by kill_and_resume_matches_an_uninterrupted_run"]
fn child_resume() {
    let db = std::env::var_os("DOKJA_RUNNER_CHILD_DB").expect("child needs its db");
    let run_id = std::env::var("DOKJA_RUNNER_CHILD_RUN").expect("child needs a run id");
    let mut store = Store::open(Path::new(&db)).unwrap();
    let backend =
        FakeBackend::from_spec("delay_ms=30,transient_every=5,transient_times=1").unwrap();
    resume_run(&mut store, &backend, &run_id, &fast()).unwrap();
}

#[test]
fn kill_and_resume_matches_an_uninterrupted_run() {
    let Some(data) = benchmarks() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&data, 15);

    let clean_db = dir.path().join("clean.sqlite");
    let mut clean = Store::open(&clean_db).unwrap();
    let straight = start_run(&mut clean, &FakeBackend::new("fake"), &cfg, &fast()).unwrap();

    let db = dir.path().join("killed.sqlite");
    let run_id = {
        let mut store = Store::open(&db).unwrap();
        create_run(&mut store, &FakeBackend::new("fake"), &cfg).unwrap()
    };
    let exe = std::env::current_exe().unwrap();
    let child = |db: &Path, run_id: &str| {
        Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "child_resume",
                "--test-threads=1",
                "--quiet",
            ])
            .env("DOKJA_RUNNER_CHILD_DB", db)
            .env("DOKJA_RUNNER_CHILD_RUN", run_id)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole child run takes here (planning included), so kills land anywhere in it.
    let scratch = dir.path().join("scratch.sqlite");
    let scratch_run = {
        let mut store = Store::open(&scratch).unwrap();
        create_run(&mut store, &FakeBackend::new("fake"), &cfg).unwrap()
    };
    let t0 = std::time::Instant::now();
    assert!(child(&scratch, &scratch_run).wait().unwrap().success());
    let whole_ms = t0.elapsed().as_millis() as u64;
    // Again with nothing left to do: start-up and planning only.
    let t0 = std::time::Instant::now();
    assert!(child(&scratch, &scratch_run).wait().unwrap().success());
    let plan_ms = t0.elapsed().as_millis() as u64;
    // Kills land during start-up and planning, or within the first sixth of the answering,
    // so the ten kills spread over the run instead of the first one or two finishing it.
    let window_ms = (plan_ms + whole_ms.saturating_sub(plan_ms) / 6).max(10);
    let mut rng = dokja_tasks::prompt::SplitMix64::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut done_before = Vec::new();
    for _ in 0..10 {
        let mut c = child(&db, &run_id);
        std::thread::sleep(Duration::from_millis(rng.below(window_ms)));
        c.kill().unwrap(); // SIGKILL on Unix
        c.wait().unwrap();
        done_before.push(Store::open(&db).unwrap().counts(&run_id).unwrap().done);
    }
    eprintln!(
        "child run {whole_ms} ms, planning {plan_ms} ms; done after each kill: {done_before:?}"
    );
    let mut store = Store::open(&db).unwrap();
    let backend = FakeBackend::new("fake");
    resume_run(&mut store, &backend, &run_id, &fast()).unwrap();

    let counts = store.counts(&run_id).unwrap();
    assert_eq!((counts.planned, counts.done, counts.failed), (60, 60, 0));
    let rows = essence(&store, &run_id);
    let unique: HashSet<&String> = rows.iter().collect();
    assert_eq!(unique.len(), rows.len(), "duplicate samples");
    assert_eq!(rows, essence(&clean, &straight.run_id));
    let a = compute_results(&store, &run_id, &[], &ResultOptions::default()).unwrap();
    let b = compute_results(&clean, &straight.run_id, &[], &ResultOptions::default()).unwrap();
    assert_eq!(a.suites, b.suites);
    assert_eq!(a.tasks, b.tasks);
}
