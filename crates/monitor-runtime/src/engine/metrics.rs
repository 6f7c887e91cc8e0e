//! What the engine reports through the [`metrics`] facade, and the bound on
//! the `model` label.
//!
//! The engine only records; it installs no recorder. Without one (an
//! embedded engine, `replay`) every call is a no-op. `model-monitor serve`
//! installs a Prometheus recorder and adds, at each scrape, the gauges
//! that are cheaper to read than to keep up to date (queue depths, open
//! findings, label joins).
//!
//! A `model` label takes the model's name for the first
//! `metrics_max_models` models the engine sees; every later one shares the
//! value [`OTHER_MODELS`], so that nobody can grow the exporter's memory by
//! inventing model names.

use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};

use monitor_core::event::{Event, EventKind};

/// The `model` label of every model past the first `metrics_max_models`.
pub const OTHER_MODELS: &str = "_other";
/// The `model` label of a record whose model could not be read.
pub const UNKNOWN_MODEL: &str = "_unknown";
/// The default number of models that get a `model` label of their own.
pub const DEFAULT_METRICS_MAX_MODELS: usize = 100;
/// The largest `metrics_max_models` that can be set.
pub const MAX_METRICS_MAX_MODELS: usize = 10_000;

/// Records processed by the monitors, by `model`.
pub const RECORDS_INGESTED: &str = "model_monitor_records_ingested_total";
/// Records rejected, by `model` and `reason`.
pub const RECORDS_REJECTED: &str = "model_monitor_records_rejected_total";
/// Findings, by `model`, `detector` and `severity`.
pub const FINDINGS: &str = "model_monitor_findings_total";
/// Recoveries, by `model` and `detector`.
pub const RECOVERIES: &str = "model_monitor_recoveries_total";
/// Retrain requests, by `model`.
pub const RETRAIN_REQUESTS: &str = "model_monitor_retrain_requests_total";
/// Job status changes, by `model` and `status`.
pub const JOBS: &str = "model_monitor_jobs_total";
/// Seconds from a batch's submission to the end of its processing by a shard.
pub const INGEST_TO_PROCESSED: &str = "model_monitor_ingest_to_processed_seconds";

/// Why a record was rejected: the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not JSON, not UTF-8, or not a valid record.
    Malformed,
    /// A line longer than the line limit.
    LineTooLong,
    /// Refused because the ingest queue was full.
    Overloaded,
    /// Its `ts` was too far ahead of the clock.
    FutureTimestamp,
    /// A late label with no pending prediction to join.
    UnmatchedLabel,
    /// Refused by a monitor for another reason (a detector failure).
    Invalid,
}

impl RejectReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::LineTooLong => "line_too_long",
            Self::Overloaded => "overloaded",
            Self::FutureTimestamp => "future_timestamp",
            Self::UnmatchedLabel => "unmatched_label",
            Self::Invalid => "invalid",
        }
    }
}

/// The bounded set of model names that get a label of their own.
#[derive(Debug)]
pub(crate) struct ModelLabels {
    max: usize,
    named: RwLock<HashSet<String>>,
}

impl ModelLabels {
    pub(crate) fn new(max: usize) -> Self {
        Self { max, named: RwLock::new(HashSet::new()) }
    }

    /// The `model` label of `model`: its name while there is room, else
    /// [`OTHER_MODELS`].
    pub(crate) fn label(&self, model: &str) -> String {
        if self.named.read().unwrap_or_else(PoisonError::into_inner).contains(model) {
            return model.to_owned();
        }
        let mut named = self.named.write().unwrap_or_else(PoisonError::into_inner);
        if named.contains(model) || named.len() < self.max {
            named.insert(model.to_owned());
            model.to_owned()
        } else {
            OTHER_MODELS.to_owned()
        }
    }
}

impl Default for ModelLabels {
    fn default() -> Self {
        Self::new(DEFAULT_METRICS_MAX_MODELS)
    }
}

/// Counts `n` records of `model` processed.
pub(crate) fn ingested(labels: &ModelLabels, model: &str, n: u64) {
    metrics::counter!(RECORDS_INGESTED, "model" => labels.label(model)).increment(n);
}

/// Counts `n` records of `model` (unknown when `None`) rejected for `reason`.
pub(crate) fn rejected(labels: &ModelLabels, model: Option<&str>, reason: RejectReason, n: u64) {
    let model = model.map_or_else(|| UNKNOWN_MODEL.to_owned(), |m| labels.label(m));
    metrics::counter!(RECORDS_REJECTED, "model" => model, "reason" => reason.as_str()).increment(n);
}

/// Counts what an event on the bus says.
pub(crate) fn event(labels: &ModelLabels, event: &Event) {
    let model = labels.label(&event.key.model);
    match &event.kind {
        EventKind::Finding(f) => {
            let severity = f.severity.to_string();
            metrics::counter!(FINDINGS, "model" => model, "detector" => f.detector.clone(), "severity" => severity)
                .increment(1);
        }
        EventKind::Recovered(f) => {
            metrics::counter!(RECOVERIES, "model" => model, "detector" => f.detector.clone()).increment(1);
        }
        EventKind::RetrainRequested(_) => metrics::counter!(RETRAIN_REQUESTS, "model" => model).increment(1),
        EventKind::JobStatus(j) => {
            metrics::counter!(JOBS, "model" => model, "status" => j.status.to_string()).increment(1);
        }
    }
}

/// Records the time from a batch's submission to its end of processing.
pub(crate) fn processed_after(elapsed: std::time::Duration) {
    metrics::histogram!(INGEST_TO_PROCESSED).record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_past_the_limit_share_one_label() {
        let labels = ModelLabels::new(2);
        assert_eq!(labels.label("a"), "a");
        assert_eq!(labels.label("b"), "b");
        assert_eq!(labels.label("c"), OTHER_MODELS);
        assert_eq!(labels.label("a"), "a");
        assert_eq!(labels.label("d"), OTHER_MODELS);
    }
}
