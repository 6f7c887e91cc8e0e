//! `[server]`: where `model-monitor serve` listens, who may talk to it, and
//! the bounds on what a request may cost.
//!
//! The table parses and validates whether or not the `server` feature is
//! built, so that one config file serves `replay`, `check-config` and
//! `serve` alike.

use std::net::SocketAddr;
use std::time::Duration;

use monitor_core::Error;
use monitor_core::duration::HumanDuration;
use serde::{Deserialize, Serialize};

use crate::engine::metrics::{DEFAULT_METRICS_MAX_MODELS, MAX_METRICS_MAX_MODELS};
use crate::source::{DEFAULT_MAX_LINE_BYTES, MAX_LINE_BYTES_LIMIT};

/// The default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9400";

/// `[server]`: the HTTP daemon's settings.
///
/// ```
/// let config = monitor_runtime::Config::from_toml(r#"
///     [server]
///     listen = "0.0.0.0:9400"
///     token_env = "MODEL_MONITOR_TOKEN"
///     max_body_bytes = 8388608
///     ingest_wait = "20ms"
/// "#)?;
/// assert_eq!(config.server.listen.port(), 9400);
/// assert_eq!(config.server.token_env.as_deref(), Some("MODEL_MONITOR_TOKEN"));
/// # Ok::<(), monitor_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address and port to listen on (default `127.0.0.1:9400`). A
    /// non-loopback address needs a token, or `--insecure`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The environment variable that holds the bearer token. Without it,
    /// nothing asks for a token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Whether the read endpoints (`/v1/models`, `/v1/events`, `/metrics`,
    /// `/v1/openapi.json`) ask for the token too (default false). The
    /// probes `/healthz` and `/readyz` never do.
    #[serde(default)]
    pub protect_reads: bool,
    /// The largest request body, as sent (compressed or not), in bytes
    /// (default 16 MiB, at most 1 GiB); larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The largest body once decompressed, in bytes (default 64 MiB, at
    /// most 1 GiB, at least `max_body_bytes`); a gzip body that inflates past it gets 413.
    #[serde(default = "default_max_decoded_bytes")]
    pub max_decoded_bytes: usize,
    /// The longest NDJSON line, in bytes (default 1 MiB, at most 64 MiB);
    /// a longer line is rejected with its number.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Records accepted over HTTP and not yet processed (default 100,000,
    /// at most 10,000,000): past it, requests get 429. This bounds the
    /// memory that ingestion can hold.
    #[serde(default = "default_max_queued_records")]
    pub max_queued_records: usize,
    /// How long a request waits for room in the queues before it gets 429
    /// (default 50ms, at most 60s).
    #[serde(default = "default_ingest_wait")]
    pub ingest_wait: HumanDuration,
    /// The `Retry-After` of a 429, rounded up to whole seconds (default 1s,
    /// at most 1h).
    #[serde(default = "default_retry_after")]
    pub retry_after: HumanDuration,
    /// How long a client may take to send a request body (default 30s, at
    /// most 10m); slower ones get 408.
    #[serde(default = "default_body_timeout")]
    pub body_timeout: HumanDuration,
    /// How long a query waits for the shards' answer (default 5s, at most
    /// 5m); past it, 503.
    #[serde(default = "default_query_timeout")]
    pub query_timeout: HumanDuration,
    /// Rejected lines described one by one in an answer (default 100, at
    /// most 10,000); the rest are counted.
    #[serde(default = "default_max_reported_rejections")]
    pub max_reported_rejections: usize,
    /// Model versions listed by `/v1/models` at most (default 1,000, at most
    /// 100,000).
    #[serde(default = "default_max_listed_versions")]
    pub max_listed_versions: usize,
    /// Detectors listed per version by `/v1/models/{model}` at most
    /// (default 1,000, at most 100,000).
    #[serde(default = "default_max_listed_detectors")]
    pub max_listed_detectors: usize,
    /// Recent events kept for `/v1/events` (default 10,000, at most 1,000,000).
    #[serde(default = "default_event_ring")]
    pub event_ring: usize,
    /// Events returned by one `/v1/events` call at most (default 1,000, at
    /// most 100,000).
    #[serde(default = "default_max_events_per_call")]
    pub max_events_per_call: usize,
    /// Recent findings and jobs kept per model (default 20 each, at most 1,000).
    #[serde(default = "default_recent_per_model")]
    pub recent_per_model: usize,
    /// Models whose recent findings and jobs are kept (default 1,000, at
    /// most 100,000); the least recently active is forgotten first.
    #[serde(default = "default_tracked_models")]
    pub tracked_models: usize,
    /// Models that get a `model` label of their own in `/metrics` (default
    /// 100, at most 10,000); the others share the label `_other`.
    #[serde(default = "default_metrics_max_models")]
    pub metrics_max_models: usize,
}

