//! The synchronous monitor: records in, events out, for every model version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use monitor_core::correction::Correction;
use monitor_core::detector::{AlarmMode, Assessment, Detector, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::duration::HumanDuration;
use monitor_core::event::{Event, EventKind, Finding, RetrainRequest};
use monitor_core::labels::LabelJoiner;
use monitor_core::record::{ModelKey, Record};
use monitor_core::registry::prefix_key;
use monitor_core::signal::{Signal, SignalRef, SignalValue};
use monitor_core::{Error, RecordError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pattern::SignalPattern;
use crate::policy::{PolicyConfig, PolicyState};

/// One `[[monitors]]` entry: a detector on the signals a pattern matches.
///
/// Built from config by `monitor_runtime::Config::plan`, or in code from a
/// detector's config type:
///
/// ```
/// use monitor_strategies::MonitorSpec;
/// use monitor_strategies::detectors::AdwinConfig;
///
/// let spec = MonitorSpec::new("latency_ms", AdwinConfig::default())?;
/// assert_eq!(spec.detector.kind(), "adwin");
/// # Ok::<(), monitor_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MonitorSpec {
    /// The signal, or a glob such as `features.*`.
    pub signal: SignalPattern,
    /// The detector kept for each matching (model, version, signal), as
    /// configured.
    pub detector: Arc<dyn DetectorSpec>,
    /// Only these models; every model when absent.
    pub models: Option<Vec<String>>,
}

impl MonitorSpec {
    /// A monitor of `signal` (a name or a glob) with `detector` (a
    /// detector's config, such as `ThresholdConfig`), for every model.
    pub fn new(signal: &str, detector: impl DetectorSpec + 'static) -> Result<Self, Error> {
        Self::from_spec(signal, Arc::new(detector))
    }

    /// A monitor of `signal` with a shared detector spec, such as one a
    /// `DetectorRegistry` built, for every model.
    pub fn from_spec(signal: &str, detector: Arc<dyn DetectorSpec>) -> Result<Self, Error> {
        let signal = SignalPattern::new(signal).map_err(|e| Error::config("signal", e))?;
        Ok(Self { signal, detector, models: None })
    }

    /// Narrows the monitor to `models`.
    #[must_use]
    pub fn models(mut self, models: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.models = Some(models.into_iter().map(Into::into).collect());
        self
    }

    pub(crate) fn applies_to(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|ms| ms.iter().any(|m| m == model))
    }
}

/// Two monitors are equal when they watch the same signals of the same
/// models with the same kind of detector and the same parameters.
impl PartialEq for MonitorSpec {
    fn eq(&self, other: &Self) -> bool {
        self.signal == other.signal
            && self.models == other.models
            && self.detector.kind() == other.detector.kind()
            && self.detector.params() == other.detector.params()
    }
}

/// Bounds that keep memory finite whatever the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Model versions tracked at once; records of further ones are rejected (default 10000).
    #[serde(default = "default_max_model_versions")]
    pub max_model_versions: usize,
    /// Distinct signals tracked per model version; further ones are ignored and counted (default 1000).
    #[serde(default = "default_max_signals")]
    pub max_signals_per_model: usize,
    /// Predictions waiting for a late label (default 100000).
    #[serde(default = "default_pending_labels")]
    pub pending_labels: usize,
    /// How long, in event time, a prediction waits for its label (default 24h).
    #[serde(default = "default_label_max_age")]
    pub label_max_age: HumanDuration,
    /// How far a record's `ts` may be ahead of the wall clock; records
    /// further ahead are rejected and counted (default 1h). A timestamp in
    /// the far future would otherwise hold every later retraining back
    /// behind its cooldown.
    #[serde(default = "default_max_future_skew")]
    pub max_future_skew: HumanDuration,
}

/// Upper bounds of the `[limits]` keys.
pub mod limit_bounds {
    use std::time::Duration;

    /// `max_model_versions`.
    pub const MAX_MODEL_VERSIONS: usize = 1_000_000;
    /// `max_signals_per_model`.
    pub const MAX_SIGNALS_PER_MODEL: usize = 100_000;
    /// `pending_labels`.
    pub const PENDING_LABELS: usize = 10_000_000;
    /// `label_max_age` (30 days).
    pub const LABEL_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
    /// `max_future_skew` (10 years).
    pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(3650 * 24 * 3600);
}

