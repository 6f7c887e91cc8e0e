//! The `Source` trait: where records come from, with positions and
//! acknowledgements.
//!
//! A source reads records (from a file, standard input, an HTTP request, a
//! partition of a log) and hands them to the engine in batches. Each batch
//! carries its [`Position`]: the partition it was read from and the offset
//! of its last record. Once every record of a batch has been processed (its
//! events are on the bus), the engine acknowledges the batch with
//! [`Source::ack`], in the order the batches were read. A source commits or
//! checkpoints only acknowledged positions, so that after a crash it resumes
//! from the first batch that was not done: nothing accepted is lost.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{RecordError, Result};
use crate::record::Record;

/// Where a batch was read: a partition of the input and an offset in it.
///
/// | source | partition | offset |
/// | --- | --- | --- |
/// | a file | its path | the 1-based line number of the batch's last line |
/// | standard input | `stdin` | the same |
/// | HTTP | `http` | the request's number since start |
/// | a log (Kafka, Redis Streams) | topic and partition | the log offset |
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// The partition: a path, `stdin`, a topic and partition number.
    pub partition: String,
    /// The offset of the last record of the batch in that partition.
    pub offset: u64,
}

impl Position {
    /// The position `offset` in `partition`.
    pub fn new(partition: impl Into<String>, offset: u64) -> Self {
        Self { partition: partition.into(), offset }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

/// Records read together, in input order, with where they were read.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// Parsed records with their `seq` (the 0-based index of their input
    /// line), in input order.
    pub records: Vec<(u64, Record)>,
    /// Lines that could not be parsed, with their `seq` and the reason. The
    /// engine counts and reports them; they are part of the batch's position.
    pub rejected: Vec<(u64, RecordError)>,
    /// Where the batch ends. `None` for a batch that carries no position.
    pub position: Option<Position>,
}

impl SourceBatch {
    /// Whether the batch has neither records nor rejections.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.rejected.is_empty()
    }

    /// Records and rejected lines in the batch.
    pub fn len(&self) -> usize {
        self.records.len() + self.rejected.len()
    }
}

/// A stream of records in batches, with positions and acknowledgements.
///
/// Implement it in your own crate, depending on `monitor-core` alone. The
/// engine calls [`Source::next_batch`] until it returns `None` (the input
/// ended) or the engine stops, and calls [`Source::ack`] for each batch once
/// it is processed, in the order the batches were returned.
///
/// ```
/// use monitor_core::source::{Position, Source, SourceBatch};
/// use monitor_core::record::Record;
/// use monitor_core::{async_trait, Result};
///
/// /// Lines held in memory, one batch each; remembers what was acknowledged.
/// struct Lines { lines: Vec<String>, next: usize, acked: Option<u64> }
///
/// #[async_trait]
/// impl Source for Lines {
///     fn name(&self) -> &str { "lines" }
///     async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
///         let Some(line) = self.lines.get(self.next) else { return Ok(None) };
///         let seq = self.next as u64;
///         self.next += 1;
///         let mut batch = SourceBatch { position: Some(Position::new("lines", seq + 1)), ..Default::default() };
///         match Record::parse_line(line, seq + 1, chrono::Utc::now()) {
///             Ok(record) => batch.records.push((seq, record)),
///             Err(e) => batch.rejected.push((seq, e)),
///         }
///         Ok(Some(batch))
///     }
///     async fn ack(&mut self, position: &Position) -> Result<()> {
///         self.acked = Some(position.offset);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Source: Send {
    /// A short name for logs and reports (`file`, `stdin`, `http`).
    fn name(&self) -> &str;

    /// The next batch, waiting for input if there is none yet; `None` once
    /// the input has ended. An error ends the source; batches returned
    /// before it are still processed and acknowledged.
    async fn next_batch(&mut self) -> Result<Option<SourceBatch>>;

    /// Every record of the batch that ended at `position` has been
    /// processed, and so has every batch before it.
    async fn ack(&mut self, position: &Position) -> Result<()> {
        let _ = position;
        Ok(())
    }
}
