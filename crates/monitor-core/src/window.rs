//! Windows over one signal: count-based sliding, event-time sliding, tumbling,
//! and category counts.
//!
//! Every numeric window keeps its count, mean, variance, minimum and maximum
//! up to date in O(1) per sample (amortised for min and max), exact under
//! eviction. Quantiles come from the window's own samples ([`SlidingWindow::quantile`],
//! exact, O(n) per query) or, when enabled with `with_sketch`, from a
//! [`QuantileSketch`] that follows the window in bounded memory (relative
//! error 1%, O(buckets) per query).

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::sketch::QuantileSketch;
use crate::stats::{Extrema, Moments, exact_quantile};

/// A statistic of a window, named as in config (`mean`, `p99`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// The arithmetic mean.
    Mean,
    /// The smallest sample.
    Min,
    /// The largest sample.
    Max,
    /// The population standard deviation.
    StdDev,
    /// The median.
    P50,
    /// The 90th percentile.
    P90,
    /// The 95th percentile.
    P95,
    /// The 99th percentile.
    P99,
    /// The number of samples.
    Count,
    /// The exponentially weighted moving average of every sample so far,
    /// newest weighted `alpha` (`threshold` and `adaptive_threshold` keep
    /// it, see [`Ewma`](crate::stats::Ewma)); not a statistic of the
    /// window's samples, so the windows here answer `None` for it.
    Ewma,
}

impl Statistic {
    /// Every statistic, in config spelling.
    pub const NAMES: &'static [&'static str] =
        &["mean", "min", "max", "std_dev", "p50", "p90", "p95", "p99", "count", "ewma"];

    /// The quantile this statistic stands for, if it is one.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Self::P50 => Some(0.5),
            Self::P90 => Some(0.9),
            Self::P95 => Some(0.95),
            Self::P99 => Some(0.99),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Min => "min",
            Self::Max => "max",
            Self::StdDev => "std_dev",
            Self::P50 => "p50",
            Self::P90 => "p90",
            Self::P95 => "p95",
            Self::P99 => "p99",
            Self::Count => "count",
            Self::Ewma => "ewma",
        }
    }
}

/// The FIFO buffer every numeric window is built on.
///
/// Removing a sample from [`Moments`] leaves a rounding residue of the order of
/// `f64::EPSILON * x²`, which dwarfs the variance of what remains once large
/// samples have left (a spike, or a level shift, evicted). So the moments are
/// recomputed from the samples when the window's range shrinks tenfold below
/// its peak since the last recomputation, and after every `len` evictions.
/// Both cost O(len) once per O(len) evictions, so the update stays amortised O(1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Buffer {
    values: VecDeque<f64>,
    moments: Moments,
    extrema: Extrema,
    sketch: Option<QuantileSketch>,
    /// The widest `max - min` since the moments were last computed afresh.
    #[serde(default)]
    peak_range: f64,
    /// Evictions since the moments were last computed afresh.
    #[serde(default)]
    evictions: usize,
}

/// Recompute the moments once the range falls below this share of its peak.
const RANGE_DROP: f64 = 0.1;

impl Buffer {
    fn push_back(&mut self, x: f64) {
        self.values.push_back(x);
        self.moments.add(x);
        self.extrema.push_back(x);
        if let Some(s) = &mut self.sketch {
            s.add(x);
        }
        self.peak_range = self.peak_range.max(self.range());
    }

    /// Inserts `x` at position `pos` (0 is the oldest), for a late sample.
    fn insert(&mut self, pos: usize, x: f64) {
        if pos >= self.values.len() {
            return self.push_back(x);
        }
        self.values.insert(pos, x);
        self.moments.add(x);
        self.extrema.insert(pos, x);
        if let Some(s) = &mut self.sketch {
            s.add(x);
        }
        self.peak_range = self.peak_range.max(self.range());
    }

    fn pop_front(&mut self) -> Option<f64> {
        let x = self.values.pop_front()?;
        self.moments.remove(x);
        self.extrema.pop_front();
        if let Some(s) = &mut self.sketch {
            s.remove(x);
        }
        self.evictions += 1;
        if self.range() < self.peak_range * RANGE_DROP || self.evictions >= self.values.len() {
            self.recompute_moments();
        }
        Some(x)
    }