/// Upper bound of `server.max_body_bytes`.
pub const MAX_BODY_BYTES: usize = 1 << 30;
/// Upper bound of `server.max_decoded_bytes`.
pub const MAX_DECODED_BYTES: usize = 1 << 30;
/// Upper bound of `server.max_queued_records`.
pub const MAX_QUEUED_RECORDS: usize = 10_000_000;
/// Upper bound of `server.ingest_wait`.
pub const MAX_INGEST_WAIT: Duration = Duration::from_secs(60);
/// Upper bound of `server.retry_after`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Upper bound of `server.body_timeout`.
pub const MAX_BODY_TIMEOUT: Duration = Duration::from_secs(600);
/// Upper bound of `server.query_timeout`.
pub const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Upper bound of `server.max_reported_rejections`.
pub const MAX_REPORTED_REJECTIONS: usize = 10_000;
/// Upper bound of `server.max_listed_versions` and `server.max_listed_detectors`.
pub const MAX_LISTED: usize = 100_000;
/// Upper bound of `server.event_ring`.
pub const MAX_EVENT_RING: usize = 1_000_000;
/// Upper bound of `server.max_events_per_call`.
pub const MAX_EVENTS_PER_CALL: usize = 100_000;
/// Upper bound of `server.recent_per_model`.
pub const MAX_RECENT_PER_MODEL: usize = 1_000;
/// Upper bound of `server.tracked_models`.
pub const MAX_TRACKED_MODELS: usize = 100_000;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9400))
}
fn default_max_body_bytes() -> usize {
    16 << 20
}
fn default_max_decoded_bytes() -> usize {
    64 << 20
}
fn default_max_line_bytes() -> usize {
    DEFAULT_MAX_LINE_BYTES
}
fn default_max_queued_records() -> usize {
    100_000
}
fn default_ingest_wait() -> HumanDuration {
    HumanDuration::from_millis(50)
}
fn default_retry_after() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_body_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_query_timeout() -> HumanDuration {
    HumanDuration::from_secs(5)
}
fn default_max_reported_rejections() -> usize {
    100
}
fn default_max_listed_versions() -> usize {
    1_000
}
fn default_max_listed_detectors() -> usize {
    1_000
}
fn default_event_ring() -> usize {
    10_000
}
fn default_max_events_per_call() -> usize {
    1_000
}
fn default_recent_per_model() -> usize {
    20
}
fn default_tracked_models() -> usize {
    1_000
}
fn default_metrics_max_models() -> usize {
    DEFAULT_METRICS_MAX_MODELS
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            token_env: None,
            protect_reads: false,
            max_body_bytes: default_max_body_bytes(),
            max_decoded_bytes: default_max_decoded_bytes(),
            max_line_bytes: default_max_line_bytes(),
            max_queued_records: default_max_queued_records(),
            ingest_wait: default_ingest_wait(),
            retry_after: default_retry_after(),
            body_timeout: default_body_timeout(),
            query_timeout: default_query_timeout(),
            max_reported_rejections: default_max_reported_rejections(),
            max_listed_versions: default_max_listed_versions(),
            max_listed_detectors: default_max_listed_detectors(),
            event_ring: default_event_ring(),
            max_events_per_call: default_max_events_per_call(),
            recent_per_model: default_recent_per_model(),
            tracked_models: default_tracked_models(),
            metrics_max_models: default_metrics_max_models(),
        }
    }
}

