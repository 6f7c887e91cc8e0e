//! `POST /v1/records`: bodies into batches, batches into the engine.
//!
//! HTTP is one more source: a body is read within `max_body_bytes` and
//! `body_timeout`, inflated within `max_decoded_bytes` when gzip, parsed
//! into records (a JSON object, a JSON array, or NDJSON, by content type),
//! and the whole batch is queued at once or not at all. A 2xx means that
//! every record it counts as accepted is in a shard queue; a 429 means that
//! none is, and that the same body may be sent again.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use monitor_core::record::Record;
use monitor_core::{Error, RecordError};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::app::{AppState, error_body};
use crate::engine::RejectReason;

/// How a body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One JSON object, or a JSON array of them (`application/json`).
    Json,
    /// One JSON object a line (`application/x-ndjson` and its aliases, or
    /// no content type).
    Ndjson,
}

/// The content types taken as NDJSON.
const NDJSON_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-seq",
];

/// The format of a body with `content_type`; `Err` with the answer's text
/// for a type this endpoint does not take.
pub(crate) fn format_of(content_type: Option<&str>) -> Result<Format, String> {
    let Some(content_type) = content_type else { return Ok(Format::Ndjson) };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" {
        Ok(Format::Json)
    } else if NDJSON_TYPES.contains(&essence.as_str()) {
        Ok(Format::Ndjson)
    } else {
        Err(format!(
            "content type `{essence}` is not taken: send application/json (an object or an array) or application/x-ndjson"
        ))
    }
}

/// Whether a body with `encoding` is gzip; `Err` for other encodings.
pub(crate) fn is_gzip(encoding: Option<&str>) -> Result<bool, String> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(e) if e.is_empty() || e == "identity" => Ok(false),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(true),
        Some(e) => Err(format!("content encoding `{e}` is not taken: send gzip or no encoding")),
    }
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over a size limit: 413.
    TooLarge(String),
    /// Not readable (a broken gzip stream, a dropped connection): 400.
    Bad(String),
    /// Not sent within `body_timeout`: 408.
    TooSlow,
}

/// Inflates a gzip body, never holding more than `max` bytes of it.
pub(crate) fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Bad(format!("the gzip body cannot be inflated: {e}")))?;
    if out.len() > max {
        return Err(BodyError::TooLarge(format!(
            "the body inflates to more than server.max_decoded_bytes ({max} bytes)"
        )));
    }
    Ok(out)
}

/// Reads a whole body of at most `max` bytes.
async fn read_body(body: Body, max: usize, timeout: std::time::Duration) -> Result<Bytes, BodyError> {
    let collect = Limited::new(body, max).collect();
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(format!("the body is larger than server.max_body_bytes ({max} bytes)")))
        }
        Ok(Err(e)) => Err(BodyError::Bad(format!("the body could not be read: {e}"))),
    }
}

/// A line or element that did not become a record.
#[derive(Debug)]
pub(crate) struct Rejection {
    /// 1-based: the NDJSON line, or the element of a JSON array.
    pub(crate) line: u64,
    pub(crate) error: RecordError,
    /// The record's `model`, when it could be read.
    pub(crate) model: Option<String>,
    pub(crate) reason: RejectReason,
}

/// A body, parsed.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Lines (or array elements) in the body, blank lines included.
    pub(crate) lines: u64,
    /// Records with their 1-based line, in body order.
    pub(crate) records: Vec<(u64, Record)>,
    pub(crate) rejected: Vec<Rejection>,
}

#[derive(Deserialize)]
struct ModelOnly {
    #[serde(default)]
    model: Option<String>,
}

/// The `model` of a line that was rejected, if it can be read at all.
fn model_of(text: &str) -> Option<String> {
    serde_json::from_str::<ModelOnly>(text).ok().and_then(|m| m.model).filter(|m| !m.is_empty())
}

