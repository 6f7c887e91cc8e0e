//! `hddm_a` and `hddm_w`: drift detection with Hoeffding's and McDiarmid's
//! bounds (Frías-Blanco et al. 2015), as River 0.26 runs them.

use monitor_core::Error;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use serde::{Deserialize, Serialize};

use super::{check_open_unit, fmt_num};

fn status(warning: bool, drift: bool) -> DriftStatus {
    if drift {
        DriftStatus::Drift
    } else if warning {
        DriftStatus::Warning
    } else {
        DriftStatus::Stable
    }
}

fn check_confidences(drift: f64, warning: f64) -> Result<(), Error> {
    check_open_unit("drift_confidence", drift)?;
    check_open_unit("warning_confidence", warning)?;
    if warning < drift {
        return Err(Error::config(
            "warning_confidence",
            format!("must be at least drift_confidence = {drift} (got {warning})"),
        ));
    }
    Ok(())
}

/// Config of [`HddmA`]: `{ kind = "hddm_a", drift_confidence = 0.001, warning_confidence = 0.005 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HddmAConfig {
    /// Confidence level of the drift test (default 0.001).
    pub drift_confidence: f64,
    /// Confidence level of the warning test (default 0.005).
    pub warning_confidence: f64,
    /// Also flag decreases of the mean (default false: only increases, i.e.
    /// a rising error rate).
    pub two_sided_test: bool,
}

impl Default for HddmAConfig {
    fn default() -> Self {
        Self { drift_confidence: 0.001, warning_confidence: 0.005, two_sided_test: false }
    }
}

impl DetectorSpec for HddmAConfig {
    fn kind(&self) -> &str {
        "hddm_a"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        check_confidences(self.drift_confidence, self.warning_confidence)
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(HddmA::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A running mean with River's update order.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct Mean {
    n: f64,
    mean: f64,
}

impl Mean {
    fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
    }
}

/// HDDM_A compares the mean since the start with the mean up to the best cut
/// point, bounding the difference with Hoeffding's inequality (A-test).
///
/// Input: values in [0, 1] (an error rate's 0/1, a bounded score); other
/// values are clamped. Same arithmetic as River 0.26; starts afresh after a
/// drift. O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HddmA {
    config: HddmAConfig,
    z: Mean,
    x_min: Mean,
    x_max: Mean,
    last: (f64, f64),
    warning: bool,
    drift: bool,
}

impl Default for HddmA {
    fn default() -> Self {
        Self::new(HddmAConfig::default())
    }
}

impl HddmA {
    /// A detector from a validated config.
    pub fn new(config: HddmAConfig) -> Self {
        Self {
            config,
            z: Mean::default(),
            x_min: Mean::default(),
            x_max: Mean::default(),
            last: (0.0, 0.0),
            warning: false,
            drift: false,
        }
    }

    fn hoeffding(&self, n: f64) -> f64 {
        (1.0 / (2.0 * n) * (1.0 / self.config.drift_confidence).ln()).sqrt()
    }

    /// Whether `hi - lo` exceeds the bound for a cut at `cut.n` of `z.n`.
    fn changed(&self, cut: Mean, diff: f64, confidence: f64) -> (bool, f64) {
        if cut.n == self.z.n {
            return (false, f64::INFINITY);
        }
        let m = (self.z.n - cut.n) / cut.n * (1.0 / self.z.n);
        let eps = (m / 2.0 * (2.0 / confidence).ln()).sqrt();
        (diff >= eps, eps)
    }

    /// Feeds one sample in [0, 1]; `Warning` or `Drift` as River reports them.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        let x = x.clamp(0.0, 1.0);
        self.z.update(x);
        if self.x_min.n == 0.0 {
            self.x_min = self.z;
        }
        if self.x_max.n == 0.0 {
            self.x_max = self.z;
        }
        let eps_z = self.hoeffding(self.z.n);
        let eps_x = self.hoeffding(self.x_min.n);
        if self.x_min.mean + eps_x >= self.z.mean + eps_z {
            self.x_min = self.z;
        }
        let eps_x = self.hoeffding(self.x_max.n);
        if self.x_max.mean - eps_x <= self.z.mean - eps_z {
            self.x_max = self.z;
        }
        let c = &self.config;
        let incr = self.z.mean - self.x_min.mean;
        let (drift_up, eps_drift) = self.changed(self.x_min, incr, c.drift_confidence);
        let (warn_up, eps_warn) = self.changed(self.x_min, incr, c.warning_confidence);
        self.last = (incr, eps_drift);
        if drift_up {
            self.warning = false;
            self.drift = true;
        } else if warn_up {
            self.warning = true;
            self.drift = false;
            self.last = (incr, eps_warn);
        } else {
            self.warning = false;
            self.drift = false;
        }
        if c.two_sided_test {
            let decr = self.x_max.mean - self.z.mean;
            let (drift_down, eps_drift) = self.changed(self.x_max, decr, c.drift_confidence);
            if drift_down {
                self.drift = true;
                self.last = (decr, eps_drift);
            } else if self.changed(self.x_max, decr, c.warning_confidence).0 {
                self.warning = true;
            }
        }
        status(self.warning, self.drift)
    }
}

impl Detector for HddmA {
    super::serde_state!();

    fn kind(&self) -> &str {
        "hddm_a"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        Some(Assessment {
            status,
            statistic: self.last.0,
            threshold: if self.last.1.is_finite() { self.last.1 } else { 0.0 },
            p_value: None,
        })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "HDDM_A mean moved by {} from its best cut point (Hoeffding bound {})",
            fmt_num(a.statistic),
            fmt_num(a.threshold)
        )
    }
}

