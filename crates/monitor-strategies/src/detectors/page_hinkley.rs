//! `page_hinkley`: the Page-Hinkley test (Page 1954), as River 0.26 runs it.

use monitor_core::Error;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use serde::{Deserialize, Serialize};

use super::{check_non_negative, check_open_unit_closed, fmt_num};

/// Which changes of the mean [`PageHinkley`] looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Increases only.
    Up,
    /// Decreases only.
    Down,
    /// Both (the default).
    #[default]
    Both,
}

/// Config of [`PageHinkley`]: `{ kind = "page_hinkley", threshold = 50.0, mode = "both" }`.
///
/// Defaults are River's: `min_instances = 30`, `delta = 0.005`,
/// `threshold = 50`, `alpha = 0.9999`, `mode = "both"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PageHinkleyConfig {
    /// Samples seen before the test may fire.
    pub min_instances: u64,
    /// Magnitude of change tolerated per sample.
    pub delta: f64,
    /// Drift when the cumulative deviation exceeds this (lambda).
    pub threshold: f64,
    /// Forgetting factor of the cumulative sums, in (0, 1].
    pub alpha: f64,
    /// Look for increases, decreases or both.
    pub mode: Direction,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        Self { min_instances: 30, delta: 0.005, threshold: 50.0, alpha: 1.0 - 0.0001, mode: Direction::Both }
    }
}

impl DetectorSpec for PageHinkleyConfig {
    fn kind(&self) -> &str {
        "page_hinkley"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        check_non_negative("delta", self.delta)?;
        check_non_negative("threshold", self.threshold)?;
        check_open_unit_closed("alpha", self.alpha)
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(PageHinkley::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The Page-Hinkley test: cumulative deviations from the running mean, with
/// drift when they rise (or fall) more than `threshold` from their extreme.
///
/// Same arithmetic as River 0.26, so the same drift indices; like River it
/// starts afresh after a drift. O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    config: PageHinkleyConfig,
    n: f64,
    mean: f64,
    sum_increase: f64,
    sum_decrease: f64,
    /// `None` stands for River's initial +infinity.
    min_increase: Option<f64>,
    max_decrease: f64,
    last_test: f64,
    drift: bool,
}

impl Default for PageHinkley {
    fn default() -> Self {
        Self::new(PageHinkleyConfig::default())
    }
}

impl PageHinkley {
    /// A detector from a validated config.
    pub fn new(config: PageHinkleyConfig) -> Self {
        Self {
            config,
            n: 0.0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: None,
            // River starts the maximum at -1, not at -infinity.
            max_decrease: -1.0,
            last_test: 0.0,
            drift: false,
        }
    }

    /// Feeds one sample; `Drift` when the test fires.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        let c = &self.config;
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
        let dev = x - self.mean;
        self.sum_increase = c.alpha * self.sum_increase + dev - c.delta;
        self.sum_decrease = c.alpha * self.sum_decrease + dev + c.delta;
        let min_inc = match self.min_increase {
            Some(m) if m <= self.sum_increase => m,
            _ => self.sum_increase,
        };
        self.min_increase = Some(min_inc);
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.n >= c.min_instances as f64 {
            let up = self.sum_increase - min_inc;
            let down = self.max_decrease - self.sum_decrease;
            let (fired, test) = match c.mode {
                Direction::Up => (up > c.threshold, up),
                Direction::Down => (down > c.threshold, down),
                Direction::Both => (up > c.threshold || down > c.threshold, up.max(down)),
            };
            self.last_test = test;
            self.drift = fired;
        }
        if self.drift { DriftStatus::Drift } else { DriftStatus::Stable }
    }
}

impl Detector for PageHinkley {
    super::serde_state!();

    fn kind(&self) -> &str {
        "page_hinkley"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        Some(Assessment { status, statistic: self.last_test, threshold: self.config.threshold, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!("Page-Hinkley cumulative deviation {} > threshold {}", fmt_num(a.statistic), fmt_num(a.threshold))
    }
}
