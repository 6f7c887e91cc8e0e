//! Retrain jobs in the journal: one row per job id, written as its
//! `retrain_requested` and `job_status` events arrive.

use chrono::{DateTime, Utc};
use monitor_core::Error;
use monitor_core::event::{Event, EventKind, Finding};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::Journal;

/// The status of a job that a policy asked for and no scheduler took yet.
pub const REQUESTED: &str = "requested";

/// A retrain job as the journal holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    /// The job id (a UUID), the dispatchers' idempotency key.
    pub id: String,
    /// The model to retrain.
    pub model: String,
    /// The version that degraded.
    pub version: String,
    /// The findings that made the policy fire.
    pub reasons: Vec<Finding>,
    /// `requested`, then the scheduler's `queued`, `dispatched`,
    /// `succeeded`, `failed` or `merged`; `cancelled` by an operator.
    pub status: String,
    /// How many times it was dispatched.
    pub attempts: u32,
    /// When the journal first heard of it, by the wall clock.
    pub created_at: DateTime<Utc>,
    /// When its status last changed, by the wall clock.
    pub updated_at: DateTime<Utc>,
    /// The dispatcher that handles it, once known.
    pub dispatcher: Option<String>,
    /// The dispatcher's last answer: an exit code, an HTTP status, the job
    /// it was merged into.
    pub answer: Option<String>,
}

const COLUMNS: &str = "id, model, version, reasons, status, attempts, created_at, updated_at, dispatcher, answer";

impl Journal {
    /// Records what `event` says about a retrain job; other events are
    /// ignored. Idempotent for a request seen twice.
    pub fn record_job_event(&self, event: &Event) -> Result<(), Error> {
        self.noted(self.try_record_job_event(event))
    }

    fn try_record_job_event(&self, event: &Event) -> Result<(), Error> {
        let fail = |e: rusqlite::Error| self.error("recording a retrain job", &e);
        let conn = self.conn();
        match &event.kind {
            EventKind::RetrainRequested(request) => {
                let reasons = serde_json::to_string(&request.reasons).map_err(|e| {
                    self.error("recording a retrain job", &rusqlite::Error::ToSqlConversionFailure(e.into()))
                })?;
                let now = Utc::now().to_rfc3339();
                conn.execute(
                    "INSERT INTO jobs (id, model, version, reasons, requested_ts, seq, status, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                     ON CONFLICT (id) DO UPDATE SET reasons = excluded.reasons",
                    params![
                        request.job_id.to_string(),
                        event.key.model,
                        event.key.version,
                        reasons,
                        event.ts.to_rfc3339(),
                        seq_of(event),
                        REQUESTED,
                        now
                    ],
                )
                .map_err(fail)?;
            }
            EventKind::JobStatus(update) => {
                let dispatched = i64::from(update.status == monitor_core::event::JobStatus::Dispatched);
                let at = update.at.to_rfc3339();
                conn.execute(
                    "INSERT INTO jobs (id, model, version, reasons, requested_ts, seq, status, attempts, created_at,
                         updated_at, dispatcher, answer)
                     VALUES (?1, ?2, ?3, '[]', ?9, ?10, ?4, ?5, ?6, ?6, ?7, ?8)
                     ON CONFLICT (id) DO UPDATE SET
                         status = excluded.status,
                         attempts = attempts + excluded.attempts,
                         updated_at = excluded.updated_at,
                         dispatcher = excluded.dispatcher,
                         answer = coalesce(excluded.answer, answer)",
                    params![
                        update.job_id.to_string(),
                        event.key.model,
                        event.key.version,
                        update.status.to_string(),
                        dispatched,
                        at,
                        update.dispatcher,
                        update.detail,
                        event.ts.to_rfc3339(),
                        seq_of(event)
                    ],
                )
                .map_err(fail)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The newest `limit` jobs, newest first; only those of `status` if set.
    pub fn jobs(&self, status: Option<&str>, limit: usize) -> Result<Vec<JobRow>, Error> {
        let fail = |e: rusqlite::Error| self.error("listing retrain jobs", &e);
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE ?1 IS NULL OR status = ?1
                 ORDER BY created_at DESC, id LIMIT ?2"
            ))
            .map_err(fail)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        stmt.query_map(params![status, limit], job_row).map_err(fail)?.collect::<Result<_, _>>().map_err(fail)
    }

