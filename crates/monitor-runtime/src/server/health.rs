//! `GET /healthz` (the process answers) and `GET /readyz` (config loaded,
//! every shard and observer running, the journal taking writes, not
//! shutting down).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::app::AppState;
use crate::engine::ObserverHealth;

/// `GET /healthz`: 200 while the process serves requests.
pub(crate) async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    draining: bool,
    shards: usize,
    shards_running: usize,
    observers: Vec<ObserverHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal: Option<JournalReadiness>,
}

/// The journal's part of `/readyz`.
#[derive(Debug, Serialize)]
struct JournalReadiness {
    /// Whether its last write succeeded.
    ok: bool,
    /// Writes that failed since the start.
    errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

/// `GET /readyz`: 200 when records can be taken in and handed on, else 503.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let health = state.engine.health();
    let draining = state.is_draining() || state.engine.is_stopping();
    let journal = state.engine.journal().map(|j| {
        let h = j.health();
        JournalReadiness {
            ok: !h.failing(),
            errors: h.errors(),
            last_error: h.failing().then(|| h.last_error()).flatten(),
        }
    });
    let ready = health.ready() && !draining && journal.as_ref().is_none_or(|j| j.ok);
    let body = Readiness {
        ready,
        draining,
        shards: health.shards,
        shards_running: health.shards_running,
        observers: health.observers,
        journal,
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}
