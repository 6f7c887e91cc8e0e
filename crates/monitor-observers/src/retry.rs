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
use monitor_core::{Error, Result};
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
    /// The most attempts a policy may make: `retry.max_attempts` is at most this.
    pub const MAX_ATTEMPTS: u32 = 20;
    /// The longest `retry.backoff`.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
    /// The longest `retry.max_backoff`, and so the longest wait between two
    /// attempts (a `Retry-After` aside, which webhooks cap on their own).
    pub const MAX_MAX_BACKOFF: Duration = Duration::from_secs(3600);

    /// The nominal delay before retry `n` (1-based): `backoff * 2^(n-1)`,
    /// capped at `max_backoff`. The outbox waits exactly this, without
    /// jitter: its rows are due at a time, not raced by many senders.
    pub fn nominal_delay(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(31);
        self.backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }

    /// A policy of `max_attempts` attempts (at least 1), starting at `backoff`
    /// and doubling up to `max_backoff`.
    pub fn new(max_attempts: u32, backoff: Duration, max_backoff: Duration) -> Self {
        Self { max_attempts: max_attempts.max(1), backoff, max_backoff: max_backoff.max(backoff) }
    }

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// Checks the bounds: 1 to [`MAX_ATTEMPTS`](Self::MAX_ATTEMPTS)
    /// attempts, a `backoff` of at most [`MAX_BACKOFF`](Self::MAX_BACKOFF), a
    /// `max_backoff` of at least `backoff` and at most
    /// [`MAX_MAX_BACKOFF`](Self::MAX_MAX_BACKOFF). Errors name the key
    /// (`retry.max_attempts`, ...).
    pub fn check(&self) -> Result<()> {
        if self.max_attempts == 0 || self.max_attempts > Self::MAX_ATTEMPTS {
            return Err(Error::config(
                "retry.max_attempts",
                format!("must be between 1 and {} (got {})", Self::MAX_ATTEMPTS, self.max_attempts),
            ));
        }
        crate::bounds::at_most("retry.backoff", self.backoff, Self::MAX_BACKOFF)?;
        crate::bounds::at_most("retry.max_backoff", self.max_backoff, Self::MAX_MAX_BACKOFF)?;
        if self.max_backoff < self.backoff {
            return Err(Error::config(
                "retry.max_backoff",
                format!(
                    "must be at least `backoff` ({}), got {}",
                    HumanDuration(self.backoff),
                    HumanDuration(self.max_backoff)
                ),
            ));
        }
        Ok(())
    }

    /// The policy as `backon`'s exponential backoff with jitter: one delay
    /// per retry, `max_attempts - 1` in all. Out-of-bounds values (from code
    /// that skipped [`check`](Self::check)) are held to the bounds here, so
    /// that no delay can overflow and no loop can run for ever.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        let attempts = self.max_attempts.clamp(1, Self::MAX_ATTEMPTS);
        let retries = usize::try_from(attempts - 1).unwrap_or(0);
        let max = self.max_backoff.min(Self::MAX_MAX_BACKOFF);
        ExponentialBuilder::new()
            .with_factor(2.0)
            .with_min_delay(self.backoff.min(Self::MAX_BACKOFF).min(max) / 2)
            .with_max_delay(max / 2)
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
    /// The policy these keys make over `default`, checked (see
    /// [`RetryPolicy::check`]). A `backoff` above the default `max_backoff`
    /// raises it, when `max_backoff` is not given.
    pub(crate) fn resolve(self, default: RetryPolicy) -> Result<RetryPolicy> {
        let backoff = self.backoff.map_or(default.backoff, HumanDuration::as_std);
        let policy = RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(default.max_attempts),
            backoff,
            max_backoff: self.max_backoff.map_or(default.max_backoff.max(backoff), HumanDuration::as_std),
        };
        policy.check()?;
        Ok(policy)
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
    fn bounds_are_checked_and_name_their_key() {
        let err = |c: RetryConfig| c.resolve(RetryPolicy::none()).unwrap_err().to_string();
        let secs = |s| Some(HumanDuration::from_secs(s));
        assert_eq!(
            err(RetryConfig { max_attempts: Some(4_294_967_295), ..Default::default() }),
            "config error at `retry.max_attempts`: must be between 1 and 20 (got 4294967295)"
        );
        assert!(err(RetryConfig { max_attempts: Some(0), ..Default::default() }).contains("between 1 and 20"));
        assert_eq!(
            err(RetryConfig { backoff: secs(6_214_954_135_204_232_960), ..Default::default() }),
            "config error at `retry.backoff`: must be at most 10m (got 71932339527826d18h29m20s)"
        );
        assert!(
            err(RetryConfig { max_backoff: secs(7200), ..Default::default() })
                .starts_with("config error at `retry.max_backoff`: must be at most 1h")
        );
        assert_eq!(
            err(RetryConfig { backoff: secs(60), max_backoff: secs(30), ..Default::default() }),
            "config error at `retry.max_backoff`: must be at least `backoff` (1m), got 30s"
        );
        // A backoff above the default cap raises the cap.
        let p = RetryConfig { backoff: secs(60), ..Default::default() }
            .resolve(RetryPolicy::new(3, Duration::from_secs(1), Duration::from_secs(30)))
            .unwrap();
        assert_eq!((p.backoff, p.max_backoff), (Duration::from_secs(60), Duration::from_secs(60)));
    }

    #[test]
    fn delays_stay_bounded_whatever_the_fields_say() {
        let wild = RetryPolicy { max_attempts: u32::MAX, backoff: Duration::MAX, max_backoff: Duration::MAX };
        let delays: Vec<Duration> = wild.delays().collect();
        assert_eq!(delays.len(), 19);
        assert!(delays.iter().all(|d| *d <= RetryPolicy::MAX_MAX_BACKOFF), "{delays:?}");
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
