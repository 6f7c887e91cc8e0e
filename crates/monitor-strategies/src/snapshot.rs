//! Snapshots: the whole state of a [`Monitor`], saved and restored.
//!
//! A snapshot holds every model version's detectors (windows, counters,
//! reference samples), their alarm state and open findings, the retrain
//! policy's memory, the predictions waiting for labels, and the counters.
//! Restored into a monitor of the same plan, it carries on exactly as the
//! monitor it was taken from: the same records give the same events.
//!
//! Snapshots are JSON, with a `format` name and a `version` number. A
//! snapshot of another format version, a corrupt one, or one taken under
//! other `[[monitors]]` is refused with an error that says which and where;
//! it never panics and never restores a state that does not fit.
//!
//! ```
//! use monitor_core::record::Record;
//! use monitor_strategies::detectors::AdwinConfig;
//! use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec};
//!
//! let plan = MonitorPlan {
//!     monitors: vec![MonitorSpec::new("latency_ms", AdwinConfig::default())?],
//!     ..Default::default()
//! };
//! let mut monitor = Monitor::new(plan.clone())?;
//! let mut events = Vec::new();
//! let record = Record::parse(r#"{"model": "search", "latency_ms": 12.5}"#, chrono::Utc::now())?;
//! monitor.process(0, &record, &mut events)?;
//!
//! let saved: Vec<u8> = monitor.snapshot()?.to_json()?;
//! let restored = Monitor::restore(plan, &saved)?;
//! assert_eq!(restored.stats(), monitor.stats());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use monitor_core::Error;
use monitor_core::detector::DriftStatus;
use monitor_core::event::Finding;
use monitor_core::labels::{LabelJoiner, LabelJoinerState};
use monitor_core::signal::{Signal, SignalRef, missing_quality_name};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::monitor::{
    Accepts, EventClock, HashMap, Instance, ModelState, Monitor, MonitorPlan, MonitorStats, Series, VERSION_BYTES,
    Versions, expected_bytes, series_bytes,
};
use crate::performance::VersionWindows;
use crate::policy::PolicyState;

/// The `format` of a monitor snapshot.
pub const SNAPSHOT_FORMAT: &str = "model-monitor/monitor-snapshot";
/// The snapshot format version this build writes (3: the per-window state
/// of `[[performance]]` and `[[reconstruction]]`, their fits included).
/// Version 2 is still read: it has no such state, which starts afresh.
pub const SNAPSHOT_VERSION: u32 = 3;
/// The oldest snapshot format version this build reads.
pub const SNAPSHOT_MIN_VERSION: u32 = 2;

/// The saved state of a [`Monitor`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSnapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The format version, [`SNAPSHOT_VERSION`] when written by this build.
    pub version: u32,
    /// The `[[monitors]]` the state was built by, as configured: a restore
    /// under different monitors is refused.
    pub monitors: Vec<Json>,
    /// The counters.
    pub stats: MonitorStats,
    /// Records accepted, the clock of least-recently-seen eviction.
    pub tick: u64,
    /// Event time: what closes the windows of quiet model versions.
    #[serde(default)]
    pub clock: EventClock,
    /// Predictions waiting for their labels.
    pub labels: LabelJoinerState,
    /// Every model version, in the order they are queued for eviction.
    pub models: Vec<VersionSnapshot>,
    /// The `[[performance]]` and `[[reconstruction]]` entries the state was
    /// built by: a restore under others is refused (none before version 3).
    #[serde(default)]
    pub windows: Json,
}

/// The state of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionSnapshot {
    /// The model.
    pub model: String,
    /// The version.
    pub version: String,
    /// The retrain policy's memory.
    pub policy: PolicyState,
    /// The monitor's `tick` when this version last had a record.
    pub last_seen: u64,
    /// The tick it was queued for eviction at.
    pub queued: u64,
    /// Every signal seen, with its detectors.
    pub signals: Vec<SeriesSnapshot>,
    /// The features whose missing values are watched, in the order they
    /// were first seen.
    #[serde(default)]
    pub expected: Vec<String>,
    /// The per-window state: performance windows, the CBPE calibration,
    /// the PCA basis (absent before version 3).
    #[serde(default, skip_serializing_if = "VersionWindows::is_empty")]
    pub windows: VersionWindows,
}

