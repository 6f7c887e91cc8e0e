//! `kswin`: Kolmogorov–Smirnov windowing (Raab, Heusinger & Schleif 2020), as
//! River 0.26 runs it, including its random sampling. With `window = "1h"`
//! it runs on tumbling event-time windows instead: once a window closes, its
//! newest `stat` samples are compared with `stat` drawn at random from the
//! rest of that window.

use std::collections::VecDeque;

use monitor_core::Error;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use serde::{Deserialize, Serialize};

use super::window::{TimeWindows, WindowSize, validate_window};
use super::{check_open_unit, fmt_num};
use crate::stats::ks_2samp_sorted;

/// Config of [`Kswin`]: `{ kind = "kswin", alpha = 0.005, window = 100, stat = 30 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KswinConfig {
    /// Significance of the KS test (default 0.005).
    pub alpha: f64,
    /// Samples kept (default 100), or a span of event time (`"1h"`):
    /// tumbling windows, each tested once it closes.
    pub window: WindowSize,
    /// Newest samples compared with a random sample of the older ones (default 30).
    pub stat: usize,
    /// Seed of the sampling; the same seed draws the same samples as River's
    /// `KSWIN(seed=...)` (default 42).
    pub seed: u64,
    /// With an event-time window, the most samples one window keeps (the
    /// newest; default 10 000).
    pub max_samples: usize,
}

impl Default for KswinConfig {
    fn default() -> Self {
        Self { alpha: 0.005, window: WindowSize::Samples(100), stat: 30, seed: 42, max_samples: 10_000 }
    }
}

impl DetectorSpec for KswinConfig {
    fn kind(&self) -> &str {
        "kswin"
    }

    fn accepts_categories(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        16 * self.window.samples_or(self.max_samples) + 4 * 624 + 24 * self.stat + 1024
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        check_open_unit("alpha", self.alpha)?;
        if self.stat == 0 {
            return Err(Error::config("stat", "must be at least 1 (got 0)"));
        }
        validate_window(self.window, None)?;
        let (key, held) = match self.window {
            WindowSize::Samples(n) => ("window", n),
            WindowSize::Time(_) => {
                if self.max_samples == 0 || self.max_samples > super::MAX_WINDOW {
                    return Err(Error::config(
                        "max_samples",
                        format!("must be between 1 and {} (got {})", super::MAX_WINDOW, self.max_samples),
                    ));
                }
                ("max_samples", self.max_samples)
            }
        };
        if held < 2 * self.stat {
            return Err(Error::config(
                key,
                format!("must be at least twice stat = {} so that the random sample fits (got {held})", self.stat),
            ));
        }
        Ok(())
    }

    fn build(&self, _signal: &str) -> Box<dyn Detector> {
        Box::new(Kswin::new(self.clone()))
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// CPython's Mersenne Twister (MT19937) with `random.Random(seed)` seeding,
/// so that samples are drawn exactly as River draws them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PyRandom {
    mt: Vec<u32>,
    index: usize,
}

impl PyRandom {
    const N: usize = 624;
    const M: usize = 397;

