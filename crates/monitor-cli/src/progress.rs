//! The progress bar of `replay` on standard error: records per second,
//! bytes read and, for a file, the ETA. Only for a terminal, never into a
//! log file or a pipe, and never with `--quiet`.

use std::io::{self, IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model_monitor::runtime::Engine;
use tokio::task::JoinHandle;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// A reader that counts the bytes read through it.
pub(crate) struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    /// Counts the bytes read from `inner` into `read`.
    pub(crate) fn new(inner: R, read: Arc<AtomicU64>) -> Self {
        Self { inner, read }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A bar being drawn; it goes away when finished.
pub(crate) struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts a bar when standard error is a terminal and `quiet` is not
    /// set: `total` is the file's size (`None` for standard input), `read`
    /// the bytes read so far, and the engine gives the records processed.
    pub(crate) fn start(quiet: bool, total: Option<u64>, read: Arc<AtomicU64>, engine: Engine) -> Option<Self> {
        if quiet || !io::stderr().is_terminal() {
            return None;
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes}  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{spinner} {binary_bytes} read  {msg}  {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let shown = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                let records = engine.stats().monitor.records;
                let rate = records as f64 / started.elapsed().as_secs_f64().max(1e-3);
                shown.set_position(read.load(Ordering::Relaxed));
                shown.set_message(format!("{records} records, {rate:.0} records/s"));
            }
        });
        Some(Self { bar, task })
    }

    /// Takes the bar off the terminal.
    pub(crate) fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_counts_every_byte() {
        let read = Arc::new(AtomicU64::new(0));
        let mut r = Counting::new(&b"hello\nworld\n"[..], Arc::clone(&read));
        let mut all = String::new();
        r.read_to_string(&mut all).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.load(Ordering::Relaxed), 12);
    }
}
