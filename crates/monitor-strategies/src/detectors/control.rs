//! `cusum` and `ewma`: the two classic control charts, with the in-control
//! mean and standard deviation learned during a warm-up.

use monitor_core::Error;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::stats::Moments;
use serde::{Deserialize, Serialize};

use super::{check_open_unit, check_positive, check_positive_int, fmt_num};

/// The standard deviation a chart uses: the warm-up's, floored so that a
/// constant warm-up still gives finite scores (any later change then alarms).
fn usable_sigma(moments: &Moments) -> (f64, f64) {
    let mean = moments.mean().unwrap_or(0.0);
    let sd = moments.sample_variance().unwrap_or(0.0).sqrt();
    let floor = 1e-9 * mean.abs().max(1.0);
    (mean, sd.max(floor))
}

/// Config of [`Cusum`]: `{ kind = "cusum", warm_up = 100, k = 0.5, h = 5.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CusumConfig {
    /// Samples that estimate the in-control mean and sigma (default 100).
    pub warm_up: u64,
    /// Slack per sample, in sigmas: half the shift to detect (default 0.5).
    pub k: f64,
    /// Decision interval, in sigmas (default 5).
    pub h: f64,
}

impl Default for CusumConfig {
    fn default() -> Self {
        Self { warm_up: 100, k: 0.5, h: 5.0 }
    }
}

impl DetectorSpec for CusumConfig {
    fn kind(&self) -> &str {
        "cusum"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        if self.warm_up < 2 {
            return Err(Error::config(
                "warm_up",
                format!("must be at least 2 to estimate a deviation (got {})", self.warm_up),
            ));
        }
        if !(self.k.is_finite() && self.k >= 0.0) {
            return Err(Error::config("k", format!("must be a non-negative number (got {})", self.k)));
        }
        check_positive("h", self.h)
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Cusum::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Two-sided tabular CUSUM (Page 1954): `S+ = max(0, S+ + z - k)` and
/// `S- = max(0, S- - z - k)` on standardised samples `z`, drift when either
/// exceeds `h`. With `k = 0.5, h = 5` its in-control run length is about 465
/// samples and it finds a one-sigma shift in about 10 (Montgomery, SQC, 9.1).
///
/// After a drift it learns the new level afresh. O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cusum {
    config: CusumConfig,
    warm: Moments,
    mean: f64,
    sigma: f64,
    upper: f64,
    lower: f64,
    drift: bool,
}

impl Default for Cusum {
    fn default() -> Self {
        Self::new(CusumConfig::default())
    }
}

impl Cusum {
    /// A detector from a validated config.
    pub fn new(config: CusumConfig) -> Self {
        Self { config, warm: Moments::new(), mean: 0.0, sigma: 0.0, upper: 0.0, lower: 0.0, drift: false }
    }

    /// The larger of the two cumulative sums, in sigmas.
    pub fn statistic(&self) -> f64 {
        self.upper.max(self.lower)
    }

    /// Feeds one sample; `Drift` when a sum crosses `h`.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        if self.warm.count() < self.config.warm_up {
            self.warm.add(x);
            if self.warm.count() == self.config.warm_up {
                (self.mean, self.sigma) = usable_sigma(&self.warm);
            }
            return DriftStatus::Stable;
        }
        let z = (x - self.mean) / self.sigma;
        self.upper = (self.upper + z - self.config.k).max(0.0);
        self.lower = (self.lower - z - self.config.k).max(0.0);
        self.drift = self.statistic() > self.config.h;
        if self.drift { DriftStatus::Drift } else { DriftStatus::Stable }
    }
}

impl Detector for Cusum {
    super::serde_state!();

    fn kind(&self) -> &str {
        "cusum"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        Some(Assessment { status, statistic: self.statistic(), threshold: self.config.h, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "CUSUM {} sigmas > h = {} (in-control mean {}, sigma {})",
            fmt_num(a.statistic),
            fmt_num(a.threshold),
            fmt_num(self.mean),
            fmt_num(self.sigma)
        )
    }
}

/// Config of [`Ewma`]: `{ kind = "ewma", warm_up = 100, lambda = 0.2, l = 3.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwmaConfig {
    /// Samples that estimate the in-control mean and sigma (default 100).
    pub warm_up: u64,
    /// Weight of the newest sample, in (0, 1) (default 0.2).
    pub lambda: f64,
    /// Width of the control limits, in sigmas of the EWMA (default 3).
    pub l: f64,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        Self { warm_up: 100, lambda: 0.2, l: 3.0 }
    }
}

impl DetectorSpec for EwmaConfig {
    fn kind(&self) -> &str {
        "ewma"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        if self.warm_up < 2 {
            return Err(Error::config(
                "warm_up",
                format!("must be at least 2 to estimate a deviation (got {})", self.warm_up),
            ));
        }
        check_positive_int("warm_up", self.warm_up)?;
        check_open_unit("lambda", self.lambda)?;
        check_positive("l", self.l)
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Ewma::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// EWMA control chart (Roberts 1959): `z = lambda x + (1 - lambda) z`,
/// drift when `z` leaves `mean ± L sigma sqrt(lambda / (2 - lambda) (1 - (1 -
/// lambda)^(2t)))`, the exact time-varying limits (Lucas & Saccucci 1990).
/// `lambda = 0.2, L = 3` is the textbook chart for small shifts.
///
/// After a drift it learns the new level afresh. O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    config: EwmaConfig,
    warm: Moments,
    mean: f64,
    sigma: f64,
    z: f64,
    /// (1 - lambda)^(2t), kept as a product to avoid a `powi` per sample.
    decay: f64,
    score: f64,
    drift: bool,
}

impl Default for Ewma {
    fn default() -> Self {
        Self::new(EwmaConfig::default())
    }
}

impl Ewma {
    /// A detector from a validated config.
    pub fn new(config: EwmaConfig) -> Self {
        Self { config, warm: Moments::new(), mean: 0.0, sigma: 0.0, z: 0.0, decay: 1.0, score: 0.0, drift: false }
    }

    /// |z - mean| in standard deviations of the EWMA.
    pub fn statistic(&self) -> f64 {
        self.score
    }

    /// Feeds one sample; `Drift` when the EWMA leaves its control limits.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        if self.warm.count() < self.config.warm_up {
            self.warm.add(x);
            if self.warm.count() == self.config.warm_up {
                (self.mean, self.sigma) = usable_sigma(&self.warm);
                self.z = self.mean;
            }
            return DriftStatus::Stable;
        }
        let lambda = self.config.lambda;
        self.z = lambda * x + (1.0 - lambda) * self.z;
        self.decay *= (1.0 - lambda) * (1.0 - lambda);
        let sd_z = self.sigma * (lambda / (2.0 - lambda) * (1.0 - self.decay)).sqrt();
        self.score = (self.z - self.mean).abs() / sd_z;
        self.drift = self.score > self.config.l;
        if self.drift { DriftStatus::Drift } else { DriftStatus::Stable }
    }
}

impl Detector for Ewma {
    super::serde_state!();

    fn kind(&self) -> &str {
        "ewma"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        Some(Assessment { status, statistic: self.score, threshold: self.config.l, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "EWMA {} sigmas from the in-control mean {} (limit L = {})",
            fmt_num(a.statistic),
            fmt_num(self.mean),
            fmt_num(a.threshold)
        )
    }
}
