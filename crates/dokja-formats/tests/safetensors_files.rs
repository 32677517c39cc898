//! safetensors reader: values, shards, and every malformed case the issue lists.

use std::path::Path;

use dokja_formats::{FormatError, Model, OpenOptions, ReadMode};

/// A safetensors file from a header JSON and raw data, with the header length as declared
/// (or the true one).
fn st_bytes(header: &str, declared_len: Option<u64>, data: &[u8]) -> Vec<u8> {
    let len = declared_len.unwrap_or(header.len() as u64);
    let mut v = len.to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn f32_bytes(vals: &[f32]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn open(p: &Path) -> Result<Model, FormatError> {
    Model::open(p, OpenOptions::default())
}

fn err_text(p: &Path) -> String {
    match open(p) {
        Ok(_) => panic!("{} opened but should have failed", p.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn reads_values_in_every_read_mode() {
    let dir = tempfile::tempdir().unwrap();
    let vals = [1.0f32, -2.5, 3.25, 0.0, 7.0, -1.0];
    let header = r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let p = write(
        dir.path(),
        "m.safetensors",
        &st_bytes(header, None, &f32_bytes(&vals)),
    );
    for mode in [ReadMode::Mmap, ReadMode::Pread] {
        let m = Model::open(&p, OpenOptions { read_mode: mode }).unwrap();
        let t = m.tensor("w").unwrap();
        assert_eq!(t.shape, vec![2, 3]);
        assert_eq!(m.read_all(t).unwrap(), vals);
        let mut rows = Vec::new();
        m.read_rows(t, 1..2, &mut rows).unwrap();
        assert_eq!(rows, &vals[3..]);
        assert_eq!(m.metadata["format"], "pt");
    }
}

#[test]
fn truncated_file_names_file_and_fault() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let full = st_bytes(header, None, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]));
    for cut in [0, 4, 7, 8, 20, full.len() - 1] {
        let p = write(dir.path(), "cut.safetensors", &full[..cut]);
        let e = err_text(&p);
        assert!(e.contains("cut.safetensors"), "{e}");
    }
}

#[test]
fn header_length_beyond_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "h.safetensors",
        &st_bytes("{}", Some(1 << 40), b""),
    );
    assert!(err_text(&p).contains("header length"));
    let p = write(
        dir.path(),
        "h2.safetensors",
        &st_bytes("{}", Some(u64::MAX), b""),
    );
    assert!(err_text(&p).contains("header length"));
}

#[test]
fn offsets_overlapping_overflowing_or_outside() {
    let dir = tempfile::tempdir().unwrap();
    let data = f32_bytes(&[0.0; 4]);
    let cases = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            "overlap",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
            "outside",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551615,18446744073709551615]}}"#,
            "overflows",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
            "before start",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}}"#,
            "overflows",
        ),
    ];
    for (i, (header, expect)) in cases.iter().enumerate() {
        let p = write(
            dir.path(),
            &format!("o{i}.safetensors"),
            &st_bytes(header, None, &data),
        );
        let e = err_text(&p);
        assert!(e.contains(expect), "case {i}: {e}");
    }
}

#[test]
fn dtype_shape_disagreeing_with_byte_count() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}}"#;
    let p = write(
        dir.path(),
        "d.safetensors",
        &st_bytes(header, None, &[0u8; 8]),
    );
    let e = err_text(&p);
    assert!(e.contains("need 6 bytes but the header gives 8"), "{e}");
}

#[test]
fn unknown_dtype_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"w":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#;
    let p = write(
        dir.path(),
        "u.safetensors",
        &st_bytes(header, None, &[0u8; 1]),
    );
    assert!(err_text(&p).contains("unknown dtype \"F4\""));
}

#[test]
fn not_json_or_not_an_object() {
    let dir = tempfile::tempdir().unwrap();
    for (i, h) in ["[1,2]", "{\"w\": 3}", "{not json", "\u{0}\u{0}"]
        .iter()
        .enumerate()
    {
        let p = write(
            dir.path(),
            &format!("j{i}.safetensors"),
            &st_bytes(h, None, b""),
        );
        let e = err_text(&p);
        assert!(e.contains(&format!("j{i}.safetensors")), "{e}");
    }
}

