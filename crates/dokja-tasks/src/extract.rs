//! Answer extraction from generated text: which choice a response picks, and which number or
//! short answer it gives. Published harnesses disagree by points on the same outputs because
//! of this step, so the rules are explicit, ordered, and tested on English and Korean forms.
//!
//! Choice extraction, first rule that yields one answer wins:
//! 1. an explicit answer statement, the last one in the text: "Answer: B", "the answer is (B)",
//!    "정답은 3번", "답: ②", "정답: B입니다";
//! 2. the whole response is a label: "B", "(B)", "B.", "3", "3번", "②", "**B**";
//! 3. the response starts with a label followed by `.`, `)` or `:` ("B. Paris ...");
//! 4. the response is, or contains exactly one of, the choice texts;
//! 5. exactly one distinct parenthesized or circled label appears: "(B)", "②".
//!
//! Labels are letters A-J, numbers 1-10 (also "3번", "(3)") and circled digits ①-⑩. Numbers
//! name choices by position (1-based) whatever the task's labels, since Korean answers say
//! "3번" even for lettered options; a bare number that equals a choice's text (choices that
//! are numbers) is read as that choice.

use std::sync::LazyLock;

use regex::Regex;

/// How the choice was found, for reports on extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractionRule {
    AnswerStatement,
    BareLabel,
    LeadingLabel,
    ChoiceText,
    UniqueMarkedLabel,
}

/// A choice found in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChoiceExtraction {
    pub index: usize,
    pub rule: ExtractionRule,
}

/// Most bytes of a response examined (answers are at the start or the end; long rambling
/// outputs are cut in the middle so extraction stays linear and bounded).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_RESPONSE_BYTES {
        return text.to_string();
    }
    let half = MAX_RESPONSE_BYTES / 2;
    let mut head = half;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - half;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}\n{}", &text[..head], &text[tail..])
}

/// Full-width forms to ASCII, markdown emphasis removed, so "Ｂ", "**B**" and "（B）" read as B.
fn normalize(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '*' | '`' => None,
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0),
            '\u{3000}' => Some(' '),
            _ => Some(c),
        })
        .collect()
}

const CIRCLED: [char; 10] = ['①', '②', '③', '④', '⑤', '⑥', '⑦', '⑧', '⑨', '⑩'];

/// Reads a label token ("B", "(B)", "3", "3번", "②") as a 0-based index among `n` choices.
fn token_index(tok: &str, n: usize, choices: &[String]) -> Option<usize> {
    let t = tok
        .trim()
        .trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']')
        .trim();
    let t = t.strip_suffix('번').unwrap_or(t).trim();
    let mut cs = t.chars();
    let first = cs.next()?;
    let idx = if let Some(p) = CIRCLED.iter().position(|&c| c == first) {
        if cs.next().is_some() {
            return None;
        }
        p
    } else if first.is_ascii_alphabetic() {
        if cs.next().is_some() {
            return None;
        }
        (first.to_ascii_uppercase() as u8 - b'A') as usize
    } else if let Ok(num) = t.parse::<usize>() {
        // A number that is itself one of the choices' texts names that choice.
        if let Some(i) = choices.iter().position(|c| c.trim() == t) {
            return Some(i);
        }
        num.checked_sub(1)?
    } else {
        return None;
    };
    (idx < n).then_some(idx)
}

const TOKEN: &str = r"(\([A-Ja-j]\)|\(\d{1,2}\)|[①-⑩]|\d{1,2}\s*번|\d{1,2}|[A-J])";

static STATEMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)(?:final\s+answer|correct\s+answer|answer|정답|답|선택지|choice|option)\s*(?:is|:|은|는|=|->|→)?\s*(?:is\s*)?(?:[:\-]\s*)?(?:option\s*|choice\s*)?{TOKEN}(.?)"
    ))
    .expect("valid regex")
});

static LEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^\s*{TOKEN}\s*[.):：]")).expect("valid regex"));

static MARKED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(([A-J]|\d{1,2})\)|([①-⑩])").expect("valid regex"));

