//! Parquet files as a source: read column-wise, a row group at a time,
//! into batches of records (feature `parquet`).
//!
//! The columns map onto the record contract by name (`model`, `ts`,
//! `features.<name>`, ...) or by the `[input]` table ([`InputColumns`]).
//! The schema is checked before any row is read: a column of the wrong
//! type is an error naming it. A row that breaks the contract is rejected
//! with its 1-based row number and the column, like a bad NDJSON line; a
//! row group that cannot be decoded stops the source with an error naming
//! the row group.

mod columns;
mod rows;

use std::fs::File;
use std::path::Path;

use async_trait::async_trait;
use monitor_core::source::{Position, Source, SourceBatch};
use monitor_core::{Error, Result};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use tokio::sync::mpsc;

use self::columns::ColumnPlan;
use super::input::InputColumns;

/// Rows decoded at a time: one batch handed to the engine.
const ROWS_PER_BATCH: usize = 8192;

/// Records from a Parquet file, with positions (the path and the 1-based
/// number of a batch's last row).
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
        columns.validate()?;
        let shown = path.display().to_string();
        let partition = partition.to_owned();
        let file = open_regular(path, &shown)?;
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| Error::config("input", format!("{shown} is not a readable Parquet file: {e}")))?;
        let plan = ColumnPlan::new(metadata.schema(), columns, &shown)?;
        let rows = u64::try_from(metadata.metadata().file_metadata().num_rows()).unwrap_or(0);
        let unread = plan.unread.clone();
        let (tx, rx) = mpsc::channel(2);
        let default_model = columns.default_model.clone();
        tokio::task::spawn_blocking(move || {
            // A decoder that panics on a malformed file must end the source
            // with an error, not end it as if the file were done.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let names = Names { shown: &shown, partition: &partition };
                read_file(&file, &metadata, &plan, default_model.as_deref(), names, skip, &tx)
            }));
            let failed = match read {
                Ok(result) => result.err(),
                Err(_) => Some(Error::io(
                    format!("reading {shown}"),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "the Parquet decoder failed on this file"),
                )),
            };
            if let Some(e) = failed {
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

/// Opens `path`, refusing what is not a regular file (a FIFO would block,
/// a device never ends).
fn open_regular(path: &Path, shown: &str) -> Result<File> {
    let file = File::open(path).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
    let meta = file.metadata().map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    if !meta.is_file() {
        return Err(Error::config("input", format!("{shown} is not a regular file")));
    }
    Ok(file)
}

/// How a file is named: in messages, and in positions.
#[derive(Clone, Copy)]
struct Names<'a> {
    shown: &'a str,
    partition: &'a str,
}

fn read_file(
    file: &File,
    metadata: &ArrowReaderMetadata,
    plan: &ColumnPlan,
    default_model: Option<&str>,
    names: Names<'_>,
    skip: u64,
    tx: &mpsc::Sender<Result<SourceBatch>>,
) -> Result<()> {
    let Names { shown, partition } = names;
    let mut seq = 0u64;
    for group in 0..metadata.metadata().num_row_groups() {
        let group_rows = u64::try_from(metadata.metadata().row_group(group).num_rows()).unwrap_or(0);
        if seq + group_rows <= skip {
            seq += group_rows;
            continue;
        }
        let bad = |e: &dyn std::fmt::Display| {
            Error::io(
                format!("reading row group {group} of {shown}"),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            )
        };
        let clone = file.try_clone().map_err(|e| Error::io(format!("reading {shown}"), e))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(clone, metadata.clone())
            .with_row_groups(vec![group])
            .with_batch_size(ROWS_PER_BATCH)
            .build()
            .map_err(|e| bad(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(&e))?;
            let rows = batch.num_rows() as u64;
            let mut out = rows::read_batch(&batch, &plan.roles, default_model, seq);
            seq += rows;
            if seq <= skip {
                continue;
            }
            out.records.retain(|(s, _)| *s >= skip);
            out.rejected.retain(|(s, _)| *s >= skip);
            out.position = Some(Position::new(partition, seq));
            if tx.blocking_send(Ok(out)).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
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
