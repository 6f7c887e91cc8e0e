//! Observers of model-monitor: the retrain scheduler and its dispatchers, the
//! webhook alerter, and log and file output.
//!
//! Every observer here implements [`monitor_core::observer::Observer`] and is
//! built from its `[[observers]]` config table by a factory registered under
//! its `kind`:
//!
//! | kind | observer | what it does |
//! | --- | --- | --- |
//! | `retrain` | [`RetrainScheduler`] | queues a [`RetrainJob`](monitor_core::event::RetrainJob) per `retrain_requested` event, at most one in flight per model, and hands it to a [`Dispatcher`](monitor_core::dispatch::Dispatcher): a [`CommandDispatcher`], an [`HttpDispatcher`] (Airflow, Argo Workflows, GitHub Actions, any API), from code a [`ChannelDispatcher`], or one of your own; reports `job_status` events back onto the bus |
//! | `webhook` | [`WebhookAlerter`] | POSTs events as our JSON, or as Slack, PagerDuty or Alertmanager expect them, with retries, grouping, deduplication and signatures |
//! | `log` | [`LogObserver`] | one `tracing` line per event |
//! | `file` | [`NdjsonObserver`] | one JSON line per event, to a file or any writer |
//!
//! [`register_builtins`] adds these kinds to an
//! [`ObserverRegistry`]; a crate of your own can register more kinds next to
//! them (see `docs/EXTENDING.md`), depending on `monitor-core` alone.
//!
//! The retrain observer builds its `dispatch = { kind = ... }` through the
//! [`DispatcherRegistry`](monitor_core::dispatch::DispatcherRegistry) of its
//! [`BuildContext`](monitor_core::registry::BuildContext):
//! [`builtin_dispatchers`] holds the kinds `command` and `http`, and a crate
//! of your own can register more next to them.
//!
//! Everything here runs on the engine's tokio runtime and only ever awaits:
//! jobs and their child processes, HTTP requests and webhook deliveries are
//! tasks, never threads, and each observer's `flush` waits for its queued
//! work before shutdown without blocking the runtime.

//! # Example
//!
//! ```
//! use monitor_core::registry::BuildContext;
//! use monitor_observers::{builtin_dispatchers, builtin_registry};
//!
//! let registry = builtin_registry();
//! let ctx = BuildContext { dispatchers: builtin_dispatchers(), ..Default::default() };
//! let spec = serde_json::json!({
//!     "kind": "retrain",
//!     "dispatch": { "kind": "command", "program": "sh", "args": ["retrain.sh", "{model}", "{job_id}"], "timeout": "10m" },
//! });
//! let scheduler = registry.build("observers[0]", &spec, &ctx)?;
//! assert_eq!(scheduler.name(), "retrain");
//!
//! // Mistakes are config errors that name the key and list what is known.
//! let spec = serde_json::json!({ "kind": "webhook", "url": "http://127.0.0.1:9000/hook", "fromat": "json" });
//! let err = registry.build("observers[1]", &spec, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
//! assert!(err.starts_with("config error at `observers[1].fromat`: unknown field `fromat`, expected one of"));
//! let spec = serde_json::json!({ "kind": "retrain", "dispatch": { "kind": "cron" } });
//! let err = registry.build("observers[2]", &spec, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
//! assert_eq!(err, "config error at `observers[2].dispatch.kind`: unknown dispatcher kind `cron`; known kinds: command, http");
//! // A program that is not there is caught now, not at the first job.
//! let spec = serde_json::json!({ "kind": "retrain", "dispatch": { "kind": "command", "program": "./no-such-script.sh" } });
//! let err = registry.build("observers[3]", &spec, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
//! assert_eq!(err, "config error at `observers[3].dispatch.program`: `./no-such-script.sh` does not exist");
//! # Ok::<(), monitor_core::Error>(())
//! ```
//!
//! # Feature flags
//!
//! - `test-util`: the `testing` module, with `WebhookReceiver`, a real HTTP
//!   server on `127.0.0.1:0` that records requests and answers from a script,
//!   for tests of webhooks and HTTP dispatchers.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bounds;
pub mod dispatch;
mod failures;
pub mod file;
pub mod log;
pub mod retrain;
pub mod retry;
pub mod secret;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod text;
pub mod webhook;

