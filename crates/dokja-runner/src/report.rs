//! Markdown and self-contained HTML reports of [`BenchResults`]. Every number printed is read
//! from the results (themselves computed from stored samples); scores are percentages with two
//! decimals, ratios with four.

use std::fmt::Write as _;

use dokja_evalstats::{Interval, SeKind, SuiteSummary};

use crate::results::{BenchResults, ReferenceComparison};

/// A score (0..1) as a percentage with two decimals.
pub fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// An interval of scores as `[lo, hi]` percentages.
pub fn pct_interval(i: &Interval) -> String {
    format!("[{}, {}]", pct(i.lo), pct(i.hi))
}

pub fn ratio(x: f64) -> String {
    format!("{x:.4}")
}

fn se_kind(k: &SeKind) -> String {
    match k {
        SeKind::Iid => "iid".into(),
        SeKind::Clustered { clusters } => format!("clustered, {clusters} clusters"),
    }
}

fn averaging(s: &SuiteSummary) -> &'static str {
    match s.averaging {
        dokja_evalstats::Averaging::Micro => "micro (items pooled)",
        dokja_evalstats::Averaging::Macro => "macro (mean of task means)",
    }
}

/// Rows of the per-suite table: (task, n, score, se, se kind, ci, extraction failure %, failed).
fn suite_rows(r: &BenchResults, s: &SuiteSummary) -> Vec<[String; 8]> {
    let mut rows = Vec::new();
    for t in r.tasks.iter().filter(|t| t.suite == s.suite) {
        let m = &t.summary;
        rows.push([
            m.task.clone(),
            m.n.to_string(),
            pct(m.mean),
            pct(m.se),
            se_kind(&m.se_kind),
            pct_interval(&m.ci_bootstrap),
            pct(m.extraction_failure_rate),
            t.failed.to_string(),
        ]);
    }
    rows.push([
        format!("{} (suite, {})", s.suite, averaging(s)),
        s.n.to_string(),
        pct(s.mean),
        pct(s.se),
        "tasks independent".into(),
        pct_interval(&s.ci_bootstrap),
        pct(s.extraction_failure_rate),
        String::new(),
    ]);
    rows
}

/// "task: metric 12.34 %, ..." lines for tasks with secondary metrics (IFEval's loose and
/// instruction-level accuracies); counts such as `instructions` are means, not percentages.
fn secondary_lines(r: &BenchResults, s: &SuiteSummary) -> Vec<String> {
    r.tasks
        .iter()
        .filter(|t| t.suite == s.suite && !t.secondary.is_empty())
        .map(|t| {
            let parts: Vec<String> = t
                .secondary
                .iter()
                .map(|(k, v)| {
                    if k == "instructions" {
                        format!("mean {k} per item {v:.2}")
                    } else {
                        format!("{k} {} %", pct(*v))
                    }
                })
                .collect();
            format!("{}: {}", t.summary.task, parts.join(", "))
        })
        .collect()
}

const SUITE_HEADER: [&str; 8] = [
    "task",
    "n",
    "score %",
    "SE %",
    "SE kind",
    "95% CI % (bootstrap)",
    "extraction failures %",
    "failed samples",
];

const RULE_HEADER: [&str; 9] = [
    "reference",
    "source",
    "released",
    "suites",
    "candidate mean %",
    "reference mean %",
    "ratio of means [95% CI]",
    "mean of ratios",
    "verdict",
];

fn rule_row(c: &ReferenceComparison) -> [String; 9] {
    let released = c
        .release_date
        .map(|d| d.to_string())
        .unwrap_or_else(|| "-".into());
    let Some(rule) = &c.rule else {
        return [
            c.reference.clone(),
            c.source.clone(),
            released,
            c.suites.join(", "),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            format!("not computed: {}", c.error.as_deref().unwrap_or("unknown")),
        ];
    };
    let rom = &rule.ratio_of_means;
    let verdict = if rule.passes_with_confidence {
        "passes (lower bound too)"
    } else if rule.passes {
        "passes (point estimate only)"
    } else {
        "below 95%"
    };
    [
        c.reference.clone(),
        c.source.clone(),
        released,
        c.suites.join(", "),
        pct(rule.model_suite_mean),
        pct(rule.reference_suite_mean),
        format!(
            "{} [{}, {}]",
            ratio(rom.value),
            ratio(rom.ci_bootstrap.lo),
            ratio(rom.ci_bootstrap.hi)
        ),
        rule.mean_of_ratios
            .as_ref()
            .map(|m| ratio(m.value))
            .unwrap_or_else(|| "undefined".into()),
        verdict.into(),
    ]
}

