//! Signals: the named streams of numbers or categories that detectors watch.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of a signal, owned.
///
/// Written as `latency_ms`, `prediction`, `error`, `features.<name>`,
/// `metrics.<name>`, `quality.<name>`, `perf.<metric>`, `estimated.<metric>`
/// or `multivariate.<name>` in config and output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// The request latency in milliseconds.
    LatencyMs,
    /// The model's prediction (a score, a regression value or a class).
    Prediction,
    /// Classification: 1.0 when prediction != label, else 0.0. Regression: |prediction - label|.
    Error,
    /// An input feature, `features.<name>`.
    Feature(String),
    /// A quality metric reported by the producer, `metrics.<name>`.
    Metric(String),
    /// A data-quality signal the monitor derives from the records of a model
    /// version, `quality.<name>`: `quality.missing.<feature>` (1.0 when a
    /// record lacks the feature or gives it as null, else 0.0) and
    /// `quality.no_data` (the empty event-time windows a version's detectors
    /// closed).
    Quality(String),
    /// A model's performance over a window, from its labels: `perf.<metric>`
    /// (`accuracy`, `precision`, `recall`, `f1`, `specificity`, `roc_auc`;
    /// `mae`, `rmse`, `mape` for regression).
    Perf(String),
    /// A model's performance over a window estimated without labels
    /// (confidence-based), `estimated.<metric>`, with `perf`'s metric names.
    Estimated(String),
    /// A drift score of all features together over a window,
    /// `multivariate.<name>` (`multivariate.reconstruction_error`).
    Multivariate(String),
}

impl Signal {
    /// The borrowed form of this name.
    pub fn as_ref(&self) -> SignalRef<'_> {
        match self {
            Self::LatencyMs => SignalRef::LatencyMs,
            Self::Prediction => SignalRef::Prediction,
            Self::Error => SignalRef::Error,
            Self::Feature(n) => SignalRef::Feature(n),
            Self::Metric(n) => SignalRef::Metric(n),
            Self::Quality(n) => SignalRef::Quality(n),
            Self::Perf(n) => SignalRef::Perf(n),
            Self::Estimated(n) => SignalRef::Estimated(n),
            Self::Multivariate(n) => SignalRef::Multivariate(n),
        }
    }
}

/// The name of a signal, borrowed from a record; [`Signal`] is its owned form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalRef<'a> {
    /// `latency_ms`
    LatencyMs,
    /// `prediction`
    Prediction,
    /// `error`
    Error,
    /// `features.<name>`
    Feature(&'a str),
    /// `metrics.<name>`
    Metric(&'a str),
    /// `quality.<name>`
    Quality(&'a str),
    /// `perf.<metric>`
    Perf(&'a str),
    /// `estimated.<metric>`
    Estimated(&'a str),
    /// `multivariate.<name>`
    Multivariate(&'a str),
}

impl SignalRef<'_> {
    /// The owned form of this name.
    pub fn to_owned(self) -> Signal {
        match self {
            Self::LatencyMs => Signal::LatencyMs,
            Self::Prediction => Signal::Prediction,
            Self::Error => Signal::Error,
            Self::Feature(n) => Signal::Feature(n.to_owned()),
            Self::Metric(n) => Signal::Metric(n.to_owned()),
            Self::Quality(n) => Signal::Quality(n.to_owned()),
            Self::Perf(n) => Signal::Perf(n.to_owned()),
            Self::Estimated(n) => Signal::Estimated(n.to_owned()),
            Self::Multivariate(n) => Signal::Multivariate(n.to_owned()),
        }
    }
}

impl fmt::Display for SignalRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LatencyMs => f.write_str("latency_ms"),
            Self::Prediction => f.write_str("prediction"),
            Self::Error => f.write_str("error"),
            Self::Feature(n) => write!(f, "features.{n}"),
            Self::Metric(n) => write!(f, "metrics.{n}"),
            Self::Quality(n) => write!(f, "quality.{n}"),
            Self::Perf(n) => write!(f, "perf.{n}"),
            Self::Estimated(n) => write!(f, "estimated.{n}"),
            Self::Multivariate(n) => write!(f, "multivariate.{n}"),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

/// The name, after `quality.`, of the signal of a feature's missing values:
/// `missing.<feature>` (so the signal is `quality.missing.<feature>`).
pub fn missing_quality_name(feature: &str) -> String {
    format!("{MISSING_PREFIX}{feature}")
}

/// The prefix of [`missing_quality_name`].
pub const MISSING_PREFIX: &str = "missing.";

/// The name, after `quality.`, of a model version's empty-window signal
/// (`quality.no_data`).
pub const NO_DATA: &str = "no_data";

/// The error of parsing a signal name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signal `{0}`: expected latency_ms, prediction, error, features.<name>, metrics.<name>, quality.<name>, perf.<metric>, estimated.<metric> or multivariate.<name>"
)]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "latency_ms" => Ok(Self::LatencyMs),
            "prediction" => Ok(Self::Prediction),
            "error" => Ok(Self::Error),
            _ => {
                if let Some(name) = s.strip_prefix("features.").filter(|n| !n.is_empty()) {
                    Ok(Self::Feature(name.to_owned()))
                } else if let Some(name) = s.strip_prefix("metrics.").filter(|n| !n.is_empty()) {
                    Ok(Self::Metric(name.to_owned()))
                } else if let Some(name) = s.strip_prefix("quality.").filter(|n| !n.is_empty()) {
                    Ok(Self::Quality(name.to_owned()))
                } else if let Some(name) = s.strip_prefix("perf.").filter(|n| !n.is_empty()) {
                    Ok(Self::Perf(name.to_owned()))
                } else if let Some(name) = s.strip_prefix("estimated.").filter(|n| !n.is_empty()) {
                    Ok(Self::Estimated(name.to_owned()))
                } else if let Some(name) = s.strip_prefix("multivariate.").filter(|n| !n.is_empty()) {
                    Ok(Self::Multivariate(name.to_owned()))
                } else {
                    Err(UnknownSignal(s.to_owned()))
                }
            }
        }
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One observation of a signal: a number or a category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignalValue<'a> {
    /// A finite number.
    Numeric(f64),
    /// A category label.
    Categorical(&'a str),
}

impl SignalValue<'_> {
    /// The number, if this is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Numeric(x) => Some(*x),
            Self::Categorical(_) => None,
        }
    }

    /// The category, if this is categorical.
    pub fn as_category(&self) -> Option<&str> {
        match self {
            Self::Numeric(_) => None,
            Self::Categorical(c) => Some(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "latency_ms",
            "prediction",
            "error",
            "features.amount",
            "metrics.f1_score",
            "quality.missing.amount",
            "perf.roc_auc",
            "estimated.f1",
            "multivariate.reconstruction_error",
        ] {
            let signal: Signal = name.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(signal.to_string(), name);
            assert_eq!(signal.as_ref().to_owned(), signal);
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        for name in ["latency", "features.", "metrics", "quality.", "perf.", "estimated.", "multivariate.", ""] {
            assert!(name.parse::<Signal>().is_err(), "{name}");
        }
    }
}
