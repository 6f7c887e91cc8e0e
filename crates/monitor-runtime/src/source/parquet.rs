//! Parquet files as a source (feature `parquet`): read column-wise, a row
//! group at a time, on a blocking task, by
//! [`ParquetFile`](monitor_core::columnar::ParquetFile).

use std::path::Path;

use async_trait::async_trait;
use monitor_core::Result;
use monitor_core::columnar::{InputColumns, ParquetFile};
use monitor_core::source::{Position, Source, SourceBatch};
use tokio::sync::mpsc;

/// Records from a Parquet file, with positions (the partition and the
/// 1-based number of a batch's last row).
#[derive(Debug)]
pub struct ParquetSource {
    rx: mpsc::Receiver<Result<SourceBatch>>,
    acked: Option<Position>,
    unread: Vec<String>,
    rows: u64,
}

impl ParquetSource {
    /// Opens `path` and checks its schema against `columns`; the rows are
    /// then read on a blocking task of the current runtime.
    pub fn open(path: &Path, columns: &InputColumns) -> Result<Self> {
        Self::open_after(path, &path.display().to_string(), columns, 0)
    }

    /// As [`ParquetSource::open`], with positions under `partition`, and
    /// resuming after the first `skip` rows (row groups wholly before it are
    /// not decoded): for a file a checkpoint holds up to there.
    pub fn open_after(path: &Path, partition: &str, columns: &InputColumns, skip: u64) -> Result<Self> {
        let file = ParquetFile::open(path, columns)?;
        let (unread, rows) = (file.unread_columns().to_vec(), file.rows());
        let (tx, rx) = mpsc::channel(2);
        let partition = partition.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = file.read(&partition, skip, |batch| tx.blocking_send(Ok(batch)).is_ok()) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(Self { rx, acked: None, unread, rows })
    }

    /// The file's columns that no field reads.
    pub fn unread_columns(&self) -> &[String] {
        &self.unread
    }

    /// The rows the file holds, by its footer.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The last position acknowledged by the engine.
    pub fn acked(&self) -> Option<&Position> {
        self.acked.as_ref()
    }
}

#[async_trait]
impl Source for ParquetSource {
    fn name(&self) -> &str {
        "parquet"
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        self.rx.recv().await.transpose()
    }

    async fn ack(&mut self, position: &Position) -> Result<()> {
        self.acked = Some(position.clone());
        Ok(())
    }
}
