//! How a webhook is configured: [`WebhookBuilder`] from code,
//! [`WebhookAlerter::from_config`] from a config table, and the checks they
//! share, so that a setting that would do nothing is refused by both.

use std::sync::Arc;
use std::time::Duration;

use monitor_core::duration::HumanDuration;
use monitor_core::event::Severity;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;

use super::admission::{Admission, EventType};
use super::format::{self, Format};
use super::stats::WebhookStats;
use super::{WebhookAlerter, deliver};
use crate::failures::FailureLog;
use crate::retry::{RetryConfig, RetryPolicy};
use crate::secret::{self, Secret};

/// Builds a [`WebhookAlerter`] from code; [`WebhookAlerter::from_config`] is
/// the config route. Its `Debug` names the URL by its origin only.
#[must_use]
#[derive(Clone)]
pub struct WebhookBuilder {
    name: String,
    url: url::Url,
    format: Format,
    timeout: Duration,
    events: Option<Vec<EventType>>,
    min_severity: Option<Severity>,
    send_resolved: bool,
    repeat_interval: Duration,
    group_wait: Option<Duration>,
    retry: RetryPolicy,
    queue: usize,
    secret: Option<Secret>,
    signature_header: Option<String>,
    token: Option<Secret>,
    routing_key: Option<Secret>,
    source: Option<String>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for WebhookBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookBuilder")
            .field("name", &self.name)
            .field("origin", &origin(&self.url))
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("queue", &self.queue)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookBuilder {
    /// The observer's name in logs (default `webhook`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The body format (default [`Format::Json`]).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The timeout of one request (default 10s, at most
    /// [`WebhookAlerter::MAX_TIMEOUT`]; zero is a config error at `timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends only events of these types (default: all).
    pub fn events(mut self, events: impl IntoIterator<Item = EventType>) -> Self {
        self.events = Some(events.into_iter().collect());
        self
    }

    /// Sends findings of at least this severity (default: all).
    ///
    /// A finding below it is not sent, and when an alert of the same key is
    /// open (a drift that de-escalates to a warning) that alert stays open
    /// as it was sent. Recoveries are not filtered by severity: a recovery is
    /// sent exactly when the alert it ends was sent and is still open.
    pub fn min_severity(mut self, severity: Severity) -> Self {
        self.min_severity = Some(severity);
        self
    }

    /// Whether a recovery sends a "resolved" (default true).
    pub fn send_resolved(mut self, yes: bool) -> Self {
        self.send_resolved = yes;
        self
    }

    /// An alert (one model, version, signal and detector) that is open is
    /// not sent again at the same severity within this much event time
    /// (default 4h). A change of severity is sent at once.
    pub fn repeat_interval(mut self, interval: Duration) -> Self {
        self.repeat_interval = interval;
        self
    }

    /// Findings for one model within this time go out as one notification
    /// (default 30s, at most [`WebhookAlerter::MAX_GROUP_WAIT`]; zero sends
    /// each at once; a group of [`WebhookAlerter::MAX_GROUP_EVENTS`] goes
    /// out at once). Only the formats that group
    /// (`slack`, `alertmanager`) take it: `json` and `pagerduty` send each
    /// event or alert on its own, and a non-zero wait for them is a config
    /// error at `group_wait`.
    pub fn group_wait(mut self, wait: Duration) -> Self {
        self.group_wait = Some(wait);
        self
    }

    /// How failed requests are retried (default: 5 attempts, 500ms doubling
    /// to 30s; see [`RetryPolicy::check`] for the bounds).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The capacity of the alerter's queue of events (default 1024, from 1
    /// to [`WebhookAlerter::MAX_QUEUE`]). An event that finds it full is
    /// dropped and counted.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// How long `flush` (shutdown) waits for pending notifications (default
    /// 10s, at most [`WebhookAlerter::MAX_SHUTDOWN_TIMEOUT`]): a retry that
    /// would wait past it is not made, and what is pending then is given
    /// up and counted. Keep it below the engine's `shutdown_timeout`.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Signs each body with HMAC-SHA256 under `secret`, in the header
    /// `X-Model-Monitor-Signature: sha256=<hex>`.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The name of the signature header (default
    /// `X-Model-Monitor-Signature`). Without a [`secret`](Self::secret) there
    /// is no signature, and setting it is a config error at `signature_header`.
    pub fn signature_header(mut self, header: impl Into<String>) -> Self {
        self.signature_header = Some(header.into());
        self
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// The PagerDuty integration's routing key: required for
    /// [`Format::Pagerduty`], a config error at `routing_key_env` for the others.
    pub fn routing_key(mut self, key: Secret) -> Self {
        self.routing_key = Some(key);
        self
    }

    /// The `source` of PagerDuty events (default `model-monitor`); a config
    /// error at `source` for the other formats.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Builds the alerter. Its tasks start with the first event, on the
    /// runtime that delivers it.
    ///
    /// A setting that would do nothing is a config error that names its
    /// key: a routing key or a `source` for another format than
    /// `pagerduty`, a signature header without a secret, a non-zero
    /// `group_wait` for a format that does not group, and `events` that the
    /// format never sends. So is a value out of its bounds (`timeout`,
    /// `queue`, `group_wait`, `shutdown_timeout`, `retry`).
    ///
    /// A URL with credentials (`user:password@`) is accepted with a warning
    /// that never repeats them.
    pub fn build(self) -> Result<WebhookAlerter> {
        self.retry.check()?;
        crate::bounds::size("queue", self.queue, WebhookAlerter::MAX_QUEUE)?;
        crate::bounds::positive(
            "shutdown_timeout",
            self.shutdown_timeout,
            WebhookAlerter::MAX_SHUTDOWN_TIMEOUT,
            "every notification pending at shutdown would be given up at once",
        )?;
        Used {
            format: self.format,
            routing_key: self.routing_key.is_some(),
            source: self.source.is_some(),
            signature_header: self.signature_header.is_some(),
            secret: self.secret.is_some(),
            group_wait: self.group_wait,
            timeout: Some(self.timeout),
            events: self.events.as_deref(),
        }
        .check()?;
        if self.format == Format::Pagerduty && self.routing_key.is_none() {
            return Err(Error::config("routing_key_env", "the pagerduty format needs a routing key"));
        }
        let signature_header =
            self.signature_header.unwrap_or_else(|| WebhookAlerter::DEFAULT_SIGNATURE_HEADER.to_owned());
        if reqwest::header::HeaderName::from_bytes(signature_header.as_bytes()).is_err() {
            return Err(Error::config("signature_header", format!("`{signature_header}` is not a valid header name")));
        }
        let group_wait = match self.group_wait {
            Some(wait) => wait,
            None if self.format.groups() => WebhookAlerter::DEFAULT_GROUP_WAIT,
            None => Duration::ZERO,
        };
        let client = crate::http_client(self.timeout, &self.name)?;
        crate::warn_userinfo(&self.name, &self.url);
        let stats = WebhookStats::default();
        let shutdown = Arc::new(deliver::Shutdown::default());
        let delivery = deliver::Delivery {
            name: self.name.clone(),
            client,
            origin: origin(&self.url),
            url: self.url,
            format: self.format,
            retry: self.retry,
            secret: self.secret,
            signature_header,
            token: self.token,
            render: format::RenderContext {
                routing_key: self.routing_key,
                source: self.source.unwrap_or_else(|| WebhookAlerter::DEFAULT_SOURCE.to_owned()),
            },
            stats: stats.clone(),
            shutdown: Arc::clone(&shutdown),
            failures: FailureLog::default(),
        };
        let admission = Admission::new(
            self.name.clone(),
            self.format,
            self.events,
            self.min_severity,
            self.send_resolved,
            chrono::Duration::from_std(self.repeat_interval).unwrap_or(chrono::Duration::MAX),
            stats.clone(),
        );
        Ok(WebhookAlerter {
            name: self.name,
            format: self.format,
            group_wait,
            queue: self.queue,
            shutdown_timeout: self.shutdown_timeout,
            admission,
            stats,
            delivery: Some(delivery),
            intake: None,
            outbox: None,
            feeder: None,
            _cutoff_on_drop: shutdown.cutoff.clone().drop_guard(),
            shutdown,
            drops: FailureLog::default(),
        })
    }
}

/// Which settings an alerter was given, to refuse those that would do nothing.
struct Used<'a> {
    format: Format,
    routing_key: bool,
    source: bool,
    signature_header: bool,
    secret: bool,
    group_wait: Option<Duration>,
    timeout: Option<Duration>,
    events: Option<&'a [EventType]>,
}

impl Used<'_> {
    fn check(&self) -> Result<()> {
        let format = self.format.name();
        if let Some(timeout) = self.timeout {
            crate::bounds::positive(
                "timeout",
                timeout,
                WebhookAlerter::MAX_TIMEOUT,
                "every request would time out at once",
            )?;
        }
        if let Some(wait) = self.group_wait {
            crate::bounds::at_most("group_wait", wait, WebhookAlerter::MAX_GROUP_WAIT)?;
        }
        if self.format != Format::Pagerduty {
            if self.routing_key {
                return Err(Error::config(
                    "routing_key_env",
                    format!("is for format = \"pagerduty\" only; format = \"{format}\" has no routing key"),
                ));
            }
            if self.source {
                return Err(Error::config(
                    "source",
                    format!("is PagerDuty's `payload.source`, for format = \"pagerduty\" only, not \"{format}\""),
                ));
            }
        }
        if self.signature_header && !self.secret {
            return Err(Error::config(
                "signature_header",
                "names the header of the body's signature, which is sent only with `secret_env`: give `secret_env` too, or leave `signature_header` out",
            ));
        }
        if self.group_wait.is_some_and(|w| !w.is_zero()) && !self.format.groups() {
            return Err(Error::config(
                "group_wait",
                format!(
                    "format = \"{format}\" sends one request per {} and never groups: leave `group_wait` out",
                    if self.format == Format::Pagerduty { "alert" } else { "event" }
                ),
            ));
        }
        if let Some(ty) = self.events.and_then(|e| e.iter().find(|t| !self.format.sends(**t))) {
            return Err(Error::config(
                "events",
                format!(
                    "format = \"{format}\" sends findings and recoveries only, so `{}` would never be sent",
                    ty.name()
                ),
            ));
        }
        Ok(())
    }
}

