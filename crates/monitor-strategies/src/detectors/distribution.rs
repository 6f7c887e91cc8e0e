//! `ks`, `psi`, `chi_square`, `jensen_shannon` and `wasserstein`: the current
//! window's distribution against a reference's.

use std::collections::VecDeque;
use std::sync::Arc;

use monitor_core::Error;
use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use monitor_core::window::CategoryCounts;
use serde::{Deserialize, Serialize};

use super::cadence::{Cadence, validate_window};
use super::reference::{CategoricalReference, NumericReference, ReferenceFile, ReferenceState, file_spec};
use super::{check_open_unit, check_positive, fmt_num};
use crate::stats::{
    Correction, chi_square, jensen_shannon_distance, ks_2samp_sorted, proportions, psi_from_proportions, sort_f64,
    wasserstein_sorted,
};

fn default_window() -> usize {
    1000
}
fn default_alpha() -> f64 {
    0.05
}
fn default_distance_threshold() -> f64 {
    0.1
}
fn default_bins() -> usize {
    10
}
fn default_max_categories() -> usize {
    100
}

/// Checks the keys every reference detector shares.
fn validate_common(reference: Option<usize>, window: usize, step: Option<usize>) -> Result<(), Error> {
    validate_window(window, step)?;
    match reference {
        Some(0) => Err(Error::config("reference", "must be at least 1 (got 0)")),
        Some(n) if n > super::MAX_WINDOW => {
            Err(Error::config("reference", format!("must be at most {} (got {n})", super::MAX_WINDOW)))
        }
        _ => Ok(()),
    }
}

fn validate_bins(bins: usize) -> Result<(), Error> {
    if !(2..=super::MAX_BINS).contains(&bins) {
        return Err(Error::config("bins", format!("must be between 2 and {} (got {bins})", super::MAX_BINS)));
    }
    Ok(())
}

fn validate_max_categories(n: usize) -> Result<(), Error> {
    if !(2..=super::MAX_BINS).contains(&n) {
        return Err(Error::config("max_categories", format!("must be between 2 and {} (got {n})", super::MAX_BINS)));
    }
    Ok(())
}

macro_rules! reference_config {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The first `reference` samples of each model version are the
            /// reference (default: `window`). With `reference_file`, only
            /// used for signals the file lacks.
            #[serde(default)]
            pub reference: Option<usize>,
            /// A file of NDJSON records (the training data, say) whose
            /// samples of the signal are the reference.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub reference_file: Option<ReferenceFile>,
            /// Current window size in samples (default 1000).
            #[serde(default = "default_window")]
            pub window: usize,
            /// Evaluate every `step` samples once the window is full; absent
            /// means tumbling (`step = window`).
            #[serde(default)]
            pub step: Option<usize>,
            $($(#[$fmeta])* #[serde(default = $default)] pub $field: $ty,)*
        }
    };
}

/// The [`DetectorSpec`] of a reference config, from its inherent `detector`,
/// `family` and `check`.
macro_rules! reference_spec {
    ($config:ident, $kind:literal) => {
        impl DetectorSpec for $config {
            fn kind(&self) -> &str {
                $kind
            }

            fn accepts_categories(&self) -> bool {
                // KS and Wasserstein compare numbers; the binned tests take categories too.
                !matches!($kind, "ks" | "wasserstein")
            }

            fn validate(&self) -> Result<(), Error> {
                self.check()
            }

            fn resolve_paths(&mut self, ctx: &BuildContext) {
                file_spec::resolve(&mut self.reference_file, ctx);
            }

            fn build(&self, signal: &str) -> Box<dyn Detector> {
                Box::new(self.detector(Some(signal)))
            }

            fn params(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap_or_default()
            }

            fn state_bytes(&self) -> usize {
                self.spec().state_bytes()
            }

            fn p_value_family(&self) -> Option<(Correction, f64)> {
                self.family()
            }

            fn load_references(&self) -> Result<(), Error> {
                file_spec::load(self.reference_file.as_ref())
            }

            fn reference_signals(&self) -> Result<Option<Vec<String>>, Error> {
                file_spec::signals(self.reference_file.as_ref())
            }
        }
    };
}