/// Finds the choice a response picks, or `None` when no rule gives a single answer.
pub fn extract_choice(response: &str, choices: &[String]) -> Option<ChoiceExtraction> {
    let n = choices.len();
    let text = normalize(&bounded(response));
    let found = |index, rule| Some(ChoiceExtraction { index, rule });

    // 1. Explicit statements; the last one is the conclusion.
    let mut last = None;
    for cap in STATEMENT.captures_iter(&text) {
        let tok = &cap[1];
        let next = cap.get(2).map_or("", |m| m.as_str());
        // "Answer: Because ..." is a word, not the label "B".
        let next_char = next.chars().next();
        if tok.len() == 1
            && tok.as_bytes()[0].is_ascii_alphabetic()
            && next_char.is_some_and(|c| c.is_ascii_alphabetic())
        {
            continue;
        }
        // "the answer is a dog": a lowercase letter followed by more words is an article.
        if tok.len() == 1
            && tok.as_bytes()[0].is_ascii_lowercase()
            && next_char.is_some_and(char::is_whitespace)
        {
            continue;
        }
        // "답은 12345" is a number, not a label; "3번" and bare small numbers are labels.
        if next.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Some(i) = token_index(tok, n, choices) {
            last = Some(i);
        }
    }
    if let Some(i) = last {
        return found(i, ExtractionRule::AnswerStatement);
    }

    // 2. The whole response is a label.
    let trimmed = text
        .trim()
        .trim_end_matches(['.', '。', ':'])
        .trim_end_matches("입니다")
        .trim();
    if let Some(i) = token_index(trimmed, n, choices) {
        return found(i, ExtractionRule::BareLabel);
    }

    // 3. A leading label: "B. Paris", "(3) ...", "② ...".
    if let Some(cap) = LEADING.captures(&text)
        && let Some(i) = token_index(&cap[1], n, choices)
    {
        return found(i, ExtractionRule::LeadingLabel);
    }
    if let Some(first) = text.trim_start().chars().next()
        && let Some(p) = CIRCLED.iter().position(|&c| c == first)
        && p < n
    {
        return found(p, ExtractionRule::LeadingLabel);
    }

    // 4. The choice text.
    let squash = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let resp = squash(&text);
    let resp_trim = resp.trim_end_matches(['.', '。']).to_string();
    if let Some(i) = choices.iter().position(|c| squash(c) == resp_trim) {
        return found(i, ExtractionRule::ChoiceText);
    }
    let contained: Vec<usize> = (0..n)
        .filter(|&i| {
            let c = squash(&choices[i]);
            !c.is_empty() && resp.contains(&c)
        })
        .collect();
    // A choice inside another choice ("Paris" in "Paris, Texas") does not count separately.
    let maximal: Vec<usize> = contained
        .iter()
        .copied()
        .filter(|&i| {
            !contained.iter().any(|&j| {
                j != i
                    && squash(&choices[j]).contains(&squash(&choices[i]))
                    && squash(&choices[j]) != squash(&choices[i])
            })
        })
        .collect();
    if let [i] = maximal.as_slice() {
        return found(*i, ExtractionRule::ChoiceText);
    }

    // 5. One distinct marked label.
    let mut marked: Vec<usize> = MARKED
        .captures_iter(&text)
        .filter_map(|c| {
            let tok = c.get(1).or_else(|| c.get(2))?.as_str();
            token_index(tok, n, choices)
        })
        .collect();
    marked.sort_unstable();
    marked.dedup();
    if let [i] = marked.as_slice() {
        return found(*i, ExtractionRule::UniqueMarkedLabel);
    }
    None
}

// ---------------------------------------------------------------- numbers and short answers

static BOXED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\(?:boxed|fbox)\s*\{").expect("valid regex"));
static HASHES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"####\s*([^\n]+)").expect("valid regex"));
static ANSWER_IS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:final\s+answer|the\s+answer|answer|정답|답)\s*(?:is|:|은|는|=)\s*:?\s*([^\n]+)",
    )
    .expect("valid regex")
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")
        .expect("valid regex")
});

/// How a short answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerRule {
    Boxed,
    Hashes,
    AnswerStatement,
    LastNumber,
}

