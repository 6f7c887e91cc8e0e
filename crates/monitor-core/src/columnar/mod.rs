//! Records from columnar files: the `[input]` mapping of columns onto the
//! record contract and, with the feature `parquet`, a synchronous reader
//! of Parquet files that a source (a `replay` input) and a reference file
//! share.
//!
//! The columns map onto the record contract by name (`model`, `ts`,
//! `features.<name>`, ...) or by [`InputColumns`]. The schema is checked
//! before any row is read: a column of the wrong type is an error naming
//! it. A row that breaks the contract is rejected with its 1-based row
//! number and the column, like a bad NDJSON line; a row group that cannot
//! be decoded is an error naming the row group.
//!
//! ```
//! use monitor_core::columnar::InputColumns;
//!
//! let columns = InputColumns { default_model: Some("car-loan".into()), ..InputColumns::default() };
//! columns.validate()?;
//! # Ok::<(), monitor_core::Error>(())
//! ```

#[cfg(feature = "parquet")]
mod columns;
mod input;
#[cfg(feature = "parquet")]
mod rows;

pub use self::input::{InputColumns, MAX_MAPPED_COLUMNS};

#[cfg(feature = "parquet")]
pub use self::parquet_file::ParquetFile;

#[cfg(feature = "parquet")]
mod parquet_file {
    use std::fs::File;
    use std::path::Path;

    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};

    use super::columns::ColumnPlan;
    use super::input::InputColumns;
    use super::rows;
    use crate::error::{Error, Result};
    use crate::source::{Position, SourceBatch};

    /// Rows decoded at a time: one batch.
    const ROWS_PER_BATCH: usize = 8192;

    /// A Parquet file of records, its schema checked against the columns.
    #[derive(Debug)]
    pub struct ParquetFile {
        file: File,
        metadata: ArrowReaderMetadata,
        plan: ColumnPlan,
        default_model: Option<String>,
        shown: String,
    }

    impl ParquetFile {
        /// Opens `path` and checks its schema against `columns`.
        pub fn open(path: &Path, columns: &InputColumns) -> Result<Self> {
            columns.validate()?;
            let shown = path.display().to_string();
            let file = open_regular(path, &shown)?;
            let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
                .map_err(|e| Error::config("input", format!("{shown} is not a readable Parquet file: {e}")))?;
            let plan = ColumnPlan::new(metadata.schema(), columns, &shown)?;
            Ok(Self { file, metadata, plan, default_model: columns.default_model.clone(), shown })
        }

        /// The file's columns that no field reads.
        pub fn unread_columns(&self) -> &[String] {
            &self.plan.unread
        }

        /// The rows the file holds, by its footer.
        pub fn rows(&self) -> u64 {
            u64::try_from(self.metadata.metadata().file_metadata().num_rows()).unwrap_or(0)
        }

        /// Reads the rows from the `skip`th on (row groups wholly before it
        /// are not decoded), a batch at a time, each positioned under
        /// `partition` at its last row; stops early when `each` says no.
        /// A decoder that fails (or panics on a malformed file) ends the
        /// reading with an error naming the row group.
        pub fn read(&self, partition: &str, skip: u64, mut each: impl FnMut(SourceBatch) -> bool) -> Result<()> {
            let read =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.read_groups(partition, skip, &mut each)));
            read.unwrap_or_else(|_| {
                Err(Error::io(
                    format!("reading {}", self.shown),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "the Parquet decoder failed on this file"),
                ))
            })
        }

        fn read_groups(&self, partition: &str, skip: u64, each: &mut dyn FnMut(SourceBatch) -> bool) -> Result<()> {
            let mut seq = 0u64;
            for group in 0..self.metadata.metadata().num_row_groups() {
                let group_rows = u64::try_from(self.metadata.metadata().row_group(group).num_rows()).unwrap_or(0);
                if seq + group_rows <= skip {
                    seq += group_rows;
                    continue;
                }
                let bad = |e: &dyn std::fmt::Display| {
                    Error::io(
                        format!("reading row group {group} of {}", self.shown),
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                    )
                };
                let clone = self.file.try_clone().map_err(|e| Error::io(format!("reading {}", self.shown), e))?;
                let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(clone, self.metadata.clone())
                    .with_row_groups(vec![group])
                    .with_batch_size(ROWS_PER_BATCH)
                    .build()
                    .map_err(|e| bad(&e))?;
                for batch in reader {
                    let batch = batch.map_err(|e| bad(&e))?;
                    let rows = batch.num_rows() as u64;
                    let mut out = rows::read_batch(&batch, &self.plan.roles, self.default_model.as_deref(), seq);
                    seq += rows;
                    if seq <= skip {
                        continue;
                    }
                    out.records.retain(|(s, _)| *s >= skip);
                    out.rejected.retain(|(s, _)| *s >= skip);
                    out.position = Some(Position::new(partition, seq));
                    if !each(out) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        }
    }

    /// Opens `path`, refusing what is not a regular file (a FIFO would
    /// block, a device never ends).
    fn open_regular(path: &Path, shown: &str) -> Result<File> {
        let file = File::open(path).map_err(|e| Error::io(format!("cannot open {shown}"), e))?;
        let meta = file.metadata().map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
        if !meta.is_file() {
            return Err(Error::config("input", format!("{shown} is not a regular file")));
        }
        Ok(file)
    }
}