/// The window parameters after defaults: the reference defaults to one window.
fn window_spec(
    reference: Option<usize>,
    window: usize,
    step: Option<usize>,
    bins: Option<usize>,
    max_categories: usize,
) -> WindowSpec {
    WindowSpec { reference: reference.unwrap_or(window), window, step: step.unwrap_or(window), bins, max_categories }
}

reference_config! {
    /// Config of the `ks` detector: `{ kind = "ks", reference = 5000, window = 1000, alpha = 0.05 }`.
    KsConfig {
        /// Family-wise significance (default 0.05, as Alibi Detect).
        alpha: f64 = "default_alpha",
        /// How the alpha is shared by the features one monitor tests
        /// (default `bonferroni`; `fdr` or `none`).
        correction: Correction = "Correction::default",
    }
}

reference_config! {
    /// Config of the `chi_square` detector: `{ kind = "chi_square", window = 1000, alpha = 0.05 }`.
    ChiSquareConfig {
        /// Family-wise significance (default 0.05).
        alpha: f64 = "default_alpha",
        /// How the alpha is shared by the features one monitor tests (default `bonferroni`).
        correction: Correction = "Correction::default",
        /// Bins at reference quantiles for numeric signals (default 10).
        bins: usize = "default_bins",
        /// Distinct categories tracked; the rest count as `__other__` (default 100).
        max_categories: usize = "default_max_categories",
    }
}

reference_config! {
    /// Config of the `psi` detector: `{ kind = "psi", window = 1000, bins = 10, threshold = 0.1 }`.
    PsiConfig {
        /// Drift when PSI reaches this (default 0.1, as Evidently).
        threshold: f64 = "default_distance_threshold",
        /// Bins at reference quantiles for numeric signals (default 10).
        bins: usize = "default_bins",
        /// Distinct categories tracked (default 100).
        max_categories: usize = "default_max_categories",
    }
}

reference_config! {
    /// Config of the `jensen_shannon` detector: `{ kind = "jensen_shannon", window = 1000, threshold = 0.1 }`.
    JensenShannonConfig {
        /// Drift when the distance reaches this (default 0.1, as Evidently).
        threshold: f64 = "default_distance_threshold",
        /// Bins at reference quantiles for numeric signals (default 10).
        bins: usize = "default_bins",
        /// Distinct categories tracked (default 100).
        max_categories: usize = "default_max_categories",
    }
}

reference_config! {
    /// Config of the `wasserstein` detector: `{ kind = "wasserstein", window = 1000, threshold = 0.1 }`.
    WassersteinConfig {
        /// Drift when the normalised distance reaches this (default 0.1, as Evidently).
        threshold: f64 = "default_distance_threshold",
    }
}

reference_spec!(KsConfig, "ks");

impl KsConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, None, 1)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let spec = self.spec();
        DistributionDetector::with_file(
            DistributionTest::Ks { alpha: self.alpha },
            spec,
            self.reference_file.as_ref(),
            signal,
        )
    }

    fn family(&self) -> Option<(Correction, f64)> {
        Some((self.correction, self.alpha))
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step)?;
        check_open_unit("alpha", self.alpha)
    }
}

reference_spec!(ChiSquareConfig, "chi_square");

impl ChiSquareConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, Some(self.bins), self.max_categories)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let spec = self.spec();
        DistributionDetector::with_file(
            DistributionTest::ChiSquare { alpha: self.alpha },
            spec,
            self.reference_file.as_ref(),
            signal,
        )
    }

    fn family(&self) -> Option<(Correction, f64)> {
        Some((self.correction, self.alpha))
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step)?;
        check_open_unit("alpha", self.alpha)?;
        validate_bins(self.bins)?;
        validate_max_categories(self.max_categories)
    }
}

reference_spec!(PsiConfig, "psi");

impl PsiConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, Some(self.bins), self.max_categories)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let spec = self.spec();
        DistributionDetector::with_file(
            DistributionTest::Psi { threshold: self.threshold },
            spec,
            self.reference_file.as_ref(),
            signal,
        )
    }

    fn family(&self) -> Option<(Correction, f64)> {
        None
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step)?;
        check_positive("threshold", self.threshold)?;
        validate_bins(self.bins)?;
        validate_max_categories(self.max_categories)
    }
}

