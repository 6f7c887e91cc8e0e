//! The engine of the data-quality detectors (`missing`,
//! `unseen_categories`, `out_of_range`, `type_change`): the share of a
//! window's samples that show a problem, against the share the reference
//! showed.
//!
//! A window is drift when its share is both materially and significantly
//! above the reference's: Cohen's h of the two shares reaches `min_effect`
//! (Cohen 1988 calls 0.2 a small effect: from 1% to 4%, from 10% to 16%),
//! and the one-sided exact binomial test of the window's count against the
//! reference share has p ≤ alpha (shared with the model version's other
//! tests by the monitor's correction). What counts as a problem, and what
//! the reference's share is, is each kind's [`Check`].

use std::collections::VecDeque;
use std::fmt;

use chrono::{DateTime, Utc};
use monitor_core::Error;
use monitor_core::detector::{Assessment, ClosedWindows, Detector, DriftStatus, Sample};
use monitor_core::signal::SignalValue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::cadence::Cadence;
use super::distribution::default_reference;
use super::fmt_num;
use super::reference::ReferenceData;
use super::window::{TimeWindows, WindowSize};
use crate::stats::{binom_test_greater, cohen_h, share_at_effect};

/// Cohen's (1988) small effect for proportions: the default `min_effect`.
pub(crate) fn default_share_effect() -> f64 {
    0.2
}

/// What one data-quality kind counts as a problem, and how it learns the
/// reference's share.
pub(crate) trait Check: fmt::Debug + Clone + Send + Serialize + DeserializeOwned + 'static {
    /// The kind, as in config.
    const KIND: &'static str;

    /// Takes one reference sample; false when the sample does not count.
    fn learn(&mut self, value: SignalValue<'_>) -> bool;

    /// The reference is complete.
    fn freeze(&mut self);

    /// The share of problems expected of a window like the reference.
    fn expected(&self) -> f64;

    /// Whether a sample under test is a problem; `None` when it does not
    /// count (a sample of a type the check does not look at).
    fn hit(&self, value: SignalValue<'_>) -> Option<bool>;

    /// The reference from a file's samples of `signal`, complete; `None`
    /// when the file has none.
    fn with_reference_file(&self, data: &ReferenceData, signal: &str) -> Option<Self>;

    /// What the share is a share of, for messages ("records without the
    /// feature", "values the reference never had").
    fn what(&self) -> String;

    /// Forgets the reference.
    fn reset(&mut self);
}

/// The window of a share: the hits among the last N samples (sliding by
/// `step`), or among the samples of each event-time window.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum ShareWindow {
    Count { hits: VecDeque<bool>, count: u64, size: usize, cadence: Cadence },
    Time { clock: TimeWindows, hits: u64, total: u64 },
}

impl ShareWindow {
    fn new(window: WindowSize, step: Option<usize>) -> Self {
        match window {
            WindowSize::Samples(n) => {
                Self::Count { hits: VecDeque::new(), count: 0, size: n.max(1), cadence: Cadence::new(n, step) }
            }
            WindowSize::Time(span) => Self::Time { clock: TimeWindows::new(span), hits: 0, total: 0 },
        }
    }

    /// Adds a sample; (hits, samples) when a window is evaluated.
    fn push(&mut self, ts: DateTime<Utc>, hit: bool) -> Option<(u64, u64)> {
        match self {
            Self::Count { hits, count, size, cadence } => {
                if hits.len() == *size && hits.pop_front() == Some(true) {
                    *count -= 1;
                }
                hits.push_back(hit);
                *count += u64::from(hit);
                cadence.tick(hits.len() == *size).then_some((*count, hits.len() as u64))
            }
            Self::Time { clock, hits, total } => {
                let closed = clock.arrive(ts)?;
                let out = closed.then_some((*hits, *total));
                if closed {
                    (*hits, *total) = (0, 0);
                }
                *hits += u64::from(hit);
                *total += 1;
                out.filter(|&(_, n)| n > 0)
            }
        }
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Option<(u64, u64)> {
        let Self::Time { clock, hits, total } = self else { return None };
        if !clock.advance(now) {
            return None;
        }
        let out = (*hits, *total);
        (*hits, *total) = (0, 0);
        (out.1 > 0).then_some(out)
    }

    fn take_closed(&mut self) -> ClosedWindows {
        match self {
            Self::Count { .. } => ClosedWindows::default(),
            Self::Time { clock, .. } => clock.take_closed(),
        }
    }
}

/// The verdict on `hits` problems among `n` samples when the reference's
/// share was `expected`: drift when Cohen's h reaches `min_effect` and the
/// one-sided binomial p-value is at most `alpha`. The statistic is the
/// window's share; the threshold, the alpha.
pub(crate) fn judge(hits: u64, n: u64, expected: f64, alpha: f64, min_effect: f64) -> Assessment {
    let share = hits as f64 / n.max(1) as f64;
    let p = binom_test_greater(hits, n, expected);
    let drift = hits > 0 && cohen_h(share, expected) >= min_effect && p <= alpha;
    Assessment {
        status: if drift { DriftStatus::Drift } else { DriftStatus::Stable },
        statistic: share,
        threshold: alpha,
        p_value: Some(p),
    }
}

/// A data-quality detector: the share of problems a [`Check`] sees in each
/// window, against the reference's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "C: Check")]
pub(crate) struct ShareDetector<C> {
    check: C,
    /// Reference samples to take; 0 when the check needs none.
    reference: usize,
    taken: usize,
    frozen: bool,
    size: WindowSize,
    step: Option<usize>,
    window: ShareWindow,
    alpha: f64,
    min_effect: f64,
}

impl<C: Check> ShareDetector<C> {
    /// A detector whose reference is the first `reference` samples that
    /// count (none: the check's reference is complete as given).
    pub(crate) fn new(check: C, params: &ShareParams) -> Self {
        let reference =
            if params.no_reference { 0 } else { params.reference.unwrap_or_else(|| default_reference(params.window)) };
        let mut d = Self {
            check,
            reference,
            taken: 0,
            frozen: false,
            size: params.window,
            step: params.step,
            window: ShareWindow::new(params.window, params.step),
            alpha: params.alpha,
            min_effect: params.min_effect,
        };
        if reference == 0 {
            d.check.freeze();
            d.frozen = true;
        }
        d
    }

