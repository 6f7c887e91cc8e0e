//! `ks`, `psi`, `chi_square`, `jensen_shannon` and `wasserstein`: the current
//! window's distribution against a reference's, as configured. The engine
//! they share is [`DistributionDetector`].
//!
//! Each verdict can require an effect size as well as a p-value: KS D and
//! Cramér's V (`min_effect`) for the tests, the distance itself
//! (`threshold`, also spelt `min_effect`) for PSI, Jensen–Shannon and
//! Wasserstein, which take an `alpha` when a p-value should be required too.

use monitor_core::Error;
use monitor_core::detector::Detector;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use serde::{Deserialize, Serialize};

use super::reference::{ReferenceFile, file_spec};
pub use super::two_sample::{AutoTest, DistributionDetector, DistributionTest, WindowSpec};
use super::window::{WindowSize, validate_window};
use super::{check_open_unit, check_positive};
use crate::stats::Correction;

pub(crate) fn default_window() -> WindowSize {
    WindowSize::Samples(1000)
}
pub(crate) fn default_alpha() -> f64 {
    0.05
}
fn default_distance_threshold() -> f64 {
    0.1
}
/// KS D of 0.1: KSWIN's bound (Raab et al. 2020, as River), about a 0.25σ
/// shift of a normal mean.
pub(crate) fn default_ks_effect() -> f64 {
    0.1
}
/// Cramér's V of 0.1: Cohen's (1988) "small" effect for one degree of freedom.
pub(crate) fn default_v_effect() -> f64 {
    0.1
}
pub(crate) fn default_max_samples() -> usize {
    10_000
}

/// The reference of a two-sample detector when `reference` is not given:
/// ten windows (a reference as large as the window tests its own noise
/// again in every window; see docs/DETECTORS.md), or 10 000 samples for an
/// event-time window.
pub fn default_reference(window: WindowSize) -> usize {
    match window {
        WindowSize::Samples(n) => n.saturating_mul(10).min(super::MAX_WINDOW),
        WindowSize::Time(_) => DEFAULT_TIME_REFERENCE,
    }
}

/// The default reference, in samples, of a detector with an event-time window.
pub const DEFAULT_TIME_REFERENCE: usize = 10_000;
fn default_bins() -> usize {
    10
}
fn default_max_categories() -> usize {
    100
}

/// Checks the keys every reference detector shares.
pub(crate) fn validate_common(
    reference: Option<usize>,
    window: WindowSize,
    step: Option<usize>,
    max_samples: usize,
) -> Result<(), Error> {
    validate_window(window, step)?;
    if !(1..=super::MAX_WINDOW).contains(&max_samples) {
        return Err(Error::config(
            "max_samples",
            format!("must be between 1 and {} (got {max_samples})", super::MAX_WINDOW),
        ));
    }
    match reference {
        Some(0) => Err(Error::config("reference", "must be at least 1 (got 0)")),
        Some(n) if n > super::MAX_WINDOW => {
            Err(Error::config("reference", format!("must be at most {} (got {n})", super::MAX_WINDOW)))
        }
        _ => Ok(()),
    }
}

/// An effect size on a scale from 0 to 1 (KS D, Cramér's V).
pub(crate) fn validate_unit_effect(x: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(Error::config("min_effect", format!("must be between 0 and 1 (got {x})")))
    }
}

pub(crate) fn validate_bins(bins: usize) -> Result<(), Error> {
    if !(2..=super::MAX_BINS).contains(&bins) {
        return Err(Error::config("bins", format!("must be between 2 and {} (got {bins})", super::MAX_BINS)));
    }
    Ok(())
}

