//! Readers for the benchmark files users supply: JSONL, JSON, CSV and (with the `parquet`
//! feature) Parquet. Every reader yields the same thing: a list of records, each a JSON object
//! keyed by column name, so a task maps columns the same way whatever the file type.
//!
//! Limits: files above [`MAX_FILE_BYTES`] are refused, and so are more than [`MAX_RECORDS`]
//! records, so a hostile or mistaken file cannot make the reader allocate without bound.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, TaskError};

/// One row of a benchmark file: column name to value.
pub type Record = Map<String, Value>;

/// Largest benchmark file read (1 GiB); the largest public suites are far below it.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Most records read from one file.
pub const MAX_RECORDS: usize = 10_000_000;

/// The file types the readers understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per line.
    Jsonl,
    /// A JSON array of objects, or an object holding such an array (`{"data": [...]}`), or
    /// a column-oriented object (`{"question": {"0": ...}, ...}` as written by pandas).
    Json,
    /// Comma-separated values with a header row (RFC 4180 quoting).
    Csv,
    /// Apache Parquet (flat columns of strings, numbers, booleans and lists of strings).
    Parquet,
}

impl FileFormat {
    /// The format implied by a file name's extension (`.jsonl`/`.ndjson`, `.json`, `.csv`,
    /// `.parquet`).
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" => Some(FileFormat::Jsonl),
            "json" => Some(FileFormat::Json),
            "csv" => Some(FileFormat::Csv),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

/// Reads all records of `path`, in the format given or implied by the extension.
pub fn read_records(path: &Path, format: Option<FileFormat>) -> Result<Vec<Record>> {
    let format = match format.or_else(|| FileFormat::from_path(path)) {
        Some(f) => f,
        None => {
            return Err(TaskError::Data {
                path: path.to_path_buf(),
                location: "file name".into(),
                message: "unknown file type: expected .jsonl, .json, .csv or .parquet \
                          (or set `format` in the task's [data] section)"
                    .into(),
            });
        }
    };
    match format {
        FileFormat::Parquet => read_parquet(path),
        FileFormat::Jsonl => parse_jsonl(&read_text(path)?, path),
        FileFormat::Json => parse_json(&read_text(path)?, path),
        FileFormat::Csv => parse_csv(&read_text(path)?, path),
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let io = |source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(TaskError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    fs::read(path).map_err(io)
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = read_bytes(path)?;
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&bytes)
        .to_vec();
    String::from_utf8(bytes).map_err(|e| TaskError::Data {
        path: path.to_path_buf(),
        location: format!("byte {}", e.utf8_error().valid_up_to()),
        message: "not valid UTF-8".into(),
    })
}

fn data_error(path: &Path, location: String, message: impl Into<String>) -> TaskError {
    TaskError::Data {
        path: path.to_path_buf(),
        location,
        message: message.into(),
    }
}

fn check_count(path: &Path, n: usize) -> Result<()> {
    if n >= MAX_RECORDS {
        return Err(data_error(
            path,
            format!("record {n}"),
            format!("more than {MAX_RECORDS} records"),
        ));
    }
    Ok(())
}

/// Parses JSON Lines text; blank lines are skipped, every other line must be a JSON object.
pub fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        check_count(path, out.len())?;
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => out.push(map),
            Ok(_) => {
                return Err(data_error(
                    path,
                    format!("line {}", i + 1),
                    "expected a JSON object",
                ));
            }
            Err(e) => return Err(data_error(path, format!("line {}", i + 1), e.to_string())),
        }
    }
    Ok(out)
}

/// Parses a JSON file: an array of objects, an object with one array-of-objects member
/// (`{"data": [...]}`, `{"test": [...]}`), or pandas' column-oriented object.
pub fn parse_json(text: &str, path: &Path) -> Result<Vec<Record>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        data_error(
            path,
            format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    records_from_json_value(value, path)
}

