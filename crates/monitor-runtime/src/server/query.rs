//! `GET /v1/models`, `GET /v1/models/{model}` and `GET /v1/events`: what the
//! shards hold, asked through their query queues, and what the server's
//! event log remembers. Every answer is bounded by a `[server]` limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use monitor_core::event::Event;
use monitor_strategies::VersionDetail;
use serde::{Deserialize, Serialize};

use super::app::{AppState, error_body};
use super::events::JobView;

/// `?limit=` of `/v1/models`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelsQuery {
    limit: Option<usize>,
}

/// One version in `/v1/models`.
#[derive(Debug, Serialize)]
struct VersionSummary {
    version: String,
    records: u64,
    signals: usize,
    open_findings: usize,
}

/// One model in `/v1/models`.
#[derive(Debug, Serialize)]
struct ModelSummary {
    model: String,
    records: u64,
    open_findings: usize,
    versions: Vec<VersionSummary>,
}

#[derive(Debug, Serialize)]
struct ModelsAnswer {
    models: Vec<ModelSummary>,
    /// Versions listed.
    versions_listed: usize,
    /// Versions held in all.
    versions_total: usize,
}

fn bad_query(e: &QueryRejection) -> Response {
    error_body(StatusCode::BAD_REQUEST, &format!("bad query string: {}", e.body_text()))
}

fn engine_gone(e: &monitor_core::Error) -> Response {
    error_body(StatusCode::SERVICE_UNAVAILABLE, &format!("the engine cannot answer: {e}"))
}

fn too_slow() -> Response {
    error_body(StatusCode::SERVICE_UNAVAILABLE, "the shards did not answer within server.query_timeout")
}

/// `GET /v1/models`: models and versions, with records seen and open findings.
pub(crate) async fn list_models(
    State(state): State<AppState>,
    query: Result<Query<ModelsQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(&e),
    };
    let max = state.config.max_listed_versions;
    let limit = query.limit.unwrap_or(max).min(max);
    let asked = state.engine.inspector();
    let overview = match tokio::time::timeout(state.config.query_timeout.as_std(), asked.overview(limit)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return engine_gone(&e),
        Err(_) => return too_slow(),
    };
    let versions_listed = overview.versions.len();
    let mut models: BTreeMap<String, ModelSummary> = BTreeMap::new();
    for v in overview.versions {
        let m = models.entry(v.model.clone()).or_insert_with(|| ModelSummary {
            model: v.model.clone(),
            records: 0,
            open_findings: 0,
            versions: Vec::new(),
        });
        m.records += v.records;
        m.open_findings += v.open_findings;
        m.versions.push(VersionSummary {
            version: v.version,
            records: v.records,
            signals: v.signals,
            open_findings: v.open_findings,
        });
    }
    let answer =
        ModelsAnswer { models: models.into_values().collect(), versions_listed, versions_total: overview.total };
    axum::Json(answer).into_response()
}

#[derive(Debug, Serialize)]
struct ModelAnswer {
    model: String,
    versions: Vec<VersionDetail>,
    /// Findings and recoveries, oldest first.
    recent_findings: Vec<Arc<Event>>,
    /// Retraining jobs, oldest first.
    jobs: Vec<JobView>,
}

/// `GET /v1/models/{model}`: each version's detectors, recent findings, jobs.
pub(crate) async fn get_model(State(state): State<AppState>, Path(model): Path<String>) -> Response {
    let asked = state.engine.inspector();
    let max = state.config.max_listed_detectors;
    let versions = match tokio::time::timeout(state.config.query_timeout.as_std(), asked.model(&model, max)).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return engine_gone(&e),
        Err(_) => return too_slow(),
    };
    let history = state.events.history(&model);
    if versions.is_empty() && history.is_none() {
        return error_body(StatusCode::NOT_FOUND, &format!("no model {model:?} is known to the engine"));
    }
    let history = history.unwrap_or_default();
    let answer = ModelAnswer {
        model,
        versions,
        recent_findings: history.findings.into_iter().collect(),
        jobs: history.jobs.into_iter().collect(),
    };
    axum::Json(answer).into_response()
}

/// `?since=&limit=` of `/v1/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

/// Events returned when the caller gives no `limit`.
const DEFAULT_EVENTS: usize = 100;

/// `GET /v1/events?since=<seq>&limit=<n>`: the ring of recent events.
pub(crate) async fn events(
    State(state): State<AppState>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return bad_query(&e),
    };
    let max = state.config.max_events_per_call;
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS.min(max)).min(max);
    axum::Json(state.events.page(query.since.unwrap_or(0), limit)).into_response()
}
