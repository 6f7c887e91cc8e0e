//! What a report holds: per model version, a bounded series of window
//! summaries for each detector, its findings and recoveries, the
//! distributions compared at its first findings, and the retrain jobs.
//!
//! Memory is bounded by construction: a series holds at most
//! [`Limits::points`] buckets. Over a whole replay, buckets merge in pairs
//! when full, so the series covers everything at a coarser step; in a
//! daemon, the oldest bucket goes, so the series covers the recent windows.

use std::collections::VecDeque;

use monitor_core::comparison::Comparison;
use monitor_core::detector::DriftStatus;
use monitor_core::event::JobStatus;
use serde::Serialize;
use uuid::Uuid;

/// The bounds of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Model versions followed; windows of later ones are counted only.
    pub versions: usize,
    /// Detector series per model version.
    pub series_per_version: usize,
    /// Buckets per series (even, at least 4).
    pub points: usize,
    /// Finding and recovery markers per series.
    pub markers: usize,
    /// Distribution comparisons per series.
    pub comparisons: usize,
    /// Retrain jobs per model version.
    pub jobs: usize,
    /// What a full series gives up.
    pub retention: Retention,
}

impl Limits {
    /// For a whole replay: everything, at a step that coarsens as it grows.
    pub const REPLAY: Self = Self {
        versions: 1_000,
        series_per_version: 64,
        points: 240,
        markers: 200,
        comparisons: 3,
        jobs: 100,
        retention: Retention::Whole,
    };

    /// For a daemon: the recent windows of each series.
    pub const LIVE: Self = Self {
        versions: 500,
        series_per_version: 64,
        points: 240,
        markers: 100,
        comparisons: 2,
        jobs: 50,
        retention: Retention::Recent,
    };
}

/// What a full series gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Resolution: neighbouring buckets merge, the series keeps the whole span.
    Whole,
    /// History: the oldest bucket (marker, comparison) goes.
    Recent,
}

/// Windows summarised together: their time span, range of sequence
/// numbers, and the spread of their statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Event time of the first window, in milliseconds since the epoch.
    pub first_ms: i64,
    /// Event time of the last window.
    pub last_ms: i64,
    /// Input line of the first window's record.
    pub first_seq: u64,
    /// Input line of the last window's record.
    pub last_seq: u64,
    /// Windows in the bucket.
    pub n: u32,
    /// The smallest statistic.
    pub min: f64,
    /// The largest statistic.
    pub max: f64,
    /// The sum of the statistics, for their mean.
    pub sum: f64,
    /// The last threshold the statistic was compared with.
    pub threshold: Option<f64>,
    /// The smallest p-value, for tests that have one.
    pub p_min: Option<f64>,
    /// The worst verdict.
    pub worst: DriftStatus,
}

impl Bucket {
    /// One window.
    pub fn single(ms: i64, seq: u64, statistic: f64, threshold: f64, p: Option<f64>, status: DriftStatus) -> Self {
        Self {
            first_ms: ms,
            last_ms: ms,
            first_seq: seq,
            last_seq: seq,
            n: 1,
            min: statistic,
            max: statistic,
            sum: statistic,
            threshold: threshold.is_finite().then_some(threshold),
            p_min: p.filter(|p| p.is_finite()),
            worst: status,
        }
    }

    /// The mean statistic.
    pub fn mean(&self) -> f64 {
        self.sum / f64::from(self.n.max(1))
    }

    /// The middle of its time span.
    pub fn mid_ms(&self) -> i64 {
        self.first_ms + (self.last_ms - self.first_ms) / 2
    }

    /// Merges `later` into this bucket.
    pub fn absorb(&mut self, later: &Self) {
        self.last_ms = later.last_ms;
        self.last_seq = later.last_seq;
        self.n = self.n.saturating_add(later.n);
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.threshold = later.threshold.or(self.threshold);
        self.p_min = match (self.p_min, later.p_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.worst = self.worst.max(later.worst);
    }
}

/// A finding or a recovery, where it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    /// Event time, in milliseconds since the epoch.
    pub ms: i64,
    /// Input line of the record that caused it.
    pub seq: u64,
    /// What happened.
    pub kind: MarkerKind,
    /// The statistic then.
    pub statistic: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// Its p-value, for tests that compute one.
    pub p_value: Option<f64>,
}

/// What a marker marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    /// A warning finding.
    Warning,
    /// A drift finding.
    Drift,
    /// A recovery.
    Recovered,
}

impl MarkerKind {
    /// Its name, as in the JSON events.
    pub fn name(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Drift => "drift",
            Self::Recovered => "recovered",
        }
    }
}

