//! Read-only views of a monitor's state, for a daemon's query endpoints:
//! what each model version has seen, and where each of its detectors
//! stands. Every answer is bounded by the caller's limits.

use chrono::{DateTime, Utc};
use monitor_core::detector::DriftStatus;
use monitor_core::event::Finding;
use monitor_core::signal::Signal;
use serde::Serialize;

use super::{ModelState, Monitor};

/// One model version at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionOverview {
    /// The model.
    pub model: String,
    /// The version.
    pub version: String,
    /// Records seen for this version (late labels included).
    pub records: u64,
    /// Signals tracked.
    pub signals: usize,
    /// Detectors in warning or drift.
    pub open_findings: usize,
}

/// One model version in full: its counts and every detector's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDetail {
    /// The version at a glance.
    #[serde(flatten)]
    pub overview: VersionOverview,
    /// Event time of the last retrain request the policy made for it.
    pub last_retrain_request: Option<DateTime<Utc>>,
    /// Each detector, by signal (latency, prediction, error, features and
    /// metrics by name), in config order within a signal.
    pub detectors: Vec<DetectorState>,
    /// Detectors left out of `detectors` by the caller's limit.
    pub detectors_not_listed: usize,
}

/// Where one detector of one signal stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorState {
    /// The signal watched.
    pub signal: Signal,
    /// The detector's kind.
    pub detector: String,
    /// Index of the `[[monitors]]` entry that made it.
    pub monitor: usize,
    /// Stable, warning or drift.
    pub status: DriftStatus,
    /// The statistic of its last evaluation; `None` before the first one
    /// (a window still filling) or when it was not a finite number.
    pub statistic: Option<f64>,
    /// What that statistic was compared with.
    pub threshold: Option<f64>,
    /// Its p-value, for tests that compute one.
    pub p_value: Option<f64>,
    /// The finding it has open, if any.
    pub open: Option<Finding>,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn overview(model: &str, version: &str, state: &ModelState) -> VersionOverview {
    let open_findings = state.series_in_order().iter().map(|(_, s)| open_in(s)).sum();
    VersionOverview {
        model: model.to_owned(),
        version: version.to_owned(),
        records: state.policy.samples,
        signals: state.signals,
        open_findings,
    }
}

fn open_in(series: &super::Series) -> usize {
    series.instances.iter().filter(|i| i.status != DriftStatus::Stable).count()
}

impl Monitor {
    /// Model versions held, sorted by model and version: the first `limit`
    /// of them, and how many there are in all.
    pub fn overview(&self, limit: usize) -> (Vec<VersionOverview>, usize) {
        let mut keys: Vec<(&String, &String, &ModelState)> =
            self.versions.models.iter().flat_map(|(m, vs)| vs.iter().map(move |(v, s)| (m, v, s))).collect();
        let total = keys.len();
        keys.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let listed = keys.into_iter().take(limit).map(|(m, v, s)| overview(m, v, s)).collect();
        (listed, total)
    }

    /// Every version of `model`, sorted by version, each with at most
    /// `max_detectors` detectors listed. Empty when the model is unknown.
    pub fn version_details(&self, model: &str, max_detectors: usize) -> Vec<VersionDetail> {
        let Some(versions) = self.versions.models.get(model) else { return Vec::new() };
        let mut sorted: Vec<(&String, &ModelState)> = versions.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        sorted
            .into_iter()
            .map(|(version, state)| {
                let mut detectors = Vec::new();
                let mut not_listed = 0;
                for (signal, series) in state.series_in_order() {
                    for inst in &series.instances {
                        if detectors.len() >= max_detectors {
                            not_listed += 1;
                            continue;
                        }
                        detectors.push(DetectorState {
                            signal: signal.clone(),
                            detector: inst.detector.kind().to_owned(),
                            monitor: inst.spec,
                            status: inst.status,
                            statistic: inst.last.and_then(|a| finite(a.statistic)),
                            threshold: inst.last.and_then(|a| finite(a.threshold)),
                            p_value: inst.last.and_then(|a| a.p_value.and_then(finite)),
                            open: inst.open.clone(),
                        });
                    }
                }
                VersionDetail {
                    overview: overview(model, version, state),
                    last_retrain_request: state.policy.last_request,
                    detectors,
                    detectors_not_listed: not_listed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use monitor_core::record::Record;

    use crate::detectors::ThresholdConfig;
    use crate::{Monitor, MonitorPlan, MonitorSpec};

    fn monitor() -> Monitor {
        let threshold = ThresholdConfig { window: 2.into(), max: Some(100.0), ..Default::default() };
        let plan = MonitorPlan {
            monitors: vec![MonitorSpec::new("latency_ms", threshold).unwrap_or_else(|e| panic!("{e}"))],
            ..Default::default()
        };
        Monitor::new(plan).unwrap_or_else(|e| panic!("{e}"))
    }

    fn feed(monitor: &mut Monitor, lines: &[&str]) {
        let mut events = Vec::new();
        for (seq, line) in lines.iter().enumerate() {
            let record = Record::parse(line, chrono::Utc::now()).unwrap_or_else(|e| panic!("{e}"));
            monitor.process(seq as u64, &record, &mut events).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn overview_lists_versions_sorted_and_bounded() {
        let mut m = monitor();
        feed(
            &mut m,
            &[
                r#"{"model": "b", "latency_ms": 1}"#,
                r#"{"model": "a", "version": "v2", "latency_ms": 1}"#,
                r#"{"model": "a", "version": "v1", "latency_ms": 1}"#,
                r#"{"model": "a", "version": "v1", "latency_ms": 1}"#,
            ],
        );
        let (all, total) = m.overview(10);
        assert_eq!(total, 3);
        let keys: Vec<_> = all.iter().map(|o| (o.model.as_str(), o.version.as_str(), o.records)).collect();
        assert_eq!(keys, [("a", "v1", 2), ("a", "v2", 1), ("b", "default", 1)]);
        let (first, total) = m.overview(1);
        assert_eq!((first.len(), total), (1, 3));
    }

    #[test]
    fn details_show_each_detector_verdict_and_open_finding() {
        let mut m = monitor();
        feed(&mut m, &[r#"{"model": "a", "latency_ms": 1}"#]);
        let before = m.version_details("a", 10);
        assert_eq!(before[0].detectors[0].statistic, None, "the window is still filling");
        feed(&mut m, &[r#"{"model": "a", "latency_ms": 300}"#]);
        let details = m.version_details("a", 10);
        assert_eq!(details.len(), 1);
        let d = &details[0].detectors[0];
        assert_eq!((d.detector.as_str(), d.status), ("threshold", crate::DriftStatus::Drift));
        assert_eq!((d.statistic, d.threshold), (Some(150.5), Some(100.0)));
        assert!(d.open.is_some());
        assert_eq!(details[0].overview.open_findings, 1);
        assert!(m.version_details("a", 0)[0].detectors.is_empty());
        assert_eq!(m.version_details("a", 0)[0].detectors_not_listed, 1);
        assert!(m.version_details("nobody", 10).is_empty());
    }
}