use monitor_core::observer::ObserverRegistry;

pub use crate::dispatch::{
    ChannelDispatcher, CommandDispatcher, HttpDispatcher, HttpPreset, builtin_dispatchers, register_builtin_dispatchers,
};
pub use crate::file::NdjsonObserver;
pub use crate::log::LogObserver;
pub use crate::retrain::RetrainScheduler;
pub use crate::webhook::{Format, WebhookAlerter};

/// Registers the kinds `retrain`, `webhook`, `log` and `file` in `registry`.
///
/// The `retrain` kind builds its dispatcher through the
/// [`DispatcherRegistry`](monitor_core::dispatch::DispatcherRegistry) of the build context; see [`builtin_dispatchers`].
pub fn register_builtins(registry: &mut ObserverRegistry) {
    registry
        .register("retrain", |config, ctx| Ok(Box::new(RetrainScheduler::from_config(config, ctx)?)))
        .register("webhook", |config, ctx| Ok(Box::new(WebhookAlerter::from_config(config, ctx)?)))
        .register("log", |config, ctx| Ok(Box::new(LogObserver::from_config(config, ctx)?)))
        .register("file", |config, ctx| Ok(Box::new(NdjsonObserver::from_config(config, ctx)?)));
}

/// A registry with the built-in kinds, ready for more.
pub fn builtin_registry() -> ObserverRegistry {
    let mut registry = ObserverRegistry::new();
    register_builtins(&mut registry);
    registry
}

/// The most bytes of a response body that webhooks and HTTP dispatchers
/// read: enough for an error message, and a receiver that answers with a
/// gigabyte costs no more than this.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The HTTP client of webhooks and HTTP dispatchers: `timeout` for the whole
/// request and for connecting, our user agent, and no redirects (a redirect
/// would carry a signed body or a token to another place; a 3xx answer is a
/// failure that says where it pointed). Proxies named by `HTTP_PROXY`,
/// `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured, as by curl.
/// `owner` names the observer in the error.
pub(crate) fn http_client(timeout: std::time::Duration, owner: &str) -> monitor_core::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("model-monitor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            monitor_core::Error::observer(owner, format!("could not build the HTTP client: {}", e.without_url()))
        })
}

/// Reads at most [`MAX_RESPONSE_BODY`] bytes of a response's body, then
/// drops the rest (and the connection with it). A body that fails half-way
/// is what was read until then.
pub(crate) async fn read_body_prefix(response: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_RESPONSE_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BODY - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// The detail of a 3xx answer, which is never followed: the status and the
/// origin (`scheme://host:port`) it pointed to, never its path or query,
/// which may hold a token.
pub(crate) fn redirect_detail(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    base: &url::Url,
) -> String {
    let target = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| base.join(location).ok())
        .map(|to| format!(" to {}", to.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "HTTP {status}: a redirect{target}, not followed (redirects are never followed, so that a body or a token \
         goes only where the config says: point the URL at the final location)"
    )
}

/// Warns, at build time, that `url` carries credentials, without printing
/// them: reqwest sends them as HTTP Basic authentication, and every log
/// names the URL by its origin only.
pub(crate) fn warn_userinfo(owner: &str, url: &url::Url) {
    if !url.username().is_empty() || url.password().is_some() {
        tracing::warn!(
            observer = %owner,
            receiver = %url.origin().ascii_serialization(),
            "the URL carries credentials (user:password@); they are sent as HTTP Basic authentication and kept \
             out of logs, but a config file is easily shared: prefer `url_env`, or a token in `token_env`"
        );
    }
}

/// A failed request in a few words and its causes, without the URL (which
/// may carry a token): `timed out: ...`, `could not connect: ...`.
pub(crate) fn describe_request_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&text::escape_control(&cause.to_string()));
        source = cause.source();
    }
    text
}
