//! The webhook alerter: events to an HTTP receiver, reliably and without
//! flooding it.
//!
//! [`WebhookAlerter`] filters events in [`Observer::on_event`] (by type, by
//! severity, and by alert key within `repeat_interval`) and hands the rest to
//! two tasks of its own: a router that groups findings per model for
//! `group_wait`, and a sender that POSTs each notification with a timeout,
//! retrying connection errors, timeouts, 429 and 5xx with exponential backoff
//! and jitter, honouring `Retry-After`. `on_event` never waits for the
//! network, and each alerter has its own tasks, so a dead receiver never
//! delays another one, nor ingestion.

mod deliver;
mod format;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use monitor_core::duration::HumanDuration;
use monitor_core::event::{Event, EventKind, Finding, Severity};
use monitor_core::observer::Observer;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

pub use self::format::Format;
use crate::retry::{RetryConfig, RetryPolicy};
use crate::secret::{self, Secret};

/// The `type` of an event, for the `events = [...]` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// `finding`
    Finding,
    /// `recovered`
    Recovered,
    /// `retrain_requested`
    RetrainRequested,
    /// `job_status`
    JobStatus,
}

impl EventType {
    /// Its name in `events = [...]`: `finding`, `recovered`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Finding => "finding",
            Self::Recovered => "recovered",
            Self::RetrainRequested => "retrain_requested",
            Self::JobStatus => "job_status",
        }
    }

    /// The type of `event`.
    pub fn of(event: &Event) -> Self {
        match event.kind {
            EventKind::Finding(_) => Self::Finding,
            EventKind::Recovered(_) => Self::Recovered,
            EventKind::RetrainRequested(_) => Self::RetrainRequested,
            EventKind::JobStatus(_) => Self::JobStatus,
        }
    }
}

/// Delivery counters of one [`WebhookAlerter`], shared by clones.
#[derive(Debug, Clone, Default)]
pub struct WebhookStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    delivered: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    dropped: AtomicU64,
    suppressed: AtomicU64,
}

