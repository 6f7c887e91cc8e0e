//! The engine's task: it starts the shards, the event bus and one task
//! per observer, feeds the records of the ingest log again after a
//! restart, writes checkpoints, and shuts everything down in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use monitor_core::observer::{EventPublisher, Observer};
use monitor_strategies::Monitor;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bus::{BusMsg, BusPublisher, ObserverLink, ObserverMsg, Stage, bus_loop, observer_loop};
use super::query::ShardQuery;
use super::shard::Shard;
use super::summary::Counters;
use super::{SHUTDOWN_GRACE, Summary, checkpoints, positions, sink};
use crate::config::EngineConfig;
use crate::engine::RejectHandler;
use crate::engine::Sink;
use crate::journal::Journal;

/// Everything the engine's future owns.
pub(super) struct Parts {
    pub(super) settings: EngineConfig,
    pub(super) monitors: Vec<Monitor>,
    pub(super) entries: Vec<u64>,
    pub(super) positions: Arc<positions::SourcePositions>,
    pub(super) feedback:
        (mpsc::UnboundedSender<monitor_core::event::Event>, mpsc::UnboundedReceiver<monitor_core::event::Event>),
    pub(super) shard_rxs: Vec<(mpsc::Receiver<sink::ShardBatch>, mpsc::Receiver<ShardQuery>)>,
    pub(super) stop: CancellationToken,
    pub(super) observers: Vec<Box<dyn Observer>>,
    pub(super) counters: Arc<Counters>,
    pub(super) on_reject: RejectHandler,
    pub(super) journal: Option<JournalParts>,
}

/// What the checkpoints need, with a `state_dir`.
pub(super) struct JournalParts {
    pub(super) journal: Journal,
    pub(super) queries: Arc<[mpsc::Sender<ShardQuery>]>,
    pub(super) next_seq: Arc<AtomicU64>,
    /// The requests of the jobs the journal holds unfinished, published
    /// again at start.
    pub(super) redo: Vec<monitor_core::event::Event>,
    /// The observers that deliver from the outbox.
    pub(super) receivers: Vec<String>,
    /// Records of the ingest log past the checkpoint: (shard, entry, records).
    pub(super) refeed: checkpoints::Refeed,
    /// Held until they are queued: new requests wait behind them.
    pub(super) refeed_guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    pub(super) sink: Sink,
}

