//! Terminal text, Markdown and JSON. Every number comes from the `Audit`.

use std::fmt::Write as _;

use dokja_provenance::Verdict;
use dokja_provenance::report::ComponentReport;

use crate::audit::{Audit, ComponentAudit, Decision, Strength};

/// A number for people: fixed decimals, "n/a" for what is not a number.
pub(crate) fn num(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        let s = format!("{x:.decimals$}");
        // "-0.0" says a sign the rounding erased.
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_string()
        } else {
            s
        }
    } else {
        "n/a".to_string()
    }
}

pub(crate) fn strength_text(s: &Strength) -> String {
    let mut parts = Vec::new();
    // A check that stopped at the first difference says only "not a copy": not worth a line.
    if let (Some(exact), Some(paired)) = (s.identity_exact, s.identity_paired)
        && exact > 0
    {
        parts.push(format!("identity: {exact}/{paired} pieces bit-equal"));
    }
    if let Some(p) = s.min_log10_p {
        parts.push(format!("min log10 p {}", num(p, 1)));
    }
    if let Some(e) = s.max_layer_excess {
        parts.push(format!("max layer excess {}", num(e, 3)));
    }
    if s.layers > 0 {
        parts.push(format!(
            "{}/{} layers carry evidence",
            s.layers_with_evidence, s.layers
        ));
    }
    if parts.is_empty() {
        "no statistics".to_string()
    } else {
        parts.join(", ")
    }
}

/// "closest known parent" only when the verdict says reuse; otherwise the nearest model.
pub(crate) fn parent_label(c: &ComponentAudit) -> &'static str {
    match c.verdict {
        Verdict::Identical | Verdict::Derived => "closest known parent",
        _ => "closest registry model",
    }
}

pub(crate) fn identity_text(r: &ComponentReport) -> Option<String> {
    let i = r.identity.as_ref()?;
    if i.stopped_at_first_difference && i.exact + i.within_cast + i.within_quantization < i.paired {
        return Some(format!(
            "identity: not a copy (of {} pieces, the first examined differs by a relative RMS of {})",
            i.pieces_b,
            num(i.max_relative_rms, 4)
        ));
    }
    Some(format!(
        "identity: {} of {} pieces paired ({} in the registry model); {} bit-equal, {} within a cast, {} within quantization; largest relative RMS difference {}; outcome {}",
        i.paired,
        i.pieces_b,
        i.pieces_a,
        i.exact,
        i.within_cast,
        i.within_quantization,
        num(i.max_relative_rms, 4),
        snake(i.outcome)
    ))
}

/// The serde name of a unit enum variant ("signed_permutation").
pub(crate) fn snake(v: impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn alignment_text(r: &ComponentReport) -> Option<String> {
    let a = r.alignment.as_ref()?;
    let mut s = format!(
        "alignment: {} via {} ({} anchors, widths {} / {}, {} dims aligned",
        snake(a.kind),
        a.anchor_source,
        a.anchors,
        a.width_a,
        a.width_b,
        a.aligned_dims
    );
    if let Some(f) = a.permutation_fit {
        let _ = write!(s, ", permutation fit {}", num(f, 3));
    }
    if let Some(f) = a.rotation_fit {
        let _ = write!(s, ", rotation fit {}", num(f, 3));
    }
    s.push(')');
    Some(s)
}

pub(crate) fn layer_label(a: Option<u32>, b: Option<u32>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a == b => format!("{b}"),
        (Some(a), Some(b)) => format!("{b}\u{2190}{a}"),
        _ => "global".to_string(),
    }
}

/// Per-layer median over matrix kinds of (observed score, null maximum).
pub(crate) fn layer_medians(r: &ComponentReport) -> Vec<(f64, f64)> {
    r.layers
        .iter()
        .map(|l| {
            let mut s: Vec<f64> = l.kinds.iter().map(|k| k.score).collect();
            let mut n: Vec<f64> = l.kinds.iter().map(|k| k.null_max).collect();
            (median(&mut s), median(&mut n))
        })
        .collect()
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn paint(s: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn decision_colour(d: Decision) -> &'static str {
    match d {
        Decision::Pass => "1;32",
        Decision::Fail => "1;31",
        Decision::Review => "1;33",
    }
}

fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Identical | Verdict::Derived => "31",
        Verdict::Inconclusive => "33",
        Verdict::Independent => "32",
    }
}

