//! `ddm` and `eddm`: the Drift Detection Method (Gama et al. 2004) and its
//! early variant (Baena-García et al. 2006), as River 0.26 runs them.

use monitor_core::Error;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use serde::{Deserialize, Serialize};

use super::{check_open_unit, fmt_num};

/// An error-rate sample as a 0/1 error: values at or above 0.5 are errors, so
/// the `error` signal of a classifier (0.0 or 1.0) passes through unchanged.
fn as_error(x: f64) -> f64 {
    if x >= 0.5 { 1.0 } else { 0.0 }
}

/// Config of [`Ddm`]: `{ kind = "ddm", warm_start = 30, warning_threshold = 2.0, drift_threshold = 3.0 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DdmConfig {
    /// Samples seen before the test may fire (default 30).
    pub warm_start: u64,
    /// Warning at `p_min + warning_threshold * s_min` (default 2).
    pub warning_threshold: f64,
    /// Drift at `p_min + drift_threshold * s_min` (default 3).
    pub drift_threshold: f64,
}

impl Default for DdmConfig {
    fn default() -> Self {
        Self { warm_start: 30, warning_threshold: 2.0, drift_threshold: 3.0 }
    }
}

impl DetectorSpec for DdmConfig {
    fn kind(&self) -> &str {
        "ddm"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        if !(self.warning_threshold.is_finite() && self.warning_threshold > 0.0) {
            return Err(Error::config(
                "warning_threshold",
                format!("must be a positive number (got {})", self.warning_threshold),
            ));
        }
        if !(self.drift_threshold.is_finite() && self.drift_threshold >= self.warning_threshold) {
            return Err(Error::config(
                "drift_threshold",
                format!(
                    "must be a number at least warning_threshold = {} (got {})",
                    self.warning_threshold, self.drift_threshold
                ),
            ));
        }
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Ddm::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// DDM watches an error rate p and its binomial deviation s, and flags a
/// warning (drift) when `p + s` exceeds the best `p_min + 2 s_min`
/// (`+ 3 s_min`) seen so far.
///
/// Input: 1 for an error, 0 for a correct prediction (values ≥ 0.5 count as
/// errors). Same arithmetic as River 0.26; starts afresh after a drift.
/// O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ddm {
    config: DdmConfig,
    n: f64,
    p: f64,
    p_min: f64,
    s_min: f64,
    /// `None` stands for River's initial +infinity.
    ps_min: Option<f64>,
    last: f64,
    warning: bool,
    drift: bool,
}

impl Default for Ddm {
    fn default() -> Self {
        Self::new(DdmConfig::default())
    }
}

impl Ddm {
    /// A detector from a validated config.
    pub fn new(config: DdmConfig) -> Self {
        Self { config, n: 0.0, p: 0.0, p_min: 0.0, s_min: 0.0, ps_min: None, last: 0.0, warning: false, drift: false }
    }

    /// Feeds one sample (1 = error); `Warning` or `Drift` as River reports them.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        let x = as_error(x);
        self.n += 1.0;
        self.p += (1.0 / self.n) * (x - self.p);
        let s = (self.p * (1.0 - self.p) / self.n).sqrt();
        let c = &self.config;
        if self.n > c.warm_start as f64 {
            let ps = self.p + s;
            if self.ps_min.is_none_or(|m| ps <= m) {
                self.p_min = self.p;
                self.s_min = s;
                self.ps_min = Some(self.p_min + self.s_min);
            }
            self.last = ps;
            self.warning = ps > self.p_min + c.warning_threshold * self.s_min;
            if ps > self.p_min + c.drift_threshold * self.s_min {
                self.drift = true;
                self.warning = false;
            }
        }
        status(self.warning, self.drift)
    }
}

fn status(warning: bool, drift: bool) -> DriftStatus {
    if drift {
        DriftStatus::Drift
    } else if warning {
        DriftStatus::Warning
    } else {
        DriftStatus::Stable
    }
}

impl Detector for Ddm {
    super::serde_state!();

