//! The ingest log: the records a source that cannot read again (HTTP)
//! accepted, written and synced before it answers, so that a crash at any
//! later moment loses none of them.
//!
//! One entry per request: the sequence number of its first line, its line
//! count (rejected lines take numbers too) and its accepted records. A
//! checkpoint records, per shard, the last entry processed into its
//! snapshot; at start the records of later entries are fed again to the
//! shards that had not processed them, and a checkpoint prunes the entries
//! every shard has processed.

use monitor_core::Error;
use monitor_core::record::Record;
use rusqlite::params;

use super::Journal;
use super::checkpoint::sql_int;

/// One request's records, as the ingest log holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestEntry {
    /// The entry's id: entries are numbered in the order they were queued.
    pub id: u64,
    /// The sequence number of the request's first line.
    pub base_seq: u64,
    /// The request's lines, rejected ones included.
    pub lines: u64,
    /// The accepted records with their sequence numbers, in order.
    pub records: Vec<(u64, Record)>,
}

impl Journal {
    /// Appends a request's records; returns the entry's id once it is on
    /// disk.
    pub fn append_ingest(&self, base_seq: u64, lines: u64, records: &[(u64, Record)]) -> Result<u64, Error> {
        let body = serde_json::to_vec(records)
            .map_err(|e| self.error("writing the ingest log", &rusqlite::Error::ToSqlConversionFailure(e.into())))?;
        self.append_ingest_bytes(base_seq, lines, body)
    }

    /// Like [`Journal::append_ingest`], with the records already serialised
    /// (a JSON array of `[seq, record]` pairs).
    pub fn append_ingest_bytes(&self, base_seq: u64, lines: u64, body: Vec<u8>) -> Result<u64, Error> {
        let result = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO ingest_log (base_seq, lines, records) VALUES (?1, ?2, ?3)",
                params![sql_int(base_seq), sql_int(lines), body],
            )
            .map(|_| conn.last_insert_rowid())
        };
        let id = self.noted(result.map_err(|e| self.error("writing the ingest log", &e)))?;
        Ok(u64::try_from(id).unwrap_or(0))
    }

    /// The entries after `after`, oldest first.
    pub fn ingest_after(&self, after: u64) -> Result<Vec<IngestEntry>, Error> {
        let fail = |e: rusqlite::Error| self.error("reading the ingest log", &e);
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, base_seq, lines, records FROM ingest_log WHERE id > ?1 ORDER BY id")
            .map_err(fail)?;
        let rows = stmt
            .query_map([sql_int(after)], |r| {
                let body: Vec<u8> = r.get(3)?;
                let body: &[u8] = if body.is_empty() { b"[]" } else { &body };
                let records = serde_json::from_slice(body)
                    .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, e.into()))?;
                Ok(IngestEntry {
                    id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    base_seq: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    lines: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    records,
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }

    /// The sequence number after the newest entry's lines, if the log has
    /// an entry.
    pub fn ingest_end(&self) -> Result<Option<u64>, Error> {
        let end: Option<i64> = self
            .conn()
            .query_row("SELECT base_seq + lines FROM ingest_log ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
            .map(Some)
            .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(|e| self.error("reading the ingest log", &e))?;
        Ok(end.map(|n| u64::try_from(n).unwrap_or(0)))
    }

    /// Entries in the ingest log.
    pub fn ingest_len(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM ingest_log", [], |r| r.get(0))
            .map_err(|e| self.error("reading the ingest log", &e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::journal::Checkpoint;

    fn record(model: &str, latency: f64) -> Record {
        Record::parse_line(&format!(r#"{{"model": "{model}", "latency_ms": {latency}}}"#), 1, Utc::now())
            .expect("record")
    }

    #[test]
    fn entries_are_read_back_in_order_and_pruned_by_a_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        assert_eq!(journal.ingest_end().expect("end"), None);
        let a = journal.append_ingest(0, 3, &[(0, record("a", 1.0)), (2, record("b", 2.0))]).expect("a");
        let b = journal.append_ingest(3, 1, &[]).expect("b");
        assert_eq!(journal.ingest_after(a).expect("read")[0].records, []);
        let last = record("a", 3.0);
        let c = journal.append_ingest(4, 1, &[(4, last.clone())]).expect("c");
        assert!(a < b && b < c);
        assert_eq!(journal.ingest_end().expect("end"), Some(5));
        drop(journal);
        let journal = Journal::open(dir.path()).expect("reopen");
        let after_a = journal.ingest_after(a).expect("read");
        assert_eq!(after_a.iter().map(|e| (e.id, e.base_seq, e.lines)).collect::<Vec<_>>(), [(b, 3, 1), (c, 4, 1)]);
        assert_eq!(after_a[1].records, [(4, last)]);
        // A checkpoint where one shard is at `c` and the other at `b`: the
        // entries up to `b` go, and the newest always stays.
        let checkpoint = |entries: Vec<u64>| Checkpoint {
            taken_at: Utc::now(),
            next_seq: 5,
            shards: vec![Vec::new(), Vec::new()],
            ingest_entries: entries,
            source_seqs: Vec::new(),
            positions: Vec::new(),
        };
        journal.write_checkpoint(&checkpoint(vec![c, b]), 1).expect("checkpoint");
        assert_eq!(journal.ingest_after(0).expect("read").iter().map(|e| e.id).collect::<Vec<_>>(), [c]);
        journal.write_checkpoint(&checkpoint(vec![c, c]), 1).expect("checkpoint");
        assert_eq!(journal.ingest_len().expect("len"), 1);
        assert_eq!(journal.ingest_end().expect("end"), Some(5));
    }
}