fn md_table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    let esc = |s: &str| s.replace('|', "\\|");
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(N));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| esc(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// The Markdown report.
pub fn markdown(r: &BenchResults) -> String {
    let mut out = String::new();
    let run = &r.run;
    let _ = writeln!(out, "# Benchmark report: {}\n", run.label);
    let _ = writeln!(out, "- run: `{}`, created {}", run.run_id, run.created);
    let _ = writeln!(out, "- model identity: `{}`", run.model_identity);
    let _ = writeln!(out, "- dokja {}", run.dokja_version);
    let _ = writeln!(
        out,
        "- samples: {} planned, {} done, {} failed{}",
        r.counts.planned,
        r.counts.done,
        r.counts.failed,
        if r.complete {
            ""
        } else {
            " — **incomplete run: failed and missing samples are not scored**"
        }
    );
    let _ = writeln!(
        out,
        "- digests: tasks `{}`, data `{}`, prompts `{}`",
        &run.tasks_digest[..16.min(run.tasks_digest.len())],
        &run.data_digest[..16.min(run.data_digest.len())],
        &run.prompts_digest[..16.min(run.prompts_digest.len())]
    );
    let _ = writeln!(
        out,
        "- intervals: {:.0}% level, percentile bootstrap with {} resamples (seed {}); standard errors clustered where items are grouped\n",
        r.intervals.level * 100.0,
        r.intervals.resamples,
        r.intervals.seed
    );
    for s in &r.suites {
        let _ = writeln!(out, "## Suite {}\n", s.suite);
        md_table(&mut out, SUITE_HEADER, &suite_rows(r, s));
        for line in secondary_lines(r, s) {
            let _ = writeln!(out, "Secondary metrics, {line}\n");
        }
    }
    if !r.comparisons.is_empty() {
        let _ = writeln!(out, "## The 95% rule\n");
        if let Some(w) = &r.registry {
            let _ = writeln!(
                out,
                "Reference registry: global models released in [{}, {}) for evaluation date {}: {}.\n",
                w.window.start,
                w.window.end,
                w.evaluation_date,
                if w.eligible.is_empty() {
                    "none".to_string()
                } else {
                    w.eligible.join(", ")
                }
            );
        }
        let _ = writeln!(
            out,
            "Each suite is one unit, weighted equally; the verdict uses the ratio of suite means \
             (threshold 0.95), the mean of per-suite ratios is shown beside it.\n"
        );
        let rows: Vec<[String; 9]> = r.comparisons.iter().map(rule_row).collect();
        md_table(&mut out, RULE_HEADER, &rows);
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn html_table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]]) {
    out.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", html_escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", html_escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

/// An inline SVG: per suite, the candidate's and each reference's score with its bootstrap
/// interval on a 0-100% axis.
pub fn svg_plot(r: &BenchResults) -> String {
    let mut series: Vec<(String, &str, Vec<&SuiteSummary>)> =
        vec![(r.run.label.clone(), "#1f5fbf", r.suites.iter().collect())];
    const COLOURS: [&str; 5] = ["#c0392b", "#27864f", "#8e44ad", "#d35400", "#555555"];
    for (i, c) in r.comparisons.iter().enumerate() {
        if !c.reference_suites.is_empty() {
            series.push((
                c.reference.clone(),
                COLOURS[i % COLOURS.len()],
                c.reference_suites.iter().collect(),
            ));
        }
    }
    let left = 180.0;
    let width = 720.0;
    let plot_w = width - left - 20.0;
    let row_h = 14.0 * series.len() as f64 + 16.0;
    let top = 20.0;
    let height = top + row_h * r.suites.len() as f64 + 30.0 + 16.0 * series.len() as f64;
    let x = |v: f64| left + plot_w * v.clamp(0.0, 1.0);
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg role=\"img\" aria-label=\"suite scores with 95% intervals\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"
    );
    for tick in 0..=10 {
        let v = f64::from(tick) / 10.0;
        let _ = write!(
            o,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{2:.1}\" font-size=\"10\" text-anchor=\"middle\">{3}</text>",
            x(v),
            top + row_h * r.suites.len() as f64,
            top + row_h * r.suites.len() as f64 + 12.0,
            tick * 10
        );
    }
    for (si, suite) in r.suites.iter().enumerate() {
        let y0 = top + row_h * si as f64;
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y0 + row_h / 2.0,
            html_escape(&suite.suite)
        );
        for (k, (_, colour, suites)) in series.iter().enumerate() {
            let Some(s) = suites.iter().find(|s| s.suite == suite.suite) else {
                continue;
            };
            let y = y0 + 10.0 + 14.0 * k as f64;
            let _ = write!(
                o,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/><circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{colour}\"/>",
                x(s.ci_bootstrap.lo),
                x(s.ci_bootstrap.hi),
                x(s.mean)
            );
        }
    }
    let legend_y = top + row_h * r.suites.len() as f64 + 30.0;
    for (k, (name, colour, _)) in series.iter().enumerate() {
        let y = legend_y + 16.0 * k as f64;
        let _ = write!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            left,
            y - 4.0,
            left + 10.0,
            y,
            html_escape(name)
        );
    }
    o.push_str("</svg>");
    o
}

