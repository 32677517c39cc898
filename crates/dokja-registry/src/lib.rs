//! The model registry: a folder holding `registry.sqlite` (one row per known model) and the
//! models' fingerprint files, stored by content as `fingerprints/<blake3-hex>.dfp`.
//!
//! The registry never parses a fingerprint: the caller supplies a [`FingerprintCodec`] that
//! accepts or refuses a candidate file and says what it describes. Decisions (crash safety,
//! duplicate handling, name lookup) are written down in this crate's README.md.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

mod date;

/// The database file inside a registry folder.
pub const DATABASE_FILE: &str = "registry.sqlite";
/// The folder, beside the database, holding the fingerprint files.
pub const FINGERPRINT_DIR: &str = "fingerprints";
/// Extension of a stored fingerprint file.
pub const FINGERPRINT_EXTENSION: &str = "dfp";
/// Largest fingerprint file the registry reads (fingerprints are summaries, not weights).
pub const MAX_FINGERPRINT_BYTES: u64 = 256 << 20;
/// The schema this version writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = 1;
/// Marks `registry.sqlite` as a dokja registry in the SQLite header (`PRAGMA application_id`,
/// the ASCII bytes "dokR"), so a foreign database is recognised before SQLite touches it.
pub const APPLICATION_ID: u32 = 0x646f_6b52;
/// Longest metadata field, in characters.
pub const MAX_FIELD_CHARS: usize = 200;
/// Shortest id prefix accepted by [`Registry::get`].
pub const MIN_ID_PREFIX: usize = 4;

const TEMP_PREFIX: &str = ".tmp-";
const ENTRY_COLUMNS: [&str; 9] = [
    "id",
    "name",
    "org",
    "origin_country",
    "licence",
    "released",
    "added_at",
    "bytes",
    "summary",
];
const SCHEMA: &str = "
CREATE TABLE entries (
    id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),
    name TEXT NOT NULL UNIQUE,
    org TEXT NOT NULL,
    origin_country TEXT NOT NULL,
    licence TEXT NOT NULL,
    released TEXT NOT NULL,
    added_at TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    summary TEXT NOT NULL
) STRICT;
";

/// Checks a candidate fingerprint file and says what it describes; `Err(message)` refuses it.
pub trait FingerprintCodec {
    fn inspect(&self, bytes: &[u8]) -> Result<FingerprintSummary, String>;
}

/// What a fingerprint describes, as its codec reads it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FingerprintSummary {
    pub format_version: u32,
    /// Model name or path as recorded in the fingerprint.
    pub model: String,
    pub family: String,
    pub parameters: u64,
    pub components: Vec<String>,
}

/// What the person adding a model says about it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryMeta {
    /// Unique within the registry.
    pub name: String,
    pub org: String,
    pub origin_country: String,
    pub licence: String,
    /// Release date, `YYYY-MM-DD`.
    pub released: String,
}

/// One registered model.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// blake3 of the fingerprint file, lowercase hex.
    pub id: String,
    pub name: String,
    pub org: String,
    pub origin_country: String,
    pub licence: String,
    pub released: String,
    /// When the entry was added, UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub added_at: String,
    pub summary: FingerprintSummary,
    /// Size of the fingerprint file.
    pub bytes: u64,
    /// The fingerprint file as seen by a cheap `stat` when the entry was read; only
    /// [`Registry::fingerprint_bytes`] and [`Registry::verify`] check its digest.
    pub file: FileState,
}

impl Entry {
    pub fn meta(&self) -> EntryMeta {
        EntryMeta {
            name: self.name.clone(),
            org: self.org.clone(),
            origin_country: self.origin_country.clone(),
            licence: self.licence.clone(),
            released: self.released.clone(),
        }
    }

    /// The first 12 hex digits of the id, for messages.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// The fingerprint file of an entry, by `stat`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileState {
    Present,
    Missing,
    SizeMismatch { actual: u64 },
    Unreadable { reason: String },
}

/// How [`Registry::add`] treats a fingerprint already registered.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    /// Same fingerprint bytes, different metadata: replace the metadata instead of refusing.
    pub replace: bool,
    /// Called after each durable step; crash tests abort the process here.
    #[doc(hidden)]
    pub after_stage: Option<fn(AddStage)>,
}

/// Points inside [`Registry::add`] where crash tests stop the process.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddStage {
    /// The fingerprint file is durable under its final name; the row is not inserted yet.
    FingerprintWritten,
    /// The row is written inside the transaction, not committed yet.
    RowWritten,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AddOutcome {
    Added(Entry),
    /// The same bytes with the same metadata were already registered (a missing or damaged
    /// fingerprint file is rewritten from the bytes given, and the stored summary is
    /// refreshed if the codec now reads the bytes differently).
    AlreadyPresent(Entry),
    /// The same bytes were registered with other metadata and `replace` was set.
    MetadataReplaced {
        previous: Box<Entry>,
        entry: Entry,
    },
}