impl WebhookStats {
    /// Requests that the receiver accepted (a 2xx answer).
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Requests given up: a non-retryable answer (a 4xx other than 429) or
    /// the last attempt failed.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Ordering::Relaxed)
    }

    /// Attempts that were retried.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Events dropped because the alerter's queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Events not sent on purpose: repeats within `repeat_interval`, and
    /// recoveries of alerts that were not sent or are no longer open.
    pub fn suppressed(&self) -> u64 {
        self.inner.suppressed.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Builds a [`WebhookAlerter`] from code; [`WebhookAlerter::from_config`] is
/// the config route.
#[must_use]
#[derive(Debug, Clone)]
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

    /// The timeout of one request (default 10s; zero is a config error at
    /// `timeout`).
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
    /// (default 30s; zero sends each at once). Only the formats that group
    /// (`slack`, `alertmanager`) take it: `json` and `pagerduty` send each
    /// event or alert on its own, and a non-zero wait for them is a config
    /// error at `group_wait`.
    pub fn group_wait(mut self, wait: Duration) -> Self {
        self.group_wait = Some(wait);
        self
    }

    /// How failed requests are retried (default: 5 attempts, 500ms doubling to 30s).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The capacity of the alerter's queue of events (default 1024).
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
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
    /// format never sends.
    pub fn build(self) -> Result<WebhookAlerter> {
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
        let stats = WebhookStats::default();
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
        };
        Ok(WebhookAlerter {
            name: self.name,
            format: self.format,
            events: self.events,
            min_severity: self.min_severity,
            send_resolved: self.send_resolved,
            repeat_interval: chrono::Duration::from_std(self.repeat_interval).unwrap_or(chrono::Duration::MAX),
            group_wait,
            queue: self.queue,
            open: HashMap::new(),
            stats,
            delivery: Some(delivery),
            intake: None,
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
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::config("timeout", "must be more than 0s: every request would time out at once"));
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
fn parse_url(key: &str, text: &str) -> Result<url::Url> {
    let url = url::Url::parse(text).map_err(|e| Error::config(key, format!("invalid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(key, format!("expected an http or https URL, got scheme `{}`", url.scheme())));
    }
    if url.host().is_none() {
        return Err(Error::config(key, "the URL has no host"));
    }
    Ok(url)
}

/// The most alerts an alerter (and its Alertmanager renderer) keeps open. An
/// alert that would go past it pushes out the one sent longest ago, whose
/// recovery is then not sent; a warning says so.
pub(crate) const MAX_OPEN_ALERTS: usize = 10_000;

/// The identity of an alert, for `repeat_interval` and resolves: its
/// severity is not part of it, so a warning that becomes a drift (or the
/// reverse) is the same alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AlertKey {
    model: String,
    version: String,
    signal: String,
    detector: String,
}

impl AlertKey {
    fn of(event: &Event, finding: &Finding) -> Self {
        Self {
            model: event.key.model.clone(),
            version: event.key.version.clone(),
            signal: finding.signal.to_string(),
            detector: finding.detector.clone(),
        }
    }
}

/// An alert this webhook has sent and not resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenAlert {
    /// The severity it was last sent with.
    severity: Severity,
    /// The event time it was last sent at.
    sent_at: DateTime<Utc>,
}

/// Sends events to a webhook. See the [module docs](self).
///
/// ```no_run
/// # use monitor_observers::webhook::{WebhookAlerter, Format};
/// # use std::time::Duration;
/// let alerter = WebhookAlerter::builder("https://hooks.example.com/model-monitor")?
///     .format(Format::Json)
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// let stats = alerter.stats(); // stats.delivered(), stats.failed()
/// # Ok::<(), monitor_core::Error>(())
/// ```
pub struct WebhookAlerter {
    name: String,
    format: Format,
    events: Option<Vec<EventType>>,
    min_severity: Option<Severity>,
    send_resolved: bool,
    repeat_interval: chrono::Duration,
    group_wait: Duration,
    queue: usize,
    /// The alerts sent and not resolved, at most [`MAX_OPEN_ALERTS`].
    open: HashMap<AlertKey, OpenAlert>,
    stats: WebhookStats,
    /// Moves into the sender task when it starts.
    delivery: Option<deliver::Delivery>,
    intake: Option<mpsc::Sender<deliver::Command>>,
}

impl std::fmt::Debug for WebhookAlerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookAlerter").field("name", &self.name).field("stats", &self.stats).finish_non_exhaustive()
    }
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
}