pub(crate) fn validate_max_categories(n: usize) -> Result<(), Error> {
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
            /// reference (default: ten windows, or 10 000 samples with an
            /// event-time window). With `reference_file`, only used for
            /// signals the file lacks.
            #[serde(default)]
            pub reference: Option<usize>,
            /// A file of NDJSON records (the training data, say) whose
            /// samples of the signal are the reference.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub reference_file: Option<ReferenceFile>,
            /// Current window: samples (default 1000), or a span of event
            /// time (`"1h"`: tumbling windows of one hour).
            #[serde(default = "default_window")]
            pub window: WindowSize,
            /// Evaluate every `step` samples once the window is full; absent
            /// means tumbling (`step = window`). Count windows only.
            #[serde(default)]
            pub step: Option<usize>,
            /// With an event-time window: the samples kept of each window
            /// for the tests that need them (KS, Wasserstein), a uniform
            /// sample of the window beyond that (default 10 000). Counts
            /// (bins, categories) are always exact.
            #[serde(default = "default_max_samples")]
            pub max_samples: usize,
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

            fn state_bytes_for(&self, categorical: bool) -> usize {
                self.spec().state_bytes_for(categorical, self.reference_file.is_some())
            }

            fn p_value_family(&self) -> Option<(Correction, f64)> {
                self.family()
            }

            fn min_effect(&self) -> Option<f64> {
                Some(self.effect())
            }

            fn time_window(&self) -> Option<std::time::Duration> {
                self.window.time().map(|d| d.as_std())
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

/// The window parameters after defaults: the reference defaults to ten windows.
pub(crate) fn window_spec(
    reference: Option<usize>,
    window: WindowSize,
    step: Option<usize>,
    bins: Option<usize>,
    max_categories: usize,
    max_samples: usize,
) -> WindowSpec {
    WindowSpec {
        reference: reference.unwrap_or_else(|| default_reference(window)),
        window,
        step: step.unwrap_or(window.samples_or(1)),
        bins,
        max_categories,
        max_samples,
    }
}

reference_config! {
    /// Config of the `ks` detector: `{ kind = "ks", reference = 5000, window = 1000, alpha = 0.05 }`.
    KsConfig {
        /// Family-wise significance (default 0.05, as Alibi Detect).
        alpha: f64 = "default_alpha",
        /// How the alpha is shared by the tests of a model version
        /// (default `bonferroni`; `fdr` or `none`).
        correction: Correction = "Correction::default",
        /// The smallest KS D that is drift, whatever the p-value (default
        /// 0.1, KSWIN's bound).
        min_effect: f64 = "default_ks_effect",
    }
}

reference_config! {
    /// Config of the `chi_square` detector: `{ kind = "chi_square", window = 1000, alpha = 0.05 }`.
    ChiSquareConfig {
        /// Family-wise significance (default 0.05).
        alpha: f64 = "default_alpha",
        /// How the alpha is shared by the tests of a model version (default `bonferroni`).
        correction: Correction = "Correction::default",
        /// The smallest Cramér's V (reference and window weighed equally)
        /// that is drift, whatever the p-value (default 0.1, Cohen's small effect).
        min_effect: f64 = "default_v_effect",
        /// Bins at reference quantiles for numeric signals (default 10).
        bins: usize = "default_bins",
        /// Distinct categories tracked; the rest count as `__other__` (default 100).
        max_categories: usize = "default_max_categories",
    }
}

reference_config! {
    /// Config of the `psi` detector: `{ kind = "psi", window = 1000, bins = 10, threshold = 0.1 }`.
    PsiConfig {
        /// Drift when PSI reaches this (default 0.1, as Evidently); also
        /// spelt `min_effect`.
        #[serde(alias = "min_effect")]
        threshold: f64 = "default_distance_threshold",
        /// Also require the chi-square test of the same bins at this
        /// significance (default: no p-value).
        #[serde(skip_serializing_if = "Option::is_none")]
        alpha: Option<f64> = "Option::default",
        /// How that alpha is shared by the tests of a model version (default `bonferroni`).
        correction: Correction = "Correction::default",
        /// Bins at reference quantiles for numeric signals (default 10).
        bins: usize = "default_bins",
        /// Distinct categories tracked (default 100).
        max_categories: usize = "default_max_categories",
    }
}

reference_config! {
    /// Config of the `jensen_shannon` detector: `{ kind = "jensen_shannon", window = 1000, threshold = 0.1 }`.
    JensenShannonConfig {
        /// Drift when the distance reaches this (default 0.1, as Evidently);
        /// also spelt `min_effect`.
        #[serde(alias = "min_effect")]
        threshold: f64 = "default_distance_threshold",
        /// Also require the chi-square test of the same bins at this
        /// significance (default: no p-value).
        #[serde(skip_serializing_if = "Option::is_none")]
        alpha: Option<f64> = "Option::default",
        /// How that alpha is shared by the tests of a model version (default `bonferroni`).
        correction: Correction = "Correction::default",
        /// Bins at reference quantiles for numeric signals (default 10).
        bins: usize = "default_bins",
        /// Distinct categories tracked (default 100).
        max_categories: usize = "default_max_categories",
    }
}

reference_config! {
    /// Config of the `wasserstein` detector: `{ kind = "wasserstein", window = 1000, threshold = 0.1 }`.
    WassersteinConfig {
        /// Drift when the normalised distance reaches this (default 0.1, as
        /// Evidently); also spelt `min_effect`.
        #[serde(alias = "min_effect")]
        threshold: f64 = "default_distance_threshold",
        /// Also require the KS test at this significance (default: no p-value).
        #[serde(skip_serializing_if = "Option::is_none")]
        alpha: Option<f64> = "Option::default",
        /// How that alpha is shared by the tests of a model version (default `bonferroni`).
        correction: Correction = "Correction::default",
    }
}

reference_spec!(KsConfig, "ks");

impl KsConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, None, 1, self.max_samples)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let test = DistributionTest::Ks { alpha: self.alpha, min_effect: self.min_effect };
        DistributionDetector::new(test, self.spec()).with_file(self.reference_file.as_ref(), signal)
    }

    fn family(&self) -> Option<(Correction, f64)> {
        Some((self.correction, self.alpha))
    }

    fn effect(&self) -> f64 {
        self.min_effect
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step, self.max_samples)?;
        check_open_unit("alpha", self.alpha)?;
        validate_unit_effect(self.min_effect)
    }
}

