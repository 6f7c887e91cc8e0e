//! The live dashboard: `GET /` lists the models with their status, and
//! `GET /models/{model}` draws the charts of a model's recent windows. The
//! pages are drawn by the same renderer as `replay --report`, from a
//! [`Collector`] that keeps the recent windows of each series within
//! [`Limits::LIVE`]; they reload on their own and fetch nothing.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use monitor_report::{Collector, PageMeta, index_page, model_page};

use super::app::AppState;

/// Seconds between reloads of the list of models.
const INDEX_REFRESH: u32 = 10;
/// Seconds between reloads of a model's page.
const MODEL_REFRESH: u32 = 5;

fn html(page: String) -> Response {
    let mut response = (StatusCode::OK, page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn counts(state: &AppState) -> String {
    let m = state.engine.stats().monitor;
    format!(
        "{} records processed; {} findings, {} recoveries, {} retrain requests so far.",
        m.records, m.findings, m.recoveries, m.retrain_requests
    )
}

/// Where a model's page is, its name percent-encoded as a path segment.
fn model_href(model: &str) -> String {
    let mut href = String::from("/models/");
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            href.push(char::from(b));
        } else {
            href.push_str(&format!("%{b:02X}"));
        }
    }
    href
}

/// `GET /`: the models, drift first, then warnings, then healthy.
pub(crate) async fn index(State(state): State<AppState>) -> Response {
    let meta = PageMeta {
        title: "model-monitor".to_owned(),
        lines: vec![counts(&state), format!("This page reloads every {INDEX_REFRESH} s.")],
        refresh_seconds: Some(INDEX_REFRESH),
        back: None,
    };
    html(index_page(&state.dashboard.overview(), &meta, &model_href))
}

/// `GET /models/{model}`: the charts of every version of `model`.
pub(crate) async fn model(State(state): State<AppState>, Path(model): Path<String>) -> Response {
    let meta = PageMeta {
        title: format!("model-monitor: {model}"),
        lines: vec![
            counts(&state),
            format!("The recent windows of each detector; this page reloads every {MODEL_REFRESH} s."),
        ],
        refresh_seconds: Some(MODEL_REFRESH),
        back: Some("/".to_owned()),
    };
    html(model_page(&state.dashboard.model(&model), &meta))
}

/// The collector of a server that has not been given its plan: its charts
/// are titled by detector kind only.
pub(crate) fn unlabelled() -> Collector {
    Collector::new(&monitor_strategies::MonitorPlan::default(), monitor_report::Limits::LIVE)
}

#[cfg(test)]
mod tests {
    use super::model_href;

    #[test]
    fn model_names_are_encoded_in_links() {
        assert_eq!(model_href("fraud-v3"), "/models/fraud-v3");
        assert_eq!(model_href("a/b c\"<"), "/models/a%2Fb%20c%22%3C");
    }
}
