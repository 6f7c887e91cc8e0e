//! SIGINT and SIGTERM: stop reading, drain what was accepted, report, and
//! exit 130 or 143. A second signal ends the process at once.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// The signal that stopped the run, if one did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt {
    signal: Arc<Mutex<Option<(&'static str, u8)>>>,
}

impl Interrupt {
    /// Listens for SIGINT and SIGTERM; the first cancels `stop`.
    pub(crate) fn listen(stop: CancellationToken) -> std::io::Result<Self> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let this = Self::default();
        let seen = Arc::clone(&this.signal);
        tokio::spawn(async move {
            let got = tokio::select! {
                Some(()) = int.recv() => ("SIGINT", 130),
                Some(()) = term.recv() => ("SIGTERM", 143),
                else => return,
            };
            *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(got);
            tracing::warn!("{}: stopping the input; draining what was accepted (again to quit at once)", got.0);
            stop.cancel();
            let code = tokio::select! {
                Some(()) = int.recv() => 130,
                Some(()) = term.recv() => 143,
                else => return,
            };
            std::process::exit(code);
        });
        Ok(this)
    }

    /// The signal's name and the exit code it calls for.
    pub(crate) fn received(&self) -> Option<(&'static str, u8)> {
        *self.signal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
