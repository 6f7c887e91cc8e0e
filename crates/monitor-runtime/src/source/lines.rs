//! A source of NDJSON lines from any reader: a file or standard input.
//!
//! A blocking task reads and parses; batches cross to the engine through a
//! small bounded queue. A partial batch is handed on as soon as the reader
//! has no more buffered input, that is, just before a read that may block:
//! a live stream (`tail -f log | model-monitor replay`) gets each record
//! processed as it arrives, while a file is read in full batches.

use std::io::{BufRead, BufReader, Read};

use chrono::Utc;
use monitor_core::record::Record;
use monitor_core::source::{Position, Source, SourceBatch};
use monitor_core::{Error, RecordError, Result, async_trait};
use tokio::sync::mpsc;

/// Records per batch.
pub const BATCH: usize = 256;
/// Bytes of input per batch: a batch of long lines is handed on early, so
/// that the batches queued for the engine hold a bounded amount of memory.
pub const BATCH_BYTES: usize = 4 << 20;
/// The default longest line accepted, in bytes (1 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// The largest `max_line_bytes` that can be set (64 MiB).
pub const MAX_LINE_BYTES_LIMIT: usize = 64 << 20;

/// NDJSON records from a reader, one per line, with positions.
///
/// A line that is too long, not UTF-8, or not a valid record is rejected
/// with its line number and the reason, and reading goes on; a long line is
/// skipped without being held in memory. A UTF-8 byte order mark at the
/// start is ignored. Each record's `seq` is its 0-based line index, and a
/// record without `ts` gets the time it is read.
#[derive(Debug)]
pub struct LineSource {
    name: String,
    rx: mpsc::Receiver<Result<SourceBatch>>,
    acked: Option<Position>,
}

impl LineSource {
    /// Reads `reader` on a blocking task of the current runtime. `partition`
    /// names the input in positions (a path, or `stdin`); `max_line_bytes`
    /// is capped at [`MAX_LINE_BYTES_LIMIT`].
    pub fn spawn(
        name: impl Into<String>,
        partition: impl Into<String>,
        reader: impl Read + Send + 'static,
        max_line_bytes: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let partition = partition.into();
        let max = max_line_bytes.clamp(1, MAX_LINE_BYTES_LIMIT);
        tokio::task::spawn_blocking(move || {
            let reader = BufReader::with_capacity(64 * 1024, reader);
            if let Err(e) = read_batches(reader, &partition, max, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Self { name: name.into(), rx, acked: None }
    }

    /// The last position acknowledged by the engine: every line up to it is
    /// processed.
    pub fn acked(&self) -> Option<&Position> {
        self.acked.as_ref()
    }
}

#[async_trait]
impl Source for LineSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        self.rx.recv().await.transpose()
    }

    async fn ack(&mut self, position: &Position) -> Result<()> {
        self.acked = Some(position.clone());
        Ok(())
    }
}

/// What one bounded read found.
enum Line {
    /// The input ended.
    End,
    /// A line (without its newline) is in the buffer.
    Complete,
    /// A line longer than the limit was skipped; its length in bytes.
    TooLong(usize),
}

/// Reads one line into `buf` (cleared first), never holding more than
/// `max` bytes of it.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    let mut seen_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (seen_any, total > max) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong(total),
                (true, false) => Line::Complete,
            });
        }
        seen_any = true;
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], true),
            None => (available, false),
        };
        total = total.saturating_add(chunk.len());
        if total <= max {
            buf.extend_from_slice(chunk);
        } else {
            buf.clear();
        }
        let used = chunk.len() + usize::from(found);
        reader.consume(used);
        if found {
            return Ok(if total > max { Line::TooLong(total) } else { Line::Complete });
        }
    }
}

fn read_batches<R: Read>(
    mut reader: BufReader<R>,
    partition: &str,
    max: usize,
    tx: &mpsc::Sender<Result<SourceBatch>>,
) -> Result<()> {
    let mut batch = SourceBatch::default();
    let mut batch_bytes = 0usize;
    let mut buf = Vec::new();
    let mut index: u64 = 0;
    loop {
        let line = read_line(&mut reader, &mut buf, max)
            .map_err(|e| Error::io(format!("reading {partition} after line {index}"), e))?;
        let seq = index;
        match line {
            Line::End => break,
            Line::TooLong(len) => batch.rejected.push((
                seq,
                RecordError::record(format!("line is {len} bytes, longer than the limit of {max} bytes"))
                    .at_line(seq + 1),
            )),
            Line::Complete => {
                batch_bytes += buf.len();
                let mut bytes = buf.as_slice();
                if seq == 0 {
                    bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                }
                if let Some(parsed) = parse(bytes, seq) {
                    match parsed {
                        Ok(record) => batch.records.push((seq, record)),
                        Err(e) => batch.rejected.push((seq, e)),
                    }
                }
            }
        }
        index += 1;
        batch.position = Some(Position::new(partition, index));
        // Hand the batch on when full, or before a read that may block.
        if batch.len() >= BATCH || batch_bytes >= BATCH_BYTES || (!batch.is_empty() && reader.buffer().is_empty()) {
            let full = std::mem::take(&mut batch);
            batch_bytes = 0;
            if tx.blocking_send(Ok(full)).is_err() {
                return Ok(()); // the engine stopped reading
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}

/// Parses one line; `None` for a blank line.
fn parse(bytes: &[u8], seq: u64) -> Option<Result<Record, RecordError>> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Some(Err(RecordError::record(format!(
                "line is not valid UTF-8 (bad byte 0x{:02x} at byte {})",
                bytes.get(e.valid_up_to()).copied().unwrap_or(0),
                e.valid_up_to() + 1
            ))
            .at_line(seq + 1)));
        }
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.trim().is_empty() {
        return None;
    }
    Some(Record::parse_line(text, seq + 1, Utc::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, &mut buf, max).unwrap() {
                Line::End => return out,
                Line::Complete => out.push(String::from_utf8_lossy(&buf).into_owned()),
                Line::TooLong(n) => out.push(format!("<{n} bytes>")),
            }
        }
    }

    #[test]
    fn lines_are_bounded_without_buffering_the_long_one() {
        assert_eq!(lines(b"ab\ncdefghij\n\nxy", 5), vec!["ab", "<8 bytes>", "", "xy"]);
        assert_eq!(lines(b"abcdef", 5), vec!["<6 bytes>"]);
        assert_eq!(lines(b"", 5), Vec::<String>::new());
    }

    #[test]
    fn bad_utf8_is_a_rejection_with_its_line() {
        let e = parse(b"{\"model\": \"a\xff\"}", 4).unwrap().unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.to_string().contains("not valid UTF-8 (bad byte 0xff at byte 13)"), "{e}");
    }
}
