//! Checkpoints of the shards' model state in the journal: restored when
//! the engine is built, written every `engine.checkpoint_interval` while it
//! runs and once more when its shards are done.
//!
//! A checkpoint holds, per shard, the last ingest log entry in its
//! snapshot. At start the entries after it are fed again to that shard,
//! before any new request, so the state is that of an uninterrupted run.
//! A checkpoint is written only once the bus has staged the events of the
//! records it covers (a barrier through the bus), so that none is lost
//! between the two.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use monitor_core::Error;
use monitor_core::record::Record;
use monitor_core::shard::shard_of;
use monitor_core::source::Position;
use monitor_strategies::{Monitor, MonitorPlan};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::bus::BusMsg;
use super::positions::SourcePositions;
use super::query::ShardQuery;
use crate::journal::{Checkpoint, Journal};

/// Records to feed again: (shard, ingest log entry, records), in log order.
pub(crate) type Refeed = Vec<(usize, u64, Vec<(u64, Record)>)>;

/// What the engine starts from.
pub(crate) struct Restored {
    pub(crate) monitors: Vec<Monitor>,
    /// Each shard's last ingest log entry.
    pub(crate) entries: Vec<u64>,
    /// The sources' positions and each shard's next source `seq`.
    pub(crate) positions: SourcePositions,
    pub(crate) next_seq: u64,
    /// Records to feed again: (shard, entry, records), in log order.
    pub(crate) refeed: Refeed,
}

/// The shards' monitors, their places in the ingest log, the next sequence
/// number and the records to feed again: from the journal's latest
/// checkpoint and its ingest log.
pub(crate) fn restore(journal: &Journal, plan: &Arc<MonitorPlan>, shards: usize) -> Result<Restored, Error> {
    let (monitors, entries, next_seq, positions) = restore_monitors(journal, plan, shards)?;
    let from = entries.iter().copied().min().unwrap_or(0);
    let mut refeed = Vec::new();
    let mut records_again = 0;
    for entry in journal.ingest_after(from)? {
        let mut parts: Vec<Vec<(u64, Record)>> = vec![Vec::new(); shards];
        for (seq, record) in entry.records {
            let shard = shard_of(&record.model, shards);
            if entries[shard] < entry.id {
                parts[shard].push((seq, record));
            }
        }
        for (shard, records) in parts.into_iter().enumerate() {
            if !records.is_empty() {
                records_again += records.len();
                refeed.push((shard, entry.id, records));
            }
        }
    }
    let next_seq = journal.ingest_end()?.map_or(next_seq, |end| end.max(next_seq));
    if records_again > 0 {
        tracing::info!(records = records_again, "records accepted after the latest checkpoint are processed again");
    }
    Ok(Restored { monitors, entries, positions, next_seq, refeed })
}

fn restore_monitors(
    journal: &Journal,
    plan: &Arc<MonitorPlan>,
    shards: usize,
) -> Result<(Vec<Monitor>, Vec<u64>, u64, SourcePositions), Error> {
    let Some(checkpoint) = journal.latest_checkpoint()? else {
        let monitors = (0..shards).map(|_| Monitor::new(Arc::clone(plan))).collect::<Result<_, _>>()?;
        return Ok((monitors, vec![0; shards], 0, SourcePositions::default()));
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
    let mut entries = checkpoint.ingest_entries;
    entries.resize(shards, 0);
    let mut seqs = checkpoint.source_seqs;
    seqs.resize(shards, 0);
    let positions = SourcePositions::restored(&checkpoint.positions, seqs);
    Ok((monitors, entries, checkpoint.next_seq, positions))
}

/// Writes a checkpoint every `interval` until `stop` is cancelled or a
/// shard has gone. A failed write is logged and retried at the next tick.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn periodic(
    journal: Journal,
    shards: Arc<[mpsc::Sender<ShardQuery>]>,
    bus: mpsc::Sender<BusMsg>,
    next_seq: Arc<AtomicU64>,
    positions: Arc<SourcePositions>,
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
        // Read before the snapshots: every record up to these positions is
        // processed, so it is in every snapshot taken after.
        let acked = positions.current();
        let mut waiting = Vec::with_capacity(shards.len());
        for shard in shards.iter() {
            let (reply, rx) = oneshot::channel();
            if shard.send(ShardQuery::Snapshot { reply }).await.is_err() {
                return;
            }
            waiting.push(rx);
        }
        let mut snapshots = Vec::with_capacity(waiting.len());
        let mut entries = Vec::with_capacity(waiting.len());
        let mut source_seqs = Vec::with_capacity(waiting.len());
        for rx in waiting {
            match rx.await {
                Ok(Ok((snapshot, entry, source_seq))) => {
                    snapshots.push(snapshot);
                    entries.push(entry);
                    source_seqs.push(source_seq);
                }
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
        // Every event of the records in the snapshots was sent to the bus
        // before the snapshot was answered: once the barrier comes back,
        // they are staged in the journal.
        let (reply, staged) = oneshot::channel();
        if bus.send(BusMsg::Barrier(reply)).await.is_err() || staged.await.is_err() {
            return;
        }
        // Read after the snapshots: every record in them has a lower
        // sequence number, so a restored engine reuses none.
        let checkpoint = Checkpoint {
            taken_at: Utc::now(),
            next_seq: next_seq.load(Ordering::Relaxed),
            shards: snapshots,
            ingest_entries: entries,
            source_seqs,
            positions: acked,
        };
        let journal = journal.clone();
        match tokio::task::spawn_blocking(move || journal.write_checkpoint(&checkpoint, keep)).await {
            Ok(Ok(())) => tracing::debug!("checkpoint written"),
            Ok(Err(e)) => tracing::error!(error = %e, "checkpoint not written"),
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
    }
}

/// Writes the checkpoint of the shards' final state.
/// The bus must have staged the shards' events before (the caller waits
/// until it is drained).
pub(crate) async fn last(
    journal: Journal,
    finished: Vec<(Monitor, u64, u64)>,
    next_seq: u64,
    positions: Vec<Position>,
    keep: usize,
) -> Result<(), Error> {
    let write = move || {
        let shards =
            finished.iter().map(|(m, ..)| m.snapshot().and_then(|s| s.to_json())).collect::<Result<Vec<_>, _>>()?;
        let ingest_entries = finished.iter().map(|(_, e, _)| *e).collect();
        let source_seqs = finished.iter().map(|(.., s)| *s).collect();
        let checkpoint = Checkpoint { taken_at: Utc::now(), next_seq, shards, ingest_entries, source_seqs, positions };
        journal.write_checkpoint(&checkpoint, keep)
    };
    tokio::task::spawn_blocking(write)
        .await
        .map_err(|e| Error::io("writing the last checkpoint", std::io::Error::other(e.to_string())))?
}
