//! The state of each model version: its signals, their detectors and alarm
//! state, created on first sight and evicted quiet ones first.

use std::collections::VecDeque;

/// The maps of the hot path: keyed by names, looked up for every record, so
/// hashed with foldhash rather than SipHash (no untrusted-key flooding risk
/// here: the number of names per map is bounded by the limits).
pub(crate) type HashMap<K, V> = foldhash::HashMap<K, V>;

use monitor_core::correction::Correction;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus};
use monitor_core::event::Finding;
use monitor_core::signal::{Signal, SignalRef};

use crate::policy::PolicyState;

use super::{Limits, MonitorPlan, MonitorStats};

/// A detector kept for one (model, version, signal), with its alarm state.
#[derive(Debug)]
pub(crate) struct Instance {
    pub(crate) detector: Box<dyn Detector>,
    /// Index of the `[[monitors]]` entry that made it: its family for
    /// multiple-test correction.
    pub(crate) spec: usize,
    pub(crate) mode: AlarmMode,
    pub(crate) status: DriftStatus,
    pub(crate) open: Option<Finding>,
    /// The detector's last verdict (after multiple-test correction), for
    /// queries; not part of a snapshot.
    pub(crate) last: Option<Assessment>,
    /// Consecutive verdicts that differ from `status`, towards flap
    /// damping's `fire_after` and `resolve_after`.
    pub(crate) streak: u32,
}

/// The detectors of one signal of one model version.
#[derive(Debug, Default)]
pub(crate) struct Series {
    pub(crate) instances: Vec<Instance>,
    /// Whether the signal's first value was categorical: monitors whose
    /// detectors take numbers only are not set up on it.
    pub(crate) categorical: bool,
}

#[derive(Debug, Default)]
pub(crate) struct ModelState {
    pub(crate) latency: Option<Series>,
    pub(crate) prediction: Option<Series>,
    pub(crate) error: Option<Series>,
    pub(crate) features: HashMap<String, Series>,
    pub(crate) metrics: HashMap<String, Series>,
    /// The derived `quality.<name>` signals.
    pub(crate) quality: HashMap<String, Series>,
    /// The signals computed per window: `perf.*`, `estimated.*`,
    /// `multivariate.*`.
    pub(crate) windowed: HashMap<Signal, Series>,
    /// The performance and multivariate state of the version, when a
    /// `[[performance]]` or `[[reconstruction]]` entry applies to it.
    pub(crate) windows: crate::performance::VersionWindows,
    /// Features whose missing values are watched, in the order they were
    /// first seen: each with the name of its `quality.missing.<name>` signal
    /// (after `quality.`).
    pub(crate) expected: Vec<(String, String)>,
    pub(crate) signals: usize,
    pub(crate) instances: usize,
    pub(crate) failing: usize,
    pub(crate) policy: PolicyState,
    /// The monitor's record count when this version last had a record: the
    /// least recently seen version is evicted first.
    pub(crate) last_seen: u64,
    /// Whether hitting `max_signals_per_model` or the state budget was
    /// logged for this version.
    pub(crate) warned_signals: bool,
    /// The bound of this version's state, in bytes, as counted against
    /// `limits.max_state_mib`.
    pub(crate) bytes: usize,
}

/// What a model version costs before any signal: its names, its maps and
/// its policy state.
pub(crate) const VERSION_BYTES: usize = 1024;
/// What a signal costs besides its detectors: its name and its slot.
pub(crate) const SERIES_BYTES: usize = 256;

/// What watching the missing values of `feature` costs besides its
/// series: its name, and that of its `quality.missing.<name>` signal.
pub(crate) fn expected_bytes(feature: &str) -> usize {
    64 + 2 * feature.len() + monitor_core::signal::MISSING_PREFIX.len()
}

/// The memory bound of a new series of `name` with detectors of `detector_bytes`.
pub(crate) fn series_bytes(name: &str, detector_bytes: usize) -> usize {
    SERIES_BYTES + name.len() + detector_bytes
}

/// Every model version's state, with its count and its memory bound.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    pub(crate) models: HashMap<String, HashMap<String, ModelState>>,
    /// Model versions held.
    pub(crate) count: usize,
    /// The sum of their `bytes`.
    pub(crate) bytes: usize,
    /// Every version once, with the tick it was queued at. Eviction takes
    /// the first one not seen since it was queued, and sends the others to
    /// the back (a second chance), so that choosing a version to evict
    /// costs O(1) amortised, not a scan of every version; a version is
    /// never evicted while it keeps receiving records.
    pub(crate) queue: VecDeque<(u64, String, String)>,
}