/// Parses an NDJSON body: one record a line, blank lines skipped, lines
/// over `max_line` bytes rejected with their number.
pub(crate) fn parse_ndjson(data: &[u8], max_line: usize, received_at: DateTime<Utc>) -> Parsed {
    let mut parsed = Parsed::default();
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    for (i, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = i as u64 + 1;
        parsed.lines = line;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > max_line {
            let error = RecordError::record(format!(
                "line is {} bytes, longer than the limit of {max_line} bytes (server.max_line_bytes)",
                raw.len()
            ))
            .at_line(line);
            parsed.rejected.push(Rejection { line, error, model: None, reason: RejectReason::LineTooLong });
            continue;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => {
                let error =
                    RecordError::record(format!("line is not valid UTF-8 (bad byte at byte {})", e.valid_up_to() + 1))
                        .at_line(line);
                parsed.rejected.push(Rejection { line, error, model: None, reason: RejectReason::Malformed });
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match Record::parse_line(text, line, received_at) {
            Ok(record) => parsed.records.push((line, record)),
            Err(error) => {
                parsed.rejected.push(Rejection { line, error, model: model_of(text), reason: RejectReason::Malformed });
            }
        }
    }
    // A final newline ends the last line; it does not start another.
    if data.ends_with(b"\n") {
        parsed.lines -= 1;
    }
    parsed
}

/// Parses a JSON body: one object, or an array of objects numbered from 1.
pub(crate) fn parse_json(data: &[u8], received_at: DateTime<Utc>) -> Parsed {
    let mut parsed = Parsed::default();
    let value: Json = match serde_json::from_slice(data) {
        Ok(v) => v,
        Err(e) => {
            parsed.lines = 1;
            let line = e.line().max(1) as u64;
            let error = RecordError::record(format!("malformed JSON: {e}")).at_line(line);
            parsed.rejected.push(Rejection { line, error, model: None, reason: RejectReason::Malformed });
            return parsed;
        }
    };
    let elements = match value {
        Json::Array(items) => items,
        other => vec![other],
    };
    parsed.lines = elements.len() as u64;
    for (i, element) in elements.into_iter().enumerate() {
        let line = i as u64 + 1;
        let model = element.get("model").and_then(Json::as_str).filter(|m| !m.is_empty()).map(str::to_owned);
        match Record::from_json(element, received_at) {
            Ok(record) => parsed.records.push((line, record)),
            Err(e) => {
                let error = e.at_line(line);
                parsed.rejected.push(Rejection { line, error, model, reason: RejectReason::Malformed });
            }
        }
    }
    parsed
}

/// A rejected line, as an answer lists it.
#[derive(Debug, Serialize)]
pub(crate) struct LineError {
    /// 1-based: the NDJSON line, or the element of a JSON array.
    pub(crate) line: u64,
    pub(crate) field: Option<String>,
    pub(crate) value: Option<String>,
    pub(crate) reason: String,
}

/// The answer to `POST /v1/records`.
#[derive(Debug, Serialize)]
pub(crate) struct IngestAnswer {
    /// Records queued for processing.
    pub(crate) accepted: usize,
    /// Lines rejected.
    pub(crate) rejected: usize,
    /// The first rejected lines.
    pub(crate) errors: Vec<LineError>,
    /// Rejected lines not listed in `errors`.
    pub(crate) errors_not_listed: usize,
    /// Why nothing was accepted, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &header::HeaderName) -> Result<Option<&'h str>, String> {
    headers.get(name).map(|v| v.to_str().map_err(|_| format!("the {name} header is not readable text"))).transpose()
}

/// `POST /v1/records`.
pub(crate) async fn post_records(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let config = &state.config;
    let format = match header_str(&headers, &header::CONTENT_TYPE).and_then(format_of) {
        Ok(f) => f,
        Err(e) => return error_body(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e),
    };
    let gzip = match header_str(&headers, &header::CONTENT_ENCODING).and_then(is_gzip) {
        Ok(g) => g,
        Err(e) => return error_body(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e),
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_body_bytes as u64) {
        let message = format!("the body is larger than server.max_body_bytes ({} bytes)", config.max_body_bytes);
        return error_body(StatusCode::PAYLOAD_TOO_LARGE, &message);
    }
    let bytes = match read_body(body, config.max_body_bytes, config.body_timeout.as_std()).await {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let (max_decoded, max_line) = (config.max_decoded_bytes, config.max_line_bytes);
    let received_at = Utc::now();
    // Inflating and parsing take CPU in proportion to the body: off the
    // threads that serve connections.
    let parsed = tokio::task::spawn_blocking(move || {
        let inflated;
        let data: &[u8] = if gzip {
            inflated = gunzip(&bytes, max_decoded)?;
            &inflated
        } else {
            &bytes
        };
        Ok(match format {
            Format::Json => parse_json(data, received_at),
            Format::Ndjson => parse_ndjson(data, max_line, received_at),
        })
    })
    .await;
    let parsed = match parsed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return body_error(e),
        Err(e) => {
            tracing::error!(error = %e, "parsing a request body failed");
            return error_body(StatusCode::INTERNAL_SERVER_ERROR, "the body could not be parsed");
        }
    };
    admit(&state, parsed).await
}

fn body_error(e: BodyError) -> Response {
    match e {
        BodyError::TooLarge(m) => error_body(StatusCode::PAYLOAD_TOO_LARGE, &m),
        BodyError::Bad(m) => error_body(StatusCode::BAD_REQUEST, &m),
        BodyError::TooSlow => {
            error_body(StatusCode::REQUEST_TIMEOUT, "the body was not sent within server.body_timeout")
        }
    }
}

/// Queues the parsed records whole, counts the rejections, and answers.
async fn admit(state: &AppState, parsed: Parsed) -> Response {
    let config = &state.config;
    let Parsed { lines, records, rejected } = parsed;
    if records.is_empty() && rejected.is_empty() {
        return error_body(StatusCode::BAD_REQUEST, "the body holds no record");
    }
    if records.len() > config.max_queued_records {
        let message = format!(
            "{} records in one request, more than server.max_queued_records ({}); send smaller batches",
            records.len(),
            config.max_queued_records
        );
        return error_body(StatusCode::PAYLOAD_TOO_LARGE, &message);
    }
    let accepted = records.len();
    let deadline = tokio::time::Instant::now() + config.ingest_wait.as_std();
    let permit = if accepted > 0 {
        let wanted = u32::try_from(accepted).unwrap_or(u32::MAX);
        match tokio::time::timeout_at(deadline, Arc::clone(&state.admission).acquire_many_owned(wanted)).await {
            Ok(Ok(permit)) => Some(permit),
            Ok(Err(_)) => return unavailable(),
            Err(_) => {
                state.sink.count_overloaded(&records);
                return too_many(state);
            }
        }
    } else {
        None
    };
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    // Numbered once queued (and, with a journal, written to its ingest log).
    let base = match state.sink.offer_lines(lines, records, left).await {
        Ok(offered) => {
            if let (Some(receipt), Some(permit)) = (offered.receipt, permit) {
                // The records' share of the budget comes back once processed.
                tokio::spawn(async move {
                    receipt.processed().await;
                    drop(permit);
                });
            }
            offered.base
        }
        Err(refused) => {
            return match refused.error {
                Error::Full => too_many(state),
                Error::Closed => unavailable(),
                e => {
                    tracing::error!(error = %e, "a request's records could not be written to the journal");
                    error_body(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the journal cannot be written; nothing in this request was accepted: send it again later",
                    )
                }
            };
        }
    };
    record_rejections(state, base, &rejected);
    let listed = rejected.len().min(config.max_reported_rejections);
    let errors = rejected
        .iter()
        .take(listed)
        .map(|r| LineError {
            line: r.line,
            field: r.error.field.clone(),
            value: r.error.value.clone(),
            reason: r.error.reason.clone(),
        })
        .collect();
    let status = if accepted == 0 { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let answer = IngestAnswer {
        accepted,
        rejected: rejected.len(),
        errors,
        errors_not_listed: rejected.len() - listed,
        error: (accepted == 0).then(|| "no record in the body is valid; see `errors`".to_owned()),
    };
    (status, axum::Json(answer)).into_response()
}

fn record_rejections(state: &AppState, base: u64, rejected: &[Rejection]) {
    for r in rejected {
        state.sink.reject_for(base + r.line - 1, &r.error, r.model.as_deref(), r.reason);
    }
}

fn too_many(state: &AppState) -> Response {
    let secs = state.config.retry_after.as_std().as_secs_f64().ceil().max(1.0) as u64;
    let mut response = error_body(
        StatusCode::TOO_MANY_REQUESTS,
        "the ingest queue is full; nothing in this request was accepted: send it again after Retry-After",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

fn unavailable() -> Response {
    error_body(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down; nothing in this request was accepted")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn content_types_pick_the_format() {
        assert_eq!(format_of(None), Ok(Format::Ndjson));
        assert_eq!(format_of(Some("application/json; charset=utf-8")), Ok(Format::Json));
        assert_eq!(format_of(Some("Application/X-NDJSON")), Ok(Format::Ndjson));
        assert!(format_of(Some("text/csv")).unwrap_err().contains("text/csv"));
        assert_eq!(is_gzip(Some("gzip")), Ok(true));
        assert_eq!(is_gzip(None), Ok(false));
        assert!(is_gzip(Some("br")).is_err());
    }

    #[test]
    fn ndjson_lines_are_numbered_and_bounded() {
        let body = b"{\"model\": \"a\", \"latency_ms\": 1}\n\n{\"model\": \"a\", \"latency_ms\": -1}\n{bad\n{\"model\": \"a\", \"latency_ms\": 1234567890123456}\n";
        let parsed = parse_ndjson(body, 40, now());
        assert_eq!(parsed.lines, 5);
        assert_eq!(parsed.records.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1]);
        let rejected: Vec<_> = parsed.rejected.iter().map(|r| (r.line, r.reason, r.model.clone())).collect();
        assert_eq!(
            rejected,
            [
                (3, RejectReason::Malformed, Some("a".to_owned())),
                (4, RejectReason::Malformed, None),
                (5, RejectReason::LineTooLong, None),
            ]
        );
        assert_eq!(parsed.rejected[0].error.field.as_deref(), Some("latency_ms"));
        assert_eq!(parsed.rejected[2].error.line, Some(5));
    }

    #[test]
    fn json_bodies_are_an_object_or_an_array() {
        let one = parse_json(br#"{"model": "a", "latency_ms": 1}"#, now());
        assert_eq!((one.records.len(), one.rejected.len()), (1, 0));
        let many = parse_json(br#"[{"model": "a", "latency_ms": 1}, {"model": "b"}, 3]"#, now());
        assert_eq!(many.records.len(), 1);
        assert_eq!(many.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(many.rejected[0].model.as_deref(), Some("b"));
        let broken = parse_json(b"{\n\"model\": ", now());
        assert_eq!(broken.rejected[0].line, 2);
        assert!(broken.rejected[0].error.reason.contains("malformed JSON"));
    }

    #[test]
    fn gzip_is_inflated_within_its_bound() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&[b'x'; 10_000]).unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(gunzip(&gz, 10_000).unwrap().len(), 10_000);
        assert!(matches!(gunzip(&gz, 9_999), Err(BodyError::TooLarge(_))));
        assert!(matches!(gunzip(b"not gzip", 100), Err(BodyError::Bad(_))));
    }
}
