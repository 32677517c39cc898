//! One self-contained HTML file: inline CSS and SVG; no script, font, image or link to
//! anywhere (a Content-Security-Policy of `default-src 'none'` says so to the browser too).
//! Key numbers carry `data-json` (a JSON pointer into the audit's JSON) and `data-value` (the
//! exact value) so a test can check what the page shows against the JSON.

use std::fmt::Write as _;

use dokja_provenance::Verdict;

use crate::audit::{Audit, ComponentAudit, Decision};
use crate::licence::LicenceClass;
use crate::render::{
    alignment_text, identity_text, layer_label, layer_medians, num, parent_label, strength_text,
};
use crate::svg::layer_plot;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than whitespace have no business in a report.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A number shown rounded, with its exact value and where it is in the JSON.
fn n(pointer: &str, value: f64, decimals: usize) -> String {
    let exact = if value.is_finite() {
        format!("{value}")
    } else {
        "null".to_string()
    };
    format!(
        r#"<span class="num" data-json="{}" data-value="{exact}">{}</span>"#,
        escape(pointer),
        num(value, decimals)
    )
}

/// A number shown in scientific notation (significance levels).
fn sci(pointer: &str, value: f64) -> String {
    format!(
        r#"<span class="num" data-json="{}" data-value="{value}">{value:e}</span>"#,
        escape(pointer)
    )
}

fn int(pointer: &str, value: impl std::fmt::Display) -> String {
    format!(
        r#"<span class="num" data-json="{}" data-value="{value}">{value}</span>"#,
        escape(pointer)
    )
}

fn text(pointer: &str, value: &str) -> String {
    format!(
        r#"<span data-json="{}" data-value="{v}">{v}</span>"#,
        escape(pointer),
        v = escape(value)
    )
}

