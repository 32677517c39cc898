//! Bad input at the command line: exit code 2 and a message naming the file and the fault.

use assert_cmd::Command;

fn dokja() -> Command {
    Command::cargo_bin("dokja").unwrap()
}

#[test]
fn missing_file_exits_2_naming_it() {
    let out = dokja()
        .args(["inspect", "/nonexistent/model.safetensors"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model.safetensors"), "{err}");
}

#[test]
fn truncated_file_exits_2_naming_the_fault() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.safetensors");
    let header = br#"{"w":{"dtype":"F32","shape":[1000],"data_offsets":[0,4000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 100]);
    std::fs::write(&p, bytes).unwrap();
    let out = dokja().arg("inspect").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut.safetensors") && err.contains("outside the data section"),
        "{err}"
    );
}

#[test]
fn usage_error_exits_2() {
    let out = dokja().args(["inspect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = dokja()
        .args(["inspect", "x", "--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
