//! The per-layer similarity plot, as inline SVG: per matched layer, the observed score
//! (median over matrix kinds) against its null (median over kinds of the null's maximum, and
//! the null's mean +- sd where the statistic of that kind gives them), the evidence threshold
//! (null maximum + effect margin), and the layers that carry evidence marked.

use std::fmt::Write as _;

use dokja_provenance::report::ComponentReport;

use crate::html::escape;
use crate::render::{layer_label, layer_medians, median, num};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 62.0;

/// Per layer, the median over kinds of the null's mean and sd, from the component statistic
/// of each kind ("<kind>: <statistic> (median over layers)").
fn null_mean_sd(r: &ComponentReport) -> Vec<Option<(f64, f64)>> {
    r.layers
        .iter()
        .map(|l| {
            let mut means = Vec::new();
            let mut sds = Vec::new();
            for k in &l.kinds {
                let prefix = format!("{}: ", k.kind);
                if let Some(st) = r.statistics.iter().find(|s| s.name.starts_with(&prefix)) {
                    means.push(st.null_mean);
                    sds.push(st.null_sd);
                }
            }
            (!means.is_empty()).then(|| (median(&mut means), median(&mut sds)))
        })
        .collect()
}

/// The plot, or None when the component has no per-layer evidence (e.g. decided by identity).
/// `pointer` is the JSON pointer of the component report in the audit (for data attributes).
pub fn layer_plot(r: &ComponentReport, effect_margin: f64, pointer: &str) -> Option<String> {
    if r.layers.is_empty() {
        return None;
    }
    let medians = layer_medians(r);
    let bands = null_mean_sd(r);
    let n = r.layers.len();

    let mut lo: f64 = 0.0;
    let mut hi: f64 = 1.0;
    for (i, &(score, null_max)) in medians.iter().enumerate() {
        for v in [score, null_max, null_max + effect_margin] {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if let Some((m, sd)) = bands[i] {
            for v in [m - sd, m + sd] {
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
    }
    lo = (lo * 4.0).floor() / 4.0;
    hi = (hi * 4.0).ceil() / 4.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| TOP + plot_h * (hi - v.clamp(lo, hi)) / (hi - lo);
    let step = plot_w / n as f64;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="layers" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        "<title>Per-layer similarity: observed score against the null</title>"
    );
    // Axes and grid.
    let mut t = lo;
    while t <= hi + 1e-9 {
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            WIDTH - RIGHT,
            y(t),
            y(t),
            LEFT - 6.0,
            y(t) + 4.0,
            num(t, 2)
        );
        t += 0.25;
    }
    // Null bands, one rectangle per layer: up to the null maximum, and mean +- sd darker.
    for (i, &(_, null_max)) in medians.iter().enumerate() {
        let x0 = x(i) - step * 0.45;
        if null_max.is_finite() {
            let _ = write!(
                s,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#e3e3e3"/>"##,
                y(null_max),
                step * 0.9,
                (y(lo) - y(null_max)).max(0.0)
            );
        }
        if let Some((m, sd)) = bands[i] {
            let _ = write!(
                s,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#c4c4c4"/>"##,
                y(m + sd),
                step * 0.9,
                (y(m - sd) - y(m + sd)).max(0.0)
            );
        }
    }
    // Threshold: null maximum + effect margin.
    let threshold: Vec<String> = medians
        .iter()
        .enumerate()
        .filter(|(_, m)| m.1.is_finite())
        .map(|(i, m)| format!("{:.1},{:.1}", x(i), y(m.1 + effect_margin)))
        .collect();
    if threshold.len() > 1 {
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#888" stroke-dasharray="4 3"/>"##,
            threshold.join(" ")
        );
    } else if let Some(p) = threshold.first() {
        let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
        let _ = write!(
            s,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{py}" y2="{py}" stroke="#888" stroke-dasharray="4 3"/>"##,
            px.parse::<f64>().unwrap_or(0.0) - step * 0.45,
            px.parse::<f64>().unwrap_or(0.0) + step * 0.45
        );
    }
    // Observed scores.
    let line: Vec<String> = medians
        .iter()
        .enumerate()
        .filter(|(_, m)| m.0.is_finite())
        .map(|(i, m)| format!("{:.1},{:.1}", x(i), y(m.0)))
        .collect();
    if line.len() > 1 {
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#1f3a5f" stroke-width="1.5"/>"##,
            line.join(" ")
        );
    }
    let label_every = n.div_ceil(24).max(1);
    for (i, (l, &(score, null_max))) in r.layers.iter().zip(&medians).enumerate() {
        let label = layer_label(l.layer_a, l.layer_b);
        if score.is_finite() {
            let (fill, radius) = if l.carries_evidence {
                ("#8b1a1a", 4.5)
            } else {
                ("#ffffff", 3.5)
            };
            let stroke = if l.carries_evidence {
                "#8b1a1a"
            } else {
                "#1f3a5f"
            };
            let _ = write!(
                s,
                r#"<circle class="layer-point" cx="{:.1}" cy="{:.1}" r="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="1.5" data-json="{}/layers/{i}" data-score="{score}" data-null-max="{null_max}" data-carries="{}"><title>layer {}: score {}, null max {}, excess {}, log10 p {}{}</title></circle>"#,
                x(i),
                y(score),
                escape(pointer),
                l.carries_evidence,
                escape(&label),
                num(score, 3),
                num(null_max, 3),
                num(l.median_excess, 3),
                num(l.log10_p, 1),
                if l.carries_evidence {
                    ", carries evidence"
                } else {
                    ""
                }
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                x(i),
                HEIGHT - BOTTOM + 14.0,
                escape(&label)
            );
        }
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">matched layer (candidate; candidate&#8592;registry when they differ)</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - BOTTOM + 30.0
    );
    // Legend: symbol then text, left to right.
    let ly = HEIGHT - 12.0;
    let mut lx = LEFT;
    let _ = write!(s, r##"<g fill="#333" font-size="10">"##);
    let items: [(&str, String); 5] = [
        (
            r##"<circle cx="{x}" cy="{y}" r="3.5" fill="#fff" stroke="#1f3a5f" stroke-width="1.5"/>"##,
            "observed (median over kinds)".into(),
        ),
        (
            r##"<circle cx="{x}" cy="{y}" r="4.5" fill="#8b1a1a"/>"##,
            "carries evidence".into(),
        ),
        (
            r##"<rect x="{x0}" y="{y0}" width="12" height="9" fill="#e3e3e3"/>"##,
            "null, up to its max".into(),
        ),
        (
            r##"<rect x="{x0}" y="{y0}" width="12" height="9" fill="#c4c4c4"/>"##,
            "null mean \u{b1} sd".into(),
        ),
        (
            r##"<line x1="{x0}" x2="{x1}" y1="{y}" y2="{y}" stroke="#888" stroke-dasharray="4 3"/>"##,
            format!("null max + margin {}", num(effect_margin, 2)),
        ),
    ];
    for (symbol, label) in items {
        let y = ly - 3.5;
        let symbol = symbol
            .replace("{x0}", &format!("{:.1}", lx - 6.0))
            .replace("{x1}", &format!("{:.1}", lx + 6.0))
            .replace("{x}", &format!("{lx:.1}"))
            .replace("{y0}", &format!("{:.1}", y - 4.5))
            .replace("{y}", &format!("{y:.1}"));
        s.push_str(&symbol);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{ly:.1}">{}</text>"#,
            lx + 10.0,
            escape(&label)
        );
        // About 5.5 px per character at this size.
        lx += 10.0 + label.chars().count() as f64 * 5.5 + 22.0;
    }
    s.push_str("</g>");
    s.push_str("</svg>");
    Some(s)
}
