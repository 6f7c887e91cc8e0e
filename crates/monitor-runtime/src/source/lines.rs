//! A source of NDJSON lines from any reader: a file or standard input.
//!
//! One blocking task reads and cuts the input into chunks of whole lines;
//! the chunks are parsed on blocking tasks in parallel (as many as there are
//! cores), and handed on in input order, so every model's records keep
//! their order and a single-model stream still parses on every core. A
//! partial chunk is cut as soon as the reader has no more buffered input,
//! that is, just before a read that may block: a live stream
//! (`tail -f log | model-monitor replay`) gets each record processed as it
//! arrives, while a file is read in full chunks.

use std::collections::VecDeque;
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
    rx: mpsc::Receiver<Result<Chunk>>,
    /// Chunks being parsed, oldest first: handed on in this order.
    parsing: VecDeque<tokio::task::JoinHandle<SourceBatch>>,
    /// The most chunks parsed at once.
    parallelism: usize,
    /// The reader's error, handed on after the chunks read before it.
    failed: Option<Error>,
    acked: Option<Position>,
}

/// Whole lines of input, not yet parsed.
#[derive(Debug, Default)]
struct Chunk {
    /// The lines' bytes, without their newlines.
    bytes: Vec<u8>,
    /// Each line: its `seq`, and its end in `bytes`, or a line that was too
    /// long.
    lines: Vec<(u64, LineEnd)>,
    /// Where the chunk ends.
    position: Option<Position>,
}

/// Where a line of a [`Chunk`] ends, or why it was not kept.
#[derive(Debug, Clone, Copy)]
enum LineEnd {
    At(usize),
    TooLong { len: usize, max: usize },
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
        Self::spawn_after(name, partition, reader, max_line_bytes, 0)
    }

    /// As [`LineSource::spawn`], resuming after the first `skip` lines
    /// (read, not parsed): for a file whose first `skip` lines a checkpoint
    /// holds ([`Sink::resume`](crate::Sink::resume)). Line numbers and
    /// `seq`s stay those of the whole file.
    pub fn spawn_after(
        name: impl Into<String>,
        partition: impl Into<String>,
        reader: impl Read + Send + 'static,
        max_line_bytes: usize,
        skip: u64,
    ) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(2, usize::from);
        let (tx, rx) = mpsc::channel(parallelism + 2);
        let partition = partition.into();
        let max = max_line_bytes.clamp(1, MAX_LINE_BYTES_LIMIT);
        tokio::task::spawn_blocking(move || {
            let reader = BufReader::with_capacity(64 * 1024, reader);
            if let Err(e) = read_chunks(reader, &partition, max, skip, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Self { name: name.into(), rx, parsing: VecDeque::new(), parallelism, failed: None, acked: None }
    }

    /// Starts parsing `chunk` on a blocking task.
    fn parse(&mut self, chunk: Chunk) {
        self.parsing.push_back(tokio::task::spawn_blocking(move || parse_chunk(chunk)));
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
        // Keep every core parsing: start the chunks already read, up to the
        // limit; wait for one only when nothing is being parsed.
        while self.failed.is_none() && self.parsing.len() < self.parallelism {
            let next = if self.parsing.is_empty() { self.rx.recv().await } else { self.rx.try_recv().ok() };
            match next {
                Some(Ok(chunk)) => self.parse(chunk),
                Some(Err(e)) => self.failed = Some(e),
                None => break,
            }
        }
        match self.parsing.pop_front() {
            Some(task) => {
                task.await.map(Some).map_err(|e| Error::io("parsing the input", std::io::Error::other(e.to_string())))
            }
            None => self.failed.take().map_or(Ok(None), Err),
        }
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

/// Reads `reader` into chunks of whole lines and sends them on, in order.
fn read_chunks<R: Read>(
    mut reader: BufReader<R>,
    partition: &str,
    max: usize,
    skip: u64,
    tx: &mpsc::Sender<Result<Chunk>>,
) -> Result<()> {
    let mut chunk = Chunk::default();
    let mut buf = Vec::new();
    let mut index: u64 = 0;
    loop {
        let line = read_line(&mut reader, &mut buf, max)
            .map_err(|e| Error::io(format!("reading {partition} after line {index}"), e))?;
        let seq = index;
        if seq < skip && !matches!(line, Line::End) {
            index += 1;
            continue;
        }
        match line {
            Line::End => break,
            Line::TooLong(len) => chunk.lines.push((seq, LineEnd::TooLong { len, max })),
            Line::Complete => {
                chunk.bytes.extend_from_slice(&buf);
                chunk.lines.push((seq, LineEnd::At(chunk.bytes.len())));
            }
        }
        index += 1;
        chunk.position = Some(Position::new(partition, index));
        // Hand the chunk on when full, or before a read that may block.
        let due = chunk.lines.len() >= BATCH || chunk.bytes.len() >= BATCH_BYTES || reader.buffer().is_empty();
        if due && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
            return Ok(()); // the engine stopped reading
        }
    }
    if !chunk.lines.is_empty() {
        let _ = tx.blocking_send(Ok(chunk));
    }
    Ok(())
}

/// Parses a chunk's lines into a batch that ends where the chunk ends.
fn parse_chunk(chunk: Chunk) -> SourceBatch {
    let mut batch = SourceBatch { position: chunk.position, ..SourceBatch::default() };
    let mut start = 0;
    for (seq, end) in chunk.lines {
        match end {
            LineEnd::TooLong { len, max } => batch.rejected.push((
                seq,
                RecordError::record(format!("line is {len} bytes, longer than the limit of {max} bytes"))
                    .at_line(seq + 1),
            )),
            LineEnd::At(end) => {
                let mut bytes = &chunk.bytes[start..end];
                start = end;
                if seq == 0 {
                    bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                }
                match parse(bytes, seq) {
                    Some(Ok(record)) => batch.records.push((seq, record)),
                    Some(Err(e)) => batch.rejected.push((seq, e)),
                    None => {}
                }
            }
        }
    }
    batch
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