/// The HTML report: one file, inline CSS and SVG, no script and no external resource.
pub fn html(r: &BenchResults) -> String {
    let mut out = String::new();
    let run = &r.run;
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        out,
        "<title>dokja bench: {}</title>",
        html_escape(&run.label)
    );
    out.push_str(
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}th{background:#eee}\
         .warn{color:#a00;font-weight:bold}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>Benchmark report: {}</h1>",
        html_escape(&run.label)
    );
    let backend = run
        .model_identity
        .get("backend")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let model = run
        .model_identity
        .get("model")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let _ = writeln!(
        out,
        "<ul><li>run <code>{}</code>, created {}</li><li>model {} ({} backend)</li><li>dokja {}</li>\
         <li>samples: {} planned, {} done, {} failed</li><li>intervals: {:.0}% level, percentile bootstrap with {} resamples (seed {})</li></ul>",
        html_escape(&run.run_id),
        html_escape(&run.created),
        html_escape(model),
        html_escape(backend),
        html_escape(&run.dokja_version),
        r.counts.planned,
        r.counts.done,
        r.counts.failed,
        r.intervals.level * 100.0,
        r.intervals.resamples,
        r.intervals.seed
    );
    if !r.complete {
        out.push_str(
            "<p class=\"warn\">Incomplete run: failed and missing samples are not scored.</p>\n",
        );
    }
    out.push_str("<h2>Suite scores</h2>\n");
    out.push_str(&svg_plot(r));
    for s in &r.suites {
        let _ = writeln!(out, "<h2>Suite {}</h2>", html_escape(&s.suite));
        html_table(&mut out, SUITE_HEADER, &suite_rows(r, s));
        for line in secondary_lines(r, s) {
            let _ = writeln!(out, "<p>Secondary metrics, {}</p>", html_escape(&line));
        }
    }
    if !r.comparisons.is_empty() {
        out.push_str("<h2>The 95% rule</h2>\n");
        if let Some(w) = &r.registry {
            let _ = writeln!(
                out,
                "<p>Reference registry: global models released in [{}, {}) for evaluation date {}: {}.</p>",
                w.window.start,
                w.window.end,
                w.evaluation_date,
                html_escape(&if w.eligible.is_empty() {
                    "none".to_string()
                } else {
                    w.eligible.join(", ")
                })
            );
        }
        out.push_str(
            "<p>Each suite is one unit, weighted equally; the verdict uses the ratio of suite \
             means (threshold 0.95), the mean of per-suite ratios is shown beside it.</p>\n",
        );
        let rows: Vec<[String; 9]> = r.comparisons.iter().map(rule_row).collect();
        html_table(&mut out, RULE_HEADER, &rows);
    }
    out.push_str("</body></html>\n");
    out
}
