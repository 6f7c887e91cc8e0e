//! A webhook's delivery counters: shared by the alerter, its admission and
//! its sender task, read by whoever holds a clone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Delivery counters of one [`WebhookAlerter`](super::WebhookAlerter), shared by clones.
#[derive(Debug, Clone, Default)]
pub struct WebhookStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    delivered: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    dropped: AtomicU64,
    suppressed: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl WebhookStats {
    /// Requests that the receiver accepted (a 2xx answer).
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Notifications given up: a non-retryable answer (a 4xx other than
    /// 408 and 429, a redirect), the last attempt failed, the next retry
    /// would have come after the shutdown deadline, or cut off at shutdown.
    /// The alerter's [`losses`](monitor_core::observer::Observer::losses)
    /// report them as `given_up`.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Attempts that were retried.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Events dropped because the alerter's queue was full (or it had been
    /// cut off at shutdown); reported as `dropped` by its `losses`.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Events not sent on purpose: repeats within `repeat_interval`, and
    /// recoveries of alerts that were not sent or are no longer open.
    pub fn suppressed(&self) -> u64 {
        self.inner.suppressed.load(Ordering::Relaxed)
    }

    pub(crate) fn count_delivered(&self) {
        add(&self.inner.delivered);
    }

    pub(crate) fn count_failed(&self) {
        add(&self.inner.failed);
    }

    pub(crate) fn count_retry(&self) {
        add(&self.inner.retries);
    }

    pub(crate) fn count_dropped(&self) {
        add(&self.inner.dropped);
    }

    pub(crate) fn count_suppressed(&self) {
        add(&self.inner.suppressed);
    }
}