#[test]
fn nan_filled_tensor_is_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#;
    let p = write(
        dir.path(),
        "n.safetensors",
        &st_bytes(header, None, &f32_bytes(&[1.0, f32::NAN, 2.0])),
    );
    let m = open(&p).unwrap();
    let e = m.read_all(m.tensor("w").unwrap()).unwrap_err().to_string();
    assert!(
        e.contains("n.safetensors") && e.contains("non-finite"),
        "{e}"
    );
}

fn shard_pair(dir: &Path) {
    let h1 = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let h2 = r#"{"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
    write(
        dir,
        "model-00001-of-00002.safetensors",
        &st_bytes(h1, None, &f32_bytes(&[1.0, 2.0])),
    );
    write(
        dir,
        "model-00002-of-00002.safetensors",
        &st_bytes(h2, None, &[0x00, 0x3C, 0x00, 0xC0]),
    );
}

#[test]
fn sharded_index_and_folder() {
    let dir = tempfile::tempdir().unwrap();
    shard_pair(dir.path());
    let index = r#"{"metadata":{"total_size":12},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#;
    let idx = write(dir.path(), "model.safetensors.index.json", index.as_bytes());
    for p in [idx.as_path(), dir.path()] {
        let m = open(p).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.read_all(m.tensor("a").unwrap()).unwrap(), [1.0, 2.0]);
        assert_eq!(m.read_all(m.tensor("b").unwrap()).unwrap(), [1.0, -2.0]);
    }
}

#[test]
fn shard_index_faults() {
    let cases = [
        (
            r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"missing.safetensors"}}"#,
            "missing.safetensors, which does not exist",
        ),
        (
            r#"{"weight_map":{"a":"../../etc/passwd"}}"#,
            "not a plain file name",
        ),
        (
            r#"{"weight_map":{"a":"/etc/passwd"}}"#,
            "not a plain file name",
        ),
        (
            r#"{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#,
            "listed in the index but is in none",
        ),
        (
            r#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}}"#,
            "listed in the index but is in none",
        ),
        (r#"{"nothing":1}"#, "weight_map"),
        ("not json", "invalid JSON"),
    ];
    for (i, (index, expect)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        shard_pair(dir.path());
        let idx = write(dir.path(), "model.safetensors.index.json", index.as_bytes());
        let e = err_text(&idx);
        assert!(
            e.contains("model.safetensors.index.json") && e.contains(expect),
            "case {i}: {e}"
        );
    }
}

#[test]
fn tensor_in_wrong_shard_per_index() {
    let dir = tempfile::tempdir().unwrap();
    shard_pair(dir.path());
    let index = r#"{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00001-of-00002.safetensors"}}"#;
    let idx = write(dir.path(), "model.safetensors.index.json", index.as_bytes());
    assert!(err_text(&idx).contains("the index places it in"));
}

#[test]
fn empty_folder_and_unknown_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(err_text(dir.path()).contains("no *.safetensors"));
    let p = write(dir.path(), "notes.bin", b"hello world");
    assert!(err_text(&p).contains("notes.bin"));
    assert!(err_text(&dir.path().join("absent.safetensors")).contains("absent.safetensors"));
}

mod property {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic the reader, and a success is a model whose tensors
        /// all lie in the file.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let dir = tempfile::tempdir().unwrap();
            let p = write(dir.path(), "x.safetensors", &bytes);
            if let Ok(m) = open(&p) {
                for t in &m.tensors {
                    prop_assert!(t.offset + t.byte_len <= bytes.len() as u64);
                }
            }
        }

        /// Mutating one byte of a valid header never panics.
        #[test]
        fn mutated_header_never_panics(pos in 0usize..90, byte in any::<u8>()) {
            let header = r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#;
            let mut bytes = st_bytes(header, None, &[0u8; 24]);
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            let dir = tempfile::tempdir().unwrap();
            let p = write(dir.path(), "x.safetensors", &bytes);
            if let Ok(m) = open(&p) {
                for t in &m.tensors {
                    let _ = m.read_all(t);
                }
            }
        }
    }
}
