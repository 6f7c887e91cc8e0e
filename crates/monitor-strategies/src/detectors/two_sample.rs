//! The engine of the two-sample detectors (`ks`, `psi`, `chi_square`,
//! `jensen_shannon`, `wasserstein`, `drift`): the current window against a
//! reference, each verdict requiring an effect size as well as, for the
//! tests that have one, a p-value.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use monitor_core::comparison::Comparison;
use monitor_core::detector::{Assessment, ClosedWindows, Detector, DriftStatus, Sample};
use monitor_core::signal::SignalValue;
use monitor_core::window::CategoryCounts;
use serde::{Deserialize, Serialize};

use super::cadence::Cadence;
use super::fmt_num;
use super::reference::{CategoricalReference, NumericReference, ReferenceFile, ReferenceState, count_category};
use super::window::{TimeWindows, WindowSize};
use crate::stats::{
    chi_square, cramers_v_balanced, jensen_shannon_distance, ks_2samp_sorted, ks_statistic_sorted, proportions,
    psi_from_proportions, sort_f64, wasserstein_sorted,
};
use crate::synth::SplitMix64;

pub use super::two_sample_test::{AutoTest, DistributionTest};

mod compare;
mod windows;

use self::windows::{CategoryWindow, NumericWindow};

/// The parameters shared by every reference detector, after defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Samples in the warm-up reference.
    pub reference: usize,
    /// Current window: samples, or a span of event time.
    pub window: WindowSize,
    /// Evaluate every `step` samples (count windows; `window` = tumbling).
    pub step: usize,
    /// Bins for numeric signals of binned tests.
    pub bins: Option<usize>,
    /// Distinct categories tracked.
    pub max_categories: usize,
    /// Samples kept of an event-time window for KS and Wasserstein (a
    /// uniform sample of the window beyond that).
    pub max_samples: usize,
}

impl WindowSpec {
    /// Samples a window holds at most.
    fn window_samples(&self) -> usize {
        self.window.samples_or(self.max_samples)
    }

    /// An upper bound of a detector's state, in bytes: the reference (twice
    /// while it is frozen) and the window (twice: sorted, or its sorted
    /// copy at evaluation), the bins, the categories of the window in
    /// arrival order, and at most `max_categories` categories of the
    /// longest accepted name, on both sides. A reference file's samples are
    /// shared and not counted here.
    pub fn state_bytes(&self) -> usize {
        self.numeric_bytes() + self.categorical_bytes() - 2048 - 4 * self.window.samples_or(0)
    }

    /// The bound on a signal of numbers, with the reference taken from the
    /// signal itself: a reference of the first samples keeps the type of
    /// the first sample and ignores the other type, and so does the window.
    pub fn numeric_bytes(&self) -> usize {
        let numbers = 8 * (2 * self.reference + 2 * self.window_samples());
        let arrivals = 4 * self.window.samples_or(0);
        let bins = 24 * self.bins.unwrap_or(0);
        2048 + numbers + arrivals + bins
    }

    /// The bound on a signal of categories, likewise.
    pub fn categorical_bytes(&self) -> usize {
        let arrivals = 4 * self.window.samples_or(0);
        let categories = 2 * self.max_categories * (64 + monitor_core::record::MAX_TEXT_BYTES);
        2048 + arrivals + categories
    }

    /// The bound on a signal whose first value was a category or a number;
    /// with a reference file (of either type) the bound whatever the type.
    pub fn state_bytes_for(&self, categorical: bool, has_file: bool) -> usize {
        match (has_file, categorical) {
            (true, _) => self.state_bytes(),
            (false, true) => self.categorical_bytes(),
            (false, false) => self.numeric_bytes(),
        }
    }
}

/// A two-sample test of the current window against a reference: the engine
/// behind `ks`, `psi`, `chi_square`, `jensen_shannon`, `wasserstein` and
/// `drift`.
///
/// Numeric signals are compared sample against sample (KS, Wasserstein) or
/// over bins at the reference's quantiles (PSI, JS, chi-square);
/// categorical ones over category counts (PSI, JS, chi-square). The
/// reference is summarised once; each evaluation is O(window) (O(window +
/// reference) for KS and Wasserstein). Memory: the reference summary plus
/// the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistributionDetector {
    test: DistributionTest,
    /// For `drift`: the rule that chose `test`.
    #[serde(default)]
    auto: Option<AutoTest>,
    spec: WindowSpec,
    reference: ReferenceState,
    numeric: NumericWindow,
    categories: Option<CategoryWindow>,
    cadence: Cadence,
    /// The clock of an event-time window.
    #[serde(default)]
    time: Option<TimeWindows>,
    /// The effect size of the last evaluation (Cramér's V for chi-square),
    /// for its explanation.
    #[serde(default)]
    effect: f64,
    /// An event-time window's comparison, taken before the window was
    /// cleared, when its verdict was drift: what [`Detector::compare`]
    /// answers for it.
    #[serde(skip)]
    compared: Option<Comparison>,
    #[serde(skip)]
    scratch: Vec<f64>,
}

