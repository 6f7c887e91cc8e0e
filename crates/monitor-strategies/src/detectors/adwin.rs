//! `adwin`: ADaptive WINdowing (Bifet & Gavaldà 2007), as River 0.26 runs it.

use monitor_core::Error;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use serde::{Deserialize, Serialize};

use super::{check_open_unit, check_positive_int, fmt_num};

/// Config of [`Adwin`]: `{ kind = "adwin", delta = 0.002, clock = 32 }`.
///
/// Defaults are River's: `delta = 0.002`, `clock = 32`, `max_buckets = 5`,
/// `min_window_length = 5`, `grace_period = 10`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdwinConfig {
    /// Confidence of the cut test; smaller means fewer false alarms and later detection.
    pub delta: f64,
    /// Check for a cut every `clock` samples.
    pub clock: u32,
    /// Buckets of each size kept before two are merged (memory versus precision).
    pub max_buckets: usize,
    /// Neither side of a cut may hold fewer samples than this.
    pub min_window_length: u32,
    /// No check before the window holds more samples than this.
    pub grace_period: u32,
}

impl Default for AdwinConfig {
    fn default() -> Self {
        Self { delta: 0.002, clock: 32, max_buckets: 5, min_window_length: 5, grace_period: 10 }
    }
}

impl DetectorSpec for AdwinConfig {
    fn kind(&self) -> &str {
        "adwin"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        8 * 1024
    }

    fn validate(&self) -> Result<(), Error> {
        check_open_unit("delta", self.delta)?;
        check_positive_int("clock", u64::from(self.clock))?;
        check_positive_int("max_buckets", self.max_buckets as u64)?;
        if self.max_buckets > super::MAX_BUCKETS {
            return Err(Error::config(
                "max_buckets",
                format!("must be at most {} (got {})", super::MAX_BUCKETS, self.max_buckets),
            ));
        }
        check_positive_int("min_window_length", u64::from(self.min_window_length))?;
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Adwin::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// One row of the exponential histogram: up to `max_buckets + 1` summaries of
/// `2^level` samples each, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    totals: Vec<f64>,
    variances: Vec<f64>,
}

impl Row {
    fn new(capacity: usize) -> Self {
        Self { totals: Vec::with_capacity(capacity), variances: Vec::with_capacity(capacity) }
    }

    fn len(&self) -> usize {
        self.totals.len()
    }

    fn push(&mut self, total: f64, variance: f64) {
        self.totals.push(total);
        self.variances.push(variance);
    }

    fn drop_front(&mut self, n: usize) {
        // Rows hold a handful of buckets: a plain loop beats a call to memmove.
        let len = self.totals.len();
        for i in n..len {
            self.totals[i - n] = self.totals[i];
            self.variances[i - n] = self.variances[i];
        }
        self.totals.truncate(len - n);
        self.variances.truncate(len - n);
    }
}

/// ADWIN keeps a window whose width adapts: it drops its oldest part whenever
/// two sub-windows have means that differ by more than a Hoeffding-style bound.
///
/// This is River 0.26's algorithm step for step (same bucket merging, same cut
/// order, same floating-point expressions), so it flags drift at the same
/// sample indices. Like River, the detector starts afresh after a drift.
///
/// Memory is O(max_buckets · log W) for a window of W samples: 6 summaries per
/// power of two, about 1 KiB for a million samples.
///
/// ```
/// use monitor_strategies::Adwin;
/// use monitor_core::detector::DriftStatus;
///
/// let mut adwin = Adwin::default();
/// let stream = (0..2000).map(|i| if i < 1000 { (i % 2) as f64 } else { 4.0 + (i % 4) as f64 });
/// let first = stream.enumerate().find(|&(_, x)| adwin.update(x) == DriftStatus::Drift);
/// assert!(matches!(first, Some((i, _)) if i > 1000 && i < 1100));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adwin {
    config: AdwinConfig,
    total: f64,
    variance: f64,
    width: f64,
    tick: u64,
    rows: Vec<Row>,
    drift: bool,
    detections: u64,
    /// |mean(W0) - mean(W1)| and the bound at the last cut, for findings.
    last_cut: (f64, f64),
}

impl Default for Adwin {
    fn default() -> Self {
        Self::new(AdwinConfig::default())
    }
}

impl Adwin {
    /// A detector from a validated config.
    pub fn new(config: AdwinConfig) -> Self {
        let rows = vec![Row::new(config.max_buckets + 1)];
        Self {
            config,
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
            rows,
            drift: false,
            detections: 0,
            last_cut: (0.0, 0.0),
        }
    }

    /// The number of samples in the window.
    pub fn width(&self) -> u64 {
        self.width as u64
    }

    /// The mean of the window (0 when empty).
    pub fn estimation(&self) -> f64 {
        if self.width == 0.0 { 0.0 } else { self.total / self.width }
    }

    /// Drifts flagged since creation.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// Summaries held, over all rows: the memory the window takes.
    pub fn buckets(&self) -> usize {
        self.rows.iter().map(Row::len).sum()
    }