/// The reference against the current window at a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonAt {
    /// The finding.
    pub marker: Marker,
    /// The two distributions.
    pub comparison: Comparison,
}

/// The windows of one detector on one signal of one model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesData {
    /// The signal.
    pub signal: String,
    /// The detector's kind.
    pub detector: String,
    /// The index of its `[[monitors]]` entry.
    pub monitor: usize,
    /// Whether the detector flags changes (a finding is a point in time,
    /// answered by a retrain request) rather than conditions.
    pub change: bool,
    /// The window summaries, in order.
    pub buckets: VecDeque<Bucket>,
    /// Windows per bucket (over a whole replay).
    pub stride: u32,
    /// The bucket still filling up to `stride` windows.
    pub pending: Option<Bucket>,
    /// Windows seen in all.
    pub windows: u64,
    /// Findings and recoveries, in order.
    pub markers: VecDeque<Marker>,
    /// Markers not kept.
    pub markers_dropped: u64,
    /// Distributions at findings.
    pub comparisons: VecDeque<ComparisonAt>,
    /// The status after the last verdict.
    pub status: DriftStatus,
}

impl SeriesData {
    /// An empty series.
    pub fn new(signal: String, detector: String, monitor: usize, change: bool) -> Self {
        Self {
            signal,
            detector,
            monitor,
            change,
            buckets: VecDeque::new(),
            stride: 1,
            pending: None,
            windows: 0,
            markers: VecDeque::new(),
            markers_dropped: 0,
            comparisons: VecDeque::new(),
            status: DriftStatus::Stable,
        }
    }

    /// Adds one window's summary, within `limits`.
    pub fn push(&mut self, window: Bucket, limits: &Limits) {
        self.windows += 1;
        let cap = limits.points.max(4);
        if limits.retention == Retention::Recent {
            if self.buckets.len() >= cap {
                self.buckets.pop_front();
            }
            self.buckets.push_back(window);
            return;
        }
        let pending = match &mut self.pending {
            Some(p) => {
                p.absorb(&window);
                p
            }
            None => self.pending.insert(window),
        };
        if pending.n < self.stride {
            return;
        }
        let full = *pending;
        self.pending = None;
        self.buckets.push_back(full);
        if self.buckets.len() >= cap {
            let old: Vec<Bucket> = self.buckets.drain(..).collect();
            for pair in old.chunks(2) {
                let mut b = pair[0];
                if let Some(next) = pair.get(1) {
                    b.absorb(next);
                }
                self.buckets.push_back(b);
            }
            self.stride = self.stride.saturating_mul(2);
        }
    }

    /// Adds a finding or a recovery, within `limits`.
    pub fn mark(&mut self, marker: Marker, limits: &Limits) {
        if self.markers.len() >= limits.markers {
            if limits.retention == Retention::Whole {
                self.markers_dropped += 1;
                return;
            }
            self.markers.pop_front();
            self.markers_dropped += 1;
        }
        self.markers.push_back(marker);
    }

    /// Whether a comparison would be kept now (so that it is only taken then).
    pub fn wants_comparison(&self, limits: &Limits) -> bool {
        limits.comparisons > 0 && (limits.retention == Retention::Recent || self.comparisons.len() < limits.comparisons)
    }

    /// Adds a comparison, within `limits`.
    pub fn compared(&mut self, at: ComparisonAt, limits: &Limits) {
        if self.comparisons.len() >= limits.comparisons {
            if limits.retention == Retention::Whole {
                return;
            }
            self.comparisons.pop_front();
        }
        self.comparisons.push_back(at);
    }

    /// Every bucket, the one still filling included.
    pub fn all_buckets(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets.iter().chain(self.pending.iter())
    }

    /// Whether its finding is open at the end: a condition that has not
    /// recovered, or a change flagged after the last retrain request
    /// (`answered_seq`).
    pub fn open(&self, answered_seq: Option<u64>) -> Option<MarkerKind> {
        let last = self.markers.back()?;
        if last.kind == MarkerKind::Recovered {
            return None;
        }
        if self.change {
            return (answered_seq.is_none_or(|s| last.seq > s)).then_some(last.kind);
        }
        (self.status != DriftStatus::Stable).then_some(last.kind)
    }
}

/// A retrain job asked for, and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobMark {
    /// The job.
    pub job_id: Uuid,
    /// Event time of the request, in milliseconds since the epoch.
    pub ms: i64,
    /// Input line of the record that made the policy fire.
    pub seq: u64,
    /// The findings it answers, as `signal detector`.
    pub reasons: Vec<String>,
    /// Its last status; `None` before the scheduler said anything.
    pub status: Option<JobStatus>,
    /// The detail of that status (an exit code, an HTTP status).
    pub detail: Option<String>,
}

