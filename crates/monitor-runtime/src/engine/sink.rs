//! The sink: where records go in, singly or in batches, async or blocking.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use monitor_core::record::Record;
use monitor_core::shard::shard_of;
use monitor_core::source::Position;
use monitor_core::{Error, RecordError};
use tokio::sync::{mpsc, oneshot};

use super::metrics::{self, RejectReason};
use super::summary::Counters;
use crate::journal::Journal;

/// What makes HTTP ingestion durable with a journal: requests are numbered,
/// written to the ingest log and queued one at a time, so that each shard
/// processes the log's entries in the log's order.
#[derive(Debug)]
pub(crate) struct IngestGate {
    pub(crate) journal: Journal,
    pub(crate) lock: Arc<tokio::sync::Mutex<()>>,
}

/// Called for every rejected record with its `seq` and the reason.
pub type RejectHandler = Arc<dyn Fn(u64, &RecordError) + Send + Sync>;

/// Fires once every shard that holds part of a batch has processed it: the
/// last clone dropped sends the signal, so a batch split across shards
/// completes when its slowest part does.
#[derive(Debug)]
pub(crate) struct BatchDone(Option<oneshot::Sender<()>>);

impl BatchDone {
    /// A completion token and the receiver that resolves when it is dropped.
    pub(crate) fn new() -> (Arc<Self>, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Self(Some(tx))), rx)
    }
}

impl Drop for BatchDone {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Records for one shard, in input order, as one queue message: batching
/// keeps the cost of queueing and waking a shard off the per-record path.
#[derive(Debug)]
pub(crate) struct ShardBatch {
    pub(crate) records: Vec<(u64, Record)>,
    /// Dropped by the shard once these records are processed.
    pub(crate) done: Option<Arc<BatchDone>>,
    /// When the batch was submitted.
    pub(crate) received: Instant,
    /// The ingest log entry the records were written under (0: none).
    pub(crate) entry: u64,
}

impl ShardBatch {
    pub(crate) fn new(records: Vec<(u64, Record)>, done: Option<Arc<BatchDone>>) -> Self {
        Self { records, done, received: Instant::now(), entry: 0 }
    }
}

/// What [`Sink::offer_lines`] queued.
#[derive(Debug)]
pub struct Offered {
    /// The sequence number of the first line; line `n` has `base + n - 1`.
    pub base: u64,
    /// Tells when the records are processed; `None` when there were none.
    pub receipt: Option<Receipt>,
}

/// A record that [`Sink::try_submit`] could not queue, given back.
#[derive(Debug)]
pub struct Refused {
    /// The record, untouched (boxed, to keep the error small on the hot path).
    pub record: Box<Record>,
    /// Why: [`Error::Full`] (try again later) or [`Error::Closed`].
    pub error: Error,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record of model `{}` refused: {}", self.record.model, self.error)
    }
}

impl std::error::Error for Refused {}

/// A batch that [`Sink::offer_batch`] could not queue, given back whole:
/// none of its records went in.
#[derive(Debug)]
pub struct RefusedBatch {
    /// The records, in `seq` order.
    pub records: Vec<(u64, Record)>,
    /// Why: [`Error::Full`] (try again later) or [`Error::Closed`].
    pub error: Error,
}

impl std::fmt::Display for RefusedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch of {} records refused: {}", self.records.len(), self.error)
    }
}

impl std::error::Error for RefusedBatch {}

/// The proof that [`Sink::offer_batch`] queued a whole batch; it can tell
/// when the batch has been processed.
#[derive(Debug)]
pub struct Receipt {
    records: usize,
    done: oneshot::Receiver<()>,
}

impl Receipt {
    /// Records queued.
    pub fn records(&self) -> usize {
        self.records
    }

    /// Resolves once every record of the batch has been processed (its
    /// events are on the bus), or dropped with a shard that failed.
    pub async fn processed(self) {
        let _ = self.done.await;
    }
}

/// Where records go in. Cloneable; every clone feeds the same engine.
///
/// Records of one model keep their order: they go to the one shard that owns
/// the model ([`monitor_core::shard::shard_of`]), and a batch is split by
/// shard without reordering. Several producers (parser threads, HTTP
/// requests) can submit at once; each one's records of a model stay in the
/// order it submits them.
#[derive(Clone)]
pub struct Sink {
    pub(crate) shards: Arc<[mpsc::Sender<ShardBatch>]>,
    pub(crate) next_seq: Arc<AtomicU64>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) on_reject: RejectHandler,
    pub(crate) ingest: Option<Arc<IngestGate>>,
    pub(crate) positions: Arc<super::positions::SourcePositions>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("shards", &self.shards.len()).finish()
    }
}

