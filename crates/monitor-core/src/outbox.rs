//! The outbox: deliveries written to a durable store before anything is
//! sent, and worked off from there.
//!
//! The engine writes one row per (receiver, event) for every observer that
//! took an outbox through [`Observer::use_outbox`](crate::observer::Observer::use_outbox),
//! in the same transaction that records the event, before the observer
//! hears of it. The observer then delivers from the store, in order per
//! [`OutboxItem::key`] (an alert's key, or a job's id), marking each row
//! delivered, skipped, or due again later; a row still pending when the
//! process dies is delivered after the next start. The store is the
//! engine's (a SQLite journal); an observer needs only this trait.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::event::{AlertKey, Event, EventKind};

/// A delivery still to be made, or made.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// The row's id: rows are numbered in the order their events came.
    pub id: u64,
    /// The observer that delivers it.
    pub receiver: String,
    /// What orders deliveries: an alert's key, or a job's id.
    pub key: String,
    /// The event to deliver.
    pub event: Event,
    /// Attempts made so far.
    pub attempts: u32,
}

/// The statuses of an outbox row.
pub mod status {
    /// Not delivered yet.
    pub const PENDING: &str = "pending";
    /// The receiver took it.
    pub const DELIVERED: &str = "delivered";
    /// The receiver's filters did not send it.
    pub const SKIPPED: &str = "skipped";
    /// Given up: an answer that no retry fixes.
    pub const FAILED: &str = "failed";
}

/// The key that orders the deliveries of `event`: its alert's key for a
/// finding or a recovery, `job:<id>` for a job's events.
pub fn key_of(event: &Event) -> String {
    match &event.kind {
        EventKind::Finding(_) | EventKind::Recovered(_) => {
            AlertKey::of(event).map_or_else(String::new, |k| format!("alert:{}", k.dedup_key()))
        }
        EventKind::RetrainRequested(r) => format!("job:{}", r.job_id),
        EventKind::JobStatus(u) => format!("job:{}", u.job_id),
    }
}

/// A durable store of deliveries. Its calls block briefly on disk: call
/// them off the async threads (`spawn_blocking`).
pub trait Outbox: Send + Sync + std::fmt::Debug {
    /// The deliveries of `receiver` due at `now`: of each key, only the
    /// oldest pending row, if it is due; oldest first, at most `limit`.
    fn due(&self, receiver: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxItem>>;

    /// When the next pending delivery of `receiver` is due, if it has one.
    fn next_due(&self, receiver: &str) -> Result<Option<DateTime<Utc>>>;

    /// Marks row `id` delivered.
    fn delivered(&self, id: u64) -> Result<()>;

    /// Marks row `id` skipped: the receiver's filters do not send it.
    fn skipped(&self, id: u64) -> Result<()>;

    /// Counts a failed attempt at row `id`, and makes it due again at `at`.
    fn retry_at(&self, id: u64, at: DateTime<Utc>, error: &str) -> Result<()>;

    /// Marks row `id` failed: given up, after `error`.
    fn failed(&self, id: u64, error: &str) -> Result<()>;
}