    fn range(&self) -> f64 {
        match (self.extrema.min(), self.extrema.max()) {
            (Some(min), Some(max)) => max - min,
            _ => 0.0,
        }
    }

    fn recompute_moments(&mut self) {
        self.moments = Moments::new();
        for &x in &self.values {
            self.moments.add(x);
        }
        self.peak_range = self.range();
        self.evictions = 0;
    }

    fn clear(&mut self) {
        self.values.clear();
        self.moments = Moments::new();
        self.extrema.clear();
        self.peak_range = 0.0;
        self.evictions = 0;
        if let Some(s) = &mut self.sketch {
            s.clear();
        }
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        match &self.sketch {
            Some(s) => s.quantile(q),
            None => {
                let mut scratch: Vec<f64> = self.values.iter().copied().collect();
                exact_quantile(&mut scratch, q)
            }
        }
    }

    fn statistic(&self, stat: Statistic) -> Option<f64> {
        match stat {
            Statistic::Mean => self.moments.mean(),
            Statistic::Min => self.extrema.min(),
            Statistic::Max => self.extrema.max(),
            Statistic::StdDev => self.moments.std_dev(),
            Statistic::Count => Some(self.values.len() as f64),
            Statistic::Ewma => None,
            q => q.quantile().and_then(|q| self.quantile(q)),
        }
    }
}

macro_rules! window_accessors {
    () => {
        /// Number of samples in the window.
        pub fn len(&self) -> usize {
            self.buf.values.len()
        }

        /// Whether the window is empty.
        pub fn is_empty(&self) -> bool {
            self.buf.values.is_empty()
        }

        /// The mean, or `None` when empty.
        pub fn mean(&self) -> Option<f64> {
            self.buf.moments.mean()
        }

        /// The population variance, or `None` when empty.
        pub fn variance(&self) -> Option<f64> {
            self.buf.moments.variance()
        }

        /// The sample variance (n - 1), or `None` with fewer than two samples.
        pub fn sample_variance(&self) -> Option<f64> {
            self.buf.moments.sample_variance()
        }

        /// The population standard deviation, or `None` when empty.
        pub fn std_dev(&self) -> Option<f64> {
            self.buf.moments.std_dev()
        }

        /// The minimum, or `None` when empty.
        pub fn min(&self) -> Option<f64> {
            self.buf.extrema.min()
        }

        /// The maximum, or `None` when empty.
        pub fn max(&self) -> Option<f64> {
            self.buf.extrema.max()
        }

        /// The `q`-quantile: from the sketch when enabled (within its relative
        /// error), else exact by nearest rank over the window's samples.
        pub fn quantile(&self, q: f64) -> Option<f64> {
            self.buf.quantile(q)
        }

        /// Any [`Statistic`] of the window, or `None` when empty (except
        /// [`Statistic::Count`], which is then 0). [`Statistic::Ewma`] is
        /// not one of the window's: `None`.
        pub fn statistic(&self, stat: Statistic) -> Option<f64> {
            self.buf.statistic(stat)
        }

        /// The samples, oldest first.
        pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
            self.buf.values.iter().copied()
        }

        /// Keeps a [`QuantileSketch`] beside the samples, so that quantile
        /// queries cost O(buckets) instead of O(n).
        #[must_use]
        pub fn with_sketch(mut self) -> Self {
            self.buf.sketch = Some(QuantileSketch::default());
            self
        }
    };
}

/// The last `capacity` samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlidingWindow {
    capacity: usize,
    buf: Buffer,
}

impl SlidingWindow {
    /// A window of the last `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // Grows with the samples: nothing is allocated before it is needed.
        Self { capacity, buf: Buffer::default() }
    }

    /// The window's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the window holds `capacity` samples.
    pub fn is_full(&self) -> bool {
        self.buf.values.len() == self.capacity
    }

    /// Adds `x`, evicting and returning the oldest sample when full.
    pub fn push(&mut self, x: f64) -> Option<f64> {
        let evicted = if self.is_full() { self.buf.pop_front() } else { None };
        self.buf.push_back(x);
        evicted
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    window_accessors!();
}

