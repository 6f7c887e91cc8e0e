//! `threshold`: a minimum and/or maximum on a windowed statistic.

use monitor_core::Error;
use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::window::Statistic;
use serde::{Deserialize, Serialize};

use super::window::{WindowSize, Windowed, ewma_of, validate_ewma, validate_window};

/// Config of [`Threshold`]: `{ kind = "threshold", statistic = "p99", window = 100, max = 250.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// The statistic of the window that is compared (default `mean`).
    #[serde(default = "default_statistic")]
    pub statistic: Statistic,
    /// Window size: samples (default 100), or a span of event time
    /// (`"1h"`: tumbling windows of one hour).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` samples once the window is full; absent means
    /// tumbling (`step = window`). Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// For `statistic = "ewma"`: the weight of the newest sample, in (0, 1]
    /// (default 2 / (window + 1)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// For `statistic = "ewma"`: the half-life in samples, instead of `alpha`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life: Option<f64>,
    /// Drift when the statistic falls below this.
    #[serde(default)]
    pub min: Option<f64>,
    /// Drift when the statistic rises above this.
    #[serde(default)]
    pub max: Option<f64>,
    /// Warning when the statistic falls below this (set it above `min`).
    #[serde(default)]
    pub warn_min: Option<f64>,
    /// Warning when the statistic rises above this (set it below `max`).
    #[serde(default)]
    pub warn_max: Option<f64>,
}

fn default_statistic() -> Statistic {
    Statistic::Mean
}

fn default_window() -> WindowSize {
    WindowSize::Samples(100)
}

impl Default for ThresholdConfig {
    fn default() -> Self {
        Self {
            statistic: Statistic::Mean,
            window: default_window(),
            step: None,
            alpha: None,
            half_life: None,
            min: None,
            max: None,
            warn_min: None,
            warn_max: None,
        }
    }
}

impl DetectorSpec for ThresholdConfig {
    fn kind(&self) -> &str {
        "threshold"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        // A count window holds its samples twice (values, extrema) plus a
        // sketch at most; an event-time window a sketch and a few numbers.
        match self.window {
            WindowSize::Samples(n) => 16 * n + 32 * 1024 + 4096,
            WindowSize::Time(_) => 32 * 1024 + 4096,
        }
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        validate_window(self.window, self.step)?;
        validate_ewma(self.statistic, self.alpha, self.half_life)?;
        for (key, v) in [("min", self.min), ("max", self.max), ("warn_min", self.warn_min), ("warn_max", self.warn_max)]
        {
            if v.is_some_and(|x| !x.is_finite()) {
                return Err(Error::config(key, "must be a finite number"));
            }
        }
        if self.min.is_none() && self.max.is_none() {
            return Err(Error::config("min", "a threshold needs `min`, `max` or both"));
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            if lo > hi {
                return Err(Error::config("min", format!("must not exceed max = {hi} (got {lo})")));
            }
        }
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Threshold::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Drift when a windowed statistic leaves `[min, max]`; warning when it leaves
/// `[warn_min, warn_max]`.
///
/// Covers "accuracy below 0.94" (`statistic = "mean"`, `min = 0.94`) and
/// "p99 latency above the SLA" (`statistic = "p99"`, `max = 250`). Quantiles
/// are exact over the window for tumbling windows; with a small step they come
/// from a sketch with 1% relative error, to keep each evaluation cheap.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Threshold {
    config: ThresholdConfig,
    window: Windowed,
}

impl Threshold {
    /// A detector from a validated config.
    pub fn new(config: ThresholdConfig) -> Self {
        let window = Self::window(&config);
        Self { config, window }
    }

    fn window(config: &ThresholdConfig) -> Windowed {
        let n = config.window.samples_or(0);
        let step = config.step.unwrap_or(n);
        let sketch = config.statistic.quantile().is_some() && step.saturating_mul(16) < n;
        let ewma = ewma_of(config.statistic, config.alpha, config.half_life, config.window);
        Windowed::new(config.window, config.step, config.statistic, sketch, ewma)
    }