/// Contents of the last `\boxed{...}`, braces balanced.
fn last_boxed(text: &str) -> Option<String> {
    let m = BOXED.find_iter(text).last()?;
    let mut depth = 1usize;
    let body = &text[m.end()..];
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(body[..i].trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Finds the final answer of a worked solution: `\boxed{}`, then `#### x`, then the last
/// "answer is x" / "정답은 x" statement, then the last number in the text.
pub fn extract_answer(response: &str) -> Option<(String, AnswerRule)> {
    let text = normalize(&bounded(response));
    if let Some(b) = last_boxed(&text) {
        return Some((b, AnswerRule::Boxed));
    }
    if let Some(c) = HASHES.captures_iter(&text).last() {
        return Some((c[1].trim().to_string(), AnswerRule::Hashes));
    }
    if let Some(c) = ANSWER_IS.captures_iter(&text).last() {
        let stated = c[1].trim();
        // "The answer is 18 dollars." -> the number; "정답은 \frac{1}{2}" -> as written.
        if let Some(b) = last_boxed(stated) {
            return Some((b, AnswerRule::AnswerStatement));
        }
        if let Some(n) = NUMBER.find(stated) {
            return Some((n.as_str().to_string(), AnswerRule::AnswerStatement));
        }
        let s = stated
            .trim_end_matches(['.', '。'])
            .trim_matches('$')
            .trim();
        if !s.is_empty() {
            return Some((s.to_string(), AnswerRule::AnswerStatement));
        }
    }
    NUMBER
        .find_iter(&text)
        .last()
        .map(|m| (m.as_str().to_string(), AnswerRule::LastNumber))
}

/// Parses a number as written in answers: "1,234", "$18", "18.00", "3/4", "\frac{3}{4}",
/// "-5", "50%", "18 dollars", "1,200원", "\$18". Returns `None` when it is not one number.
pub fn parse_number(text: &str) -> Option<f64> {
    let mut s = text.trim().to_string();
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\$", ""),
        ("\\%", ""),
        ("\\!", ""),
        ("\\,", ""),
    ] {
        s = s.replace(from, to);
    }
    let s = s.trim_matches(|c: char| c == '$' || c.is_whitespace());
    if let Some(rest) = s.strip_prefix("\\frac{") {
        let (num, rest) = rest.split_once('}')?;
        let den = rest.strip_prefix('{')?.strip_suffix('}')?;
        let (a, b) = (parse_number(num)?, parse_number(den)?);
        return (b != 0.0).then(|| a / b);
    }
    let s = s.trim_start_matches(['$', '₩', '€', '£', '¥']);
    // Units and words after the number ("18 dollars", "30개", "50%").
    let end = s
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit() || c == ',' || c == '.' || c == '/' || (c == '-' && i == 0))
        })
        .map_or(s.len(), |(i, _)| i);
    let (num, unit) = s.split_at(end);
    let unit = unit.trim();
    let unit_ok = unit.is_empty()
        || unit
            .chars()
            .all(|c| c.is_alphabetic() || c == '%' || c == '.' || c.is_whitespace())
            && unit.chars().count() <= 12;
    if !unit_ok || num.is_empty() {
        return None;
    }
    let num = num.trim_end_matches('.');
    if num.contains(',') {
        // Thousands separators only: "1,234,567".
        let parts: Vec<&str> = num.split('.').next()?.split(',').collect();
        if parts.iter().skip(1).any(|p| p.len() != 3) {
            return None;
        }
    }
    let num = num.replace(',', "");
    if let Some((a, b)) = num.split_once('/') {
        let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
        return (b != 0.0).then(|| a / b);
    }
    num.parse().ok()
}

/// Normalizes a non-numeric short answer for string comparison: no spaces, no `$`, no
/// `\left`/`\right`, `\dfrac` as `\frac`, no `\text{}` wrapper, lowercase, no final period.
pub fn normalize_answer(text: &str) -> String {
    let mut s = text.trim().to_string();
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\!", ""),
        ("\\,", ""),
        ("\\text{", "{"),
        ("\\mathrm{", "{"),
        ("$", ""),
    ] {
        s = s.replace(from, to);
    }
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    s.trim_end_matches(['.', '。']).to_lowercase()
}

/// Whether `predicted` equals `gold`: numerically (relative tolerance 1e-6) when both read as
/// numbers, else as normalized strings.
pub fn answers_match(predicted: &str, gold: &str) -> bool {
    match (parse_number(predicted), parse_number(gold)) {
        (Some(p), Some(g)) => (p - g).abs() <= 1e-6 * g.abs().max(1.0),
        _ => normalize_answer(predicted) == normalize_answer(gold),
    }
}
