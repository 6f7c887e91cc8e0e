//! The detectors, and [`DetectorConfig`], the serde factory that builds them.

use monitor_core::Error;
use monitor_core::detector::Detector;
use serde::{Deserialize, Serialize};

mod adaptive;
mod adwin;
mod cadence;
mod control;
mod ddm;
mod distribution;
mod hddm;
mod kswin;
mod mean_shift;
mod page_hinkley;
mod reference;
mod threshold;

pub use adaptive::{AdaptiveThreshold, AdaptiveThresholdConfig};
pub use adwin::{Adwin, AdwinConfig};
pub use cadence::Cadence;
pub use control::{Cusum, CusumConfig, Ewma, EwmaConfig};
pub use ddm::{Ddm, DdmConfig, Eddm, EddmConfig};
pub use distribution::{
    ChiSquareConfig, DistributionDetector, DistributionTest, JensenShannonConfig, KsConfig, PsiConfig,
    WassersteinConfig, WindowSpec,
};
pub use hddm::{HddmA, HddmAConfig, HddmW, HddmWConfig};
pub use kswin::{Kswin, KswinConfig};
pub use mean_shift::{MeanShift, MeanShiftConfig};
pub use page_hinkley::{Direction, PageHinkley, PageHinkleyConfig};
pub use reference::{ReferenceData, ReferenceFile, ReferenceSignal};
pub use threshold::{Threshold, ThresholdConfig};

pub(crate) use threshold::fmt_num;

/// Implements [`Detector::save_state`] and [`Detector::load_state`] for a
/// detector whose whole state is serde-serialisable: the state is the
/// detector itself, config included, so a restored detector is the one saved.
macro_rules! serde_state {
    () => {
        fn save_state(&self) -> monitor_core::Result<serde_json::Value> {
            serde_json::to_value(self).map_err(|e| monitor_core::Error::snapshot(self.kind(), e.to_string()))
        }

        fn load_state(&mut self, state: serde_json::Value) -> monitor_core::Result<()> {
            *self =
                serde_json::from_value(state).map_err(|e| monitor_core::Error::snapshot(self.kind(), e.to_string()))?;
            Ok(())
        }
    };
}
pub(crate) use serde_state;

use crate::stats::Correction;

/// A detector as written in config: `{ kind = "threshold", ... }`.
///
/// A parameter left out takes its published default. An unknown `kind` or
/// key is an error that names it and lists the known ones.
///
/// ```
/// use monitor_strategies::detectors::DetectorConfig;
///
/// let config: DetectorConfig = serde_json::from_str(r#"{"kind": "threshold", "min": 0.9}"#).unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.build().kind(), "threshold");
///
/// let err = serde_json::from_str::<DetectorConfig>(r#"{"kind": "magic"}"#).unwrap_err();
/// assert!(err.to_string().contains("unknown variant `magic`, expected"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DetectorConfig {
    /// [`Threshold`]
    Threshold(ThresholdConfig),
    /// [`MeanShift`]
    MeanShift(MeanShiftConfig),
    /// [`AdaptiveThreshold`]
    AdaptiveThreshold(AdaptiveThresholdConfig),
    /// [`Adwin`]
    Adwin(AdwinConfig),
    /// [`PageHinkley`]
    PageHinkley(PageHinkleyConfig),
    /// [`Ddm`]
    Ddm(DdmConfig),
    /// [`Eddm`]
    Eddm(EddmConfig),
    /// [`HddmA`]
    HddmA(HddmAConfig),
    /// [`HddmW`]
    HddmW(HddmWConfig),
    /// [`Kswin`]
    Kswin(KswinConfig),
    /// [`Cusum`]
    Cusum(CusumConfig),
    /// [`Ewma`]
    Ewma(EwmaConfig),
    /// Two-sample Kolmogorov–Smirnov against a reference ([`DistributionDetector`]).
    Ks(KsConfig),
    /// Population stability index against a reference ([`DistributionDetector`]).
    Psi(PsiConfig),
    /// Chi-square test against a reference ([`DistributionDetector`]).
    ChiSquare(ChiSquareConfig),
    /// Jensen–Shannon distance from a reference ([`DistributionDetector`]).
    JensenShannon(JensenShannonConfig),
    /// Normalised Wasserstein distance from a reference ([`DistributionDetector`]).
    Wasserstein(WassersteinConfig),
}