fn default_max_model_versions() -> usize {
    10_000
}
fn default_max_signals() -> usize {
    1_000
}
fn default_pending_labels() -> usize {
    100_000
}
fn default_label_max_age() -> HumanDuration {
    HumanDuration::from_secs(24 * 3600)
}
fn default_max_future_skew() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_model_versions: default_max_model_versions(),
            max_signals_per_model: default_max_signals(),
            pending_labels: default_pending_labels(),
            label_max_age: default_label_max_age(),
            max_future_skew: default_max_future_skew(),
        }
    }
}

impl Limits {
    /// The share of one of `shards` monitors that split a workload between
    /// them: the counts that bound the whole engine (`max_model_versions`,
    /// `pending_labels`) are divided, rounding up, so that the engine as a
    /// whole stays within them; per-version limits stay as they are.
    #[must_use]
    pub fn per_shard(&self, shards: usize) -> Self {
        let share = |n: usize| n.div_ceil(shards.max(1)).max(1);
        Self {
            max_model_versions: share(self.max_model_versions),
            pending_labels: share(self.pending_labels),
            ..self.clone()
        }
    }

    /// Checks every limit is at least 1 and at most its documented bound.
    pub fn validate(&self) -> Result<(), Error> {
        use limit_bounds as b;
        for (key, v, max) in [
            ("limits.max_model_versions", self.max_model_versions, b::MAX_MODEL_VERSIONS),
            ("limits.max_signals_per_model", self.max_signals_per_model, b::MAX_SIGNALS_PER_MODEL),
            ("limits.pending_labels", self.pending_labels, b::PENDING_LABELS),
        ] {
            if v == 0 || v > max {
                return Err(Error::config(key, format!("must be between 1 and {max} (got {v})")));
            }
        }
        for (key, v, max, shown) in [
            ("limits.label_max_age", self.label_max_age, b::LABEL_MAX_AGE, "30d"),
            ("limits.max_future_skew", self.max_future_skew, b::MAX_FUTURE_SKEW, "3650d"),
        ] {
            if v.as_std() > max {
                return Err(Error::config(key, format!("must be at most {shown} (got {v})")));
            }
        }
        Ok(())
    }
}

/// Everything a [`Monitor`] needs to know: monitors, policies and limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MonitorPlan {
    /// The monitors, in config order.
    pub monitors: Vec<MonitorSpec>,
    /// The default retrain policy.
    pub policy: PolicyConfig,
    /// Per-model policy overrides.
    pub model_policies: BTreeMap<String, PolicyConfig>,
    /// Memory bounds.
    pub limits: Limits,
}

impl MonitorPlan {
    /// Checks every monitor and policy; error keys are dotted paths such as
    /// `monitors[1].detector.window`.
    pub fn validate(&self) -> Result<(), Error> {
        let prefix = |p: String, e: Error| prefix_key(&p, e);
        for (i, m) in self.monitors.iter().enumerate() {
            m.detector.validate().map_err(|e| prefix(format!("monitors[{i}].detector"), e))?;
            if m.models.as_ref().is_some_and(Vec::is_empty) {
                return Err(Error::config(format!("monitors[{i}].models"), "must name at least one model when given"));
            }
        }
        self.policy.validate().map_err(|e| prefix("policy".into(), e))?;
        for (model, p) in &self.model_policies {
            p.validate().map_err(|e| prefix(format!("models.{model}.policy"), e))?;
        }
        self.limits.validate()?;
        self.check_triggers()
    }

