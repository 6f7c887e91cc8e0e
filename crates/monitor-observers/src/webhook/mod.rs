//! The webhook alerter: events to an HTTP receiver, reliably and without
//! flooding it.
//!
//! [`WebhookAlerter`] filters events in [`Observer::on_event`] (by type, by
//! severity, and by alert key within `repeat_interval`) and hands the rest to
//! two tasks of its own: a router that groups findings per model for
//! `group_wait`, and a sender that POSTs each notification with a timeout,
//! retrying connection errors, timeouts, 429 and 5xx with exponential backoff
//! and jitter (`backon`), honouring `Retry-After` up to 5 minutes. `on_event`
//! never waits for the network, and each alerter has its own tasks, so a
//! dead receiver never delays another one, nor ingestion.
//!
//! Nothing is lost silently: a notification given up after its last attempt
//! (or at once, for an answer that no retry will fix) and an event dropped
//! because the queue was full are counted in [`WebhookStats`] and reported
//! by [`Observer::losses`]. The log says so once per run of failures, not
//! once per failure. `flush` has a deadline (`shutdown_timeout`): a retry
//! that would wait past it is not made, and what is still pending then is
//! given up and counted.
//!
//! One concern per module: `config` builds an alerter (from code or config)
//! and refuses settings that would do nothing; `admission` decides what is
//! sent and keeps the open alerts; `deliver` groups and sends; `format`
//! renders bodies; `stats` counts; `outbox` delivers from the engine's
//! journal when it keeps one. This module wires them into the observer.
//!
//! With a journal, the alerter takes the engine's outbox
//! ([`Observer::use_outbox`]): the engine writes a row for each event before
//! the alerter hears of it, and the alerter delivers from there, in order
//! per alert key, retrying until the receiver takes it, across restarts.
//! Grouping (`group_wait`) does not apply then: each event is one
//! notification.

mod admission;
mod config;
mod deliver;
mod format;
mod outbox;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use monitor_core::duration::HumanDuration;
use monitor_core::event::Event;
use monitor_core::observer::{EventPublisher, Observer, ObserverLosses};
use monitor_core::outbox::Outbox;
use monitor_core::{Error, Result};
use tokio::sync::{mpsc, oneshot};