impl AddOutcome {
    pub fn entry(&self) -> &Entry {
        match self {
            AddOutcome::Added(e) | AddOutcome::AlreadyPresent(e) => e,
            AddOutcome::MetadataReplaced { entry, .. } => entry,
        }
    }
}

/// A removed entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Removed {
    pub entry: Entry,
    /// The fingerprint file could not be deleted (the row is gone; `gc` deletes it later).
    pub leftover_file: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A row whose fingerprint file is missing.
    MissingFile,
    /// A row whose fingerprint file has the wrong size or digest.
    CorruptFile,
    /// A row whose fingerprint file cannot be read.
    UnreadableFile,
    /// The codec refuses a stored fingerprint, or reads a summary other than the stored one.
    SummaryMismatch,
    /// A row that cannot be decoded.
    CorruptRow,
    /// SQLite's integrity check failed.
    DatabaseIntegrity,
    /// A fingerprint file no row refers to (left by an interrupted `add` or `remove`).
    OrphanFile,
    /// A temporary file left by an interrupted `add`.
    TempFile,
    /// A file in the fingerprint folder that the registry did not write.
    UnexpectedFile,
}

impl ProblemKind {
    /// Leftovers that lose nothing and that `gc` deletes.
    pub fn is_garbage(self) -> bool {
        matches!(self, ProblemKind::OrphanFile | ProblemKind::TempFile)
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The entry concerned, if any.
    pub id: Option<String>,
    pub name: Option<String>,
    pub path: PathBuf,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VerifyReport {
    pub entries: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problem other than garbage.
    pub fn is_healthy(&self) -> bool {
        self.problems.iter().all(|p| p.kind.is_garbage())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{dir}: not a dokja registry ({reason})")]
    NotARegistry { dir: PathBuf, reason: String },
    #[error("{path}: refused, not a dokja registry database ({reason}); it was left untouched")]
    ForeignDatabase { path: PathBuf, reason: String },
    #[error(
        "{path}: registry schema version {found}, this dokja reads version {supported}; it was left untouched"
    )]
    UnsupportedSchema {
        path: PathBuf,
        found: i32,
        supported: i32,
    },
    #[error("registry {dir} is read-only ({reason}); nothing was changed")]
    ReadOnly { dir: PathBuf, reason: String },
    #[error(
        "{path}: an interrupted write left {journal}; open the registry writable once (e.g. `dokja registry gc`) to roll it back"
    )]
    InterruptedWrite { path: PathBuf, journal: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: SQLite: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: fingerprint of {size} bytes exceeds the limit of {limit} bytes")]
    FingerprintTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: not a valid fingerprint: {reason}")]
    FingerprintRefused { path: PathBuf, reason: String },
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidMeta {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("name {name:?} is already used by registry entry {existing_id}")]
    NameTaken { name: String, existing_id: String },
    #[error(
        "this fingerprint is already registered as {existing_name:?} ({id}) with different {fields}; remove it first or pass replace (--replace) to update its metadata"
    )]
    ConflictingMetadata {
        id: String,
        existing_name: String,
        fields: String,
    },
    #[error("no registry entry matches {query:?}")]
    NotFound { query: String },
    #[error("{query:?} matches several registry entries: {candidates}")]
    Ambiguous { query: String, candidates: String },
    #[error("registry entry {name} ({id}): fingerprint file {path} is missing")]
    FingerprintMissing {
        id: String,
        name: String,
        path: PathBuf,
    },
    #[error("registry entry {name} ({id}): fingerprint file {path} is corrupt ({reason})")]
    FingerprintCorrupt {
        id: String,
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("registry entry {id}: row is corrupt ({reason})")]
    CorruptRow { id: String, reason: String },
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// An open registry folder.
pub struct Registry {
    dir: PathBuf,
    db_path: PathBuf,
    conn: Connection,
    /// Why writes are refused, if they are.
    read_only: Option<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.dir)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Registry {
    /// Opens an existing registry for reading and writing. A missing folder or database is
    /// an error; a write-protected one opens read-only (writes then fail with
    /// [`RegistryError::ReadOnly`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Registry> {
        Self::open_with(dir.as_ref(), false)
    }

    /// Opens an existing registry for reading only: nothing in the folder is created or
    /// changed, so it works on a read-only disk.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Registry> {
        Self::open_with(dir.as_ref(), true)
    }

    /// Opens the registry in `dir`, creating the folder and an empty registry if there is
    /// none. An existing `registry.sqlite` that is not a dokja registry is refused untouched.
    pub fn create_or_open(dir: impl AsRef<Path>) -> Result<Registry> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let db_path = dir.join(DATABASE_FILE);
        match fs::symlink_metadata(&db_path) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_database(dir, &db_path)?,
            Err(e) => return Err(io_err(&db_path)(e)),
        }
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, read_only: bool) -> Result<Registry> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(not_registry(dir, "not a directory")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_registry(dir, "no such directory"));
            }
            Err(e) => return Err(io_err(dir)(e)),
        }
        let db_path = dir.join(DATABASE_FILE);
        match fs::metadata(&db_path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(not_registry(dir, "registry.sqlite is not a file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_registry(
                    dir,
                    "it has no registry.sqlite; `dokja registry add` creates one",
                ));
            }
            Err(e) => return Err(io_err(&db_path)(e)),
        }
        // Before SQLite sees the file: SQLite would roll back a foreign database's hot
        // journal, which is a write.
        check_header(&db_path)?;
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let sql = sql_err(&db_path);
        let conn = Connection::open_with_flags(&db_path, flags).map_err(&sql)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(&sql)?;
        if let Err(e) = check_schema(&conn, &db_path) {
            // A read-only connection cannot roll back a hot journal; say so rather than
            // passing on SQLite's terse error.
            let journal = journal_path(&db_path);
            if read_only && journal_may_be_hot(&journal) {
                return Err(RegistryError::InterruptedWrite {
                    path: db_path.clone(),
                    journal,
                });
            }
            return Err(e);
        }
        let read_only = if read_only {
            Some("opened read-only".to_string())
        } else if conn.is_readonly(rusqlite::MAIN_DB).map_err(&sql)? {
            Some("the database file or its disk is write-protected".to_string())
        } else {
            // Rollback journal, fsync at every commit: a registry is written rarely and must
            // survive a crash.
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(&sql)?;
            None
        };
        Ok(Registry {
            dir: dir.to_path_buf(),
            db_path: db_path.clone(),
            conn,
            read_only,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// Where the fingerprint with this id is stored.
    pub fn fingerprint_path(&self, id: &str) -> PathBuf {
        fingerprint_path(&self.dir, id)
    }

    /// Registers the fingerprint file at `fingerprint` under `meta`, after `codec` accepts
    /// it. Adding the same bytes with the same metadata again changes nothing.
    pub fn add(
        &mut self,
        fingerprint: &Path,
        meta: EntryMeta,
        codec: &dyn FingerprintCodec,
        options: &AddOptions,
    ) -> Result<AddOutcome> {
        self.ensure_writable()?;
        let meta = validate_meta(meta)?;
        let bytes = read_bounded(fingerprint, MAX_FINGERPRINT_BYTES)?;
        let summary =
            codec
                .inspect(&bytes)
                .map_err(|reason| RegistryError::FingerprintRefused {
                    path: fingerprint.to_path_buf(),
                    reason,
                })?;
        let id = blake3::hash(&bytes).to_hex().to_string();
        let hook = |stage| {
            if let Some(f) = options.after_stage {
                f(stage)
            }
        };

        let (dir, db_path) = (&self.dir, &self.db_path);
        let sql = sql_err(db_path);
        // IMMEDIATE: take the write lock before reading, so two writers cannot both decide
        // the entry is new; every fingerprint file is written under this lock.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_write_err(e, dir, db_path))?;
        let existing = select_entries(&tx, dir, "WHERE id = ?1", [&id])?.pop();
        let holder: Option<String> = tx
            .query_row(
                "SELECT id FROM entries WHERE name = ?1",
                [&meta.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(&sql)?;
        if let Some(holder) = holder.filter(|h| *h != id) {
            return Err(RegistryError::NameTaken {
                name: meta.name,
                existing_id: holder,
            });
        }
        if let Some(previous) = &existing
            && previous.meta() != meta
            && !options.replace
        {
            return Err(RegistryError::ConflictingMetadata {
                id,
                existing_name: previous.name.clone(),
                fields: differing_fields(&previous.meta(), &meta),
            });
        }
        ensure_fingerprint_file(dir, &id, &bytes)?;
        hook(AddStage::FingerprintWritten);
        let summary_json = serde_json::to_string(&summary).expect("summary serialises to JSON");
        let outcome = match existing {
            Some(previous) if previous.meta() == meta && previous.summary == summary => {
                AddOutcome::AlreadyPresent(previous)
            }
            Some(previous) => {
                // The summary is refreshed too: the codec is the authority on what the bytes
                // describe, and may have improved since (the CLI's placeholder codec).
                tx.execute(
                    "UPDATE entries SET name = ?2, org = ?3, origin_country = ?4, licence = ?5, \
                     released = ?6, summary = ?7 WHERE id = ?1",
                    params![
                        id,
                        meta.name,
                        meta.org,
                        meta.origin_country,
                        meta.licence,
                        meta.released,
                        summary_json
                    ],
                )
                .map_err(|e| map_write_err(e, dir, db_path))?;
                let entry = Entry {
                    name: meta.name,
                    org: meta.org,
                    origin_country: meta.origin_country,
                    licence: meta.licence,
                    released: meta.released,
                    summary,
                    ..previous.clone()
                };
                if previous.meta() == entry.meta() {
                    AddOutcome::AlreadyPresent(entry)
                } else {
                    AddOutcome::MetadataReplaced {
                        previous: Box::new(previous),
                        entry,
                    }
                }
            }
            None => {
                let added_at = date::now_utc();
                tx.execute(
                    "INSERT INTO entries (id, name, org, origin_country, licence, released, \
                     added_at, bytes, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        id,
                        meta.name,
                        meta.org,
                        meta.origin_country,
                        meta.licence,
                        meta.released,
                        added_at,
                        bytes.len() as i64,
                        summary_json
                    ],
                )
                .map_err(|e| map_write_err(e, dir, db_path))?;
                AddOutcome::Added(Entry {
                    id: id.clone(),
                    name: meta.name,
                    org: meta.org,
                    origin_country: meta.origin_country,
                    licence: meta.licence,
                    released: meta.released,
                    added_at,
                    summary,
                    bytes: bytes.len() as u64,
                    file: FileState::Present,
                })
            }
        };
        hook(AddStage::RowWritten);
        tx.commit().map_err(|e| map_write_err(e, dir, db_path))?;
        // The file was checked or rewritten above.
        Ok(match outcome {
            AddOutcome::AlreadyPresent(mut e) => {
                e.file = FileState::Present;
                AddOutcome::AlreadyPresent(e)
            }
            AddOutcome::MetadataReplaced {
                previous,
                mut entry,
            } => {
                entry.file = FileState::Present;
                AddOutcome::MetadataReplaced { previous, entry }
            }
            added => added,
        })
    }

    /// Every entry, by name.
    pub fn list(&self) -> Result<Vec<Entry>> {
        select_entries(&self.conn, &self.dir, "ORDER BY name", [])
    }

    /// The entry whose full id, name, or unique id prefix (at least [`MIN_ID_PREFIX`] hex
    /// digits) is `query`, tried in that order.
    pub fn get(&self, query: &str) -> Result<Entry> {
        resolve(&self.conn, &self.dir, query)
    }

    /// Unregisters the entry `query` names (see [`Registry::get`]) and deletes its file.
    pub fn remove(&mut self, query: &str) -> Result<Removed> {
        self.ensure_writable()?;
        let (dir, db_path) = (&self.dir, &self.db_path);
        let tx = begin_immediate(&mut self.conn, dir, db_path)?;
        let entry = resolve(&tx, dir, query)?;
        tx.execute("DELETE FROM entries WHERE id = ?1", [&entry.id])
            .map_err(|e| map_write_err(e, dir, db_path))?;
        tx.commit().map_err(|e| map_write_err(e, dir, db_path))?;
        // The row goes first: a crash in between leaves an orphan file (garbage), never a
        // row without its file. The file is deleted under the write lock so that a
        // concurrent `add` of the same bytes cannot lose it.
        let leftover_file = delete_if_unreferenced(&mut self.conn, dir, db_path, &entry.id)
            .err()
            .map(|e| e.to_string());
        Ok(Removed {
            entry,
            leftover_file,
        })
    }

    /// The entry's fingerprint bytes, after checking their size and blake3 digest.
    pub fn fingerprint_bytes(&self, entry: &Entry) -> Result<Vec<u8>> {
        read_verified(&self.dir, entry)
    }

    /// Checks every entry's file (size and digest; with a codec, also that it still reads
    /// the stored summary), SQLite's integrity, and reports leftovers in the fingerprint
    /// folder. Changes nothing.
    pub fn verify(&self, codec: Option<&dyn FingerprintCodec>) -> Result<VerifyReport> {
        let mut problems = Vec::new();
        let sql = sql_err(&self.db_path);
        let integrity: Vec<String> = {
            let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(&sql)?;
            stmt.query_map([], |r| r.get(0))
                .map_err(&sql)?
                .collect::<Result<_, _>>()
                .map_err(&sql)?
        };
        if integrity != ["ok"] {
            problems.push(Problem {
                kind: ProblemKind::DatabaseIntegrity,
                id: None,
                name: None,
                path: self.db_path.clone(),
                message: integrity.join("; "),
            });
        }
        let rows = self.raw_rows()?;
        let entries = rows.len();
        let mut known = std::collections::HashSet::new();
        for (id, row) in rows {
            known.insert(id.clone());
            let path = fingerprint_path(&self.dir, &id);
            let entry = match row {
                Ok(e) => e,
                Err(err) => {
                    problems.push(Problem {
                        kind: ProblemKind::CorruptRow,
                        id: Some(id),
                        name: None,
                        path: self.db_path.clone(),
                        message: err.to_string(),
                    });
                    continue;
                }
            };
            let problem = |kind, message: String| Problem {
                kind,
                id: Some(entry.id.clone()),
                name: Some(entry.name.clone()),
                path: path.clone(),
                message,
            };
            match read_verified(&self.dir, &entry) {
                Ok(bytes) => {
                    if let Some(codec) = codec {
                        match codec.inspect(&bytes) {
                            Ok(s) if s == entry.summary => {}
                            Ok(s) => problems.push(problem(
                                ProblemKind::SummaryMismatch,
                                format!(
                                    "registry entry {}: the codec now reads {s:?}, the registry recorded {:?}",
                                    entry.name, entry.summary
                                ),
                            )),
                            Err(reason) => problems.push(problem(
                                ProblemKind::SummaryMismatch,
                                format!(
                                    "registry entry {}: the codec refuses the stored fingerprint: {reason}",
                                    entry.name
                                ),
                            )),
                        }
                    }
                }
                Err(err) => {
                    let kind = match err {
                        RegistryError::FingerprintMissing { .. } => ProblemKind::MissingFile,
                        RegistryError::FingerprintCorrupt { .. } => ProblemKind::CorruptFile,
                        _ => ProblemKind::UnreadableFile,
                    };
                    problems.push(problem(kind, err.to_string()));
                }
            }
        }
        for (path, kind) in self.stray_files(&known)? {
            let message = match kind {
                ProblemKind::OrphanFile => "fingerprint file no entry refers to (garbage)",
                ProblemKind::TempFile => "temporary file of an interrupted add (garbage)",
                _ => "file the registry did not write",
            };
            problems.push(Problem {
                kind,
                id: None,
                name: None,
                path,
                message: message.to_string(),
            });
        }
        Ok(VerifyReport { entries, problems })
    }

    /// Deletes orphan fingerprint files and temporary files left by interrupted commands;
    /// returns what it deleted. Opening the registry writable has already rolled back an
    /// interrupted transaction.
    pub fn gc(&mut self) -> Result<Vec<PathBuf>> {
        self.ensure_writable()?;
        let (dir, db_path) = (&self.dir, &self.db_path);
        // Under the write lock, no `add` is between writing a file and inserting its row.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| map_write_err(e, dir, db_path))?;
        let known: std::collections::HashSet<String> = {
            let mut stmt = tx
                .prepare("SELECT id FROM entries")
                .map_err(sql_err(db_path))?;
            stmt.query_map([], |r| r.get(0))
                .map_err(sql_err(db_path))?
                .collect::<Result<_, _>>()
                .map_err(sql_err(db_path))?
        };
        let mut deleted = Vec::new();
        for (path, kind) in stray_files(dir, &known)? {
            if kind.is_garbage() {
                fs::remove_file(&path).map_err(io_err(&path))?;
                deleted.push(path);
            }
        }
        if !deleted.is_empty() {
            sync_dir(&dir.join(FINGERPRINT_DIR))?;
        }
        drop(tx);
        Ok(deleted)
    }

    fn stray_files(
        &self,
        known: &std::collections::HashSet<String>,
    ) -> Result<Vec<(PathBuf, ProblemKind)>> {
        stray_files(&self.dir, known)
    }

    /// Every row by id, decoded or with the reason it cannot be.
    fn raw_rows(&self) -> Result<Vec<(String, Result<Entry>)>> {
        let sql = sql_err(&self.db_path);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {} FROM entries ORDER BY name",
                ENTRY_COLUMNS.join(", ")
            ))
            .map_err(&sql)?;
        let rows = stmt
            .query_map([], |r| {
                let id: String = r.get(0)?;
                Ok((id, row_to_entry(r, &self.dir)?))
            })
            .map_err(&sql)?;
        rows.collect::<Result<_, _>>().map_err(&sql)
    }

    fn ensure_writable(&self) -> Result<()> {
        match &self.read_only {
            Some(reason) => Err(RegistryError::ReadOnly {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

fn not_registry(dir: &Path, reason: &str) -> RegistryError {
    RegistryError::NotARegistry {
        dir: dir.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> RegistryError + '_ {
    move |source| RegistryError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// A write refused by SQLite because the file or disk is read-only becomes
/// [`RegistryError::ReadOnly`].
fn map_write_err(e: rusqlite::Error, dir: &Path, db_path: &Path) -> RegistryError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) {
        return RegistryError::ReadOnly {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        };
    }
    sql_err(db_path)(e)
}

/// Deletes the fingerprint file `id` unless a row refers to it, under the write lock.
fn delete_if_unreferenced(
    conn: &mut Connection,
    dir: &Path,
    db_path: &Path,
    id: &str,
) -> Result<()> {
    let tx = begin_immediate(conn, dir, db_path)?;
    let still_used: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM entries WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )
        .map_err(sql_err(db_path))?;
    if still_used {
        return Ok(());
    }
    let path = fingerprint_path(dir, id);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(&dir.join(FINGERPRINT_DIR)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn begin_immediate<'c>(
    conn: &'c mut Connection,
    dir: &Path,
    db_path: &Path,
) -> Result<rusqlite::Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_write_err(e, dir, db_path))
}

fn journal_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push("-journal");
    PathBuf::from(name)
}

/// SQLite leaves the first byte of a rollback journal zero until the journal is synced and
/// the database is about to change; only then does the journal have to be played back.
fn journal_may_be_hot(journal: &Path) -> bool {
    let mut first = [0u8; 1];
    File::open(journal)
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok()
        && first[0] != 0
}

fn fingerprint_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(FINGERPRINT_DIR)
        .join(format!("{id}.{FINGERPRINT_EXTENSION}"))
}

/// Reads the 100-byte SQLite header and refuses anything but a dokja registry.
fn check_header(db_path: &Path) -> Result<()> {
    let foreign = |reason: String| RegistryError::ForeignDatabase {
        path: db_path.to_path_buf(),
        reason,
    };
    let mut header = Vec::with_capacity(100);
    File::open(db_path)
        .map_err(io_err(db_path))?
        .take(100)
        .read_to_end(&mut header)
        .map_err(io_err(db_path))?;
    if !header.starts_with(b"SQLite format 3\0") {
        return Err(foreign("not an SQLite database".into()));
    }
    if header.len() < 100 {
        return Err(foreign(format!(
            "truncated SQLite header ({} bytes)",
            header.len()
        )));
    }
    let application_id = u32::from_be_bytes(header[68..72].try_into().expect("4 bytes"));
    if application_id != APPLICATION_ID {
        return Err(foreign(format!(
            "an SQLite database of another program (application_id {application_id:#010x})"
        )));
    }
    Ok(())
}

/// Checks the schema version and that the tables are exactly the registry's.
fn check_schema(conn: &Connection, db_path: &Path) -> Result<()> {
    let sql = |source: rusqlite::Error| {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            return RegistryError::ForeignDatabase {
                path: db_path.to_path_buf(),
                reason: source.to_string(),
            };
        }
        sql_err(db_path)(source)
    };
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version != SCHEMA_VERSION {
        return Err(RegistryError::UnsupportedSchema {
            path: db_path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let tables: Vec<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            )
            .map_err(sql)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    if tables != ["entries"] {
        return Err(RegistryError::ForeignDatabase {
            path: db_path.to_path_buf(),
            reason: format!("unexpected tables: {}", tables.join(", ")),
        });
    }
    let columns: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info('entries') ORDER BY cid")
            .map_err(sql)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?
    };
    if columns != ENTRY_COLUMNS {
        return Err(RegistryError::ForeignDatabase {
            path: db_path.to_path_buf(),
            reason: format!("unexpected columns in entries: {}", columns.join(", ")),
        });
    }
    Ok(())
}

/// Builds an empty registry database beside `db_path` and links it into place, so that
/// `registry.sqlite` is always either absent or a complete registry.
fn create_database(dir: &Path, db_path: &Path) -> Result<()> {
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{DATABASE_FILE}-{}",
        std::process::id()
    ));
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let sql = sql_err(&temp);
        let conn = Connection::open(&temp).map_err(&sql)?;
        conn.execute_batch(&format!(
            "PRAGMA application_id = {};\nPRAGMA user_version = {SCHEMA_VERSION};\n\
             PRAGMA journal_mode = DELETE;\nBEGIN;\n{SCHEMA}\nCOMMIT;",
            APPLICATION_ID as i32
        ))
        .map_err(&sql)?;
        conn.close().map_err(|(_, e)| sql(e))?;
        File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&temp))?;
        match fs::hard_link(&temp, db_path) {
            Ok(()) => {}
            // Another process created it meanwhile; theirs is as good as ours.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(db_path)(e)),
        }
        sync_dir(dir)
    })();
    let _ = fs::remove_file(&temp);
    result
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

