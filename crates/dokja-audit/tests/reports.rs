//! The documents: what they show, that the HTML is self-contained and escaped, and that a real
//! browser (Debian's chromium, headless) renders it without requesting anything, with the
//! numbers of the JSON. Set DOKJA_AUDIT_SAMPLE_DIR to keep the sample report and screenshot.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::scenarios::{fine_tuned, vision_tower_copy};
use dokja_audit::{decide, render_html, render_json, render_markdown, render_terminal};

#[test]
fn terminal_report_leads_with_the_decision() {
    let s = vision_tower_copy(Some("gemma"));
    let audit = decide(&s.input);
    let plain = render_terminal(&audit, false);
    let first = plain.lines().next().unwrap();
    assert!(first.starts_with("AUDIT FAIL"), "{first}");
    assert!(first.contains("exit code 1"), "{first}");
    assert!(!plain.contains('\x1b'));
    let reasons: Vec<&str> = plain.lines().skip(1).take(2).collect();
    assert!(
        reasons
            .iter()
            .any(|l| l.contains("[independence]") && l.contains("vision_encoder")),
        "{plain}"
    );
    assert!(
        reasons
            .iter()
            .any(|l| l.contains("[policy]") && l.contains("gemma")),
        "{plain}"
    );
    assert!(
        plain.contains("closest known parent: Model donor-vlm"),
        "{plain}"
    );
    assert!(plain.contains("circumstantial (never decisive)"));
    let coloured = render_terminal(&audit, true);
    assert!(coloured.contains("\x1b[1;31mAUDIT FAIL\x1b[0m"));
}

#[test]
fn markdown_report_has_every_section() {
    let s = fine_tuned();
    let audit = decide(&s.input);
    let md = render_markdown(&audit);
    assert!(md.starts_with("# dokja audit: **FAIL**"), "{md}");
    for section in [
        "## Decision",
        "## Components",
        "### language_model: derived",
        "| statistic | value | null mean | null sd | null max",
        "| layer (candidate",
        "## Circumstantial findings (never decisive)",
        "## Scope",
        "## Licence policy",
        "## Inputs (reproducibility)",
        "`base-lm`",
    ] {
        assert!(md.contains(section), "missing {section:?} in\n{md}");
    }
    for f in &audit.inputs.candidate.files {
        assert!(md.contains(&f.blake3));
    }
    if let Some(keep) = std::env::var_os("DOKJA_AUDIT_SAMPLE_DIR") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        std::fs::write(keep.join("fine-tune.html"), render_html(&audit)).unwrap();
        std::fs::write(keep.join("fine-tune.md"), md).unwrap();
    }
}