reference_spec!(JensenShannonConfig, "jensen_shannon");

impl JensenShannonConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, Some(self.bins), self.max_categories)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let spec = self.spec();
        DistributionDetector::with_file(
            DistributionTest::JensenShannon { threshold: self.threshold },
            spec,
            self.reference_file.as_ref(),
            signal,
        )
    }

    fn family(&self) -> Option<(Correction, f64)> {
        None
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step)?;
        check_positive("threshold", self.threshold)?;
        validate_bins(self.bins)?;
        validate_max_categories(self.max_categories)
    }
}

reference_spec!(WassersteinConfig, "wasserstein");

impl WassersteinConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, None, 1)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let spec = self.spec();
        DistributionDetector::with_file(
            DistributionTest::Wasserstein { threshold: self.threshold },
            spec,
            self.reference_file.as_ref(),
            signal,
        )
    }

    fn family(&self) -> Option<(Correction, f64)> {
        None
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step)?;
        check_positive("threshold", self.threshold)
    }
}

/// Which comparison a [`DistributionDetector`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum DistributionTest {
    /// Two-sample Kolmogorov–Smirnov; drift when p <= alpha.
    Ks {
        /// Significance.
        alpha: f64,
    },
    /// Pearson's chi-square of homogeneity; drift when p <= alpha.
    ChiSquare {
        /// Significance.
        alpha: f64,
    },
    /// Population stability index; drift when PSI >= threshold.
    Psi {
        /// Threshold.
        threshold: f64,
    },
    /// Jensen–Shannon distance; drift when it reaches the threshold.
    JensenShannon {
        /// Threshold.
        threshold: f64,
    },
    /// Wasserstein distance over the reference's standard deviation
    /// (floored at 0.001, as Evidently); drift when it reaches the threshold.
    Wasserstein {
        /// Threshold.
        threshold: f64,
    },
}

impl DistributionTest {
    fn kind(self) -> &'static str {
        match self {
            Self::Ks { .. } => "ks",
            Self::ChiSquare { .. } => "chi_square",
            Self::Psi { .. } => "psi",
            Self::JensenShannon { .. } => "jensen_shannon",
            Self::Wasserstein { .. } => "wasserstein",
        }
    }

    /// Whether the current window must be kept sorted (order statistics).
    fn needs_order(self) -> bool {
        matches!(self, Self::Ks { .. } | Self::Wasserstein { .. })
    }

    fn numeric_only(self) -> bool {
        self.needs_order()
    }
}

/// The parameters shared by every reference detector, after defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSpec {
    /// Samples in the warm-up reference.
    pub reference: usize,
    /// Current window size.
    pub window: usize,
    /// Evaluate every `step` samples (`window` = tumbling).
    pub step: usize,
    /// Bins for numeric signals of binned tests.
    pub bins: Option<usize>,
    /// Distinct categories tracked.
    pub max_categories: usize,
}

impl WindowSpec {
    /// An upper bound of a detector's state, in bytes: the reference and
    /// the window (twice, sorted, when sliding), the bins, and at most
    /// `max_categories` categories of the longest accepted name, on both
    /// sides. A reference file's samples are shared and not counted here.
    pub fn state_bytes(&self) -> usize {
        let numbers = 8 * (self.reference + 2 * self.window);
        let bins = 24 * self.bins.unwrap_or(0);
        let categories = 2 * self.max_categories * (64 + monitor_core::record::MAX_TEXT_BYTES);
        1024 + numbers + bins + categories
    }
}

/// The current window of numeric samples, kept sorted when the detector
/// slides and needs order statistics, else sorted at evaluation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct NumericWindow {
    fifo: VecDeque<f64>,
    /// Maintained incrementally (O(window) memmove per sample) when sliding;
    /// cheaper than sorting the window at every step.
    sorted: Option<Vec<f64>>,
    /// Samples per reference bin, for binned tests.
    counts: Vec<u64>,
}