    fn judge(&self, x: f64) -> Assessment {
        let c = &self.config;
        let below = |bound: Option<f64>| bound.filter(|&b| x < b);
        let above = |bound: Option<f64>| bound.filter(|&b| x > b);
        let (status, threshold) = if let Some(b) = below(c.min).or_else(|| above(c.max)) {
            (DriftStatus::Drift, b)
        } else if let Some(b) = below(c.warn_min).or_else(|| above(c.warn_max)) {
            (DriftStatus::Warning, b)
        } else {
            // Report the nearer drift bound, so a stable verdict still says what it was held to.
            let nearest = match (c.min, c.max) {
                (Some(lo), Some(hi)) => {
                    if (x - lo).abs() <= (hi - x).abs() {
                        lo
                    } else {
                        hi
                    }
                }
                (Some(b), None) | (None, Some(b)) => b,
                (None, None) => f64::NAN,
            };
            (DriftStatus::Stable, nearest)
        };
        Assessment { status, statistic: x, threshold, p_value: None }
    }
}

impl Detector for Threshold {
    super::serde_state!();

    fn kind(&self) -> &str {
        "threshold"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let x = sample.value.as_f64()?;
        let stat = self.window.push(sample.ts, x)?;
        Some(self.judge(stat))
    }

    fn advance(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<Assessment> {
        let stat = self.window.advance(now)?;
        Some(self.judge(stat))
    }

    fn take_closed_windows(&mut self) -> monitor_core::detector::ClosedWindows {
        self.window.take_closed()
    }

    fn reset(&mut self) {
        self.window.clear();
    }

    fn explain(&self, a: &Assessment) -> String {
        let relation = if a.statistic < a.threshold { "<" } else { ">" };
        format!(
            "{} over {} is {} {relation} {} {}",
            self.config.statistic.name(),
            self.config.window,
            fmt_num(a.statistic),
            if a.status == DriftStatus::Warning { "warning bound" } else { "bound" },
            fmt_num(a.threshold),
        )
    }
}

/// Formats a number for messages: up to 4 significant decimals, no noise.
pub(crate) fn fmt_num(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 1e-3 && x.abs() < 1e9) {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_core::signal::SignalValue;

    fn sample(x: f64) -> Sample<'static> {
        Sample { value: SignalValue::Numeric(x), ts: chrono::DateTime::UNIX_EPOCH }
    }

    fn feed(d: &mut Threshold, xs: &[f64]) -> Vec<Option<DriftStatus>> {
        xs.iter().map(|&x| d.observe(sample(x)).map(|a| a.status)).collect()
    }

    #[test]
    fn mean_below_min_is_drift() {
        let mut d = Threshold::new(ThresholdConfig { window: 2.into(), min: Some(0.9), ..ThresholdConfig::default() });
        let got = feed(&mut d, &[0.95, 0.93, 0.85, 0.80, 0.99, 0.97]);
        assert_eq!(
            got,
            [None, Some(DriftStatus::Stable), None, Some(DriftStatus::Drift), None, Some(DriftStatus::Stable)]
        );
    }

    #[test]
    fn p99_above_max_with_warning() {
        let config = ThresholdConfig {
            statistic: Statistic::P99,
            window: 100.into(),
            max: Some(250.0),
            warn_max: Some(200.0),
            ..ThresholdConfig::default()
        };
        let mut d = Threshold::new(config);
        let mut xs: Vec<f64> = (0..98).map(f64::from).collect();
        xs.extend([220.0, 220.0]);
        assert_eq!(feed(&mut d, &xs).last().copied().flatten(), Some(DriftStatus::Warning));
        let mut xs: Vec<f64> = (0..98).map(f64::from).collect();
        xs.extend([300.0, 300.0]);
        let a = xs.iter().filter_map(|&x| d.observe(sample(x))).last();
        assert_eq!(a.map(|a| (a.status, a.statistic, a.threshold)), Some((DriftStatus::Drift, 300.0, 250.0)));
    }

    #[test]
    fn categorical_samples_are_ignored() {
        let mut d = Threshold::new(ThresholdConfig { window: 1.into(), max: Some(1.0), ..ThresholdConfig::default() });
        let s = Sample { value: SignalValue::Categorical("x"), ts: chrono::DateTime::UNIX_EPOCH };
        assert_eq!(d.observe(s), None);
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = ThresholdConfig { window: 0.into(), min: Some(1.0), ..ThresholdConfig::default() };
        assert_eq!(
            bad.validate().map_err(|e| e.to_string()),
            Err("config error at `window`: must be at least 1 (got 0)".into())
        );
        let none = ThresholdConfig::default();
        assert!(none.validate().is_err());
    }
}
