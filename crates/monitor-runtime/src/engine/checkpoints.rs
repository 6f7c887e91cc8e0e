//! Checkpoints of the shards' model state in the journal: restored when
//! the engine is built, written every `engine.checkpoint_interval` while it
//! runs and once more when its shards are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use monitor_core::Error;
use monitor_strategies::{Monitor, MonitorPlan};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::query::ShardQuery;
use crate::journal::{Checkpoint, Journal};

/// The shards' monitors and the next sequence number: from the journal's
/// latest checkpoint, or new when it has none.
pub(crate) fn restore(journal: &Journal, plan: &Arc<MonitorPlan>, shards: usize) -> Result<(Vec<Monitor>, u64), Error> {
    let Some(checkpoint) = journal.latest_checkpoint()? else {
        let monitors = (0..shards).map(|_| Monitor::new(Arc::clone(plan))).collect::<Result<_, _>>()?;
        return Ok((monitors, 0));
    };
    let file = journal.path().display();
    if checkpoint.shards.len() != shards {
        return Err(Error::config(
            "engine.shards",
            format!(
                "the latest checkpoint in the journal {file} was taken with {} shards, and engine.shards is {shards}: \
                 set engine.shards = {}, or move the journal aside to start from an empty state",
                checkpoint.shards.len(),
                checkpoint.shards.len()
            ),
        ));
    }
    let monitors = checkpoint
        .shards
        .iter()
        .map(|snapshot| Monitor::restore(Arc::clone(plan), snapshot))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            let (path, message) = match e {
                Error::Snapshot { path, message } => (path, message),
                other => (String::new(), other.to_string()),
            };
            Error::snapshot(
                path,
                format!(
                    "{message} (in the latest checkpoint of the journal {file}, taken at {}): start with the \
                     config it was taken under, or move the journal aside to start from an empty state",
                    checkpoint.taken_at.to_rfc3339()
                ),
            )
        })?;
    tracing::info!(
        path = %file,
        taken_at = %checkpoint.taken_at.to_rfc3339(),
        next_seq = checkpoint.next_seq,
        "model state restored from the journal"
    );
    Ok((monitors, checkpoint.next_seq))
}

/// Writes a checkpoint every `interval` until `stop` is cancelled or a
/// shard has gone. A failed write is logged and retried at the next tick.
pub(crate) async fn periodic(
    journal: Journal,
    shards: Arc<[mpsc::Sender<ShardQuery>]>,
    next_seq: Arc<AtomicU64>,
    interval: Duration,
    keep: usize,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let mut waiting = Vec::with_capacity(shards.len());
        for shard in shards.iter() {
            let (reply, rx) = oneshot::channel();
            if shard.send(ShardQuery::Snapshot { reply }).await.is_err() {
                return;
            }
            waiting.push(rx);
        }
        let mut snapshots = Vec::with_capacity(waiting.len());
        for rx in waiting {
            match rx.await {
                Ok(Ok(snapshot)) => snapshots.push(snapshot),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "a shard's state could not be saved; checkpoint skipped");
                    break;
                }
                Err(_) => return,
            }
        }
        if snapshots.len() != shards.len() {
            continue;
        }
        // Read after the snapshots: every record in them has a lower
        // sequence number, so a restored engine reuses none.
        let checkpoint =
            Checkpoint { taken_at: Utc::now(), next_seq: next_seq.load(Ordering::Relaxed), shards: snapshots };
        let journal = journal.clone();
        match tokio::task::spawn_blocking(move || journal.write_checkpoint(&checkpoint, keep)).await {
            Ok(Ok(())) => tracing::debug!("checkpoint written"),
            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint not written"),
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
    }
}

/// Writes the checkpoint of the shards' final state.
pub(crate) async fn last(journal: Journal, monitors: Vec<Monitor>, next_seq: u64, keep: usize) -> Result<(), Error> {
    let write = move || {
        let shards = monitors.iter().map(|m| m.snapshot().and_then(|s| s.to_json())).collect::<Result<Vec<_>, _>>()?;
        journal.write_checkpoint(&Checkpoint { taken_at: Utc::now(), next_seq, shards }, keep)
    };
    tokio::task::spawn_blocking(write)
        .await
        .map_err(|e| Error::io("writing the last checkpoint", std::io::Error::other(e.to_string())))?
}