impl WebhookAlerter {
    /// The default timeout of one request.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default `repeat_interval`, as in Alertmanager.
    pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);
    /// The default `group_wait` of the formats that group, as in Alertmanager.
    pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
    /// The default retry policy: 5 attempts, 500ms doubling to 30s.
    pub const DEFAULT_RETRY: RetryPolicy =
        RetryPolicy { max_attempts: 5, backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(30) };
    /// The default signature header.
    pub const DEFAULT_SIGNATURE_HEADER: &'static str = "X-Model-Monitor-Signature";
    /// The default `source` of PagerDuty events.
    pub const DEFAULT_SOURCE: &'static str = "model-monitor";

    /// A builder for an alerter that POSTs to `url`. An invalid URL is a
    /// config error at `url`.
    pub fn builder(url: &str) -> Result<WebhookBuilder> {
        Ok(Self::builder_for(parse_url("url", url)?))
    }

    fn builder_for(url: url::Url) -> WebhookBuilder {
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
            queue: 1024,
            secret: None,
            signature_header: None,
            token: None,
            routing_key: None,
            source: None,
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
    /// secret_env = "WEBHOOK_SECRET"        # HMAC-SHA256 signature of the body
    /// signature_header = "X-Signature"     # with secret_env only
    /// token_env = "WEBHOOK_TOKEN"          # Authorization: Bearer
    /// routing_key_env = "PD_ROUTING_KEY"   # pagerduty only, required there
    /// source = "ml-prod"                   # pagerduty only
    /// ```
    ///
    /// Every environment variable named is read now: a missing one is a
    /// config error naming its key, caught at start. So is a key that would
    /// do nothing (see [`WebhookBuilder::build`]), and a zero `timeout`.
    pub fn from_config(config: Json, _ctx: &BuildContext) -> Result<Self> {
        let c: WebhookConfig = parse_config(config)?;
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
        if c.queue == Some(0) {
            return Err(Error::config("queue", "must be at least 1"));
        }
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
            .retry(c.retry.or(Self::DEFAULT_RETRY))
            .queue(c.queue.unwrap_or(1024));
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

    /// The delivery counters; clones share them.
    pub fn stats(&self) -> WebhookStats {
        self.stats.clone()
    }

    /// Whether `event` should go out, updating the record of open alerts.
    ///
    /// Every finding and recovery updates that record, whichever types are
    /// sent: an alert opens when its finding is sent and closes with its
    /// recovery, sent or not, so the next finding after a recovery is new.
    fn admit(&mut self, event: &Event) -> bool {
        let ty = EventType::of(event);
        let wanted = self.format.sends(ty) && self.events.as_ref().is_none_or(|e| e.contains(&ty));
        match &event.kind {
            EventKind::Finding(f) => wanted && self.admit_finding(event, f),
            EventKind::Recovered(f) => {
                let was_open = self.open.remove(&AlertKey::of(event, f)).is_some();
                if !wanted || !self.send_resolved {
                    return false;
                }
                if self.events.as_ref().is_some_and(|e| !e.contains(&EventType::Finding)) {
                    // No finding is sent, so no alert is open: a recovery
                    // is an event of its own, filtered like a finding.
                    return self.min_severity.is_none_or(|min| f.severity >= min);
                }
                if !was_open {
                    // Nothing open for it (not sent, or already resolved):
                    // there is nothing to resolve.
                    WebhookStats::add(&self.stats.inner.suppressed);
                    tracing::debug!(observer = %self.name, model = %event.key.model, "recovery of an alert that is not open, not sent");
                    return false;
                }
                true
            }
            EventKind::RetrainRequested(_) | EventKind::JobStatus(_) => wanted,
        }
    }

    /// Whether a finding goes out; opens (or updates) its alert if so.
    fn admit_finding(&mut self, event: &Event, f: &Finding) -> bool {
        if self.min_severity.is_some_and(|min| f.severity < min) {
            // Below the bar. An open alert of this key (a drift that became
            // a warning) stays open as it was sent, for its recovery to close.
            return false;
        }
        let key = AlertKey::of(event, f);
        if let Some(open) = self.open.get(&key) {
            if open.severity == f.severity && event.ts.signed_duration_since(open.sent_at) < self.repeat_interval {
                WebhookStats::add(&self.stats.inner.suppressed);
                tracing::debug!(observer = %self.name, model = %event.key.model, "repeat within repeat_interval, not sent");
                return false;
            }
        } else if self.open.len() >= MAX_OPEN_ALERTS {
            self.evict_oldest();
        }
        self.open.insert(key, OpenAlert { severity: f.severity, sent_at: event.ts });
        true
    }

    /// Forgets the open alert sent longest ago, to stay within [`MAX_OPEN_ALERTS`].
    fn evict_oldest(&mut self) {
        let oldest = self.open.iter().min_by_key(|(_, a)| a.sent_at).map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.open.remove(&key);
            tracing::warn!(
                observer = %self.name,
                model = %key.model,
                version = %key.version,
                signal = %key.signal,
                detector = %key.detector,
                "{MAX_OPEN_ALERTS} alerts are open: forgetting the oldest, whose recovery will not be sent"
            );
        }
    }

    /// The intake of the alerter's tasks, started on first use.
    fn intake(&mut self) -> Result<&mpsc::Sender<deliver::Command>> {
        if self.intake.is_none() {
            let delivery =
                self.delivery.take().ok_or_else(|| Error::observer(&self.name, "the delivery task has stopped"))?;
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|_| Error::observer(&self.name, "webhooks need a tokio runtime"))?;
            let grouped = self.format.groups() && !self.group_wait.is_zero();
            self.intake = Some(deliver::start(&handle, delivery, self.queue, grouped.then_some(self.group_wait)));
        }
        self.intake.as_ref().ok_or_else(|| Error::observer(&self.name, "the delivery task has stopped"))
    }
}