impl DetectorConfig {
    /// Every detector kind, as spelled in config.
    pub const KINDS: &'static [&'static str] = &[
        "threshold",
        "mean_shift",
        "adaptive_threshold",
        "adwin",
        "page_hinkley",
        "ddm",
        "eddm",
        "hddm_a",
        "hddm_w",
        "kswin",
        "cusum",
        "ewma",
        "ks",
        "psi",
        "chi_square",
        "jensen_shannon",
        "wasserstein",
    ];

    /// The kind, as spelled in config.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Threshold(_) => "threshold",
            Self::MeanShift(_) => "mean_shift",
            Self::AdaptiveThreshold(_) => "adaptive_threshold",
            Self::Adwin(_) => "adwin",
            Self::PageHinkley(_) => "page_hinkley",
            Self::Ddm(_) => "ddm",
            Self::Eddm(_) => "eddm",
            Self::HddmA(_) => "hddm_a",
            Self::HddmW(_) => "hddm_w",
            Self::Kswin(_) => "kswin",
            Self::Cusum(_) => "cusum",
            Self::Ewma(_) => "ewma",
            Self::Ks(_) => "ks",
            Self::Psi(_) => "psi",
            Self::ChiSquare(_) => "chi_square",
            Self::JensenShannon(_) => "jensen_shannon",
            Self::Wasserstein(_) => "wasserstein",
        }
    }

    /// Checks every parameter's range. Error keys are relative to the
    /// detector table (`window`, `alpha`). Does not touch the reference file:
    /// see [`DetectorConfig::load_reference`].
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Self::Threshold(c) => c.validate(),
            Self::MeanShift(c) => c.validate(),
            Self::AdaptiveThreshold(c) => c.validate(),
            Self::Adwin(c) => c.validate(),
            Self::PageHinkley(c) => c.validate(),
            Self::Ddm(c) => c.validate(),
            Self::Eddm(c) => c.validate(),
            Self::HddmA(c) => c.validate(),
            Self::HddmW(c) => c.validate(),
            Self::Kswin(c) => c.validate(),
            Self::Cusum(c) => c.validate(),
            Self::Ewma(c) => c.validate(),
            Self::Ks(c) => c.validate(),
            Self::Psi(c) => c.validate(),
            Self::ChiSquare(c) => c.validate(),
            Self::JensenShannon(c) => c.validate(),
            Self::Wasserstein(c) => c.validate(),
        }
    }

    /// Reads the reference file, if there is one: once, however many clones
    /// of this config call it. Errors are config errors at `reference_file`.
    /// `Monitor::new` calls it, so that a bad file fails at start.
    pub fn load_reference(&self) -> Result<(), Error> {
        match self.reference_file() {
            Some(f) => f.load().map(drop),
            None => Ok(()),
        }
    }

    /// A fresh detector with no signal context: a reference file is not
    /// consulted. Call [`DetectorConfig::validate`] first.
    pub fn build(&self) -> Box<dyn Detector> {
        self.build_for(None)
    }

    /// A fresh detector for `signal` (as written in output, `features.amount`):
    /// reference detectors take that signal's samples from their reference
    /// file when it has them.
    pub fn build_for(&self, signal: Option<&str>) -> Box<dyn Detector> {
        match self {
            Self::Threshold(c) => Box::new(Threshold::new(c.clone())),
            Self::MeanShift(c) => Box::new(MeanShift::new(c.clone())),
            Self::AdaptiveThreshold(c) => Box::new(AdaptiveThreshold::with_file(c.clone(), signal)),
            Self::Adwin(c) => Box::new(Adwin::new(c.clone())),
            Self::PageHinkley(c) => Box::new(PageHinkley::new(c.clone())),
            Self::Ddm(c) => Box::new(Ddm::new(c.clone())),
            Self::Eddm(c) => Box::new(Eddm::new(c.clone())),
            Self::HddmA(c) => Box::new(HddmA::new(c.clone())),
            Self::HddmW(c) => Box::new(HddmW::new(c.clone())),
            Self::Kswin(c) => Box::new(Kswin::new(c.clone())),
            Self::Cusum(c) => Box::new(Cusum::new(c.clone())),
            Self::Ewma(c) => Box::new(Ewma::new(c.clone())),
            Self::Ks(_) | Self::Psi(_) | Self::ChiSquare(_) | Self::JensenShannon(_) | Self::Wasserstein(_) => {
                Box::new(self.distribution_detector(signal))
            }
        }
    }

    /// The two-sample detector of a `ks`, `psi`, `chi_square`,
    /// `jensen_shannon` or `wasserstein` config (a KS test for other kinds).
    pub fn distribution_detector(&self, signal: Option<&str>) -> DistributionDetector {
        let spec = |reference: Option<usize>, window: usize, step: Option<usize>, bins, max| WindowSpec {
            reference: reference.unwrap_or(window),
            window,
            step: step.unwrap_or(window),
            bins,
            max_categories: max,
        };
        let (test, spec, file) = match self {
            Self::Ks(c) => (
                DistributionTest::Ks { alpha: c.alpha },
                spec(c.reference, c.window, c.step, None, 1),
                c.reference_file.as_ref(),
            ),
            Self::ChiSquare(c) => (
                DistributionTest::ChiSquare { alpha: c.alpha },
                spec(c.reference, c.window, c.step, Some(c.bins), c.max_categories),
                c.reference_file.as_ref(),
            ),
            Self::Psi(c) => (
                DistributionTest::Psi { threshold: c.threshold },
                spec(c.reference, c.window, c.step, Some(c.bins), c.max_categories),
                c.reference_file.as_ref(),
            ),
            Self::JensenShannon(c) => (
                DistributionTest::JensenShannon { threshold: c.threshold },
                spec(c.reference, c.window, c.step, Some(c.bins), c.max_categories),
                c.reference_file.as_ref(),
            ),
            Self::Wasserstein(c) => (
                DistributionTest::Wasserstein { threshold: c.threshold },
                spec(c.reference, c.window, c.step, None, 1),
                c.reference_file.as_ref(),
            ),
            _ => (DistributionTest::Ks { alpha: 0.05 }, spec(None, 1000, None, None, 1), None),
        };
        DistributionDetector::with_file(test, spec, file, signal)
    }

    /// The reference file, for kinds that take one and when it is set.
    pub fn reference_file(&self) -> Option<&ReferenceFile> {
        match self {
            Self::AdaptiveThreshold(c) => c.reference_file.as_ref(),
            Self::Ks(c) => c.reference_file.as_ref(),
            Self::Psi(c) => c.reference_file.as_ref(),
            Self::ChiSquare(c) => c.reference_file.as_ref(),
            Self::JensenShannon(c) => c.reference_file.as_ref(),
            Self::Wasserstein(c) => c.reference_file.as_ref(),
            _ => None,
        }
    }

    /// Makes a relative `reference_file` relative to `base` (the directory
    /// of the config file).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let file = match self {
            Self::AdaptiveThreshold(c) => c.reference_file.as_mut(),
            Self::Ks(c) => c.reference_file.as_mut(),
            Self::Psi(c) => c.reference_file.as_mut(),
            Self::ChiSquare(c) => c.reference_file.as_mut(),
            Self::JensenShannon(c) => c.reference_file.as_mut(),
            Self::Wasserstein(c) => c.reference_file.as_mut(),
            _ => None,
        };
        if let Some(f) = file {
            f.resolve(base);
        }
    }

    /// For p-value detectors (`ks`, `chi_square`): how several features
    /// share the family-wise alpha, and that alpha.
    pub fn correction(&self) -> Option<(Correction, f64)> {
        match self {
            Self::Ks(c) => Some((c.correction, c.alpha)),
            Self::ChiSquare(c) => Some((c.correction, c.alpha)),
            _ => None,
        }
    }

    /// The alpha each of `n_tests` features is tested at, for p-value
    /// detectors: alpha / n with Bonferroni; with FDR the threshold of the
    /// smallest p-value (the k-th smallest is held to k · alpha / n);
    /// alpha without correction. `None` for detectors without a p-value.
    ///
    /// ```
    /// use monitor_strategies::detectors::{DetectorConfig, KsConfig};
    /// let ks: DetectorConfig = serde_json::from_str(r#"{"kind": "ks", "alpha": 0.05}"#).unwrap();
    /// assert_eq!(ks.effective_alpha(10), Some(0.005));
    /// ```
    pub fn effective_alpha(&self, n_tests: usize) -> Option<f64> {
        self.correction().map(|(c, alpha)| c.per_test_alpha(alpha, n_tests))
    }
}