/// Reads a whole file of at most `limit` bytes, refusing larger ones before allocating.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    // Opening a FIFO or a device could block or never end.
    let kind = fs::metadata(path).map_err(io_err(path))?.file_type();
    if !kind.is_file() {
        return Err(RegistryError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        });
    }
    let file = File::open(path).map_err(io_err(path))?;
    let size = file.metadata().map_err(io_err(path))?.len();
    if size > limit {
        return Err(RegistryError::FingerprintTooLarge {
            path: path.to_path_buf(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte more than allowed, in case the file grows while being read.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::FingerprintTooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn read_verified(dir: &Path, entry: &Entry) -> Result<Vec<u8>> {
    let path = fingerprint_path(dir, &entry.id);
    let corrupt = |reason: String| RegistryError::FingerprintCorrupt {
        id: entry.id.clone(),
        name: entry.name.clone(),
        path: path.clone(),
        reason,
    };
    if !is_full_id(&entry.id) {
        return Err(corrupt("the entry's id is not a blake3 hex digest".into()));
    }
    let bytes = match read_bounded(&path, entry.bytes) {
        Ok(b) => b,
        Err(RegistryError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Err(RegistryError::FingerprintMissing {
                id: entry.id.clone(),
                name: entry.name.clone(),
                path,
            });
        }
        Err(RegistryError::FingerprintTooLarge { size, .. }) => {
            return Err(corrupt(format!(
                "{size} bytes, the registry recorded {}",
                entry.bytes
            )));
        }
        Err(e) => return Err(e),
    };
    if bytes.len() as u64 != entry.bytes {
        return Err(corrupt(format!(
            "{} bytes, the registry recorded {}",
            bytes.len(),
            entry.bytes
        )));
    }
    let digest = blake3::hash(&bytes).to_hex();
    if digest.as_str() != entry.id {
        return Err(corrupt(format!("digest mismatch: blake3 {digest}")));
    }
    Ok(bytes)
}

/// Writes the fingerprint file unless an intact one is already there: temp file in the same
/// folder, fsync, rename, fsync the folder.
fn ensure_fingerprint_file(dir: &Path, id: &str, bytes: &[u8]) -> Result<()> {
    let final_path = fingerprint_path(dir, id);
    if let Ok(existing) = read_bounded(&final_path, bytes.len() as u64)
        && existing == bytes
    {
        return Ok(());
    }
    let folder = dir.join(FINGERPRINT_DIR);
    fs::create_dir_all(&folder).map_err(io_err(&folder))?;
    let temp = folder.join(format!("{TEMP_PREFIX}{id}-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(io_err(&temp)(e));
    }
    if let Err(e) = fs::rename(&temp, &final_path) {
        let _ = fs::remove_file(&temp);
        return Err(io_err(&final_path)(e));
    }
    sync_dir(&folder)
}

fn stray_files(
    dir: &Path,
    known: &std::collections::HashSet<String>,
) -> Result<Vec<(PathBuf, ProblemKind)>> {
    let folder = dir.join(FINGERPRINT_DIR);
    let listing = match fs::read_dir(&folder) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&folder)(e)),
    };
    let mut found = Vec::new();
    for item in listing {
        let item = item.map_err(io_err(&folder))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let kind = if name.starts_with(TEMP_PREFIX) {
            ProblemKind::TempFile
        } else if let Some(id) = name
            .strip_suffix(&format!(".{FINGERPRINT_EXTENSION}"))
            .filter(|id| is_full_id(id))
        {
            if known.contains(id) {
                continue;
            }
            ProblemKind::OrphanFile
        } else {
            ProblemKind::UnexpectedFile
        };
        found.push((item.path(), kind));
    }
    found.sort();
    Ok(found)
}

fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn validate_meta(meta: EntryMeta) -> Result<EntryMeta> {
    let field = |field: &'static str, value: String| -> Result<String> {
        let invalid = |reason: &str| RegistryError::InvalidMeta {
            field,
            value: value.clone(),
            reason: reason.to_string(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if trimmed.chars().count() > MAX_FIELD_CHARS {
            return Err(invalid(&format!(
                "longer than {MAX_FIELD_CHARS} characters"
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(invalid("contains control characters"));
        }
        Ok(trimmed.to_string())
    };
    let meta = EntryMeta {
        name: field("name", meta.name)?,
        org: field("org", meta.org)?,
        origin_country: field("origin_country", meta.origin_country)?,
        licence: field("licence", meta.licence)?,
        released: field("released", meta.released)?,
    };
    if is_full_id(&meta.name.to_ascii_lowercase()) {
        return Err(RegistryError::InvalidMeta {
            field: "name",
            value: meta.name,
            reason: "64 hex digits would read as an entry id".into(),
        });
    }
    date::check_date(&meta.released).map_err(|reason| RegistryError::InvalidMeta {
        field: "released",
        value: meta.released.clone(),
        reason,
    })?;
    Ok(meta)
}

fn differing_fields(a: &EntryMeta, b: &EntryMeta) -> String {
    let pairs = [
        ("name", &a.name, &b.name),
        ("org", &a.org, &b.org),
        ("origin_country", &a.origin_country, &b.origin_country),
        ("licence", &a.licence, &b.licence),
        ("released", &a.released, &b.released),
    ];
    pairs
        .iter()
        .filter(|(_, x, y)| x != y)
        .map(|(f, x, y)| format!("{f} ({x:?} registered, {y:?} given)"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn row_to_entry(r: &rusqlite::Row<'_>, dir: &Path) -> rusqlite::Result<Result<Entry>> {
    let id: String = r.get(0)?;
    let summary_json: String = r.get(8)?;
    let bytes: i64 = r.get(7)?;
    let corrupt = |reason: String| RegistryError::CorruptRow {
        id: id.clone(),
        reason,
    };
    let summary = match serde_json::from_str::<FingerprintSummary>(&summary_json) {
        Ok(s) => s,
        Err(e) => return Ok(Err(corrupt(format!("summary: {e}")))),
    };
    let Ok(bytes) = u64::try_from(bytes) else {
        return Ok(Err(corrupt(format!("negative size {bytes}"))));
    };
    if !is_full_id(&id) {
        return Ok(Err(corrupt("id is not a blake3 hex digest".into())));
    }
    let file = file_state(&fingerprint_path(dir, &id), bytes);
    Ok(Ok(Entry {
        name: r.get(1)?,
        org: r.get(2)?,
        origin_country: r.get(3)?,
        licence: r.get(4)?,
        released: r.get(5)?,
        added_at: r.get(6)?,
        summary,
        bytes,
        file,
        id,
    }))
}

fn file_state(path: &Path, expected: u64) -> FileState {
    match fs::metadata(path) {
        Ok(m) if m.len() == expected => FileState::Present,
        Ok(m) => FileState::SizeMismatch { actual: m.len() },
        Err(e) if e.kind() == io::ErrorKind::NotFound => FileState::Missing,
        Err(e) => FileState::Unreadable {
            reason: e.to_string(),
        },
    }
}

fn select_entries<P: rusqlite::Params>(
    conn: &Connection,
    dir: &Path,
    clause: &str,
    params: P,
) -> Result<Vec<Entry>> {
    let db_path = dir.join(DATABASE_FILE);
    let sql = sql_err(&db_path);
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {} FROM entries {clause}",
            ENTRY_COLUMNS.join(", ")
        ))
        .map_err(&sql)?;
    let rows = stmt
        .query_map(params, |r| row_to_entry(r, dir))
        .map_err(&sql)?;
    let mut entries = Vec::new();
    for row in rows {
        entries.push(row.map_err(&sql)??);
    }
    Ok(entries)
}

fn resolve(conn: &Connection, dir: &Path, query: &str) -> Result<Entry> {
    let query_trimmed = query.trim();
    let lower = query_trimmed.to_ascii_lowercase();
    if is_full_id(&lower)
        && let Some(e) = select_entries(conn, dir, "WHERE id = ?1", [&lower])?.pop()
    {
        return Ok(e);
    }
    if let Some(e) = select_entries(conn, dir, "WHERE name = ?1", [query_trimmed])?.pop() {
        return Ok(e);
    }
    let is_prefix = lower.len() >= MIN_ID_PREFIX
        && lower.len() < 64
        && lower.bytes().all(|b| b.is_ascii_hexdigit());
    if is_prefix {
        let mut found = select_entries(
            conn,
            dir,
            "WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id LIMIT 11",
            [&lower],
        )?;
        match found.len() {
            0 => {}
            1 => return Ok(found.pop().expect("one entry")),
            n => {
                let mut candidates: Vec<String> = found
                    .iter()
                    .take(10)
                    .map(|e| format!("{} ({})", e.short_id(), e.name))
                    .collect();
                if n > 10 {
                    candidates.push("...".into());
                }
                return Err(RegistryError::Ambiguous {
                    query: query.to_string(),
                    candidates: candidates.join(", "),
                });
            }
        }
    }
    Err(RegistryError::NotFound {
        query: query.to_string(),
    })
}
