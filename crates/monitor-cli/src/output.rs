//! Standard output that a closed pipe or a full disk cannot crash.
//!
//! `model-monitor replay --format json | head -1` closes the pipe while
//! events still come. [`Stdout`] turns the first write error into a state:
//! a closed pipe ends the run quietly, any other error (`/dev/full`) ends
//! it with the error reported and a non-zero exit. Either way the writes
//! after it are dropped without a word, so nothing floods stderr, and the
//! run stops reading its input (the `stop` token is cancelled).

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

/// What became of standard output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every write went through.
    Ok,
    /// The reader went away (a closed pipe): end quietly.
    Closed,
    /// Another write error: report it and fail.
    Failed(String),
}

/// A cloneable standard output that records its first error.
#[derive(Debug, Clone)]
pub(crate) struct Stdout {
    state: Arc<Mutex<Outcome>>,
    stop: CancellationToken,
}

impl Stdout {
    /// Standard output; `stop` is cancelled at the first write error.
    pub(crate) fn new(stop: CancellationToken) -> Self {
        Self { state: Arc::new(Mutex::new(Outcome::Ok)), stop }
    }

    /// What became of it.
    pub(crate) fn outcome(&self) -> Outcome {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Writes `text` whole and flushes, unless an earlier write failed.
    pub(crate) fn print(&self, text: &str) {
        let mut out = self.clone();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }

    fn fail(&self, e: &io::Error) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if *state == Outcome::Ok {
            *state = if e.kind() == io::ErrorKind::BrokenPipe {
                Outcome::Closed
            } else {
                Outcome::Failed(format!("writing to standard output: {e}"))
            };
            self.stop.cancel();
        }
    }

    fn ok(&self) -> bool {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) == Outcome::Ok
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.ok() {
            return Ok(buf.len());
        }
        match io::stdout().lock().write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.fail(&e);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.ok() {
            if let Err(e) = io::stdout().lock().flush() {
                self.fail(&e);
            }
        }
        Ok(())
    }
}
