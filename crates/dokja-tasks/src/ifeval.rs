//! The IFEval verifiable-instruction checkers (Zhou et al. 2023, google-research
//! `instruction_following_eval`), ported rule for rule, with strict and loose accuracy.
//! IFEval-Ko uses the same instruction ids and arguments; the checkers below handle Korean
//! text (word counts over Unicode `\w+`, Hangul letters in letter counts, Hangul script for
//! `language:response_language` with `ko`).
//!
//! Two parts of the original depend on Python libraries and are approximated, documented in
//! `docs/task-files.md`: language identification (`langdetect`) is replaced by script
//! detection plus a small function-word vote among Latin-script languages, and `nltk`'s word
//! tokenizer (for capital-word counts) by Unicode `\w+` words.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Result, TaskError};

/// Every instruction id the checkers know.
pub const INSTRUCTION_IDS: &[&str] = &[
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "language:response_language",
    "length_constraints:number_sentences",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "combination:two_responses",
    "combination:repeat_prompt",
    "startend:end_checker",
    "startend:quotation",
    "change_case:capital_word_frequency",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
];

/// Result of checking one prompt's instructions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IfevalOutcome {
    /// Per instruction, followed by the response as given.
    pub strict: Vec<bool>,
    /// Per instruction, followed by any of the loose variants of the response.
    pub loose: Vec<bool>,
}

impl IfevalOutcome {
    pub fn prompt_strict(&self) -> bool {
        self.strict.iter().all(|&b| b)
    }
    pub fn prompt_loose(&self) -> bool {
        self.loose.iter().all(|&b| b)
    }
}

/// Checks every instruction of a prompt, strictly and loosely (IFEval's `test_instruction_following_strict` / `_loose`).
pub fn evaluate(
    ids: &[String],
    kwargs: &[Map<String, Value>],
    prompt: &str,
    response: &str,
) -> Result<IfevalOutcome> {
    if ids.len() != kwargs.len() {
        return Err(TaskError::Instruction {
            id: ids.join(","),
            message: format!("{} ids but {} kwargs", ids.len(), kwargs.len()),
        });
    }
    let variants = loose_variants(response);
    let mut strict = Vec::with_capacity(ids.len());
    let mut loose = Vec::with_capacity(ids.len());
    for (id, kw) in ids.iter().zip(kwargs) {
        let checker = Checker::new(id, kw, prompt)?;
        strict.push(!response.trim().is_empty() && checker.check(response));
        loose.push(
            variants
                .iter()
                .any(|r| !r.trim().is_empty() && checker.check(r)),
        );
    }
    Ok(IfevalOutcome { strict, loose })
}

/// The eight responses IFEval's loose accuracy tries: as given, without its first line,
/// without its last line, without both, and each of those with `*` removed.
pub fn loose_variants(response: &str) -> Vec<String> {
    let lines: Vec<&str> = response.split('\n').collect();
    let join = |ls: &[&str]| ls.join("\n").trim().to_string();
    let n = lines.len();
    let remove_first = join(&lines[1.min(n)..]);
    let remove_last = join(&lines[..n.saturating_sub(1)]);
    let remove_both = if n >= 2 {
        join(&lines[1..n - 1])
    } else {
        String::new()
    };
    let all = [response.to_string(), remove_first, remove_last, remove_both];
    let mut out: Vec<String> = all.to_vec();
    out.extend(all.iter().map(|r| r.replace('*', "")));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    LessThan,
    AtLeast,
}

impl Relation {
    fn holds(self, actual: usize, bound: usize) -> bool {
        match self {
            Relation::LessThan => actual < bound,
            Relation::AtLeast => actual >= bound,
        }
    }
}

/// One instruction with its arguments, ready to check responses.
#[derive(Debug, Clone)]
pub struct Checker {
    id: String,
    rule: Rule,
}