    /// Feeds one sample; `Drift` when the window was just cut.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            // River starts afresh after a drift (`ADWIN.update` calls `_reset`).
            let detections = self.detections;
            *self = Self::new(self.config.clone());
            self.detections = detections;
        }
        self.insert(x);
        self.drift = self.detect_change();
        if self.drift {
            self.detections += 1;
            DriftStatus::Drift
        } else {
            DriftStatus::Stable
        }
    }

    fn insert(&mut self, x: f64) {
        self.rows[0].push(x, 0.0);
        // The same Welford-style update as River, so that rounding matches.
        self.width += 1.0;
        let mut incremental = 0.0;
        if self.width > 1.0 {
            let d = x - self.total / (self.width - 1.0);
            incremental = (self.width - 1.0) * d * d / self.width;
        }
        self.variance += incremental;
        self.total += x;
        self.compress();
    }

    fn compress(&mut self) {
        let max = self.config.max_buckets;
        let mut level = 0;
        while self.rows[level].len() == max + 1 {
            let n = (1u64 << level) as f64;
            let row = &self.rows[level];
            let (t0, t1) = (row.totals[0], row.totals[1]);
            let (v0, v1) = (row.variances[0], row.variances[1]);
            let (mu0, mu1) = (t0 / n, t1 / n);
            let merged_var = v0 + v1 + n * 0.5 * (mu0 - mu1) * (mu0 - mu1);
            if level + 1 == self.rows.len() {
                self.rows.push(Row::new(max + 1));
            }
            self.rows[level + 1].push(t0 + t1, merged_var);
            self.rows[level].drop_front(2);
            if self.rows[level + 1].len() <= max {
                break;
            }
            level += 1;
        }
    }

    /// Removes the oldest bucket.
    fn delete_oldest(&mut self) {
        let last = self.rows.len() - 1;
        let n = (1u64 << last) as f64;
        let (u, v) = (self.rows[last].totals[0], self.rows[last].variances[0]);
        let mu = u / n;
        self.width -= n;
        self.total -= u;
        let mu_window = self.total / self.width;
        self.variance -= v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width);
        self.rows[last].drop_front(1);
        if self.rows[last].len() == 0 && last > 0 {
            self.rows.pop();
        }
    }

    fn detect_change(&mut self) -> bool {
        self.tick += 1;
        let clock = u64::from(self.config.clock);
        // A power-of-two clock (the default, 32) needs no division.
        let off_beat = if clock.is_power_of_two() { self.tick & (clock - 1) != 0 } else { self.tick % clock != 0 };
        if off_beat || self.width <= f64::from(self.config.grace_period) {
            return false;
        }
        let c = self.config.clone();
        let min_len = f64::from(c.min_window_length);
        let mut detected = false;
        let mut reduce = true;
        while reduce {
            reduce = false;
            // Invariant over one scan: the window only changes when a cut is found.
            let delta_prime = (2.0 * self.width.ln() / c.delta).ln();
            let var_per_sample = self.variance / self.width;
            // (n0 - c) + (n1 - c) with c = min_window_length - 1: the
            // numerator of m_recip, the same at every cut point.
            let k_sum = self.width - 2.0 * (min_len - 1.0);
            let (mut n0, mut n1) = (0.0_f64, self.width);
            let (mut u0, mut u1) = (0.0_f64, self.total);
            'scan: for level in (0..self.rows.len()).rev() {
                let size = (1u64 << level) as f64;
                let row = &self.rows[level];
                let k_last = row.len().saturating_sub(1);
                for (k, &t) in row.totals.iter().enumerate() {
                    n0 += size;
                    n1 -= size;
                    u0 += t;
                    u1 -= t;
                    if level == 0 && k == k_last {
                        break 'scan;
                    }
                    if n1 < min_len || n0 < min_len {
                        continue;
                    }
                    // A necessary condition for a cut, free of divisions and
                    // square roots: |dm| must exceed half of each of the two
                    // terms of the bound. It rejects almost every cut point;
                    // the survivors get River's exact expressions, so the
                    // decisions are River's. NaN falls through to the exact test.
                    let (a0, a1) = (n0 - min_len + 1.0, n1 - min_len + 1.0);
                    let cross = (u0 * n1 - u1 * n0).abs();
                    let nn = n0 * n1;
                    let lin = cross * a0 * a1 <= 0.5 * (2.0 / 3.0) * delta_prime * k_sum * nn;
                    let quad = cross * cross * a0 * a1 <= 0.25 * 2.0 * var_per_sample * delta_prime * k_sum * nn * nn;
                    if lin || quad {
                        continue;
                    }
                    let delta_mean = (u0 / n0) - (u1 / n1);
                    let m_recip = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0);
                    let epsilon =
                        (2.0 * m_recip * var_per_sample * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m_recip;
                    if delta_mean.abs() > epsilon {
                        self.last_cut = (delta_mean.abs(), epsilon);
                        detected = true;
                        reduce = true;
                        if self.width > 0.0 {
                            self.delete_oldest();
                            break 'scan;
                        }
                    }
                }
            }
        }
        detected
    }
}

impl Detector for Adwin {
    super::serde_state!();

    fn kind(&self) -> &str {
        "adwin"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let status = self.update(sample.value.as_f64()?);
        let (statistic, threshold) = if status == DriftStatus::Drift { self.last_cut } else { (0.0, 0.0) };
        Some(Assessment { status, statistic, threshold, p_value: None })
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "ADWIN cut its window: sub-window means differ by {} > bound {} (delta {})",
            fmt_num(a.statistic),
            fmt_num(a.threshold),
            self.config.delta
        )
    }
}