    /// The job `id`, if the journal has it.
    pub fn job(&self, id: &str) -> Result<Option<JobRow>, Error> {
        self.conn()
            .query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), [id], job_row)
            .optional()
            .map_err(|e| self.error("reading a retrain job", &e))
    }
}

/// An event's sequence number as SQLite stores it.
fn seq_of(event: &Event) -> i64 {
    i64::try_from(event.seq).unwrap_or(i64::MAX)
}

/// Statuses of a job that a scheduler took and whose outcome the journal
/// does not know.
const UNFINISHED: &str = "('queued', 'dispatched')";
/// The same, and jobs requested but not yet taken by a scheduler: asked
/// for again only when one is configured (without one, every job stays
/// requested, and asking again at every start would repeat the request to
/// every observer).
const UNFINISHED_OR_REQUESTED: &str = "('requested', 'queued', 'dispatched')";

impl Journal {
    /// The `retrain_requested` events of the jobs not finished (queued or
    /// dispatched by a scheduler, the outcome unknown; with `scheduled`, a
    /// scheduler is configured and jobs it never took count too), oldest
    /// first, with their job ids, event times and sequence numbers:
    /// published again at start, they are dispatched again under the same
    /// idempotency key.
    pub fn unfinished_jobs(&self, scheduled: bool) -> Result<Vec<Event>, Error> {
        let statuses = if scheduled { UNFINISHED_OR_REQUESTED } else { UNFINISHED };
        let fail = |e: rusqlite::Error| self.error("reading the unfinished retrain jobs", &e);
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT id, model, version, reasons, requested_ts, seq FROM jobs
                 WHERE status IN {statuses} ORDER BY seq, created_at"
            ))
            .map_err(fail)?;
        let rows = stmt
            .query_map([], |row| {
                let id: String = row.get(0)?;
                let reasons: String = row.get(3)?;
                let ts: String = row.get(4)?;
                let seq: i64 = row.get(5)?;
                let conversion = |i: usize, e: Box<dyn std::error::Error + Send + Sync>| {
                    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
                };
                let job_id = uuid::Uuid::parse_str(&id).map_err(|e| conversion(0, e.into()))?;
                let reasons = serde_json::from_str(&reasons).map_err(|e| conversion(3, e.into()))?;
                let ts = DateTime::parse_from_rfc3339(&ts).map_err(|e| conversion(4, e.into()))?.with_timezone(&Utc);
                Ok(Event::new(
                    monitor_core::record::ModelKey::new(row.get::<_, String>(1)?, row.get::<_, String>(2)?),
                    ts,
                    u64::try_from(seq).unwrap_or(0),
                    EventKind::RetrainRequested(monitor_core::event::RetrainRequest { job_id, reasons }),
                ))
            })
            .map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    }
}

/// The status of a job an operator cancelled.
pub const CANCELLED: &str = "cancelled";

/// Finished jobs (succeeded, failed, merged, cancelled) kept per journal;
/// older ones are pruned with each checkpoint.
pub const MAX_FINISHED_JOBS: i64 = 10_000;

/// Prunes the finished jobs past the newest [`MAX_FINISHED_JOBS`].
pub(crate) fn prune(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM jobs WHERE status IN ('succeeded', 'failed', 'merged', 'cancelled') AND id NOT IN
             (SELECT id FROM jobs WHERE status IN ('succeeded', 'failed', 'merged', 'cancelled')
              ORDER BY updated_at DESC LIMIT ?1)",
        [MAX_FINISHED_JOBS],
    )?;
    Ok(())
}

