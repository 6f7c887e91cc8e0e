//! `adaptive_threshold`: a windowed statistic against the band its own
//! reference windows span.

use monitor_core::Error;
use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::stats::Moments;
use monitor_core::window::{SlidingWindow, Statistic};
use serde::{Deserialize, Serialize};

use super::cadence::{Cadence, validate_window};
use super::reference::{ReferenceFile, file_spec};
use super::{Direction, check_positive, fmt_num};

/// Config of [`AdaptiveThreshold`]:
/// `{ kind = "adaptive_threshold", statistic = "p99", window = 100, k = 3.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveThresholdConfig {
    /// The statistic of each window (default `mean`).
    #[serde(default = "default_statistic")]
    pub statistic: Statistic,
    /// Window size in samples (default 100).
    #[serde(default = "default_window")]
    pub window: usize,
    /// Evaluate every `step` samples; absent means tumbling.
    #[serde(default)]
    pub step: Option<usize>,
    /// Samples of each model version that form the reference, cut into
    /// tumbling windows (default 10 windows; at least 2 windows).
    #[serde(default)]
    pub reference: Option<usize>,
    /// A file of NDJSON records whose samples, in file order, are the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_file: Option<ReferenceFile>,
    /// Drift when the statistic leaves the reference mean ± k·σ (default 3).
    #[serde(default = "default_k")]
    pub k: f64,
    /// Warning outside mean ± warning_k·σ (set it below `k`).
    #[serde(default)]
    pub warning_k: Option<f64>,
    /// Which side of the band counts (default both).
    #[serde(default)]
    pub direction: Direction,
}

fn default_statistic() -> Statistic {
    Statistic::Mean
}
fn default_window() -> usize {
    100
}
fn default_k() -> f64 {
    3.0
}

impl Default for AdaptiveThresholdConfig {
    fn default() -> Self {
        Self {
            statistic: Statistic::Mean,
            window: 100,
            step: None,
            reference: None,
            reference_file: None,
            k: 3.0,
            warning_k: None,
            direction: Direction::Both,
        }
    }
}

impl DetectorSpec for AdaptiveThresholdConfig {
    fn kind(&self) -> &str {
        "adaptive_threshold"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        16 * self.window + 1024
    }