/// The detectors of one signal of a model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSnapshot {
    /// The signal, as written in output (`features.amount`).
    pub signal: Signal,
    /// Whether its first value was categorical.
    pub categorical: bool,
    /// One entry per monitor that watches the signal, in config order.
    pub detectors: Vec<DetectorSnapshot>,
}

/// One detector and its alarm state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorSnapshot {
    /// Index of the `[[monitors]]` entry that made it.
    pub monitor: usize,
    /// The detector's kind.
    pub kind: String,
    /// Its alarm status.
    pub status: DriftStatus,
    /// The finding it has open, if any.
    pub open: Option<Finding>,
    /// Consecutive verdicts against its status, towards flap damping.
    #[serde(default)]
    pub streak: u32,
    /// The detector's own state ([`monitor_core::detector::Detector::save_state`]).
    pub state: Json,
}

impl MonitorSnapshot {
    /// The snapshot as JSON bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::snapshot("", e.to_string()))
    }

    /// Reads a snapshot from JSON bytes, checking its format and version
    /// before anything else.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let value: Json = serde_json::from_slice(bytes)
            .map_err(|e| Error::snapshot("", format!("not a readable snapshot (corrupt or truncated JSON): {e}")))?;
        let format = value.get("format").and_then(Json::as_str);
        if format != Some(SNAPSHOT_FORMAT) {
            return Err(Error::snapshot(
                "format",
                format!(
                    "expected `{SNAPSHOT_FORMAT}`, got {}",
                    format.map_or("nothing".to_owned(), |f| format!("`{f}`"))
                ),
            ));
        }
        match value.get("version").and_then(Json::as_u64) {
            Some(v) if (u64::from(SNAPSHOT_MIN_VERSION)..=u64::from(SNAPSHOT_VERSION)).contains(&v) => {}
            Some(v) => {
                return Err(Error::snapshot(
                    "version",
                    format!(
                        "snapshot format version {v} is not readable by this build, which reads versions {SNAPSHOT_MIN_VERSION} to {SNAPSHOT_VERSION}"
                    ),
                ));
            }
            None => return Err(Error::snapshot("version", "missing or not a number")),
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            Error::snapshot(path, e.into_inner().to_string())
        })
    }
}

/// The `[[monitors]]` of a plan as configured, to tell whether a snapshot
/// fits it.
fn monitors_of(plan: &MonitorPlan) -> Result<Vec<Json>, Error> {
    Ok(plan
        .monitors
        .iter()
        .map(|m| {
            serde_json::json!({
                "signal": m.signal.to_string(),
                "kind": m.detector.kind(),
                "detector": m.detector.params(),
                "models": m.models,
                "fire_after": m.fire_after,
                "resolve_after": m.resolve_after,
            })
        })
        .collect())
}

