//! `out_of_range`: the share of a numeric signal's values outside the
//! reference's range, or outside configured bounds. A sample of n values
//! leaves 2 / (n + 1) of a continuous distribution outside its range
//! (each side 1 / (n + 1)), so that is the share expected; with both
//! bounds configured, none is.

use monitor_core::Error;
use monitor_core::detector::Detector;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use serde::{Deserialize, Serialize};

use super::distribution::{default_alpha, default_window};
use super::reference::{ReferenceData, ReferenceFile, file_spec};
use super::share::{Check, ShareDetector, ShareParams, default_share_effect};
use super::window::WindowSize;
use crate::stats::Correction;

/// Config of the `out_of_range` detector: `{ kind = "out_of_range" }`,
/// `{ kind = "out_of_range", min = 0.0 }`, or with any of the keys below.
/// Categorical samples are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfRangeConfig {
    /// The first `reference` samples of each model version are the
    /// reference (default: ten windows).
    #[serde(default)]
    pub reference: Option<usize>,
    /// A file of NDJSON records whose samples of the signal are the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_file: Option<ReferenceFile>,
    /// Current window: samples (default 1000), or a span of event time (`"1h"`).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` samples; absent means tumbling. Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// Significance of the binomial test (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How the alpha is shared by the tests of a model version (default `bonferroni`).
    #[serde(default)]
    pub correction: Correction,
    /// The smallest Cohen's h between the window's share out of range and
    /// the expected share that is drift (default 0.2, Cohen's small effect).
    #[serde(default = "default_share_effect")]
    pub min_effect: f64,
    /// The lowest value in range, instead of the reference's minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest value in range, instead of the reference's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Default for OutOfRangeConfig {
    fn default() -> Self {
        Self {
            reference: None,
            reference_file: None,
            window: default_window(),
            step: None,
            alpha: default_alpha(),
            correction: Correction::default(),
            min_effect: default_share_effect(),
            min: None,
            max: None,
        }
    }
}

impl OutOfRangeConfig {
    fn share_params(&self) -> ShareParams {
        ShareParams {
            reference: self.reference,
            // With both bounds given, no reference is needed.
            no_reference: self.min.is_some() && self.max.is_some(),
            window: self.window,
            step: self.step,
            alpha: self.alpha,
            min_effect: self.min_effect,
        }
    }

    fn reference_bytes(&self) -> usize {
        0
    }

    fn check_bounds(&self) -> Result<(), Error> {
        for (key, v) in [("min", self.min), ("max", self.max)] {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(Error::config(key, "must be a finite number"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            if lo > hi {
                return Err(Error::config("min", format!("must not exceed max = {hi} (got {lo})")));
            }
        }
        Ok(())
    }
}

/// The range, and the share of values expected outside it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Range {
    /// Configured bounds.
    min: Option<f64>,
    max: Option<f64>,
    /// The reference's extremes and size.
    seen_min: Option<f64>,
    seen_max: Option<f64>,
    n: u64,
}

impl Range {
    fn new(min: Option<f64>, max: Option<f64>) -> Self {
        Self { min, max, ..Self::default() }
    }

    fn low(&self) -> f64 {
        self.min.or(self.seen_min).unwrap_or(f64::NEG_INFINITY)
    }

    fn high(&self) -> f64 {
        self.max.or(self.seen_max).unwrap_or(f64::INFINITY)
    }
}

impl Check for Range {
    const KIND: &'static str = "out_of_range";

    fn learn(&mut self, value: SignalValue<'_>) -> bool {
        let Some(x) = value.as_f64() else { return false };
        self.seen_min = Some(self.seen_min.map_or(x, |m| m.min(x)));
        self.seen_max = Some(self.seen_max.map_or(x, |m| m.max(x)));
        self.n += 1;
        true
    }

    fn freeze(&mut self) {}

    fn expected(&self) -> f64 {
        let sides = u64::from(self.min.is_none()) + u64::from(self.max.is_none());
        sides as f64 / (self.n + 1) as f64
    }

    fn hit(&self, value: SignalValue<'_>) -> Option<bool> {
        value.as_f64().map(|x| x < self.low() || x > self.high())
    }

    fn with_reference_file(&self, data: &ReferenceData, signal: &str) -> Option<Self> {
        let sorted = data.signal(signal)?.sorted.as_slice();
        let (first, last) = (sorted.first()?, sorted.last()?);
        Some(Self { seen_min: Some(*first), seen_max: Some(*last), n: sorted.len() as u64, ..self.clone() })
    }

    fn what(&self) -> String {
        format!("outside [{}, {}]", super::fmt_num(self.low()), super::fmt_num(self.high()))
    }

    fn reset(&mut self) {
        *self = Self::new(self.min, self.max);
    }
}

impl DetectorSpec for OutOfRangeConfig {
    fn kind(&self) -> &str {
        "out_of_range"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        self.share_params().state_bytes() + self.reference_bytes()
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        self.share_params().validate()?;
        self.check_bounds()?;
        Ok(())
    }

    fn resolve_paths(&mut self, ctx: &BuildContext) {
        file_spec::resolve(&mut self.reference_file, ctx);
    }

    fn build(&self, signal: &str) -> Box<dyn Detector> {
        Box::new(
            ShareDetector::new(Range::new(self.min, self.max), &self.share_params())
                .with_file(self.reference_file.as_ref(), signal),
        )
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn p_value_family(&self) -> Option<(Correction, f64)> {
        Some((self.correction, self.alpha))
    }

    fn min_effect(&self) -> Option<f64> {
        Some(self.min_effect)
    }

    fn load_references(&self) -> Result<(), Error> {
        file_spec::load(self.reference_file.as_ref())
    }

    fn reference_signals(&self) -> Result<Option<Vec<String>>, Error> {
        file_spec::signals(self.reference_file.as_ref())
    }
}