#[derive(Debug, Clone)]
enum Rule {
    KeywordsExist(Vec<String>),
    KeywordFrequency {
        keyword: String,
        n: usize,
        rel: Relation,
    },
    ForbiddenWords(Vec<String>),
    LetterFrequency {
        letter: String,
        n: usize,
        rel: Relation,
    },
    Language(String),
    Sentences {
        n: usize,
        rel: Relation,
    },
    ParagraphsStars(usize),
    Words {
        n: usize,
        rel: Relation,
    },
    NthParagraphFirstWord {
        paragraphs: usize,
        nth: usize,
        word: String,
    },
    Placeholders(usize),
    Postscript(String),
    BulletLists(usize),
    ConstrainedResponse,
    Highlights(usize),
    Sections {
        splitter: String,
        n: usize,
    },
    Json,
    Title,
    TwoResponses,
    RepeatPrompt(String),
    EndChecker(String),
    Quotation,
    CapitalWords {
        n: usize,
        rel: Relation,
    },
    EnglishCapital,
    EnglishLowercase,
    NoComma,
}

impl Checker {
    /// Builds the checker for instruction `id` with its `kwargs` (as in the IFEval data files;
    /// `prompt` is used by `combination:repeat_prompt` when `prompt_to_repeat` is absent).
    pub fn new(id: &str, kwargs: &Map<String, Value>, prompt: &str) -> Result<Checker> {
        let err = |message: String| TaskError::Instruction {
            id: id.to_string(),
            message,
        };
        let get = |k: &str| kwargs.get(k).filter(|v| !v.is_null());
        let string = |k: &str| -> Result<String> {
            match get(k) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(err(format!("`{k}` is {v}, expected a string"))),
                None => Err(err(format!("missing argument `{k}`"))),
            }
        };
        let count = |k: &str| -> Result<usize> {
            match get(k) {
                Some(v) => v
                    .as_u64()
                    .or_else(|| {
                        v.as_f64()
                            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                            .map(|f| f as u64)
                    })
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|&n| n <= 1_000_000)
                    .map(|n| n as usize)
                    .ok_or_else(|| err(format!("`{k}` is {v}, expected a count"))),
                None => Err(err(format!("missing argument `{k}`"))),
            }
        };
        let relation = |k: &str| -> Result<Relation> {
            match string(k)?.as_str() {
                "less than" => Ok(Relation::LessThan),
                "at least" => Ok(Relation::AtLeast),
                other => Err(err(format!(
                    "`{k}` is {other:?}, expected \"less than\" or \"at least\""
                ))),
            }
        };
        let strings = |k: &str| -> Result<Vec<String>> {
            match get(k) {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| err(format!("`{k}` holds a non-string")))
                    })
                    .collect(),
                Some(v) => Err(err(format!("`{k}` is {v}, expected a list of strings"))),
                None => Err(err(format!("missing argument `{k}`"))),
            }
        };
        let rule = match id {
            "keywords:existence" => Rule::KeywordsExist(strings("keywords")?),
            "keywords:frequency" => Rule::KeywordFrequency {
                keyword: string("keyword")?,
                n: count("frequency")?,
                rel: relation("relation")?,
            },
            "keywords:forbidden_words" => Rule::ForbiddenWords(strings("forbidden_words")?),
            "keywords:letter_frequency" => Rule::LetterFrequency {
                letter: string("letter")?.to_lowercase(),
                n: count("let_frequency")?,
                rel: relation("let_relation")?,
            },
            "language:response_language" => Rule::Language(string("language")?),
            "length_constraints:number_sentences" => Rule::Sentences {
                n: count("num_sentences")?,
                rel: relation("relation")?,
            },
            "length_constraints:number_paragraphs" => {
                Rule::ParagraphsStars(count("num_paragraphs")?)
            }
            "length_constraints:number_words" => Rule::Words {
                n: count("num_words")?,
                rel: relation("relation")?,
            },
            "length_constraints:nth_paragraph_first_word" => Rule::NthParagraphFirstWord {
                paragraphs: count("num_paragraphs")?,
                nth: count("nth_paragraph")?,
                word: string("first_word")?.to_lowercase(),
            },
            "detectable_content:number_placeholders" => {
                Rule::Placeholders(count("num_placeholders")?)
            }
            "detectable_content:postscript" => Rule::Postscript(string("postscript_marker")?),
            "detectable_format:number_bullet_lists" => Rule::BulletLists(count("num_bullets")?),
            "detectable_format:constrained_response" => Rule::ConstrainedResponse,
            "detectable_format:number_highlighted_sections" => {
                Rule::Highlights(count("num_highlights")?)
            }
            "detectable_format:multiple_sections" => Rule::Sections {
                splitter: string("section_spliter")?,
                n: count("num_sections")?,
            },
            "detectable_format:json_format" => Rule::Json,
            "detectable_format:title" => Rule::Title,
            "combination:two_responses" => Rule::TwoResponses,
            "combination:repeat_prompt" => Rule::RepeatPrompt(
                string("prompt_to_repeat").unwrap_or_else(|_| prompt.to_string()),
            ),
            "startend:end_checker" => Rule::EndChecker(string("end_phrase")?),
            "startend:quotation" => Rule::Quotation,
            "change_case:capital_word_frequency" => Rule::CapitalWords {
                n: count("capital_frequency")?,
                rel: relation("capital_relation")?,
            },
            "change_case:english_capital" => Rule::EnglishCapital,
            "change_case:english_lowercase" => Rule::EnglishLowercase,
            "punctuation:no_comma" => Rule::NoComma,
            _ => return Err(err("unknown instruction id".into())),
        };
        Ok(Checker {
            id: id.to_string(),
            rule,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `value` follows the instruction.
    pub fn check(&self, value: &str) -> bool {
        match &self.rule {
            Rule::KeywordsExist(words) => words
                .iter()
                .all(|w| case_insensitive(&regex::escape(w)).is_some_and(|r| r.is_match(value))),
            Rule::KeywordFrequency { keyword, n, rel } => {
                let actual = case_insensitive(&regex::escape(keyword))
                    .map_or(0, |r| r.find_iter(value).count());
                rel.holds(actual, *n)
            }
            Rule::ForbiddenWords(words) => !words.iter().any(|w| {
                case_insensitive(&format!(r"\b{}\b", regex::escape(w)))
                    .is_some_and(|r| r.is_match(value))
            }),
            Rule::LetterFrequency { letter, n, rel } => {
                let lower = value.to_lowercase();
                let actual = match letter.chars().count() {
                    1 => {
                        let l = letter.chars().next().unwrap_or_default();
                        lower.chars().filter(|&c| c == l).count()
                    }
                    _ => 0,
                };
                rel.holds(actual, *n)
            }
            Rule::Language(code) => language_matches(value, code),
            Rule::Sentences { n, rel } => rel.holds(split_into_sentences(value).len(), *n),
            Rule::ParagraphsStars(n) => {
                static SPLIT: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"\s?\*\*\*\s?").expect("valid regex"));
                let paragraphs: Vec<&str> = SPLIT.split(value).collect();
                let mut num = paragraphs.len();
                let last = paragraphs.len() - 1;
                for (i, p) in paragraphs.iter().enumerate() {
                    if p.trim().is_empty() {
                        if i == 0 || i == last {
                            num -= 1;
                        } else {
                            return false;
                        }
                    }
                }
                num == *n
            }
            Rule::Words { n, rel } => rel.holds(count_words(value), *n),
            Rule::NthParagraphFirstWord {
                paragraphs,
                nth,
                word,
            } => {
                let parts: Vec<&str> = value.split("\n\n").collect();
                let num = parts.iter().filter(|p| !p.trim().is_empty()).count();
                if *nth == 0 || *nth > num || *nth > parts.len() {
                    return false;
                }
                let paragraph = parts[nth - 1].trim();
                if paragraph.is_empty() {
                    return false;
                }
                let first = paragraph
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim();
                let first = first.trim_start_matches('\'').trim_start_matches('"');
                let mut got = String::new();
                for c in first.chars() {
                    if matches!(c, '.' | ',' | '?' | '!' | '\'' | '"') {
                        break;
                    }
                    got.extend(c.to_lowercase());
                }
                num == *paragraphs && got == *word
            }
            Rule::Placeholders(n) => {
                static PH: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"\[.*?\]").expect("valid regex"));
                PH.find_iter(value).count() >= *n
            }
            Rule::Postscript(marker) => {
                let marker = marker.trim().to_lowercase();
                let pattern = match marker.as_str() {
                    "p.p.s" => r"(?m)\s*p\.\s?p\.\s?s.*$".to_string(),
                    "p.s." => r"(?m)\s*p\.\s?s\..*$".to_string(),
                    m => format!(r"(?m)\s*{}.*$", regex::escape(m)),
                };
                Regex::new(&pattern).is_ok_and(|r| r.is_match(&value.to_lowercase()))
            }
            Rule::BulletLists(n) => {
                static STAR: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"(?m)^\s*\*[^\*].*$").expect("valid regex"));
                static DASH: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"(?m)^\s*-.*$").expect("valid regex"));
                STAR.find_iter(value).count() + DASH.find_iter(value).count() == *n
            }
            Rule::ConstrainedResponse => {
                let v = value.trim();
                [
                    "My answer is yes.",
                    "My answer is no.",
                    "My answer is maybe.",
                ]
                .iter()
                .any(|o| v.contains(o))
            }
            Rule::Highlights(n) => {
                static ONE: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"\*[^\n\*]*\*").expect("valid regex"));
                static TWO: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"\*\*[^\n\*]*\*\*").expect("valid regex"));
                let single = ONE
                    .find_iter(value)
                    .filter(|m| !m.as_str().trim_matches('*').trim().is_empty())
                    .count();
                let double = TWO
                    .find_iter(value)
                    .filter(|m| {
                        let s = m.as_str();
                        !s[2..s.len() - 2].trim().is_empty()
                    })
                    .count();
                single + double >= *n
            }
            Rule::Sections { splitter, n } => {
                let pattern = format!(r"\s?{}\s?\d+\s?", regex::escape(splitter));
                Regex::new(&pattern).is_ok_and(|r| r.split(value).count() > *n)
            }
            Rule::Json => {
                let v = value.trim();
                let v = ["```json", "```Json", "```JSON", "```"]
                    .iter()
                    .fold(v, |acc, p| acc.strip_prefix(p).unwrap_or(acc));
                let v = v.strip_suffix("```").unwrap_or(v).trim();
                serde_json::from_str::<Value>(v).is_ok()
            }
            Rule::Title => {
                static TITLE: LazyLock<Regex> =
                    LazyLock::new(|| Regex::new(r"<<[^\n]+>>").expect("valid regex"));
                TITLE.find_iter(value).any(|m| {
                    !m.as_str()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .trim()
                        .is_empty()
                })
            }
            Rule::TwoResponses => {
                let parts: Vec<&str> = value.split("******").collect();
                let last = parts.len() - 1;
                let mut valid = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if p.trim().is_empty() {
                        if i != 0 && i != last {
                            return false;
                        }
                    } else {
                        valid.push(p.trim());
                    }
                }
                valid.len() == 2 && valid[0] != valid[1]
            }
            Rule::RepeatPrompt(p) => value
                .trim()
                .to_lowercase()
                .starts_with(&p.trim().to_lowercase()),
            Rule::EndChecker(phrase) => {
                let v = value.trim().trim_matches('"').to_lowercase();
                v.ends_with(&phrase.trim().to_lowercase())
            }
            Rule::Quotation => {
                let v = value.trim();
                v.chars().count() > 1 && v.starts_with('"') && v.ends_with('"')
            }
            Rule::CapitalWords { n, rel } => {
                let count = WORD
                    .find_iter(value)
                    .filter(|w| py_isupper(w.as_str()))
                    .count();
                rel.holds(count, *n)
            }
            Rule::EnglishCapital => py_isupper(value) && language_matches(value, "en"),
            Rule::EnglishLowercase => py_islower(value) && language_matches(value, "en"),
            Rule::NoComma => !value.contains(','),
        }
    }
}