/// A two-sample test of the current window against a reference: the engine
/// behind `ks`, `psi`, `chi_square`, `jensen_shannon` and `wasserstein`.
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
    spec: WindowSpec,
    reference: ReferenceState,
    numeric: NumericWindow,
    categories: Option<CategoryCounts>,
    cadence: Cadence,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl DistributionDetector {
    /// A detector whose reference is the first `spec.reference` samples.
    pub fn new(test: DistributionTest, spec: WindowSpec) -> Self {
        let cadence = Cadence::new(spec.window, Some(spec.step));
        Self {
            reference: ReferenceState::collecting(spec.reference),
            test,
            spec,
            numeric: NumericWindow::default(),
            categories: None,
            cadence,
            scratch: Vec::new(),
        }
    }

    /// A detector with its reference taken from a loaded file when it has
    /// samples of `signal`, else from the first samples.
    pub(crate) fn with_file(
        test: DistributionTest,
        spec: WindowSpec,
        file: Option<&ReferenceFile>,
        signal: Option<&str>,
    ) -> Self {
        let mut d = Self::new(test, spec);
        let data = file.and_then(|f| f.loaded().or_else(|| f.load().ok()));
        if let (Some(data), Some(signal)) = (data, signal) {
            let bins = d.bins_for_numeric();
            match ReferenceState::from_file(&data, signal, bins, false, d.spec.max_categories) {
                Some(state) => d.freeze(state),
                None => tracing::warn!(
                    signal,
                    "reference file has no samples of this signal; using the first samples instead"
                ),
            }
        }
        d
    }

    fn bins_for_numeric(&self) -> Option<usize> {
        if self.test.needs_order() { None } else { self.spec.bins }
    }

    fn freeze(&mut self, state: ReferenceState) {
        if let ReferenceState::Numeric(r) = &state {
            if let Some(b) = &r.bins {
                self.numeric.counts = vec![0; b.len()];
            }
            if self.test.needs_order() && self.spec.step < self.spec.window {
                self.numeric.sorted = Some(Vec::with_capacity(self.spec.window));
            }
        }
        self.reference = state;
    }

    fn push_numeric(&mut self, r: &NumericReference, x: f64) -> bool {
        let w = &mut self.numeric;
        if w.fifo.len() == self.spec.window {
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
        w.fifo.push_back(x);
        if let Some(b) = &r.bins {
            w.counts[b.bin(x)] += 1;
        }
        if let Some(s) = &mut w.sorted {
            let i = s.partition_point(|&y| y.total_cmp(&x).is_le());
            s.insert(i, x);
        }
        w.fifo.len() == self.spec.window
    }

    fn judge(&self, statistic: f64, p_value: Option<f64>) -> Assessment {
        let (drift, threshold) = match self.test {
            DistributionTest::Ks { alpha } | DistributionTest::ChiSquare { alpha } => {
                (p_value.is_some_and(|p| p <= alpha), alpha)
            }
            DistributionTest::Psi { threshold }
            | DistributionTest::JensenShannon { threshold }
            | DistributionTest::Wasserstein { threshold } => (statistic >= threshold, threshold),
        };
        Assessment {
            status: if drift { DriftStatus::Drift } else { DriftStatus::Stable },
            statistic,
            threshold,
            p_value,
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
        let a = self.compare(r, current);
        self.scratch = scratch;
        a
    }

    fn compare(&self, r: &NumericReference, current: &[f64]) -> Assessment {
        match self.test {
            DistributionTest::Ks { .. } => {
                let t = ks_2samp_sorted(r.sorted.as_slice(), current);
                self.judge(t.statistic, Some(t.p_value))
            }
            DistributionTest::Wasserstein { .. } => {
                let w = wasserstein_sorted(r.sorted.as_slice(), current);
                self.judge(w / r.std.max(0.001), None)
            }
            DistributionTest::ChiSquare { .. } => {
                let ref_counts = r.bins.as_ref().map(|b| b.reference_counts()).unwrap_or(&[]);
                let t = chi_square(ref_counts, &self.numeric.counts);
                self.judge(t.statistic, Some(t.p_value))
            }
            DistributionTest::Psi { .. } | DistributionTest::JensenShannon { .. } => {
                let reference = r.bins.as_ref().map(|b| b.reference()).unwrap_or(&[]);
                let current = proportions(&self.numeric.counts, self.numeric.fifo.len());
                self.binned(reference, &current)
            }
        }
    }

    fn binned(&self, reference: &[f64], current: &[f64]) -> Assessment {
        let statistic = match self.test {
            DistributionTest::Psi { .. } => psi_from_proportions(reference, current),
            _ => jensen_shannon_distance(reference, current),
        };
        self.judge(statistic, None)
    }

    fn evaluate_categorical(&self, r: &CategoricalReference, current: &CategoryCounts) -> Assessment {
        // Align both count vectors over the union of categories.
        let mut ref_counts: Vec<u64> = Vec::with_capacity(r.counts.len());
        let mut cur_counts: Vec<u64> = Vec::with_capacity(r.counts.len());
        for (name, &n) in &r.counts {
            ref_counts.push(n);
            cur_counts.push(current.count(name));
        }
        for (name, n) in current.iter() {
            if n > 0 && !r.counts.contains_key(name) {
                ref_counts.push(0);
                cur_counts.push(n);
            }
        }
        match self.test {
            DistributionTest::ChiSquare { .. } => {
                let t = chi_square(&ref_counts, &cur_counts);
                self.judge(t.statistic, Some(t.p_value))
            }
            _ => {
                let ref_total: u64 = ref_counts.iter().sum();
                let reference = proportions(&ref_counts, ref_total as usize);
                let current = proportions(&cur_counts, current.total() as usize);
                self.binned(&reference, &current)
            }
        }
    }
}

impl Detector for DistributionDetector {
    super::serde_state!();

    fn kind(&self) -> &str {
        self.test.kind()
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let value = sample.value;
        if self.test.numeric_only() && value.as_f64().is_none() {
            return None;
        }
        if matches!(self.reference, ReferenceState::Collecting { .. }) {
            let bins = self.bins_for_numeric();
            let max = self.spec.max_categories;
            self.reference.offer(value, bins, false, max);
            if !matches!(self.reference, ReferenceState::Collecting { .. }) {
                let state = std::mem::replace(&mut self.reference, ReferenceState::collecting(0));
                self.freeze(state);
            }
            return None;
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
                let (w, max) = (self.spec.window, self.spec.max_categories);
                let counts = self.categories.get_or_insert_with(|| CategoryCounts::new(w, max));
                counts.push(c);
                let full = counts.total() as usize == w;
                if !self.cadence.tick(full) {
                    return None;
                }
                let counts = self.categories.as_ref()?;
                Some(self.evaluate_categorical(&r, counts))
            }
            _ => None,
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.test, self.spec.clone());
    }

    fn explain(&self, a: &Assessment) -> String {
        let n = self.spec.window;
        match self.test {
            DistributionTest::Ks { .. } => format!(
                "KS test of the last {n} samples against the reference: D = {}, p = {:.3e} (alpha {})",
                fmt_num(a.statistic),
                a.p_value.unwrap_or(f64::NAN),
                fmt_num(a.threshold)
            ),
            DistributionTest::ChiSquare { .. } => format!(
                "chi-square test of the last {n} samples against the reference: chi2 = {}, p = {:.3e} (alpha {})",
                fmt_num(a.statistic),
                a.p_value.unwrap_or(f64::NAN),
                fmt_num(a.threshold)
            ),
            DistributionTest::Psi { .. } => format!(
                "PSI of the last {n} samples against the reference is {} (threshold {})",
                fmt_num(a.statistic),
                fmt_num(a.threshold)
            ),
            DistributionTest::JensenShannon { .. } => format!(
                "Jensen-Shannon distance of the last {n} samples from the reference is {} (threshold {})",
                fmt_num(a.statistic),
                fmt_num(a.threshold)
            ),
            DistributionTest::Wasserstein { .. } => format!(
                "Wasserstein distance of the last {n} samples from the reference is {} reference deviations (threshold {})",
                fmt_num(a.statistic),
                fmt_num(a.threshold)
            ),
        }
    }
}
