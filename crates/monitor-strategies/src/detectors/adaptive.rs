//! `adaptive_threshold`: a windowed statistic against the band its own
//! reference windows span.

use monitor_core::Error;
use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::stats::Moments;
use monitor_core::window::Statistic;
use serde::{Deserialize, Serialize};

use super::reference::{ReferenceFile, file_spec};
use super::window::{WindowSize, Windowed, ewma_of, validate_ewma, validate_window};
use super::{Direction, check_positive, fmt_num};

/// Config of [`AdaptiveThreshold`]:
/// `{ kind = "adaptive_threshold", statistic = "p99", window = 100, k = 3.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveThresholdConfig {
    /// The statistic of each window (default `mean`).
    #[serde(default = "default_statistic")]
    pub statistic: Statistic,
    /// Window size: samples (default 100) or a span of event time (`"1h"`).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` samples; absent means tumbling. Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// Samples of each model version that form the reference, cut into
    /// tumbling windows (default 10 windows; at least 2 windows). Count
    /// windows only: give `reference_windows` for event-time windows.
    #[serde(default)]
    pub reference: Option<usize>,
    /// The number of windows that form the reference band, instead of
    /// `reference` (default 10, at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_windows: Option<usize>,
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
    /// For `statistic = "ewma"`: the weight of the newest sample, in (0, 1]
    /// (default 2 / (window + 1)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// For `statistic = "ewma"`: the half-life in samples, instead of `alpha`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life: Option<f64>,
}

fn default_statistic() -> Statistic {
    Statistic::Mean
}
fn default_window() -> WindowSize {
    WindowSize::Samples(100)
}
fn default_k() -> f64 {
    3.0
}