fn case_insensitive(pattern: &str) -> Option<Regex> {
    Regex::new(&format!("(?i){pattern}")).ok()
}

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\w+").expect("valid regex"));

/// Words as IFEval counts them (`nltk` `RegexpTokenizer(r"\w+")`); Korean eojeol count as words.
pub fn count_words(text: &str) -> usize {
    WORD.find_iter(text).count()
}

fn is_cased(c: char) -> bool {
    c.is_uppercase() || c.is_lowercase()
}

/// Python's `str.isupper`: some cased character and none lowercase.
fn py_isupper(s: &str) -> bool {
    s.chars().any(is_cased) && !s.chars().any(char::is_lowercase)
}

/// Python's `str.islower`.
fn py_islower(s: &str) -> bool {
    s.chars().any(is_cased) && !s.chars().any(char::is_uppercase)
}

/// IFEval's sentence splitter (`instructions_util.split_into_sentences`), ported: protects
/// abbreviations, acronyms, decimals and web addresses, then splits after `.`, `?` and `!`.
pub fn split_into_sentences(text: &str) -> Vec<String> {
    static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        let alpha = "([A-Za-z])";
        let prefixes = "(Mr|St|Mrs|Ms|Dr)[.]";
        let suffixes = "(Inc|Ltd|Jr|Sr|Co)";
        let starters = r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s|This\s|Wherever)";
        let acronyms = "([A-Z][.][A-Z][.](?:[A-Z][.])?)";
        let websites = "[.](com|net|org|io|gov|edu|me)";
        let digits = "([0-9])";
        let r = |p: String| Regex::new(&p).expect("valid regex");
        vec![
            (r(prefixes.to_string()), "${1}<prd>"),
            (r(websites.to_string()), "<prd>${1}"),
            (r(format!("{digits}[.]{digits}")), "${1}<prd>${2}"),
        ]
        .into_iter()
        .chain([(r(format!(r"\s{alpha}[.] ")), " ${1}<prd> ")])
        .chain([(r(format!("{acronyms} {starters}")), "${1}<stop> ${2}")])
        .chain([(
            r(format!("{alpha}[.]{alpha}[.]{alpha}[.]")),
            "${1}<prd>${2}<prd>${3}<prd>",
        )])
        .chain([(r(format!("{alpha}[.]{alpha}[.]")), "${1}<prd>${2}<prd>")])
        .chain([(r(format!(" {suffixes}[.] {starters}")), " ${1}<stop> ${2}")])
        .chain([(r(format!(" {suffixes}[.]")), " ${1}<prd>")])
        .chain([(r(format!(" {alpha}[.]")), " ${1}<prd>")])
        .collect()
    });
    static DOTS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\.{2,}").expect("valid regex"));
    let mut t = format!(" {text}  ").replace('\n', " ");
    let apply = |t: &str, i: usize| RULES[i].0.replace_all(t, RULES[i].1).into_owned();
    for i in 0..3 {
        t = apply(&t, i);
    }
    t = DOTS
        .replace_all(&t, |c: &regex::Captures| {
            format!("{}<stop>", "<prd>".repeat(c[0].len()))
        })
        .into_owned();
    t = t.replace("Ph.D.", "Ph<prd>D<prd>");
    for i in 3..RULES.len() {
        t = apply(&t, i);
    }
    t = t
        .replace(".\u{201D}", "\u{201D}.")
        .replace(".\"", "\".")
        .replace("!\"", "\"!")
        .replace("?\"", "\"?");
    t = t
        .replace('.', ".<stop>")
        .replace('?', "?<stop>")
        .replace('!', "!<stop>")
        .replace("<prd>", ".");
    let mut sentences: Vec<String> = t.split("<stop>").map(|s| s.trim().to_string()).collect();
    if sentences.last().is_some_and(String::is_empty) {
        sentences.pop();
    }
    sentences
}