/// Config of [`HddmW`]: `{ kind = "hddm_w", drift_confidence = 0.001, warning_confidence = 0.005, lambda = 0.05 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HddmWConfig {
    /// Confidence level of the drift test (default 0.001).
    pub drift_confidence: f64,
    /// Confidence level of the warning test (default 0.005).
    pub warning_confidence: f64,
    /// Weight of the newest sample in the EWMA (default 0.05).
    pub lambda: f64,
    /// Also flag decreases of the mean (default false).
    pub two_sided_test: bool,
}

impl Default for HddmWConfig {
    fn default() -> Self {
        Self { drift_confidence: 0.001, warning_confidence: 0.005, lambda: 0.05, two_sided_test: false }
    }
}

impl DetectorSpec for HddmWConfig {
    fn kind(&self) -> &str {
        "hddm_w"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        512
    }

    fn validate(&self) -> Result<(), Error> {
        check_confidences(self.drift_confidence, self.warning_confidence)?;
        check_open_unit("lambda", self.lambda)
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(HddmW::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// An EWMA with its independent-bounded-condition sum (River's `SampleInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct SampleInfo {
    ewma: f64,
    init: bool,
    ibc: f64,
}

impl SampleInfo {
    const NEW: Self = Self { ewma: 0.0, init: false, ibc: 1.0 };

    fn update(&mut self, x: f64, lambda: f64) {
        self.ewma = if self.init { lambda * x + (1.0 - lambda) * self.ewma } else { x };
        self.init = true;
        let c = (1.0 - lambda) * (1.0 - lambda);
        self.ibc = lambda * lambda + c * self.ibc;
    }
}

/// HDDM_W compares exponentially weighted means before and after the best
/// cut point, bounding the difference with McDiarmid's inequality (W-test):
/// quicker than HDDM_A on abrupt change, with a forgetting factor `lambda`.
///
/// Input as for [`HddmA`]. Same arithmetic as River 0.26; starts afresh
/// after a drift. O(1) memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HddmW {
    config: HddmWConfig,
    total: SampleInfo,
    s1_incr: SampleInfo,
    s2_incr: SampleInfo,
    s1_decr: SampleInfo,
    s2_decr: SampleInfo,
    /// `None` stands for River's initial +infinity (increase) and -infinity (decrease).
    incr_cut: Option<f64>,
    decr_cut: Option<f64>,
    last: (f64, f64),
    warning: bool,
    drift: bool,
}

impl Default for HddmW {
    fn default() -> Self {
        Self::new(HddmWConfig::default())
    }
}

impl HddmW {
    /// A detector from a validated config.
    pub fn new(config: HddmWConfig) -> Self {
        Self {
            config,
            total: SampleInfo::NEW,
            s1_incr: SampleInfo::NEW,
            s2_incr: SampleInfo::NEW,
            s1_decr: SampleInfo::NEW,
            s2_decr: SampleInfo::NEW,
            incr_cut: None,
            decr_cut: None,
            last: (0.0, 0.0),
            warning: false,
            drift: false,
        }
    }

    fn bound(ibc: f64, confidence: f64) -> f64 {
        (ibc * (1.0 / confidence).ln() / 2.0).sqrt()
    }

    /// `s2.ewma - s1.ewma` and whether it exceeds the bound.
    fn changed(s1: &SampleInfo, s2: &SampleInfo, confidence: f64) -> (bool, f64, f64) {
        if !(s1.init && s2.init) {
            return (false, 0.0, 0.0);
        }
        let bound = Self::bound(s1.ibc + s2.ibc, confidence);
        let diff = s2.ewma - s1.ewma;
        (diff > bound, diff, bound)
    }

    /// Feeds one sample in [0, 1]; `Warning` or `Drift` as River reports them.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        let x = x.clamp(0.0, 1.0);
        let (lambda, dc, wc) = (self.config.lambda, self.config.drift_confidence, self.config.warning_confidence);
        self.total.update(x, lambda);

        let eps = Self::bound(self.total.ibc, dc);
        if self.incr_cut.is_none_or(|cut| self.total.ewma + eps < cut) {
            self.incr_cut = Some(self.total.ewma + eps);
            self.s1_incr = self.total;
            self.s2_incr = SampleInfo::NEW;
        } else {
            self.s2_incr.update(x, lambda);
        }
        let (up, diff, bound) = Self::changed(&self.s1_incr, &self.s2_incr, dc);
        self.last = (diff, bound);
        if up {
            self.warning = false;
            self.drift = true;
        } else {
            let (warn, diff, bound) = Self::changed(&self.s1_incr, &self.s2_incr, wc);
            self.warning = warn;
            self.drift = false;
            if warn {
                self.last = (diff, bound);
            }
        }

        let eps = Self::bound(self.total.ibc, dc);
        if self.decr_cut.is_none_or(|cut| self.total.ewma - eps > cut) {
            self.decr_cut = Some(self.total.ewma - eps);
            self.s1_decr = self.total;
            self.s2_decr = SampleInfo::NEW;
        } else {
            self.s2_decr.update(x, lambda);
        }
        if self.config.two_sided_test {
            let (down, diff, bound) = Self::changed(&self.s2_decr, &self.s1_decr, dc);
            if down {
                self.drift = true;
                self.last = (diff, bound);
            } else if Self::changed(&self.s2_decr, &self.s1_decr, wc).0 {
                self.warning = true;
            }
        }
        status(self.warning, self.drift)
    }
}

impl Detector for HddmW {
    super::serde_state!();

    fn kind(&self) -> &str {
        "hddm_w"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        Some(Assessment { status, statistic: self.last.0, threshold: self.last.1, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "HDDM_W weighted mean moved by {} across its cut point (McDiarmid bound {})",
            fmt_num(a.statistic),
            fmt_num(a.threshold)
        )
    }
}
