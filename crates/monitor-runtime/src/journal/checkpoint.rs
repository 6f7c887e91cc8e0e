//! Checkpoints of model state: each shard's monitor snapshot, written
//! together in one transaction, with the next record sequence number, each
//! shard's place in the ingest log and the sources' positions.
//!
//! Writing one prunes what it makes useless: older checkpoints past the
//! number kept, and the ingest log entries every shard has processed.

use chrono::{DateTime, Utc};
use monitor_core::Error;
use monitor_core::source::Position;
use rusqlite::{OptionalExtension, params};

use super::Journal;

/// The saved state of every shard of an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The sequence number the engine gives its next record.
    pub next_seq: u64,
    /// Each shard's `Monitor` snapshot (JSON), by shard index.
    pub shards: Vec<Vec<u8>>,
    /// Each shard's last ingest log entry processed into its snapshot (0:
    /// none), by shard index.
    pub ingest_entries: Vec<u64>,
    /// Each shard's next `seq` of a source's records: every record of the
    /// shard with a lower `seq` is in its snapshot (0: none), by shard index.
    pub source_seqs: Vec<u64>,
    /// Each source's last position processed into the snapshots.
    pub positions: Vec<Position>,
}

impl Journal {
    /// Writes `checkpoint` and prunes all but the newest `keep` (at least one).
    pub fn write_checkpoint(&self, checkpoint: &Checkpoint, keep: usize) -> Result<(), Error> {
        self.noted(self.try_write_checkpoint(checkpoint, keep))
    }

    fn try_write_checkpoint(&self, checkpoint: &Checkpoint, keep: usize) -> Result<(), Error> {
        let fail = |e: rusqlite::Error| self.error("writing a checkpoint", &e);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(fail)?;
        tx.execute(
            "INSERT INTO checkpoints (taken_at, shards, next_seq) VALUES (?1, ?2, ?3)",
            params![checkpoint.taken_at.to_rfc3339(), checkpoint.shards.len() as i64, checkpoint.next_seq as i64],
        )
        .map_err(fail)?;
        let id = tx.last_insert_rowid();
        for (shard, snapshot) in checkpoint.shards.iter().enumerate() {
            let entry = checkpoint.ingest_entries.get(shard).copied().unwrap_or(0);
            let source_seq = checkpoint.source_seqs.get(shard).copied().unwrap_or(0);
            tx.execute(
                "INSERT INTO checkpoint_shards (checkpoint_id, shard, snapshot, ingest_entry, source_seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, shard as i64, snapshot, sql_int(entry), sql_int(source_seq)],
            )
            .map_err(fail)?;
        }
        for position in &checkpoint.positions {
            tx.execute(
                "INSERT OR REPLACE INTO checkpoint_positions (checkpoint_id, partition, offset) VALUES (?1, ?2, ?3)",
                params![id, position.partition, sql_int(position.offset)],
            )
            .map_err(fail)?;
        }
        // Every shard has processed the entries up to the smallest of their
        // places: a restart re-reads none of them. The newest entry stays,
        // for the next sequence number.
        let covered = checkpoint.ingest_entries.iter().copied().min().unwrap_or(0);
        tx.execute(
            "DELETE FROM ingest_log WHERE id <= ?1 AND id < (SELECT max(id) FROM ingest_log)",
            [sql_int(covered)],
        )
        .map_err(fail)?;
        super::outbox::prune(&tx).map_err(fail)?;
        super::jobs::prune(&tx).map_err(fail)?;
        let keep = keep.max(1) as i64;
        tx.execute(
            "DELETE FROM checkpoints WHERE id NOT IN (SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?1)",
            [keep],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    /// The newest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let fail = |e: rusqlite::Error| self.error("reading the latest checkpoint", &e);
        let conn = self.conn();
        let head: Option<(i64, String, i64, i64)> = conn
            .query_row("SELECT id, taken_at, shards, next_seq FROM checkpoints ORDER BY id DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(fail)?;
        let Some((id, taken_at, shards, next_seq)) = head else { return Ok(None) };
        let taken_at = DateTime::parse_from_rfc3339(&taken_at)
            .map_err(|e| {
                self.error("reading the latest checkpoint", &rusqlite::Error::ToSqlConversionFailure(e.into()))
            })?
            .with_timezone(&Utc);
        let mut stmt = conn
            .prepare(
                "SELECT shard, snapshot, ingest_entry, source_seq FROM checkpoint_shards WHERE checkpoint_id = ?1 \
                 ORDER BY shard",
            )
            .map_err(fail)?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
            })
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let mut stmt = conn
            .prepare("SELECT partition, offset FROM checkpoint_positions WHERE checkpoint_id = ?1 ORDER BY partition")
            .map_err(fail)?;
        let positions = stmt
            .query_map([id], |r| {
                Ok(Position::new(r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
            })
            .map_err(fail)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        if rows.len() as i64 != shards || rows.iter().enumerate().any(|(i, (shard, ..))| *shard != i as i64) {
            return Err(Error::snapshot(
                format!("checkpoint {id}"),
                format!(
                    "{shards} shards recorded but {} shard snapshots found in {}",
                    rows.len(),
                    self.path().display()
                ),
            ));
        }
        Ok(Some(Checkpoint {
            taken_at,
            next_seq: u64::try_from(next_seq).unwrap_or(0),
            ingest_entries: rows.iter().map(|(_, _, e, _)| u64::try_from(*e).unwrap_or(0)).collect(),
            source_seqs: rows.iter().map(|(_, _, _, s)| u64::try_from(*s).unwrap_or(0)).collect(),
            shards: rows.into_iter().map(|(_, s, ..)| s).collect(),
            positions,
        }))
    }

    /// How many checkpoints the journal holds.
    pub fn checkpoint_count(&self) -> Result<usize, Error> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM checkpoints", [], |r| r.get(0))
            .map_err(|e| self.error("counting checkpoints", &e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// A count or sequence number as SQLite stores it.
pub(crate) fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(n: u64) -> Checkpoint {
        Checkpoint {
            taken_at: Utc::now(),
            next_seq: n,
            shards: vec![format!("a{n}").into_bytes(), b"b".to_vec()],
            ingest_entries: vec![n, n + 1],
            source_seqs: vec![n * 10, n * 10 - 3],
            positions: vec![Position::new("in.ndjson", n * 10)],
        }
    }

    #[test]
    fn the_latest_is_read_back_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        assert_eq!(journal.latest_checkpoint().expect("none"), None);
        for n in 1..=5 {
            journal.write_checkpoint(&checkpoint(n), 2).expect("write");
        }
        assert_eq!(journal.checkpoint_count().expect("count"), 2);
        let rows: i64 =
            journal.conn().query_row("SELECT count(*) FROM checkpoint_shards", [], |r| r.get(0)).expect("rows");
        assert_eq!(rows, 4, "the pruned checkpoints' shards go with them");
        drop(journal);
        let journal = Journal::open(dir.path()).expect("reopen");
        let latest = journal.latest_checkpoint().expect("read").expect("some");
        assert_eq!(latest.next_seq, 5);
        assert_eq!(latest.shards, vec![b"a5".to_vec(), b"b".to_vec()]);
        assert_eq!(latest.ingest_entries, [5, 6]);
        assert_eq!(latest.source_seqs, [50, 47]);
        assert_eq!(latest.positions, [Position::new("in.ndjson", 50)]);
    }
}
