//! How failed webhook deliveries and retrain jobs are retried: one policy,
//! carried out by `backon`.
//!
//! A [`RetryPolicy`] is the config's `retry = { max_attempts, backoff,
//! max_backoff }`; `RetryPolicy::backoff` turns it into `backon`'s
//! exponential backoff, which the webhook sender and the retrain scheduler
//! drive with `backon::Retryable`. Only the translation is ours: `backon`
//! jitters a delay `d` upwards, to a random point of `[d, 2d)`, while our
//! documented semantics are "equal jitter", a random point of the upper half
//! of the nominal delay, never above `max_backoff`. Halving `backon`'s base
//! and cap gives exactly that: a delay in `[nominal / 2, nominal)`.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use monitor_core::duration::HumanDuration;
use serde::Deserialize;

/// How often and how patiently a failed delivery or dispatch is retried.
///
/// The nominal delay before retry `n` (1-based) is `backoff * 2^(n-1)`,
/// capped at `max_backoff`; the delay taken is a random point in the upper
/// half of it ("equal jitter"), so that many senders retrying at once spread
/// out.
///
/// ```
/// # use monitor_observers::retry::RetryPolicy;
/// # use std::time::Duration;
/// let policy = RetryPolicy::new(4, Duration::from_millis(100), Duration::from_millis(300));
/// let delays: Vec<Duration> = policy.delays().collect();
/// assert_eq!(delays.len(), 3); // 4 attempts, 3 waits between them
/// // Nominal 100ms, 200ms, then 400ms capped at 300ms.
/// for (delay, nominal) in delays.iter().zip([100, 200, 300]) {
///     let nominal = Duration::from_millis(nominal);
///     assert!(*delay >= nominal / 2 && *delay <= nominal, "{delay:?}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; at least 1.
    pub max_attempts: u32,
    /// The nominal delay before the first retry.
    pub backoff: Duration,
    /// The longest nominal delay between two attempts.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts (at least 1), starting at `backoff`
    /// and doubling up to `max_backoff`.
    pub fn new(max_attempts: u32, backoff: Duration, max_backoff: Duration) -> Self {
        Self { max_attempts: max_attempts.max(1), backoff, max_backoff: max_backoff.max(backoff) }
    }

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// The policy as `backon`'s exponential backoff with jitter: one delay
    /// per retry, `max_attempts - 1` in all.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        let retries = usize::try_from(self.max_attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        ExponentialBuilder::new()
            .with_factor(2.0)
            .with_min_delay(self.backoff / 2)
            .with_max_delay(self.max_backoff / 2)
            .with_max_times(retries)
            .with_jitter()
    }

    /// The delays this policy waits between attempts, jittered, in order.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        self.backoff().build()
    }
}

/// The `retry = { ... }` table of an observer's config. Every key is optional;
/// each observer has its own defaults.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryConfig {
    pub(crate) max_attempts: Option<u32>,
    pub(crate) backoff: Option<HumanDuration>,
    pub(crate) max_backoff: Option<HumanDuration>,
}

impl RetryConfig {
    pub(crate) fn or(self, default: RetryPolicy) -> RetryPolicy {
        RetryPolicy::new(
            self.max_attempts.unwrap_or(default.max_attempts),
            self.backoff.map_or(default.backoff, HumanDuration::as_std),
            self.max_backoff.map_or(default.max_backoff, HumanDuration::as_std),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The nominal delay before retry `n` (1-based), as documented.
    fn nominal(p: &RetryPolicy, n: u32) -> Duration {
        p.backoff.saturating_mul(2u32.saturating_pow(n - 1)).min(p.max_backoff)
    }

    #[test]
    fn delays_double_are_capped_and_keep_the_upper_half() {
        let p = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_millis(500));
        for _ in 0..50 {
            let delays: Vec<Duration> = p.delays().collect();
            assert_eq!(delays.len(), 9);
            for (n, d) in (1..).zip(&delays) {
                let nominal = nominal(&p, n);
                // `backon` computes in f32: allow a microsecond of rounding.
                assert!(*d + Duration::from_micros(1) >= nominal / 2 && *d <= nominal, "retry {n}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let p = RetryPolicy::new(2, Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::HashSet<_> = (0..20).flat_map(|_| p.delays()).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn at_least_one_attempt_and_none_retries_never() {
        assert_eq!(RetryPolicy::new(0, Duration::ZERO, Duration::ZERO).max_attempts, 1);
        assert_eq!(RetryPolicy::none().delays().count(), 0);
        assert_eq!(
            RetryPolicy::new(3, Duration::ZERO, Duration::ZERO).delays().collect::<Vec<_>>(),
            [Duration::ZERO; 2]
        );
    }
}