/// What one evaluation measures: the statistic, the p-value (when the test
/// has one) and the effect size.
type Measure = (f64, Option<f64>, f64);

/// The seed of event-time reservoirs: fixed, so that a replay is repeatable.
const RESERVOIR_SEED: u64 = 0x5EED_0F0D_0A7A;

impl DistributionDetector {
    /// A detector whose reference is the first `spec.reference` samples.
    pub fn new(test: DistributionTest, spec: WindowSpec) -> Self {
        let step = spec.window.samples().map(|_| spec.step);
        let cadence = Cadence::new(spec.window.samples_or(1), step);
        let time = spec.window.time().map(TimeWindows::new);
        let numeric =
            NumericWindow { rng: time.as_ref().map(|_| SplitMix64::new(RESERVOIR_SEED)), ..NumericWindow::default() };
        Self {
            reference: ReferenceState::collecting(spec.reference),
            test,
            auto: None,
            spec,
            numeric,
            categories: None,
            cadence,
            time,
            effect: 0.0,
            compared: None,
            scratch: Vec::new(),
        }
    }

    /// A `drift` detector: its test is chosen by `auto` from the signal's
    /// type and the reference's size once the reference is known.
    pub fn auto(auto: AutoTest, spec: WindowSpec) -> Self {
        let test = auto.choose(spec.reference, false);
        let mut d = Self::new(test, spec);
        d.auto = Some(auto);
        d
    }

    /// A detector with its reference taken from a loaded file when it has
    /// samples of `signal`, else from the first samples.
    pub(crate) fn with_file(mut self, file: Option<&ReferenceFile>, signal: Option<&str>) -> Self {
        let data = file.and_then(|f| f.loaded().or_else(|| f.load().ok()));
        if let (Some(data), Some(signal)) = (data, signal) {
            let bins = self.bins_for_numeric();
            match ReferenceState::from_file(&data, signal, bins, false, self.spec.max_categories) {
                Some(state) => self.freeze(state),
                None => tracing::warn!(
                    signal,
                    "reference file has no samples of this signal; using the first samples instead"
                ),
            }
        }
        self
    }

    /// The test in use (for `drift`, the one chosen so far).
    pub fn test(&self) -> DistributionTest {
        self.test
    }

    fn bins_for_numeric(&self) -> Option<usize> {
        if self.test.needs_order() { None } else { self.spec.bins }
    }

    fn freeze(&mut self, state: ReferenceState) {
        if let Some(auto) = self.auto {
            self.test = match &state {
                ReferenceState::Numeric(r) => auto.choose(r.sorted.len(), false),
                ReferenceState::Categorical(r) => auto.choose(r.counts.values().sum::<u64>() as usize, true),
                ReferenceState::Collecting { .. } => self.test,
            };
        }
        if let ReferenceState::Numeric(r) = &state {
            if let Some(b) = &r.bins {
                self.numeric.counts = vec![0; b.len()];
            }
            if self.test.needs_order() && self.time.is_none() && self.spec.step < self.spec.window_samples() {
                self.numeric.sorted = Some(Vec::with_capacity(self.spec.window_samples()));
            }
        }
        self.reference = state;
    }

    /// Adds a sample to a count window; true when the window is full.
    fn push_numeric(&mut self, r: &NumericReference, x: f64) -> bool {
        let window = self.spec.window_samples();
        let w = &mut self.numeric;
        if w.fifo.len() == window {
            if let Some(old) = w.fifo.pop_front() {
                if let Some(b) = &r.bins {
                    w.counts[b.bin(old)] -= 1;
                }
                if let Some(s) = &mut w.sorted {
                    let i = s.partition_point(|&y| y.total_cmp(&old).is_lt());
                    if i < s.len() {
                        s.remove(i);
                    }
                }
            }
        }
        // Binned tests keep the samples only to evict them.
        w.fifo.push_back(x);
        if let Some(b) = &r.bins {
            w.counts[b.bin(x)] += 1;
        }
        if let Some(s) = &mut w.sorted {
            let i = s.partition_point(|&y| y.total_cmp(&x).is_le());
            s.insert(i, x);
        }
        w.total = w.fifo.len() as u64;
        w.fifo.len() == window
    }

