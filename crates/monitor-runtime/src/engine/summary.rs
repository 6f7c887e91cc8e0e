//! What the engine did: the monitors' statistics plus what only the engine
//! sees (overload, observers, jobs, what shutdown could not finish).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use monitor_core::event::{Event, EventKind, JobStatus};
use monitor_strategies::MonitorStats;
use serde::Serialize;

/// What the engine did, returned when it shuts down.
///
/// The record, finding and retrain counts are the shards'
/// [`MonitorStats`], summed (with records rejected before a shard, such as
/// unparseable lines, added to `rejected`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The monitors' counts, summed over the shards.
    #[serde(flatten)]
    pub monitor: MonitorStats,
    /// `try_submit` calls refused because the queue was full.
    pub overloaded: u64,
    /// Dispatch attempts of retraining jobs (a job retried counts again).
    pub jobs_dispatched: u64,
    /// Jobs that succeeded.
    pub jobs_succeeded: u64,
    /// Jobs that failed.
    pub jobs_failed: u64,
    /// Events dropped because an observer's queue was full.
    pub events_dropped: u64,
    /// Errors returned by observers.
    pub observer_errors: u64,
    /// What shutdown could not finish before its deadline, one line each
    /// (an observer cut off with work in hand). Empty after a clean stop.
    pub unfinished: Vec<String>,
}

/// The live counters behind a [`Summary`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Each shard's monitor statistics, updated after every batch.
    pub(crate) shards: Vec<Mutex<MonitorStats>>,
    /// Records rejected before reaching a shard, or lost to a panic.
    pub(crate) rejected: AtomicU64,
    pub(crate) submitted: AtomicU64,
    pub(crate) overloaded: AtomicU64,
    pub(crate) jobs_dispatched: AtomicU64,
    pub(crate) jobs_succeeded: AtomicU64,
    pub(crate) jobs_failed: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) observer_errors: AtomicU64,
    pub(crate) unfinished: Mutex<Vec<String>>,
}

impl Counters {
    pub(crate) fn new(shards: usize) -> Self {
        Self { shards: (0..shards).map(|_| Mutex::default()).collect(), ..Self::default() }
    }

    pub(crate) fn summary(&self) -> Summary {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut monitor = MonitorStats::default();
        for shard in &self.shards {
            monitor.add(&shard.lock().unwrap_or_else(PoisonError::into_inner));
        }
        monitor.rejected += get(&self.rejected);
        Summary {
            monitor,
            overloaded: get(&self.overloaded),
            jobs_dispatched: get(&self.jobs_dispatched),
            jobs_succeeded: get(&self.jobs_succeeded),
            jobs_failed: get(&self.jobs_failed),
            events_dropped: get(&self.events_dropped),
            observer_errors: get(&self.observer_errors),
            unfinished: self.unfinished.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }

    pub(crate) fn set_shard(&self, shard: usize, stats: MonitorStats) {
        if let Some(slot) = self.shards.get(shard) {
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = stats;
        }
    }

    pub(crate) fn unfinished(&self, what: String) {
        self.unfinished.lock().unwrap_or_else(PoisonError::into_inner).push(what);
    }

    pub(crate) fn count_job(&self, event: &Event) {
        if let EventKind::JobStatus(update) = &event.kind {
            let counter = match update.status {
                JobStatus::Dispatched => &self.jobs_dispatched,
                JobStatus::Succeeded => &self.jobs_succeeded,
                JobStatus::Failed => &self.jobs_failed,
                JobStatus::Queued | JobStatus::Merged => return,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}
