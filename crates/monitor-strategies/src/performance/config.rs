//! `[[performance]]` and `[[reconstruction]]`: what is computed per window,
//! with the bounds of every size.

use monitor_core::Error;
use monitor_core::record::Value;
use monitor_core::signal::Signal;
use serde::{Deserialize, Serialize};

/// The largest `window`, in records.
pub const MAX_WINDOW: usize = 1_000_000;
/// The largest `reference`, in records.
pub const MAX_REFERENCE: usize = 1_000_000;
/// The largest `open_windows`.
pub const MAX_OPEN_WINDOWS: usize = 64;
/// The most features of a reconstruction.
pub const MAX_FEATURES: usize = 256;
/// The most values a reconstruction's reference holds (reference × features).
pub const MAX_REFERENCE_VALUES: usize = 20_000_000;
/// The largest `max_categories`.
pub const MAX_CATEGORIES: usize = 10_000;
/// The most classes of a multiclass model.
pub const MAX_CLASSES: usize = 1_000;

/// What the model predicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Two classes, one of them `positive`.
    #[default]
    Binary,
    /// Several classes: macro averages.
    Multiclass,
    /// A number.
    Regression,
}

/// How CBPE calibrates the scores on the reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// Isotonic regression (NannyML's default calibrator).
    #[default]
    Isotonic,
    /// The scores are taken as probabilities as they are.
    None,
}

/// `estimate = { reference = 50000 }`: CBPE, fitted on the first
/// `reference` labelled predictions of each model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimateSpec {
    /// Labelled predictions the calibration is fitted on; its windows give
    /// the `estimated.*` signals' reference values.
    pub reference: usize,
    /// `isotonic` (default) or `none`.
    #[serde(default)]
    pub calibration: Calibration,
}

/// One `[[performance]]` entry: the `perf.*` signals from labels and,
/// with `estimate`, the `estimated.*` signals without them.
///
/// ```toml
/// [[performance]]
/// problem = "binary"
/// positive = 1
/// score = "metrics.y_pred_proba"
/// window = 5000
/// estimate = { reference = 50000 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSpec {
    /// Only these models; every model when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// `binary` (default), `multiclass` or `regression`.
    #[serde(default)]
    pub problem: Problem,
    /// Predictions per window (default 1000).
    #[serde(default = "default_window")]
    pub window: usize,
    /// The positive class of a binary model (default 1): a label or
    /// prediction equal to it, as a number or a string, is positive.
    #[serde(default = "default_positive")]
    pub positive: Value,
    /// Where the score is, as a signal name (`metrics.<name>` or
    /// `features.<name>`). Absent: a numeric prediction is the score, and
    /// its class is `score >= threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<Signal>,
    /// The score at and above which a numeric prediction is positive (default 0.5).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// The share of a window's predictions that must be labelled before its
    /// `perf.*` values are given to detectors (default 1: all of them).
    #[serde(default = "default_min_labels")]
    pub min_labels: f64,
    /// Closed windows kept waiting for late labels (default 4); a window
    /// pushed out before `min_labels` is reached gives no `perf.*` values.
    #[serde(default = "default_open_windows")]
    pub open_windows: usize,
    /// CBPE: performance estimated without labels (binary models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<EstimateSpec>,
}

fn default_window() -> usize {
    1000
}
fn default_positive() -> Value {
    Value::Number(1.0)
}
fn default_threshold() -> f64 {
    0.5
}
fn default_min_labels() -> f64 {
    1.0
}
fn default_open_windows() -> usize {
    4
}

/// One `[[reconstruction]]` entry: `multivariate.reconstruction_error`.
///
/// ```toml
/// [[reconstruction]]
/// features = ["car_value", "salary_range", "loan_length"]
/// window = 5000
/// reference = 50000
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconstructionSpec {
    /// Only these models; every model when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// The features, by name; absent: those of the version's first record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Records per window (default 1000).
    #[serde(default = "default_window")]
    pub window: usize,
    /// The first records of each model version that the reconstruction is
    /// fitted on, cut into windows for the thresholds (default 10 windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<usize>,
    /// The share of the variance the components keep (default 0.65).
    #[serde(default = "default_variance")]
    pub variance: f64,
    /// Categories per feature told apart; the others share one code (default 100).
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
}

fn default_variance() -> f64 {
    0.65
}
fn default_max_categories() -> usize {
    100
}

