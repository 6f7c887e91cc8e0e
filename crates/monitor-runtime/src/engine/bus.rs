//! The event bus: hands every event to each observer through that
//! observer's own bounded queue and task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use monitor_core::event::Event;
use monitor_core::observer::{EventPublisher, Observer};
use tokio::sync::{mpsc, oneshot};

use super::summary::{Counters, ObserverCounters};
use crate::config::Overflow;

/// A message to an observer task.
pub(crate) enum ObserverMsg {
    Event(Arc<Event>),
    /// Finish what earlier events started, then answer.
    Flush(oneshot::Sender<()>),
}

/// The bus's end of one observer's queue.
pub(crate) struct ObserverLink {
    pub(crate) name: String,
    pub(crate) tx: mpsc::Sender<ObserverMsg>,
    pub(crate) warned_full: AtomicBool,
    pub(crate) counters: Arc<ObserverCounters>,
}

/// Publishes observer feedback (job status) onto the bus. Unbounded, because
/// feedback is a handful of events per retraining job and must never block
/// the observer that sends it.
pub(crate) struct BusPublisher {
    pub(crate) tx: mpsc::UnboundedSender<Event>,
}

impl EventPublisher for BusPublisher {
    fn publish(&self, event: Event) {
        if self.tx.send(event).is_err() {
            tracing::debug!("event published after the bus stopped; dropped");
        }
    }
}

/// Delivers shard events and observer feedback until the shards are done
/// (`drained` fires) and the engine says to finish; feedback published
/// until then is delivered too.
pub(crate) async fn bus_loop(
    mut main: mpsc::Receiver<Event>,
    mut feedback: mpsc::UnboundedReceiver<Event>,
    links: Arc<Vec<ObserverLink>>,
    overflow: Overflow,
    counters: Arc<Counters>,
    drained: oneshot::Sender<()>,
    mut finish: oneshot::Receiver<()>,
) {
    let mut drained = Some(drained);
    let mut main_open = true;
    loop {
        tokio::select! {
            event = main.recv(), if main_open => match event {
                Some(event) => deliver(event, &links, overflow, &counters).await,
                None => {
                    main_open = false;
                    if let Some(d) = drained.take() {
                        let _ = d.send(());
                    }
                }
            },
            Some(event) = feedback.recv() => deliver(event, &links, overflow, &counters).await,
            _ = &mut finish, if !main_open => break,
        }
    }
    while let Ok(event) = feedback.try_recv() {
        deliver(event, &links, overflow, &counters).await;
    }
}

async fn deliver(event: Event, links: &[ObserverLink], overflow: Overflow, counters: &Counters) {
    counters.count_job(&event);
    super::metrics::event(&counters.labels, &event);
    let event = Arc::new(event);
    for link in links {
        let msg = ObserverMsg::Event(Arc::clone(&event));
        // Counted before the send, so that the observer never takes it
        // off the count before it is on.
        link.counters.queued.fetch_add(1, Ordering::Relaxed);
        match overflow {
            Overflow::Block => {
                if link.tx.send(msg).await.is_err() {
                    link.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    link.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(observer = %link.name, "observer task ended early; event lost");
                }
            }
            Overflow::Drop => match link.tx.try_send(msg) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    link.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    link.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                    if !link.warned_full.swap(true, Ordering::Relaxed) {
                        tracing::warn!(observer = %link.name, "observer queue full; dropping events for it");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    link.counters.queued.fetch_sub(1, Ordering::Relaxed);
                    link.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(observer = %link.name, "observer task ended early; event lost");
                }
            },
        }
    }
}

/// Runs one observer: its events in order, and flushes on request. Its
/// losses are published after each flush and when it stops.
pub(crate) async fn observer_loop(
    mut observer: Box<dyn Observer>,
    mut rx: mpsc::Receiver<ObserverMsg>,
    counters: Arc<ObserverCounters>,
) {
    // Repeated failures are logged once per kind, then only counted.
    let mut warned = false;
    counters.running.store(true, Ordering::Relaxed);
    while let Some(msg) = rx.recv().await {
        match msg {
            ObserverMsg::Event(event) => {
                counters.queued.fetch_sub(1, Ordering::Relaxed);
                if let Err(e) = observer.on_event(&event).await {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    if !std::mem::replace(&mut warned, true) {
                        tracing::warn!(observer = observer.name(), error = %e, "observer failed to handle an event (further failures are counted in the summary)");
                    }
                }
            }
            ObserverMsg::Flush(ack) => {
                if let Err(e) = observer.flush().await {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(observer = observer.name(), error = %e, "observer failed to flush");
                }
                publish_losses(observer.as_ref(), &counters);
                let _ = ack.send(());
            }
        }
    }
    counters.running.store(false, Ordering::Relaxed);
    publish_losses(observer.as_ref(), &counters);
}

fn publish_losses(observer: &dyn Observer, counters: &ObserverCounters) {
    *counters.losses.lock().unwrap_or_else(PoisonError::into_inner) = observer.losses();
}
