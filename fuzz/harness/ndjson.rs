//! NDJSON from arbitrary bytes through the line source of `replay`
//! (`LineSource`): the reader cut into lines within a bound, the lines cut
//! into chunks, the chunks parsed in parallel and handed on in order.
//!
//! The first byte sets the longest line, the second how many bytes each read
//! returns (so that chunks are cut at every place a live stream may cut
//! them); the rest is the input. Every line must come out exactly once, in
//! order, as the record or the rejection that parsing it alone gives, and
//! the last position must count every line.

use std::io::Read;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use monitor_core::record::Record;
use monitor_core::source::Source;
use monitor_runtime::LineSource;

/// A reader that returns at most `step` bytes a read, as a pipe may.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What one line alone should become.
#[derive(Debug)]
enum Expected {
    Blank,
    Record(Box<Record>),
    Rejected,
}

/// Each line of `input` parsed alone, as the source documents it.
fn expected(input: &[u8], max: usize) -> Vec<Expected> {
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if input.is_empty() || input.ends_with(b"\n") {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            if line.len() > max {
                return Expected::Rejected;
            }
            let line = if i == 0 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line) } else { line };
            let Ok(text) = std::str::from_utf8(line) else { return Expected::Rejected };
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.trim().is_empty() {
                return Expected::Blank;
            }
            match Record::parse(text, DateTime::<Utc>::MIN_UTC) {
                Ok(r) => Expected::Record(Box::new(r)),
                Err(_) => Expected::Rejected,
            }
        })
        .collect()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime"))
}

/// Checks one input; panics on a defect.
pub(crate) fn check(data: &[u8]) {
    let [max, step, input @ ..] = data else { return };
    let max = 1 + usize::from(*max) * 4;
    let step = 1 + usize::from(*step);
    let want = expected(input, max);
    let reader = Trickle { data: input.to_vec(), at: 0, step };
    let (records, rejected, last) = runtime().block_on(async move {
        let mut source = LineSource::spawn("fuzz", "input", reader, max);
        let (mut records, mut rejected, mut last) = (Vec::new(), Vec::new(), None);
        while let Some(batch) = source.next_batch().await.expect("reading from memory cannot fail") {
            records.extend(batch.records);
            rejected.extend(batch.rejected.into_iter().map(|(seq, e)| {
                assert_eq!(e.line, Some(seq + 1), "a rejection names its line");
                seq
            }));
            if let Some(p) = batch.position {
                assert!(last.is_none_or(|l| p.offset >= l), "positions go backwards");
                last = Some(p.offset);
            }
        }
        (records, rejected, last)
    });
    let lines = want.len() as u64;
    assert_eq!(last.unwrap_or(0), lines, "the last position does not count every line");
    let mut records = records.into_iter().peekable();
    let mut rejected = rejected.into_iter().peekable();
    for (seq, expected) in want.into_iter().enumerate() {
        let seq = seq as u64;
        match expected {
            Expected::Blank => {}
            Expected::Record(mut want) => {
                let (got_seq, got) = records.next().unwrap_or_else(|| panic!("line {seq}: no record"));
                assert_eq!(got_seq, seq, "line {seq}: records out of order");
                // A record without `ts` gets the time it is read.
                if want.ts == DateTime::<Utc>::MIN_UTC {
                    want.ts = got.ts;
                }
                assert_eq!(got, *want, "line {seq}: another record");
            }
            Expected::Rejected => {
                assert_eq!(rejected.next(), Some(seq), "line {seq}: not rejected");
            }
        }
    }
    assert!(records.next().is_none(), "more records than lines");
    assert!(rejected.next().is_none(), "more rejections than lines");
}