    fn validate(&self) -> Result<(), Error> {
        validate_window(self.window, self.step)?;
        if let Some(r) = self.reference {
            if r > super::MAX_WINDOW {
                return Err(Error::config("reference", format!("must be at most {} (got {r})", super::MAX_WINDOW)));
            }
            if r < 2 * self.window {
                return Err(Error::config(
                    "reference",
                    format!("must hold at least two windows ({}) to estimate a spread (got {r})", 2 * self.window),
                ));
            }
        }
        check_positive("k", self.k)?;
        if let Some(w) = self.warning_k {
            if !(w.is_finite() && w > 0.0 && w < self.k) {
                return Err(Error::config("warning_k", format!("must be between 0 and k = {} (got {w})", self.k)));
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, ctx: &BuildContext) {
        file_spec::resolve(&mut self.reference_file, ctx);
    }

    fn build(&self, signal: &str) -> Box<dyn Detector> {
        Box::new(AdaptiveThreshold::with_file(self.clone(), Some(signal)))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn load_references(&self) -> Result<(), Error> {
        file_spec::load(self.reference_file.as_ref())
    }

    fn reference_signals(&self) -> Result<Option<Vec<String>>, Error> {
        file_spec::signals(self.reference_file.as_ref())
    }
}

impl AdaptiveThresholdConfig {
    fn reference_size(&self) -> usize {
        self.reference.unwrap_or(10 * self.window)
    }
}

/// Learns what a windowed statistic normally looks like and flags windows
/// outside the reference mean ± k·σ of that statistic: "p99 latency above
/// its usual range" without picking a number. The reference is the first
/// `reference` samples (in tumbling windows), or a reference file.
///
/// Memory: the window plus O(1) for the reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdaptiveThreshold {
    config: AdaptiveThresholdConfig,
    /// Statistics of the reference's windows.
    band: Moments,
    /// Samples taken into the reference so far.
    taken: usize,
    done: bool,
    window: SlidingWindow,
    cadence: Cadence,
}

impl AdaptiveThreshold {
    /// A detector from a validated config.
    pub fn new(config: AdaptiveThresholdConfig) -> Self {
        let window = SlidingWindow::new(config.window);
        let cadence = Cadence::new(config.window, config.step);
        Self { config, band: Moments::new(), taken: 0, done: false, window, cadence }
    }

    /// A detector whose reference comes from a file when it has the signal.
    pub(crate) fn with_file(config: AdaptiveThresholdConfig, signal: Option<&str>) -> Self {
        let mut d = Self::new(config);
        let data = d.config.reference_file.as_ref().and_then(|f| f.loaded().or_else(|| f.load().ok()));
        if let (Some(data), Some(signal)) = (data, signal) {
            let values = data.signal(signal).map(|s| s.values.as_slice()).unwrap_or(&[]);
            if values.len() >= 2 * d.config.window {
                for &x in values {
                    d.learn(x);
                }
                d.finish_reference();
            } else {
                tracing::warn!(
                    signal,
                    "reference file has under two windows of this signal; using the first samples instead"
                );
            }
        }
        d
    }

    fn learn(&mut self, x: f64) {
        self.taken += 1;
        self.window.push(x);
        if self.window.is_full() {
            if let Some(s) = self.window.statistic(self.config.statistic) {
                self.band.add(s);
            }
            self.window.clear();
        }
    }

    fn finish_reference(&mut self) {
        self.done = true;
        self.window.clear();
        let step = self.config.step.unwrap_or(self.config.window);
        if self.config.statistic.quantile().is_some() && step.saturating_mul(16) < self.config.window {
            self.window = SlidingWindow::new(self.config.window).with_sketch();
        }
    }

    /// The reference band's centre and spread (σ of the window statistic).
    pub fn band(&self) -> Option<(f64, f64)> {
        Some((self.band.mean()?, self.band.sample_variance()?.sqrt()))
    }
}

impl Detector for AdaptiveThreshold {
    super::serde_state!();

    fn kind(&self) -> &str {
        "adaptive_threshold"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let x = sample.value.as_f64()?;
        if !self.done {
            self.learn(x);
            if self.taken >= self.config.reference_size() {
                self.finish_reference();
            }
            return None;
        }
        self.window.push(x);
        if !self.cadence.tick(self.window.is_full()) {
            return None;
        }
        let stat = self.window.statistic(self.config.statistic)?;
        let (mean, sd) = self.band()?;
        let c = &self.config;
        let outside = |k: f64| -> Option<f64> {
            let (lo, hi) = (mean - k * sd, mean + k * sd);
            match c.direction {
                Direction::Up => (stat > hi).then_some(hi),
                Direction::Down => (stat < lo).then_some(lo),
                Direction::Both => (stat > hi).then_some(hi).or((stat < lo).then_some(lo)),
            }
        };
        let (status, threshold) = if let Some(b) = outside(c.k) {
            (DriftStatus::Drift, b)
        } else if let Some(b) = c.warning_k.and_then(outside) {
            (DriftStatus::Warning, b)
        } else {
            let b = if stat >= mean { mean + c.k * sd } else { mean - c.k * sd };
            (DriftStatus::Stable, b)
        };
        Some(Assessment { status, statistic: stat, threshold, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn explain(&self, a: &Assessment) -> String {
        let (mean, sd) = self.band().unwrap_or((f64::NAN, f64::NAN));
        let k = if a.status == DriftStatus::Warning {
            self.config.warning_k.unwrap_or(self.config.k)
        } else {
            self.config.k
        };
        // The bound named is the assessment's threshold, the one the event carries.
        let (place, bound) = match a.status {
            DriftStatus::Stable => ("inside", "nearest bound"),
            DriftStatus::Warning | DriftStatus::Drift => ("outside", "bound"),
        };
        format!(
            "{} over {} samples is {}, {place} the reference band {} ± {}·{} ({bound} {})",
            self.config.statistic.name(),
            self.config.window,
            fmt_num(a.statistic),
            fmt_num(mean),
            k,
            fmt_num(sd),
            fmt_num(a.threshold)
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use monitor_core::detector::{Detector, DriftStatus, Sample};
    use monitor_core::signal::SignalValue;

    use super::*;

    fn feed(d: &mut AdaptiveThreshold, xs: &[f64]) -> Option<Assessment> {
        let mut last = None;
        for &x in xs {
            if let Some(a) = d.observe(Sample { value: SignalValue::Numeric(x), ts: Utc::now() }) {
                last = Some(a);
            }
        }
        last
    }

    /// The message says inside or outside as the verdict does, and names
    /// the bound that the event carries as its threshold.
    #[test]
    fn explanations_match_the_verdict_and_the_threshold() {
        let config = AdaptiveThresholdConfig { window: 2, reference: Some(20), ..Default::default() };
        let mut d = AdaptiveThreshold::new(config);
        // Reference windows with means 10 and 12 alternating: mean 11, sd about 1.
        let reference: Vec<f64> = (0..20).map(|i| if (i / 2) % 2 == 0 { 10.0 } else { 12.0 }).collect();
        feed(&mut d, &reference);
        let drift = feed(&mut d, &[40.0, 40.0]).unwrap();
        assert_eq!(drift.status, DriftStatus::Drift);
        let message = d.explain(&drift);
        assert!(message.contains("is 40, outside the reference band"), "{message}");
        assert!(message.ends_with(&format!("(bound {})", fmt_num(drift.threshold))), "{message}");
        let stable = feed(&mut d, &[11.0, 11.0]).unwrap();
        assert_eq!(stable.status, DriftStatus::Stable);
        let message = d.explain(&stable);
        assert!(message.contains("is 11, inside the reference band"), "{message}");
        assert!(message.ends_with(&format!("(nearest bound {})", fmt_num(stable.threshold))), "{message}");
    }
}