impl Journal {
    /// Marks job `id` (finished or not) to be asked for again at the next
    /// start of a stopped daemon: it becomes `queued`, which a start
    /// publishes again under the same idempotency key.
    pub fn requeue_job(&self, id: &str) -> Result<JobRow, Error> {
        let result = self
            .conn()
            .execute(
                "UPDATE jobs SET status = 'queued', updated_at = ?2,
                     answer = 'retried by an operator: asked for again at the next start'
                 WHERE id = ?1",
                params![id, Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.error("retrying a retrain job", &e));
        self.noted(result)?;
        self.job(id)?.ok_or_else(|| {
            Error::io(
                format!("journal {}", self.path().display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no job {id}")),
            )
        })
    }

    /// The `retrain_requested` event of job `id` (finished or not), for an
    /// operator who asks for it again: published on a running daemon's
    /// bus, its scheduler dispatches it under the same idempotency key.
    /// Marks the job `requested`.
    pub fn retry_job(&self, id: &str) -> Result<Event, Error> {
        let job = self.job(id)?.ok_or_else(|| {
            Error::io(
                format!("journal {}", self.path().display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no job {id}")),
            )
        })?;
        let (ts, seq): (String, i64) = self
            .conn()
            .query_row("SELECT requested_ts, seq FROM jobs WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.error("reading a retrain job", &e))?;
        let ts = DateTime::parse_from_rfc3339(&ts)
            .map_err(|e| self.error("reading a retrain job", &rusqlite::Error::ToSqlConversionFailure(e.into())))?
            .with_timezone(&Utc);
        let job_id = uuid::Uuid::parse_str(id)
            .map_err(|e| self.error("reading a retrain job", &rusqlite::Error::ToSqlConversionFailure(e.into())))?;
        let result = self
            .conn()
            .execute(
                "UPDATE jobs SET status = ?2, updated_at = ?3, answer = 'retried by an operator' WHERE id = ?1",
                params![id, REQUESTED, Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.error("retrying a retrain job", &e));
        self.noted(result)?;
        Ok(Event::new(
            monitor_core::record::ModelKey::new(job.model, job.version),
            ts,
            u64::try_from(seq).unwrap_or(0),
            EventKind::RetrainRequested(monitor_core::event::RetrainRequest { job_id, reasons: job.reasons }),
        ))
    }
}

impl Journal {
    /// Marks the job `id` cancelled, so that it is not asked for again at
    /// the next start; only a job not finished (`requested`, `queued` or
    /// `dispatched`) can be. Meant for the journal of a stopped daemon: a
    /// running one does not see the change. Returns the job as it now is.
    pub fn cancel_job(&self, id: &str) -> Result<JobRow, Error> {
        let changed = self
            .conn()
            .execute(
                "UPDATE jobs SET status = ?2, updated_at = ?3, answer = 'cancelled by an operator'
                 WHERE id = ?1 AND status IN ('requested', 'queued', 'dispatched')",
                params![id, CANCELLED, Utc::now().to_rfc3339()],
            )
            .map_err(|e| self.error("cancelling a retrain job", &e))?;
        let job = self.job(id)?.ok_or_else(|| {
            Error::io(
                format!("journal {}", self.path().display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no job {id}")),
            )
        })?;
        if changed == 0 {
            return Err(Error::io(
                format!("journal {}", self.path().display()),
                std::io::Error::other(format!(
                    "job {id} is {}: only a requested, queued or dispatched job can be cancelled",
                    job.status
                )),
            ));
        }
        Ok(job)
    }
}

fn job_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    let time = |i: usize| -> rusqlite::Result<DateTime<Utc>> {
        let text: String = row.get(i)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into()))
    };
    let reasons: String = row.get(3)?;
    Ok(JobRow {
        id: row.get(0)?,
        model: row.get(1)?,
        version: row.get(2)?,
        reasons: serde_json::from_str(&reasons)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into()))?,
        status: row.get(4)?,
        attempts: row.get(5)?,
        created_at: time(6)?,
        updated_at: time(7)?,
        dispatcher: row.get(8)?,
        answer: row.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use monitor_core::event::{JobStatus, JobUpdate, RetrainRequest};
    use monitor_core::record::ModelKey;
    use uuid::Uuid;

    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new(ModelKey::new("churn", "v2"), Utc::now(), 7, kind)
    }

    fn requested(job_id: Uuid, seq: u64) -> Event {
        let kind = EventKind::RetrainRequested(RetrainRequest { job_id, reasons: Vec::new() });
        Event::new(ModelKey::new("churn", "v2"), Utc::now(), seq, kind)
    }

    fn update(job_id: Uuid, status: JobStatus, detail: Option<&str>) -> Event {
        event(EventKind::JobStatus(JobUpdate {
            job_id,
            at: Utc::now(),
            status,
            dispatcher: "command".into(),
            detail: detail.map(str::to_owned),
        }))
    }

    #[test]
    fn a_job_is_followed_through_its_lifecycle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::open(dir.path()).expect("open");
        let id = Uuid::new_v4();
        let request = event(EventKind::RetrainRequested(RetrainRequest { job_id: id, reasons: Vec::new() }));
        journal.record_job_event(&request).expect("request");
        journal.record_job_event(&request).expect("request again");
        let row = journal.job(&id.to_string()).expect("read").expect("row");
        assert_eq!(
            (row.status.as_str(), row.attempts, row.model.as_str(), row.version.as_str()),
            (REQUESTED, 0, "churn", "v2")
        );
        for (status, detail) in [
            (JobStatus::Queued, None),
            (JobStatus::Dispatched, None),
            (JobStatus::Failed, Some("exit code 1")),
            (JobStatus::Dispatched, None),
            (JobStatus::Succeeded, Some("exit code 0")),
        ] {
            journal.record_job_event(&update(id, status, detail)).expect("update");
        }
        drop(journal);
        let journal = Journal::open(dir.path()).expect("reopen");
        let row = journal.job(&id.to_string()).expect("read").expect("row");
        assert_eq!(row.status, "succeeded");
        assert_eq!(row.attempts, 2);
        assert_eq!(row.dispatcher.as_deref(), Some("command"));
        assert_eq!(row.answer.as_deref(), Some("exit code 0"));
        assert!(row.updated_at >= row.created_at);

        // A status for a job the journal never saw requested still lands.
        let other = Uuid::new_v4();
        journal.record_job_event(&update(other, JobStatus::Queued, None)).expect("update");
        assert_eq!(journal.jobs(None, 10).expect("list").len(), 2);
        assert_eq!(journal.jobs(Some("queued"), 10).expect("list")[0].id, other.to_string());
        assert!(journal.jobs(Some("failed"), 10).expect("list").is_empty());
        assert_eq!(journal.job("nope").expect("read"), None);

        // Only the job a scheduler took and did not finish is asked for again.
        let redo = journal.unfinished_jobs(false).expect("unfinished");
        assert_eq!(redo.len(), 1);
        assert_eq!((redo[0].type_name(), redo[0].seq), ("retrain_requested", 7));
        assert!(matches!(&redo[0].kind, EventKind::RetrainRequested(r) if r.job_id == other));
        // With a scheduler, a job requested and never taken (killed between
        // the two) is asked for again too.
        let waiting = Uuid::new_v4();
        journal.record_job_event(&requested(waiting, 9)).expect("request");
        assert_eq!(journal.unfinished_jobs(false).expect("unfinished").len(), 1);
        let redo = journal.unfinished_jobs(true).expect("unfinished");
        assert_eq!(redo.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 9]);
        assert_eq!(journal.cancel_job(&waiting.to_string()).expect("cancel").status, CANCELLED);

        // Cancelled, it is not; a finished job cannot be.
        assert_eq!(journal.cancel_job(&other.to_string()).expect("cancel").status, CANCELLED);
        assert!(journal.unfinished_jobs(true).expect("unfinished").is_empty());
        let e = journal.cancel_job(&id.to_string()).expect_err("finished").to_string();
        assert!(e.contains("is succeeded"), "{e}");
        let e = journal.cancel_job("nope").expect_err("unknown").to_string();
        assert!(e.contains("no job nope"), "{e}");
    }
}
