//! A shard: one task that owns the monitors of its models and runs records
//! through them in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use monitor_core::RecordError;
use monitor_core::event::Event;
use monitor_core::record::Record;
use monitor_strategies::Monitor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::bus::BusMsg;
use super::metrics::{self, RejectReason};
use super::query::ShardQuery;
use super::sink::{BatchDone, RejectHandler, ShardBatch};
use super::summary::Counters;

/// What a shard task needs.
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) monitor: Monitor,
    pub(crate) rx: mpsc::Receiver<ShardBatch>,
    pub(crate) queries: mpsc::Receiver<ShardQuery>,
    pub(crate) stop: CancellationToken,
    pub(crate) bus: mpsc::Sender<BusMsg>,
    /// The last ingest log entry processed (0: none), restored from the
    /// checkpoint: a snapshot is the effect of every entry up to it.
    pub(crate) last_entry: u64,
    /// One past the largest `seq` processed in this run: with the restored
    /// one of a resumed source, every record of this shard with a lower
    /// `seq` is in its state.
    pub(crate) source_seq: u64,
    /// Records below it are in the restored state already: skipped once a
    /// source resumes from its checkpointed position ([`Sink::resume`]).
    pub(crate) resume: Arc<super::positions::SourcePositions>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) on_reject: RejectHandler,
}

impl Shard {
    /// Processes batches until the sink is closed (every sender dropped) or
    /// the engine stops; on a stop it refuses new batches and still
    /// processes every batch already queued. Returns the monitor, whose
    /// state a caller may snapshot, and the last ingest log entry it holds.
    pub(crate) async fn run(mut self) -> (Monitor, u64, u64) {
        let mut events = Vec::new();
        let mut stopping = false;
        let mut queries_open = true;
        self.counters.shards_running.fetch_add(1, Ordering::Relaxed);
        loop {
            let batch = tokio::select! {
                // Questions first: they are few and cheap, and must not wait
                // behind a full queue of records.
                biased;
                query = self.queries.recv(), if queries_open => {
                    match query {
                        Some(query) => query.answer(&self.monitor, self.last_entry, self.next_source_seq()),
                        None => queries_open = false,
                    }
                    continue;
                }
                batch = self.rx.recv() => batch,
                () = self.stop.cancelled(), if !stopping => {
                    stopping = true;
                    self.rx.close();
                    continue;
                }
            };
            let Some(batch) = batch else { break };
            let received = batch.received;
            let n = batch.records.len() as u64;
            if batch.entry > 0 {
                self.last_entry = batch.entry;
            }
            let done = self.process(batch, &mut events).await;
            self.counters.set_shard(self.index, self.monitor.stats());
            if let Some(queued) = self.counters.queued.get(self.index) {
                queued.fetch_sub(n, Ordering::Relaxed);
            }
            metrics::processed_after(received.elapsed());
            // Every record of this part is processed, its events are on the
            // bus and the counts are published: the batch's completion may fire.
            drop(done);
        }
        self.counters.shards_running.fetch_sub(1, Ordering::Relaxed);
        let next = self.next_source_seq();
        (self.monitor, self.last_entry, next)
    }

    /// The next source `seq` a checkpoint holds for this shard: this run's,
    /// or the restored one of a resumed source when it is further.
    fn next_source_seq(&self) -> u64 {
        self.source_seq.max(self.resume.skip_below(self.index))
    }

    /// Runs the batch's records; returns its completion token.
    async fn process(&mut self, batch: ShardBatch, events: &mut Vec<Event>) -> Option<Arc<BatchDone>> {
        // Records per model, for the metrics: one update per model and batch.
        let mut per_model: HashMap<&str, u64> = HashMap::new();
        let restored_below = self.resume.skip_below(self.index);
        for (seq, record) in &batch.records {
            let seq = *seq;
            if seq < restored_below {
                // Read again after a restart: its effect is in the restored state.
                continue;
            }
            self.source_seq = self.source_seq.max(seq.saturating_add(1));
            // A bug in a detector must cost one record, not the shard and
            // every model it owns.
            let monitor = &mut self.monitor;
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| monitor.process(seq, record, events)));
            match outcome {
                Ok(Ok(())) => *per_model.entry(record.model.as_str()).or_default() += 1,
                Ok(Err(e)) => {
                    metrics::rejected(&self.counters.labels, Some(&record.model), reason_of(record, &e), 1);
                    (self.on_reject)(seq, &e);
                }
                Err(_) => {
                    metrics::rejected(&self.counters.labels, Some(&record.model), RejectReason::Invalid, 1);
                    events.clear();
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(seq, model = %record.model, "a detector panicked on this record; record skipped");
                    (self.on_reject)(seq, &RecordError::record("internal error: a detector panicked on this record"));
                }
            }
            for event in events.drain(..) {
                if self.bus.send(BusMsg::Event(event)).await.is_err() {
                    tracing::error!("event bus closed before the shards; event lost");
                }
            }
        }
        for (model, n) in per_model {
            metrics::ingested(&self.counters.labels, model, n);
        }
        batch.done
    }
}

/// Why a monitor refused `record`, as a metrics label.
fn reason_of(record: &Record, e: &RecordError) -> RejectReason {
    if record.is_late_label() {
        RejectReason::UnmatchedLabel
    } else if e.field.as_deref() == Some("ts") {
        RejectReason::FutureTimestamp
    } else {
        RejectReason::Invalid
    }
}