    /// A trigger `{ at_least = k }` that more monitors must satisfy than can
    /// ever apply to a model can never fire: an error, when the monitors are
    /// named signals (a glob can match any number of signals).
    fn check_triggers(&self) -> Result<(), Error> {
        if self.monitors.is_empty() {
            // Policies checked on their own, before the monitors are built.
            return Ok(());
        }
        let policies = std::iter::once(("policy".to_owned(), None, &self.policy))
            .chain(self.model_policies.iter().map(|(m, p)| (format!("models.{m}.policy"), Some(m.as_str()), p)));
        for (key, model, policy) in policies {
            let crate::policy::Trigger::AtLeast(k) = policy.trigger else { continue };
            let applicable: Vec<&MonitorSpec> =
                self.monitors.iter().filter(|m| model.is_none_or(|model| m.applies_to(model))).collect();
            if applicable.iter().any(|m| m.signal.is_glob()) {
                continue;
            }
            if k > applicable.len() {
                return Err(Error::config(
                    format!("{key}.trigger.at_least"),
                    format!(
                        "is {k}, but at most {} monitors apply{}: the trigger could never fire",
                        applicable.len(),
                        model.map_or_else(String::new, |m| format!(" to model `{m}`"))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The policy of `model`.
    pub fn policy_for(&self, model: &str) -> &PolicyConfig {
        self.model_policies.get(model).unwrap_or(&self.policy)
    }

    /// Reads every reference file the monitors name (each once, shared by
    /// clones of the plan); errors name the dotted key, such as
    /// `monitors[1].detector.reference_file`. [`Monitor::new`] calls it.
    pub fn load_references(&self) -> Result<(), Error> {
        for (i, m) in self.monitors.iter().enumerate() {
            m.detector.load_references().map_err(|e| prefix_key(&format!("monitors[{i}].detector"), e))?;
        }
        Ok(())
    }

    /// The alpha each signal of `model` is tested at by the p-value monitors
    /// (`ks`, `chi_square`), given the signals the model carries: a monitor's
    /// family is the signals its pattern matches, and its correction shares
    /// the alpha among them. For `check-config`; the signals can come from a
    /// record or from a reference file (`DetectorSpec::reference_signals`).
    /// Signals in `categorical` are left out of the families of monitors
    /// whose detectors take numbers only (see [`MonitorPlan::unusable`]).
    pub fn effective_alphas(&self, model: &str, signals: &[Signal], categorical: &[Signal]) -> Vec<EffectiveAlpha> {
        let mut out = Vec::new();
        for (monitor, m) in self.monitors.iter().enumerate() {
            let Some((correction, alpha)) = m.detector.p_value_family() else { continue };
            if !m.applies_to(model) {
                continue;
            }
            let family: Vec<&Signal> = signals
                .iter()
                .filter(|s| m.signal.matches(s.as_ref()))
                .filter(|s| m.detector.accepts_categories() || !categorical.contains(s))
                .collect();
            let per_test = correction.per_test_alpha(alpha, family.len());
            out.extend(family.into_iter().map(|signal| EffectiveAlpha {
                monitor,
                signal: signal.clone(),
                correction,
                alpha,
                tests: 0,
                per_test,
            }));
        }
        let counts: Vec<usize> = out.iter().map(|e| out.iter().filter(|o| o.monitor == e.monitor).count()).collect();
        for (e, n) in out.iter_mut().zip(counts) {
            e.tests = n;
        }
        out
    }
}

impl MonitorPlan {
    /// The (monitor index, signal) pairs of `model` that can never work:
    /// a detector that takes numbers only, on a signal in `categorical`.
    /// The monitor skips them; `check-config` warns about them.
    pub fn unusable(&self, model: &str, categorical: &[Signal]) -> Vec<(usize, Signal)> {
        let mut out = Vec::new();
        for (i, m) in self.monitors.iter().enumerate() {
            if !m.applies_to(model) || m.detector.accepts_categories() {
                continue;
            }
            out.extend(categorical.iter().filter(|s| m.signal.matches(s.as_ref())).map(|s| (i, s.clone())));
        }
        out
    }
}

/// The alpha one signal is tested at, after multiple-test correction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveAlpha {
    /// Index of the `[[monitors]]` entry.
    pub monitor: usize,
    /// The signal.
    pub signal: Signal,
    /// How the family shares its alpha.
    pub correction: Correction,
    /// The family-wise alpha from config.
    pub alpha: f64,
    /// Number of signals in the family.
    pub tests: usize,
    /// The alpha this signal's p-value is compared with (under `fdr`, the
    /// threshold of the smallest p-value; the k-th smallest gets k times it).
    pub per_test: f64,
}

/// Counters of a [`Monitor`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorStats {
    /// Records accepted.
    pub records: u64,
    /// Records rejected (invalid, unjoinable label, over a limit).
    pub rejected: u64,
    /// Late labels joined to their predictions.
    pub labels_joined: u64,
    /// Findings emitted (warning and drift).
    pub findings: u64,
    /// Recoveries emitted.
    pub recoveries: u64,
    /// Retrain requests emitted.
    pub retrain_requests: u64,
    /// Signals ignored because a model version hit `max_signals_per_model`.
    pub signals_dropped: u64,
    /// Records rejected because their `ts` was further ahead of the clock
    /// than `limits.max_future_skew` (also counted in `rejected`).
    #[serde(default)]
    pub ts_too_far_ahead: u64,
    /// Model versions forgotten, least recently seen first, to make room
    /// for new ones under `limits.max_model_versions`.
    #[serde(default)]
    pub versions_evicted: u64,
    /// Monitors not set up on a signal because their detector takes numbers
    /// and the signal is categorical (once per model version and signal).
    #[serde(default)]
    pub monitors_skipped: u64,
}

impl MonitorStats {
    /// Adds `other`'s counts to these (to sum the shards of an engine).
    pub fn add(&mut self, other: &Self) {
        self.records += other.records;
        self.rejected += other.rejected;
        self.labels_joined += other.labels_joined;
        self.findings += other.findings;
        self.recoveries += other.recoveries;
        self.retrain_requests += other.retrain_requests;
        self.signals_dropped += other.signals_dropped;
        self.ts_too_far_ahead += other.ts_too_far_ahead;
        self.versions_evicted += other.versions_evicted;
        self.monitors_skipped += other.monitors_skipped;
    }
}

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

/// The synchronous monitoring loop for every model version: records in,
/// events out. No threads, no async; the runtime wraps it in shards.
///
/// ```
/// use monitor_core::event::EventKind;
/// use monitor_core::record::Record;
/// use monitor_strategies::detectors::ThresholdConfig;
/// use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, PolicyConfig};
///
/// let accuracy = ThresholdConfig { window: 5, min: Some(0.9), ..Default::default() };
/// let plan = MonitorPlan {
///     monitors: vec![MonitorSpec::new("metrics.accuracy", accuracy)?],
///     policy: PolicyConfig { min_samples: 5, ..Default::default() },
///     ..Default::default()
/// };
/// let mut monitor = Monitor::new(plan)?;
/// let mut events = Vec::new();
/// for (seq, acc) in [0.95, 0.96, 0.80, 0.82, 0.79].into_iter().enumerate() {
///     let line = format!(r#"{{"model": "fraud", "metrics": {{"accuracy": {acc}}}}}"#);
///     let record = Record::parse(&line, chrono::Utc::now())?;
///     monitor.process(seq as u64, &record, &mut events)?;
/// }
/// assert!(matches!(events[0].kind, EventKind::Finding(_)));
/// assert!(matches!(events[1].kind, EventKind::RetrainRequested(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Monitor {
    pub(crate) plan: Arc<MonitorPlan>,
    pub(crate) models: HashMap<String, HashMap<String, ModelState>>,
    pub(crate) versions: usize,
    pub(crate) labels: LabelJoiner,
    pub(crate) stats: MonitorStats,
    /// Records accepted so far, as a clock for least-recently-seen eviction.
    pub(crate) tick: u64,
}

impl Monitor {
    /// A monitor for `plan`, which is validated.
    pub fn new(plan: impl Into<Arc<MonitorPlan>>) -> Result<Self, Error> {
        let plan = plan.into();
        plan.validate()?;
        plan.load_references()?;
        let labels = LabelJoiner::new(plan.limits.pending_labels, plan.limits.label_max_age.as_chrono());
        Ok(Self { plan, models: HashMap::new(), versions: 0, labels, stats: MonitorStats::default(), tick: 0 })
    }

    /// The plan.
    pub fn plan(&self) -> &MonitorPlan {
        &self.plan
    }

    /// The counters so far.
    pub fn stats(&self) -> MonitorStats {
        self.stats
    }

    /// Predictions waiting for their labels.
    pub fn pending_labels(&self) -> usize {
        self.labels.len()
    }

    /// Processes one record; `seq` is its 0-based input index. Events are
    /// appended to `events`. A rejected record changes nothing but the
    /// `rejected` counter.
    pub fn process(&mut self, seq: u64, record: &Record, events: &mut Vec<Event>) -> Result<(), RecordError> {
        let result = self.process_inner(seq, record, events);
        match &result {
            Ok(()) => self.stats.records += 1,
            Err(_) => self.stats.rejected += 1,
        }
        result
    }

    fn process_inner(&mut self, seq: u64, record: &Record, events: &mut Vec<Event>) -> Result<(), RecordError> {
        record.validate()?;
        let plan = Arc::clone(&self.plan);
        let ts = record.ts;
        let skew = plan.limits.max_future_skew;
        if Utc::now().checked_add_signed(skew.as_chrono()).is_some_and(|latest| ts > latest) {
            self.stats.ts_too_far_ahead += 1;
            return Err(RecordError::field(
                "ts",
                ts.to_rfc3339(),
                format!("is more than {skew} ahead of the clock (limits.max_future_skew)"),
            ));
        }
        self.tick += 1;
        if record.is_late_label() {
            let joined = self.labels.join(record)?;
            let state = state_of(
                &mut self.models,
                &mut self.versions,
                &mut self.stats,
                self.tick,
                &plan.limits,
                &joined.key.model,
                &joined.key.version,
            );
            state.policy.samples += 1;
            let mut ctx = Ctx {
                plan: &plan,
                model: &joined.key.model,
                version: &joined.key.version,
                seq,
                ts,
                events,
                stats: &mut self.stats,
                pending: Vec::new(),
                evidence: false,
            };
            let sig = SignalRef::Error;
            ctx.observe(state, sig, SignalValue::Numeric(joined.error));
            ctx.resolve(state);
            ctx.decide(state);
            self.stats.labels_joined += 1;
            return Ok(());
        }
        self.labels.remember(record);
        let state = state_of(
            &mut self.models,
            &mut self.versions,
            &mut self.stats,
            self.tick,
            &plan.limits,
            &record.model,
            &record.version,
        );
        state.policy.samples += 1;
        // The key is only built when an event needs it: most records make none.
        let mut ctx = Ctx {
            plan: &plan,
            model: &record.model,
            version: &record.version,
            seq,
            ts,
            events,
            stats: &mut self.stats,
            pending: Vec::new(),
            evidence: false,
        };
        record.for_each_signal(|sig, value| ctx.observe(state, sig, value));
        ctx.resolve(state);
        ctx.decide(state);
        Ok(())
    }
}

/// The state of a model version, created on first sight. At the limit of
/// model versions, the least recently seen one is evicted to make room, so
/// that a long-running engine keeps monitoring new deployments.
fn state_of<'m>(
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

/// What one record's processing needs besides the model state.
struct Ctx<'a> {
    plan: &'a MonitorPlan,
    model: &'a str,
    version: &'a str,
    seq: u64,
    ts: DateTime<Utc>,
    events: &'a mut Vec<Event>,
    stats: &'a mut MonitorStats,
    /// p-value verdicts of corrected monitors, decided once the whole record
    /// is seen.
    pending: Vec<Pending>,
    /// Whether this record opened a drift finding: new evidence for the
    /// retrain policy.
    evidence: bool,
}

/// A p-value verdict waiting for the rest of its family: the other signals
/// that the same corrected monitor tests in this record.
struct Pending {
    signal: Signal,
    spec: usize,
    assessment: Assessment,
}

impl Ctx<'_> {
    fn key(&self) -> ModelKey {
        ModelKey::new(self.model, self.version)
    }

    fn series<'s>(
        &mut self,
        state: &'s mut ModelState,
        sig: SignalRef<'_>,
        value: SignalValue<'_>,
    ) -> Option<&'s mut Series> {
        let slot_exists = match sig {
            SignalRef::LatencyMs => state.latency.is_some(),
            SignalRef::Prediction => state.prediction.is_some(),
            SignalRef::Error => state.error.is_some(),
            SignalRef::Feature(n) => state.features.contains_key(n),
            SignalRef::Metric(n) => state.metrics.contains_key(n),
        };
        if !slot_exists {
            if state.signals >= self.plan.limits.max_signals_per_model {
                self.stats.signals_dropped += 1;
                if !std::mem::replace(&mut state.warned_signals, true) {
                    tracing::warn!(
                        model = %self.model.escape_debug(),
                        version = %self.version.escape_debug(),
                        signal = %sig.to_string().escape_debug(),
                        limit = self.plan.limits.max_signals_per_model,
                        "model version has more signals than limits.max_signals_per_model; new signals are ignored and counted"
                    );
                }
                return None;
            }
            let categorical = matches!(value, SignalValue::Categorical(_));
            let mut instances = Vec::new();
            for (spec, m) in self.plan.monitors.iter().enumerate() {
                if !(m.applies_to(self.model) && m.signal.matches(sig)) {
                    continue;
                }
                if categorical && !m.detector.accepts_categories() {
                    // It could never fire here; it must not widen the family either.
                    self.stats.monitors_skipped += 1;
                    continue;
                }
                let detector = m.detector.build(&sig.to_string());
                instances.push(Instance {
                    mode: detector.alarm_mode(),
                    detector,
                    spec,
                    status: DriftStatus::Stable,
                    open: None,
                });
            }
            state.signals += 1;
            state.instances += instances.len();
            let series = Series { instances, categorical };
            match sig {
                SignalRef::LatencyMs => state.latency = Some(series),
                SignalRef::Prediction => state.prediction = Some(series),
                SignalRef::Error => state.error = Some(series),
                SignalRef::Feature(n) => {
                    state.features.insert(n.to_owned(), series);
                }
                SignalRef::Metric(n) => {
                    state.metrics.insert(n.to_owned(), series);
                }
            }
        }
        match sig {
            SignalRef::LatencyMs => state.latency.as_mut(),
            SignalRef::Prediction => state.prediction.as_mut(),
            SignalRef::Error => state.error.as_mut(),
            SignalRef::Feature(n) => state.features.get_mut(n),
            SignalRef::Metric(n) => state.metrics.get_mut(n),
        }
    }

    fn observe(&mut self, state: &mut ModelState, sig: SignalRef<'_>, value: SignalValue<'_>) {
        let ts = self.ts;
        let mut failing_delta: isize = 0;
        let Some(series) = self.series(state, sig, value) else {
            return;
        };
        for inst in &mut series.instances {
            let Some(a) = inst.detector.observe(Sample { value, ts }) else {
                continue;
            };
            let corrected =
                self.plan.monitors[inst.spec].detector.p_value_family().is_some_and(|(c, _)| c != Correction::None);
            if corrected && a.p_value.is_some() {
                self.pending.push(Pending { signal: sig.to_owned(), spec: inst.spec, assessment: a });
                continue;
            }
            failing_delta += self.apply(inst, sig, &a);
        }
        state.failing = state.failing.saturating_add_signed(failing_delta);
    }

    /// Moves an instance to the verdict `a`, emitting what that causes;
    /// returns the change in the number of failing instances.
    fn apply(&mut self, inst: &mut Instance, sig: SignalRef<'_>, a: &Assessment) -> isize {
        let was_failing = inst.status == DriftStatus::Drift;
        if let Some(kind) = transition(inst, sig, a) {
            match &kind {
                EventKind::Finding(f) => {
                    self.stats.findings += 1;
                    self.evidence |= f.severity == monitor_core::event::Severity::Drift;
                }
                _ => self.stats.recoveries += 1,
            }
            self.events.push(Event::new(self.key(), self.ts, self.seq, kind));
        }
        isize::from(inst.status == DriftStatus::Drift) - isize::from(was_failing)
    }

    /// Decides the pending p-value verdicts family by family: Bonferroni or
    /// Benjamini–Hochberg over every signal the monitor tests for this model
    /// version (signals not evaluated in this record count as p = 1).
    fn resolve(&mut self, state: &mut ModelState) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut specs: Vec<usize> = pending.iter().map(|p| p.spec).collect();
        specs.sort_unstable();
        specs.dedup();
        for spec in specs {
            let Some((correction, alpha)) = self.plan.monitors[spec].detector.p_value_family() else {
                continue;
            };
            let family: Vec<&Pending> = pending.iter().filter(|p| p.spec == spec).collect();
            let mut ps: Vec<f64> = family.iter().map(|p| p.assessment.p_value.unwrap_or(1.0)).collect();
            ps.resize(state.family_size(spec).max(family.len()), 1.0);
            let rejected = correction.reject(&ps, alpha);
            let threshold = family_threshold(correction, alpha, &ps, &rejected);
            for (p, &reject) in family.iter().zip(&rejected) {
                let mut a = p.assessment;
                a.status = if reject { DriftStatus::Drift } else { DriftStatus::Stable };
                a.threshold = threshold;
                let sig = p.signal.as_ref();
                let Some(series) = series_of(state, sig) else { continue };
                let Some(inst) = series.instances.iter_mut().find(|i| i.spec == spec) else { continue };
                let delta = self.apply(inst, sig, &a);
                state.failing = state.failing.saturating_add_signed(delta);
            }
        }
    }

    /// Asks the retrain policy after a record; emits a request when it fires.
    fn decide(&mut self, state: &mut ModelState) {
        state.policy.new_evidence |= self.evidence;
        let policy = self.plan.policy_for(self.model);
        if !state.policy.should_request(policy, state.failing, state.instances, self.ts) {
            return;
        }
        let mut reasons = Vec::new();
        let mut cleared = 0;
        let all = [&mut state.latency, &mut state.prediction, &mut state.error]
            .into_iter()
            .filter_map(Option::as_mut)
            .chain(state.features.values_mut())
            .chain(state.metrics.values_mut());
        for series in all {
            for inst in &mut series.instances {
                if inst.status != DriftStatus::Drift {
                    continue;
                }
                if let Some(f) = &inst.open {
                    reasons.push(f.clone());
                }
                // A change detector's alarm is answered by this request.
                if inst.mode == AlarmMode::Change {
                    inst.status = DriftStatus::Stable;
                    inst.open = None;
                    cleared += 1;
                }
            }
        }
        reasons.sort_by(|a, b| a.signal.cmp(&b.signal).then_with(|| a.detector.cmp(&b.detector)));
        state.failing -= cleared;
        state.policy.last_request = Some(self.ts);
        state.policy.new_evidence = false;
        self.stats.retrain_requests += 1;
        let request = RetrainRequest { job_id: Uuid::new_v4(), reasons };
        self.events.push(Event::new(self.key(), self.ts, self.seq, EventKind::RetrainRequested(request)));
    }
}

