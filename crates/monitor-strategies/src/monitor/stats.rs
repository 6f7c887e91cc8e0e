//! The counters of a monitor.

use serde::{Deserialize, Serialize};

/// Counters of a [`Monitor`](crate::Monitor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorStats {
    /// Records accepted.
    pub records: u64,
    /// Records rejected (invalid, unjoinable label, over a limit).
    pub rejected: u64,
    /// Late labels joined to their predictions.
    pub labels_joined: u64,
    /// Findings emitted (warning and drift).
    pub findings: u64,
    /// Recoveries emitted.
    pub recoveries: u64,
    /// Retrain requests emitted.
    pub retrain_requests: u64,
    /// Signals ignored because a model version hit `max_signals_per_model`.
    pub signals_dropped: u64,
    /// Records rejected because their `ts` was further ahead of the clock
    /// than `limits.max_future_skew` (also counted in `rejected`).
    #[serde(default)]
    pub ts_too_far_ahead: u64,
    /// Model versions forgotten, quiet ones first, to make room
    /// for new ones under `limits.max_model_versions`.
    #[serde(default)]
    pub versions_evicted: u64,
    /// Monitors not set up on a signal because their detector takes numbers
    /// and the signal is categorical, or takes categories and the signal is
    /// numeric (once per model version and signal).
    #[serde(default)]
    pub monitors_skipped: u64,
    /// Predictions whose label never came: dropped from the pending set
    /// because they were older than `limits.label_max_age`, or to make room
    /// under `limits.pending_labels`.
    #[serde(default)]
    pub labels_expired: u64,
    /// Samples that reached a detector after their event-time window had
    /// closed, and were dropped (once per detector).
    #[serde(default)]
    pub late_samples: u64,
    /// Event-time windows that ended without a sample (once per detector).
    #[serde(default)]
    pub empty_windows: u64,
}

impl MonitorStats {
    /// Adds `other`'s counts to these (to sum the shards of an engine).
    pub fn add(&mut self, other: &Self) {
        self.records += other.records;
        self.rejected += other.rejected;
        self.labels_joined += other.labels_joined;
        self.findings += other.findings;
        self.recoveries += other.recoveries;
        self.retrain_requests += other.retrain_requests;
        self.signals_dropped += other.signals_dropped;
        self.ts_too_far_ahead += other.ts_too_far_ahead;
        self.versions_evicted += other.versions_evicted;
        self.monitors_skipped += other.monitors_skipped;
        self.labels_expired += other.labels_expired;
        self.late_samples += other.late_samples;
        self.empty_windows += other.empty_windows;
    }
}
