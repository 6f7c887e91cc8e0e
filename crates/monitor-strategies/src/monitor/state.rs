//! The state of each model version: its signals, their detectors and alarm
//! state, created on first sight and evicted least recently seen first.

use std::collections::HashMap;

use monitor_core::detector::{AlarmMode, Detector, DriftStatus};
use monitor_core::event::Finding;
use monitor_core::signal::SignalRef;

use crate::policy::PolicyState;

use super::{Limits, MonitorStats};

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
    pub(crate) signals: usize,
    pub(crate) instances: usize,
    pub(crate) failing: usize,
    pub(crate) policy: PolicyState,
    /// The monitor's record count when this version last had a record: the
    /// least recently seen version is evicted first.
    pub(crate) last_seen: u64,
    /// Whether hitting `max_signals_per_model` was logged for this version.
    pub(crate) warned_signals: bool,
}

/// The state of a model version, created on first sight. At the limit of
/// model versions, the least recently seen one is evicted to make room, so
/// that a long-running engine keeps monitoring new deployments.
pub(super) fn state_of<'m>(
    models: &'m mut HashMap<String, HashMap<String, ModelState>>,
    versions: &mut usize,
    stats: &mut MonitorStats,
    tick: u64,
    limits: &Limits,
    model: &str,
    version: &str,
) -> &'m mut ModelState {
    let exists = models.get(model).is_some_and(|v| v.contains_key(version));
    if !exists {
        if *versions >= limits.max_model_versions {
            evict_least_recent(models, versions, stats);
        }
        *versions += 1;
    }
    let state = models.entry(model.to_owned()).or_default().entry(version.to_owned()).or_default();
    state.last_seen = tick;
    state
}

fn evict_least_recent(
    models: &mut HashMap<String, HashMap<String, ModelState>>,
    versions: &mut usize,
    stats: &mut MonitorStats,
) {
    let oldest = models
        .iter()
        .flat_map(|(m, vs)| vs.iter().map(move |(v, s)| (s.last_seen, m, v)))
        .min()
        .map(|(_, m, v)| (m.clone(), v.clone()));
    let Some((model, version)) = oldest else { return };
    if let Some(vs) = models.get_mut(&model) {
        if let Some(state) = vs.remove(&version) {
            if state.failing > 0 {
                tracing::warn!(
                    model = %model.escape_debug(),
                    version = %version.escape_debug(),
                    "evicted a model version with open drift findings (limits.max_model_versions reached)"
                );
            }
        }
        if vs.is_empty() {
            models.remove(&model);
        }
    }
    *versions -= 1;
    stats.versions_evicted += 1;
}

/// The series of `sig` in `state`, if it exists.
pub(super) fn series_of<'s>(state: &'s mut ModelState, sig: SignalRef<'_>) -> Option<&'s mut Series> {
    match sig {
        SignalRef::LatencyMs => state.latency.as_mut(),
        SignalRef::Prediction => state.prediction.as_mut(),
        SignalRef::Error => state.error.as_mut(),
        SignalRef::Feature(n) => state.features.get_mut(n),
        SignalRef::Metric(n) => state.metrics.get_mut(n),
    }
}

impl ModelState {
    /// How many signals the monitor `spec` tests in this model version.
    pub(super) fn family_size(&self, spec: usize) -> usize {
        [&self.latency, &self.prediction, &self.error]
            .into_iter()
            .filter_map(Option::as_ref)
            .chain(self.features.values())
            .chain(self.metrics.values())
            .map(|s| s.instances.iter().filter(|i| i.spec == spec).count())
            .sum()
    }
}