/// `scheme://host:port` only: a URL's path and query may hold a token (Slack's do).
fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// Parses and checks a receiver URL; the error never repeats the URL.
pub(super) fn parse_url(key: &str, text: &str) -> Result<url::Url> {
    let url = url::Url::parse(text).map_err(|e| Error::config(key, format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(key, format!("expected an http or https URL, got scheme `{}`", url.scheme())));
    }
    if url.host().is_none() {
        return Err(Error::config(key, "the URL has no host"));
    }
    Ok(url)
}

/// The webhook's config table (the `[[observers]]` entry without `kind`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookConfig {
    name: Option<String>,
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    format: Format,
    timeout: Option<HumanDuration>,
    events: Option<Vec<EventType>>,
    min_severity: Option<Severity>,
    send_resolved: Option<bool>,
    repeat_interval: Option<HumanDuration>,
    group_wait: Option<HumanDuration>,
    #[serde(default)]
    retry: RetryConfig,
    queue: Option<usize>,
    secret_env: Option<String>,
    signature_header: Option<String>,
    token_env: Option<String>,
    routing_key_env: Option<String>,
    source: Option<String>,
    shutdown_timeout: Option<HumanDuration>,
}

impl WebhookAlerter {
    pub(super) fn builder_for(url: url::Url) -> WebhookBuilder {
        WebhookBuilder {
            name: "webhook".to_owned(),
            url,
            format: Format::Json,
            timeout: Self::DEFAULT_TIMEOUT,
            events: None,
            min_severity: None,
            send_resolved: true,
            repeat_interval: Self::DEFAULT_REPEAT_INTERVAL,
            group_wait: None,
            retry: Self::DEFAULT_RETRY,
            queue: Self::DEFAULT_QUEUE,
            secret: None,
            signature_header: None,
            token: None,
            routing_key: None,
            source: None,
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Builds an alerter from its config table:
    ///
    /// ```toml
    /// [[observers]]
    /// kind = "webhook"
    /// url = "http://127.0.0.1:9000/hook"   # or url_env = "SLACK_WEBHOOK_URL"
    /// format = "json"                      # slack | pagerduty | alertmanager
    /// timeout = "10s"
    /// events = ["finding", "recovered", "retrain_requested", "job_status"]   # default: all
    /// min_severity = "drift"               # default: warning and drift
    /// send_resolved = true
    /// repeat_interval = "4h"
    /// group_wait = "30s"                   # slack and alertmanager only
    /// retry = { max_attempts = 5, backoff = "500ms", max_backoff = "30s" }
    /// queue = 1024
    /// shutdown_timeout = "10s"
    /// secret_env = "WEBHOOK_SECRET"        # HMAC-SHA256 signature of the body
    /// signature_header = "X-Signature"     # with secret_env only
    /// token_env = "WEBHOOK_TOKEN"          # Authorization: Bearer
    /// routing_key_env = "PD_ROUTING_KEY"   # pagerduty only, required there
    /// source = "ml-prod"                   # pagerduty only
    /// ```
    ///
    /// Every environment variable named is read now: a missing one is a
    /// config error naming its key, caught at start. So is a key that would
    /// do nothing (see [`WebhookBuilder::build`]), and a value out of its
    /// bounds (a zero `timeout`, a `queue` of a billion, ...).
    pub fn from_config(config: Json, _ctx: &BuildContext) -> Result<Self> {
        let c: WebhookConfig = parse_config(config)?;
        let retry = c.retry.resolve(Self::DEFAULT_RETRY)?;
        crate::bounds::size("queue", c.queue.unwrap_or(Self::DEFAULT_QUEUE), Self::MAX_QUEUE)?;
        // Before any variable is read, so that a misplaced key is named as such.
        Used {
            format: c.format,
            routing_key: c.routing_key_env.is_some(),
            source: c.source.is_some(),
            signature_header: c.signature_header.is_some(),
            secret: c.secret_env.is_some(),
            group_wait: c.group_wait.map(HumanDuration::as_std),
            timeout: c.timeout.map(HumanDuration::as_std),
            events: c.events.as_deref(),
        }
        .check()?;
        let url = match (&c.url, &c.url_env) {
            (Some(url), None) => parse_url("url", url)?,
            (None, Some(var)) => parse_url("url_env", Secret::from_env("url_env", var)?.expose())?,
            (Some(_), Some(_)) => return Err(Error::config("url", "give either `url` or `url_env`, not both")),
            (None, None) if c.format == Format::Pagerduty => parse_url("url", format::PAGERDUTY_EVENTS_URL)?,
            (None, None) => return Err(Error::config("url", "is required")),
        };
        let routing_key = secret::optional("routing_key_env", c.routing_key_env.as_deref())?;
        if c.format == Format::Pagerduty && routing_key.is_none() {
            return Err(Error::config(
                "routing_key_env",
                "is required for format = \"pagerduty\": the environment variable that holds the routing key",
            ));
        }
        let mut b = Self::builder_for(url)
            .format(c.format)
            .timeout(c.timeout.map_or(Self::DEFAULT_TIMEOUT, HumanDuration::as_std))
            .send_resolved(c.send_resolved.unwrap_or(true))
            .repeat_interval(c.repeat_interval.map_or(Self::DEFAULT_REPEAT_INTERVAL, HumanDuration::as_std))
            .retry(retry)
            .queue(c.queue.unwrap_or(Self::DEFAULT_QUEUE))
            .shutdown_timeout(c.shutdown_timeout.map_or(Self::DEFAULT_SHUTDOWN_TIMEOUT, HumanDuration::as_std));
        b.events = c.events;
        b.min_severity = c.min_severity;
        b.group_wait = c.group_wait.map(HumanDuration::as_std);
        if let Some(name) = c.name {
            b = b.name(name);
        }
        if let Some(secret) = secret::optional("secret_env", c.secret_env.as_deref())? {
            b = b.secret(secret);
        }
        if let Some(header) = c.signature_header {
            b = b.signature_header(header);
        }
        if let Some(token) = secret::optional("token_env", c.token_env.as_deref())? {
            b = b.bearer_token(token);
        }
        if let Some(key) = routing_key {
            b = b.routing_key(key);
        }
        if let Some(source) = c.source {
            b = b.source(source);
        }
        b.build()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_being_repeated() {
        let err = WebhookAlerter::builder("not a url?token=s3cret").unwrap_err().to_string();
        assert!(err.starts_with("config error at `url`: invalid URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = WebhookAlerter::builder("ftp://example.com/x").unwrap_err().to_string();
        assert!(err.contains("http or https"), "{err}");
    }
}
