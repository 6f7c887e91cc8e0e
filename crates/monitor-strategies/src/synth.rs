//! Synthetic streams with known change points, for tests, the evaluation
//! suite and benchmarks.
//!
//! The generator is SplitMix64 (Steele, Lea & Flood 2014) with uniforms from
//! its top 53 bits and normals from the cosine half of Box–Muller. It is tiny
//! on purpose: `scripts/streams.py` implements the same steps, so Python peers
//! (River, SciPy) see bit-identical streams without any data file being
//! committed.
//!
//! ```
//! use monitor_strategies::synth::{Segment, gaussian_stream};
//!
//! // 1000 samples of N(0, 1), then 1000 of N(0.5, 1).
//! let xs = gaussian_stream(7, &[Segment::new(1000, 0.0, 1.0), Segment::new(1000, 0.5, 1.0)]);
//! assert_eq!(xs.len(), 2000);
//! ```
//!
//! [`ModelStream`] makes whole records of one model, with a change of a
//! chosen kind at a chosen record: the streams of the alarm budget
//! (`cargo xtask eval` and its tests).

use chrono::{DateTime, Duration, Utc};
use monitor_core::record::{Record, Value};

/// SplitMix64: 64 bits of state, one addition and two multiplications per draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `[0, 1)`: the top 53 bits times 2^-53.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal number: `sqrt(-2 ln(1 - u1)) * cos(2 pi u2)`.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// 1.0 with probability `p`, else 0.0.
    pub fn bernoulli(&mut self, p: f64) -> f64 {
        if self.uniform() < p { 1.0 } else { 0.0 }
    }

    /// A lognormal number: `exp(mu + sigma * z)`.
    pub fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        (mu + sigma * self.normal()).exp()
    }
}

/// What changes in a [`ModelStream`], from record `at` on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Nothing changes.
    None,
    /// `features.x` (N(0, 1)) shifts its mean by this many standard deviations.
    Shift(f64),
    /// `features.income` goes missing (absent or null) in this share of
    /// records, instead of 1%.
    Missing(f64),
    /// `features.country` takes a value it never had, `XX`, in this share
    /// of records.
    NewCategory(f64),
}

/// Records of one model, `budget` version `v1`, one every 100 ms of event
/// time from 2026-11-23T00:00:00Z, stationary until a [`Change`] at record
/// `at`:
///
/// - `latency_ms`: lognormal (median 20 ms, sigma 0.5), rounded to 0.001 ms;
/// - `prediction` (`fraud` in 10%) and `label`, wrong in 10%, so `error`;
/// - `features.x`: N(0, 1); `features.country`: DE 40%, FR 25%, US 20%,
///   BR 10%, IN 5%; `features.income`: lognormal rounded to 0.01, missing
///   in 1% of records (half absent, half null), never in the first;
/// - `metrics.accuracy`: N(0.95, 0.01).
///
/// ```
/// use monitor_core::record::Value;
/// use monitor_strategies::synth::{Change, ModelStream};
///
/// let xx = Value::Category("XX".to_owned());
/// let records: Vec<_> = ModelStream::new(1, Change::NewCategory(0.5), 10).take(20).collect();
/// assert!(records[..10].iter().all(|r| r.features.get("country") != Some(&xx)));
/// assert!(records[10..].iter().any(|r| r.features.get("country") == Some(&xx)));
/// ```
#[derive(Debug, Clone)]
pub struct ModelStream {
    rng: SplitMix64,
    change: Change,
    at: usize,
    i: usize,
    start: DateTime<Utc>,
}

impl ModelStream {
    /// The stream of `seed`, changing at record `at`.
    pub fn new(seed: u64, change: Change, at: usize) -> Self {
        let start = DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(1_795_392_000);
        Self { rng: SplitMix64::new(seed), change, at, i: 0, start }
    }
}

impl Iterator for ModelStream {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let changed = self.i >= self.at;
        let change = if changed { self.change } else { Change::None };
        let rng = &mut self.rng;
        let mut r = Record::new("budget", self.start + Duration::milliseconds(100 * self.i as i64));
        r.version = "v1".to_owned();
        r.latency_ms = Some((rng.lognormal(3.0, 0.5) * 1000.0).round() / 1000.0);
        let fraud = rng.uniform() < 0.1;
        let wrong = rng.uniform() < 0.1;
        let class = |f: bool| Value::Category(if f { "fraud" } else { "legit" }.to_owned());
        r.prediction = Some(class(fraud));
        r.label = Some(class(fraud != wrong));
        let shift = if let Change::Shift(s) = change { s } else { 0.0 };
        r.features.insert("x".to_owned(), Value::Number(rng.normal() + shift));
        let u = rng.uniform();
        let new = if let Change::NewCategory(p) = change { p } else { 0.0 };
        let country = if u < new {
            "XX"
        } else {
            let v = (u - new) / (1.0 - new);
            match v {
                v if v < 0.40 => "DE",
                v if v < 0.65 => "FR",
                v if v < 0.85 => "US",
                v if v < 0.95 => "BR",
                _ => "IN",
            }
        };
        r.features.insert("country".to_owned(), Value::Category(country.to_owned()));
        let missing = if let Change::Missing(p) = change { p } else { 0.01 };
        let income = (rng.lognormal(10.0, 0.6) * 100.0).round() / 100.0;
        // The first record names every feature, so that windows of the
        // missing-value signals start with the stream.
        if rng.uniform() >= missing || self.i == 0 {
            r.features.insert("income".to_owned(), Value::Number(income));
        } else if rng.uniform() < 0.5 {
            r.null_features.insert("income".to_owned());
        }
        r.metrics.insert("accuracy".to_owned(), 0.95 + 0.01 * rng.normal());
        self.i += 1;
        Some(r)
    }
}

/// A stretch of a stream: `len` samples of one distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Number of samples.
    pub len: usize,
    /// The mean (for Bernoulli segments, the probability of a 1).
    pub mean: f64,
    /// The standard deviation (ignored by Bernoulli segments).
    pub std: f64,
}

impl Segment {
    /// `len` samples with `mean` and `std`.
    pub const fn new(len: usize, mean: f64, std: f64) -> Self {
        Self { len, mean, std }
    }

    /// `len` Bernoulli samples that are 1 with probability `p`.
    pub const fn bernoulli(len: usize, p: f64) -> Self {
        Self { len, mean: p, std: 0.0 }
    }
}

/// Gaussian samples `mean + std * z`, segment after segment, from one generator.
pub fn gaussian_stream(seed: u64, segments: &[Segment]) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.len).sum());
    for s in segments {
        out.extend((0..s.len).map(|_| s.mean + s.std * rng.normal()));
    }
    out
}

/// Bernoulli samples (0.0 or 1.0), segment after segment, from one generator.
pub fn bernoulli_stream(seed: u64, segments: &[Segment]) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.len).sum());
    for s in segments {
        out.extend((0..s.len).map(|_| rng.bernoulli(s.mean)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs for seed 1234567, from the reference C implementation.
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }
}