pub(super) async fn run(parts: Parts) -> Summary {
    let Parts {
        settings,
        monitors,
        entries,
        positions,
        shard_rxs,
        stop,
        observers,
        counters,
        on_reject,
        journal,
        feedback,
    } = parts;
    let tracker = TaskTracker::new();
    let (feedback_tx, feedback_rx) = feedback;
    let publisher: Arc<dyn EventPublisher> = Arc::new(BusPublisher { tx: feedback_tx });

    let mut links = Vec::with_capacity(observers.len());
    let mut observer_tasks = Vec::with_capacity(observers.len());
    for (mut observer, own) in observers.into_iter().zip(counters.observers.iter()) {
        observer.attach(Arc::clone(&publisher));
        let (tx, rx) = mpsc::channel(settings.observer_queue);
        let name = observer.name().to_owned();
        links.push(ObserverLink {
            name: name.clone(),
            tx,
            warned_full: AtomicBool::new(false),
            counters: Arc::clone(own),
        });
        observer_tasks.push((name, tracker.spawn(observer_loop(observer, rx, Arc::clone(own)))));
    }
    let mut journal = journal;
    if let Some(j) = journal.as_mut() {
        let redo = std::mem::take(&mut j.redo);
        if !redo.is_empty() {
            // At least once: a job whose outcome the journal does not know
            // is asked for again, under its own id, which dispatchers use
            // as their idempotency key.
            tracing::info!(jobs = redo.len(), "retrain jobs unfinished in the journal are requested again");
            for event in redo {
                publisher.publish(event);
            }
        }
    }
    drop(publisher);
    let links = Arc::new(links);

    let (bus_tx, bus_rx) = mpsc::channel::<BusMsg>(settings.observer_queue.max(64));
    let (drained_tx, drained_rx) = oneshot::channel();
    let (finish_tx, finish_rx) = oneshot::channel();
    let stage = journal.as_ref().map(|j| Stage {
        journal: j.journal.clone(),
        receivers: j.receivers.clone(),
        stop: stop.clone(),
    });
    let bus = tracker.spawn(bus_loop(
        bus_rx,
        feedback_rx,
        Arc::clone(&links),
        settings.overflow,
        Arc::clone(&counters),
        stage,
        drained_tx,
        finish_rx,
    ));

    let shards: Vec<_> = monitors
        .into_iter()
        .zip(shard_rxs)
        .zip(entries)
        .enumerate()
        .map(|(index, ((monitor, (rx, queries)), last_entry))| {
            let shard = Shard {
                index,
                monitor,
                rx,
                queries,
                stop: stop.clone(),
                bus: bus_tx.clone(),
                last_entry,
                source_seq: 0,
                resume: Arc::clone(&positions),
                counters: Arc::clone(&counters),
                on_reject: Arc::clone(&on_reject),
            };
            tracker.spawn(shard.run())
        })
        .collect();
    if let Some(j) = journal.as_mut() {
        // Records answered 2xx after the checkpoint, before any new one.
        let refeed = std::mem::take(&mut j.refeed);
        let guard = j.refeed_guard.take();
        let sink = j.sink.clone();
        tracker.spawn(async move {
            for (shard, entry, records) in refeed {
                if sink.refeed(shard, records, entry).await.is_err() {
                    tracing::error!("the engine stopped before the records of the ingest log were processed again");
                    break;
                }
            }
            drop(guard);
        });
    }
    tracker.close();
    let periodic = journal.as_ref().map(|j| {
        tokio::spawn(checkpoints::periodic(
            j.journal.clone(),
            Arc::clone(&j.queries),
            bus_tx.clone(),
            Arc::clone(&j.next_seq),
            Arc::clone(&positions),
            settings.checkpoint_interval.as_std(),
            settings.checkpoints_kept,
            stop.clone(),
        ))
    });
    drop(bus_tx);
    let mut finished = Vec::with_capacity(shards.len());
    for shard in shards {
        match shard.await {
            Ok(monitor) => finished.push(monitor),
            Err(e) => {
                tracing::error!(error = %e, "shard task failed");
                counters.unfinished(format!("a shard task failed: {e}"));
            }
        }
    }
    if let Some(periodic) = periodic {
        periodic.abort();
        let _ = periodic.await;
    }

    // Every shard is done: wait until the bus has handed their events on
    // (and staged them in the journal), then give observers until the
    // deadline to finish what those events started.
    let _ = drained_rx.await;
    if let Some(j) = journal {
        // A checkpoint of part of the shards would lose the others' state
        // at the next start: the previous one stays the latest instead.
        if finished.len() == settings.shards {
            let next_seq = j.next_seq.load(std::sync::atomic::Ordering::Relaxed);
            let acked = positions.current();
            if let Err(e) = checkpoints::last(j.journal, finished, next_seq, acked, settings.checkpoints_kept).await {
                tracing::error!(error = %e, "the last checkpoint was not written");
                counters.unfinished(format!("the last checkpoint was not written: {e}"));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + settings.shutdown_timeout.as_std();
    let mut acks = Vec::with_capacity(links.len());
    let mut late = vec![false; links.len()];
    for (i, link) in links.iter().enumerate() {
        let (ack_tx, ack_rx) = oneshot::channel();
        // The queue may be full of events the observer is slow to take (a
        // retrain scheduler waiting for room applies back-pressure): the
        // flush waits for room only until the deadline.
        match tokio::time::timeout_at(deadline, link.tx.send(ObserverMsg::Flush(ack_tx))).await {
            Ok(Ok(())) => acks.push((i, ack_rx)),
            Ok(Err(_)) => {}
            Err(_) => late[i] = true,
        }
    }
    for (i, ack) in acks {
        if tokio::time::timeout_at(deadline, ack).await.is_err() {
            late[i] = true;
        }
    }
    // Cut off the observers still busy: dropping a task drops what it
    // holds (a running job's child process is killed with it), and closes
    // its queue, so the bus can no longer wait on it.
    let mut waiting = Vec::with_capacity(observer_tasks.len());
    for (i, (name, task)) in observer_tasks.into_iter().enumerate() {
        if late[i] {
            task.abort();
            counters.unfinished(format!(
                "observer `{name}` had not finished its work after {} (engine.shutdown_timeout); it was cut off",
                settings.shutdown_timeout
            ));
        } else {
            waiting.push((name, task));
        }
    }
    let _ = finish_tx.send(());
    drop(links);
    if let Err(e) = bus.await {
        tracing::error!(error = %e, "bus task failed");
    }
    // The bus is done and every queue closed: the remaining observers end
    // once they have handled what is queued, which the grace bounds.
    let grace = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    for (name, task) in waiting {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(deadline.max(grace), task).await.is_err() {
            abort.abort();
            counters.unfinished(format!(
                "observer `{name}` still had events queued at the shutdown deadline; they were dropped"
            ));
        }
    }
    tracker.wait().await;
    counters.summary()
}