    pub(crate) fn new(seed: u64) -> Self {
        let mut r = Self { mt: vec![0; Self::N], index: Self::N };
        // init_by_array with the 32-bit words of the seed, least significant first.
        let key: Vec<u32> = if seed >> 32 == 0 { vec![seed as u32] } else { vec![seed as u32, (seed >> 32) as u32] };
        r.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        let n = Self::N;
        for _ in 0..n.max(key.len()) {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_664_525)).wrapping_add(key[j]).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= n {
                r.mt[0] = r.mt[n - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..n - 1 {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= n {
                r.mt[0] = r.mt[n - 1];
                i = 1;
            }
        }
        r.mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..Self::N {
            let prev = self.mt[i - 1] ^ (self.mt[i - 1] >> 30);
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev).wrapping_add(i as u32);
        }
        self.index = Self::N;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= Self::N {
            let (n, m) = (Self::N, Self::M);
            for k in 0..n {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % n] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.mt[k] = self.mt[(k + m) % n] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random._randbelow(n)` for n < 2^32: rejection sampling on
    /// `getrandbits(n.bit_length())`.
    fn below(&mut self, n: usize) -> usize {
        let k = usize::BITS - n.leading_zeros();
        if k == 0 {
            return 0;
        }
        loop {
            let r = (self.next_u32() >> (32 - k)) as usize;
            if r < n {
                return r;
            }
        }
    }

    /// `random.sample(range(n), k)` into `out`, CPython 3.11's algorithm.
    pub(crate) fn sample(&mut self, n: usize, k: usize, pool: &mut Vec<usize>, out: &mut Vec<usize>) {
        out.clear();
        let mut setsize = 21usize;
        if k > 5 {
            let exp = ((k * 3) as f64).ln() / 4f64.ln();
            setsize += 4usize.pow(exp.ceil() as u32);
        }
        if n <= setsize {
            pool.clear();
            pool.extend(0..n);
            for i in 0..k {
                let j = self.below(n - i);
                out.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            for _ in 0..k {
                let mut j = self.below(n);
                while out.contains(&j) {
                    j = self.below(n);
                }
                out.push(j);
            }
        }
    }
}

/// KSWIN keeps the last `window` samples and, once full, compares the newest
/// `stat` with `stat` samples drawn at random from the rest by a two-sample
/// KS test; drift when `p <= alpha` and `D > 0.1`.
///
/// The sampling is CPython's Mersenne Twister, so a given `seed` reproduces
/// River's `KSWIN(seed=...)` decisions exactly. Like River it starts afresh
/// (and re-seeds) after a drift. Memory: the window, O(window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kswin {
    config: KswinConfig,
    window: VecDeque<f64>,
    rng: PyRandom,
    last: (f64, f64),
    drift: bool,
    /// The clock of event-time windows, when `window` is a span.
    #[serde(default)]
    time: Option<TimeWindows>,
    #[serde(skip)]
    scratch: Scratch,
}

/// Buffers reused across updates, so that an update allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
struct Scratch {
    pool: Vec<usize>,
    picks: Vec<usize>,
    sample: Vec<f64>,
    recent: Vec<f64>,
}

impl Default for Kswin {
    fn default() -> Self {
        Self::new(KswinConfig::default())
    }
}

impl Kswin {
    /// A detector from a validated config.
    pub fn new(config: KswinConfig) -> Self {
        let rng = PyRandom::new(config.seed);
        Self {
            // Grows with the samples: nothing is allocated before it is needed.
            window: VecDeque::new(),
            time: config.window.time().map(TimeWindows::new),
            config,
            rng,
            last: (0.0, 1.0),
            drift: false,
            scratch: Scratch::default(),
        }
    }

    /// The KS statistic and p-value of the last test (0 and 1 before the first).
    pub fn last_test(&self) -> (f64, f64) {
        self.last
    }

    /// Tests the samples of a closed event-time window and starts the next
    /// one afresh; `None` when it held too few samples for the test.
    fn judge_window(&mut self) -> Option<DriftStatus> {
        let (n, s) = (self.window.len(), self.config.stat);
        let verdict = (n >= 2 * s).then(|| {
            let sc = &mut self.scratch;
            self.rng.sample(n - s, s, &mut sc.pool, &mut sc.picks);
            sc.sample.clear();
            sc.sample.extend(sc.picks.iter().map(|&i| self.window[i]));
            sc.recent.clear();
            sc.recent.extend(self.window.range(n - s..));
            sc.sample.sort_unstable_by(f64::total_cmp);
            sc.recent.sort_unstable_by(f64::total_cmp);
            let r = ks_2samp_sorted(&sc.sample, &sc.recent);
            self.last = (r.statistic, r.p_value);
            if r.p_value <= self.config.alpha && r.statistic > 0.1 { DriftStatus::Drift } else { DriftStatus::Stable }
        });
        self.window.clear();
        verdict
    }

    fn assessment(&self, status: DriftStatus) -> Assessment {
        Assessment { status, statistic: self.last.0, threshold: self.config.alpha, p_value: Some(self.last.1) }
    }

    /// Feeds one sample; `Drift` when the newest samples differ from the older ones.
    pub fn update(&mut self, x: f64) -> DriftStatus {
        if self.drift {
            *self = Self::new(self.config.clone());
        }
        let (w, s) = (self.config.window.samples_or(self.config.max_samples), self.config.stat);
        if self.window.len() == w {
            self.window.pop_front();
        }
        self.window.push_back(x);
        if self.window.len() < w {
            return DriftStatus::Stable;
        }
        let sc = &mut self.scratch;
        self.rng.sample(w - s, s, &mut sc.pool, &mut sc.picks);
        sc.sample.clear();
        sc.sample.extend(sc.picks.iter().map(|&i| self.window[i]));
        sc.recent.clear();
        sc.recent.extend(self.window.range(w - s..));
        sc.sample.sort_unstable_by(f64::total_cmp);
        sc.recent.sort_unstable_by(f64::total_cmp);
        let r = ks_2samp_sorted(&sc.sample, &sc.recent);
        self.last = (r.statistic, r.p_value);
        self.drift = r.p_value <= self.config.alpha && r.statistic > 0.1;
        if self.drift { DriftStatus::Drift } else { DriftStatus::Stable }
    }
}

impl Detector for Kswin {
    super::serde_state!();

    fn kind(&self) -> &str {
        "kswin"
    }

    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
        let x = sample.value.as_f64()?;
        let Some(time) = self.time.as_mut() else {
            let status = self.update(x);
            return Some(self.assessment(status));
        };
        // A late sample (its window has closed) is dropped and counted.
        let closed = time.arrive(sample.ts)?;
        let verdict = if closed { self.judge_window() } else { None };
        if self.window.len() == self.config.max_samples {
            self.window.pop_front();
        }
        self.window.push_back(x);
        verdict.map(|status| self.assessment(status))
    }

    fn advance(&mut self, now: chrono::DateTime<chrono::Utc>) -> Option<Assessment> {
        let closed = self.time.as_mut()?.advance(now);
        let status = if closed { self.judge_window()? } else { return None };
        Some(self.assessment(status))
    }

    fn take_closed_windows(&mut self) -> monitor_core::detector::ClosedWindows {
        self.time.as_mut().map(TimeWindows::take_closed).unwrap_or_default()
    }

    fn reset(&mut self) {
        *self = Self::new(self.config.clone());
    }

    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Change
    }

    fn explain(&self, a: &Assessment) -> String {
        format!(
            "KSWIN: newest {} samples differ from the window (KS D = {}, p = {:.3e} <= alpha = {})",
            self.config.stat,
            fmt_num(a.statistic),
            a.p_value.unwrap_or(f64::NAN),
            a.threshold
        )
    }
}

#[cfg(test)]
mod time_window_tests {
    use chrono::{DateTime, Duration, Utc};
    use monitor_core::signal::SignalValue;

    use super::*;
    use crate::synth::SplitMix64;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(secs)
    }

    fn kswin_per_minute() -> Kswin {
        let config: KswinConfig = serde_json::from_value(serde_json::json!({"window": "1m", "stat": 30})).unwrap();
        config.validate().unwrap();
        Kswin::new(config)
    }

    /// Each closed minute is tested once: a steady minute is stable, a
    /// minute whose second half moved is drift; a late sample is dropped
    /// and counted, and minutes without samples are counted as empty.
    #[test]
    fn each_event_time_window_is_tested_once_it_closes() {
        let mut rng = SplitMix64::new(5);
        let mut d = kswin_per_minute();
        let mut verdicts = Vec::new();
        let mut feed = |d: &mut Kswin, secs: i64, x: f64| {
            let sample = Sample { value: SignalValue::Numeric(x), ts: at(secs) };
            if let Some(a) = d.observe(sample) {
                verdicts.push((secs, a.status));
            }
        };
        // Minute 0: 120 steady samples. Minute 1: the second half shifted by 3σ.
        for i in 0..120 {
            feed(&mut d, i / 2, rng.normal());
        }
        for i in 0..120 {
            let shift = if i >= 60 { 3.0 } else { 0.0 };
            feed(&mut d, 60 + i / 2, rng.normal() + shift);
        }
        // A sample of minute 0, now late; then minute 3 closes minute 1 (and minute 2 was empty).
        feed(&mut d, 10, 0.0);
        feed(&mut d, 180, 0.0);
        assert_eq!(verdicts, [(60, DriftStatus::Stable), (180, DriftStatus::Drift)]);
        let closed = d.take_closed_windows();
        assert_eq!((closed.with_data, closed.empty, closed.late), (2, 1, 1));
        // The clock alone closes a window too.
        assert!(d.advance(at(300)).is_none(), "one sample is too few for the test");
    }

    #[test]
    fn a_window_of_time_needs_room_for_the_random_sample() {
        let config: KswinConfig =
            serde_json::from_value(serde_json::json!({"window": "1h", "stat": 30, "max_samples": 40})).unwrap();
        let e = config.validate().unwrap_err().to_string();
        assert!(e.starts_with("config error at `max_samples`: must be at least twice stat = 30"), "{e}");
    }
}