use self::admission::Admission;
pub use self::admission::EventType;
pub use self::config::WebhookBuilder;
pub use self::format::Format;
pub use self::stats::WebhookStats;
use crate::failures::{FailureLog, Loudness, SUMMARY_EVERY};
use crate::retry::RetryPolicy;
use crate::text::escape_control;

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
    shutdown_timeout: Duration,
    admission: Admission,
    stats: WebhookStats,
    /// Moves into the sender task when it starts.
    delivery: Option<deliver::Delivery>,
    intake: Option<mpsc::Sender<deliver::Command>>,
    /// Shared with the sender: the flush's deadline and the cut-off.
    shutdown: Arc<deliver::Shutdown>,
    /// Events dropped in a row, to keep the log quiet.
    drops: FailureLog,
    /// The engine's outbox and this alerter's name in it, once offered.
    outbox: Option<(Arc<dyn Outbox>, String)>,
    /// The task that delivers from the outbox, once started.
    feeder: Option<outbox::Feeder>,
    /// Cuts the tasks off when the alerter is dropped: they give up what
    /// they still hold rather than outlive it (`flush` first delivers it).
    _cutoff_on_drop: tokio_util::sync::DropGuard,
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
    /// The default `queue`: events held while they are delivered.
    pub const DEFAULT_QUEUE: usize = 1024;
    /// The largest `queue`.
    pub const MAX_QUEUE: usize = 100_000;
    /// The longest `timeout` of one request.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
    /// The longest `group_wait`.
    pub const MAX_GROUP_WAIT: Duration = Duration::from_secs(3600);
    /// The longest `Retry-After` honoured (5 minutes); a receiver asking for
    /// more is retried then.
    pub const MAX_RETRY_AFTER: Duration = deliver::MAX_RETRY_AFTER;
    /// The most events of one group (Slack, Alertmanager): a group that
    /// reaches it is sent at once.
    pub const MAX_GROUP_EVENTS: usize = deliver::MAX_GROUP_EVENTS;
    /// The default `shutdown_timeout`: how long `flush` waits for pending
    /// notifications. Below the engine's own (30s by default), so that what
    /// it gives up is counted in the engine's summary.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest `shutdown_timeout`.
    pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3600);

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

    fn use_outbox(&mut self, outbox: Arc<dyn Outbox>, receiver: &str) -> bool {
        self.outbox = Some((outbox, receiver.to_owned()));
        true
    }

    /// With an outbox, starts the task that delivers from it (rows left
    /// pending by an earlier run included).
    fn attach(&mut self, _publisher: Arc<dyn EventPublisher>) {
        if let (Some((outbox, receiver)), None) = (&self.outbox, &self.feeder) {
            if let Some(delivery) = self.delivery.take() {
                self.feeder = outbox::start(Arc::clone(outbox), receiver.clone(), delivery, self.admission.clone());
                if self.feeder.is_none() {
                    tracing::error!(observer = %self.name, "webhooks need a tokio runtime; nothing will be delivered");
                }
            }
        }
    }

    /// Filters the event and queues it for delivery; never waits for the
    /// network. An event that finds the queue full is dropped and counted.
    /// With an outbox, the event's row is already written: the delivery
    /// task is woken to send it.
    async fn on_event(&mut self, event: &Event) -> Result<()> {
        if let Some(feeder) = &self.feeder {
            feeder.wake.notify_one();
            return Ok(());
        }
        if !self.admission.admit(event) {
            return Ok(());
        }
        let why = if self.shutdown.cutoff.is_cancelled() {
            Some("the webhook was cut off at shutdown")
        } else {
            match self.intake()?.try_send(deliver::Command::Event(Box::new(event.clone()))) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some("its queue is full"),
                Err(mpsc::error::TrySendError::Closed(_)) => Some("its delivery task has stopped"),
            }
        };
        let Some(why) = why else {
            let _ = self.drops.success();
            return Ok(());
        };
        self.stats.count_dropped();
        let (observer, kind, model) = (&self.name, event.type_name(), escape_control(&event.key.model));
        match self.drops.failure() {
            Loudness::First => tracing::warn!(
                %observer,
                event = kind,
                %model,
                "event dropped: {why} (further drops are counted, with one line per {SUMMARY_EVERY})"
            ),
            Loudness::Summary(n) => {
                tracing::warn!(%observer, "{n} events dropped in a row: {why}; {} dropped in all", self.stats.dropped());
            }
            Loudness::Quiet => tracing::debug!(%observer, event = kind, %model, "event dropped: {why}"),
        }
        Err(Error::observer(
            observer,
            format!("{kind} event for {} {} dropped: {why}", model, escape_control(&event.key.version)),
        ))
    }

    /// Sends what is grouped now and waits until every queued notification
    /// has been delivered or given up, for at most `shutdown_timeout`. A
    /// retry that would wait past that deadline is not made; what is still
    /// pending at the deadline is given up (and counted), and the webhook
    /// sends nothing more.
    async fn flush(&mut self) -> Result<()> {
        if let Some(feeder) = &self.feeder {
            // Pending rows stay in the journal for the next start.
            let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
            let (done, wait) = oneshot::channel();
            if feeder.flushes.send((deadline, done)).await.is_ok() {
                let _ = tokio::time::timeout_at(deadline + Duration::from_millis(100), wait).await;
            }
            return Ok(());
        }
        let Some(intake) = self.intake.clone() else { return Ok(()) };
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        self.shutdown.set_deadline(Some(deadline));
        let stopped = || Error::observer(&self.name, "the delivery task has stopped");
        let flushed = async {
            let (done, wait) = oneshot::channel();
            intake.send(deliver::Command::Flush(done)).await.map_err(|_| ())?;
            wait.await.map_err(|_| ())
        };
        tokio::pin!(flushed);
        let result = match tokio::time::timeout_at(deadline, &mut flushed).await {
            Ok(result) => result,
            Err(_) => {
                let before = self.stats.failed();
                self.shutdown.cutoff.cancel();
                let result = flushed.await;
                tracing::warn!(
                    observer = %self.name,
                    "notifications still pending after shutdown_timeout ({}): {} given up",
                    HumanDuration(self.shutdown_timeout),
                    self.stats.failed() - before
                );
                result
            }
        };
        self.shutdown.set_deadline(None);
        result.map_err(|()| stopped())
    }

    /// Notifications given up (after their last attempt, on an answer no
    /// retry fixes, or at shutdown) and events dropped on a full queue.
    fn losses(&self) -> ObserverLosses {
        ObserverLosses { given_up: self.stats.failed(), dropped: self.stats.dropped() }
    }
}