#[async_trait]
impl Observer for WebhookAlerter {
    fn name(&self) -> &str {
        &self.name
    }

    /// Filters the event and queues it for delivery; never waits for the network.
    async fn on_event(&mut self, event: &Event) -> Result<()> {
        if !self.admit(event) {
            return Ok(());
        }
        let name = self.name.clone();
        let stats = self.stats.clone();
        match self.intake()?.try_send(deliver::Command::Event(Box::new(event.clone()))) {
            Ok(()) => Ok(()),
            Err(e) => {
                WebhookStats::add(&stats.inner.dropped);
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "its queue is full",
                    mpsc::error::TrySendError::Closed(_) => "its delivery task has stopped",
                };
                tracing::warn!(observer = %name, event = event.type_name(), "event dropped: {why}");
                Err(Error::observer(name, format!("{} event for {} dropped: {why}", event.type_name(), event.key)))
            }
        }
    }

    /// Sends what is grouped now and waits until every queued notification
    /// has been delivered or given up.
    async fn flush(&mut self) -> Result<()> {
        let Some(intake) = &self.intake else { return Ok(()) };
        let (done, wait) = oneshot::channel();
        if intake.send(deliver::Command::Flush(done)).await.is_err() {
            return Err(Error::observer(&self.name, "the delivery task has stopped"));
        }
        wait.await.map_err(|_| Error::observer(&self.name, "the delivery task has stopped"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use monitor_core::record::ModelKey;
    use monitor_core::signal::Signal;

    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            signal: Signal::LatencyMs,
            detector: "threshold".into(),
            severity,
            statistic: 200.0,
            threshold: 120.0,
            p_value: None,
            message: "slow".into(),
        }
    }

    fn at(secs: i64, kind: EventKind) -> Event {
        Event::new(ModelKey::new("m", "v"), DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs), 0, kind)
    }

    #[test]
    fn repeats_are_suppressed_within_the_interval_and_recoveries_reset() {
        let mut w = WebhookAlerter::builder("http://127.0.0.1:1/")
            .unwrap()
            .repeat_interval(Duration::from_secs(100))
            .build()
            .unwrap();
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Warning)))));
        assert!(!w.admit(&at(50, EventKind::Finding(finding(Severity::Warning)))));
        // An escalation is a new alert.
        assert!(w.admit(&at(60, EventKind::Finding(finding(Severity::Drift)))));
        assert!(!w.admit(&at(159, EventKind::Finding(finding(Severity::Drift)))));
        assert!(w.admit(&at(160, EventKind::Finding(finding(Severity::Drift)))));
        assert!(w.admit(&at(170, EventKind::Recovered(finding(Severity::Drift)))));
        // Nothing to resolve any more.
        assert!(!w.admit(&at(171, EventKind::Recovered(finding(Severity::Drift)))));
        assert!(w.admit(&at(172, EventKind::Finding(finding(Severity::Drift)))));
        assert_eq!(w.stats().suppressed(), 3);
    }

    #[test]
    fn min_severity_and_event_filters() {
        let mut w = WebhookAlerter::builder("http://127.0.0.1:1/")
            .unwrap()
            .min_severity(Severity::Drift)
            .events([EventType::Finding, EventType::Recovered])
            .build()
            .unwrap();
        assert!(!w.admit(&at(0, EventKind::Finding(finding(Severity::Warning)))));
        assert!(!w.admit(&at(0, EventKind::Recovered(finding(Severity::Warning)))));
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        let job = monitor_core::event::JobUpdate {
            job_id: uuid::Uuid::nil(),
            status: monitor_core::event::JobStatus::Queued,
            dispatcher: "command".into(),
            detail: None,
        };
        assert!(!w.admit(&at(0, EventKind::JobStatus(job))));
    }

    #[test]
    fn a_recovery_is_sent_when_its_alert_is_open_whatever_its_severity() {
        let mut w =
            WebhookAlerter::builder("http://127.0.0.1:1/").unwrap().min_severity(Severity::Drift).build().unwrap();
        // drift (sent), warning (below the bar, not sent), then stable: the
        // recovery carries `warning` and resolves the drift that was sent.
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        assert!(!w.admit(&at(10, EventKind::Finding(finding(Severity::Warning)))));
        assert!(w.admit(&at(20, EventKind::Recovered(finding(Severity::Warning)))));
        assert!(w.open.is_empty());
        // A warning alone opens nothing, so its recovery resolves nothing.
        assert!(!w.admit(&at(30, EventKind::Finding(finding(Severity::Warning)))));
        assert!(!w.admit(&at(40, EventKind::Recovered(finding(Severity::Warning)))));
        assert_eq!(w.stats().suppressed(), 1);
    }

    #[test]
    fn a_change_of_severity_updates_the_one_open_alert() {
        let mut w = WebhookAlerter::builder("http://127.0.0.1:1/").unwrap().build().unwrap();
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        // The de-escalation is sent, on the same alert: one is open.
        assert!(w.admit(&at(10, EventKind::Finding(finding(Severity::Warning)))));
        assert_eq!(w.open.len(), 1);
        assert!(w.admit(&at(20, EventKind::Recovered(finding(Severity::Warning)))));
        // One resolve closed it: a second recovery has nothing to close.
        assert!(!w.admit(&at(30, EventKind::Recovered(finding(Severity::Drift)))));
        assert!(w.open.is_empty());
    }

    #[test]
    fn a_de_escalation_below_min_severity_keeps_the_alert_as_sent() {
        let mut w = WebhookAlerter::builder("http://127.0.0.1:1/")
            .unwrap()
            .min_severity(Severity::Drift)
            .repeat_interval(Duration::from_secs(100))
            .build()
            .unwrap();
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        assert!(!w.admit(&at(10, EventKind::Finding(finding(Severity::Warning)))));
        // Back to drift: the receiver still has that drift open, so it is a repeat.
        assert!(!w.admit(&at(20, EventKind::Finding(finding(Severity::Drift)))));
        assert_eq!(w.open.values().map(|a| a.severity).collect::<Vec<_>>(), [Severity::Drift]);
    }

    #[test]
    fn a_recovery_ends_the_alert_even_when_it_is_not_sent() {
        let interval = Duration::from_secs(3600);
        let mut quiet = WebhookAlerter::builder("http://127.0.0.1:1/")
            .unwrap()
            .repeat_interval(interval)
            .send_resolved(false)
            .build()
            .unwrap();
        let mut findings_only = WebhookAlerter::builder("http://127.0.0.1:1/")
            .unwrap()
            .repeat_interval(interval)
            .events([EventType::Finding])
            .build()
            .unwrap();
        for w in [&mut quiet, &mut findings_only] {
            assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
            assert!(!w.admit(&at(10, EventKind::Recovered(finding(Severity::Drift)))));
            // A new episode, not a repeat of the one that ended.
            assert!(w.admit(&at(20, EventKind::Finding(finding(Severity::Drift)))));
        }
    }

    #[test]
    fn open_alerts_are_bounded() {
        let mut w = WebhookAlerter::builder("http://127.0.0.1:1/").unwrap().build().unwrap();
        for i in 0..=MAX_OPEN_ALERTS {
            let event = Event::new(
                ModelKey::new(format!("m{i}"), "v"),
                DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(i64::try_from(i).unwrap()),
                0,
                EventKind::Finding(finding(Severity::Drift)),
            );
            assert!(w.admit(&event));
        }
        assert_eq!(w.open.len(), MAX_OPEN_ALERTS);
        // The oldest went; the newest stayed.
        assert!(!w.open.keys().any(|k| k.model == "m0"));
        assert!(w.open.keys().any(|k| k.model == format!("m{MAX_OPEN_ALERTS}")));
    }

    #[test]
    fn urls_are_checked_without_being_repeated() {
        let err = WebhookAlerter::builder("not a url?token=s3cret").unwrap_err().to_string();
        assert!(err.starts_with("config error at `url`: invalid URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = WebhookAlerter::builder("ftp://example.com/x").unwrap_err().to_string();
        assert!(err.contains("http or https"), "{err}");
    }
}