impl Monitor {
    /// Takes the whole state: every model version's detectors, alarm state
    /// and policy memory, the pending labels and the counters. Fails only if
    /// a detector cannot save its state (one from an outside crate that
    /// does not implement it).
    pub fn snapshot(&self) -> Result<MonitorSnapshot, Error> {
        let mut models = Vec::with_capacity(self.versions.count);
        // In eviction order, so that a restored monitor evicts as this one would.
        for (queued, model, version) in &self.versions.queue {
            let Some(state) = self.versions.models.get(model).and_then(|vs| vs.get(version)) else { continue };
            let path = format!("{model} {version}");
            models.push(VersionSnapshot {
                model: model.clone(),
                version: version.clone(),
                policy: state.policy.clone(),
                last_seen: state.last_seen,
                queued: *queued,
                signals: save_series(state, &path)?,
                expected: state.expected.iter().map(|(f, _)| f.clone()).collect(),
                windows: state.windows.clone(),
            });
        }
        Ok(MonitorSnapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            monitors: monitors_of(&self.plan)?,
            stats: self.stats,
            tick: self.tick,
            clock: self.clock.clone(),
            labels: self.labels.state(),
            models,
            windows: windows_of(&self.plan),
        })
    }

    /// A monitor for `plan` with the state saved in `snapshot` (JSON bytes,
    /// from [`MonitorSnapshot::to_json`]).
    pub fn restore(plan: impl Into<Arc<MonitorPlan>>, snapshot: &[u8]) -> Result<Self, Error> {
        let snapshot = MonitorSnapshot::from_json(snapshot)?;
        Self::restore_snapshot(plan, snapshot)
    }

    /// A monitor for `plan` with the state of `snapshot`. Every part is
    /// checked against the plan and its limits before it is used.
    pub fn restore_snapshot(plan: impl Into<Arc<MonitorPlan>>, snapshot: MonitorSnapshot) -> Result<Self, Error> {
        let mut monitor = Self::new(plan)?;
        let plan = Arc::clone(&monitor.plan);
        if snapshot.format != SNAPSHOT_FORMAT || !(SNAPSHOT_MIN_VERSION..=SNAPSHOT_VERSION).contains(&snapshot.version)
        {
            return Err(Error::snapshot(
                "version",
                format!(
                    "`{}` version {} is not readable by this build, which reads `{SNAPSHOT_FORMAT}` versions {SNAPSHOT_MIN_VERSION} to {SNAPSHOT_VERSION}",
                    snapshot.format, snapshot.version
                ),
            ));
        }
        check_monitors(&plan, &snapshot.monitors)?;
        check_counts(&snapshot)?;
        // Version 2 had no per-window state: nothing to check, it starts afresh.
        if snapshot.version >= 3 && snapshot.windows != windows_of(&plan) {
            return Err(Error::snapshot(
                "windows",
                format!(
                    "the config's [[performance]] and [[reconstruction]] are {} but the snapshot was taken under {}",
                    windows_of(&plan),
                    snapshot.windows
                ),
            ));
        }
        if snapshot.models.len() > plan.limits.max_model_versions {
            return Err(Error::snapshot(
                "models",
                format!(
                    "{} model versions saved, more than limits.max_model_versions = {}",
                    snapshot.models.len(),
                    plan.limits.max_model_versions
                ),
            ));
        }
        let mut models: HashMap<String, HashMap<String, ModelState>> = HashMap::default();
        let mut queue = std::collections::VecDeque::with_capacity(snapshot.models.len());
        for (i, saved) in snapshot.models.into_iter().enumerate() {
            let path = format!("models[{i}]");
            let state = restore_version(&plan, &saved, &path)?;
            queue.push_back((saved.queued, saved.model.clone(), saved.version.clone()));
            let versions = models.entry(saved.model).or_default();
            if versions.insert(saved.version, state).is_some() {
                return Err(Error::snapshot(path, "this model version is saved twice"));
            }
        }
        let count = models.values().map(HashMap::len).sum();
        let bytes: usize = models.values().flat_map(HashMap::values).map(|s| s.bytes).sum();
        if bytes > plan.limits.max_state_bytes() {
            return Err(Error::snapshot(
                "models",
                format!(
                    "the saved state needs up to {} MiB, more than limits.max_state_mib = {}",
                    bytes.div_ceil(1 << 20),
                    plan.limits.max_state_mib
                ),
            ));
        }
        monitor.versions = Versions { models, count, bytes, queue };
        monitor.labels =
            LabelJoiner::restore(plan.limits.pending_labels, plan.limits.label_max_age.as_chrono(), snapshot.labels)
                .map_err(|e| Error::snapshot("labels", e))?;
        monitor.stats = snapshot.stats;
        monitor.tick = snapshot.tick;
        monitor.clock.restore(snapshot.clock);
        Ok(monitor)
    }
}

