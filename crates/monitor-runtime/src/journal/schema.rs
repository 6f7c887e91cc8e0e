//! The journal's schema and its migrations.
//!
//! `schema_version` holds one row: the version of the schema the file is
//! at. Opening a file applies, in one transaction each, every migration
//! past its version; a file without the table is at version 0 (new or
//! empty). A file at a version newer than [`SCHEMA_VERSION`] was written by
//! a newer build and is refused untouched.

use std::path::Path;

use monitor_core::Error;
use rusqlite::{Connection, OptionalExtension};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Migration `i` takes a file from version `i` to `i + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 1: everything.
    "CREATE TABLE schema_version (version INTEGER NOT NULL);
     INSERT INTO schema_version (version) VALUES (0);
     CREATE TABLE checkpoints (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         taken_at TEXT NOT NULL,
         shards INTEGER NOT NULL,
         next_seq INTEGER NOT NULL
     );
     CREATE TABLE checkpoint_shards (
         checkpoint_id INTEGER NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
         shard INTEGER NOT NULL,
         snapshot BLOB NOT NULL,
         PRIMARY KEY (checkpoint_id, shard)
     );
     CREATE TABLE jobs (
         id TEXT PRIMARY KEY,
         model TEXT NOT NULL,
         version TEXT NOT NULL,
         reasons TEXT NOT NULL,
         requested_ts TEXT NOT NULL,
         seq INTEGER NOT NULL,
         status TEXT NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         dispatcher TEXT,
         answer TEXT
     );
     CREATE INDEX jobs_by_status ON jobs (status, updated_at);",
    // 2: the ingest log, each shard's place in it and the sources' positions
    // in a checkpoint, and the outbox of deliveries.
    "CREATE TABLE ingest_log (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         base_seq INTEGER NOT NULL,
         lines INTEGER NOT NULL,
         records BLOB NOT NULL
     );
     ALTER TABLE checkpoint_shards ADD COLUMN ingest_entry INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE checkpoint_shards ADD COLUMN source_seq INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE checkpoint_positions (
         checkpoint_id INTEGER NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
         partition TEXT NOT NULL,
         offset INTEGER NOT NULL,
         PRIMARY KEY (checkpoint_id, partition)
     );
     CREATE TABLE outbox (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         receiver TEXT NOT NULL,
         alert_key TEXT NOT NULL,
         event TEXT NOT NULL,
         status TEXT NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0,
         next_attempt_ms INTEGER NOT NULL,
         created_at TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         last_error TEXT
     );
     CREATE INDEX outbox_by_receiver ON outbox (receiver, status, id);
     CREATE INDEX outbox_by_key ON outbox (receiver, alert_key, id);",
];

/// The schema version of the file behind `conn`: 0 when it has none.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    let has_table: Option<i64> = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", [], |r| r.get(0))
        .optional()?;
    if has_table.is_none() {
        return Ok(0);
    }
    conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
}

/// Brings the file at `path` up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Brings the file at `path` up to version `target` (the tests build files
/// at every earlier version with it).
pub(crate) fn migrate_to(conn: &mut Connection, path: &Path, target: u32) -> Result<(), Error> {
    let fail = |doing: &str, e: rusqlite::Error| {
        Error::io(format!("journal {}: {doing}", path.display()), std::io::Error::other(e.to_string()))
    };
    let found = version(conn).map_err(|e| fail("reading the schema version", e))?;
    if found > SCHEMA_VERSION {
        return Err(Error::io(
            format!("journal {}", path.display()),
            std::io::Error::other(format!(
                "its schema version {found} was written by a newer model-monitor; this build reads up to \
                 version {SCHEMA_VERSION}: run the newer build, or move the file aside to start from an empty state"
            )),
        ));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().take(target as usize).skip(found as usize) {
        let to = from + 1;
        let tx = conn.transaction().map_err(|e| fail("starting a migration", e))?;
        tx.execute_batch(sql).map_err(|e| fail(&format!("migrating to schema version {to}"), e))?;
        tx.execute("UPDATE schema_version SET version = ?1", [to])
            .map_err(|e| fail(&format!("migrating to schema version {to}"), e))?;
        tx.commit().map_err(|e| fail(&format!("migrating to schema version {to}"), e))?;
        tracing::info!(path = %path.display(), version = to, "journal schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;

    #[test]
    fn a_new_file_is_created_at_the_current_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        assert_eq!(version(&journal.conn()).expect("version"), SCHEMA_VERSION);
        drop(journal);
        // Opening again changes nothing.
        let journal = Journal::open(dir.path()).expect("reopen");
        assert_eq!(version(&journal.conn()).expect("version"), SCHEMA_VERSION);
    }

    /// A row in every table a version holds, so that a migration is tried
    /// on a file with data in it, not only on an empty one.
    fn fill(conn: &Connection, version: u32) {
        if version >= 1 {
            conn.execute_batch(
                "INSERT INTO checkpoints (taken_at, shards, next_seq) VALUES ('2024-01-01T00:00:00+00:00', 1, 5);
                 INSERT INTO checkpoint_shards (checkpoint_id, shard, snapshot) VALUES (1, 0, x'7b7d');
                 INSERT INTO jobs (id, model, version, reasons, requested_ts, seq, status, created_at, updated_at)
                 VALUES ('j', 'm', 'v', '[]', '2024-01-01T00:00:00+00:00', 3, 'queued',
                         '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00');",
            )
            .expect("fill v1");
        }
    }

    #[test]
    fn every_earlier_version_is_migrated() {
        for from in 0..SCHEMA_VERSION {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join(format!("v{from}.sqlite3"));
            {
                // Version 0: an empty SQLite database (a file created, nothing in it).
                let mut conn = Connection::open(&path).expect("create");
                conn.execute_batch("PRAGMA user_version = 0; VACUUM;").expect("v0");
                migrate_to(&mut conn, &path, from).expect("build the earlier version");
                assert_eq!(version(&conn).expect("version"), from);
                fill(&conn, from);
            }
            let journal = Journal::open_file(&path).unwrap_or_else(|e| panic!("migrate v{from}: {e}"));
            let conn = journal.conn();
            assert_eq!(version(&conn).expect("version"), SCHEMA_VERSION, "from v{from}");
            for table in ["checkpoints", "checkpoint_shards", "jobs", "ingest_log", "checkpoint_positions", "outbox"] {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
                        r.get(0)
                    })
                    .expect("table");
                assert_eq!(n, 1, "{table} from v{from}");
            }
            drop(conn);
            if from >= 1 {
                // The data of the earlier version is still read.
                assert_eq!(journal.job("j").expect("job").expect("row").status, "queued");
                let latest = journal.latest_checkpoint().expect("checkpoint").expect("one");
                assert_eq!((latest.next_seq, latest.ingest_entries.as_slice()), (5, &[0][..]));
            }
        }
    }

    #[test]
    fn a_newer_version_is_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("newer.sqlite3");
        drop(Journal::open_file(&path).expect("create"));
        Connection::open(&path)
            .expect("open")
            .execute("UPDATE schema_version SET version = ?1", [SCHEMA_VERSION + 1])
            .expect("bump");
        let e = Journal::open_file(&path).expect_err("newer").to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("newer model-monitor") && e.contains("move the file aside"), "{e}");
        let conn = Connection::open(&path).expect("open");
        assert_eq!(version(&conn).expect("version"), SCHEMA_VERSION + 1);
    }
}