/// Readable at a glance: the decision and its reasons first, then one block per component.
/// `colour` adds ANSI colours (for a terminal).
pub fn render_terminal(audit: &Audit, colour: bool) -> String {
    let mut s = String::new();
    let c = &audit.inputs.candidate;
    let _ = writeln!(
        s,
        "{}  (exit code {})",
        paint(
            &format!("AUDIT {}", audit.decision.as_str()),
            decision_colour(audit.decision),
            colour
        ),
        audit.exit_code
    );
    for r in &audit.reasons {
        let _ = writeln!(
            s,
            "  {} [{}] {}",
            paint(r.decision.as_str(), decision_colour(r.decision), colour),
            r.axis.as_str(),
            r.text
        );
    }
    let _ = writeln!(
        s,
        "\ncandidate: {} ({}, {}, {} parameters, licence {})",
        c.path,
        c.format,
        c.family,
        c.parameters,
        c.licence.as_deref().unwrap_or("none recorded")
    );
    let _ = writeln!(
        s,
        "registry:  {} ({} entries: {} compared in full, {} dropped by the prefilter)",
        audit.inputs.registry.path,
        audit.scope.entries_checked,
        audit.scope.compared_in_full,
        audit.scope.dropped_by_prefilter
    );
    let _ = writeln!(
        s,
        "axes:      independence {}, policy {}",
        audit.axes.independence.decision.as_str(),
        audit.axes.policy.decision.as_str()
    );

    let _ = writeln!(s, "\ncomponents");
    let width = audit
        .components
        .iter()
        .map(|c| c.component.len())
        .max()
        .unwrap_or(0);
    for comp in &audit.components {
        let verdict = format!("{:<12}", comp.verdict.as_str());
        let _ = write!(
            s,
            "  {:<width$}  {}",
            comp.component,
            paint(&verdict, verdict_colour(comp.verdict), colour)
        );
        match &comp.closest_parent {
            None => {
                let _ = writeln!(s, "  not compared with any registry model");
            }
            Some(p) => {
                let _ = writeln!(
                    s,
                    "  {}: {} ({}, {}; licence {}: {})",
                    parent_label(comp),
                    p.entry.name,
                    p.entry.id,
                    p.entry.org,
                    p.licence.licence.as_deref().unwrap_or("none"),
                    match p.licence.class {
                        crate::licence::LicenceClass::Permissive => "permissive",
                        crate::licence::LicenceClass::Restrictive => "restrictive",
                    }
                );
                let pad = " ".repeat(width + 4);
                let _ = writeln!(s, "{pad}{}", strength_text(&p.strength));
                let _ = writeln!(s, "{pad}{}", p.evidence.reason);
                if !p.evidence.transformations.is_empty() {
                    let _ = writeln!(
                        s,
                        "{pad}transformations: {}",
                        p.evidence.transformations.join(", ")
                    );
                }
                let carrying: Vec<String> = p
                    .evidence
                    .layers
                    .iter()
                    .filter(|l| l.carries_evidence)
                    .map(|l| layer_label(l.layer_a, l.layer_b))
                    .collect();
                if !carrying.is_empty() {
                    let _ = writeln!(s, "{pad}layers carrying evidence: {}", carrying.join(" "));
                }
                // At a glance: the statistics of components that are not independent.
                let shown = if comp.verdict == Verdict::Independent {
                    &[][..]
                } else {
                    &p.evidence.statistics[..]
                };
                for st in shown {
                    let _ = writeln!(
                        s,
                        "{pad}{}: {} vs null mean {} sd {} max {} (n {}), z {}, log10 p {}, excess {}",
                        st.name,
                        num(st.value, 3),
                        num(st.null_mean, 3),
                        num(st.null_sd, 3),
                        num(st.null_max, 3),
                        st.null_size,
                        num(st.z, 1),
                        num(st.log10_p, 1),
                        num(st.excess, 3)
                    );
                }
            }
        }
    }

    if !audit.circumstantial.is_empty() {
        let _ = writeln!(s, "\ncircumstantial (never decisive)");
        // Grouped by finding and verdict: a registry of many models sharing a tokenizer
        // would otherwise fill the screen.
        let mut groups: Vec<(&str, Verdict, Vec<&str>)> = Vec::new();
        for f in &audit.circumstantial {
            match groups
                .iter_mut()
                .find(|g| g.0 == f.component && g.1 == f.verdict)
            {
                Some(g) => g.2.push(&f.entry_id),
                None => groups.push((&f.component, f.verdict, vec![&f.entry_id])),
            }
        }
        for (component, verdict, ids) in groups {
            let _ = writeln!(
                s,
                "  {component}: {} against {} ({})",
                verdict.as_str(),
                ids.len(),
                ids.join(", ")
            );
        }
    }

    let _ = writeln!(s, "\nregistry models checked");
    for e in &audit.entries {
        let outcome = match (&e.verdict, e.prefilter.passed) {
            (Some(v), _) => v.as_str().to_string(),
            (None, _) => format!("dropped by prefilter: {}", e.prefilter.reason),
        };
        let _ = writeln!(
            s,
            "  {} {} ({}, licence {}): {}",
            e.entry.id,
            e.entry.name,
            e.entry.org,
            e.licence.licence.as_deref().unwrap_or("none"),
            outcome
        );
    }

    let _ = writeln!(s, "\nscope");
    for st in &audit.scope.statements {
        let _ = writeln!(s, "  - {st}");
    }
    let i = &audit.inputs;
    let _ = writeln!(
        s,
        "\ninputs: {}, seed {}, alpha {:e}, created {}",
        i.tool, i.seed, i.alpha, i.created
    );
    for f in &i.candidate.files {
        let _ = writeln!(s, "  {} {} bytes blake3 {}", f.name, f.bytes, f.blake3);
    }
    s
}

