//! `dokja registry` end to end on a real registry folder: the JSON contract, exit codes and
//! error messages.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn dokja(registry: &Path) -> Command {
    let mut cmd = Command::cargo_bin("dokja").unwrap();
    cmd.env_remove("DOKJA_REGISTRY")
        .arg("registry")
        .arg("--registry")
        .arg(registry);
    cmd
}

fn json(cmd: &mut Command) -> Value {
    let out = cmd.args(["--format", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fails with exit code `code`; returns stderr.
fn fails(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    err
}

/// A real fingerprint, made by `dokja fingerprint`, of a small synthetic model whose weights
/// depend on `payload` (different payloads, different models).
fn write_fingerprint(dir: &Path, name: &str, payload: &[u8]) -> std::path::PathBuf {
    let seed = payload
        .iter()
        .fold(7u64, |h, &b| h.wrapping_mul(31).wrapping_add(b as u64));
    let model_dir = dir.join(format!("model-{name}"));
    let m = dokja_testkit::llama_like(&dokja_testkit::LlamaSpec::default(), seed);
    dokja_testkit::write_hf_folder(
        &m,
        &model_dir,
        dokja_testkit::WeightsLayout::Single,
        dokja_testkit::StDtype::F32,
    )
    .unwrap();
    let path = dir.join(name);
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .args(["fingerprint", "--quiet", "-o"])
        .arg(&path)
        .arg(&model_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn add_args<'a>(file: &'a Path, name: &'a str) -> Vec<&'a std::ffi::OsStr> {
    let mut v: Vec<&std::ffi::OsStr> = vec!["add".as_ref(), file.as_os_str()];
    for s in [
        "--name",
        name,
        "--org",
        "Example Labs",
        "--origin-country",
        "FR",
        "--licence",
        "apache-2.0",
        "--released",
        "2025-03-14",
    ] {
        v.push(s.as_ref());
    }
    v
}

#[test]
fn add_list_show_remove_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let a = write_fingerprint(tmp.path(), "a.dfp", b"alpha");
    let b = write_fingerprint(tmp.path(), "b.dfp", b"beta");

    let added = json(dokja(&reg).args(add_args(&a, "alpha")));
    assert_eq!(added["outcome"], "added");
    let id = added["entry"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(added["entry"]["origin_country"], "FR");
    let again = json(dokja(&reg).args(add_args(&a, "alpha")));
    assert_eq!(again["outcome"], "already_present");
    json(dokja(&reg).args(add_args(&b, "beta")));

    let list = json(dokja(&reg).arg("list"));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);

    let shown = json(dokja(&reg).args(["show", &id[..10]]));
    assert_eq!(shown["name"], "alpha");
    assert_eq!(shown["file"]["state"], "present");
    let text = dokja(&reg).args(["show", "alpha"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains(&id));

    let verified = json(dokja(&reg).arg("verify"));
    assert_eq!(verified["entries"], 2);
    assert_eq!(verified["problems"], Value::Array(vec![]));

    let removed = json(dokja(&reg).args(["remove", "alpha"]));
    assert_eq!(removed["removed"]["id"], id.as_str());
    let list = json(dokja(&reg).arg("list"));
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The registry folder also comes from DOKJA_REGISTRY.
    let out = Command::cargo_bin("dokja")
        .unwrap()
        .env("DOKJA_REGISTRY", &reg)
        .args(["registry", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "beta");
}

#[test]
fn bad_input_exits_2_naming_the_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");

    let err = fails(dokja(&reg).arg("list"), 2);
    assert!(
        err.contains("reg") && err.contains("no such directory"),
        "{err}"
    );

    let junk = tmp.path().join("model.gguf");
    std::fs::write(&junk, b"GGUF\x03\0\0\0").unwrap();
    let err = fails(dokja(&reg).args(add_args(&junk, "junk")), 2);
    assert!(
        err.contains("model.gguf") && err.contains("not a dokja fingerprint"),
        "{err}"
    );

    let a = write_fingerprint(tmp.path(), "a.dfp", b"alpha");
    let mut bad_date = add_args(&a, "alpha");
    let last = bad_date.len() - 1;
    bad_date[last] = "2025-02-30".as_ref();
    let err = fails(dokja(&reg).args(bad_date), 2);
    assert!(
        err.contains("released") && err.contains("2025-02-30"),
        "{err}"
    );

    json(dokja(&reg).args(add_args(&a, "alpha")));
    let err = fails(dokja(&reg).args(["show", "nothing-like-it"]), 2);
    assert!(err.contains("nothing-like-it"), "{err}");
    fails(dokja(&reg).args(["add"]), 2);

    // A damaged store: verify exits 1 and names the entry and the file.
    let shown = json(dokja(&reg).args(["show", "alpha"]));
    let stored = reg
        .join("fingerprints")
        .join(format!("{}.dfp", shown["id"].as_str().unwrap()));
    let mut damaged = std::fs::read(&stored).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    std::fs::write(&stored, damaged).unwrap();
    let out = dokja(&reg).arg("verify").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("registry entry alpha") && text.contains("digest mismatch"),
        "{text}"
    );

    // A foreign database is refused.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("registry.sqlite"), b"not sqlite").unwrap();
    let err = fails(dokja(&foreign).args(add_args(&a, "alpha")), 2);
    assert!(err.contains("not a dokja registry database"), "{err}");
    assert_eq!(
        std::fs::read(foreign.join("registry.sqlite")).unwrap(),
        b"not sqlite"
    );
}