    fn kind(&self) -> &str {
        "ddm"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        let k =
            if status == DriftStatus::Warning { self.config.warning_threshold } else { self.config.drift_threshold };
        Some(Assessment { status, statistic: self.last, threshold: self.p_min + k * self.s_min, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!("DDM error rate + deviation {} > p_min + k·s_min = {}", fmt_num(a.statistic), fmt_num(a.threshold))
    }
}

/// Config of [`Eddm`]: `{ kind = "eddm", alpha = 0.95, beta = 0.9 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EddmConfig {
    /// Errors and samples seen before the test may fire (default 30).
    pub warm_start: u64,
    /// Warning when the distance level falls below this (default 0.95).
    pub alpha: f64,
    /// Drift when the distance level falls below this (default 0.9).
    pub beta: f64,
}

impl Default for EddmConfig {
    fn default() -> Self {
        Self { warm_start: 30, alpha: 0.95, beta: 0.9 }
    }
}

impl DetectorSpec for EddmConfig {
    fn kind(&self) -> &str {
        "eddm"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        check_open_unit("alpha", self.alpha)?;
        check_open_unit("beta", self.beta)?;
        if self.alpha < self.beta {
            return Err(Error::config("alpha", format!("must be at least beta = {} (got {})", self.beta, self.alpha)));
        }
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Eddm::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// EDDM watches the distance between consecutive errors: when its mean plus
/// two deviations shrinks below `beta` (`alpha`) of its maximum, errors come
/// closer together, a drift (warning). Better than DDM at slow, gradual change.
///
/// Input as for [`Ddm`]. Same arithmetic as River 0.26; starts afresh after a
/// drift. O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eddm {
    config: EddmConfig,
    n: u64,
    last_error: u64,
    n_errors: u64,
    dist_n: f64,
    dist_mean: f64,
    dist_s: f64,
    p2s_max: f64,
    level: f64,
    warning: bool,
    drift: bool,
}

impl Default for Eddm {
    fn default() -> Self {
        Self::new(EddmConfig::default())
    }
}

impl Eddm {
    /// A detector from a validated config.
    pub fn new(config: EddmConfig) -> Self {
        Self {
            config,
            n: 0,
            last_error: 0,
            n_errors: 0,
            dist_n: 0.0,
            dist_mean: 0.0,
            dist_s: 0.0,
            p2s_max: -1.0,
            level: 1.0,
            warning: false,
            drift: false,
        }
    }

    /// Feeds one sample (1 = error); `Warning` or `Drift` as River reports them.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        self.n += 1;
        if as_error(x) == 1.0 {
            self.n_errors += 1;
            // River's stats.Var: Welford with the mean's own update order.
            let d = (self.n - self.last_error) as f64;
            let mean_old = self.dist_mean;
            self.dist_n += 1.0;
            self.dist_mean += (1.0 / self.dist_n) * (d - self.dist_mean);
            self.dist_s += (d - mean_old) * (d - self.dist_mean);
            let c = &self.config;
            if self.n > c.warm_start {
                let var = if self.dist_n > 1.0 { self.dist_s / (self.dist_n - 1.0) } else { 0.0 };
                let p2s = self.dist_mean + 2.0 * var.powf(0.5);
                if p2s > self.p2s_max {
                    self.p2s_max = p2s;
                } else if self.n_errors > c.warm_start {
                    self.level = p2s / self.p2s_max;
                    if self.level < c.beta {
                        self.drift = true;
                    } else {
                        self.warning = self.level < c.alpha;
                    }
                }
            }
            self.last_error = self.n;
        }
        status(self.warning, self.drift)
    }
}

impl Detector for Eddm {
    super::serde_state!();

    fn kind(&self) -> &str {
        "eddm"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        let threshold = if status == DriftStatus::Warning { self.config.alpha } else { self.config.beta };
        Some(Assessment { status, statistic: self.level, threshold, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "EDDM distance between errors fell to {} of its maximum (< {})",
            fmt_num(a.statistic),
            fmt_num(a.threshold)
        )
    }
}
