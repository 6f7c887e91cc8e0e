//! Where the sources stand: each partition's last acknowledged position,
//! for the checkpoints, and what the latest checkpoint says, for a source
//! that resumes.
//!
//! A checkpoint holds the positions acknowledged before its snapshots were
//! taken (every record up to them is in every shard's state) and each
//! shard's next `seq`. A source that reads the same partition again (a
//! file) resumes after the position, and each shard skips what it had
//! already processed past it: nothing twice, nothing lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use monitor_core::source::Position;

/// The sources' positions, shared by the sink, the shards and the
/// checkpoints.
#[derive(Debug, Default)]
pub(crate) struct SourcePositions {
    acked: Mutex<BTreeMap<String, u64>>,
    /// From the latest checkpoint.
    restored: BTreeMap<String, u64>,
    /// Each shard's next `seq` in the latest checkpoint.
    restored_seqs: Vec<u64>,
    /// Set once a source resumes: the shards then skip records below
    /// their restored `seq`.
    resuming: AtomicBool,
}

/// The most partitions remembered: a source names few; a flood of names
/// must not grow the checkpoint.
const MAX_PARTITIONS: usize = 1024;

impl SourcePositions {
    /// Positions restored from a checkpoint.
    pub(crate) fn restored(positions: &[Position], seqs: Vec<u64>) -> Self {
        let restored = positions.iter().map(|p| (p.partition.clone(), p.offset)).collect();
        Self { restored, restored_seqs: seqs, ..Self::default() }
    }

    /// Notes that every record up to `position` is processed.
    pub(crate) fn acknowledged(&self, position: &Position) {
        let mut acked = self.acked.lock().unwrap_or_else(PoisonError::into_inner);
        if acked.len() < MAX_PARTITIONS || acked.contains_key(&position.partition) {
            acked.insert(position.partition.clone(), position.offset);
        }
    }

    /// The positions of this run: acknowledged, or resumed and not moved
    /// past yet. The shards' `seq`s belong to these partitions only, so a
    /// partition read in an earlier run and not resumed is not kept.
    pub(crate) fn current(&self) -> Vec<Position> {
        let acked = self.acked.lock().unwrap_or_else(PoisonError::into_inner);
        acked.iter().map(|(p, o)| Position::new(p.clone(), *o)).collect()
    }

    /// Resumes `partition`: its offset in the latest checkpoint, if it has
    /// one; from then on the shards skip what their restored state holds.
    pub(crate) fn resume(&self, partition: &str) -> Option<u64> {
        let offset = *self.restored.get(partition)?;
        self.acked.lock().unwrap_or_else(PoisonError::into_inner).entry(partition.to_owned()).or_insert(offset);
        self.resuming.store(true, Ordering::Release);
        Some(offset)
    }

    /// The `seq` below which shard `index` skips records: its restored next
    /// `seq` once a source resumed, else 0.
    pub(crate) fn skip_below(&self, index: usize) -> u64 {
        if self.resuming.load(Ordering::Acquire) { self.restored_seqs.get(index).copied().unwrap_or(0) } else { 0 }
    }
}
