//! The webhook alerter: events to an HTTP receiver, reliably and without
//! flooding it.
//!
//! [`WebhookAlerter`] filters events in [`Observer::on_event`] (by type, by
//! severity, and by alert key within `repeat_interval`) and hands the rest to
//! two tasks of its own: a router that groups findings per model for
//! `group_wait`, and a sender that POSTs each notification with a timeout,
//! retrying connection errors, timeouts, 429 and 5xx with exponential backoff
//! and jitter (`backon`), honouring `Retry-After`. `on_event` never waits for
//! the network, and each alerter has its own tasks, so a dead receiver never
//! delays another one, nor ingestion.
//!
//! One concern per module: `config` builds an alerter (from code or config)
//! and refuses settings that would do nothing; `admission` decides what is
//! sent and keeps the open alerts; `deliver` groups and sends; `format`
//! renders bodies; `stats` counts. This module wires them into the observer.

mod admission;
mod config;
mod deliver;
mod format;
mod stats;

use std::time::Duration;

use async_trait::async_trait;
use monitor_core::event::Event;
use monitor_core::observer::Observer;
use monitor_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use self::admission::Admission;
pub use self::admission::EventType;
pub use self::config::WebhookBuilder;
pub use self::format::Format;
pub use self::stats::WebhookStats;
use crate::retry::RetryPolicy;

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
    group_wait: Duration,
    queue: usize,
    admission: Admission,
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
        Ok(Self::builder_for(config::parse_url("url", url)?))
    }

    /// The delivery counters; clones share them.
    pub fn stats(&self) -> WebhookStats {
        self.stats.clone()
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
        if !self.admission.admit(event) {
            return Ok(());
        }
        let name = self.name.clone();
        let stats = self.stats.clone();
        match self.intake()?.try_send(deliver::Command::Event(Box::new(event.clone()))) {
            Ok(()) => Ok(()),
            Err(e) => {
                stats.count_dropped();
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
