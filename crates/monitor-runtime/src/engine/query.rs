//! Questions to the shards about the state they own.
//!
//! A shard owns its models' monitors outright, so nothing else may read
//! them. A query is a message on the shard's own small queue, answered
//! through a oneshot between two batches: the hot path takes no lock, and
//! a query waits at most for the batch in hand.

use std::sync::Arc;

use monitor_core::Error;
use monitor_strategies::{Monitor, VersionDetail, VersionOverview};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Queries queued per shard before an asker waits.
pub(crate) const QUERY_QUEUE: usize = 16;

/// A question to one shard.
pub(crate) enum ShardQuery {
    /// Its model versions: the first `limit` by name, and how many in all.
    Overview { limit: usize, reply: oneshot::Sender<(Vec<VersionOverview>, usize)> },
    /// Every version of one model, with at most `max_detectors` detectors each.
    Model { model: String, max_detectors: usize, reply: oneshot::Sender<Vec<VersionDetail>> },
    /// The monitor's whole state, as snapshot JSON, and the last ingest log
    /// entry it holds, for a checkpoint.
    /// The snapshot (JSON), the last ingest log entry and the next source
    /// `seq` it holds.
    Snapshot { reply: oneshot::Sender<Result<(Vec<u8>, u64, u64), Error>> },
}

impl ShardQuery {
    /// Answers from the shard's monitor. An asker that went away is no error.
    pub(crate) fn answer(self, monitor: &Monitor, last_entry: u64, source_seq: u64) {
        match self {
            Self::Overview { limit, reply } => {
                let _ = reply.send(monitor.overview(limit));
            }
            Self::Model { model, max_detectors, reply } => {
                let _ = reply.send(monitor.version_details(&model, max_detectors));
            }
            Self::Snapshot { reply } => {
                let _ =
                    reply.send(monitor.snapshot().and_then(|s| s.to_json()).map(|json| (json, last_entry, source_seq)));
            }
        }
    }
}

/// Model versions across every shard, as [`Inspector::overview`] lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// The first versions by model and version name.
    pub versions: Vec<VersionOverview>,
    /// Model versions held in all, listed or not.
    pub total: usize,
}

/// Asks the shards of a running engine about their models. Cheap to clone.
///
/// Each answer is bounded by the caller's limits, and is a consistent view
/// of each shard between two of its batches.
#[derive(Debug, Clone)]
pub struct Inspector {
    pub(crate) shards: Arc<[mpsc::Sender<ShardQuery>]>,
}

impl Inspector {
    /// The first `limit` model versions by model and version name, over
    /// every shard, with how many there are in all. [`Error::Closed`] once
    /// the engine has stopped.
    pub async fn overview(&self, limit: usize) -> Result<Overview, Error> {
        let mut waiting = Vec::with_capacity(self.shards.len());
        for shard in self.shards.iter() {
            let (reply, rx) = oneshot::channel();
            shard.send(ShardQuery::Overview { limit, reply }).await.map_err(|_| Error::Closed)?;
            waiting.push(rx);
        }
        let mut all = Overview::default();
        for rx in waiting {
            let (versions, total) = rx.await.map_err(|_| Error::Closed)?;
            all.versions.extend(versions);
            all.total += total;
        }
        all.versions.sort_unstable_by(|a, b| (&a.model, &a.version).cmp(&(&b.model, &b.version)));
        all.versions.truncate(limit);
        Ok(all)
    }

    /// Every version of `model` with at most `max_detectors` detectors
    /// listed each; empty when the engine holds no state of that model.
    pub async fn model(&self, model: &str, max_detectors: usize) -> Result<Vec<VersionDetail>, Error> {
        let index = monitor_core::shard::shard_of(model, self.shards.len());
        let (reply, rx) = oneshot::channel();
        let query = ShardQuery::Model { model: model.to_owned(), max_detectors, reply };
        self.shards[index].send(query).await.map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)
    }
}