impl Versions {
    /// The state of a model version, created on first sight. At the limit
    /// of model versions, or of the state budget, the quietest
    /// versions are evicted to make room, so that a long-running engine
    /// keeps monitoring new deployments.
    pub(super) fn state_of(
        &mut self,
        stats: &mut MonitorStats,
        tick: u64,
        limits: &Limits,
        model: &str,
        version: &str,
    ) -> (&mut ModelState, &mut usize) {
        let exists = self.models.get(model).is_some_and(|v| v.contains_key(version));
        if !exists {
            let cost = VERSION_BYTES + model.len() + version.len();
            while self.count > 0
                && (self.count >= limits.max_model_versions || self.bytes + cost > limits.max_state_bytes())
            {
                self.evict_least_recent(stats);
            }
            self.count += 1;
            self.bytes += cost;
            let state = self.models.entry(model.to_owned()).or_default().entry(version.to_owned()).or_default();
            state.bytes = cost;
            self.queue.push_back((tick, model.to_owned(), version.to_owned()));
        }
        // Known versions are found without building a key: no allocation.
        let Some(state) = self.models.get_mut(model).and_then(|v| v.get_mut(version)) else {
            unreachable!("the version was created above")
        };
        state.last_seen = tick;
        (state, &mut self.bytes)
    }

    /// Evicts the quietest versions other than `model` `version`
    /// until `wanted` more bytes fit the budget, or only that version is left.
    pub(super) fn free(
        &mut self,
        wanted: usize,
        stats: &mut MonitorStats,
        limits: &Limits,
        model: &str,
        version: &str,
    ) {
        while self.count > 1 && self.bytes + wanted > limits.max_state_bytes() {
            if !self.evict_least_recent_except(stats, Some((model, version))) {
                break;
            }
        }
    }

    fn evict_least_recent(&mut self, stats: &mut MonitorStats) {
        self.evict_least_recent_except(stats, None);
    }

    /// Evicts the first queued version not seen since it was queued, but
    /// `keep`; whether one was.
    fn evict_least_recent_except(&mut self, stats: &mut MonitorStats, keep: Option<(&str, &str)>) -> bool {
        // Each version is looked at most twice: once to be sent back, once
        // to go.
        let mut budget = 2 * self.queue.len() + 1;
        let chosen = loop {
            let Some((queued, model, version)) = self.queue.pop_front() else { return false };
            let Some(last_seen) = self.models.get(&model).and_then(|vs| vs.get(&version)).map(|s| s.last_seen) else {
                continue;
            };
            if budget == 0 {
                self.queue.push_front((queued, model, version));
                return false;
            }
            budget -= 1;
            if keep == Some((model.as_str(), version.as_str())) || last_seen > queued {
                self.queue.push_back((last_seen, model, version));
                continue;
            }
            break (model, version);
        };
        let (model, version) = chosen;
        let models = &mut self.models;
        if let Some(vs) = models.get_mut(&model) {
            if let Some(state) = vs.remove(&version) {
                self.bytes = self.bytes.saturating_sub(state.bytes);
                if state.failing > 0 {
                    tracing::warn!(
                        model = %model.escape_debug(),
                        version = %version.escape_debug(),
                        "evicted a model version with open drift findings (limits.max_model_versions or max_state_mib reached)"
                    );
                }
            }
            if vs.is_empty() {
                models.remove(&model);
            }
        }
        self.count = self.count.saturating_sub(1);
        stats.versions_evicted += 1;
        true
    }
}

/// The series of `sig` in `state`, if it exists.
pub(super) fn series_of<'s>(state: &'s mut ModelState, sig: SignalRef<'_>) -> Option<&'s mut Series> {
    match sig {
        SignalRef::LatencyMs => state.latency.as_mut(),
        SignalRef::Prediction => state.prediction.as_mut(),
        SignalRef::Error => state.error.as_mut(),
        SignalRef::Feature(n) => state.features.get_mut(n),
        SignalRef::Metric(n) => state.metrics.get_mut(n),
        SignalRef::Quality(n) => state.quality.get_mut(n),
        SignalRef::Perf(_) | SignalRef::Estimated(_) | SignalRef::Multivariate(_) => {
            state.windowed.get_mut(&sig.to_owned())
        }
    }
}

