//! `GET /metrics`: the Prometheus text format.
//!
//! The server installs `metrics-exporter-prometheus` as the process's
//! recorder, once; the engine's counters and histogram (see
//! [`crate::engine::metrics`]) flow into it through the `metrics` facade.
//! What is cheaper to read than to keep up to date is set at each scrape:
//! queue depths, open findings per model, label joins and expiries, what
//! observers dropped.

use std::collections::BTreeMap;
use std::sync::{OnceLock, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::app::AppState;
use crate::engine::metrics::{
    FINDINGS, INGEST_TO_PROCESSED, JOBS, RECORDS_INGESTED, RECORDS_REJECTED, RECOVERIES, RETRAIN_REQUESTS,
};

/// HTTP requests, by `route` (the route's template) and `status`.
pub const HTTP_REQUESTS: &str = "model_monitor_http_requests_total";
/// Seconds to answer an HTTP request, by `route`.
pub const HTTP_DURATION: &str = "model_monitor_http_request_duration_seconds";
/// Records queued for a shard, by `shard`.
pub const SHARD_QUEUE: &str = "model_monitor_shard_queue_records";
/// Events queued for an observer, by `observer` and `index`.
pub const OBSERVER_QUEUE: &str = "model_monitor_observer_queue_events";
/// Events dropped before reaching an observer, by `observer` and `index`.
pub const OBSERVER_DROPPED: &str = "model_monitor_observer_events_dropped_total";
/// Errors an observer returned, by `observer` and `index`.
pub const OBSERVER_ERRORS: &str = "model_monitor_observer_errors_total";
/// Deliveries or jobs an observer gave up on, by `observer` and `index`.
pub const OBSERVER_GIVEN_UP: &str = "model_monitor_observer_given_up_total";
/// Detectors in warning or drift, by `model`.
pub const OPEN_FINDINGS: &str = "model_monitor_open_findings";
/// Model versions the engine holds state for.
pub const MODEL_VERSIONS: &str = "model_monitor_model_versions";
/// Late labels joined to their predictions.
pub const LABELS_JOINED: &str = "model_monitor_labels_joined_total";
/// Predictions whose label never came.
pub const LABELS_EXPIRED: &str = "model_monitor_labels_expired_total";
/// Model versions evicted to make room.
pub const VERSIONS_EVICTED: &str = "model_monitor_versions_evicted_total";
/// Signals ignored over a limit.
pub const SIGNALS_DROPPED: &str = "model_monitor_signals_dropped_total";
/// Webhook notifications by `observer`, `receiver` and `outcome`.
pub use monitor_core::observer::WEBHOOK_DELIVERIES_METRIC as WEBHOOK_DELIVERIES;
/// 1 when the server is ready (as `/readyz`), else 0.
pub const READY: &str = "model_monitor_ready";
/// Writes to the journal that failed (a full disk, a read-only directory).
pub const JOURNAL_ERRORS: &str = "model_monitor_journal_errors_total";
/// 1 while the journal's last write failed, else 0.
pub const JOURNAL_FAILING: &str = "model_monitor_journal_failing";

/// Every metric `/metrics` exports, the engine's and the server's: what
/// dashboards and alerting rules may name. Histograms (the names ending in
/// `_seconds`) export `_bucket`, `_sum` and `_count` series.
pub const EXPORTED: &[&str] = &[
    RECORDS_INGESTED,
    RECORDS_REJECTED,
    FINDINGS,
    RECOVERIES,
    RETRAIN_REQUESTS,
    JOBS,
    INGEST_TO_PROCESSED,
    HTTP_REQUESTS,
    HTTP_DURATION,
    SHARD_QUEUE,
    OBSERVER_QUEUE,
    OBSERVER_DROPPED,
    OBSERVER_ERRORS,
    OBSERVER_GIVEN_UP,
    OPEN_FINDINGS,
    MODEL_VERSIONS,
    LABELS_JOINED,
    LABELS_EXPIRED,
    VERSIONS_EVICTED,
    SIGNALS_DROPPED,
    READY,
    WEBHOOK_DELIVERIES,
    JOURNAL_ERRORS,
    JOURNAL_FAILING,
];

/// Histogram buckets, in seconds: half a millisecond to ten seconds.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. When another
/// recorder was installed first (by a program that embeds the engine),
/// `/metrics` shows only what the server sets at scrape time.
pub(crate) fn recorder() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(INGEST_TO_PROCESSED.to_owned()), BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), BUCKETS));
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                // Unreachable: the buckets are not empty.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics shows only the server's own gauges");
            }
            handle
        })
        .clone()
}

