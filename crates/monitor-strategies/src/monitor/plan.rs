//! The plan of a monitor: which detectors watch which signals, the retrain
//! policies, and the limits that bound memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use monitor_core::Error;
use monitor_core::correction::Correction;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::duration::HumanDuration;
use monitor_core::registry::prefix_key;
use monitor_core::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::pattern::SignalPattern;
use crate::performance::{PerformanceSpec, ReconstructionSpec};
use crate::policy::PolicyConfig;

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
    /// Flap damping: consecutive verdicts of a condition detector that a
    /// finding needs before it fires (default 1: the first).
    pub fire_after: u32,
    /// Flap damping: consecutive clear verdicts that an open finding needs
    /// before it resolves (default 1: the first).
    pub resolve_after: u32,
}

/// The largest `fire_after` and `resolve_after`.
pub const MAX_DAMPING: u32 = 10_000;

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
        Ok(Self { signal, detector, models: None, fire_after: 1, resolve_after: 1 })
    }

    /// Flap damping, as Prometheus' `for:`: a finding fires after
    /// `fire_after` consecutive verdicts of drift (or warning), and resolves
    /// after `resolve_after` consecutive clear ones. Condition detectors
    /// only: a change detector flags a point in time and fires at once.
    #[must_use]
    pub fn damping(mut self, fire_after: u32, resolve_after: u32) -> Self {
        self.fire_after = fire_after;
        self.resolve_after = resolve_after;
        self
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

/// Whether a spec's detectors take a signal of one type.
pub(crate) trait Accepts {
    /// Whether its detectors take a signal whose first value was
    /// categorical (`true`) or a number (`false`).
    fn accepts(&self, categorical: bool) -> bool;
}

impl Accepts for Arc<dyn DetectorSpec> {
    fn accepts(&self, categorical: bool) -> bool {
        if categorical { self.accepts_categories() } else { self.accepts_numbers() }
    }
}

/// Two monitors are equal when they watch the same signals of the same
/// models with the same kind of detector and the same parameters.
impl PartialEq for MonitorSpec {
    fn eq(&self, other: &Self) -> bool {
        self.signal == other.signal
            && self.models == other.models
            && self.fire_after == other.fire_after
            && self.resolve_after == other.resolve_after
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
    /// The memory budget of all model state, in MiB (default 1024): each
    /// detector counts the bound of its state ([`DetectorSpec::state_bytes`]).
    /// Past it, the quietest model versions are evicted to make
    /// room for new ones, and a version's new signals are ignored and counted.
    #[serde(default = "default_max_state_mib")]
    pub max_state_mib: usize,
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
    /// `max_state_mib` (1 TiB).
    pub const MAX_STATE_MIB: usize = 1 << 20;
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
fn default_max_state_mib() -> usize {
    1024
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
            max_state_mib: default_max_state_mib(),
        }
    }
}

impl Limits {
    /// `max_state_mib` in bytes.
    pub fn max_state_bytes(&self) -> usize {
        self.max_state_mib.saturating_mul(1 << 20)
    }

    /// The share of one of `shards` monitors that split a workload between
    /// them: the limits that bound the whole engine (`max_model_versions`,
    /// `pending_labels`, `max_state_mib`) are divided, rounding up;
    /// per-version limits stay as they are.
    ///
    /// Models go to shards by their hash, so a shard gets its share only on
    /// average: the counts kept per model (`max_model_versions`,
    /// `pending_labels`) get a margin of four standard deviations of that
    /// split (√share · 4), at most a tenth of the share, so that as many
    /// models as the limit fit however they fall. Without it, a shard with a
    /// few more models than its exact share would evict them in turn, each
    /// before its windows fill, and lose the findings of all of them. The
    /// engine then holds at most a tenth more than the limit (about 6% for
    /// 10,000 versions on two shards).
    #[must_use]
    pub fn per_shard(&self, shards: usize) -> Self {
        let shards = shards.max(1);
        let share = |n: usize| n.div_ceil(shards).max(1);
        let with_margin = |n: usize| {
            let s = share(n);
            let margin = ((4.0 * (s as f64).sqrt()).ceil() as usize).min(s / 10);
            if shards == 1 { s } else { s.saturating_add(margin) }
        };
        Self {
            max_model_versions: with_margin(self.max_model_versions),
            pending_labels: with_margin(self.pending_labels),
            max_state_mib: share(self.max_state_mib),
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
            ("limits.max_state_mib", self.max_state_mib, b::MAX_STATE_MIB),
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

/// Everything a [`Monitor`](crate::Monitor) needs to know: monitors, policies and limits.
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
    /// `[[performance]]`: the `perf.*` and `estimated.*` signals.
    pub performance: Vec<PerformanceSpec>,
    /// `[[reconstruction]]`: the `multivariate.*` signals.
    pub reconstruction: Vec<ReconstructionSpec>,
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
            for (key, v) in [("fire_after", m.fire_after), ("resolve_after", m.resolve_after)] {
                if !(1..=MAX_DAMPING).contains(&v) {
                    return Err(Error::config(
                        format!("monitors[{i}].{key}"),
                        format!("must be between 1 and {MAX_DAMPING} windows (got {v})"),
                    ));
                }
            }
        }
        self.policy.validate().map_err(|e| prefix("policy".into(), e))?;
        for (model, p) in &self.model_policies {
            p.validate().map_err(|e| prefix(format!("models.{model}.policy"), e))?;
        }
        self.limits.validate()?;
        for (i, p) in self.performance.iter().enumerate() {
            p.validate().map_err(|e| prefix(format!("performance[{i}]"), e))?;
        }
        for (i, r) in self.reconstruction.iter().enumerate() {
            r.validate().map_err(|e| prefix(format!("reconstruction[{i}]"), e))?;
        }
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
    /// `monitors[1].detector.reference_file`. [`Monitor::new`](crate::Monitor::new) calls it.
    pub fn load_references(&self) -> Result<(), Error> {
        for (i, m) in self.monitors.iter().enumerate() {
            m.detector.load_references().map_err(|e| prefix_key(&format!("monitors[{i}].detector"), e))?;
        }
        Ok(())
    }

    /// The alpha each signal of `model` is tested at by the p-value monitors
    /// (`ks`, `chi_square`, the data-quality tests, ...), given the signals
    /// the model carries. The family is every univariate p-value test of a
    /// model version, across monitors: with m tests, `bonferroni` holds each
    /// to its monitor's alpha / m. For `check-config`; the signals can come
    /// from a record or from a reference file
    /// (`DetectorSpec::reference_signals`). Signals in `categorical` are
    /// left out of the families of monitors whose detectors take numbers
    /// only (see [`MonitorPlan::unusable`]), the other signals out of those
    /// of monitors that take categories only. A `drift` monitor counts as a
    /// p-value test here even where a large reference makes it choose a
    /// distance, so the alphas shown are at most as large as the real ones.
    pub fn effective_alphas(&self, model: &str, signals: &[Signal], categorical: &[Signal]) -> Vec<EffectiveAlpha> {
        let mut out = Vec::new();
        for (monitor, m) in self.monitors.iter().enumerate() {
            let Some((correction, alpha)) = m.detector.p_value_family() else { continue };
            if !m.applies_to(model) {
                continue;
            }
            let family = signals
                .iter()
                .filter(|s| m.signal.matches(s.as_ref()))
                .filter(|s| m.detector.accepts(categorical.contains(s)));
            out.extend(family.map(|signal| EffectiveAlpha {
                monitor,
                signal: signal.clone(),
                correction,
                alpha,
                tests: 0,
                per_test: alpha,
                min_effect: m.detector.min_effect(),
            }));
        }
        let tests = out.iter().filter(|e| e.correction != Correction::None).count();
        for e in &mut out {
            if e.correction != Correction::None {
                e.tests = tests;
                e.per_test = e.correction.per_test_alpha(e.alpha, tests);
            } else {
                e.tests = 1;
            }
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
    /// Number of tests in the family: every corrected p-value test of the
    /// model version, across monitors (1 without correction).
    pub tests: usize,
    /// The alpha this signal's p-value is compared with (under `fdr`, the
    /// threshold of the smallest p-value; the k-th smallest gets k times it).
    pub per_test: f64,
    /// The effect size the test must also reach, on its own scale
    /// (`DetectorSpec::min_effect`), if it has such a gate.
    pub min_effect: Option<f64>,
}
