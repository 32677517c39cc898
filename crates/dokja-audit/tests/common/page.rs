//! Reads the `data-json` / `data-value` pairs of a rendered page (as written, or as a browser
//! serialized its DOM) and checks each against the audit's JSON.

use serde_json::Value;

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in one tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}

/// Text up to the next tag after position `from` (the element's displayed text for leaves).
fn text_after(page: &str, from: usize) -> String {
    let rest = &page[from..];
    let end = rest.find('<').unwrap_or(rest.len());
    unescape(&rest[..end])
}

pub struct Checked {
    pub numbers: usize,
    pub strings: usize,
    pub points: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

/// Panics naming the first element whose value disagrees with the JSON.
pub fn check(page: &str, json: &Value) -> Checked {
    let mut checked = Checked {
        numbers: 0,
        strings: 0,
        points: 0,
    };
    let mut pos = 0;
    while let Some(i) = page[pos..].find('<') {
        let start = pos + i;
        let Some(len) = page[start..].find('>') else {
            break;
        };
        let tag = &page[start..start + len];
        pos = start + len + 1;
        let Some(pointer) = attr(tag, "data-json") else {
            continue;
        };
        let target = json
            .pointer(&pointer)
            .unwrap_or_else(|| panic!("{pointer} is not in the JSON"));
        if tag.contains("class=\"layer-point\"") {
            // A plotted point: the medians over matrix kinds of the layer's JSON.
            let kinds = target["kinds"].as_array().expect("layer kinds");
            let score = median(kinds.iter().map(|k| k["score"].as_f64().unwrap()).collect());
            let null_max = median(
                kinds
                    .iter()
                    .map(|k| k["null_max"].as_f64().unwrap())
                    .collect(),
            );
            let shown: f64 = attr(tag, "data-score").unwrap().parse().unwrap();
            let shown_null: f64 = attr(tag, "data-null-max").unwrap().parse().unwrap();
            assert!(
                close(shown, score),
                "{pointer}: plotted {shown}, JSON median {score}"
            );
            assert!(
                close(shown_null, null_max),
                "{pointer}: plotted null {shown_null}, JSON median {null_max}"
            );
            assert_eq!(
                attr(tag, "data-carries").unwrap(),
                target["carries_evidence"].to_string(),
                "{pointer}"
            );
            checked.points += 1;
            continue;
        }
        let Some(value) = attr(tag, "data-value") else {
            continue;
        };
        let shown = text_after(page, pos);
        match target {
            Value::String(s) => {
                assert_eq!(&value, s, "{pointer}");
                assert_eq!(shown.trim(), s.trim(), "{pointer}: displayed text");
                checked.strings += 1;
            }
            Value::Number(n) => {
                let exact: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("{pointer}: {value}"));
                let json_value = n.as_f64().unwrap();
                assert!(
                    close(exact, json_value),
                    "{pointer}: page {exact}, JSON {json_value}"
                );
                let displayed: f64 = shown
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{pointer}: displayed {shown:?}"));
                let decimals = shown.trim().split('.').nth(1).map_or(0, str::len);
                let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) * (1.0 + 1e-9);
                assert!(
                    (displayed - json_value).abs() <= tolerance,
                    "{pointer}: displayed {displayed}, JSON {json_value}"
                );
                checked.numbers += 1;
            }
            Value::Null => {
                assert_eq!(value, "null", "{pointer}");
                checked.numbers += 1;
            }
            other => panic!("{pointer}: unexpected JSON {other}"),
        }
    }
    checked
}