#[test]
fn html_is_self_contained_and_escaped() {
    let mut s = vision_tower_copy(Some("gemma"));
    s.input.results[1].entry.name = "<script>alert(\"x\")</script> & 'q'".into();
    s.input.results[1].entry.org = "Org\" onmouseover=\"x".into();
    let audit = decide(&s.input);
    let html = render_html(&audit);
    let lower = html.to_lowercase();
    for forbidden in [
        "<script",
        "http:",
        "https:",
        "//",
        "src=",
        "url(",
        "@import",
        "<link",
        "<img",
        "<iframe",
        "@font-face",
    ] {
        assert!(!lower.contains(forbidden), "HTML contains {forbidden:?}");
    }
    // Links stay inside the page.
    for (i, _) in lower.match_indices("href=\"") {
        assert_eq!(&lower[i + 6..i + 7], "#", "external link at {i}");
    }
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
    assert!(html.contains("Org&quot; onmouseover=&quot;x"));
    assert!(html.contains("default-src 'none'"));

    let json: serde_json::Value = serde_json::from_str(&render_json(&audit)).unwrap();
    let checked = common::page::check(&html, &json);
    assert!(checked.numbers > 20, "{} numbers", checked.numbers);
    assert!(checked.points > 0);

    // The check sees a number the page shows wrongly.
    let exit = r#"data-json="/exit_code" data-value="1">1<"#;
    assert!(html.contains(exit));
    let tampered = html.replace(exit, r#"data-json="/exit_code" data-value="1">0<"#);
    let caught = std::panic::catch_unwind(|| common::page::check(&tampered, &json));
    assert!(caught.is_err(), "a wrong displayed number went unnoticed");
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Runs chromium headless on `page` with every host name unresolvable and a network log, and
/// returns its stdout. A browser that hangs is killed after two minutes.
fn run_chromium(chromium: &Path, work: &Path, extra: &[String], page: &Path) -> String {
    let profile = work.join("profile");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .env("HOME", work)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// URLs the page itself made chromium request, from its network log. The browser's own
/// background requests (updates, accounts) also appear there; a page's requests are those
/// whose network isolation key is the page's site, `file://`.
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).expect("chromium wrote no network log");
    // A log cut short at exit lacks its closing brackets.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("network log is not JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("URL_REQUEST_START_JOB in the log's constants");
    log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.contains("file://"))
        })
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn chromium_renders_the_report_without_requests() {
    let Some(chromium) = chromium() else {
        let msg = "chromium not found: install Debian's chromium (apt-get install -y chromium; scripts/test.sh does)";
        if std::env::var_os("DOKJA_REQUIRE_TEST_MODELS").is_some_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED chromium_renders_the_report_without_requests: {msg}");
        return;
    };
    let s = vision_tower_copy(Some("gemma"));
    let audit = decide(&s.input);
    let json_text = render_json(&audit);
    let json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("audit.html");
    std::fs::write(&page, render_html(&audit)).unwrap();

    let netlog = work.path().join("netlog.json");
    let dom = run_chromium(
        &chromium,
        work.path(),
        &[
            format!("--log-net-log={}", netlog.display()),
            "--dump-dom".into(),
        ],
        &page,
    );
    // It rendered: the DOM holds the decision, the plots and the per-component sections.
    assert!(
        dom.contains(r#"data-json="/decision" data-value="FAIL">FAIL</span>"#),
        "{dom}"
    );
    assert!(dom.contains("<svg"), "no SVG in the DOM");
    assert!(dom.contains(r#"id="component-vision_encoder""#));
    let checked = common::page::check(&dom, &json);
    assert!(checked.numbers > 20 && checked.strings > 5 && checked.points > 0);

    let requested = page_requests(&netlog);
    assert!(
        requested.is_empty(),
        "the report made chromium request {requested:?}"
    );

    // The same check on a page that does reference the network must see the request, or
    // the empty list above proves nothing.
    let control = work.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><p>control</p><img src=\"http://dokja-control.invalid/x.png\">",
    )
    .unwrap();
    let control_log = work.path().join("control-netlog.json");
    run_chromium(
        &chromium,
        work.path(),
        &[
            format!("--log-net-log={}", control_log.display()),
            "--dump-dom".into(),
        ],
        &control,
    );
    assert_eq!(
        page_requests(&control_log),
        ["http://dokja-control.invalid/x.png"],
        "the network-log check does not see a page's request"
    );

    let shot = work.path().join("audit.png");
    run_chromium(
        &chromium,
        work.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1100,1800".into(),
        ],
        &page,
    );
    let png = std::fs::read(&shot).expect("no screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);

    if let Some(keep) = std::env::var_os("DOKJA_AUDIT_SAMPLE_DIR") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).unwrap();
        std::fs::copy(&page, keep.join("audit.html")).unwrap();
        std::fs::copy(&shot, keep.join("audit.png")).unwrap();
        std::fs::write(keep.join("audit.json"), &json_text).unwrap();
        std::fs::write(keep.join("audit.md"), render_markdown(&audit)).unwrap();
        std::fs::write(keep.join("audit.txt"), render_terminal(&audit, false)).unwrap();
    }
}