    /// The detector with its reference from `file` when the file has samples of `signal`.
    pub(crate) fn with_file(mut self, file: Option<&super::ReferenceFile>, signal: &str) -> Self {
        let Some(data) = file.and_then(|f| f.loaded().or_else(|| f.load().ok())) else { return self };
        match self.check.with_reference_file(&data, signal) {
            Some(check) => {
                self.check = check;
                self.frozen = true;
            }
            None => tracing::warn!(
                signal,
                kind = C::KIND,
                "reference file has no samples of this signal; using the first samples instead"
            ),
        }
        self
    }
}

impl<C: Check> Detector for ShareDetector<C> {
    super::serde_state!();

    fn kind(&self) -> &str {
        C::KIND
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        if !self.frozen {
            if self.check.learn(sample.value) {
                // Saturating: a restored count may be anything a snapshot held.
                self.taken = self.taken.saturating_add(1);
            }
            if self.taken >= self.reference {
                self.check.freeze();
                self.frozen = true;
            }
            return None;
        }
        let hit = self.check.hit(sample.value)?;
        let (hits, n) = self.window.push(sample.ts, hit)?;
        Some(judge(hits, n, self.check.expected(), self.alpha, self.min_effect))
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Option<Assessment> {
        if !self.frozen {
            return None;
        }
        let (hits, n) = self.window.advance(now)?;
        Some(judge(hits, n, self.check.expected(), self.alpha, self.min_effect))
    }

    fn take_closed_windows(&mut self) -> ClosedWindows {
        self.window.take_closed()
    }

    fn in_p_value_family(&self) -> bool {
        // A check that has seen nothing it looks at (unseen categories of a
        // numeric feature) will never test: it must not widen the family.
        self.frozen || self.taken > 0
    }

    fn reset(&mut self) {
        self.check.reset();
        self.taken = 0;
        self.frozen = self.reference == 0;
        if self.frozen {
            self.check.freeze();
        }
        self.window = ShareWindow::new(self.size, self.step);
    }

    fn explain(&self, a: &Assessment) -> String {
        let over = match self.size {
            WindowSize::Samples(n) => format!("the last {n} samples"),
            WindowSize::Time(d) => format!("the last {d} window"),
        };
        let expected = self.check.expected();
        format!(
            "{}% of {over} are {}, against {}% in the reference: Cohen's h {} (min_effect {}, reached at {}%), p = {:.3e} (alpha {})",
            fmt_num(100.0 * a.statistic),
            self.check.what(),
            fmt_num(100.0 * expected),
            fmt_num(cohen_h(a.statistic, expected)),
            fmt_num(self.min_effect),
            fmt_num(100.0 * share_at_effect(expected, self.min_effect)),
            a.p_value.unwrap_or(f64::NAN),
            fmt_num(a.threshold)
        )
    }
}

/// The keys every data-quality kind shares, after defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ShareParams {
    pub(crate) reference: Option<usize>,
    /// The check is complete as configured and takes no reference.
    pub(crate) no_reference: bool,
    pub(crate) window: WindowSize,
    pub(crate) step: Option<usize>,
    pub(crate) alpha: f64,
    pub(crate) min_effect: f64,
}

impl ShareParams {
    /// Checks the shared keys.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        super::window::validate_window(self.window, self.step)?;
        match self.reference {
            Some(0) => return Err(Error::config("reference", "must be at least 1 (got 0)")),
            Some(n) if n > super::MAX_WINDOW => {
                return Err(Error::config("reference", format!("must be at most {} (got {n})", super::MAX_WINDOW)));
            }
            _ => {}
        }
        super::check_open_unit("alpha", self.alpha)?;
        if !(0.0..=std::f64::consts::PI).contains(&self.min_effect) {
            return Err(Error::config(
                "min_effect",
                format!("is Cohen's h, between 0 and π (got {})", self.min_effect),
            ));
        }
        Ok(())
    }

    /// An upper bound of the state besides the check's reference: the
    /// window's flags.
    pub(crate) fn state_bytes(&self) -> usize {
        1024 + self.window.samples_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_must_be_material_and_significant() {
        // 5% of 1000 against 1%: h = 0.29, p ~ 1e-11.
        assert_eq!(judge(50, 1000, 0.01, 0.01, 0.2).status, DriftStatus::Drift);
        // 3% of 1000 against 1%: significant (p ~ 1e-7) but h = 0.15 < 0.2.
        let a = judge(30, 1000, 0.01, 0.01, 0.2);
        assert!(a.p_value.is_some_and(|p| p < 1e-6) && a.status == DriftStatus::Stable, "{a:?}");
        // 2 of 10 against 0%: material, and significant when nothing was expected.
        assert_eq!(judge(2, 10, 0.0, 0.01, 0.2).status, DriftStatus::Drift);
        // Nothing: never drift, even with no effect required.
        assert_eq!(judge(0, 10, 0.0, 0.01, 0.0).status, DriftStatus::Stable);
    }
}