/// Counts every request and its time, by route template (never the raw
/// path, whose values are unbounded).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Sets the gauges and totals read at scrape time.
async fn refresh(state: &AppState) {
    let health = state.engine.health();
    for (shard, queued) in health.shard_queues.iter().enumerate() {
        metrics::gauge!(SHARD_QUEUE, "shard" => shard.to_string()).set(*queued as f64);
    }
    for (index, o) in health.observers.iter().enumerate() {
        metrics::gauge!(OBSERVER_QUEUE, "observer" => o.name.clone(), "index" => index.to_string())
            .set(o.queued as f64);
    }
    let journal_failing = state.engine.journal().is_some_and(|j| j.health().failing());
    if let Some(journal) = state.engine.journal() {
        metrics::counter!(JOURNAL_ERRORS).absolute(journal.health().errors());
        metrics::gauge!(JOURNAL_FAILING).set(if journal_failing { 1.0 } else { 0.0 });
    }
    let ready = health.ready() && !state.is_draining() && !state.engine.is_stopping() && !journal_failing;
    metrics::gauge!(READY).set(if ready { 1.0 } else { 0.0 });
    let summary = state.engine.stats();
    metrics::counter!(LABELS_JOINED).absolute(summary.monitor.labels_joined);
    metrics::counter!(LABELS_EXPIRED).absolute(summary.monitor.labels_expired);
    metrics::counter!(VERSIONS_EVICTED).absolute(summary.monitor.versions_evicted);
    metrics::counter!(SIGNALS_DROPPED).absolute(summary.monitor.signals_dropped);
    for (index, o) in summary.observers.iter().enumerate() {
        let labels = [("observer", o.name.clone()), ("index", index.to_string())];
        metrics::counter!(OBSERVER_DROPPED, &labels).absolute(o.events_dropped);
        metrics::counter!(OBSERVER_ERRORS, &labels).absolute(o.errors);
        metrics::counter!(OBSERVER_GIVEN_UP, &labels).absolute(o.losses.given_up);
    }
    let inspector = state.engine.inspector();
    match tokio::time::timeout(state.config.query_timeout.as_std(), inspector.overview(usize::MAX)).await {
        Ok(Ok(overview)) => {
            metrics::gauge!(MODEL_VERSIONS).set(overview.total as f64);
            let mut open: BTreeMap<String, usize> = BTreeMap::new();
            for v in &overview.versions {
                *open.entry(state.sink.model_label(&v.model)).or_default() += v.open_findings;
            }
            let mut shown = state.open_labels.lock().unwrap_or_else(PoisonError::into_inner);
            // A model that is gone reads 0, not its last value.
            for gone in shown.iter().filter(|l| !open.contains_key(*l)) {
                metrics::gauge!(OPEN_FINDINGS, "model" => gone.clone()).set(0.0);
            }
            for (model, n) in &open {
                metrics::gauge!(OPEN_FINDINGS, "model" => model.clone()).set(*n as f64);
            }
            // Labels are bounded by `metrics_max_models`: the set stays small.
            shown.extend(open.into_keys());
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "open findings not refreshed"),
        Err(_) => tracing::debug!("open findings not refreshed: the shards did not answer in time"),
    }
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(state): State<AppState>) -> Response {
    refresh(&state).await;
    state.metrics.run_upkeep();
    let mut response = state.metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
