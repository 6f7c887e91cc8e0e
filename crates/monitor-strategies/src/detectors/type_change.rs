//! `type_change`: a signal that flips between numbers and categories. The
//! reference's type is the one most of its samples had; a sample of the
//! other type is a problem, not a sample silently ignored. By default any
//! share of the other type is drift when the reference had none
//! (`min_effect = 0`); a signal whose reference mixed both types alarms
//! when the other type becomes significantly and materially more common.

use monitor_core::Error;
use monitor_core::detector::Detector;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use serde::{Deserialize, Serialize};

use super::distribution::{default_alpha, default_window};
use super::reference::{ReferenceData, ReferenceFile, file_spec};
use super::share::{Check, ShareDetector, ShareParams};
use super::window::WindowSize;
use crate::stats::Correction;

/// Config of the `type_change` detector: `{ kind = "type_change" }`, or
/// with any of the keys below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeChangeConfig {
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
    /// The smallest Cohen's h between the window's share of the other type
    /// and the reference's that is drift (default 0: any, when the
    /// reference had none).
    #[serde(default)]
    pub min_effect: f64,
}

impl Default for TypeChangeConfig {
    fn default() -> Self {
        Self {
            reference: None,
            reference_file: None,
            window: default_window(),
            step: None,
            alpha: default_alpha(),
            correction: Correction::default(),
            min_effect: 0.0,
        }
    }
}

impl TypeChangeConfig {
    fn share_params(&self) -> ShareParams {
        ShareParams {
            reference: self.reference,
            no_reference: false,
            window: self.window,
            step: self.step,
            alpha: self.alpha,
            min_effect: self.min_effect,
        }
    }

    fn reference_bytes(&self) -> usize {
        0
    }
}

/// The reference's counts of each type.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Types {
    numeric: u64,
    categorical: u64,
}

impl Types {
    /// Whether the reference is mostly categorical.
    fn categorical(&self) -> bool {
        self.categorical > self.numeric
    }
}

impl Check for Types {
    const KIND: &'static str = "type_change";

    fn learn(&mut self, value: SignalValue<'_>) -> bool {
        match value {
            SignalValue::Numeric(_) => self.numeric += 1,
            SignalValue::Categorical(_) => self.categorical += 1,
        }
        true
    }

    fn freeze(&mut self) {}

    fn expected(&self) -> f64 {
        self.numeric.min(self.categorical) as f64 / (self.numeric + self.categorical).max(1) as f64
    }

    fn hit(&self, value: SignalValue<'_>) -> Option<bool> {
        Some(matches!(value, SignalValue::Categorical(_)) != self.categorical())
    }

    fn with_reference_file(&self, data: &ReferenceData, signal: &str) -> Option<Self> {
        let s = data.signal(signal)?;
        Some(Self { numeric: s.values.len() as u64, categorical: s.categories.values().sum() })
    }

    fn what(&self) -> String {
        if self.categorical() { "numbers, not categories" } else { "categories, not numbers" }.to_owned()
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

impl DetectorSpec for TypeChangeConfig {
    fn kind(&self) -> &str {
        "type_change"
    }

    fn accepts_categories(&self) -> bool {
        true
    }

    fn state_bytes(&self) -> usize {
        self.share_params().state_bytes() + self.reference_bytes()
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        self.share_params().validate()?;
        Ok(())
    }

    fn resolve_paths(&mut self, ctx: &BuildContext) {
        file_spec::resolve(&mut self.reference_file, ctx);
    }

    fn build(&self, signal: &str) -> Box<dyn Detector> {
        Box::new(
            ShareDetector::new(Types::default(), &self.share_params()).with_file(self.reference_file.as_ref(), signal),
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
