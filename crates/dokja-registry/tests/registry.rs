//! The registry on real SQLite files in temporary folders: round trips, duplicates, refused
//! and damaged files, foreign databases, read-only use, processes killed halfway, and random
//! operation sequences against an in-memory model.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dokja_registry::{
    AddOptions, AddOutcome, AddStage, EntryMeta, FileState, FingerprintCodec, FingerprintSummary,
    ProblemKind, Registry, RegistryError,
};

/// Test fingerprints: `TESTFP1\n` followed by the summary as JSON.
struct TestCodec;

const MAGIC: &[u8] = b"TESTFP1\n";

impl FingerprintCodec for TestCodec {
    fn inspect(&self, bytes: &[u8]) -> Result<FingerprintSummary, String> {
        let body = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| "missing TESTFP1 magic".to_string())?;
        serde_json::from_slice(body).map_err(|e| format!("bad summary: {e}"))
    }
}

fn summary(model: &str, parameters: u64) -> FingerprintSummary {
    FingerprintSummary {
        format_version: 1,
        model: model.to_string(),
        family: "llama".to_string(),
        parameters,
        components: vec!["language_model".into(), "tokenizer".into()],
    }
}

fn fingerprint_bytes(s: &FingerprintSummary) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend(serde_json::to_vec(s).unwrap());
    b
}

/// Writes a fingerprint file for `model` in `dir` and returns its path.
fn write_fingerprint(dir: &Path, model: &str, parameters: u64) -> PathBuf {
    let path = dir.join(format!("{model}-{parameters}.fp"));
    fs::write(&path, fingerprint_bytes(&summary(model, parameters))).unwrap();
    path
}

fn meta(name: &str) -> EntryMeta {
    EntryMeta {
        name: name.to_string(),
        org: "Example Labs".to_string(),
        origin_country: "FR".to_string(),
        licence: "apache-2.0".to_string(),
        released: "2025-03-14".to_string(),
    }
}

fn add(reg: &mut Registry, path: &Path, m: EntryMeta) -> Result<AddOutcome, RegistryError> {
    reg.add(path, m, &TestCodec, &AddOptions::default())
}

/// Every file under `dir` with its bytes, to show an operation changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for item in fs::read_dir(&d).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

struct Fixture {
    _tmp: tempfile::TempDir,
    inputs: PathBuf,
    reg_dir: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs");
    fs::create_dir(&inputs).unwrap();
    let reg_dir = tmp.path().join("reg");
    Fixture {
        _tmp: tmp,
        inputs,
        reg_dir,
    }
}

