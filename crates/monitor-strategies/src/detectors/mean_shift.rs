//! `mean_shift`: the current window's mean against a reference mean.

use monitor_core::Error;
use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::stats::Moments;
use monitor_core::window::Statistic;
use serde::{Deserialize, Serialize};

use super::threshold::fmt_num;
use super::window::{WindowSize, Windowed, validate_window};

/// Config of [`MeanShift`]: `{ kind = "mean_shift", reference = 500, window = 100, threshold = 0.1 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanShiftConfig {
    /// The first `reference` samples of each model version form the
    /// reference (default: the window size; with an event-time window, the
    /// first window).
    #[serde(default)]
    pub reference: Option<usize>,
    /// Current window size: samples (default 100) or a span of event time (`"1h"`).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` samples; absent means tumbling. Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// Drift when |current mean - reference mean| exceeds this.
    pub threshold: f64,
    /// Warning when the difference exceeds this (set it below `threshold`).
    #[serde(default)]
    pub warning: Option<f64>,
}

fn default_window() -> WindowSize {
    WindowSize::Samples(100)
}

impl DetectorSpec for MeanShiftConfig {
    fn kind(&self) -> &str {
        "mean_shift"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        // The reference is a running mean; the window holds its samples twice.
        16 * self.window.samples_or(0) + 2048
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        validate_window(self.window, self.step)?;
        match self.reference {
            Some(0) => return Err(Error::config("reference", "must be at least 1 (got 0)")),
            Some(n) if n > super::MAX_WINDOW => {
                return Err(Error::config("reference", format!("must be at most {} (got {n})", super::MAX_WINDOW)));
            }
            _ => {}
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(Error::config("threshold", format!("must be a non-negative number (got {})", self.threshold)));
        }
        if let Some(w) = self.warning {
            if !(w.is_finite() && w >= 0.0 && w <= self.threshold) {
                return Err(Error::config(
                    "warning",
                    format!("must be between 0 and threshold = {} (got {w})", self.threshold),
                ));
            }
        }
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(MeanShift::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Drift when the mean of the current window moves more than `threshold`
/// away from the mean of the reference (the first samples of the version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeanShift {
    config: MeanShiftConfig,
    reference: Moments,
    /// Whether the reference is complete.
    frozen: bool,
    current: Windowed,
}

impl MeanShift {
    /// A detector from a validated config.
    pub fn new(config: MeanShiftConfig) -> Self {
        let current = Windowed::new(config.window, config.step, Statistic::Mean, false, None);
        Self { config, reference: Moments::new(), frozen: false, current }
    }

    /// Samples in the reference; `None`: the first event-time window.
    fn reference_size(&self) -> Option<u64> {
        self.config.reference.or(self.config.window.samples()).map(|n| n as u64)
    }

    fn judge(&self, mean: f64) -> Option<Assessment> {
        let shift = (mean - self.reference.mean()?).abs();
        let c = &self.config;
        let (status, threshold) = if shift > c.threshold {
            (DriftStatus::Drift, c.threshold)
        } else if let Some(w) = c.warning.filter(|&w| shift > w) {
            (DriftStatus::Warning, w)
        } else {
            (DriftStatus::Stable, c.threshold)
        };
        Some(Assessment { status, statistic: shift, threshold, p_value: None })
    }
}

impl Detector for MeanShift {
    super::serde_state!();

    fn kind(&self) -> &str {
        "mean_shift"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let x = sample.value.as_f64()?;
        if !self.frozen {
            match self.reference_size() {
                Some(n) => {
                    self.reference.add(x);
                    self.frozen = self.reference.count() >= n;
                }
                // The first event-time window is the reference: it ends
                // when a sample of a later window arrives, which starts
                // the first window under test.
                None => {
                    if self.current.push(sample.ts, x).is_some() {
                        self.frozen = true;
                    } else {
                        self.reference.add(x);
                    }
                }
            }
            return None;
        }
        let mean = self.current.push(sample.ts, x)?;
        self.judge(mean)
    }

    fn advance(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<Assessment> {
        let mean = self.current.advance(now);
        if !self.frozen {
            self.frozen = mean.is_some() && self.reference_size().is_none();
            return None;
        }
        self.judge(mean?)
    }

    fn take_closed_windows(&mut self) -> monitor_core::detector::ClosedWindows {
        self.current.take_closed()
    }

    fn reset(&mut self) {
        self.reference = Moments::new();
        self.frozen = false;
        self.current.clear();
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "mean moved by {} from the reference mean {} (limit {})",
            fmt_num(a.statistic),
            fmt_num(self.reference.mean().unwrap_or(f64::NAN)),
            fmt_num(a.threshold)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_core::signal::SignalValue;

    #[test]
    fn flags_a_shift_after_the_reference() {
        let config =
            MeanShiftConfig { reference: Some(4), window: 2.into(), step: None, threshold: 0.5, warning: Some(0.2) };
        config.validate().unwrap_or_else(|e| panic!("{e}"));
        let mut d = MeanShift::new(config);
        let xs = [1.0, 1.0, 1.0, 1.0, 1.1, 1.0, 1.3, 1.4, 2.0, 2.0];
        let got: Vec<_> = xs
            .iter()
            .map(|&x| {
                d.observe(Sample { value: SignalValue::Numeric(x), ts: chrono::DateTime::UNIX_EPOCH }).map(|a| a.status)
            })
            .collect();
        use DriftStatus::*;
        assert_eq!(got, [None, None, None, None, None, Some(Stable), None, Some(Warning), None, Some(Drift)]);
    }

    #[test]
    fn validation_names_keys() {
        let bad = MeanShiftConfig { reference: None, window: 10.into(), step: None, threshold: -1.0, warning: None };
        assert!(bad.validate().map_err(|e| e.to_string()).unwrap_err().contains("`threshold`"));
    }
}