reference_spec!(ChiSquareConfig, "chi_square");

impl ChiSquareConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, Some(self.bins), self.max_categories, self.max_samples)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let test = DistributionTest::ChiSquare { alpha: self.alpha, min_effect: self.min_effect };
        DistributionDetector::new(test, self.spec()).with_file(self.reference_file.as_ref(), signal)
    }

    fn family(&self) -> Option<(Correction, f64)> {
        Some((self.correction, self.alpha))
    }

    fn effect(&self) -> f64 {
        self.min_effect
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step, self.max_samples)?;
        check_open_unit("alpha", self.alpha)?;
        validate_unit_effect(self.min_effect)?;
        validate_bins(self.bins)?;
        validate_max_categories(self.max_categories)
    }
}

/// The checks of a distance's threshold and optional alpha.
fn check_distance(threshold: f64, alpha: Option<f64>) -> Result<(), Error> {
    check_positive("threshold", threshold)?;
    alpha.map_or(Ok(()), |a| check_open_unit("alpha", a))
}

reference_spec!(PsiConfig, "psi");

impl PsiConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, Some(self.bins), self.max_categories, self.max_samples)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let test = DistributionTest::Psi { threshold: self.threshold, alpha: self.alpha };
        DistributionDetector::new(test, self.spec()).with_file(self.reference_file.as_ref(), signal)
    }

    fn family(&self) -> Option<(Correction, f64)> {
        self.alpha.map(|a| (self.correction, a))
    }

    fn effect(&self) -> f64 {
        self.threshold
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step, self.max_samples)?;
        check_distance(self.threshold, self.alpha)?;
        validate_bins(self.bins)?;
        validate_max_categories(self.max_categories)
    }
}

reference_spec!(JensenShannonConfig, "jensen_shannon");

impl JensenShannonConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, Some(self.bins), self.max_categories, self.max_samples)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let test = DistributionTest::JensenShannon { threshold: self.threshold, alpha: self.alpha, min_v: None };
        DistributionDetector::new(test, self.spec()).with_file(self.reference_file.as_ref(), signal)
    }

    fn family(&self) -> Option<(Correction, f64)> {
        self.alpha.map(|a| (self.correction, a))
    }

    fn effect(&self) -> f64 {
        self.threshold
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step, self.max_samples)?;
        check_distance(self.threshold, self.alpha)?;
        validate_bins(self.bins)?;
        validate_max_categories(self.max_categories)
    }
}

reference_spec!(WassersteinConfig, "wasserstein");

impl WassersteinConfig {
    /// The window parameters, defaults filled.
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, None, 1, self.max_samples)
    }

    /// The detector for `signal`: its reference is the file's samples of
    /// the signal when the file has them, else the first samples. `None`
    /// (no signal context) always takes the first samples.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        let test = DistributionTest::Wasserstein { threshold: self.threshold, alpha: self.alpha, min_d: None };
        DistributionDetector::new(test, self.spec()).with_file(self.reference_file.as_ref(), signal)
    }

    fn family(&self) -> Option<(Correction, f64)> {
        self.alpha.map(|a| (self.correction, a))
    }

    fn effect(&self) -> f64 {
        self.threshold
    }

    fn check(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step, self.max_samples)?;
        check_distance(self.threshold, self.alpha)
    }
}
