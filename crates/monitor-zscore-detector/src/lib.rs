//! A detector crate written outside `monitor-strategies`: the z-score of a
//! window mean against a warm-up reference.
//!
//! This crate is the worked example of the "A detector" section of
//! `docs/EXTENDING.md`. It depends on `monitor-core` alone (plus serde for
//! its config), implements [`Detector`] and [`DetectorSpec`], and registers
//! the kind `zscore` in a [`DetectorRegistry`], so that a config can say:
//!
//! ```toml
//! [[monitors]]
//! signal = "latency_ms"
//! detector = { kind = "zscore", reference = 500, window = 50, threshold = 3.0 }
//! ```
//!
//! For each (model, version, signal) the first `reference` samples are the
//! reference: their mean μ and sample standard deviation σ, kept with
//! Welford's running update. After it, each tumbling window of `window`
//! samples is tested: its mean m is
//! z = (m − μ) / (σ / √window) standard errors away from μ, and the window
//! is drift when |z| > `threshold` (a warning when |z| > `warning`). The
//! verdict reports |z| as its statistic. Under a stable, roughly normal
//! signal, |z| > 3 happens for 0.27% of windows.
//!
//! A reference with no spread at all (a constant signal) has its σ floored
//! at 1e-9 · max(1, |μ|), so that a window whose mean moved is still drift
//! and a window at μ is not. Categorical samples are ignored. Memory: O(1).
//!
//! # Example
//!
//! ```
//! use monitor_core::detector::{DriftStatus, Sample};
//! use monitor_core::detector_spec::DetectorRegistry;
//! use monitor_core::registry::BuildContext;
//! use monitor_core::signal::SignalValue;
//!
//! let mut registry = DetectorRegistry::new();
//! monitor_zscore_detector::register(&mut registry);
//! let table = serde_json::json!({"kind": "zscore", "reference": 100, "window": 10});
//! let spec = registry.build("monitors[0].detector", &table, &BuildContext::default())?;
//!
//! let mut detector = spec.build("latency_ms");
//! let mut last = None;
//! // 100 reference samples around 10, then a window around 12.
//! for i in 0..110 {
//!     let x = if i < 100 { 9.0 + 2.0 * f64::from(i % 2) } else { 12.0 };
//!     let sample = Sample { value: SignalValue::Numeric(x), ts: chrono::Utc::now() };
//!     last = detector.observe(sample).or(last);
//! }
//! let verdict = last.expect("one window was tested");
//! assert_eq!(verdict.status, DriftStatus::Drift);
//! assert!(verdict.statistic > 6.0);
//! # Ok::<(), monitor_core::Error>(())
//! ```
//!
//! # Feature flags
//!
//! This crate has no optional features.

#![deny(missing_docs)]

use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::{DetectorRegistry, DetectorSpec};
use monitor_core::stats::Moments;
use monitor_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The kind this crate registers.
pub const KIND: &str = "zscore";

/// Registers [`KIND`] in `registry`.
pub fn register(registry: &mut DetectorRegistry) {
    registry.register_config::<ZScoreConfig>(KIND);
}

/// The `zscore` detector table:
/// `{ kind = "zscore", reference = 500, window = 50, threshold = 3.0 }`.
/// Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZScoreConfig {
    /// Samples of each model version that form the reference (default 500).
    pub reference: usize,
    /// Samples in each tested window (default 50).
    pub window: usize,
    /// Drift when |z| exceeds this (default 3).
    pub threshold: f64,
    /// A warning when |z| exceeds this; set it below `threshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
}

impl Default for ZScoreConfig {
    fn default() -> Self {
        Self { reference: 500, window: 50, threshold: 3.0, warning: None }
    }
}