fn decision_class(d: Decision) -> &'static str {
    match d {
        Decision::Pass => "pass",
        Decision::Fail => "fail",
        Decision::Review => "review",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Identical | Verdict::Derived => "reuse",
        Verdict::Inconclusive => "unsure",
        Verdict::Independent => "clear",
    }
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans KR",sans-serif;color:#1a1a1a;background:#fff;margin:0;line-height:1.45}
main{max-width:62rem;margin:0 auto;padding:1.5rem 2rem 3rem}
h1{font-size:1.5rem;margin:0 0 .3rem}
h2{font-size:1.15rem;border-bottom:1px solid #bbb;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1rem;margin:1.6rem 0 .4rem}
.verdict-banner{border:2px solid;padding:1rem 1.2rem;margin:1rem 0}
.verdict-banner.fail{border-color:#8b1a1a;background:#fbf1f1}
.verdict-banner.pass{border-color:#2d5f2d;background:#f1f8f1}
.verdict-banner.review{border-color:#8a6d00;background:#fdf8e8}
.badge{display:inline-block;font-weight:700;padding:.05rem .5rem;color:#fff;letter-spacing:.04em}
.badge.fail{background:#8b1a1a}.badge.pass{background:#2d5f2d}.badge.review{background:#8a6d00}
.v{font-weight:600}.v.reuse{color:#8b1a1a}.v.unsure{color:#8a6d00}.v.clear{color:#2d5f2d}
table{border-collapse:collapse;margin:.5rem 0;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
.num{font-variant-numeric:tabular-nums}
.muted{color:#555}
.circ{color:#555;font-style:italic}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.85em}
.mono{word-break:break-all}
figure{margin:.6rem 0}
figcaption{font-size:.82rem;color:#444}
svg.layers{max-width:100%;height:auto;border:1px solid #ddd}
ul.reasons li{margin:.2rem 0}
@media print{main{max-width:none;padding:0}.verdict-banner{break-inside:avoid}}
"#;

/// The whole report as one HTML document.
pub fn render_html(audit: &Audit) -> String {
    let mut s = String::new();
    let c = &audit.inputs.candidate;
    let d = audit.decision;
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dokja audit: {} ({})</title>
<style>{CSS}</style></head>
<body><main>
"#,
        d.as_str(),
        escape(&c.path)
    );
    let _ = write!(
        s,
        r#"<h1>Provenance audit</h1><p class="muted">Candidate <code>{}</code> ({}, {}, {} parameters) against registry <code>{}</code>.</p>"#,
        escape(&c.path),
        escape(&c.format),
        escape(&c.family),
        int("/inputs/candidate/parameters", c.parameters),
        escape(&audit.inputs.registry.path)
    );

    // The decision first.
    let _ = write!(
        s,
        r#"<section class="verdict-banner {cls}" id="decision"><p><span class="badge {cls}" data-json="/decision" data-value="{d}">{d}</span> &nbsp;exit code {}</p><ul class="reasons">"#,
        int("/exit_code", audit.exit_code),
        cls = decision_class(d),
        d = d.as_str()
    );
    for (i, r) in audit.reasons.iter().enumerate() {
        let _ = write!(
            s,
            r#"<li data-json="/reasons/{i}"><strong>{}</strong> ({}): {}</li>"#,
            r.decision.as_str(),
            r.axis.as_str(),
            escape(&r.text)
        );
    }
    let _ = write!(
        s,
        r#"</ul><table><tr><th>axis</th><th>rule</th><th>decision</th></tr><tr><td>independence</td><td>every weight component initialized by the team</td><td>{}</td></tr><tr><td>policy</td><td>no reused open weights under licence restriction</td><td>{}</td></tr></table></section>"#,
        text(
            "/axes/independence/decision",
            audit.axes.independence.decision.as_str()
        ),
        text("/axes/policy/decision", audit.axes.policy.decision.as_str())
    );

    // Component summary.
    let _ = write!(
        s,
        r#"<h2>Components</h2><table id="components"><tr><th>component</th><th>verdict</th><th>closest registry model</th><th class="r">entries compared</th><th>evidence</th></tr>"#
    );
    for (i, comp) in audit.components.iter().enumerate() {
        let p = format!("/components/{i}");
        let parent = comp.closest_parent.as_ref().map_or("-".to_string(), |cp| {
            format!(
                "{} <code>{}</code>",
                escape(&cp.entry.name),
                text(&format!("{p}/closest_parent/entry/id"), &cp.entry.id)
            )
        });
        let _ = write!(
            s,
            r##"<tr><td><a href="#component-{}">{}</a></td><td class="v {}">{}</td><td>{}</td><td class="r">{}</td><td>{}</td></tr>"##,
            escape(&comp.component),
            escape(&comp.component),
            verdict_class(comp.verdict),
            text(&format!("{p}/verdict"), comp.verdict.as_str()),
            parent,
            int(&format!("{p}/compared_with"), comp.compared_with),
            comp.closest_parent
                .as_ref()
                .map_or("not compared with any registry model".to_string(), |cp| {
                    escape(&strength_text(&cp.strength))
                })
        );
    }
    s.push_str("</table>");
    for (i, comp) in audit.components.iter().enumerate() {
        component_section(&mut s, i, comp);
    }

    // Circumstantial findings.
    if !audit.circumstantial.is_empty() {
        let _ = write!(
            s,
            r#"<h2>Circumstantial findings</h2><p class="circ">Tokenizer and configuration similarity is common and legitimate (reusing a public tokenizer is allowed); these findings are shown for context and never decide.</p><table><tr><th>finding</th><th>registry model</th><th>verdict</th><th>detail</th></tr>"#
        );
        for (i, f) in audit.circumstantial.iter().enumerate() {
            let _ = write!(
                s,
                r#"<tr class="circ"><td>{}</td><td>{} <code>{}</code></td><td>{}</td><td>{}</td></tr>"#,
                escape(&f.component),
                escape(&f.entry_name),
                escape(&f.entry_id),
                text(&format!("/circumstantial/{i}/verdict"), f.verdict.as_str()),
                escape(&f.reason)
            );
        }
        s.push_str("</table>");
    }

    // Scope.
    s.push_str(r#"<h2>Scope</h2><ul id="scope">"#);
    for st in &audit.scope.statements {
        let _ = write!(s, "<li>{}</li>", escape(st));
    }
    let _ = write!(
        s,
        r#"<li>Each comparison tested: {}</li></ul><p>{} registry models checked: {} compared in full, {} dropped by the prefilter.</p>"#,
        escape(&audit.scope.comparison_scope),
        int("/scope/entries_checked", audit.scope.entries_checked),
        int("/scope/compared_in_full", audit.scope.compared_in_full),
        int(
            "/scope/dropped_by_prefilter",
            audit.scope.dropped_by_prefilter
        )
    );
    let _ = write!(
        s,
        r#"<h3>Licence policy</h3><p>{}</p><p class="muted">Permissive: {}.</p>"#,
        escape(&audit.licence_policy.rule),
        escape(&audit.licence_policy.permissive.join(", "))
    );

    // Inputs.
    let i = &audit.inputs;
    let _ = write!(
        s,
        r#"<h2>Inputs (reproducibility)</h2><table><tr><th>tool</th><td>{}</td></tr><tr><th>seed</th><td>{}</td></tr><tr><th>alpha</th><td>{}</td></tr><tr><th>created</th><td>{}</td></tr><tr><th>registry</th><td><code>{}</code> ({} entries)</td></tr><tr><th>candidate licence</th><td>{}</td></tr>"#,
        text("/inputs/tool", &i.tool),
        int("/inputs/seed", i.seed),
        sci("/inputs/alpha", i.alpha),
        text("/inputs/created", &i.created),
        escape(&i.registry.path),
        int("/inputs/registry/entries", i.registry.entries),
        escape(c.licence.as_deref().unwrap_or("none recorded"))
    );
    if let Some(m) = &i.method {
        let _ = write!(
            s,
            r#"<tr><th>method</th><td>sketch dimension {}, {} query units, up to {} null pairs, effect margin {}, embedding effect margin {}; {}; {}</td></tr>"#,
            int("/inputs/method/sketch_dim", m.sketch_dim),
            int("/inputs/method/query_units", m.query_units),
            int("/inputs/method/max_null_pairs", m.max_null_pairs),
            n("/inputs/method/effect_margin", m.effect_margin, 2),
            n(
                "/inputs/method/embedding_effect_margin",
                m.embedding_effect_margin,
                2
            ),
            escape(&m.layer_combination),
            escape(&m.multiple_testing)
        );
    }
    s.push_str(
        r#"</table><h3>Candidate files</h3><table><tr><th>file</th><th class="r">bytes</th><th>BLAKE3</th></tr>"#,
    );
    for (k, f) in c.files.iter().enumerate() {
        let _ = write!(
            s,
            r#"<tr><td><code>{}</code></td><td class="r">{}</td><td class="mono">{}</td></tr>"#,
            escape(&f.name),
            int(&format!("/inputs/candidate/files/{k}/bytes"), f.bytes),
            text(&format!("/inputs/candidate/files/{k}/blake3"), &f.blake3)
        );
    }
    s.push_str(
        r#"</table><h3>Registry models checked</h3><table id="entries"><tr><th>id</th><th>model</th><th>org</th><th>country</th><th>released</th><th>licence</th><th>outcome</th></tr>"#,
    );
    for (k, e) in audit.entries.iter().enumerate() {
        let licence = format!(
            "{} ({})",
            escape(e.licence.licence.as_deref().unwrap_or("none")),
            match e.licence.class {
                LicenceClass::Permissive => "permissive",
                LicenceClass::Restrictive => "restrictive",
            }
        );
        let outcome = match &e.verdict {
            Some(v) => format!(
                r#"<span class="v {}">{}</span>{}"#,
                verdict_class(*v),
                text(&format!("/entries/{k}/verdict"), v.as_str()),
                e.fingerprint.as_deref().map_or(String::new(), |f| format!(
                    r#"<br><span class="muted">compared as fingerprint</span> <span class="mono">{}</span>"#,
                    text(&format!("/entries/{k}/fingerprint"), f)
                ))
            ),
            None => format!(
                r#"<span class="muted">dropped by prefilter: {}</span>"#,
                escape(&e.prefilter.reason)
            ),
        };
        let _ = write!(
            s,
            r#"<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            text(&format!("/entries/{k}/entry/id"), &e.entry.id),
            escape(&e.entry.name),
            escape(&e.entry.org),
            escape(e.entry.origin_country.as_deref().unwrap_or("-")),
            escape(e.entry.released.as_deref().unwrap_or("-")),
            licence,
            outcome
        );
    }
    let _ = writeln!(
        s,
        r#"</table><p class="muted">Report schema {}. Every number on this page is read from the audit's JSON.</p></main></body></html>"#,
        text("/schema", &audit.schema)
    );
    s
}

fn component_section(s: &mut String, i: usize, comp: &ComponentAudit) {
    let p = format!("/components/{i}");
    let _ = write!(
        s,
        r#"<section class="component" id="component-{}" data-component="{}" data-verdict="{}"><h3>{}: <span class="v {}">{}</span></h3>"#,
        escape(&comp.component),
        escape(&comp.component),
        comp.verdict.as_str(),
        escape(&comp.component),
        verdict_class(comp.verdict),
        comp.verdict.as_str()
    );
    let Some(cp) = &comp.closest_parent else {
        s.push_str(
            "<p>No registry model has this component: it was compared with nothing.</p></section>",
        );
        return;
    };
    let pp = format!("{p}/closest_parent");
    let _ = write!(
        s,
        r#"<p>{}: <strong>{}</strong> <code>{}</code>, {}{}{}; licence {} ({}).</p><p>{}</p><ul>"#,
        parent_label(comp),
        escape(&cp.entry.name),
        escape(&cp.entry.id),
        escape(&cp.entry.org),
        cp.entry
            .origin_country
            .as_deref()
            .map(|c| format!(", {}", escape(c)))
            .unwrap_or_default(),
        cp.entry
            .released
            .as_deref()
            .map(|r| format!(", released {}", escape(r)))
            .unwrap_or_default(),
        escape(cp.licence.licence.as_deref().unwrap_or("none recorded")),
        escape(&cp.licence.why),
        escape(&cp.evidence.reason)
    );
    for line in [identity_text(&cp.evidence), alignment_text(&cp.evidence)]
        .into_iter()
        .flatten()
    {
        let _ = write!(s, "<li>{}</li>", escape(&line));
    }
    if !cp.evidence.transformations.is_empty() {
        let _ = write!(
            s,
            "<li>detected transformations: {}</li>",
            escape(&cp.evidence.transformations.join(", "))
        );
    }
    s.push_str("</ul>");

    if !cp.evidence.statistics.is_empty() {
        s.push_str(
            r#"<table class="stats"><tr><th>statistic</th><th class="r">value</th><th class="r">null mean</th><th class="r">null sd</th><th class="r">null max</th><th class="r">null size</th><th class="r">z</th><th class="r">log10 p</th><th class="r">excess over null max</th></tr>"#,
        );
        for (k, st) in cp.evidence.statistics.iter().enumerate() {
            let sp = format!("{pp}/evidence/statistics/{k}");
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td></tr>"#,
                escape(&st.name),
                n(&format!("{sp}/value"), st.value, 3),
                n(&format!("{sp}/null_mean"), st.null_mean, 3),
                n(&format!("{sp}/null_sd"), st.null_sd, 3),
                n(&format!("{sp}/null_max"), st.null_max, 3),
                int(&format!("{sp}/null_size"), st.null_size),
                n(&format!("{sp}/z"), st.z, 1),
                n(&format!("{sp}/log10_p"), st.log10_p, 1),
                n(&format!("{sp}/excess"), st.excess, 3),
            );
        }
        s.push_str("</table>");
    }

    if let Some(svg) = layer_plot(&cp.evidence, cp.effect_margin, &format!("{pp}/evidence")) {
        let carrying = cp
            .evidence
            .layers
            .iter()
            .filter(|l| l.carries_evidence)
            .count();
        let _ = write!(
            s,
            r#"<figure>{svg}<figcaption>Per matched layer: the observed unit-matching score (median over matrix kinds) against the null of non-corresponding layers and permuted units. A layer carries evidence when its scores exceed the null maximum by the effect margin ({}); {} of {} layers do.</figcaption></figure>"#,
            n(&format!("{pp}/effect_margin"), cp.effect_margin, 2),
            carrying,
            cp.evidence.layers.len()
        );
        s.push_str(
            r#"<table class="layers"><tr><th>layer</th><th class="r">median score</th><th class="r">median null max</th><th class="r">median excess</th><th class="r">log10 p</th><th>carries evidence</th></tr>"#,
        );
        for (k, (l, (score, null_max))) in cp
            .evidence
            .layers
            .iter()
            .zip(layer_medians(&cp.evidence))
            .enumerate()
        {
            let lp = format!("{pp}/evidence/layers/{k}");
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td>{}</td></tr>"#,
                escape(&layer_label(l.layer_a, l.layer_b)),
                num(score, 3),
                num(null_max, 3),
                n(&format!("{lp}/median_excess"), l.median_excess, 3),
                n(&format!("{lp}/log10_p"), l.log10_p, 1),
                if l.carries_evidence {
                    "<strong>yes</strong>"
                } else {
                    "no"
                }
            );
        }
        s.push_str("</table>");
    }

    if comp.against.len() > 1 {
        s.push_str(r#"<p>Against every registry model compared:</p><table><tr><th>registry model</th><th>verdict</th><th>evidence</th></tr>"#);
        for (k, v) in comp.against.iter().enumerate() {
            let _ = write!(
                s,
                r#"<tr><td>{} <code>{}</code></td><td class="v {}">{}</td><td>{}</td></tr>"#,
                escape(&v.entry_name),
                escape(&v.entry_id),
                verdict_class(v.verdict),
                text(&format!("{p}/against/{k}/verdict"), v.verdict.as_str()),
                escape(&strength_text(&v.strength))
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>");
}