/// The samples whose event time lies within `span` of the newest one.
///
/// Samples are kept in event-time order and evicted once their timestamp is
/// older than `newest - span`. A sample that arrives late but within the span
/// takes its place among the others, at a cost of O(samples newer than it); one
/// that arrives already older than `newest - span` is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimeWindow {
    span: Duration,
    times: VecDeque<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
    buf: Buffer,
}

impl TimeWindow {
    /// A window of the last `span` of event time.
    pub fn new(span: Duration) -> Self {
        Self { span, times: VecDeque::new(), newest: None, buf: Buffer::default() }
    }

    /// Adds `x` at event time `ts`. Returns `false` (and keeps nothing) when
    /// `ts` is already outside the window.
    pub fn push(&mut self, ts: DateTime<Utc>, x: f64) -> bool {
        let newest = self.newest.map_or(ts, |n| n.max(ts));
        let horizon = newest - self.span;
        if ts < horizon {
            return false;
        }
        self.newest = Some(newest);
        // Usually the end; a late sample goes after those not newer than it.
        let pos = self.times.partition_point(|&t| t <= ts);
        self.times.insert(pos, ts);
        self.buf.insert(pos, x);
        self.evict(horizon);
        true
    }

    /// Evicts what is older than `now - span` (for a clock that moves without samples).
    pub fn advance(&mut self, now: DateTime<Utc>) {
        let newest = self.newest.map_or(now, |n| n.max(now));
        self.newest = Some(newest);
        self.evict(newest - self.span);
    }

    fn evict(&mut self, horizon: DateTime<Utc>) {
        while self.times.front().is_some_and(|&t| t < horizon) {
            self.times.pop_front();
            self.buf.pop_front();
        }
    }

    window_accessors!();
}

/// Consecutive, non-overlapping windows of `size` samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TumblingWindow {
    size: usize,
    buf: Buffer,
}

/// The statistics of one closed window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Number of samples.
    pub count: u64,
    /// The mean.
    pub mean: f64,
    /// The population variance.
    pub variance: f64,
    /// The minimum.
    pub min: f64,
    /// The maximum.
    pub max: f64,
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

impl TumblingWindow {
    /// Windows of `size` samples (at least 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self { size, buf: Buffer::default() }
    }

    /// Adds `x`; when that closes the window, returns its summary and starts a new one.
    pub fn push(&mut self, x: f64) -> Option<WindowSummary> {
        self.buf.push_back(x);
        if self.buf.values.len() < self.size {
            return None;
        }
        let summary = self.summary();
        self.buf.clear();
        summary
    }

    /// The summary of the samples so far in the open window, `None` when empty.
    pub fn summary(&self) -> Option<WindowSummary> {
        let b = &self.buf;
        let mut scratch: Vec<f64> = b.values.iter().copied().collect();
        Some(WindowSummary {
            count: b.moments.count(),
            mean: b.moments.mean()?,
            variance: b.moments.variance()?,
            min: b.extrema.min()?,
            max: b.extrema.max()?,
            p50: exact_quantile(&mut scratch, 0.5)?,
            p95: exact_quantile(&mut scratch, 0.95)?,
            p99: exact_quantile(&mut scratch, 0.99)?,
        })
    }

    window_accessors!();
}

/// Counts of the categories in the last `capacity` observations of a
/// categorical signal.
///
/// At most `max_categories` distinct categories are tracked; later new ones
/// are counted under [`CategoryCounts::OTHER`], so memory stays bounded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryCounts {
    capacity: usize,
    max_categories: usize,
    ids: HashMap<String, u32>,
    names: Vec<String>,
    counts: Vec<u64>,
    window: VecDeque<u32>,
}

impl CategoryCounts {
    /// The bucket for categories beyond `max_categories`.
    pub const OTHER: &'static str = "__other__";

