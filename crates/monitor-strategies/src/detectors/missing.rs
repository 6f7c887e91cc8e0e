//! `missing`: the share of records that lack a feature (absent, or null),
//! against the reference's share. It watches the `quality.missing.<name>`
//! signals, 1.0 for a record without the feature and 0.0 for one with it,
//! which the monitor derives for every feature a model version has sent.

use monitor_core::Error;
use monitor_core::detector::Detector;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::signal::{MISSING_PREFIX, SignalValue};
use serde::{Deserialize, Serialize};

use super::distribution::{default_alpha, default_window};
use super::reference::{ReferenceData, ReferenceFile, file_spec};
use super::share::{Check, ShareDetector, ShareParams, default_share_effect};
use super::window::WindowSize;
use crate::stats::Correction;

/// Config of the `missing` detector, on `quality.missing.*`:
/// `{ kind = "missing" }`, or with any of the keys below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingConfig {
    /// The first `reference` records (since the feature was first seen)
    /// give the reference's share (default: ten windows).
    #[serde(default)]
    pub reference: Option<usize>,
    /// A file of NDJSON records whose share of records without the feature
    /// is the reference's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_file: Option<ReferenceFile>,
    /// Current window: records (default 1000), or a span of event time (`"1h"`).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` records; absent means tumbling. Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// Significance of the binomial test (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How the alpha is shared by the tests of a model version (default `bonferroni`).
    #[serde(default)]
    pub correction: Correction,
    /// The smallest Cohen's h between the window's share and the
    /// reference's that is drift (default 0.2, Cohen's small effect).
    #[serde(default = "default_share_effect")]
    pub min_effect: f64,
}

impl Default for MissingConfig {
    fn default() -> Self {
        Self {
            reference: None,
            reference_file: None,
            window: default_window(),
            step: None,
            alpha: default_alpha(),
            correction: Correction::default(),
            min_effect: default_share_effect(),
        }
    }
}

impl MissingConfig {
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
}

/// The share of records without the feature.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Missing {
    missing: u64,
    records: u64,
}

impl Check for Missing {
    const KIND: &'static str = "missing";

    fn learn(&mut self, value: SignalValue<'_>) -> bool {
        let Some(x) = value.as_f64() else { return false };
        self.records += 1;
        self.missing += u64::from(x >= 0.5);
        true
    }

    fn freeze(&mut self) {}

    fn expected(&self) -> f64 {
        self.missing as f64 / self.records.max(1) as f64
    }

    fn hit(&self, value: SignalValue<'_>) -> Option<bool> {
        value.as_f64().map(|x| x >= 0.5)
    }

    fn with_reference_file(&self, data: &ReferenceData, signal: &str) -> Option<Self> {
        let feature = signal.strip_prefix("quality.")?.strip_prefix(MISSING_PREFIX)?;
        let s = data.signal(&format!("features.{feature}"))?;
        let present = s.values.len() as u64 + s.categories.values().sum::<u64>();
        let records = data.records();
        Some(Self { missing: records.saturating_sub(present), records })
    }

    fn what(&self) -> String {
        "records without the feature (absent or null)".to_owned()
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

impl DetectorSpec for MissingConfig {
    fn kind(&self) -> &str {
        "missing"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        self.share_params().state_bytes()
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        self.share_params().validate()
    }

    fn resolve_paths(&mut self, ctx: &BuildContext) {
        file_spec::resolve(&mut self.reference_file, ctx);
    }

    fn build(&self, signal: &str) -> Box<dyn Detector> {
        Box::new(
            ShareDetector::new(Missing::default(), &self.share_params())
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
        // The file's features, as the missing-value signals they give.
        Ok(file_spec::signals(self.reference_file.as_ref())?.map(|names| {
            names
                .iter()
                .filter_map(|n| n.strip_prefix("features."))
                .map(|f| format!("quality.{MISSING_PREFIX}{f}"))
                .collect()
        }))
    }
}