/// The per-test alpha a family was held to: alpha / m for Bonferroni; for
/// Benjamini–Hochberg k · alpha / m for the largest rejected rank k (alpha / m
/// when nothing is rejected).
fn family_threshold(correction: Correction, alpha: f64, ps: &[f64], rejected: &[bool]) -> f64 {
    let m = ps.len().max(1) as f64;
    match correction {
        Correction::Fdr => {
            let k = ps.iter().zip(rejected).filter(|&(_, &r)| r).count().max(1);
            k as f64 * alpha / m
        }
        Correction::Bonferroni => alpha / m,
        Correction::None => alpha,
    }
}

/// The series of `sig` in `state`, if it exists.
fn series_of<'s>(state: &'s mut ModelState, sig: SignalRef<'_>) -> Option<&'s mut Series> {
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
    fn family_size(&self, spec: usize) -> usize {
        [&self.latency, &self.prediction, &self.error]
            .into_iter()
            .filter_map(Option::as_ref)
            .chain(self.features.values())
            .chain(self.metrics.values())
            .map(|s| s.instances.iter().filter(|i| i.spec == spec).count())
            .sum()
    }
}

/// Moves an instance to the status of `a`; returns the event the move causes.
fn transition(inst: &mut Instance, sig: SignalRef<'_>, a: &Assessment) -> Option<EventKind> {
    let finding = |inst: &Instance, severity| Finding {
        signal: sig.to_owned(),
        detector: inst.detector.kind().to_owned(),
        severity,
        statistic: a.statistic,
        threshold: a.threshold,
        p_value: a.p_value,
        message: inst.detector.explain(a),
    };
    // Non-finite statistics (an empty window, zero variance) never become findings.
    if !a.statistic.is_finite() {
        return None;
    }
    match (inst.mode, a.status.severity()) {
        (AlarmMode::Condition, Some(severity)) if a.status != inst.status => {
            let f = finding(inst, severity);
            inst.status = a.status;
            inst.open = Some(f.clone());
            Some(EventKind::Finding(f))
        }
        (AlarmMode::Condition, None) if inst.status != DriftStatus::Stable => {
            let mut f = inst.open.take().unwrap_or_else(|| finding(inst, monitor_core::event::Severity::Drift));
            // The recovery reports the evaluation that cleared the finding.
            f.statistic = a.statistic;
            f.threshold = a.threshold;
            f.p_value = a.p_value;
            f.message = inst.detector.explain(a);
            inst.status = DriftStatus::Stable;
            Some(EventKind::Recovered(f))
        }
        (AlarmMode::Change, Some(severity)) if a.status == DriftStatus::Drift || inst.status == DriftStatus::Stable => {
            let f = finding(inst, severity);
            inst.status = a.status;
            inst.open = Some(f.clone());
            Some(EventKind::Finding(f))
        }
        (AlarmMode::Change, None) if inst.status == DriftStatus::Warning => {
            inst.status = DriftStatus::Stable;
            inst.open = None;
            None
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