impl Sink {
    /// Notes that every record of a source up to `position` is processed
    /// (called by [`pump`](crate::source::pump) as it acknowledges): the
    /// next checkpoint holds it.
    pub fn acknowledged(&self, position: &Position) {
        self.positions.acknowledged(position);
    }

    /// Resumes reading `partition` (a file): the offset the latest
    /// checkpoint holds for it, if any. A source then skips what comes
    /// before it, and each shard skips the records past it that its
    /// restored state already holds, so that nothing is processed twice.
    pub fn resume(&self, partition: &str) -> Option<u64> {
        self.positions.resume(partition)
    }

    /// The shard that owns `model`.
    pub fn shard_index(&self, model: &str) -> usize {
        shard_of(model, self.shards.len())
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The next sequence number, for callers that do not number their input.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// `n` consecutive sequence numbers; returns the first.
    pub fn next_seqs(&self, n: u64) -> u64 {
        self.next_seq.fetch_add(n, Ordering::Relaxed)
    }

    /// The `model` label that the engine's metrics give `model` (its name,
    /// or `_other` past `metrics_max_models`).
    pub fn model_label(&self, model: &str) -> String {
        self.counters.labels.label(model)
    }

    fn one(&self, seq: u64, record: Record) -> (usize, ShardBatch) {
        (self.shard_index(&record.model), ShardBatch::new(vec![(seq, record)], None))
    }

    /// Splits `records` by shard, keeping their order within each shard.
    fn split(&self, records: Vec<(u64, Record)>, done: Option<&Arc<BatchDone>>) -> Vec<(usize, ShardBatch)> {
        if self.shards.len() == 1 {
            return vec![(0, ShardBatch::new(records, done.cloned()))];
        }
        let mut parts: Vec<Vec<(u64, Record)>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for (seq, record) in records {
            let shard = self.shard_index(&record.model);
            parts[shard].push((seq, record));
        }
        parts
            .into_iter()
            .enumerate()
            .filter(|(_, p)| !p.is_empty())
            .map(|(i, records)| (i, ShardBatch::new(records, done.cloned())))
            .collect()
    }

    /// Counts `n` records queued for `shard`.
    fn counted(&self, shard: usize, n: usize) {
        self.counters.submitted.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(queued) = self.counters.queued.get(shard) {
            queued.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Submits a record, waiting while its shard's queue is full
    /// (back-pressure). Returns the `seq` it was given.
    pub async fn submit(&self, record: Record) -> Result<u64, Error> {
        let seq = self.next_seq();
        self.submit_at(seq, record).await.map(|()| seq)
    }

    /// Submits a record with the caller's `seq` (a line index), waiting
    /// while the queue is full.
    pub async fn submit_at(&self, seq: u64, record: Record) -> Result<(), Error> {
        let (shard, batch) = self.one(seq, record);
        self.shards[shard].send(batch).await.map_err(|_| Error::Closed)?;
        self.counted(shard, 1);
        Ok(())
    }

    /// Submits records with their `seq`, in order, waiting while a queue is
    /// full. Each model's records keep their order.
    pub async fn submit_batch(&self, records: Vec<(u64, Record)>) -> Result<(), Error> {
        self.submit_batch_with(records, None).await
    }

    pub(crate) async fn submit_batch_with(
        &self,
        records: Vec<(u64, Record)>,
        done: Option<&Arc<BatchDone>>,
    ) -> Result<(), Error> {
        for (shard, part) in self.split(records, done) {
            let n = part.records.len();
            self.shards[shard].send(part).await.map_err(|_| Error::Closed)?;
            self.counted(shard, n);
        }
        Ok(())
    }

    /// Submits a record from a thread outside the async runtime, blocking
    /// while the queue is full. Returns its `seq`. Panics if called from
    /// within an async task (a tokio rule): use it from `spawn_blocking` or
    /// a plain thread.
    pub fn blocking_submit(&self, record: Record) -> Result<u64, Error> {
        let seq = self.next_seq();
        self.blocking_submit_at(seq, record).map(|()| seq)
    }

    /// Like [`Sink::blocking_submit`], with the caller's `seq`.
    pub fn blocking_submit_at(&self, seq: u64, record: Record) -> Result<(), Error> {
        let (shard, batch) = self.one(seq, record);
        self.shards[shard].blocking_send(batch).map_err(|_| Error::Closed)?;
        self.counted(shard, 1);
        Ok(())
    }

    /// Submits records with their `seq` from a thread outside the async
    /// runtime, blocking while a queue is full. Each model's records keep
    /// their order.
    pub fn blocking_submit_batch(&self, records: Vec<(u64, Record)>) -> Result<(), Error> {
        for (shard, part) in self.split(records, None) {
            let n = part.records.len();
            self.shards[shard].blocking_send(part).map_err(|_| Error::Closed)?;
            self.counted(shard, n);
        }
        Ok(())
    }

    /// Submits a record if its shard's queue has room, and returns its
    /// `seq`. Otherwise the record comes back in [`Refused`], with
    /// [`Error::Full`] (counted as overloaded) or [`Error::Closed`].
    pub fn try_submit(&self, record: Record) -> Result<u64, Refused> {
        let seq = self.next_seq();
        let (shard, batch) = self.one(seq, record);
        match self.shards[shard].try_send(batch) {
            Ok(()) => {
                self.counted(shard, 1);
                Ok(seq)
            }
            Err(mpsc::error::TrySendError::Full(batch)) => {
                self.counters.overloaded.fetch_add(1, Ordering::Relaxed);
                let record = take_one(batch);
                metrics::rejected(&self.counters.labels, Some(&record.model), RejectReason::Overloaded, 1);
                Err(Refused { record: Box::new(record), error: Error::Full })
            }
            Err(mpsc::error::TrySendError::Closed(batch)) => {
                Err(Refused { record: Box::new(take_one(batch)), error: Error::Closed })
            }
        }
    }

    /// Queues `records` whole or not at all: waits at most `wait` for room
    /// in the queue of every shard the batch touches, then queues every
    /// part at once. Each model's records keep their order.
    ///
    /// On success every record is in a shard queue, and the [`Receipt`]
    /// tells when they have been processed. Otherwise nothing was queued and
    /// the records come back in [`RefusedBatch`], with [`Error::Full`]
    /// (counted as overloaded) or [`Error::Closed`]. A `wait` of zero never
    /// waits.
    pub async fn offer_batch(&self, records: Vec<(u64, Record)>, wait: Duration) -> Result<Receipt, RefusedBatch> {
        let count = records.len();
        let (done, rx) = BatchDone::new();
        let parts = self.split(records, Some(&done));
        drop(done);
        let permits = self.reserve(parts, wait).await?;
        self.send_reserved(permits);
        Ok(Receipt { records: count, done: rx })
    }

    /// Waits at most `wait` for room in the queue of every shard of
    /// `parts`; gives the records back when one has none.
    async fn reserve<'a>(
        &'a self,
        parts: Vec<(usize, ShardBatch)>,
        wait: Duration,
    ) -> Result<Vec<(mpsc::Permit<'a, ShardBatch>, usize, ShardBatch)>, RefusedBatch> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut permits = Vec::with_capacity(parts.len());
        let mut error = None;
        for (shard, _) in &parts {
            let sender = &self.shards[*shard];
            let permit = if wait.is_zero() {
                sender.try_reserve().map_err(|e| match e {
                    mpsc::error::TrySendError::Full(()) => Error::Full,
                    mpsc::error::TrySendError::Closed(()) => Error::Closed,
                })
            } else {
                match tokio::time::timeout_at(deadline, sender.reserve()).await {
                    Ok(Ok(permit)) => Ok(permit),
                    Ok(Err(_)) => Err(Error::Closed),
                    Err(_) => Err(Error::Full),
                }
            };
            match permit {
                Ok(permit) => permits.push(permit),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(error) = error {
            drop(permits);
            let mut records: Vec<(u64, Record)> = parts.into_iter().flat_map(|(_, p)| p.records).collect();
            records.sort_by_key(|(seq, _)| *seq);
            if matches!(error, Error::Full) {
                self.count_overloaded(&records);
            }
            return Err(RefusedBatch { records, error });
        }
        Ok(permits.into_iter().zip(parts).map(|(permit, (shard, part))| (permit, shard, part)).collect())
    }

    fn send_reserved(&self, permits: Vec<(mpsc::Permit<'_, ShardBatch>, usize, ShardBatch)>) {
        for (permit, shard, part) in permits {
            let n = part.records.len();
            permit.send(part);
            self.counted(shard, n);
        }
    }

    /// Queues the records of one request whole or not at all, as
    /// [`Sink::offer_batch`] does, and numbers its `lines` lines once they
    /// are queued: `records` carry their 1-based line, and a request that
    /// is refused takes no sequence number. With a journal, the records are
    /// written to its ingest log (and synced) before they are queued, and
    /// requests are queued one at a time, in the log's order; a request
    /// without records is logged too, for its numbers. A journal that
    /// cannot be written refuses the request with the error.
    pub async fn offer_lines(
        &self,
        lines: u64,
        records: Vec<(u64, Record)>,
        wait: Duration,
    ) -> Result<Offered, RefusedBatch> {
        // The wait covers the turn behind other requests too: a request that
        // finds no turn in time is refused whole (429), as on a full queue.
        let deadline = tokio::time::Instant::now() + wait;
        let _one_at_a_time = match &self.ingest {
            Some(gate) => match tokio::time::timeout_at(deadline, gate.lock.lock()).await {
                Ok(turn) => Some(turn),
                Err(_) => {
                    self.count_overloaded(&records);
                    return Err(RefusedBatch { records, error: Error::Full });
                }
            },
            None => None,
        };
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        if records.is_empty() {
            let base = self.next_seqs(lines);
            if let Some(gate) = &self.ingest {
                log_entry(&gate.journal, base, lines, b"[]".to_vec()).await?;
            }
            return Ok(Offered { base, receipt: None });
        }
        let count = records.len();
        let (done, rx) = BatchDone::new();
        let parts = self.split(records, Some(&done));
        drop(done);
        let mut permits = self.reserve(parts, wait).await?;
        let base = self.next_seqs(lines);
        for (_, _, part) in &mut permits {
            for (seq, _) in &mut part.records {
                *seq = base + *seq - 1;
            }
        }
        if let Some(gate) = &self.ingest {
            let mut all: Vec<&(u64, Record)> = permits.iter().flat_map(|(_, _, p)| &p.records).collect();
            all.sort_by_key(|(seq, _)| *seq);
            let body = serde_json::to_vec(&all)
                .map_err(|e| RefusedBatch { records: Vec::new(), error: Error::io("the ingest log", e.into()) });
            let entry = match body {
                Ok(body) => log_entry(&gate.journal, base, lines, body).await,
                Err(e) => Err(e),
            };
            let entry = match entry {
                Ok(entry) => entry,
                Err(mut refused) => {
                    refused.records = permits.into_iter().flat_map(|(_, _, p)| p.records).collect();
                    return Err(refused);
                }
            };
            for (_, _, part) in &mut permits {
                part.entry = entry;
            }
        }
        self.send_reserved(permits);
        Ok(Offered { base, receipt: Some(Receipt { records: count, done: rx }) })
    }

    /// Queues records read again from the ingest log for one shard, under
    /// their entry, waiting while the queue is full.
    pub(crate) async fn refeed(&self, shard: usize, records: Vec<(u64, Record)>, entry: u64) -> Result<(), Error> {
        let n = records.len();
        let mut batch = ShardBatch::new(records, None);
        batch.entry = entry;
        self.shards[shard].send(batch).await.map_err(|_| Error::Closed)?;
        self.counted(shard, n);
        Ok(())
    }

    /// Counts records refused for lack of room (in the summary's
    /// `overloaded` and the metrics), for a caller that refused them before
    /// they reached the sink, as a server does when its own budget is spent.
    pub fn count_overloaded<T>(&self, records: &[(T, Record)]) {
        self.counters.overloaded.fetch_add(records.len() as u64, Ordering::Relaxed);
        let mut per_model: HashMap<&str, u64> = HashMap::new();
        for (_, record) in records {
            *per_model.entry(record.model.as_str()).or_default() += 1;
        }
        for (model, n) in per_model {
            metrics::rejected(&self.counters.labels, Some(model), RejectReason::Overloaded, n);
        }
    }

    /// Counts a record the caller rejected before submitting it (bad JSON,
    /// say), and reports it like the shards' own rejections.
    pub fn reject(&self, seq: u64, error: &RecordError) {
        self.reject_for(seq, error, None, RejectReason::Malformed);
    }

    /// Like [`Sink::reject`], with the record's model when it could be
    /// read and the reason, for the metrics.
    pub fn reject_for(&self, seq: u64, error: &RecordError, model: Option<&str>, reason: RejectReason) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        metrics::rejected(&self.counters.labels, model, reason, 1);
        (self.on_reject)(seq, error);
    }
}

/// Writes an ingest log entry off the async threads; returns its id.
async fn log_entry(journal: &Journal, base: u64, lines: u64, body: Vec<u8>) -> Result<u64, RefusedBatch> {
    let journal = journal.clone();
    let written = tokio::task::spawn_blocking(move || journal.append_ingest_bytes(base, lines, body)).await;
    match written {
        Ok(Ok(entry)) => Ok(entry),
        Ok(Err(error)) => Err(RefusedBatch { records: Vec::new(), error }),
        Err(e) => Err(RefusedBatch {
            records: Vec::new(),
            error: Error::io("writing the ingest log", std::io::Error::other(e.to_string())),
        }),
    }
}

/// The record of a batch made by `Sink::one`, which holds exactly one.
fn take_one(mut batch: ShardBatch) -> Record {
    batch.records.swap_remove(0).1
}