    /// Adds a sample to an event-time window: counted in its bin, and kept
    /// in the reservoir when the test needs the samples.
    fn push_time_numeric(&mut self, r: &NumericReference, x: f64) {
        let cap = self.spec.max_samples;
        let keep = self.test.needs_order();
        let w = &mut self.numeric;
        w.total += 1;
        if let Some(b) = &r.bins {
            w.counts[b.bin(x)] += 1;
        }
        if !keep {
            return;
        }
        if w.fifo.len() < cap {
            w.fifo.push_back(x);
        } else if let Some(rng) = &mut w.rng {
            let j = (rng.uniform() * w.total as f64) as usize;
            if j < cap {
                w.fifo[j] = x;
            }
        }
    }

    fn judge(&mut self, (statistic, p_value, effect): Measure) -> Assessment {
        self.effect = effect;
        let significant = |alpha: Option<f64>| alpha.is_none_or(|a| p_value.is_some_and(|p| p <= a));
        // A verdict with a p-value reports the alpha it was held to; one
        // without, the distance it was compared with.
        let (drift, threshold) = match self.test {
            DistributionTest::Ks { alpha, min_effect } | DistributionTest::ChiSquare { alpha, min_effect } => {
                (significant(Some(alpha)) && effect >= min_effect, alpha)
            }
            DistributionTest::Psi { threshold, alpha } => {
                (significant(alpha) && statistic >= threshold, alpha.unwrap_or(threshold))
            }
            DistributionTest::JensenShannon { threshold, alpha, min_v: also }
            | DistributionTest::Wasserstein { threshold, alpha, min_d: also } => (
                significant(alpha) && statistic >= threshold && also.is_none_or(|m| effect >= m),
                alpha.unwrap_or(threshold),
            ),
        };
        Assessment {
            status: if drift { DriftStatus::Drift } else { DriftStatus::Stable },
            statistic,
            threshold,
            p_value: if self.test.has_p_value() { p_value } else { None },
        }
    }

    fn evaluate_numeric(&mut self, r: &NumericReference) -> Assessment {
        let mut scratch = std::mem::take(&mut self.scratch);
        let current: &[f64] = match &self.numeric.sorted {
            Some(s) => s,
            None if self.test.needs_order() => {
                scratch.clear();
                scratch.extend(self.numeric.fifo.iter().copied());
                sort_f64(&mut scratch);
                &scratch
            }
            None => &[],
        };
        let m = self.measure(r, current);
        self.scratch = scratch;
        self.judge(m)
    }

    /// The statistic, the p-value (when the test has one) and the effect
    /// size of the window against a numeric reference.
    fn measure(&self, r: &NumericReference, current: &[f64]) -> Measure {
        match self.test {
            DistributionTest::Ks { .. } => {
                let t = ks_2samp_sorted(r.sorted.as_slice(), current);
                (t.statistic, Some(t.p_value), t.statistic)
            }
            DistributionTest::Wasserstein { alpha, min_d, .. } => {
                let w = wasserstein_sorted(r.sorted.as_slice(), current) / r.std.max(0.001);
                let p = alpha.map(|_| ks_2samp_sorted(r.sorted.as_slice(), current).p_value);
                let d = if min_d.is_some() && !current.is_empty() {
                    ks_statistic_sorted(r.sorted.as_slice(), current)
                } else {
                    w
                };
                (w, p, d)
            }
            DistributionTest::ChiSquare { .. } => {
                let ref_counts = r.bins.as_ref().map(|b| b.reference_counts()).unwrap_or(&[]);
                let t = chi_square(ref_counts, &self.numeric.counts);
                (t.statistic, Some(t.p_value), cramers_v_balanced(ref_counts, &self.numeric.counts))
            }
            DistributionTest::Psi { alpha, .. } | DistributionTest::JensenShannon { alpha, .. } => {
                let ref_counts = r.bins.as_ref().map(|b| b.reference_counts()).unwrap_or(&[]);
                self.binned(ref_counts, &self.numeric.counts, alpha.is_some())
            }
        }
    }

