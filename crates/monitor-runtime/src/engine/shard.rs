//! A shard: one task that owns the monitors of its models and runs records
//! through them in order.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use monitor_core::RecordError;
use monitor_core::event::Event;
use monitor_strategies::Monitor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sink::{BatchDone, RejectHandler, ShardBatch};
use super::summary::Counters;

/// What a shard task needs.
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) monitor: Monitor,
    pub(crate) rx: mpsc::Receiver<ShardBatch>,
    pub(crate) stop: CancellationToken,
    pub(crate) bus: mpsc::Sender<Event>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) on_reject: RejectHandler,
}

impl Shard {
    /// Processes batches until the sink is closed (every sender dropped) or
    /// the engine stops; on a stop it refuses new batches and still
    /// processes every batch already queued. Returns the monitor, whose
    /// state a caller may snapshot.
    pub(crate) async fn run(mut self) -> Monitor {
        let mut events = Vec::new();
        let mut stopping = false;
        loop {
            let batch = tokio::select! {
                batch = self.rx.recv() => batch,
                () = self.stop.cancelled(), if !stopping => {
                    stopping = true;
                    self.rx.close();
                    continue;
                }
            };
            let Some(batch) = batch else { break };
            let done = self.process(batch, &mut events).await;
            self.counters.set_shard(self.index, self.monitor.stats());
            // Every record of this part is processed, its events are on the
            // bus and the counts are published: the batch's completion may fire.
            drop(done);
        }
        self.monitor
    }

    /// Runs the batch's records; returns its completion token.
    async fn process(&mut self, batch: ShardBatch, events: &mut Vec<Event>) -> Option<Arc<BatchDone>> {
        for (seq, record) in batch.records {
            // A bug in a detector must cost one record, not the shard and
            // every model it owns.
            let monitor = &mut self.monitor;
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| monitor.process(seq, &record, events)));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => (self.on_reject)(seq, &e),
                Err(_) => {
                    events.clear();
                    self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(seq, model = %record.model, "a detector panicked on this record; record skipped");
                    (self.on_reject)(seq, &RecordError::record("internal error: a detector panicked on this record"));
                }
            }
            for event in events.drain(..) {
                if self.bus.send(event).await.is_err() {
                    tracing::error!("event bus closed before the shards; event lost");
                }
            }
        }
        batch.done
    }
}