// ------------------------------------------------------------------ language identification

/// Writing systems used to tell languages apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    Latin,
    Hangul,
    Kana,
    Han,
    Cyrillic,
    Greek,
    Arabic,
    Hebrew,
    Devanagari,
    Bengali,
    Gurmukhi,
    Gujarati,
    Tamil,
    Telugu,
    Kannada,
    Malayalam,
    Thai,
}

fn script_of(c: char) -> Option<Script> {
    let u = c as u32;
    Some(match u {
        _ if c.is_ascii_alphabetic() => Script::Latin,
        0x00C0..=0x024F | 0x1E00..=0x1EFF => Script::Latin,
        0xAC00..=0xD7A3 | 0x1100..=0x11FF | 0x3130..=0x318F => Script::Hangul,
        0x3040..=0x30FF => Script::Kana,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF => Script::Han,
        0x0400..=0x04FF => Script::Cyrillic,
        0x0370..=0x03FF => Script::Greek,
        0x0600..=0x06FF | 0x0750..=0x077F => Script::Arabic,
        0x0590..=0x05FF => Script::Hebrew,
        0x0900..=0x097F => Script::Devanagari,
        0x0980..=0x09FF => Script::Bengali,
        0x0A00..=0x0A7F => Script::Gurmukhi,
        0x0A80..=0x0AFF => Script::Gujarati,
        0x0B80..=0x0BFF => Script::Tamil,
        0x0C00..=0x0C7F => Script::Telugu,
        0x0C80..=0x0CFF => Script::Kannada,
        0x0D00..=0x0D7F => Script::Malayalam,
        0x0E00..=0x0E7F => Script::Thai,
        _ => return None,
    })
}