fn in_range(key: &str, v: usize, lo: usize, hi: usize) -> Result<(), Error> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be between {lo} and {hi} (got {v})")))
    }
}

impl PerformanceSpec {
    /// Checks every key against its bounds.
    pub fn validate(&self) -> Result<(), Error> {
        in_range("window", self.window, 1, MAX_WINDOW)?;
        in_range("open_windows", self.open_windows, 1, MAX_OPEN_WINDOWS)?;
        if !(self.min_labels > 0.0 && self.min_labels <= 1.0) {
            return Err(Error::config("min_labels", format!("must be in (0, 1] (got {})", self.min_labels)));
        }
        if !self.threshold.is_finite() {
            return Err(Error::config("threshold", "must be finite"));
        }
        if let Some(s) = &self.score {
            if !matches!(s, Signal::Metric(_) | Signal::Feature(_)) {
                return Err(Error::config("score", format!("must be a metrics.<name> or features.<name> (got {s})")));
            }
        }
        if self.models.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::config("models", "must name at least one model when given"));
        }
        if let Some(e) = &self.estimate {
            if self.problem != Problem::Binary {
                return Err(Error::config("estimate", "is for binary classification (problem = \"binary\")"));
            }
            let (lo, hi) = (2 * self.window, MAX_REFERENCE);
            if !(lo..=hi).contains(&e.reference) {
                return Err(Error::config(
                    "estimate.reference",
                    format!(
                        "must be between {lo} and {hi} (got {}): two windows at least, to spread the thresholds",
                        e.reference
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether this entry applies to `model`.
    pub fn applies_to(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|ms| ms.iter().any(|m| m == model))
    }

    /// The bound of a version's state under this entry, counted in
    /// `limits.max_state_mib`: the open windows (each labelled prediction's
    /// score, each unlabelled prediction's id), the reference and its
    /// calibration map, the current window's scores.
    pub fn state_bytes(&self) -> usize {
        let per_window = self.window * (16 + 48);
        let reference = self.estimate.as_ref().map_or(0, |e| e.reference * (24 + 16) + self.window * 8);
        let classes = if self.problem == Problem::Multiclass { MAX_CLASSES * 64 + 16 * 4096 } else { 0 };
        (self.open_windows + 1) * per_window + reference + classes + 4096
    }
}

impl ReconstructionSpec {
    /// The reference size: `reference`, or 10 windows.
    pub fn reference(&self) -> usize {
        self.reference.unwrap_or(10 * self.window)
    }

    /// Checks every key against its bounds.
    pub fn validate(&self) -> Result<(), Error> {
        in_range("window", self.window, 1, MAX_WINDOW)?;
        in_range("reference", self.reference(), 2 * self.window, MAX_REFERENCE).map_err(|e| {
            match (e, self.reference) {
                (Error::Config { key, message }, None) => Error::config(
                    key,
                    format!("{message}; it is 10 windows when not set, so set it or a smaller window"),
                ),
                (e, _) => e,
            }
        })?;
        in_range("max_categories", self.max_categories, 2, MAX_CATEGORIES)?;
        if !(self.variance > 0.0 && self.variance < 1.0) {
            return Err(Error::config("variance", format!("must be in (0, 1) (got {})", self.variance)));
        }
        if let Some(f) = &self.features {
            in_range("features", f.len(), 1, MAX_FEATURES)?;
        }
        if self.reference().saturating_mul(self.features_bound()) > MAX_REFERENCE_VALUES {
            return Err(Error::config(
                "reference",
                format!(
                    "holds {} records of {} features, more than {MAX_REFERENCE_VALUES} values",
                    self.reference(),
                    self.features_bound()
                ),
            ));
        }
        if self.models.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::config("models", "must name at least one model when given"));
        }
        Ok(())
    }

    fn features_bound(&self) -> usize {
        self.features.as_ref().map_or(MAX_FEATURES.min(64), Vec::len)
    }

    /// Whether this entry applies to `model`.
    pub fn applies_to(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|ms| ms.iter().any(|m| m == model))
    }

    /// The bound of a version's state: the reference while it is
    /// collected (9 bytes a value and the dictionaries), then the fit.
    pub fn state_bytes(&self) -> usize {
        let d = self.features_bound();
        self.reference() * d * 16 + d * self.max_categories * 96 + d * d * 16 + 4096
    }
}
