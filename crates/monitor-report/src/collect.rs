//! The collector: takes every window verdict from the monitors (as a
//! [`WindowFeed`] per shard) and every retrain job from the event bus (as an
//! [`Observer`]), and keeps the bounded [`model`](crate::model) a report
//! is drawn from.
//!
//! Each shard feeds a part of its own, so that shards never wait on each
//! other; a model is owned by one shard, so the parts never overlap.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use monitor_core::detector::{AlarmMode, DriftStatus};
use monitor_core::event::{Event, EventKind, Severity};
use monitor_core::observer::Observer;
use monitor_core::signal::Signal;
use monitor_strategies::{MonitorPlan, WindowFeed, WindowPoint};
use serde::Serialize;

use crate::model::{Bucket, ComparisonAt, JobMark, Limits, Marker, MarkerKind, SeriesData, VersionData};

type HashMap<K, V> = foldhash::HashMap<K, V>;

/// What a `[[monitors]]` entry is, for chart titles and axis labels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorInfo {
    /// The signal or glob it watches.
    pub signal: String,
    /// The detector's kind.
    pub kind: String,
    /// The detector's parameters, defaults filled in.
    pub params: serde_json::Value,
}

/// Everything collected, for rendering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The model versions, drift first, then warnings, then healthy; by
    /// name within each.
    pub versions: Vec<VersionData>,
    /// Windows of model versions past [`Limits::versions`].
    pub versions_dropped: u64,
    /// The monitors of the plan, by index.
    pub monitors: Vec<MonitorInfo>,
    /// The bounds it was collected within.
    #[serde(skip)]
    pub limits: Limits,
}

#[derive(Debug, Default)]
struct Part {
    versions: HashMap<String, HashMap<String, Version>>,
}

#[derive(Debug)]
struct Version {
    data: VersionData,
    /// The key of each series, in the order of `data.series`.
    keys: Vec<(Signal, usize)>,
}

#[derive(Debug, Default)]
struct Jobs {
    by_version: HashMap<(String, String), std::collections::VecDeque<JobMark>>,
    dropped: HashMap<(String, String), u64>,
    /// Where each job is kept, for its status updates.
    index: HashMap<uuid::Uuid, (String, String)>,
}

#[derive(Debug)]
struct Shared {
    limits: Limits,
    monitors: Vec<MonitorInfo>,
    parts: Mutex<Vec<Arc<Mutex<Part>>>>,
    jobs: Mutex<Jobs>,
    versions: AtomicUsize,
    versions_dropped: AtomicU64,
}

/// Collects a report's data within [`Limits`]. Cheap to clone; every clone
/// shares the same data.
#[derive(Debug, Clone)]
pub struct Collector {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Collector {
    /// A collector for the monitors of `plan`, within `limits`.
    pub fn new(plan: &MonitorPlan, limits: Limits) -> Self {
        let monitors = plan
            .monitors
            .iter()
            .map(|m| MonitorInfo {
                signal: m.signal.to_string(),
                kind: m.detector.kind().to_owned(),
                params: m.detector.params(),
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                limits,
                monitors,
                parts: Mutex::new(Vec::new()),
                jobs: Mutex::new(Jobs::default()),
                versions: AtomicUsize::new(0),
                versions_dropped: AtomicU64::new(0),
            }),
        }
    }

    /// A window feed for one monitor (one shard).
    pub fn feed(&self) -> Box<dyn WindowFeed> {
        let part = Arc::new(Mutex::new(Part::default()));
        lock(&self.shared.parts).push(Arc::clone(&part));
        Box::new(Feed { shared: Arc::clone(&self.shared), part })
    }

    /// An observer that follows the retrain jobs on the event bus.
    pub fn observer(&self) -> Box<dyn Observer> {
        Box::new(JobsObserver { shared: Arc::clone(&self.shared) })
    }

    /// Records a retrain request or a job's status (what the observer does).
    pub fn on_event(&self, event: &Event) {
        let limits = &self.shared.limits;
        let mut jobs = lock(&self.shared.jobs);
        match &event.kind {
            EventKind::RetrainRequested(r) => {
                let key = (event.key.model.clone(), event.key.version.clone());
                if !jobs.by_version.contains_key(&key) && jobs.by_version.len() >= limits.versions {
                    return;
                }
                let list = jobs.by_version.entry(key.clone()).or_default();
                if list.len() >= limits.jobs {
                    let gone = list.pop_front();
                    if let Some(gone) = gone {
                        jobs.index.remove(&gone.job_id);
                    }
                    *jobs.dropped.entry(key.clone()).or_default() += 1;
                }
                let reasons = r.reasons.iter().map(|f| format!("{} {}", f.signal, f.detector)).collect();
                let mark = JobMark {
                    job_id: r.job_id,
                    ms: event.ts.timestamp_millis(),
                    seq: event.seq,
                    reasons,
                    status: None,
                    detail: None,
                };
                jobs.by_version.entry(key.clone()).or_default().push_back(mark);
                jobs.index.insert(r.job_id, key);
            }
            EventKind::JobStatus(u) => {
                let Some(key) = jobs.index.get(&u.job_id).cloned() else { return };
                if let Some(job) =
                    jobs.by_version.get_mut(&key).and_then(|l| l.iter_mut().find(|j| j.job_id == u.job_id))
                {
                    job.status = Some(u.status);
                    job.detail.clone_from(&u.detail);
                }
            }
            EventKind::Finding(_) | EventKind::Recovered(_) => {}
        }
    }

    /// A copy of everything collected so far, sorted for a report.
    pub fn report(&self) -> Report {
        self.report_of(None, false)
    }