/// The script of most letters of `text` (Japanese: kana or Han with any kana).
pub fn dominant_script(text: &str) -> Option<Script> {
    let mut counts: Vec<(Script, usize)> = Vec::new();
    for s in text.chars().filter_map(script_of) {
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    let kana = counts.iter().any(|(s, n)| *s == Script::Kana && *n > 0);
    if kana {
        for (s, _) in counts.iter_mut() {
            if *s == Script::Han {
                *s = Script::Kana;
            }
        }
        let total: usize = counts
            .iter()
            .filter(|(s, _)| *s == Script::Kana)
            .map(|(_, n)| n)
            .sum();
        counts.retain(|(s, _)| *s != Script::Kana);
        counts.push((Script::Kana, total));
    }
    counts.into_iter().max_by_key(|&(_, n)| n).map(|(s, _)| s)
}

fn script_for_language(code: &str) -> Option<Script> {
    Some(match code {
        "ko" => Script::Hangul,
        "ja" => Script::Kana,
        "zh" | "zh-cn" | "zh-tw" => Script::Han,
        "ru" | "uk" | "bg" | "sr" | "mk" | "be" | "kk" => Script::Cyrillic,
        "el" => Script::Greek,
        "ar" | "fa" | "ur" => Script::Arabic,
        "he" => Script::Hebrew,
        "hi" | "mr" | "ne" => Script::Devanagari,
        "bn" => Script::Bengali,
        "pa" => Script::Gurmukhi,
        "gu" => Script::Gujarati,
        "ta" => Script::Tamil,
        "te" => Script::Telugu,
        "kn" => Script::Kannada,
        "ml" => Script::Malayalam,
        "th" => Script::Thai,
        _ => Script::Latin,
    })
}

/// Function words of Latin-script languages, for a vote among them.
const FUNCTION_WORDS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "and", "is", "of", "to", "in", "that", "it", "you", "with", "for", "this",
            "are", "was", "be",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "und", "das", "ist", "nicht", "ich", "mit", "den", "zu", "ein", "eine",
            "auf", "sie",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "et", "est", "des", "une", "un", "que", "pour", "dans", "pas",
            "vous", "du",
        ],
    ),
    (
        "es",
        &[
            "el", "los", "las", "que", "es", "y", "una", "por", "para", "con", "del", "se", "como",
            "muy",
        ],
    ),
    (
        "it",
        &[
            "il", "che", "di", "e", "non", "per", "una", "sono", "gli", "della", "con", "del",
            "questo",
        ],
    ),
    (
        "pt",
        &[
            "o", "os", "que", "não", "uma", "para", "com", "do", "da", "em", "é", "mais", "você",
        ],
    ),
    (
        "nl",
        &[
            "de", "het", "een", "en", "van", "ik", "niet", "dat", "is", "op", "zijn", "voor", "met",
        ],
    ),
    (
        "fi",
        &[
            "ja", "on", "ei", "se", "että", "oli", "mutta", "kun", "hän", "tämä", "ovat", "myös",
        ],
    ),
    (
        "sw",
        &[
            "na", "ya", "wa", "kwa", "ni", "za", "katika", "la", "kuwa", "hii", "cha", "hiyo",
        ],
    ),
    (
        "vi",
        &[
            "và", "của", "là", "có", "không", "các", "những", "một", "được", "cho", "này", "người",
        ],
    ),
    (
        "id",
        &[
            "yang", "dan", "di", "itu", "dengan", "untuk", "tidak", "ini", "dari", "dalam", "akan",
            "ada",
        ],
    ),
    (
        "tr",
        &[
            "ve", "bir", "bu", "da", "de", "için", "ile", "çok", "ne", "daha", "olarak", "gibi",
        ],
    ),
    (
        "pl",
        &[
            "i", "w", "nie", "się", "na", "jest", "że", "z", "do", "to", "jak", "ale",
        ],
    ),
];

