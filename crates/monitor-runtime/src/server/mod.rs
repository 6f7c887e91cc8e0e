//! The HTTP server of `model-monitor serve`: records in over HTTP, the
//! models' state, events and metrics out.
//!
//! HTTP ingestion is one more source into the same engine: a request's
//! body becomes one batch, queued whole through the [`Sink`](crate::Sink)
//! or refused whole with 429. The shards own the monitors; the query
//! endpoints ask them through their query queues. The server's own
//! observer keeps a bounded ring of recent events.
//!
//! | module | concern |
//! | --- | --- |
//! | `config` | `[server]`, with a bound on every size and duration |
//! | `ingest` | `POST /v1/records`: content types, gzip, NDJSON lines, admission |
//! | `query` | `GET /v1/models`, `/v1/models/{model}`, `/v1/events` |
//! | `events` | the observer behind `/v1/events` and recent findings and jobs |
//! | `metrics` | `GET /metrics`: the Prometheus recorder, scrape-time gauges |
//! | `auth` | the bearer token, compared in constant time |
//! | `health` | `GET /healthz`, `GET /readyz` |
//! | `journal` | `/v1/jobs`, `/v1/outbox`: the journal's jobs and deliveries |
//! | `openapi` | `GET /v1/openapi.json` |
//! | `dashboard` | `GET /` and `GET /models/{model}`: the live dashboard |
//! | `app` | the routes, the shared state, shutdown |
//!
//! [`ServerConfig`] is always built, so that every command reads the same
//! config file; the rest needs the `server` feature.

mod config;

pub use self::config::{
    DEFAULT_LISTEN, MAX_BODY_BYTES, MAX_BODY_TIMEOUT, MAX_DECODED_BYTES, MAX_EVENT_RING, MAX_EVENTS_PER_CALL,
    MAX_INGEST_WAIT, MAX_LISTED, MAX_QUERY_TIMEOUT, MAX_QUEUED_RECORDS, MAX_RECENT_PER_MODEL, MAX_REPORTED_REJECTIONS,
    MAX_RETRY_AFTER, MAX_TRACKED_MODELS, ServerConfig,
};

#[cfg(feature = "server")]
mod app;
#[cfg(feature = "server")]
mod auth;
#[cfg(feature = "server")]
mod dashboard;
#[cfg(feature = "server")]
mod events;
#[cfg(feature = "server")]
mod health;
#[cfg(feature = "server")]
mod ingest;
#[cfg(feature = "server")]
mod journal;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
mod openapi;
#[cfg(feature = "server")]
mod query;

#[cfg(feature = "server")]
pub use self::app::{Server, ServerHandle};
#[cfg(feature = "server")]
pub use self::openapi::document as openapi_document;
