//! `drift`: the two-sample test chosen by signal type and reference size,
//! the way Evidently's defaults choose: KS (numbers) or chi-square
//! (categories) for a reference of up to `large_reference` samples, the
//! normalised Wasserstein distance (numbers) or the Jensen–Shannon distance
//! (categories) for a larger one, where any p-value would be tiny. So one
//! monitor on `features.*` covers a model whose features are of mixed types.

use monitor_core::Error;
use monitor_core::detector::Detector;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use serde::{Deserialize, Serialize};

use super::distribution::{
    default_alpha, default_ks_effect, default_max_samples, default_window, validate_common, validate_max_categories,
    validate_unit_effect, window_spec,
};
use super::reference::{ReferenceFile, file_spec};
use super::two_sample::{AutoTest, DistributionDetector, WindowSpec};
use super::window::WindowSize;
use super::{check_open_unit, check_positive};
use crate::stats::Correction;

/// Config of the `drift` detector: `{ kind = "drift" }`, or with any of
/// the keys below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// The first `reference` samples of each model version are the
    /// reference (default: ten windows, or 10 000 samples with an
    /// event-time window). With `reference_file`, only used for signals
    /// the file lacks.
    #[serde(default)]
    pub reference: Option<usize>,
    /// A file of NDJSON records (the training data, say) whose samples of
    /// the signal are the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_file: Option<ReferenceFile>,
    /// Current window: samples (default 1000), or a span of event time (`"1h"`).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` samples once the window is full; absent means
    /// tumbling. Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// With an event-time window: the samples kept of each window for KS
    /// and Wasserstein (default 10 000).
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// The largest reference tested with a p-value (KS, chi-square); above
    /// it, a distance (default 1000, as Evidently).
    #[serde(default = "default_large_reference")]
    pub large_reference: usize,
    /// Family-wise significance of KS and chi-square (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How the alpha is shared by the tests of a model version (default `bonferroni`).
    #[serde(default)]
    pub correction: Correction,
    /// The smallest KS D or Cramér's V that is drift (default 0.1).
    #[serde(default = "default_ks_effect")]
    pub min_effect: f64,
    /// The smallest normalised Wasserstein or Jensen–Shannon distance that
    /// is drift (default 0.1, as Evidently).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Distinct categories tracked (default 100).
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
}

fn default_large_reference() -> usize {
    1000
}
fn default_threshold() -> f64 {
    0.1
}
fn default_max_categories() -> usize {
    100
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            reference: None,
            reference_file: None,
            window: default_window(),
            step: None,
            max_samples: default_max_samples(),
            large_reference: default_large_reference(),
            alpha: default_alpha(),
            correction: Correction::default(),
            min_effect: default_ks_effect(),
            threshold: default_threshold(),
            max_categories: default_max_categories(),
        }
    }
}

impl DriftConfig {
    fn spec(&self) -> WindowSpec {
        window_spec(self.reference, self.window, self.step, None, self.max_categories, self.max_samples)
    }

    fn auto(&self) -> AutoTest {
        AutoTest {
            large_reference: self.large_reference,
            alpha: self.alpha,
            min_effect: self.min_effect,
            threshold: self.threshold,
        }
    }

    /// Whether the test is a distance whatever the signal: a reference of
    /// the first samples larger than `large_reference`, and no file.
    fn always_distance(&self) -> bool {
        self.reference_file.is_none() && self.spec().reference > self.large_reference
    }

    /// The detector for `signal`, with its reference from the file when the
    /// file has the signal.
    pub fn detector(&self, signal: Option<&str>) -> DistributionDetector {
        DistributionDetector::auto(self.auto(), self.spec()).with_file(self.reference_file.as_ref(), signal)
    }
}

impl DetectorSpec for DriftConfig {
    fn kind(&self) -> &str {
        "drift"
    }

    fn state_bytes(&self) -> usize {
        self.spec().state_bytes()
    }

    fn state_bytes_for(&self, categorical: bool) -> usize {
        self.spec().state_bytes_for(categorical, self.reference_file.is_some())
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        validate_common(self.reference, self.window, self.step, self.max_samples)?;
        if !(1..=super::MAX_WINDOW).contains(&self.large_reference) {
            return Err(Error::config(
                "large_reference",
                format!("must be between 1 and {} (got {})", super::MAX_WINDOW, self.large_reference),
            ));
        }
        check_open_unit("alpha", self.alpha)?;
        validate_unit_effect(self.min_effect)?;
        check_positive("threshold", self.threshold)?;
        validate_max_categories(self.max_categories)
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

    fn p_value_family(&self) -> Option<(Correction, f64)> {
        (!self.always_distance()).then_some((self.correction, self.alpha))
    }

    fn min_effect(&self) -> Option<f64> {
        Some(if self.always_distance() { self.threshold } else { self.min_effect })
    }

    fn load_references(&self) -> Result<(), Error> {
        file_spec::load(self.reference_file.as_ref())
    }

    fn reference_signals(&self) -> Result<Option<Vec<String>>, Error> {
        file_spec::signals(self.reference_file.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use monitor_core::detector::{DriftStatus, Sample};
    use monitor_core::signal::SignalValue;

    use super::*;
    use crate::detectors::DistributionTest;

    fn feed(d: &mut DistributionDetector, values: &[SignalValue<'_>]) -> Vec<DriftStatus> {
        values
            .iter()
            .filter_map(|&value| d.observe(Sample { value, ts: chrono::DateTime::UNIX_EPOCH }))
            .map(|a| a.status)
            .collect()
    }

    #[test]
    fn the_test_follows_the_type_and_the_reference_size() {
        let small = DriftConfig { reference: Some(100), window: 50.into(), ..DriftConfig::default() };
        let large = DriftConfig { reference: Some(2000), window: 50.into(), ..DriftConfig::default() };
        let numbers: Vec<SignalValue<'_>> = (0..3000).map(|i| SignalValue::Numeric(f64::from(i % 7))).collect();
        let classes: Vec<SignalValue<'_>> =
            (0..3000).map(|i| SignalValue::Categorical(["a", "b", "c"][i % 3])).collect();
        for (config, values, want) in [
            (&small, &numbers, "ks"),
            (&small, &classes, "chi_square"),
            (&large, &numbers, "wasserstein"),
            (&large, &classes, "jensen_shannon"),
        ] {
            let mut d = config.detector(None);
            let verdicts = feed(&mut d, values);
            assert!(!verdicts.is_empty() && verdicts.iter().all(|&s| s == DriftStatus::Stable), "{want}");
            let got = match d.test() {
                DistributionTest::Ks { .. } => "ks",
                DistributionTest::ChiSquare { .. } => "chi_square",
                DistributionTest::Wasserstein { .. } => "wasserstein",
                DistributionTest::JensenShannon { .. } => "jensen_shannon",
                DistributionTest::Psi { .. } => "psi",
            };
            assert_eq!((got, d.kind(), d.in_p_value_family()), (want, "drift", want == "ks" || want == "chi_square"));
        }
        assert_eq!(large.p_value_family(), None, "a large reference never gives a p-value");
        assert_eq!(small.p_value_family(), Some((Correction::Bonferroni, 0.05)));
    }

    #[test]
    fn validation_names_keys() {
        let bad = DriftConfig { large_reference: 0, ..DriftConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("`large_reference`"));
        let bad = DriftConfig { min_effect: 1.5, ..DriftConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("`min_effect`"));
    }
}