#[test]
fn add_list_show_remove_round_trip() {
    let f = fixture();
    let a = write_fingerprint(&f.inputs, "alpha", 135_000_000);
    let b = write_fingerprint(&f.inputs, "beta", 270_000_000);
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let added_b = match add(&mut reg, &b, meta("beta-base")).unwrap() {
        AddOutcome::Added(e) => e,
        other => panic!("{other:?}"),
    };
    let added_a = add(&mut reg, &a, meta("alpha-instruct")).unwrap();
    let added_a = added_a.entry().clone();
    assert_eq!(
        added_a.id,
        blake3::hash(&fs::read(&a).unwrap()).to_hex().as_str()
    );
    assert_eq!(added_a.summary, summary("alpha", 135_000_000));
    assert_eq!(added_a.bytes, fs::metadata(&a).unwrap().len());
    drop(reg);

    let mut reg = Registry::open(&f.reg_dir).unwrap();
    let listed = reg.list().unwrap();
    assert_eq!(
        listed,
        vec![added_a.clone(), added_b.clone()],
        "sorted by name"
    );
    assert_eq!(reg.get("beta-base").unwrap(), added_b);
    assert_eq!(reg.get(&added_b.id).unwrap(), added_b);
    assert_eq!(reg.get(&added_b.id.to_uppercase()).unwrap(), added_b);
    assert_eq!(reg.get(&added_b.id[..8]).unwrap(), added_b);
    assert!(matches!(
        reg.get("gamma"),
        Err(RegistryError::NotFound { .. })
    ));
    assert_eq!(
        reg.fingerprint_bytes(&added_a).unwrap(),
        fs::read(&a).unwrap()
    );
    let stored = reg.fingerprint_path(&added_a.id);
    assert!(stored.starts_with(f.reg_dir.join("fingerprints")));
    assert_eq!(fs::read(&stored).unwrap(), fs::read(&a).unwrap());

    let removed = reg.remove("alpha-instruct").unwrap();
    assert_eq!(removed.entry, added_a);
    assert_eq!(removed.leftover_file, None);
    assert!(!stored.exists());
    assert_eq!(reg.list().unwrap(), vec![added_b.clone()]);
    assert!(matches!(
        reg.remove("alpha-instruct"),
        Err(RegistryError::NotFound { .. })
    ));
    let report = reg.verify(Some(&TestCodec)).unwrap();
    assert_eq!(report.entries, 1);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn adding_the_same_bytes_twice_is_idempotent_and_conflicts_are_refused() {
    let f = fixture();
    let a = write_fingerprint(&f.inputs, "alpha", 1);
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let first = add(&mut reg, &a, meta("alpha")).unwrap().entry().clone();
    // A copy elsewhere with surrounding spaces in the metadata: same bytes, same entry.
    let copy = f.inputs.join("copy.fp");
    fs::copy(&a, &copy).unwrap();
    let mut spaced = meta(" alpha ");
    spaced.org = "Example Labs ".into();
    match add(&mut reg, &copy, spaced).unwrap() {
        AddOutcome::AlreadyPresent(e) => assert_eq!(e, first),
        other => panic!("{other:?}"),
    }
    assert_eq!(reg.list().unwrap().len(), 1);

    // A codec that now reads more from the same bytes refreshes the stored summary.
    struct BetterCodec;
    impl FingerprintCodec for BetterCodec {
        fn inspect(&self, bytes: &[u8]) -> Result<FingerprintSummary, String> {
            let mut s = TestCodec.inspect(bytes)?;
            s.family = "llama-3".into();
            Ok(s)
        }
    }
    match reg
        .add(&a, meta("alpha"), &BetterCodec, &AddOptions::default())
        .unwrap()
    {
        AddOutcome::AlreadyPresent(e) => assert_eq!(e.summary.family, "llama-3"),
        other => panic!("{other:?}"),
    }
    assert_eq!(reg.get("alpha").unwrap().summary.family, "llama-3");
    let report = reg.verify(Some(&TestCodec)).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ProblemKind::SummaryMismatch);
    add(&mut reg, &a, meta("alpha")).unwrap();
    assert_eq!(reg.get("alpha").unwrap(), first);

    let mut other_meta = meta("alpha");
    other_meta.licence = "mit".into();
    let err = add(&mut reg, &a, other_meta.clone()).unwrap_err();
    assert!(
        matches!(err, RegistryError::ConflictingMetadata { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("licence"), "{err}");
    assert_eq!(reg.get("alpha").unwrap().licence, "apache-2.0");

    let replace = AddOptions {
        replace: true,
        ..AddOptions::default()
    };
    match reg.add(&a, other_meta, &TestCodec, &replace).unwrap() {
        AddOutcome::MetadataReplaced { previous, entry } => {
            assert_eq!(*previous, first);
            assert_eq!(entry.licence, "mit");
            assert_eq!(entry.added_at, first.added_at);
        }
        other => panic!("{other:?}"),
    }
    drop(reg);
    let reg = Registry::open(&f.reg_dir).unwrap();
    assert_eq!(reg.get("alpha").unwrap().licence, "mit");
    drop(reg);

    // Another fingerprint under a name already taken.
    let mut reg = Registry::open(&f.reg_dir).unwrap();
    let b = write_fingerprint(&f.inputs, "beta", 2);
    let err = add(&mut reg, &b, meta("alpha")).unwrap_err();
    assert!(matches!(err, RegistryError::NameTaken { .. }), "{err}");
    assert_eq!(reg.list().unwrap().len(), 1);
}

#[test]
fn refused_fingerprints_and_bad_metadata_change_nothing() {
    let f = fixture();
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let a = write_fingerprint(&f.inputs, "alpha", 1);
    add(&mut reg, &a, meta("alpha")).unwrap();
    let before = snapshot(&f.reg_dir);

    let junk = f.inputs.join("junk.fp");
    fs::write(&junk, b"GGUF\x03\x00\x00\x00not a fingerprint").unwrap();
    let err = add(&mut reg, &junk, meta("junk")).unwrap_err();
    assert!(
        matches!(err, RegistryError::FingerprintRefused { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("junk.fp"), "{err}");
    assert!(err.to_string().contains("missing TESTFP1 magic"), "{err}");

    let mut truncated = fs::read(&a).unwrap();
    truncated.truncate(truncated.len() - 5);
    fs::write(&junk, truncated).unwrap();
    let err = add(&mut reg, &junk, meta("junk")).unwrap_err();
    assert!(err.to_string().contains("bad summary"), "{err}");

    let b = write_fingerprint(&f.inputs, "beta", 2);
    for (field, bad) in [
        ("released", "2025-02-30"),
        ("released", "14/03/2025"),
        ("name", "  "),
        ("org", "a\nb"),
    ] {
        let mut m = meta("beta");
        match field {
            "released" => m.released = bad.into(),
            "name" => m.name = bad.into(),
            _ => m.org = bad.into(),
        }
        let err = add(&mut reg, &b, m).unwrap_err();
        assert!(
            matches!(&err, RegistryError::InvalidMeta { field: f, .. } if *f == field),
            "{err}"
        );
    }
    let err = add(&mut reg, &f.inputs.join("absent.fp"), meta("x")).unwrap_err();
    assert!(err.to_string().contains("absent.fp"), "{err}");
    let fifo = f.inputs.join("fifo.fp");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let err = add(&mut reg, &fifo, meta("x")).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let err = add(&mut reg, &f.inputs, meta("x")).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert_eq!(snapshot(&f.reg_dir), before);
}

#[test]
fn damaged_or_missing_store_files_are_reported_at_read_time() {
    let f = fixture();
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let a = write_fingerprint(&f.inputs, "alpha", 1);
    let b = write_fingerprint(&f.inputs, "beta", 2);
    let c = write_fingerprint(&f.inputs, "gamma", 3);
    let ea = add(&mut reg, &a, meta("alpha")).unwrap().entry().clone();
    let eb = add(&mut reg, &b, meta("beta")).unwrap().entry().clone();
    let ec = add(&mut reg, &c, meta("gamma")).unwrap().entry().clone();

    // alpha truncated, beta one byte flipped (same size), gamma deleted.
    let pa = reg.fingerprint_path(&ea.id);
    let bytes = fs::read(&pa).unwrap();
    fs::write(&pa, &bytes[..bytes.len() / 2]).unwrap();
    let pb = reg.fingerprint_path(&eb.id);
    let mut bytes = fs::read(&pb).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&pb, &bytes).unwrap();
    fs::remove_file(reg.fingerprint_path(&ec.id)).unwrap();

    let listed = reg.list().unwrap();
    assert!(matches!(listed[0].file, FileState::SizeMismatch { .. }));
    assert_eq!(listed[1].file, FileState::Present, "a flip keeps the size");
    assert_eq!(listed[2].file, FileState::Missing);

    let err = reg
        .fingerprint_bytes(&reg.get("alpha").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::FingerprintCorrupt { .. }),
        "{err}"
    );
    let err = reg
        .fingerprint_bytes(&reg.get("beta").unwrap())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("registry entry beta") && msg.contains("is corrupt (digest mismatch"),
        "{msg}"
    );
    assert!(msg.contains(&pb.display().to_string()), "{msg}");
    let err = reg
        .fingerprint_bytes(&reg.get("gamma").unwrap())
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::FingerprintMissing { .. }),
        "{err}"
    );

    let report = reg.verify(None).unwrap();
    let kinds: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("alpha".to_string(), ProblemKind::CorruptFile),
            ("beta".to_string(), ProblemKind::CorruptFile),
            ("gamma".to_string(), ProblemKind::MissingFile),
        ]
    );
    assert!(!report.is_healthy());

    // Adding the same bytes again restores the stored files.
    for (path, name) in [(&a, "alpha"), (&b, "beta"), (&c, "gamma")] {
        assert!(matches!(
            add(&mut reg, path, meta(name)).unwrap(),
            AddOutcome::AlreadyPresent(_)
        ));
    }
    let report = reg.verify(Some(&TestCodec)).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn foreign_or_corrupt_databases_are_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    type MakeDatabase = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, MakeDatabase)> = vec![
        (
            "not an SQLite database",
            Box::new(|p| fs::write(p, b"hello, this is a text file\n").unwrap()),
        ),
        (
            "not an SQLite database",
            Box::new(|p| fs::write(p, b"").unwrap()),
        ),
        (
            "another program",
            Box::new(|p| {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute_batch("CREATE TABLE users (id INTEGER, email TEXT); INSERT INTO users VALUES (1, 'a@b');")
                    .unwrap();
            }),
        ),
        (
            "unexpected tables",
            Box::new(|p| {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute_batch(&format!(
                    "PRAGMA application_id = {}; PRAGMA user_version = 1; CREATE TABLE users (id INTEGER);",
                    dokja_registry::APPLICATION_ID as i32
                ))
                .unwrap();
            }),
        ),
        (
            "schema version 7",
            Box::new(|p| {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute_batch(&format!(
                    "PRAGMA application_id = {}; PRAGMA user_version = 7; CREATE TABLE entries (id TEXT);",
                    dokja_registry::APPLICATION_ID as i32
                ))
                .unwrap();
            }),
        ),
    ];
    let inputs = tmp.path().join("inputs");
    fs::create_dir(&inputs).unwrap();
    let fp = write_fingerprint(&inputs, "alpha", 1);
    for (i, (expected, make)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        fs::create_dir(&dir).unwrap();
        make(&dir.join("registry.sqlite"));
        let before = snapshot(&dir);
        let attempts = [
            Registry::open(&dir).map(drop),
            Registry::open_read_only(&dir).map(drop),
            Registry::create_or_open(&dir).and_then(|mut r| add(&mut r, &fp, meta("a")).map(drop)),
        ];
        for attempt in attempts {
            let err = attempt.expect_err(expected).to_string();
            assert!(err.contains(expected), "case {i}: {err}");
            assert!(err.contains("registry.sqlite"), "case {i}: {err}");
        }
        assert_eq!(snapshot(&dir), before, "case {i}: folder changed");
    }
}

