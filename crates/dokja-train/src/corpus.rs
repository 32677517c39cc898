//! Training text from the public benchmark files in `shared/data/benchmarks` (real natural
//! language, English and Korean). Read in place, never copied into the repository.
//!
//! Each item becomes one document (question, context, choices, answer text), documents are
//! separated by a blank line, and files are read in a fixed order so the bytes are stable.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Result, TrainError};

/// The corpora. `English` and `Korean` share no source; neither do `Gsm8k` and `Mmlu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CorpusName {
    /// GSM8K test questions with worked answers (grade-school math, English).
    Gsm8k,
    /// MMLU test questions with their four choices (57 subjects, English).
    Mmlu,
    /// `Gsm8k` followed by `Mmlu`.
    English,
    /// CLIcK (Korean culture and language) and KMMLU criminal law, Korean.
    Korean,
}

impl CorpusName {
    pub fn label(self) -> &'static str {
        match self {
            CorpusName::Gsm8k => "gsm8k",
            CorpusName::Mmlu => "mmlu",
            CorpusName::English => "english",
            CorpusName::Korean => "korean",
        }
    }
}

/// Where the benchmark files are: `$DOKJA_BENCHMARKS` if set, else `shared/data/benchmarks`
/// beside the workspace (the layout of the project's machines and CI).
pub fn benchmarks_dir() -> PathBuf {
    match std::env::var_os("DOKJA_BENCHMARKS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/benchmarks"),
    }
}

/// The corpus `name` from [`benchmarks_dir`].
pub fn corpus(name: CorpusName) -> Result<Vec<u8>> {
    corpus_in(&benchmarks_dir(), name)
}

/// The corpus `name` from the benchmark folder `dir`.
pub fn corpus_in(dir: &Path, name: CorpusName) -> Result<Vec<u8>> {
    if !dir.is_dir() {
        return Err(TrainError::MissingData {
            path: dir.to_path_buf(),
            hint: "expected the shared benchmark folder (gsm8k/, mmlu/, click/, kmmlu/); \
                   set DOKJA_BENCHMARKS to its path"
                .into(),
        });
    }
    let mut out = Vec::new();
    match name {
        CorpusName::Gsm8k => gsm8k(dir, &mut out)?,
        CorpusName::Mmlu => mmlu(dir, &mut out)?,
        CorpusName::English => {
            gsm8k(dir, &mut out)?;
            mmlu(dir, &mut out)?;
        }
        CorpusName::Korean => {
            click(dir, &mut out)?;
            kmmlu(dir, &mut out)?;
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<String> {
    if !path.exists() {
        return Err(TrainError::MissingData {
            path: path.to_path_buf(),
            hint: "benchmark file missing (see shared/data/benchmarks/SOURCES.md)".into(),
        });
    }
    fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| TrainError::Parse {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("").trim()
}

/// Appends one document: its non-empty parts, one per line, then a blank line.
fn push_doc<'a>(out: &mut Vec<u8>, parts: impl IntoIterator<Item = &'a str>) {
    let mut any = false;
    for p in parts.into_iter().filter(|p| !p.is_empty()) {
        out.extend_from_slice(p.as_bytes());
        out.push(b'\n');
        any = true;
    }
    if any {
        out.push(b'\n');
    }
}

/// JSON Lines; lines that are not objects with a question (MMLU's stray header rows) are
/// skipped.
fn jsonl(path: &Path, mut each: impl FnMut(&Value)) -> Result<()> {
    let text = read(path)?;
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let q = str_field(&v, "question");
        if q.is_empty() || q == "question" {
            continue;
        }
        each(&v);
        n += 1;
    }
    if n == 0 {
        return Err(TrainError::Parse {
            path: path.to_path_buf(),
            msg: "no items with a question".into(),
        });
    }
    Ok(())
}

fn gsm8k(dir: &Path, out: &mut Vec<u8>) -> Result<()> {
    jsonl(&dir.join("gsm8k/test.jsonl"), |v| {
        push_doc(out, [str_field(v, "question"), str_field(v, "answer")])
    })
}

fn mmlu(dir: &Path, out: &mut Vec<u8>) -> Result<()> {
    jsonl(&dir.join("mmlu/test.jsonl"), |v| {
        push_doc(
            out,
            ["question", "answer_a", "answer_b", "answer_c", "answer_d"].map(|k| str_field(v, k)),
        )
    })
}

/// CLIcK: JSON arrays of `{paragraph, question, choices[]}` in nested folders.
fn click(dir: &Path, out: &mut Vec<u8>) -> Result<()> {
    let root = dir.join("click/Dataset");
    let mut files = Vec::new();
    collect_json(&root, &mut files)?;
    if files.is_empty() {
        return Err(TrainError::MissingData {
            path: root,
            hint: "no CLIcK .json files".into(),
        });
    }
    files.sort(); // directory order is not stable across file systems
    for path in files {
        let v = parse(&path, &read(&path)?)?;
        for item in v.as_array().into_iter().flatten() {
            let choices = item.get("choices").and_then(Value::as_array);
            let choices = choices.into_iter().flatten().filter_map(Value::as_str);
            push_doc(
                out,
                [str_field(item, "paragraph"), str_field(item, "question")]
                    .into_iter()
                    .chain(choices.map(str::trim)),
            );
        }
    }
    Ok(())
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_json(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
    Ok(())
}

fn kmmlu(dir: &Path, out: &mut Vec<u8>) -> Result<()> {
    let path = dir.join("kmmlu/criminal_law_test.json");
    let v = parse(&path, &read(&path)?)?;
    for item in v.as_array().into_iter().flatten() {
        push_doc(
            out,
            ["question", "A", "B", "C", "D"].map(|k| str_field(item, k)),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_folder_is_a_clear_error() {
        let err = corpus_in(Path::new("/nonexistent/benchmarks"), CorpusName::Korean).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/benchmarks"), "{msg}");
        assert!(msg.contains("DOKJA_BENCHMARKS"), "{msg}");
    }

    #[test]
    fn corpora_are_real_text_and_disjoint() {
        let dir = benchmarks_dir();
        let en = corpus_in(&dir, CorpusName::English).expect("English corpus");
        let ko = corpus_in(&dir, CorpusName::Korean).expect("Korean corpus");
        assert!(en.len() > 1_000_000, "English: {} bytes", en.len());
        assert!(ko.len() > 300_000, "Korean: {} bytes", ko.len());
        let en = String::from_utf8(en).unwrap();
        let ko = String::from_utf8(ko).unwrap();
        assert!(en.contains("Janet"));
        // Mostly Hangul: the Korean corpus is not English under another name.
        let hangul = ko
            .chars()
            .filter(|c| ('\u{AC00}'..='\u{D7A3}').contains(c))
            .count();
        assert!(hangul * 3 > ko.chars().count(), "{hangul} Hangul chars");
        let doc = ko.split("\n\n").nth(10).unwrap();
        assert!(!en.contains(doc));
    }
}