impl DetectorSpec for ZScoreConfig {
    fn kind(&self) -> &str {
        KIND
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn validate(&self) -> Result<()> {
        if self.reference < 2 {
            let message = format!("must be at least 2 to estimate a deviation (got {})", self.reference);
            return Err(Error::config("reference", message));
        }
        if self.window == 0 {
            return Err(Error::config("window", "must be at least 1 (got 0)"));
        }
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(Error::config("threshold", format!("must be a positive number (got {})", self.threshold)));
        }
        if let Some(w) = self.warning {
            if !(w > 0.0 && w < self.threshold) {
                let message = format!("must be between 0 and threshold = {} (got {w})", self.threshold);
                return Err(Error::config("warning", message));
            }
        }
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(ZScore::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The z-score detector: a warm-up reference, then tumbling windows whose
/// mean is tested against it. See the [crate docs](crate) for the test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZScore {
    config: ZScoreConfig,
    /// Mean and variance of the reference, while it fills and after.
    reference: Moments,
    /// The current window's samples, summarised.
    window: Moments,
}

impl ZScore {
    /// A detector from a validated config.
    pub fn new(config: ZScoreConfig) -> Self {
        Self { config, reference: Moments::new(), window: Moments::new() }
    }

    /// The reference's mean and (floored) standard deviation, once complete.
    pub fn reference(&self) -> Option<(f64, f64)> {
        if self.reference.count() < self.config.reference as u64 {
            return None;
        }
        let mean = self.reference.mean()?;
        let sd = self.reference.sample_variance()?.sqrt();
        Some((mean, sd.max(1e-9 * mean.abs().max(1.0))))
    }

    fn judge(&self, z: f64) -> Assessment {
        let c = &self.config;
        let (status, threshold) = if z.abs() > c.threshold {
            (DriftStatus::Drift, c.threshold)
        } else if let Some(w) = c.warning.filter(|&w| z.abs() > w) {
            (DriftStatus::Warning, w)
        } else {
            (DriftStatus::Stable, c.threshold)
        };
        Assessment { status, statistic: z.abs(), threshold, p_value: None }
    }
}

impl Detector for ZScore {
    fn kind(&self) -> &str {
        KIND
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let x = sample.value.as_f64()?;
        let Some((mean, sd)) = self.reference() else {
            self.reference.add(x);
            return None;
        };
        self.window.add(x);
        if self.window.count() < self.config.window as u64 {
            return None;
        }
        let window_mean = self.window.mean()?;
        self.window = Moments::new();
        let standard_error = sd / (self.config.window as f64).sqrt();
        Some(self.judge((window_mean - mean) / standard_error))
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn save_state(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| Error::snapshot(KIND, e.to_string()))
    }

    fn load_state(&mut self, state: serde_json::Value) -> Result<()> {
        *self = serde_json::from_value(state).map_err(|e| Error::snapshot(KIND, e.to_string()))?;
        Ok(())
    }

    fn explain(&self, a: &Assessment) -> String {
        let (mean, sd) = self.reference().unwrap_or((f64::NAN, f64::NAN));
        format!(
            "the mean of the last {} samples is {:.2} standard errors from the reference mean {mean:.4} (sd {sd:.4}); limit {}",
            self.config.window, a.statistic, a.threshold
        )
    }
}

#[cfg(test)]
mod tests {
    use monitor_core::signal::SignalValue;

    use super::*;

    fn sample(value: SignalValue<'_>) -> Sample<'_> {
        Sample { value, ts: chrono::DateTime::UNIX_EPOCH }
    }

    fn feed(d: &mut ZScore, xs: &[f64]) -> Vec<Assessment> {
        xs.iter().filter_map(|&x| d.observe(sample(SignalValue::Numeric(x)))).collect()
    }

    /// A fixed pseudo-random stream in [0, 1).
    fn stream(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn z_matches_a_naive_recomputation() {
        let config = ZScoreConfig { reference: 200, window: 25, threshold: 2.0, warning: Some(1.0) };
        let mut xs = stream(200, 1);
        xs.extend(stream(100, 2).iter().enumerate().map(|(i, x)| x + 0.1 * (i / 25) as f64));
        let got = feed(&mut ZScore::new(config.clone()), &xs);

        let reference = &xs[..200];
        let mean = reference.iter().sum::<f64>() / 200.0;
        let sd = (reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 199.0).sqrt();
        let want: Vec<f64> =
            xs[200..].chunks(25).map(|w| ((w.iter().sum::<f64>() / 25.0 - mean) / (sd / 5.0)).abs()).collect();
        assert_eq!(got.len(), want.len());
        for (a, z) in got.iter().zip(&want) {
            assert!((a.statistic - z).abs() < 1e-9, "{} vs {z}", a.statistic);
            let status = if *z > 2.0 {
                DriftStatus::Drift
            } else if *z > 1.0 {
                DriftStatus::Warning
            } else {
                DriftStatus::Stable
            };
            assert_eq!(a.status, status);
        }
        assert!(got.iter().any(|a| a.status == DriftStatus::Drift), "{got:?}");
    }

    #[test]
    fn a_constant_reference_still_sees_a_moved_mean() {
        let config = ZScoreConfig { reference: 10, window: 5, ..ZScoreConfig::default() };
        let mut d = ZScore::new(config);
        let mut xs = vec![4.0; 15];
        xs.extend([4.5; 5]);
        let got = feed(&mut d, &xs);
        assert_eq!(got.iter().map(|a| a.status).collect::<Vec<_>>(), [DriftStatus::Stable, DriftStatus::Drift]);
        assert!(got.iter().all(|a| a.statistic.is_finite()), "{got:?}");
        assert_eq!(got[0].statistic, 0.0);
    }

    #[test]
    fn categorical_samples_are_ignored() {
        let mut d = ZScore::new(ZScoreConfig { reference: 2, window: 1, ..ZScoreConfig::default() });
        assert_eq!(d.observe(sample(SignalValue::Categorical("DE"))), None);
        assert_eq!(d.reference.count(), 0);
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases = [
            (ZScoreConfig { reference: 1, ..ZScoreConfig::default() }, "reference"),
            (ZScoreConfig { window: 0, ..ZScoreConfig::default() }, "window"),
            (ZScoreConfig { threshold: f64::NAN, ..ZScoreConfig::default() }, "threshold"),
            (ZScoreConfig { warning: Some(3.0), ..ZScoreConfig::default() }, "warning"),
        ];
        for (config, key) in cases {
            let e = config.validate().map(drop).unwrap_err().to_string();
            assert!(e.starts_with(&format!("config error at `{key}`")), "{e}");
        }
        assert!(ZScoreConfig::default().validate().is_ok());
    }
}