/// The `[[performance]]` and `[[reconstruction]]` entries of a plan.
fn windows_of(plan: &MonitorPlan) -> Json {
    serde_json::json!({ "performance": plan.performance, "reconstruction": plan.reconstruction })
}

/// The largest count a snapshot may hold: a record counter, the tick, a
/// policy's samples. Counting on from it cannot overflow in centuries, and
/// a count past it can only come from a corrupt snapshot.
pub const MAX_SAVED_COUNT: u64 = 1 << 62;

/// Refuses a snapshot whose counters could overflow once counting goes on.
fn check_counts(snapshot: &MonitorSnapshot) -> Result<(), Error> {
    let check = |path: String, n: u64| {
        if n > MAX_SAVED_COUNT {
            Err(Error::snapshot(path, format!("{n} is past the largest count a monitor reaches ({MAX_SAVED_COUNT})")))
        } else {
            Ok(())
        }
    };
    check("tick".into(), snapshot.tick)?;
    // Every counter, by its name, including those added later.
    if let Ok(Json::Object(stats)) = serde_json::to_value(snapshot.stats) {
        for (name, value) in stats {
            check(format!("stats.{name}"), value.as_u64().unwrap_or(0))?;
        }
    }
    for (i, saved) in snapshot.models.iter().enumerate() {
        check(format!("models[{i}].policy.samples"), saved.policy.samples)?;
        check(format!("models[{i}].last_seen"), saved.last_seen)?;
        check(format!("models[{i}].queued"), saved.queued)?;
    }
    Ok(())
}

fn check_monitors(plan: &MonitorPlan, saved: &[Json]) -> Result<(), Error> {
    let current = monitors_of(plan)?;
    if current.len() != saved.len() {
        return Err(Error::snapshot(
            "monitors",
            format!(
                "the snapshot was taken under {} [[monitors]] and the config has {}; state cannot be carried over to other monitors",
                saved.len(),
                current.len()
            ),
        ));
    }
    for (i, (now, then)) in current.iter().zip(saved).enumerate() {
        if now != then {
            return Err(Error::snapshot(
                format!("monitors[{i}]"),
                format!("the config now says {now} but the snapshot was taken under {then}"),
            ));
        }
    }
    Ok(())
}

/// The series of a model version in a fixed order: latency, prediction,
/// error, then features and metrics by name.
fn save_series(state: &ModelState, path: &str) -> Result<Vec<SeriesSnapshot>, Error> {
    let all = state.series_in_order();
    all.into_iter()
        .map(|(signal, series)| {
            let detectors = series
                .instances
                .iter()
                .map(|inst| {
                    let state = inst.detector.save_state().map_err(|e| {
                        Error::snapshot(format!("{path} {signal} {}", inst.detector.kind()), e.to_string())
                    })?;
                    Ok(DetectorSnapshot {
                        monitor: inst.spec,
                        kind: inst.detector.kind().to_owned(),
                        status: inst.status,
                        open: inst.open.clone(),
                        streak: inst.streak,
                        state,
                    })
                })
                .collect::<Result<_, Error>>()?;
            Ok(SeriesSnapshot { signal, categorical: series.categorical, detectors })
        })
        .collect()
}

