//! Parquet through the `parquet` crate's row API (no Arrow): each row becomes a JSON object,
//! lists (Hugging Face `choices`/`options` columns) become arrays. Snappy-compressed and
//! uncompressed files are read (the `datasets` library writes Snappy); other codecs are
//! reported as errors naming the file.

use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::error::{Result, TaskError};
use crate::records::{MAX_FILE_BYTES, MAX_RECORDS, Record};

pub(crate) fn read(path: &Path) -> Result<Vec<Record>> {
    let err = |location: &str, message: String| TaskError::Data {
        path: path.to_path_buf(),
        location: location.to_string(),
        message,
    };
    let file = File::open(path).map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| TaskError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(TaskError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_FILE_BYTES,
        });
    }
    let reader = SerializedFileReader::new(file).map_err(|e| err("footer", e.to_string()))?;
    let rows = reader.metadata().file_metadata().num_rows();
    if rows < 0 || rows as u64 > MAX_RECORDS as u64 {
        return Err(err("footer", format!("{rows} rows (limit {MAX_RECORDS})")));
    }
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| err("schema", e.to_string()))?;
    let mut out = Vec::with_capacity(rows as usize);
    for (i, row) in iter.enumerate() {
        let row = row.map_err(|e| err(&format!("row {i}"), e.to_string()))?;
        if out.len() >= MAX_RECORDS {
            return Err(err(
                &format!("row {i}"),
                format!("more than {MAX_RECORDS} records"),
            ));
        }
        match row.to_json_value() {
            Value::Object(map) => out.push(map),
            other => return Err(err(&format!("row {i}"), format!("not a record: {other}"))),
        }
    }
    Ok(out)
}
