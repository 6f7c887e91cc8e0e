//! The event bus: hands every event to each observer through that
//! observer's own bounded queue and task.
//!
//! With a journal, each group of events is first staged in it
//! ([`Journal::stage_events`]: job rows, outbox rows) in one transaction,
//! and only then handed on; a checkpoint's barrier is answered once every
//! event sent before it is staged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};

use monitor_core::event::Event;
use monitor_core::observer::{EventPublisher, Observer};
use tokio::sync::{mpsc, oneshot};

use super::summary::{Counters, ObserverCounters};
use crate::config::Overflow;
use crate::journal::Journal;

/// Events staged in one transaction at most.
const STAGE_GROUP: usize = 256;

/// How long a failing journal is retried before the bus stops waiting for
/// it once the engine is stopping.
const STAGE_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// A message from a shard (or a checkpoint) to the bus.
// Nearly every message is an event: boxing it would allocate once per
// event to save room on the rare barrier.
#[allow(clippy::large_enum_variant)]
pub(crate) enum BusMsg {
    Event(Event),
    /// Answered once every event sent before it is staged.
    Barrier(oneshot::Sender<()>),
}

/// What the bus writes before it hands events on.
pub(crate) struct Stage {
    pub(crate) journal: Journal,
    /// The observers that deliver from the outbox, by receiver name.
    pub(crate) receivers: Vec<String>,
    /// Cancelled when the engine stops: a journal still failing then is
    /// given up on, so that shutdown ends.
    pub(crate) stop: tokio_util::sync::CancellationToken,
}

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
#[allow(clippy::too_many_arguments)]
pub(crate) async fn bus_loop(
    mut main: mpsc::Receiver<BusMsg>,
    mut feedback: mpsc::UnboundedReceiver<Event>,
    links: Arc<Vec<ObserverLink>>,
    overflow: Overflow,
    counters: Arc<Counters>,
    stage: Option<Stage>,
    drained: oneshot::Sender<()>,
    mut finish: oneshot::Receiver<()>,
) {
    let mut drained = Some(drained);
    let mut main_open = true;
    let out = Out { links: &links, overflow, counters: &counters, stage: stage.as_ref() };
    loop {
        tokio::select! {
            msg = main.recv(), if main_open => match msg {
                Some(BusMsg::Event(event)) => {
                    let mut group = vec![event];
                    let mut barrier = None;
                    while group.len() < STAGE_GROUP {
                        match main.try_recv() {
                            Ok(BusMsg::Event(e)) => group.push(e),
                            Ok(BusMsg::Barrier(b)) => {
                                barrier = Some(b);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    out.send(group, true).await;
                    if let Some(b) = barrier {
                        let _ = b.send(());
                    }
                }
                Some(BusMsg::Barrier(b)) => {
                    let _ = b.send(());
                }
                None => {
                    main_open = false;
                    if let Some(d) = drained.take() {
                        let _ = d.send(());
                    }
                }
            },
            Some(event) = feedback.recv() => {
                let mut group = vec![event];
                while group.len() < STAGE_GROUP {
                    match feedback.try_recv() {
                        Ok(e) => group.push(e),
                        Err(_) => break,
                    }
                }
                out.send(group, false).await;
            }
            _ = &mut finish, if !main_open => break,
        }
    }
    let mut rest = Vec::new();
    while let Ok(event) = feedback.try_recv() {
        rest.push(event);
    }
    if !rest.is_empty() {
        out.send(rest, false).await;
    }
}

/// Where the bus hands events on.
struct Out<'a> {
    links: &'a [ObserverLink],
    overflow: Overflow,
    counters: &'a Counters,
    stage: Option<&'a Stage>,
}

impl Out<'_> {
    /// Stages `group` in the journal, if there is one, then hands on each
    /// event that is to go on.
    async fn send(&self, group: Vec<Event>, from_shards: bool) {
        let group = match self.stage {
            Some(stage) => stage_group(stage, group, from_shards, self.counters).await,
            None => group,
        };
        for event in group {
            deliver(event, self.links, self.overflow, self.counters).await;
        }
    }
}

/// Writes `group` to the journal, retrying while it fails (back-pressure:
/// the shards wait, ingestion answers 429, `/readyz` fails). Once the
/// engine is stopping, a journal still failing is given up on and the
/// events are handed on unrecorded, which the summary says.
async fn stage_group(stage: &Stage, group: Vec<Event>, from_shards: bool, counters: &Counters) -> Vec<Event> {
    let mut group = group;
    let mut tries_while_stopping = 0;
    loop {
        let journal = stage.journal.clone();
        let receivers = stage.receivers.clone();
        let staged = tokio::task::spawn_blocking(move || {
            let result = journal.stage_events(&group, &receivers, from_shards);
            (group, result)
        })
        .await;
        let (back, result) = match staged {
            Ok(staged) => staged,
            Err(e) => {
                tracing::error!(error = %e, "staging events in the journal failed; events lost");
                counters.unfinished(format!("events lost while staging them in the journal: {e}"));
                return Vec::new();
            }
        };
        group = back;
        match result {
            Ok(keep) => {
                return group.into_iter().zip(keep).filter_map(|(event, keep)| keep.then_some(event)).collect();
            }
            Err(e) => {
                if stage.stop.is_cancelled() {
                    tries_while_stopping += 1;
                    if tries_while_stopping > 3 {
                        counters.unfinished(format!(
                            "{} events were handed on without being recorded in the journal: {e}",
                            group.len()
                        ));
                        return group;
                    }
                }
                tokio::time::sleep(STAGE_RETRY).await;
            }
        }
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