    /// PSI or Jensen–Shannon of two count vectors over the same bins, with
    /// the chi-square p-value of the same table when one is required.
    fn binned(&self, ref_counts: &[u64], cur_counts: &[u64], p_value: bool) -> Measure {
        let ref_total: u64 = ref_counts.iter().sum();
        let cur_total: u64 = cur_counts.iter().sum();
        let reference = proportions(ref_counts, ref_total as usize);
        let current = proportions(cur_counts, cur_total as usize);
        let statistic = match self.test {
            DistributionTest::Psi { .. } => psi_from_proportions(&reference, &current),
            _ => jensen_shannon_distance(&reference, &current),
        };
        let p = p_value.then(|| chi_square(ref_counts, cur_counts).p_value);
        let effect = match self.test {
            DistributionTest::JensenShannon { min_v: Some(_), .. } => cramers_v_balanced(ref_counts, cur_counts),
            _ => statistic,
        };
        (statistic, p, effect)
    }

    fn evaluate_categorical(&mut self, r: &CategoricalReference, current: &CategoryWindow) -> Assessment {
        // Align both count vectors over the union of categories.
        let mut ref_counts: Vec<u64> = Vec::with_capacity(r.counts.len());
        let mut cur_counts: Vec<u64> = Vec::with_capacity(r.counts.len());
        for (name, &n) in &r.counts {
            ref_counts.push(n);
            cur_counts.push(current.count(name));
        }
        for (name, n) in current.pairs() {
            if n > 0 && !r.counts.contains_key(name) {
                ref_counts.push(0);
                cur_counts.push(n);
            }
        }
        let m = match self.test {
            DistributionTest::ChiSquare { .. } => {
                let t = chi_square(&ref_counts, &cur_counts);
                (t.statistic, Some(t.p_value), cramers_v_balanced(&ref_counts, &cur_counts))
            }
            DistributionTest::Psi { alpha, .. } | DistributionTest::JensenShannon { alpha, .. } => {
                self.binned(&ref_counts, &cur_counts, alpha.is_some())
            }
            // Numeric tests never see categories.
            DistributionTest::Ks { .. } | DistributionTest::Wasserstein { .. } => (0.0, None, 0.0),
        };
        self.judge(m)
    }

    /// Evaluates the current window against the reference, if both exist.
    fn evaluate(&mut self) -> Option<Assessment> {
        match &self.reference {
            ReferenceState::Numeric(r) => {
                let r = Arc::clone(r);
                if self.numeric.total == 0 {
                    return None;
                }
                Some(self.evaluate_numeric(&r))
            }
            ReferenceState::Categorical(r) => {
                let r = Arc::clone(r);
                let current = self.categories.take()?;
                let a = (current.total() > 0).then(|| self.evaluate_categorical(&r, &current));
                self.categories = Some(current);
                a
            }
            ReferenceState::Collecting { .. } => None,
        }
    }

    /// Starts an event-time window afresh.
    fn clear_window(&mut self) {
        self.numeric.clear();
        if let Some(CategoryWindow::Tumbling { counts, total }) = &mut self.categories {
            counts.clear();
            *total = 0;
        }
    }

    fn observe_time(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let closed = self.time.as_mut()?.arrive(sample.ts)?;
        let verdict = if closed { self.evaluate() } else { None };
        if closed {
            self.keep_comparison(verdict.as_ref());
            self.clear_window();
        }
        match (&self.reference, sample.value) {
            (ReferenceState::Numeric(r), SignalValue::Numeric(x)) => {
                let r = Arc::clone(r);
                self.push_time_numeric(&r, x);
            }
            (ReferenceState::Categorical(_), SignalValue::Categorical(c)) => {
                let max = self.spec.max_categories;
                let window = self
                    .categories
                    .get_or_insert_with(|| CategoryWindow::Tumbling { counts: BTreeMap::new(), total: 0 });
                if let CategoryWindow::Tumbling { counts, total } = window {
                    count_category(counts, c, max);
                    *total += 1;
                }
            }
            _ => {}
        }
        verdict
    }
}

impl Detector for DistributionDetector {
    super::serde_state!();

