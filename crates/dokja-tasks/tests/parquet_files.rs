//! Parquet in the Hugging Face layout (list column of choices, Snappy), written by the
//! `parquet` crate's own writer, read back through a shipped task.
#![cfg(feature = "parquet")]

use std::fs::File;
use std::sync::Arc;

use dokja_tasks::items::Target;
use dokja_tasks::read_records;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

const SCHEMA: &str = "
message schema {
  REQUIRED BYTE_ARRAY question (UTF8);
  REQUIRED BYTE_ARRAY subject (UTF8);
  OPTIONAL group choices (LIST) {
    REPEATED group list {
      OPTIONAL BYTE_ARRAY element (UTF8);
    }
  }
  REQUIRED INT64 answer;
}";

/// Writes rows (question, subject, choices, answer) as cais/mmlu's parquet layout.
fn write_mmlu(path: &std::path::Path, rows: &[(&str, &str, &[&str], i64)]) {
    let schema = Arc::new(parse_message_type(SCHEMA).unwrap());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let questions: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.0)).collect();
    let subjects: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.1)).collect();
    for values in [questions, subjects] {
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(&values, None, None)
            .unwrap();
        col.close().unwrap();
    }
    let mut values = Vec::new();
    let (mut def, mut rep) = (Vec::new(), Vec::new());
    for r in rows {
        for (i, c) in r.2.iter().enumerate() {
            values.push(ByteArray::from(*c));
            def.push(3);
            rep.push(i16::from(i > 0));
        }
    }
    let mut col = group.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(&values, Some(&def), Some(&rep))
        .unwrap();
    col.close().unwrap();
    let answers: Vec<i64> = rows.iter().map(|r| r.3).collect();
    let mut col = group.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(&answers, None, None)
        .unwrap();
    col.close().unwrap();
    group.close().unwrap();
    writer.close().unwrap();
}

#[test]
fn mmlu_parquet_layout_reads_through_the_shipped_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all/test-00000-of-00001.parquet");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_mmlu(
        &path,
        &[
            (
                "What is 2+2?",
                "elementary_mathematics",
                &["3", "4", "5", "6"],
                1,
            ),
            (
                "한국의 수도는?",
                "geography",
                &["부산", "인천", "서울", "대구"],
                2,
            ),
        ],
    );
    let records = read_records(&path, None).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[1]["choices"],
        serde_json::json!(["부산", "인천", "서울", "대구"])
    );
    let file = dokja_tasks::suites::shipped_file("mmlu").unwrap().unwrap();
    let task = &file.expand()[0];
    let items = task.load_items_from_root(dir.path()).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].group.as_deref(), Some("geography"));
    match &items[1].target {
        Target::Choice { choices, correct } => assert_eq!(choices[*correct], "서울"),
        t => panic!("{t:?}"),
    }
}

#[test]
fn corrupt_parquet_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    std::fs::write(&path, b"PAR1 this is not parquet PAR1").unwrap();
    let e = read_records(&path, None).unwrap_err().to_string();
    assert!(e.contains("bad.parquet"), "{e}");
}