/// A probability-like parameter strictly between 0 and 1.
pub(crate) fn check_open_unit(key: &str, x: f64) -> Result<(), Error> {
    if x > 0.0 && x < 1.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be between 0 and 1, exclusive (got {x})")))
    }
}

/// A factor in (0, 1].
pub(crate) fn check_open_unit_closed(key: &str, x: f64) -> Result<(), Error> {
    if x > 0.0 && x <= 1.0 { Ok(()) } else { Err(Error::config(key, format!("must be in (0, 1] (got {x})"))) }
}

/// A finite number above 0.
pub(crate) fn check_positive(key: &str, x: f64) -> Result<(), Error> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be a positive number (got {x})")))
    }
}

/// A finite number at or above 0.
pub(crate) fn check_non_negative(key: &str, x: f64) -> Result<(), Error> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be a non-negative number (got {x})")))
    }
}

/// A count of at least 1.
pub(crate) fn check_positive_int(key: &str, x: u64) -> Result<(), Error> {
    if x >= 1 { Ok(()) } else { Err(Error::config(key, "must be at least 1 (got 0)")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<DetectorConfig, String> {
        toml::from_str::<DetectorConfig>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let e = parse("kind = \"magic\"").unwrap_err();
        assert!(e.contains("unknown variant `magic`, expected"), "{e}");
        for kind in DetectorConfig::KINDS {
            assert!(e.contains(&format!("`{kind}`")), "{e} lacks {kind}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("kind = \"threshold\"\nmin = 0.9\nwindw = 10").unwrap_err();
        assert!(e.contains("unknown field `windw`"), "{e}");
        assert!(e.contains("expected one of `statistic`, `window`"), "{e}");
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = parse("kind = \"threshold\"\nmax = 120.0").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, DetectorConfig::Threshold(ThresholdConfig { max: Some(120.0), ..ThresholdConfig::default() }));
    }
}