fn records_from_json_value(value: Value, path: &Path) -> Result<Vec<Record>> {
    match value {
        Value::Array(rows) => array_of_objects(rows, path, "top-level array"),
        Value::Object(map) => {
            let arrays: Vec<&String> = map
                .iter()
                .filter(|(_, v)| matches!(v, Value::Array(a) if a.iter().all(Value::is_object)))
                .map(|(k, _)| k)
                .collect();
            if arrays.len() == 1 && map.len() <= 3 {
                let key = arrays[0].clone();
                let mut map = map;
                let Some(Value::Array(rows)) = map.remove(&key) else {
                    unreachable!("key was found holding an array")
                };
                return array_of_objects(rows, path, &format!("member \"{key}\""));
            }
            if !map.is_empty() && map.values().all(Value::is_object) {
                return columns_to_records(map, path);
            }
            Err(data_error(
                path,
                "top level".into(),
                "expected an array of objects, an object holding one such array, or \
                 column-oriented objects",
            ))
        }
        _ => Err(data_error(
            path,
            "top level".into(),
            "expected a JSON array or object",
        )),
    }
}

fn array_of_objects(rows: Vec<Value>, path: &Path, what: &str) -> Result<Vec<Record>> {
    check_count(path, rows.len())?;
    rows.into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Ok(m),
            _ => Err(data_error(
                path,
                format!("{what}, element {i}"),
                "expected a JSON object",
            )),
        })
        .collect()
}

/// pandas `to_json(orient="columns")`: `{"col": {"0": v, "1": v}, ...}`.
fn columns_to_records(map: Map<String, Value>, path: &Path) -> Result<Vec<Record>> {
    let mut row_keys: Vec<String> = Vec::new();
    if let Some(Value::Object(first)) = map.values().next() {
        row_keys = first.keys().cloned().collect();
    }
    check_count(path, row_keys.len())?;
    let mut out = Vec::with_capacity(row_keys.len());
    for key in &row_keys {
        let mut rec = Record::new();
        for (col, cells) in &map {
            let cell = cells.get(key).cloned().ok_or_else(|| {
                data_error(
                    path,
                    format!("column \"{col}\""),
                    format!("row \"{key}\" missing"),
                )
            })?;
            rec.insert(col.clone(), cell);
        }
        out.push(rec);
    }
    Ok(out)
}

/// Parses CSV with a header row (RFC 4180: fields may be quoted with `"`, quotes doubled
/// inside; quoted fields may span lines). All values are strings; a row with fewer fields
/// than the header is an error, as is an unterminated quote.
pub fn parse_csv(text: &str, path: &Path) -> Result<Vec<Record>> {
    let rows = split_csv(text, path)?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (line, row) in rows {
        if row.len() != header.len() {
            return Err(data_error(
                path,
                format!("line {line}"),
                format!("{} fields, header has {}", row.len(), header.len()),
            ));
        }
        check_count(path, out.len())?;
        let rec = header
            .iter()
            .cloned()
            .zip(row.into_iter().map(Value::String))
            .collect();
        out.push(rec);
    }
    Ok(out)
}

/// Splits CSV text into rows of fields, each row tagged with the line it starts on.
fn split_csv(text: &str, path: &Path) -> Result<Vec<(usize, Vec<String>)>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1usize;
    let mut row_line = 1usize;
    let mut quote_line = 0usize;
    let mut chars = text.chars().peekable();
    let mut at_field_start = true;
    // A quoted empty field is a value; an empty unquoted line is no row at all.
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                in_quotes = true;
                quoted = true;
                quote_line = line;
                at_field_start = false;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                at_field_start = true;
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                if row.is_empty() && field.is_empty() && !quoted {
                    line += 1;
                    row_line = line;
                    continue;
                }
                row.push(std::mem::take(&mut field));
                rows.push((row_line, std::mem::take(&mut row)));
                quoted = false;
                line += 1;
                row_line = line;
                at_field_start = true;
            }
            _ => {
                field.push(c);
                at_field_start = false;
            }
        }
    }
    if in_quotes {
        return Err(data_error(
            path,
            format!("line {quote_line}"),
            "quoted field never closed",
        ));
    }
    if !field.is_empty() || !row.is_empty() || quoted {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

#[cfg(not(feature = "parquet"))]
fn read_parquet(path: &Path) -> Result<Vec<Record>> {
    Err(data_error(
        path,
        "file type".into(),
        "Parquet support is not compiled in (enable the `parquet` feature of dokja-tasks)",
    ))
}

#[cfg(feature = "parquet")]
fn read_parquet(path: &Path) -> Result<Vec<Record>> {
    crate::parquet_reader::read(path)
}