/// Inside a code span only backticks and table pipes matter.
fn md_code(s: &str) -> String {
    s.replace('`', "'")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' | '\\' | '*' | '`' | '<' | '>' | '[' | ']' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

/// The same content as the HTML report, as Markdown (per-layer tables instead of plots).
pub fn render_markdown(audit: &Audit) -> String {
    let mut s = String::new();
    let c = &audit.inputs.candidate;
    let _ = writeln!(
        s,
        "# dokja audit: **{}**\n\nCandidate `{}` ({}, {}, {} parameters). Exit code {}.\n",
        audit.decision.as_str(),
        md_code(&c.path),
        md_escape(&c.format),
        md_escape(&c.family),
        c.parameters,
        audit.exit_code
    );
    let _ = writeln!(s, "## Decision\n");
    for r in &audit.reasons {
        let _ = writeln!(
            s,
            "- **{}** ({}): {}",
            r.decision.as_str(),
            r.axis.as_str(),
            md_escape(&r.text)
        );
    }
    let _ = writeln!(
        s,
        "\n| axis | decision |\n|---|---|\n| independence (weights initialized by the team) | {} |\n| policy (no licence restriction) | {} |\n",
        audit.axes.independence.decision.as_str(),
        audit.axes.policy.decision.as_str()
    );

    let _ = writeln!(s, "## Components\n");
    let _ = writeln!(
        s,
        "| component | verdict | closest registry model | entries compared | evidence |\n|---|---|---|---|---|"
    );
    for comp in &audit.components {
        let (parent, evidence) = match &comp.closest_parent {
            Some(p) => (
                format!("{} (`{}`)", md_escape(&p.entry.name), md_code(&p.entry.id)),
                md_escape(&strength_text(&p.strength)),
            ),
            None => ("-".to_string(), "not compared".to_string()),
        };
        let _ = writeln!(
            s,
            "| {} | **{}** | {} | {} | {} |",
            comp.component,
            comp.verdict.as_str(),
            parent,
            comp.compared_with,
            evidence
        );
    }
    for comp in &audit.components {
        let Some(p) = &comp.closest_parent else {
            continue;
        };
        let _ = writeln!(
            s,
            "\n### {}: {}\n\n{}: {} (`{}`, {}{}), licence {} ({}).\n\n{}\n",
            comp.component,
            comp.verdict.as_str(),
            parent_label(comp),
            md_escape(&p.entry.name),
            md_code(&p.entry.id),
            md_escape(&p.entry.org),
            p.entry
                .origin_country
                .as_deref()
                .map(|c| format!(", {}", md_escape(c)))
                .unwrap_or_default(),
            md_escape(p.licence.licence.as_deref().unwrap_or("none recorded")),
            md_escape(&p.licence.why),
            md_escape(&p.evidence.reason)
        );
        for line in [identity_text(&p.evidence), alignment_text(&p.evidence)]
            .into_iter()
            .flatten()
        {
            let _ = writeln!(s, "- {}", md_escape(&line));
        }
        if !p.evidence.transformations.is_empty() {
            let _ = writeln!(
                s,
                "- transformations: {}",
                md_escape(&p.evidence.transformations.join(", "))
            );
        }
        if !p.evidence.statistics.is_empty() {
            let _ = writeln!(
                s,
                "\n| statistic | value | null mean | null sd | null max | null size | z | log10 p | excess |\n|---|---|---|---|---|---|---|---|---|"
            );
            for st in &p.evidence.statistics {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    md_escape(&st.name),
                    num(st.value, 3),
                    num(st.null_mean, 3),
                    num(st.null_sd, 3),
                    num(st.null_max, 3),
                    st.null_size,
                    num(st.z, 1),
                    num(st.log10_p, 1),
                    num(st.excess, 3)
                );
            }
        }
        if !p.evidence.layers.is_empty() {
            let _ = writeln!(
                s,
                "\n| layer (candidate\u{2190}registry) | median score | median null max | median excess | log10 p | carries evidence |\n|---|---|---|---|---|---|"
            );
            for (l, (score, null_max)) in p.evidence.layers.iter().zip(layer_medians(&p.evidence)) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    layer_label(l.layer_a, l.layer_b),
                    num(score, 3),
                    num(null_max, 3),
                    num(l.median_excess, 3),
                    num(l.log10_p, 1),
                    if l.carries_evidence { "**yes**" } else { "no" }
                );
            }
        }
        if comp.against.len() > 1 {
            let _ = writeln!(
                s,
                "\nAgainst every registry model compared:\n\n| entry | verdict | evidence |\n|---|---|---|"
            );
            for v in &comp.against {
                let _ = writeln!(
                    s,
                    "| {} (`{}`) | {} | {} |",
                    md_escape(&v.entry_name),
                    md_code(&v.entry_id),
                    v.verdict.as_str(),
                    md_escape(&strength_text(&v.strength))
                );
            }
        }
    }

    if !audit.circumstantial.is_empty() {
        let _ = writeln!(
            s,
            "\n## Circumstantial findings (never decisive)\n\n| finding | registry model | verdict | detail |\n|---|---|---|---|"
        );
        for f in &audit.circumstantial {
            let _ = writeln!(
                s,
                "| {} | {} (`{}`) | {} | {} |",
                f.component,
                md_escape(&f.entry_name),
                md_code(&f.entry_id),
                f.verdict.as_str(),
                md_escape(&f.reason)
            );
        }
    }

    let _ = writeln!(s, "\n## Scope\n");
    for st in &audit.scope.statements {
        let _ = writeln!(s, "- {}", md_escape(st));
    }
    let _ = writeln!(
        s,
        "- Each comparison: {}",
        md_escape(&audit.scope.comparison_scope)
    );
    let _ = writeln!(
        s,
        "\n## Licence policy\n\n{}\n\nPermissive: {}.",
        md_escape(&audit.licence_policy.rule),
        audit.licence_policy.permissive.join(", ")
    );

    let i = &audit.inputs;
    let _ = writeln!(
        s,
        "\n## Inputs (reproducibility)\n\n- tool: {}\n- seed: {}\n- alpha: {}\n- created: {}\n- registry: `{}` ({} entries)\n\n| file | bytes | blake3 |\n|---|---|---|",
        md_escape(&i.tool),
        i.seed,
        i.alpha,
        md_escape(&i.created),
        md_code(&i.registry.path),
        i.registry.entries
    );
    for f in &i.candidate.files {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` |",
            md_escape(&f.name),
            f.bytes,
            md_code(&f.blake3)
        );
    }
    let _ = writeln!(
        s,
        "\n| registry id | model | org | country | licence | released | outcome |\n|---|---|---|---|---|---|---|"
    );
    for e in &audit.entries {
        let outcome = match (&e.verdict, &e.fingerprint) {
            (Some(v), None) => v.as_str().to_string(),
            (Some(v), Some(f)) => format!("{} (fingerprint `{}`)", v.as_str(), md_code(f)),
            (None, _) => format!("dropped by prefilter: {}", md_escape(&e.prefilter.reason)),
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            md_code(&e.entry.id),
            md_escape(&e.entry.name),
            md_escape(&e.entry.org),
            md_escape(e.entry.origin_country.as_deref().unwrap_or("-")),
            md_escape(e.licence.licence.as_deref().unwrap_or("none")),
            md_escape(e.entry.released.as_deref().unwrap_or("-")),
            outcome
        );
    }
    s
}

/// The audit as pretty JSON (the contract of docs/audit-report.md).
pub fn render_json(audit: &Audit) -> String {
    // Serializing plain data structures cannot fail.
    serde_json::to_string_pretty(audit).unwrap_or_default()
}