#[test]
fn missing_registries_are_clear_errors_and_open_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let absent = tmp.path().join("absent");
    let err = Registry::open(&absent).unwrap_err();
    assert!(err.to_string().contains("no such directory"), "{err}");
    assert!(!absent.exists());
    let err = Registry::open_read_only(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("no registry.sqlite"), "{err}");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn read_only_registries_read_and_refuse_every_write() {
    let f = fixture();
    let a = write_fingerprint(&f.inputs, "alpha", 1);
    let b = write_fingerprint(&f.inputs, "beta", 2);
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let ea = add(&mut reg, &a, meta("alpha")).unwrap().entry().clone();
    drop(reg);
    let before = snapshot(&f.reg_dir);

    let mut ro = Registry::open_read_only(&f.reg_dir).unwrap();
    assert!(ro.is_read_only());
    assert_eq!(ro.list().unwrap(), vec![ea.clone()]);
    assert_eq!(ro.fingerprint_bytes(&ea).unwrap(), fs::read(&a).unwrap());
    assert!(ro.verify(Some(&TestCodec)).unwrap().problems.is_empty());
    for err in [
        add(&mut ro, &b, meta("beta")).map(drop).unwrap_err(),
        ro.remove("alpha").map(drop).unwrap_err(),
        ro.gc().map(drop).unwrap_err(),
    ] {
        assert!(matches!(err, RegistryError::ReadOnly { .. }), "{err}");
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    drop(ro);
    assert_eq!(snapshot(&f.reg_dir), before);

    // Write-protected files and folders. Root ignores permissions, so this part only
    // proves something when the tests run as an ordinary user.
    set_writable(&f.reg_dir, false);
    let probe = f.reg_dir.join("probe");
    if fs::write(&probe, b"x").is_ok() {
        fs::remove_file(&probe).unwrap();
        set_writable(&f.reg_dir, true);
        eprintln!(
            "notice: running as root, chmod a-w does not stop writes; only the read-only \
             open mode was tested"
        );
        return;
    }
    let mut reg = Registry::open(&f.reg_dir).unwrap();
    assert!(reg.is_read_only());
    assert_eq!(reg.list().unwrap(), vec![ea]);
    let err = add(&mut reg, &b, meta("beta")).unwrap_err();
    assert!(matches!(err, RegistryError::ReadOnly { .. }), "{err}");
    drop(reg);
    set_writable(&f.reg_dir, true);
    assert_eq!(snapshot(&f.reg_dir), before);
}

fn set_writable(dir: &Path, writable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let mut paths = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < paths.len() {
        if paths[i].is_dir() {
            for item in fs::read_dir(&paths[i]).unwrap() {
                paths.push(item.unwrap().path());
            }
        }
        i += 1;
    }
    // Files before their folders when protecting, folders first when unprotecting.
    if !writable {
        paths.reverse();
    }
    for p in paths {
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        let mode = if writable {
            mode | 0o200
        } else {
            mode & !0o222
        };
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

// ---- processes killed halfway -------------------------------------------------------------

const CHILD_DIR: &str = "DOKJA_REGISTRY_TEST_CHILD_DIR";
const CHILD_INPUT: &str = "DOKJA_REGISTRY_TEST_CHILD_INPUT";
const CHILD_STAGE: &str = "DOKJA_REGISTRY_TEST_CHILD_STAGE";

/// Not a test of its own: the body of the child processes below, run when they set
/// `CHILD_DIR`. It adds one fingerprint and aborts at the given stage, or (stage "loop")
/// keeps adding fingerprints, printing each name once committed, until killed.
#[test]
fn child_process_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let input = PathBuf::from(std::env::var(CHILD_INPUT).unwrap());
    let stage = std::env::var(CHILD_STAGE).unwrap();
    let mut reg = Registry::create_or_open(&dir).unwrap();
    if stage == "spill" {
        // A transaction too big for a tiny page cache: SQLite syncs the journal and writes
        // into the database file before the commit, which never comes.
        let c = rusqlite::Connection::open(Path::new(&dir).join("registry.sqlite")).unwrap();
        c.execute_batch("PRAGMA cache_size = 2; BEGIN;").unwrap();
        let padding = "x".repeat(2000);
        for i in 0..300 {
            c.execute(
                "INSERT INTO entries VALUES (?1, ?2, 'o', 'c', 'l', '2025-01-01', 't', 1, ?3)",
                rusqlite::params![format!("{i:064x}"), format!("spill-{i}"), padding],
            )
            .unwrap();
        }
        std::process::abort();
    }
    if stage == "lockstep" {
        // One add per line read from stdin, until stdin closes.
        let mut line = String::new();
        for i in 0u64.. {
            line.clear();
            if std::io::stdin().read_line(&mut line).unwrap() == 0 {
                return;
            }
            let fp = write_fingerprint(&input, "shared", i);
            let name = format!("shared-{i}");
            add(&mut reg, &fp, meta(&name)).unwrap();
            println!("committed {name}");
        }
    }
    if stage == "loop" {
        for i in 0u64.. {
            let fp = write_fingerprint(&input, "looped", i);
            let name = format!("looped-{i}");
            add(&mut reg, &fp, meta(&name)).unwrap();
            println!("committed {name}");
        }
    }
    fn abort_after_file(stage: AddStage) {
        if stage == AddStage::FingerprintWritten {
            std::process::abort();
        }
    }
    fn abort_after_row(stage: AddStage) {
        if stage == AddStage::RowWritten {
            std::process::abort();
        }
    }
    let options = AddOptions {
        replace: false,
        after_stage: Some(match stage.as_str() {
            "file" => abort_after_file,
            _ => abort_after_row,
        }),
    };
    reg.add(&input, meta("interrupted"), &TestCodec, &options)
        .unwrap();
    unreachable!("the hook aborts");
}

/// Child output lines may carry libtest's `test NAME ... ` before the child's own text, so
/// the parents look for "committed NAME" anywhere in a line.
fn child(dir: &Path, input: &Path, stage: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_process_entry_point",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_DIR, dir)
    .env(CHILD_INPUT, input)
    .env(CHILD_STAGE, stage)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

#[test]
fn an_add_killed_halfway_loses_nothing() {
    for stage in ["file", "row"] {
        let f = fixture();
        let a = write_fingerprint(&f.inputs, "alpha", 1);
        let b = write_fingerprint(&f.inputs, "beta", 2);
        let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
        let ea = add(&mut reg, &a, meta("alpha")).unwrap().entry().clone();
        drop(reg);

        let status = child(&f.reg_dir, &b, stage).status().unwrap();
        assert!(!status.success(), "stage {stage}: the child should abort");
        let b_id = blake3::hash(&fs::read(&b).unwrap()).to_hex().to_string();
        let journal = f.reg_dir.join("registry.sqlite-journal");
        if stage == "row" {
            // Nothing reached the database file, so the journal SQLite left is not hot
            // (first byte zero) and readers simply ignore it.
            assert!(journal.exists(), "the abort left a journal");
            let ro = Registry::open_read_only(&f.reg_dir).unwrap();
            assert_eq!(ro.list().unwrap(), vec![ea.clone()]);
        }

        let mut reg = Registry::open(&f.reg_dir).unwrap();
        assert_eq!(reg.list().unwrap(), vec![ea.clone()], "stage {stage}");
        let report = reg.verify(Some(&TestCodec)).unwrap();
        assert!(report.is_healthy(), "stage {stage}: {:?}", report.problems);
        let orphan = reg.fingerprint_path(&b_id);
        assert_eq!(
            report
                .problems
                .iter()
                .map(|p| (p.kind, p.path.clone()))
                .collect::<Vec<_>>(),
            [(ProblemKind::OrphanFile, orphan.clone())],
            "stage {stage}"
        );
        // The orphan is reused by the next add, or deleted by gc.
        if stage == "file" {
            assert_eq!(reg.gc().unwrap(), vec![orphan.clone()]);
            assert!(!orphan.exists());
        }
        let eb = add(&mut reg, &b, meta("interrupted")).unwrap();
        assert!(matches!(eb, AddOutcome::Added(_)), "{eb:?}");
        assert_eq!(
            reg.fingerprint_bytes(eb.entry()).unwrap(),
            fs::read(&b).unwrap()
        );
        assert_eq!(reg.fingerprint_bytes(&ea).unwrap(), fs::read(&a).unwrap());
        assert!(reg.verify(None).unwrap().problems.is_empty());
        assert!(
            !journal.exists(),
            "stage {stage}: the next write cleared the journal"
        );
    }
}

#[test]
fn a_transaction_killed_after_touching_the_database_file_is_rolled_back() {
    let f = fixture();
    let a = write_fingerprint(&f.inputs, "alpha", 1);
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let ea = add(&mut reg, &a, meta("alpha")).unwrap().entry().clone();
    drop(reg);
    let before = fs::read(f.reg_dir.join("registry.sqlite")).unwrap();

    let status = child(&f.reg_dir, &a, "spill").status().unwrap();
    assert!(!status.success(), "the child should abort");
    let journal = f.reg_dir.join("registry.sqlite-journal");
    assert_ne!(fs::read(&journal).unwrap()[0], 0, "the journal is hot");
    assert_ne!(
        fs::read(f.reg_dir.join("registry.sqlite")).unwrap(),
        before,
        "the child wrote into the database file before dying"
    );

    let err = Registry::open_read_only(&f.reg_dir).unwrap_err();
    assert!(
        matches!(err, RegistryError::InterruptedWrite { .. }),
        "{err}"
    );
    let reg = Registry::open(&f.reg_dir).unwrap();
    assert_eq!(reg.list().unwrap(), vec![ea.clone()]);
    assert!(reg.verify(Some(&TestCodec)).unwrap().problems.is_empty());
    drop(reg);
    let ro = Registry::open_read_only(&f.reg_dir).unwrap();
    assert_eq!(ro.list().unwrap(), vec![ea]);
}

#[test]
fn a_writer_killed_at_an_arbitrary_moment_leaves_a_consistent_registry() {
    let f = fixture();
    let a = write_fingerprint(&f.inputs, "alpha", 1);
    let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
    let ea = add(&mut reg, &a, meta("alpha")).unwrap().entry().clone();
    drop(reg);
    let loop_inputs = f.inputs.join("loop");
    fs::create_dir(&loop_inputs).unwrap();

    let mut writer = child(&f.reg_dir, &loop_inputs, "loop")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut committed = Vec::new();
    while committed.len() < 5 {
        let line = lines.next().expect("the writer stopped early").unwrap();
        if let Some(name) = line.split_once("committed ").map(|(_, name)| name) {
            committed.push(name.to_string());
        }
    }
    // SIGKILL, wherever the writer is in its next add.
    writer.kill().unwrap();
    writer.wait().unwrap();
    for line in lines {
        if let Some(name) = line.unwrap().split_once("committed ").map(|(_, name)| name) {
            committed.push(name.to_string());
        }
    }

    let mut reg = Registry::open(&f.reg_dir).unwrap();
    let names: Vec<String> = reg.list().unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.contains(&"alpha".to_string()));
    for name in &committed {
        assert!(names.contains(name), "{name} was committed but is lost");
    }
    // At most the add in progress may have landed beyond the reported ones.
    assert!(names.len() <= committed.len() + 2, "{names:?}");
    let report = reg.verify(Some(&TestCodec)).unwrap();
    assert!(report.is_healthy(), "{:?}", report.problems);
    reg.gc().unwrap();
    assert!(reg.verify(None).unwrap().problems.is_empty());
    assert_eq!(reg.fingerprint_bytes(&ea).unwrap(), fs::read(&a).unwrap());
}

#[test]
fn two_writers_adding_the_same_models_at_once_stay_consistent() {
    use std::io::Write;
    let f = fixture();
    Registry::create_or_open(&f.reg_dir).unwrap();
    let mut writers = Vec::new();
    for w in 0..2 {
        let inputs = f.inputs.join(format!("writer{w}"));
        fs::create_dir(&inputs).unwrap();
        let mut child = child(&f.reg_dir, &inputs, "lockstep")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        writers.push((child, lines));
    }
    // Each round both writers add the same fingerprint under the same name at once: one
    // adds it, the other finds it present. (Rounds rather than free-running loops: SQLite's
    // busy handler polls, so a writer looping flat out can starve the other.)
    const ROUNDS: usize = 8;
    for _ in 0..ROUNDS {
        for (child, _) in &mut writers {
            child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
            child.stdin.as_mut().unwrap().flush().unwrap();
        }
        for (_, lines) in &mut writers {
            loop {
                let line = lines.next().expect("a writer failed").unwrap();
                if line.contains("committed ") {
                    break;
                }
            }
        }
    }
    for (mut child, _) in writers {
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    }
    let reg = Registry::open(&f.reg_dir).unwrap();
    let names: Vec<String> = reg.list().unwrap().into_iter().map(|e| e.name).collect();
    let mut expected: Vec<String> = (0..ROUNDS).map(|i| format!("shared-{i}")).collect();
    expected.sort();
    assert_eq!(names, expected);
    let report = reg.verify(Some(&TestCodec)).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

// ---- random operation sequences ------------------------------------------------------------

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Add fingerprint `fp` (of 4) under name `name` (of 4) with licence `licence`.
        Add {
            fp: u64,
            name: usize,
            licence: usize,
            replace: bool,
        },
        Remove {
            name: usize,
        },
        Reopen,
        Gc,
    }

    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    const LICENCES: [&str; 2] = ["mit", "apache-2.0"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..4, 0usize..4, 0usize..2, any::<bool>()).prop_map(
                |(fp, name, licence, replace)| Op::Add { fp, name, licence, replace }
            ),
            2 => (0usize..4).prop_map(|name| Op::Remove { name }),
            1 => Just(Op::Reopen),
            1 => Just(Op::Gc),
        ]
    }

    /// The expected registry: fingerprint number -> (name, licence).
    type Model = BTreeMap<u64, (usize, usize)>;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn registry_matches_a_map(ops in proptest::collection::vec(op(), 1..14)) {
            let f = fixture();
            let inputs: Vec<PathBuf> =
                (0..4).map(|i| write_fingerprint(&f.inputs, "m", i)).collect();
            let mut reg = Registry::create_or_open(&f.reg_dir).unwrap();
            let mut model = Model::new();
            for op in ops {
                match op {
                    Op::Add { fp, name, licence, replace } => {
                        let mut m = meta(NAMES[name]);
                        m.licence = LICENCES[licence].into();
                        let options = AddOptions { replace, ..AddOptions::default() };
                        let result = reg.add(&inputs[fp as usize], m, &TestCodec, &options);
                        let name_holder = model.iter().find(|(_, (n, _))| *n == name).map(|(k, _)| *k);
                        match (model.get(&fp).copied(), name_holder) {
                            (_, Some(holder)) if holder != fp => prop_assert!(
                                matches!(result, Err(RegistryError::NameTaken { .. })), "{result:?}"),
                            (None, _) => {
                                prop_assert!(matches!(result, Ok(AddOutcome::Added(_))), "{result:?}");
                                model.insert(fp, (name, licence));
                            }
                            (Some(old), _) if old == (name, licence) => prop_assert!(
                                matches!(result, Ok(AddOutcome::AlreadyPresent(_))), "{result:?}"),
                            (Some(_), _) if replace => {
                                prop_assert!(matches!(result, Ok(AddOutcome::MetadataReplaced { .. })), "{result:?}");
                                model.insert(fp, (name, licence));
                            }
                            (Some(_), _) => prop_assert!(
                                matches!(result, Err(RegistryError::ConflictingMetadata { .. })), "{result:?}"),
                        }
                    }
                    Op::Remove { name } => {
                        let result = reg.remove(NAMES[name]);
                        match model.iter().find(|(_, (n, _))| *n == name).map(|(k, _)| *k) {
                            Some(fp) => {
                                prop_assert!(result.is_ok(), "{result:?}");
                                model.remove(&fp);
                            }
                            None => prop_assert!(
                                matches!(result, Err(RegistryError::NotFound { .. })), "{result:?}"),
                        }
                    }
                    Op::Reopen => reg = Registry::open(&f.reg_dir).unwrap(),
                    Op::Gc => prop_assert_eq!(reg.gc().unwrap(), Vec::<PathBuf>::new()),
                }
                let mut expected: Vec<(String, String, Vec<u8>)> = model
                    .iter()
                    .map(|(fp, (n, l))| {
                        (NAMES[*n].to_string(), LICENCES[*l].to_string(), fs::read(&inputs[*fp as usize]).unwrap())
                    })
                    .collect();
                expected.sort();
                let actual: Vec<(String, String, Vec<u8>)> = reg
                    .list()
                    .unwrap()
                    .into_iter()
                    .map(|e| {
                        let bytes = reg.fingerprint_bytes(&e).unwrap();
                        (e.name, e.licence, bytes)
                    })
                    .collect();
                prop_assert_eq!(actual, expected);
                let report = reg.verify(None).unwrap();
                prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
            }
        }
    }
}