impl Default for AdaptiveThresholdConfig {
    fn default() -> Self {
        Self {
            statistic: Statistic::Mean,
            window: default_window(),
            step: None,
            reference: None,
            reference_windows: None,
            reference_file: None,
            k: 3.0,
            warning_k: None,
            direction: Direction::Both,
            alpha: None,
            half_life: None,
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
        // Two windows (the reference's, tumbling, and the one under test),
        // each with its samples twice and a sketch at most.
        2 * (16 * self.window.samples_or(0) + 32 * 1024) + 2048
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        validate_window(self.window, self.step)?;
        validate_ewma(self.statistic, self.alpha, self.half_life)?;
        if let Some(r) = self.reference {
            let Some(window) = self.window.samples() else {
                return Err(Error::config(
                    "reference",
                    "is a number of samples: with an event-time window, give `reference_windows`",
                ));
            };
            if self.reference_windows.is_some() {
                return Err(Error::config("reference_windows", "give `reference` or `reference_windows`, not both"));
            }
            if r > super::MAX_WINDOW {
                return Err(Error::config("reference", format!("must be at most {} (got {r})", super::MAX_WINDOW)));
            }
            if r < 2 * window {
                return Err(Error::config(
                    "reference",
                    format!("must hold at least two windows ({}) to estimate a spread (got {r})", 2 * window),
                ));
            }
        }
        if let Some(k) = self.reference_windows {
            if !(2..=MAX_REFERENCE_WINDOWS).contains(&k) {
                return Err(Error::config(
                    "reference_windows",
                    format!("must be between 2 and {MAX_REFERENCE_WINDOWS} (got {k})"),
                ));
            }
            if let Some(n) = self.window.samples() {
                if n.saturating_mul(k) > super::MAX_WINDOW {
                    return Err(Error::config(
                        "reference_windows",
                        format!(
                            "makes a reference of more than {} samples (got {k} windows of {n})",
                            super::MAX_WINDOW
                        ),
                    ));
                }
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

/// The largest `reference_windows`.
pub const MAX_REFERENCE_WINDOWS: usize = 100_000;

impl AdaptiveThresholdConfig {
    /// Windows in the reference band.
    fn reference_windows(&self) -> usize {
        match (self.reference, self.window.samples()) {
            (Some(r), Some(n)) => r / n.max(1),
            _ => self.reference_windows.unwrap_or(10),
        }
    }
}

/// Learns what a windowed statistic normally looks like and flags windows
/// outside the reference mean ± k·σ of that statistic: "p99 latency above
/// its usual range" without picking a number. The reference is the first
/// windows of the model version (tumbling), or a reference file.
///
/// Memory: two windows plus O(1) for the reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdaptiveThreshold {
    config: AdaptiveThresholdConfig,
    /// Statistics of the reference's windows.
    band: Moments,
    done: bool,
    /// The reference's windows: tumbling, whatever the step.
    learning: Windowed,
    window: Windowed,
}

impl AdaptiveThreshold {
    /// A detector from a validated config.
    pub fn new(config: AdaptiveThresholdConfig) -> Self {
        let ewma = ewma_of(config.statistic, config.alpha, config.half_life, config.window);
        let learning = Windowed::new(config.window, None, config.statistic, false, ewma);
        let n = config.window.samples_or(0);
        let step = config.step.unwrap_or(n);
        let sketch = config.statistic.quantile().is_some() && step.saturating_mul(16) < n;
        let window = Windowed::new(config.window, config.step, config.statistic, sketch, ewma);
        Self { config, band: Moments::new(), done: false, learning, window }
    }

    /// A detector whose reference comes from a file when it has the signal.
    pub(crate) fn with_file(config: AdaptiveThresholdConfig, signal: Option<&str>) -> Self {
        let mut d = Self::new(config);
        let data = d.config.reference_file.as_ref().and_then(|f| f.loaded().or_else(|| f.load().ok()));
        if let (Some(data), Some(signal)) = (data, signal) {
            let values = data.signal(signal).map(|s| s.values.as_slice()).unwrap_or(&[]);
            // A file has no event time: its samples are cut into windows of
            // the window's size, or of 100 samples for an event-time window.
            let n = d.config.window.samples_or(100);
            if values.len() >= 2 * n {
                let ewma = ewma_of(d.config.statistic, d.config.alpha, d.config.half_life, d.config.window);
                let mut cut = Windowed::new(WindowSize::Samples(n), None, d.config.statistic, false, ewma);
                for &x in values {
                    if let Some(s) = cut.push(chrono::DateTime::UNIX_EPOCH, x) {
                        d.band.add(s);
                    }
                }
                d.window.take_ewma_from(&mut cut);
                d.done = true;
            } else {
                tracing::warn!(
                    signal,
                    "reference file has under two windows of this signal; using the first samples instead"
                );
            }
        }
        d
    }

    /// The reference band's centre and spread (σ of the window statistic).
    pub fn band(&self) -> Option<(f64, f64)> {
        Some((self.band.mean()?, self.band.sample_variance()?.sqrt()))
    }

    /// Takes one reference window's statistic; true once the band is complete.
    fn learn(&mut self, stat: f64) -> bool {
        self.band.add(stat);
        self.band.count() as usize >= self.config.reference_windows()
    }

    fn judge(&self, stat: f64) -> Option<Assessment> {
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

    /// A window's statistic: into the band while learning, else judged.
    fn closed(&mut self, stat: Option<f64>) -> Option<Assessment> {
        let stat = stat?;
        if self.done {
            return self.judge(stat);
        }
        self.done = self.learn(stat);
        None
    }
}

impl Detector for AdaptiveThreshold {
    super::serde_state!();

    fn kind(&self) -> &str {
        "adaptive_threshold"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let x = sample.value.as_f64()?;
        if self.config.window.time().is_some() {
            // Event-time windows: the first closed windows are the band.
            let stat = self.window.push(sample.ts, x);
            return self.closed(stat);
        }
        if !self.done {
            if let Some(stat) = self.learning.push(sample.ts, x) {
                if self.learn(stat) {
                    self.done = true;
                    self.window.take_ewma_from(&mut self.learning);
                    self.learning.clear();
                }
            }
            return None;
        }
        let stat = self.window.push(sample.ts, x)?;
        self.judge(stat)
    }

    fn advance(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<Assessment> {
        let stat = self.window.advance(now);
        self.closed(stat)
    }

    fn take_closed_windows(&mut self) -> monitor_core::detector::ClosedWindows {
        self.window.take_closed()
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
            "{} over {} is {}, {place} the reference band {} ± {}·{} ({bound} {})",
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
        let config = AdaptiveThresholdConfig { window: 2.into(), reference: Some(20), ..Default::default() };
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
