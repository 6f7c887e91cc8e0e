//! How often a receiver's failures are logged: the first at `WARN`, then one
//! summary line every [`SUMMARY_EVERY`] failures, the rest at `DEBUG` only.
//!
//! A receiver that is down fails every request; logging each one would
//! flood stderr and bury everything else. What is lost is counted anyway
//! (see `Observer::losses`), and the engine's summary reports it.

use std::sync::atomic::{AtomicU64, Ordering};

/// One `WARN` line per this many failures of one receiver.
pub(crate) const SUMMARY_EVERY: u64 = 100;

/// How loud a failure should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loudness {
    /// The first failure since the receiver last worked: a `WARN` line.
    First,
    /// The `n`-th failure in a row, a multiple of [`SUMMARY_EVERY`]: a `WARN`
    /// summary line.
    Summary(u64),
    /// Any other: `DEBUG` only.
    Quiet,
}

/// The failures of one receiver (a webhook's URL, a scheduler's dispatcher)
/// in a row; shared by the tasks that talk to it.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    in_a_row: AtomicU64,
}

impl FailureLog {
    /// Counts a failure and says how loud to log it.
    pub(crate) fn failure(&self) -> Loudness {
        match self.in_a_row.fetch_add(1, Ordering::Relaxed) + 1 {
            1 => Loudness::First,
            n if n % SUMMARY_EVERY == 0 => Loudness::Summary(n),
            _ => Loudness::Quiet,
        }
    }

    /// Counts a success: returns how many failures in a row it ends, if any,
    /// for one line saying the receiver works again.
    pub(crate) fn success(&self) -> Option<u64> {
        Some(self.in_a_row.swap(0, Ordering::Relaxed)).filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_loud_then_one_in_a_hundred() {
        let log = FailureLog::default();
        let loud: Vec<(u64, Loudness)> =
            (1..=250).map(|n| (n, log.failure())).filter(|(_, l)| *l != Loudness::Quiet).collect();
        assert_eq!(loud, [(1, Loudness::First), (100, Loudness::Summary(100)), (200, Loudness::Summary(200))]);
        assert_eq!(log.success(), Some(250));
        assert_eq!(log.success(), None);
        assert_eq!(log.failure(), Loudness::First, "a new run of failures starts loud");
    }
}
