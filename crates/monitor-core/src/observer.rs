//! The `Observer` trait and the registry that builds observers from config.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::event::Event;
use crate::registry::{Component, Registry};

/// Something that reacts to events: an alerter, a retrain scheduler, a log.
///
/// The engine gives each observer its own task and its own bounded queue, so a
/// slow observer never delays another, nor ingestion. Implement it in your own
/// crate, depending on `monitor-core` alone, and register a factory in an
/// [`ObserverRegistry`] so that config can name it.
///
/// ```
/// use monitor_core::{async_trait, event::Event, observer::Observer, Result};
///
/// /// Counts events.
/// #[derive(Default)]
/// struct Counter(u64);
///
/// #[async_trait]
/// impl Observer for Counter {
///     fn name(&self) -> &str { "counter" }
///     async fn on_event(&mut self, _event: &Event) -> Result<()> {
///         self.0 += 1;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Observer: Send + 'static {
    /// A short name for logs and metrics (`webhook`, `retrain`, ...).
    fn name(&self) -> &str;

    /// Called once before the first event, with a way to publish events back
    /// onto the bus (a retrain scheduler reports job status this way).
    fn attach(&mut self, publisher: Arc<dyn EventPublisher>) {
        let _ = publisher;
    }

    /// Whether it takes retrain jobs from `retrain_requested` events and
    /// moves them on (a scheduler). With one, the engine asks again at start
    /// for the jobs its journal holds as requested but not yet taken: a
    /// kill between the two would otherwise lose them. The default: no.
    fn schedules_jobs(&self) -> bool {
        false
    }

    /// Offered once before the first event when the engine keeps a
    /// journal: an observer that returns `true` delivers from `outbox`,
    /// where the engine writes a row for each event before handing it to
    /// [`Observer::on_event`] (see [`crate::outbox`]), under the name
    /// `receiver` (its own name, made unique among the observers that take
    /// an outbox). The default declines.
    fn use_outbox(&mut self, outbox: Arc<dyn crate::outbox::Outbox>, receiver: &str) -> bool {
        let _ = (outbox, receiver);
        false
    }

    /// Handles one event. An error is logged and counted by the engine; it
    /// never stops the engine or other observers.
    async fn on_event(&mut self, event: &Event) -> Result<()>;

    /// Finishes the work started by earlier events (queued deliveries, running
    /// jobs) before shutdown. Events published meanwhile may still arrive
    /// through [`Observer::on_event`] after this returns.
    ///
    /// It runs on the engine's async runtime: await the work, never block the
    /// thread on it. Work that may take long deserves a deadline (the retrain
    /// scheduler's `shutdown_timeout`), past which it is cut off and reported.
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// What the observer gave up on so far: deliveries or jobs abandoned
    /// after their last attempt, and events it dropped itself. The engine
    /// puts them in its summary, so that no loss goes unreported.
    fn losses(&self) -> ObserverLosses {
        ObserverLosses::default()
    }
}

/// Work an observer could not do, as reported by [`Observer::losses`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObserverLosses {
    /// Deliveries or jobs given up after their last attempt (a receiver
    /// that stayed down, a dispatcher that kept failing).
    pub given_up: u64,
    /// Events the observer dropped itself (its own queue was full).
    pub dropped: u64,
}

/// Publishes events onto the engine's bus, from any thread, without blocking.
pub trait EventPublisher: Send + Sync {
    /// Publishes `event` to every observer.
    fn publish(&self, event: Event);
}

impl Component for Box<dyn Observer> {
    const WHAT: &'static str = "observer";
}

/// Observer factories keyed by `kind`, so that `kind = "..."` in config can
/// name observers from any crate.
pub type ObserverRegistry = Registry<Box<dyn Observer>>;

/// The metric of webhook notifications, by `observer`, `receiver` (the
/// URL's `scheme://host:port`, never its path, which may hold a secret) and
/// `outcome` (`delivered`, `failed`, `retried`). Webhook observers count
/// through the `metrics` facade; `model-monitor serve` exports it.
pub const WEBHOOK_DELIVERIES_METRIC: &str = "model_monitor_webhook_deliveries_total";