fn latin_vote(text: &str) -> Option<&'static str> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = WORD.find_iter(&lower).map(|m| m.as_str()).collect();
    let mut best: Option<(&str, usize)> = None;
    let mut tie = false;
    for (code, list) in FUNCTION_WORDS {
        let hits = words.iter().filter(|w| list.contains(w)).count();
        match best {
            Some((_, b)) if hits == b => tie = true,
            Some((_, b)) if hits < b => {}
            _ => {
                best = Some((code, hits));
                tie = false;
            }
        }
    }
    match best {
        Some((code, n)) if n > 0 && !tie => Some(code),
        _ => None,
    }
}

/// Whether `text` is written in the language `code` (ISO 639-1, as IFEval's kwargs): the
/// dominant script must be the language's script; among Latin-script languages the
/// function-word vote must name the language (or, for languages without a word list, must not
/// name English). Languages sharing another script (ar/fa/ur, hi/mr/ne, ru/uk/bg) are told
/// apart by script only.
pub fn language_matches(text: &str, code: &str) -> bool {
    let code = code.to_ascii_lowercase();
    let Some(want) = script_for_language(&code) else {
        return false;
    };
    if dominant_script(text) != Some(want) {
        return false;
    }
    if want != Script::Latin {
        return true;
    }
    let vote = latin_vote(text);
    if FUNCTION_WORDS.iter().any(|(c, _)| *c == code) {
        vote == Some(code.as_str()) || (vote.is_none() && code == "en")
    } else {
        vote != Some("en")
    }
}