/// One model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionData {
    /// The model.
    pub model: String,
    /// The version.
    pub version: String,
    /// Its detector series, in the order they first gave a verdict.
    pub series: Vec<SeriesData>,
    /// Windows of series past [`Limits::series_per_version`].
    pub series_dropped: u64,
    /// Its retrain jobs, in order.
    pub jobs: VecDeque<JobMark>,
    /// Jobs not kept.
    pub jobs_dropped: u64,
}

/// How a model version stands at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// A detector in drift.
    Drift,
    /// A detector in warning, none in drift.
    Warning,
    /// No open finding.
    Healthy,
}

impl Health {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::Warning => "warning",
            Self::Healthy => "healthy",
        }
    }
}

impl VersionData {
    /// An empty model version.
    pub fn new(model: &str, version: &str) -> Self {
        Self {
            model: model.to_owned(),
            version: version.to_owned(),
            series: Vec::new(),
            series_dropped: 0,
            jobs: VecDeque::new(),
            jobs_dropped: 0,
        }
    }

    /// The series with an open finding, with its severity.
    pub fn open(&self) -> Vec<(&SeriesData, MarkerKind)> {
        let answered = self.jobs.back().map(|j| j.seq);
        self.series.iter().filter_map(|s| s.open(answered).map(|k| (s, k))).collect()
    }

    /// Drift if any series is open in drift, else warning if any is open.
    pub fn health(&self) -> Health {
        let open = self.open();
        if open.iter().any(|(_, k)| *k == MarkerKind::Drift) {
            Health::Drift
        } else if open.is_empty() {
            Health::Healthy
        } else {
            Health::Warning
        }
    }

    /// Findings (warning or drift markers) over the whole run, kept or not.
    pub fn findings(&self) -> u64 {
        self.series
            .iter()
            .map(|s| s.markers.iter().filter(|m| m.kind != MarkerKind::Recovered).count() as u64 + s.markers_dropped)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(i: u64, x: f64) -> Bucket {
        Bucket::single(i as i64 * 1000, i, x, 1.0, None, DriftStatus::Stable)
    }

    #[test]
    fn a_whole_series_halves_its_resolution_and_keeps_every_window() {
        let limits = Limits { points: 8, ..Limits::REPLAY };
        let mut s = SeriesData::new("latency_ms".into(), "threshold".into(), 0, false);
        for i in 0..100 {
            s.push(window(i, i as f64), &limits);
        }
        assert!(s.buckets.len() < 8);
        let n: u32 = s.all_buckets().map(|b| b.n).sum();
        assert_eq!(n, 100, "every window is in some bucket");
        let first = s.all_buckets().next().copied().unwrap_or_else(|| panic!("a bucket"));
        let last = s.all_buckets().last().copied().unwrap_or_else(|| panic!("a bucket"));
        assert_eq!((first.first_seq, last.last_seq), (0, 99));
        assert_eq!(first.min, 0.0);
        assert_eq!(first.mean(), (0..first.n).map(f64::from).sum::<f64>() / f64::from(first.n));
    }

    #[test]
    fn a_recent_series_keeps_the_last_windows() {
        let limits = Limits { points: 8, ..Limits::LIVE };
        let mut s = SeriesData::new("latency_ms".into(), "threshold".into(), 0, false);
        for i in 0..100 {
            s.push(window(i, i as f64), &limits);
        }
        let seqs: Vec<u64> = s.all_buckets().map(|b| b.first_seq).collect();
        assert_eq!(seqs, (92..100).collect::<Vec<_>>());
        assert_eq!(s.windows, 100);
    }

    #[test]
    fn open_findings_follow_recoveries_and_retrain_requests() {
        let limits = Limits::REPLAY;
        let marker = |seq, kind| Marker { ms: 0, seq, kind, statistic: 1.0, threshold: 0.5, p_value: None };
        let mut cond = SeriesData::new("metrics.accuracy".into(), "threshold".into(), 0, false);
        cond.mark(marker(10, MarkerKind::Drift), &limits);
        cond.status = DriftStatus::Drift;
        assert_eq!(cond.open(None), Some(MarkerKind::Drift));
        cond.mark(marker(20, MarkerKind::Recovered), &limits);
        cond.status = DriftStatus::Stable;
        assert_eq!(cond.open(None), None);
        let mut change = SeriesData::new("error".into(), "adwin".into(), 1, true);
        change.mark(marker(30, MarkerKind::Drift), &limits);
        assert_eq!(change.open(Some(29)), Some(MarkerKind::Drift));
        assert_eq!(change.open(Some(30)), None, "the retrain request answered it");
    }
}