impl ModelState {
    /// Every series in a fixed order: latency, prediction, error, then
    /// features, metrics and quality signals by name, for queries.
    pub(crate) fn series_in_order(&self) -> Vec<(Signal, &Series)> {
        let mut all: Vec<(Signal, &Series)> = Vec::with_capacity(self.signals);
        for (signal, series) in
            [(Signal::LatencyMs, &self.latency), (Signal::Prediction, &self.prediction), (Signal::Error, &self.error)]
        {
            if let Some(series) = series {
                all.push((signal, series));
            }
        }
        let mut features: Vec<_> = self.features.iter().collect();
        features.sort_by(|a, b| a.0.cmp(b.0));
        all.extend(features.into_iter().map(|(n, s)| (Signal::Feature(n.clone()), s)));
        let mut metrics: Vec<_> = self.metrics.iter().collect();
        metrics.sort_by(|a, b| a.0.cmp(b.0));
        all.extend(metrics.into_iter().map(|(n, s)| (Signal::Metric(n.clone()), s)));
        let mut quality: Vec<_> = self.quality.iter().collect();
        quality.sort_by(|a, b| a.0.cmp(b.0));
        all.extend(quality.into_iter().map(|(n, s)| (Signal::Quality(n.clone()), s)));
        let mut windowed: Vec<_> = self.windowed.iter().collect();
        windowed.sort_by(|a, b| a.0.cmp(b.0));
        all.extend(windowed.into_iter().map(|(n, s)| (n.clone(), s)));
        all
    }

    /// Every series, in no particular order.
    pub(super) fn all_series(&self) -> impl Iterator<Item = &Series> {
        [&self.latency, &self.prediction, &self.error]
            .into_iter()
            .filter_map(Option::as_ref)
            .chain(self.features.values())
            .chain(self.metrics.values())
            .chain(self.quality.values())
            .chain(self.windowed.values())
    }

    /// Every series with its signal, in a fixed order: latency, prediction,
    /// error, then features, metrics and quality signals by name. For what
    /// must not depend on a hash map's order (sweeps, snapshots).
    pub(crate) fn sorted_series_mut(&mut self) -> Vec<(Signal, &mut Series)> {
        let mut all: Vec<(Signal, &mut Series)> = Vec::with_capacity(self.signals);
        for (signal, series) in [
            (Signal::LatencyMs, &mut self.latency),
            (Signal::Prediction, &mut self.prediction),
            (Signal::Error, &mut self.error),
        ] {
            if let Some(series) = series {
                all.push((signal, series));
            }
        }
        all.extend(sorted_by_name(&mut self.features, Signal::Feature));
        all.extend(sorted_by_name(&mut self.metrics, Signal::Metric));
        all.extend(sorted_by_name(&mut self.quality, Signal::Quality));
        let mut windowed: Vec<(&Signal, &mut Series)> = self.windowed.iter_mut().collect();
        windowed.sort_by(|a, b| a.0.cmp(b.0));
        all.extend(windowed.into_iter().map(|(n, s)| (n.clone(), s)));
        all
    }

    /// How many tests of this model version share one multiple-test
    /// family: the instances of corrected p-value monitors (across
    /// monitors) whose detectors report p-values.
    pub(super) fn p_value_tests(&self, plan: &MonitorPlan) -> usize {
        self.all_series()
            .flat_map(|s| &s.instances)
            .filter(|i| corrected(plan, i.spec) && i.detector.in_p_value_family())
            .count()
    }
}

/// The series of a map with their signals, by name.
fn sorted_by_name(map: &mut HashMap<String, Series>, make: fn(String) -> Signal) -> Vec<(Signal, &mut Series)> {
    let mut entries: Vec<(&String, &mut Series)> = map.iter_mut().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.into_iter().map(|(n, s)| (make(n.clone()), s)).collect()
}

/// Whether monitor `spec`'s p-values are decided in a corrected family.
pub(super) fn corrected(plan: &MonitorPlan, spec: usize) -> bool {
    plan.monitors[spec].detector.p_value_family().is_some_and(|(c, _)| c != Correction::None)
}