    /// Counts over the last `capacity` observations, tracking up to
    /// `max_categories` distinct categories.
    pub fn new(capacity: usize, max_categories: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            max_categories: max_categories.max(1),
            ids: HashMap::new(),
            names: Vec::new(),
            counts: Vec::new(),
            window: VecDeque::new(),
        }
    }

    fn id(&mut self, category: &str) -> u32 {
        if let Some(&id) = self.ids.get(category) {
            return id;
        }
        let name = if self.names.len() < self.max_categories { category } else { Self::OTHER };
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        self.counts.push(0);
        id
    }

    /// Counts one observation, evicting the oldest when full.
    pub fn push(&mut self, category: &str) {
        if self.window.len() == self.capacity {
            if let Some(old) = self.window.pop_front() {
                self.counts[old as usize] -= 1;
            }
        }
        let id = self.id(category);
        self.counts[id as usize] += 1;
        self.window.push_back(id);
    }

    /// Number of observations in the window.
    pub fn total(&self) -> u64 {
        self.window.len() as u64
    }

    /// The count of `category` in the window.
    pub fn count(&self, category: &str) -> u64 {
        self.ids.get(category).map_or(0, |&id| self.counts[id as usize])
    }

    /// Every category seen with its count in the window (zero counts included),
    /// in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.names.iter().map(String::as_str).zip(self.counts.iter().copied())
    }

    /// Forgets every observation (categories seen stay known).
    pub fn clear(&mut self) {
        self.window.clear();
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_evicts_the_oldest() {
        let mut w = SlidingWindow::new(3);
        assert_eq!(w.push(5.0), None);
        w.push(1.0);
        w.push(3.0);
        assert_eq!(w.push(2.0), Some(5.0));
        assert_eq!((w.min(), w.max(), w.mean()), (Some(1.0), Some(3.0), Some(2.0)));
        assert_eq!(w.statistic(Statistic::P50), Some(2.0));
    }

    #[test]
    fn time_window_evicts_by_event_time() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut w = TimeWindow::new(Duration::seconds(10));
        assert!(w.push(t0, 1.0));
        assert!(w.push(t0 + Duration::seconds(5), 2.0));
        assert!(w.push(t0 + Duration::seconds(12), 3.0));
        assert_eq!(w.len(), 2);
        assert_eq!(w.mean(), Some(2.5));
        assert!(!w.push(t0, 9.0), "too old for the window");
        w.advance(t0 + Duration::seconds(30));
        assert!(w.is_empty());
    }

    #[test]
    fn a_late_sample_is_evicted_by_its_own_time() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut w = TimeWindow::new(Duration::seconds(10));
        assert!(w.push(t0 + Duration::seconds(5), 1.0));
        assert!(w.push(t0 + Duration::seconds(3), 2.0), "late, but within the span");
        assert_eq!(w.values().collect::<Vec<_>>(), [2.0, 1.0]);
        assert!(w.push(t0 + Duration::seconds(14), 3.0));
        assert_eq!(w.values().collect::<Vec<_>>(), [1.0, 3.0]);
        assert_eq!((w.min(), w.max()), (Some(1.0), Some(3.0)));
    }

    #[test]
    fn variance_recovers_once_large_samples_leave() {
        let mut w = SlidingWindow::new(3);
        for x in [1e9, -1e9, 1e9, 4.0, 4.0, 4.0] {
            w.push(x);
        }
        assert_eq!(w.variance(), Some(0.0));
        assert_eq!(w.mean(), Some(4.0));
    }

    #[test]
    fn tumbling_window_closes_every_size_samples() {
        let mut w = TumblingWindow::new(4);
        assert_eq!(w.push(1.0), None);
        assert_eq!(w.push(2.0), None);
        assert_eq!(w.push(3.0), None);
        let s = w.push(4.0).unwrap_or_else(|| panic!("window should close"));
        assert_eq!((s.count, s.mean, s.min, s.max, s.p50), (4, 2.5, 1.0, 4.0, 2.0));
        assert!(w.is_empty());
    }

    #[test]
    fn category_counts_slide_and_stay_bounded() {
        let mut c = CategoryCounts::new(3, 2);
        for cat in ["a", "b", "a", "c", "d"] {
            c.push(cat);
        }
        // Window holds a, other(c), other(d).
        assert_eq!(c.count("a"), 1);
        assert_eq!(c.count("b"), 0);
        assert_eq!(c.count(CategoryCounts::OTHER), 2);
        assert_eq!(c.total(), 3);
    }
}
