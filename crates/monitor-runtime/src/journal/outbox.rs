//! The outbox: one row per (receiver, event), written in the transaction
//! that records the event, before the event is handed on.
//!
//! The engine stages each group of events from its shards with
//! [`Journal::stage_events`]: a `retrain_requested` inserts its job row, and
//! every receiver that delivers from the outbox gets a row per event. A
//! checkpoint is written only once the events of the records it covers are
//! staged, so that a crash never loses an event whose record will not be
//! read again. Receivers work off their rows through the
//! [`Outbox`] trait; `model-monitor outbox` lists them and makes failed ones
//! due again.

use chrono::{DateTime, TimeZone, Utc};
use monitor_core::Error;
use monitor_core::event::{Event, EventKind};
use monitor_core::outbox::{Outbox, OutboxItem, key_of, status};
use rusqlite::{Row, Transaction, params};
use serde::Serialize;

use super::Journal;
use super::checkpoint::sql_int;

/// Finished rows (delivered, skipped, failed) kept per journal; older ones
/// are pruned with each checkpoint.
pub const MAX_FINISHED_ROWS: i64 = 10_000;

/// An outbox row, as `model-monitor outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    /// The row's id.
    pub id: u64,
    /// The observer that delivers it.
    pub receiver: String,
    /// What orders its deliveries: an alert's key, or a job's id.
    pub key: String,
    /// The event's type (`finding`, `recovered`, ...).
    pub event_type: String,
    /// The model and version of the event.
    pub model: String,
    /// The model version.
    pub version: String,
    /// The event's sequence number.
    pub seq: u64,
    /// `pending`, `delivered`, `skipped` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// When a pending row is due next.
    pub next_attempt_at: DateTime<Utc>,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn conversion(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

impl Journal {
    /// Records a group of events in one transaction, before they are
    /// handed on: the job row of each `retrain_requested`, and a row in
    /// the outbox of each of `receivers`. With `from_shards`, a request for
    /// a job the journal already holds is a record read again after a
    /// restart: it is not recorded again, and its flag in the answer is
    /// `false` (the event is not handed on). The other flags are `true`.
    pub fn stage_events(&self, events: &[Event], receivers: &[String], from_shards: bool) -> Result<Vec<bool>, Error> {
        self.noted(self.try_stage_events(events, receivers, from_shards))
    }

    fn try_stage_events(&self, events: &[Event], receivers: &[String], from_shards: bool) -> Result<Vec<bool>, Error> {
        let fail = |e: rusqlite::Error| self.error("recording events in the outbox", &e);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(fail)?;
        let now = Utc::now();
        let mut keep = Vec::with_capacity(events.len());
        for event in events {
            if let EventKind::RetrainRequested(request) = &event.kind {
                let id = request.job_id.to_string();
                let known: bool =
                    tx.query_row("SELECT count(*) > 0 FROM jobs WHERE id = ?1", [&id], |r| r.get(0)).map_err(fail)?;
                if known && from_shards {
                    keep.push(false);
                    continue;
                }
                if !known {
                    let reasons = serde_json::to_string(&request.reasons)
                        .map_err(|e| fail(rusqlite::Error::ToSqlConversionFailure(e.into())))?;
                    tx.execute(
                        "INSERT INTO jobs (id, model, version, reasons, requested_ts, seq, status, created_at,
                             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                        params![
                            id,
                            event.key.model,
                            event.key.version,
                            reasons,
                            event.ts.to_rfc3339(),
                            sql_int(event.seq),
                            super::jobs::REQUESTED,
                            now.to_rfc3339()
                        ],
                    )
                    .map_err(fail)?;
                }
            }
            keep.push(true);
            if receivers.is_empty() {
                continue;
            }
            let body =
                serde_json::to_string(event).map_err(|e| fail(rusqlite::Error::ToSqlConversionFailure(e.into())))?;
            let key = key_of(event);
            for receiver in receivers {
                tx.execute(
                    "INSERT INTO outbox (receiver, alert_key, event, status, attempts, next_attempt_ms, created_at,
                         updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?6)",
                    params![receiver, key, body, status::PENDING, millis(now), now.to_rfc3339()],
                )
                .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        Ok(keep)
    }

    /// The newest `limit` rows, newest first; only those of `receiver` and
    /// `status` when set.
    pub fn outbox_rows(
        &self,
        receiver: Option<&str>,
        status: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, Error> {
        let fail = |e: rusqlite::Error| self.error("listing the outbox", &e);
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, receiver, alert_key, event, status, attempts, next_attempt_ms, created_at, last_error
                 FROM outbox WHERE (?1 IS NULL OR receiver = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )
            .map_err(fail)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        stmt.query_map(params![receiver, status, limit], outbox_row)
            .map_err(fail)?
            .collect::<Result<_, _>>()
            .map_err(fail)
    }

    /// Makes the row `id` (pending or failed) due now, its attempts
    /// counted from zero again; returns it. A delivered or skipped row
    /// cannot be.
    pub fn retry_outbox(&self, id: u64) -> Result<OutboxRow, Error> {
        let changed = self
            .conn()
            .execute(
                "UPDATE outbox SET status = ?2, attempts = 0, next_attempt_ms = ?3, updated_at = ?4
                 WHERE id = ?1 AND status IN ('pending', 'failed')",
                params![sql_int(id), status::PENDING, millis(Utc::now()), Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.error("retrying an outbox row", &e));
        let changed = self.noted(changed)?;
        let row = self
            .conn()
            .query_row(
                "SELECT id, receiver, alert_key, event, status, attempts, next_attempt_ms, created_at, last_error
                 FROM outbox WHERE id = ?1",
                [sql_int(id)],
                outbox_row,
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Error::io(
                    format!("journal {}", self.path().display()),
                    std::io::Error::new(std::io::ErrorKind::NotFound, format!("no outbox row {id}")),
                ),
                e => self.error("reading an outbox row", &e),
            })?;
        if changed == 0 {
            return Err(Error::io(
                format!("journal {}", self.path().display()),
                std::io::Error::other(format!(
                    "outbox row {id} is {}: only a pending or failed row can be retried",
                    row.status
                )),
            ));
        }
        Ok(row)
    }

    fn set_outbox(
        &self,
        id: u64,
        status: &str,
        attempts: i64,
        at: Option<DateTime<Utc>>,
        error: Option<&str>,
    ) -> Result<(), Error> {
        let result = self
            .conn()
            .execute(
                "UPDATE outbox SET status = ?2, attempts = attempts + ?3,
                     next_attempt_ms = coalesce(?4, next_attempt_ms), updated_at = ?5,
                     last_error = coalesce(?6, last_error)
                 WHERE id = ?1",
                params![sql_int(id), status, attempts, at.map(millis), Utc::now().to_rfc3339(), error],
            )
            .map(|_| ())
            .map_err(|e| self.error("updating an outbox row", &e));
        self.noted(result)
    }
}

fn outbox_row(row: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    let text: String = row.get(3)?;
    let event: Event = serde_json::from_str(&text).map_err(|e| conversion(3, e))?;
    let created: String = row.get(7)?;
    Ok(OutboxRow {
        id: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        receiver: row.get(1)?,
        key: row.get(2)?,
        event_type: event.type_name().to_owned(),
        model: event.key.model.clone(),
        version: event.key.version.clone(),
        seq: event.seq,
        status: row.get(4)?,
        attempts: row.get(5)?,
        next_attempt_at: from_millis(row.get(6)?),
        created_at: DateTime::parse_from_rfc3339(&created).map_err(|e| conversion(7, e))?.with_timezone(&Utc),
        last_error: row.get(8)?,
    })
}

impl Outbox for Journal {
    fn due(&self, receiver: &str, now: DateTime<Utc>, limit: usize) -> monitor_core::Result<Vec<OutboxItem>> {
        let fail = |e: rusqlite::Error| self.error("reading the outbox", &e);
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT o.id, o.alert_key, o.event, o.attempts FROM outbox o
                 WHERE o.receiver = ?1 AND o.status = 'pending' AND o.next_attempt_ms <= ?2
                   AND o.id = (SELECT min(p.id) FROM outbox p
                               WHERE p.receiver = o.receiver AND p.alert_key = o.alert_key AND p.status = 'pending')
                 ORDER BY o.id LIMIT ?3",
            )
            .map_err(fail)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![receiver, millis(now), limit], |row| {
                let text: String = row.get(2)?;
                Ok(OutboxItem {
                    id: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                    receiver: receiver.to_owned(),
                    key: row.get(1)?,
                    event: serde_json::from_str(&text).map_err(|e| conversion(2, e))?,
                    attempts: row.get(3)?,
                })
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }

    fn next_due(&self, receiver: &str) -> monitor_core::Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = self
            .conn()
            .query_row(
                "SELECT min(o.next_attempt_ms) FROM outbox o WHERE o.receiver = ?1 AND o.status = 'pending'
                   AND o.id = (SELECT min(p.id) FROM outbox p
                               WHERE p.receiver = o.receiver AND p.alert_key = o.alert_key AND p.status = 'pending')",
                [receiver],
                |r| r.get(0),
            )
            .map_err(|e| self.error("reading the outbox", &e))?;
        Ok(ms.map(from_millis))
    }

    fn delivered(&self, id: u64) -> monitor_core::Result<()> {
        self.set_outbox(id, status::DELIVERED, 1, None, None)
    }

    fn skipped(&self, id: u64) -> monitor_core::Result<()> {
        self.set_outbox(id, status::SKIPPED, 0, None, None)
    }

    fn retry_at(&self, id: u64, at: DateTime<Utc>, error: &str) -> monitor_core::Result<()> {
        self.set_outbox(id, status::PENDING, 1, Some(at), Some(error))
    }

    fn failed(&self, id: u64, error: &str) -> monitor_core::Result<()> {
        self.set_outbox(id, status::FAILED, 1, None, Some(error))
    }
}

/// Prunes the finished rows past the newest [`MAX_FINISHED_ROWS`].
pub(crate) fn prune(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM outbox WHERE status != 'pending' AND id NOT IN
             (SELECT id FROM outbox WHERE status != 'pending' ORDER BY id DESC LIMIT ?1)",
        [MAX_FINISHED_ROWS],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use monitor_core::event::{Finding, RetrainRequest, Severity};
    use monitor_core::record::ModelKey;

    use super::*;

    fn finding(signal: &str, seq: u64) -> Event {
        let f = Finding {
            signal: signal.parse().expect("signal"),
            detector: "threshold".into(),
            severity: Severity::Drift,
            statistic: 1.0,
            threshold: 0.5,
            p_value: None,
            realised: None,
            message: "up".into(),
        };
        Event::new(ModelKey::new("m", "v1"), Utc::now(), seq, EventKind::Finding(f))
    }

    #[test]
    fn deliveries_are_due_in_order_per_key_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        let receivers = vec!["hook".to_owned(), "other".to_owned()];
        let events = [finding("latency_ms", 1), finding("error", 2), finding("latency_ms", 3)];
        assert_eq!(journal.stage_events(&events, &receivers, true).expect("stage"), [true, true, true]);
        drop(journal);
        let journal = Journal::open(dir.path()).expect("reopen");
        let now = Utc::now() + chrono::Duration::seconds(1);
        let due = journal.due("hook", now, 10).expect("due");
        // Of the latency alert, only the oldest row is due.
        assert_eq!(due.iter().map(|i| i.event.seq).collect::<Vec<_>>(), [1, 2]);
        let later = now + chrono::Duration::seconds(60);
        journal.retry_at(due[0].id, later, "HTTP 500").expect("retry");
        journal.delivered(due[1].id).expect("delivered");
        // The failed row holds its key back; nothing else is due.
        assert!(journal.due("hook", now, 10).expect("due").is_empty());
        assert_eq!(journal.next_due("hook").expect("next"), Some(from_millis(millis(later))));
        let again = journal.due("hook", later, 10).expect("due");
        assert_eq!((again[0].event.seq, again[0].attempts), (1, 1));
        journal.delivered(again[0].id).expect("delivered");
        let last = journal.due("hook", later, 10).expect("due");
        assert_eq!(last.iter().map(|i| i.event.seq).collect::<Vec<_>>(), [3]);
        journal.failed(last[0].id, "HTTP 400").expect("failed");
        assert_eq!(journal.outbox_rows(Some("hook"), Some("failed"), 10).expect("rows")[0].seq, 3);
        let row = journal.retry_outbox(last[0].id).expect("retry");
        assert_eq!((row.status.as_str(), row.attempts), ("pending", 0));
        let e = journal.retry_outbox(due[1].id).expect_err("delivered").to_string();
        assert!(e.contains("is delivered"), "{e}");
        // The other receiver's rows are its own.
        assert_eq!(journal.due("other", now, 10).expect("due").len(), 2);
    }

    #[test]
    fn a_request_read_again_is_not_staged_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        let key = ModelKey::new("m", "v1");
        let ts = Utc::now();
        let job_id = RetrainRequest::job_id_for(&key, ts, 9);
        let request =
            Event::new(key, ts, 9, EventKind::RetrainRequested(RetrainRequest { job_id, reasons: Vec::new() }));
        let hooks = vec!["hook".to_owned()];
        let events = [request];
        assert_eq!(journal.stage_events(&events, &hooks, true).expect("stage"), [true]);
        assert_eq!(journal.job(&job_id.to_string()).expect("job").expect("row").status, "requested");
        assert_eq!(journal.stage_events(&events, &hooks, true).expect("again"), [false]);
        // Published again by the journal itself (not a record read again), it goes on.
        assert_eq!(journal.stage_events(&events, &hooks, false).expect("redo"), [true]);
        assert_eq!(journal.outbox_rows(None, None, 10).expect("rows").len(), 2);
    }
}