    fn kind(&self) -> &str {
        if self.auto.is_some() { "drift" } else { self.test.kind() }
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let value = sample.value;
        if self.auto.is_none() && self.test.needs_order() && value.as_f64().is_none() {
            return None;
        }
        if matches!(self.reference, ReferenceState::Collecting { .. }) {
            let bins = if self.auto.is_some() { None } else { self.bins_for_numeric() };
            let max = self.spec.max_categories;
            self.reference.offer(value, bins, false, max);
            if !matches!(self.reference, ReferenceState::Collecting { .. }) {
                let state = std::mem::replace(&mut self.reference, ReferenceState::collecting(0));
                self.freeze(state);
            }
            return None;
        }
        if self.time.is_some() {
            return self.observe_time(sample);
        }
        match (&self.reference, value) {
            (ReferenceState::Numeric(r), SignalValue::Numeric(x)) => {
                let r = Arc::clone(r);
                let full = self.push_numeric(&r, x);
                if !self.cadence.tick(full) {
                    return None;
                }
                Some(self.evaluate_numeric(&r))
            }
            (ReferenceState::Categorical(r), SignalValue::Categorical(c)) => {
                let r = Arc::clone(r);
                let (w, max) = (self.spec.window_samples(), self.spec.max_categories);
                let window =
                    self.categories.get_or_insert_with(|| CategoryWindow::Sliding(CategoryCounts::new(w, max)));
                let full = match window {
                    CategoryWindow::Sliding(counts) => {
                        counts.push(c);
                        counts.total() as usize == w
                    }
                    CategoryWindow::Tumbling { .. } => false,
                };
                if !self.cadence.tick(full) {
                    return None;
                }
                let current = self.categories.take()?;
                let a = self.evaluate_categorical(&r, &current);
                self.categories = Some(current);
                Some(a)
            }
            _ => None,
        }
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Option<Assessment> {
        if !self.time.as_mut()?.advance(now) {
            return None;
        }
        let verdict = self.evaluate();
        self.keep_comparison(verdict.as_ref());
        self.clear_window();
        verdict
    }

    fn compare(&self) -> Option<Comparison> {
        if self.time.is_some() { self.compared.clone() } else { self.comparison_now() }
    }

    fn take_closed_windows(&mut self) -> ClosedWindows {
        self.time.as_mut().map(TimeWindows::take_closed).unwrap_or_default()
    }

    fn in_p_value_family(&self) -> bool {
        self.test.has_p_value()
    }

    fn reset(&mut self) {
        let spec = self.spec.clone();
        *self = match self.auto {
            Some(auto) => Self::auto(auto, spec),
            None => Self::new(self.test, spec),
        };
    }

    fn explain(&self, a: &Assessment) -> String {
        let over = match self.spec.window {
            WindowSize::Samples(n) => format!("the last {n} samples"),
            WindowSize::Time(d) => format!("the last {d} window"),
        };
        let p = a.p_value.map(|p| format!(", p = {p:.3e} (alpha {})", fmt_num(a.threshold))).unwrap_or_default();
        match self.test {
            DistributionTest::Ks { min_effect, .. } => format!(
                "KS test of {over} against the reference: D = {} (min_effect {}){p}",
                fmt_num(a.statistic),
                fmt_num(min_effect),
            ),
            DistributionTest::ChiSquare { min_effect, .. } => format!(
                "chi-square test of {over} against the reference: chi2 = {}, Cramér's V = {} (min_effect {}){p}",
                fmt_num(a.statistic),
                fmt_num(self.effect),
                fmt_num(min_effect),
            ),
            DistributionTest::Psi { threshold, .. } => format!(
                "PSI of {over} against the reference is {} (threshold {}){p}",
                fmt_num(a.statistic),
                fmt_num(threshold)
            ),
            DistributionTest::JensenShannon { threshold, min_v, .. } => format!(
                "Jensen-Shannon distance of {over} from the reference is {} (threshold {}){}{p}",
                fmt_num(a.statistic),
                fmt_num(threshold),
                min_v
                    .map(|m| format!(", Cramér's V {} (min_effect {})", fmt_num(self.effect), fmt_num(m)))
                    .unwrap_or_default()
            ),
            DistributionTest::Wasserstein { threshold, min_d, .. } => format!(
                "Wasserstein distance of {over} from the reference is {} reference deviations (threshold {}){}{p}",
                fmt_num(a.statistic),
                fmt_num(threshold),
                min_d
                    .map(|m| format!(", KS D {} (min_effect {})", fmt_num(self.effect), fmt_num(m)))
                    .unwrap_or_default()
            ),
        }
    }
}