fn restore_version(plan: &MonitorPlan, saved: &VersionSnapshot, path: &str) -> Result<ModelState, Error> {
    if saved.signals.len() > plan.limits.max_signals_per_model {
        return Err(Error::snapshot(
            format!("{path}.signals"),
            format!(
                "{} signals saved, more than limits.max_signals_per_model = {}",
                saved.signals.len(),
                plan.limits.max_signals_per_model
            ),
        ));
    }
    if saved.expected.len() > plan.limits.max_signals_per_model {
        return Err(Error::snapshot(
            format!("{path}.expected"),
            format!(
                "{} features saved, more than limits.max_signals_per_model = {}",
                saved.expected.len(),
                plan.limits.max_signals_per_model
            ),
        ));
    }
    let mut state = ModelState {
        policy: saved.policy.clone(),
        last_seen: saved.last_seen,
        bytes: VERSION_BYTES
            + saved.model.len()
            + saved.version.len()
            + saved.expected.iter().map(|f| expected_bytes(f)).sum::<usize>(),
        expected: saved.expected.iter().map(|f| (f.clone(), missing_quality_name(f))).collect(),
        ..ModelState::default()
    };
    saved
        .windows
        .check(&plan.performance, &plan.reconstruction, &saved.model)
        .map_err(|e| Error::snapshot(format!("{path}.windows"), e))?;
    state.windows = saved.windows.clone();
    state.bytes += state.windows.bytes(&plan.performance, &plan.reconstruction);
    for (j, series) in saved.signals.iter().enumerate() {
        let path = format!("{path}.signals[{j}]");
        let sig = series.signal.as_ref();
        let expected: Vec<usize> = plan
            .monitors
            .iter()
            .enumerate()
            .filter(|(_, m)| m.applies_to(&saved.model) && m.signal.matches(sig))
            .filter(|(_, m)| m.detector.accepts(series.categorical))
            .map(|(i, _)| i)
            .collect();
        let got: Vec<usize> = series.detectors.iter().map(|d| d.monitor).collect();
        if expected != got {
            return Err(Error::snapshot(
                path,
                format!(
                    "signal `{}` of model `{}` is watched by monitors {expected:?} under this config, but the snapshot has detectors of monitors {got:?}",
                    series.signal, saved.model
                ),
            ));
        }
        let signal_name = series.signal.to_string();
        let mut instances = Vec::with_capacity(series.detectors.len());
        for (k, d) in series.detectors.iter().enumerate() {
            let path = format!("{path}.detectors[{k}]");
            let mut detector = plan.monitors[d.monitor].detector.build(&signal_name);
            if detector.kind() != d.kind {
                return Err(Error::snapshot(
                    path,
                    format!("saved a `{}` detector where the config builds `{}`", d.kind, detector.kind()),
                ));
            }
            detector
                .load_state(d.state.clone())
                .map_err(|e| Error::snapshot(format!("{path}.state"), e.to_string()))?;
            let mode = detector.alarm_mode();
            instances.push(Instance {
                detector,
                spec: d.monitor,
                mode,
                status: d.status,
                open: d.open.clone(),
                last: None,
                streak: d.streak,
            });
        }
        state.instances += instances.len();
        state.failing += instances.iter().filter(|i| i.status == DriftStatus::Drift).count();
        state.signals += 1;
        state.bytes += series_bytes(
            &signal_name,
            instances.iter().map(|i| plan.monitors[i.spec].detector.state_bytes_for(series.categorical)).sum(),
        );
        let series = Series { instances, categorical: series.categorical };
        let duplicate = match sig {
            SignalRef::LatencyMs => state.latency.replace(series).is_some(),
            SignalRef::Prediction => state.prediction.replace(series).is_some(),
            SignalRef::Error => state.error.replace(series).is_some(),
            SignalRef::Feature(n) => state.features.insert(n.to_owned(), series).is_some(),
            SignalRef::Metric(n) => state.metrics.insert(n.to_owned(), series).is_some(),
            SignalRef::Quality(n) => state.quality.insert(n.to_owned(), series).is_some(),
            SignalRef::Perf(_) | SignalRef::Estimated(_) | SignalRef::Multivariate(_) => {
                state.windowed.insert(sig.to_owned(), series).is_some()
            }
        };
        if duplicate {
            return Err(Error::snapshot(path, format!("signal `{}` is saved twice", signal_name)));
        }
    }
    Ok(state)
}
