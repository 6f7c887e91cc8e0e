//! `/v1/jobs` and `/v1/outbox`: the retrain jobs and the outbox of the
//! daemon's journal, listed, and acted on by an operator.
//!
//! `POST /v1/jobs/{id}/retry` asks for a job again on the running engine
//! (its scheduler dispatches it under the same idempotency key);
//! `POST /v1/jobs/{id}/cancel` marks a job not finished cancelled, so that
//! no start asks for it again; `POST /v1/outbox/{id}/retry` makes a pending
//! or failed delivery due now. Without `engine.state_dir` every route
//! answers 404. Journal calls block on disk: they run off the async threads.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::app::{AppState, error_body};
use crate::journal::Journal;

/// The most rows one answer lists.
pub(crate) const MAX_ROWS: usize = 1000;
/// Rows listed when `limit` is not given.
const DEFAULT_ROWS: usize = 50;

/// `?status=&limit=` of `/v1/jobs`, `?receiver=&status=&limit=` of `/v1/outbox`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    receiver: Option<String>,
    limit: Option<usize>,
}

impl ListQuery {
    /// The rows to list; `Err` with the answer's text when out of range.
    fn limit(&self) -> Result<usize, String> {
        match self.limit {
            None => Ok(DEFAULT_ROWS),
            Some(n) if (1..=MAX_ROWS).contains(&n) => Ok(n),
            Some(n) => Err(format!("limit must be between 1 and {MAX_ROWS} (got {n})")),
        }
    }
}

fn no_journal() -> Response {
    error_body(StatusCode::NOT_FOUND, "this daemon keeps no journal: set engine.state_dir")
}

/// Runs `f` on the journal off the async threads, and answers with its
/// value as JSON.
async fn with_journal<T: serde::Serialize + Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Journal) -> Result<T, monitor_core::Error> + Send + 'static,
) -> Response {
    let Some(journal) = state.engine.journal().cloned() else { return no_journal() };
    match tokio::task::spawn_blocking(move || f(&journal)).await {
        Ok(Ok(value)) => axum::Json(value).into_response(),
        Ok(Err(e)) => journal_error(&e),
        Err(e) => error_body(StatusCode::INTERNAL_SERVER_ERROR, &format!("the journal call failed: {e}")),
    }
}

/// 404 for what the journal does not hold, 409 for an action the row's
/// status refuses, 503 for a journal that cannot be used.
fn journal_error(e: &monitor_core::Error) -> Response {
    let text = e.to_string();
    let status = if text.contains(": no job ") || text.contains(": no outbox row ") {
        StatusCode::NOT_FOUND
    } else if text.contains("can be cancelled") || text.contains("can be retried") {
        StatusCode::CONFLICT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error_body(status, &text)
}

/// `GET /v1/jobs`: the newest jobs first.
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error_body(StatusCode::BAD_REQUEST, &format!("bad query string: {}", e.body_text())),
    };
    let limit = match query.limit() {
        Ok(n) => n,
        Err(e) => return error_body(StatusCode::BAD_REQUEST, &e),
    };
    with_journal(&state, move |j| j.jobs(query.status.as_deref(), limit).map(|jobs| json!({ "jobs": jobs }))).await
}

/// `GET /v1/jobs/{id}`.
pub(crate) async fn get_job(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    with_journal(&state, move |j| {
        j.job(&id)?.ok_or_else(|| {
            monitor_core::Error::io(
                format!("journal {}", j.path().display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no job {id}")),
            )
        })
    })
    .await
}

/// `POST /v1/jobs/{id}/retry`: asked for again on the running engine.
pub(crate) async fn retry_job(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if state.engine.journal().is_none() {
        return no_journal();
    }
    let engine = state.engine.clone();
    match tokio::task::spawn_blocking(move || engine.retry_job(&id)).await {
        Ok(Ok(job)) => axum::Json(job).into_response(),
        Ok(Err(e)) => journal_error(&e),
        Err(e) => error_body(StatusCode::INTERNAL_SERVER_ERROR, &format!("the journal call failed: {e}")),
    }
}

/// `POST /v1/jobs/{id}/cancel`.
pub(crate) async fn cancel_job(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    with_journal(&state, move |j| j.cancel_job(&id)).await
}

/// `GET /v1/outbox`: the newest rows first.
pub(crate) async fn list_outbox(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error_body(StatusCode::BAD_REQUEST, &format!("bad query string: {}", e.body_text())),
    };
    let limit = match query.limit() {
        Ok(n) => n,
        Err(e) => return error_body(StatusCode::BAD_REQUEST, &e),
    };
    with_journal(&state, move |j| {
        j.outbox_rows(query.receiver.as_deref(), query.status.as_deref(), limit).map(|rows| json!({ "rows": rows }))
    })
    .await
}

/// `POST /v1/outbox/{id}/retry`: due now.
pub(crate) async fn retry_outbox(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return error_body(StatusCode::BAD_REQUEST, &format!("`{id}` is not an outbox row id (a number)"));
    };
    with_journal(&state, move |j| j.retry_outbox(id)).await
}
