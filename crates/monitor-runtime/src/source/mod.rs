//! Sources: records in, with positions, acknowledged once processed.
//!
//! [`pump`] drives any [`Source`] into a [`Sink`]: it submits each batch,
//! reports its rejected lines, and calls [`Source::ack`] for a batch once
//! every shard holding part of it has processed that part, in the order the
//! batches were read. Acknowledgements are delivered between calls to
//! `next_batch`, and all of them before `pump` returns.

mod lines;
#[cfg(feature = "parquet")]
mod parquet;

use std::collections::{BTreeMap, VecDeque};

use monitor_core::source::{Position, Source};
use monitor_core::{Error, RecordError};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use self::lines::{BATCH, BATCH_BYTES, DEFAULT_MAX_LINE_BYTES, LineSource, MAX_LINE_BYTES_LIMIT};
#[cfg(feature = "parquet")]
pub use self::parquet::ParquetSource;
use crate::engine::{BatchDone, Sink};
pub use monitor_core::columnar::{InputColumns, MAX_MAPPED_COLUMNS};

/// Batches submitted and not yet acknowledged before `pump` waits for the
/// oldest: bounds what a source must be able to replay after a crash.
const MAX_IN_FLIGHT: usize = 64;

/// Distinct model names counted one by one in [`SourceReport`]; records of
/// further models are counted together.
const MAX_MODELS_COUNTED: usize = 10_000;

/// How [`pump`] treats bad lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpOptions {
    /// Stop at the first rejected line instead of skipping it.
    pub strict: bool,
}

/// What a source delivered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceReport {
    /// Records parsed and submitted.
    pub submitted: u64,
    /// Lines rejected by the source (too long, not UTF-8, not a record).
    pub malformed: u64,
    /// With `strict`, the rejection that stopped the source.
    pub stopped_by: Option<RecordError>,
    /// The source failed (an unreadable input); what was read before is processed.
    pub failed: Option<String>,
    /// The last position acknowledged: everything up to it is processed.
    pub acked: Option<Position>,
    /// Submitted records per model name (the first 10,000 names).
    pub records_by_model: BTreeMap<String, u64>,
    /// Submitted records of models past the first 10,000 names.
    pub records_of_other_models: u64,
}

impl SourceReport {
    fn count_model(&mut self, model: &str) {
        if let Some(n) = self.records_by_model.get_mut(model) {
            *n += 1;
        } else if self.records_by_model.len() < MAX_MODELS_COUNTED {
            self.records_by_model.insert(model.to_owned(), 1);
        } else {
            self.records_of_other_models += 1;
        }
    }
}

/// Reads `source` to its end (or until `stop` is cancelled), submitting
/// every batch to `sink` and acknowledging each once processed. Returns
/// when every submitted batch has been acknowledged.
///
/// An error reading the source ends it (recorded in
/// [`SourceReport::failed`]); the engine closing is an [`Error::Closed`].
pub async fn pump(
    source: &mut dyn Source,
    sink: &Sink,
    options: PumpOptions,
    stop: &CancellationToken,
) -> Result<SourceReport, Error> {
    let mut report = SourceReport::default();
    let mut in_flight: VecDeque<(Option<Position>, oneshot::Receiver<()>)> = VecDeque::new();
    loop {
        let full = in_flight.len() >= MAX_IN_FLIGHT;
        ack_done(source, sink, &mut in_flight, &mut report, full).await;
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            next = source.next_batch() => next,
        };
        let batch = match next {
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(source = source.name(), error = %e, "source failed");
                report.failed = Some(e.to_string());
                break;
            }
        };
        let mut records = batch.records;
        let mut rejected = batch.rejected;
        let mut position = batch.position;
        let mut stopped = false;
        if options.strict {
            if let Some(first) = rejected.iter().map(|(seq, _)| *seq).min() {
                // Stop at the first bad line: only what came before it goes in.
                records.retain(|(s, _)| *s < first);
                rejected.retain(|(s, _)| *s == first);
                position = position.map(|p| Position::new(p.partition, first + 1));
                stopped = true;
            }
        }
        for (seq, e) in rejected {
            report.malformed += 1;
            sink.reject(seq, &e);
            if stopped {
                report.stopped_by = Some(e);
            }
        }
        for (_, record) in &records {
            report.count_model(&record.model);
        }
        report.submitted += records.len() as u64;
        let (done, rx) = BatchDone::new();
        sink.submit_batch_with(records, Some(&done)).await?;
        drop(done);
        in_flight.push_back((position, rx));
        if stopped {
            break;
        }
    }
    while !in_flight.is_empty() {
        ack_done(source, sink, &mut in_flight, &mut report, true).await;
    }
    Ok(report)
}

/// Acknowledges the finished batches at the front of `in_flight`, waiting
/// for the oldest one first when `wait` is set.
async fn ack_done(
    source: &mut dyn Source,
    sink: &Sink,
    in_flight: &mut VecDeque<(Option<Position>, oneshot::Receiver<()>)>,
    report: &mut SourceReport,
    mut wait: bool,
) {
    while let Some((_, rx)) = in_flight.front_mut() {
        if wait {
            // A dropped sender means the batch was dropped with its shard;
            // either way nothing more will happen to it.
            let _ = rx.await;
            wait = false;
        } else if matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
            return;
        }
        let Some((position, _)) = in_flight.pop_front() else { return };
        if let Some(position) = position {
            if let Err(e) = source.ack(&position).await {
                tracing::warn!(source = source.name(), %position, error = %e, "source could not record an acknowledgement");
            }
            sink.acknowledged(&position);
            report.acked = Some(position);
        }
    }
}