impl ServerConfig {
    /// Checks every size and duration against its bounds; errors name the
    /// dotted key (`server.max_body_bytes`).
    pub fn validate(&self) -> Result<(), Error> {
        let sizes = [
            ("server.max_body_bytes", self.max_body_bytes, MAX_BODY_BYTES),
            ("server.max_decoded_bytes", self.max_decoded_bytes, MAX_DECODED_BYTES),
            ("server.max_line_bytes", self.max_line_bytes, MAX_LINE_BYTES_LIMIT),
            ("server.max_queued_records", self.max_queued_records, MAX_QUEUED_RECORDS),
            ("server.max_reported_rejections", self.max_reported_rejections, MAX_REPORTED_REJECTIONS),
            ("server.max_listed_versions", self.max_listed_versions, MAX_LISTED),
            ("server.max_listed_detectors", self.max_listed_detectors, MAX_LISTED),
            ("server.event_ring", self.event_ring, MAX_EVENT_RING),
            ("server.max_events_per_call", self.max_events_per_call, MAX_EVENTS_PER_CALL),
            ("server.recent_per_model", self.recent_per_model, MAX_RECENT_PER_MODEL),
            ("server.tracked_models", self.tracked_models, MAX_TRACKED_MODELS),
            ("server.metrics_max_models", self.metrics_max_models, MAX_METRICS_MAX_MODELS),
        ];
        for (key, value, max) in sizes {
            if value == 0 || value > max {
                return Err(Error::config(key, format!("must be between 1 and {max} (got {value})")));
            }
        }
        let durations = [
            ("server.ingest_wait", self.ingest_wait, Duration::ZERO, MAX_INGEST_WAIT),
            ("server.retry_after", self.retry_after, Duration::from_secs(1), MAX_RETRY_AFTER),
            ("server.body_timeout", self.body_timeout, Duration::from_millis(1), MAX_BODY_TIMEOUT),
            ("server.query_timeout", self.query_timeout, Duration::from_millis(1), MAX_QUERY_TIMEOUT),
        ];
        for (key, value, min, max) in durations {
            if value.as_std() < min || value.as_std() > max {
                return Err(Error::config(
                    key,
                    format!("must be between {} and {} (got {value})", HumanDuration(min), HumanDuration(max)),
                ));
            }
        }
        if self.max_decoded_bytes < self.max_body_bytes {
            return Err(Error::config(
                "server.max_decoded_bytes",
                format!(
                    "must be at least server.max_body_bytes ({}), since an uncompressed body is its own decoding (got {})",
                    self.max_body_bytes, self.max_decoded_bytes
                ),
            ));
        }
        if let Some(var) = &self.token_env {
            let valid = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::config(
                    "server.token_env",
                    format!("must name an environment variable (letters, digits and `_`), got {var:?}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn err(text: &str) -> String {
        match Config::from_toml(text) {
            Ok(c) => panic!("accepted {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_listen_on_loopback() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.server.listen.to_string(), super::DEFAULT_LISTEN);
        assert_eq!(config.server.token_env, None);
    }

    #[test]
    fn every_bound_is_checked_and_named() {
        assert_eq!(
            err("[server]\nmax_body_bytes = 0\n"),
            "config error at `server.max_body_bytes`: must be between 1 and 1073741824 (got 0)"
        );
        assert!(err("[server]\nmax_line_bytes = 1000000000\n").contains("server.max_line_bytes"));
        assert!(err("[server]\nevent_ring = 2000000\n").contains("server.event_ring"));
        assert!(err("[server]\nmetrics_max_models = 0\n").contains("server.metrics_max_models"));
        assert_eq!(
            err("[server]\ningest_wait = \"2m\"\n"),
            "config error at `server.ingest_wait`: must be between 0s and 1m (got 2m)"
        );
        assert!(err("[server]\nretry_after = \"0s\"\n").contains("server.retry_after"));
        assert!(err("[server]\nquery_timeout = \"1h\"\n").contains("server.query_timeout"));
        assert!(err("[server]\nbody_timeout = \"11m\"\n").contains("server.body_timeout"));
        assert!(
            err("[server]\nmax_body_bytes = 2000\nmax_decoded_bytes = 1000\n").contains("server.max_decoded_bytes")
        );
        assert!(err("[server]\ntoken_env = \"MY TOKEN\"\n").contains("server.token_env"));
        assert!(err("[server]\nlisten = \"nowhere\"\n").contains("server.listen"));
        assert!(err("[server]\nlistn = \"127.0.0.1:1\"\n").contains("unknown field `listn`"));
    }
}
