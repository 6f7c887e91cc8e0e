//! What the engine did: the monitors' statistics plus what only the engine
//! sees (overload, observers, jobs, what shutdown could not finish).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use monitor_core::event::{Event, EventKind, JobStatus};
use monitor_core::observer::ObserverLosses;
use monitor_strategies::MonitorStats;
use serde::Serialize;

use super::metrics::ModelLabels;

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
    /// Each observer: what it was sent, what it lost.
    pub observers: Vec<ObserverSummary>,
    /// What shutdown could not finish before its deadline, one line each
    /// (an observer cut off with work in hand). Empty after a clean stop.
    pub unfinished: Vec<String>,
}

/// What one observer got and lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObserverSummary {
    /// The observer's name (`webhook`, `retrain`, ...).
    pub name: String,
    /// Events dropped before reaching it, because its queue was full.
    pub events_dropped: u64,
    /// Errors it returned while handling events or flushing.
    pub errors: u64,
    /// What it reported giving up on itself (known once it has stopped).
    pub losses: ObserverLosses,
}

impl ObserverSummary {
    /// Whether anything meant for this observer was lost.
    pub fn lost_anything(&self) -> bool {
        self.events_dropped > 0 || self.losses.given_up > 0 || self.losses.dropped > 0
    }
}

impl Summary {
    /// Events dropped before reaching an observer, over all observers.
    pub fn events_dropped(&self) -> u64 {
        self.observers.iter().map(|o| o.events_dropped).sum()
    }

    /// Errors returned by observers, over all observers.
    pub fn observer_errors(&self) -> u64 {
        self.observers.iter().map(|o| o.errors).sum()
    }

    /// Whether any observer lost an event, a delivery or a job.
    pub fn lost_anything(&self) -> bool {
        self.observers.iter().any(ObserverSummary::lost_anything)
    }
}

/// What runs and what is queued in an engine, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// Shards configured.
    pub shards: usize,
    /// Shard tasks running: all of them until shutdown.
    pub shards_running: usize,
    /// Records queued for each shard, by shard index.
    pub shard_queues: Vec<u64>,
    /// Each observer, in config order.
    pub observers: Vec<ObserverHealth>,
}

impl Health {
    /// Whether every shard and every observer is running.
    pub fn ready(&self) -> bool {
        self.shards_running == self.shards && self.observers.iter().all(|o| o.running)
    }
}

/// One observer's task and queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObserverHealth {
    /// The observer's name.
    pub name: String,
    /// Whether its task is running.
    pub running: bool,
    /// Events in its queue.
    pub queued: u64,
}

/// The live counters of one observer.
#[derive(Debug, Default)]
pub(crate) struct ObserverCounters {
    pub(crate) name: String,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) losses: Mutex<ObserverLosses>,
    /// Events in its queue.
    pub(crate) queued: AtomicU64,
    /// Whether its task is running.
    pub(crate) running: std::sync::atomic::AtomicBool,
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
    pub(crate) observers: Vec<Arc<ObserverCounters>>,
    pub(crate) unfinished: Mutex<Vec<String>>,
    /// Records in each shard's queue.
    pub(crate) queued: Vec<AtomicU64>,
    /// Shard tasks running.
    pub(crate) shards_running: AtomicUsize,
    /// The `model` labels of metrics.
    pub(crate) labels: ModelLabels,
}

impl Counters {
    pub(crate) fn new(shards: usize, observers: &[String], metrics_max_models: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            queued: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            labels: ModelLabels::new(metrics_max_models),
            observers: observers
                .iter()
                .map(|name| Arc::new(ObserverCounters { name: name.clone(), ..ObserverCounters::default() }))
                .collect(),
            ..Self::default()
        }
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
            observers: self
                .observers
                .iter()
                .map(|o| ObserverSummary {
                    name: o.name.clone(),
                    events_dropped: get(&o.events_dropped),
                    errors: get(&o.errors),
                    losses: *o.losses.lock().unwrap_or_else(PoisonError::into_inner),
                })
                .collect(),
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

    /// What is queued and what runs, now.
    pub(crate) fn health(&self) -> Health {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Health {
            shards: self.shards.len(),
            shards_running: self.shards_running.load(Ordering::Relaxed),
            shard_queues: self.queued.iter().map(get).collect(),
            observers: self
                .observers
                .iter()
                .map(|o| ObserverHealth {
                    name: o.name.clone(),
                    running: o.running.load(Ordering::Relaxed),
                    queued: get(&o.queued),
                })
                .collect(),
        }
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
