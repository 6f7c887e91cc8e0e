//! The state journal: one SQLite file, `journal.sqlite3`, under
//! `[engine] state_dir`.
//!
//! It runs in WAL mode with `synchronous=FULL`: a write that returned is on
//! disk. The schema is versioned ([`schema`]); the file is checked when it
//! is opened, and a corrupt file, or one written by a newer build, is
//! refused with an error that names it and says what to do.
//!
//! - [`checkpoint`]: the shards' monitor snapshots, written periodically and
//!   on shutdown, restored at start, the oldest pruned.
//! - [`jobs`]: retrain jobs, written by the [`JobJournal`] observer that the
//!   engine installs, read by `model-monitor jobs`.
//! - [`ingest`]: the records that HTTP requests were answered 2xx for, fed
//!   again at start past the checkpoint.
//! - [`outbox`]: one row per (receiver, event), written before the event is
//!   handed on; receivers that take it deliver from it.
//!
//! A write that fails while the daemon runs (a full disk, a read-only
//! directory) is counted in [`JournalHealth`], which `/readyz` and the
//! metrics report, and said in the error of the operation that failed.

pub mod checkpoint;
pub mod ingest;
pub mod jobs;
pub mod observer;
pub mod outbox;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use monitor_core::Error;
use rusqlite::Connection;

pub use self::checkpoint::Checkpoint;
pub use self::ingest::IngestEntry;
pub use self::jobs::JobRow;
pub use self::observer::JobJournal;
pub use self::outbox::OutboxRow;
pub use self::schema::SCHEMA_VERSION;

/// The journal's file name inside the state directory.
pub const JOURNAL_FILE: &str = "journal.sqlite3";

/// An open journal. Cheap to clone; writes are serialised.
#[derive(Debug, Clone)]
pub struct Journal {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
    health: Arc<JournalHealth>,
}

/// How the journal's writes have gone since it was opened.
#[derive(Debug, Default)]
pub struct JournalHealth {
    errors: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl JournalHealth {
    /// Writes that failed since the journal was opened.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Whether the last write failed: the journal cannot be trusted to keep
    /// what it is given until a write succeeds again.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// The last write error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Journal {
    /// Opens (or creates) the journal in `state_dir`, creating the directory,
    /// checking the file's integrity and bringing its schema up to date.
    pub fn open(state_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("creating the state directory {}", state_dir.display()), e))?;
        Self::open_file(&state_dir.join(JOURNAL_FILE))
    }

    /// Opens the journal in `state_dir` that a daemon wrote, which must
    /// exist (a stopped daemon's, for `model-monitor jobs`). The whole file
    /// is checked (`PRAGMA integrity_check`), not only its structure.
    pub fn open_existing(state_dir: &Path) -> Result<Self, Error> {
        let path = state_dir.join(JOURNAL_FILE);
        if !path.is_file() {
            return Err(Error::io(
                format!("no journal at {}", path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "a daemon with this engine.state_dir has not run yet, or the directory is another one",
                ),
            ));
        }
        let journal = Self::open_file(&path)?;
        let check: String = journal
            .conn()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(|e| unreadable(&path, &e))?;
        if check != "ok" {
            return Err(corrupt(&path, &check));
        }
        Ok(journal)
    }

    /// Opens (or creates) the journal file at `path`.
    pub fn open_file(path: &Path) -> Result<Self, Error> {
        let conn = Connection::open(path).map_err(|e| unreadable(path, &e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| unreadable(path, &e))?;
        // The first statement that reads the file tells a corrupt one.
        let mode: String =
            conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)).map_err(|e| unreadable(path, &e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "the journal could not switch to WAL mode");
        }
        // The WAL file is truncated back to 64 MiB after each of SQLite's
        // checkpoints, so that a burst does not leave it large.
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=67108864;")
            .map_err(|e| unreadable(path, &e))?;
        let check: String =
            conn.query_row("PRAGMA quick_check", [], |row| row.get(0)).map_err(|e| unreadable(path, &e))?;
        if check != "ok" {
            return Err(corrupt(path, &check));
        }
        let mut conn = conn;
        schema::migrate(&mut conn, path)?;
        Ok(Self {
            path: Arc::new(path.to_owned()),
            conn: Arc::new(Mutex::new(conn)),
            health: Arc::new(JournalHealth::default()),
        })
    }

    /// Bounds the file at `bytes` (rounded down to whole pages, at least
    /// the pages it holds now): past it a write fails with "database or
    /// disk is full", as on a full disk.
    pub fn set_max_bytes(&self, bytes: u64) -> Result<(), Error> {
        let conn = self.conn();
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| self.error("reading the page size", &e))?;
        let pages = i64::try_from(bytes).unwrap_or(i64::MAX) / page.max(1);
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| r.get::<_, i64>(0))
            .map_err(|e| self.error("bounding the file's size", &e))?;
        Ok(())
    }

    /// How its writes have gone.
    pub fn health(&self) -> &JournalHealth {
        &self.health
    }

    /// Counts the outcome of a write: a failure is counted, logged and
    /// marks the journal failing until a write succeeds.
    pub(crate) fn noted<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match &result {
            Ok(_) => {
                if self.health.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(path = %self.path.display(), "the journal takes writes again");
                }
            }
            Err(e) => {
                self.health.errors.fetch_add(1, Ordering::Relaxed);
                if !self.health.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "a write to the journal failed; /readyz fails until one succeeds");
                }
                *self.health.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
            }
        }
        result
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for one operation.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (each
        // write is one transaction): the connection stays usable.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An error of an operation on the journal, naming the file.
    pub(crate) fn error(&self, doing: &str, e: &rusqlite::Error) -> Error {
        Error::io(format!("journal {}: {doing}", self.path.display()), std::io::Error::other(e.to_string()))
    }
}

/// The file could not be opened or read as a journal: corrupt, or out of
/// reach (permissions, a full or read-only disk).
fn unreadable(path: &Path, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e.sqlite_error_code() {
        Some(NotADatabase | DatabaseCorrupt) => corrupt(path, &e.to_string()),
        _ => Error::io(
            format!("journal {} cannot be opened", path.display()),
            std::io::Error::other(format!(
                "{e}; check that engine.state_dir is a directory this user can write, on a disk with room"
            )),
        ),
    }
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::io(
        format!("journal {} is corrupt or not a model-monitor journal", path.display()),
        std::io::Error::other(format!(
            "{what}; move the file aside (with its -wal and -shm files) to start from an empty state, \
             or put back a backup"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, vec![0x5a_u8; 8192]).expect("write");
        let e = Journal::open(dir.path()).expect_err("corrupt").to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("corrupt") && e.contains("move the file aside"), "{e}");
    }

    #[test]
    fn a_file_out_of_reach_is_not_called_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The journal's path is a directory: it cannot be opened as a file.
        std::fs::create_dir(dir.path().join(JOURNAL_FILE)).expect("mkdir");
        let e = Journal::open(dir.path()).expect_err("a directory").to_string();
        assert!(e.contains("cannot be opened") && e.contains(JOURNAL_FILE), "{e}");
        assert!(!e.contains("corrupt"), "{e}");
    }

    #[test]
    fn opens_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(&dir.path().join("state")).expect("open");
        let conn = journal.conn();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("sync");
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "FULL");
    }
}