    /// A copy of what was collected of `model` (all its versions).
    pub fn model(&self, model: &str) -> Report {
        self.report_of(Some(model), false)
    }

    /// Every version's status, findings and jobs, without the windows:
    /// enough for a list of models.
    pub fn overview(&self) -> Report {
        self.report_of(None, true)
    }

    fn report_of(&self, only: Option<&str>, light: bool) -> Report {
        let parts: Vec<Arc<Mutex<Part>>> = lock(&self.shared.parts).clone();
        let mut versions = Vec::new();
        for part in parts {
            let part = lock(&part);
            for (model, vs) in &part.versions {
                if only.is_some_and(|m| m != model) {
                    continue;
                }
                versions.extend(vs.values().map(|v| if light { light_copy(&v.data) } else { v.data.clone() }));
            }
        }
        let jobs = lock(&self.shared.jobs);
        for ((model, version), list) in &jobs.by_version {
            if only.is_some_and(|m| m != model) {
                continue;
            }
            let pos = versions.iter().position(|v| &v.model == model && &v.version == version);
            let v = match pos {
                Some(i) => &mut versions[i],
                None => {
                    versions.push(VersionData::new(model, version));
                    let last = versions.len() - 1;
                    &mut versions[last]
                }
            };
            v.jobs = list.clone();
            v.jobs_dropped = jobs.dropped.get(&(model.clone(), version.clone())).copied().unwrap_or(0);
        }
        drop(jobs);
        versions.sort_by(|a, b| (a.health(), &a.model, &a.version).cmp(&(b.health(), &b.model, &b.version)));
        Report {
            versions,
            versions_dropped: self.shared.versions_dropped.load(Ordering::Relaxed),
            monitors: self.shared.monitors.clone(),
            limits: self.shared.limits,
        }
    }
}

/// A version without its windows and comparisons.
fn light_copy(v: &VersionData) -> VersionData {
    let series = v
        .series
        .iter()
        .map(|s| SeriesData {
            signal: s.signal.clone(),
            detector: s.detector.clone(),
            monitor: s.monitor,
            change: s.change,
            buckets: Default::default(),
            stride: s.stride,
            pending: None,
            windows: s.windows,
            markers: s.markers.clone(),
            markers_dropped: s.markers_dropped,
            comparisons: Default::default(),
            status: s.status,
        })
        .collect();
    VersionData { series, jobs: Default::default(), ..VersionData::new(&v.model, &v.version) }
}

/// One shard's window feed.
#[derive(Debug)]
struct Feed {
    shared: Arc<Shared>,
    part: Arc<Mutex<Part>>,
}

impl WindowFeed for Feed {
    fn window(&mut self, point: &WindowPoint<'_>) {
        let a = point.assessment;
        if !a.statistic.is_finite() {
            return;
        }
        let limits = &self.shared.limits;
        let mut part = lock(&self.part);
        let known = part.versions.get(point.model).is_some_and(|vs| vs.contains_key(point.version));
        if !known {
            if self.shared.versions.fetch_add(1, Ordering::Relaxed) >= limits.versions {
                self.shared.versions.fetch_sub(1, Ordering::Relaxed);
                self.shared.versions_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            part.versions.entry(point.model.to_owned()).or_default().insert(
                point.version.to_owned(),
                Version { data: VersionData::new(point.model, point.version), keys: Vec::new() },
            );
        }
        let Some(version) = part.versions.get_mut(point.model).and_then(|vs| vs.get_mut(point.version)) else {
            return;
        };
        let i = match version.keys.iter().position(|(s, m)| *m == point.monitor && s.as_ref() == point.signal) {
            Some(i) => i,
            None if version.keys.len() < limits.series_per_version => {
                version.keys.push((point.signal.to_owned(), point.monitor));
                let change = point.detector.alarm_mode() == AlarmMode::Change;
                let series =
                    SeriesData::new(point.signal.to_string(), point.detector.kind().to_owned(), point.monitor, change);
                version.data.series.push(series);
                version.keys.len() - 1
            }
            None => {
                version.data.series_dropped += 1;
                return;
            }
        };
        let series = &mut version.data.series[i];
        let ms = point.ts.timestamp_millis();
        series.push(Bucket::single(ms, point.seq, a.statistic, a.threshold, a.p_value, a.status), limits);
        let kind = match point.event {
            Some(EventKind::Finding(f)) if f.severity == Severity::Drift => MarkerKind::Drift,
            Some(EventKind::Finding(_)) => MarkerKind::Warning,
            Some(EventKind::Recovered(_)) => MarkerKind::Recovered,
            _ => return,
        };
        series.status = match kind {
            MarkerKind::Drift => DriftStatus::Drift,
            MarkerKind::Warning => DriftStatus::Warning,
            MarkerKind::Recovered => DriftStatus::Stable,
        };
        let marker =
            Marker { ms, seq: point.seq, kind, statistic: a.statistic, threshold: a.threshold, p_value: a.p_value };
        if kind != MarkerKind::Recovered && series.wants_comparison(limits) {
            if let Some(comparison) = point.detector.compare() {
                series.compared(ComparisonAt { marker: marker.clone(), comparison }, limits);
            }
        }
        series.mark(marker, limits);
    }
}

/// Follows retrain jobs for a [`Collector`].
struct JobsObserver {
    shared: Arc<Shared>,
}

#[async_trait]
impl Observer for JobsObserver {
    fn name(&self) -> &str {
        "report-jobs"
    }

    async fn on_event(&mut self, event: &Event) -> monitor_core::Result<()> {
        Collector { shared: Arc::clone(&self.shared) }.on_event(event);
        Ok(())
    }
}
