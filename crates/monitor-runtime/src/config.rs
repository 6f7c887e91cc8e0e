//! The TOML config: monitors, policies, observers, engine settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_core::Error;
use monitor_core::duration::HumanDuration;
use monitor_core::observer::{Observer, ObserverRegistry};
use monitor_core::registry::BuildContext;
use monitor_strategies::performance::{PerformanceSpec, ReconstructionSpec};
use monitor_strategies::{Limits, MonitorPlan, MonitorSpec, PolicyConfig, SignalPattern};
use serde::{Deserialize, Serialize};

use crate::server::ServerConfig;

/// The whole config file.
///
/// Parsing checks everything but the detector tables, which name kinds of a
/// registry: [`Config::plan`] builds them with the one in
/// [`BuildContext::detectors`] (`monitor_strategies::builtin_detectors()`,
/// plus kinds of your own).
///
/// ```
/// use monitor_core::registry::BuildContext;
///
/// let config = monitor_runtime::Config::from_toml(r#"
///     [[monitors]]
///     signal = "metrics.accuracy"
///     detector = { kind = "threshold", statistic = "mean", window = 100, min = 0.90 }
///
///     [policy]
///     trigger = "any"
///     cooldown = "30m"
///
///     [models.fraud.policy]
///     min_samples = 500
/// "#)?;
/// let ctx = BuildContext { detectors: monitor_strategies::builtin_detectors(), ..Default::default() };
/// let plan = config.plan(&ctx)?;
/// assert_eq!(plan.policy_for("fraud").min_samples, 500);
/// assert_eq!(plan.monitors[0].detector.kind(), "threshold");
/// # Ok::<(), monitor_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[[monitors]]`: detectors on signals.
    #[serde(default)]
    pub monitors: Vec<MonitorConfig>,
    /// `[policy]`: the default retrain policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[models.<name>]`: per-model overrides.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// `[[observers]]`: tables with a `kind`, built by an [`ObserverRegistry`].
    #[serde(default)]
    pub observers: Vec<serde_json::Value>,
    /// `[engine]`: queues, shards and overload behaviour.
    #[serde(default)]
    pub engine: EngineConfig,
    /// `[limits]`: memory bounds.
    #[serde(default)]
    pub limits: Limits,
    /// `[server]`: the HTTP daemon (`model-monitor serve`).
    #[serde(default)]
    pub server: ServerConfig,
    /// `[input]`: the columns of a Parquet input.
    #[serde(default)]
    pub input: crate::source::InputColumns,
    /// `[[performance]]`: the `perf.*` and `estimated.*` signals of each window.
    #[serde(default)]
    pub performance: Vec<PerformanceSpec>,
    /// `[[reconstruction]]`: the `multivariate.reconstruction_error` signal of each window.
    #[serde(default)]
    pub reconstruction: Vec<ReconstructionSpec>,
}

/// One `[[monitors]]` entry as written. Its `detector` table stays a table
/// until [`Config::plan`] builds it by its `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// The signal, or a glob such as `features.*`.
    pub signal: SignalPattern,
    /// `{ kind = "...", ... }`: the detector's kind and parameters.
    pub detector: serde_json::Value,
    /// Only these models; every model when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Flap damping: consecutive windows in drift (or warning) before a
    /// finding fires (default 1, at most 10000). Condition detectors only.
    #[serde(default = "one")]
    pub fire_after: u32,
    /// Flap damping: consecutive clear windows before an open finding
    /// resolves (default 1, at most 10000).
    #[serde(default = "one")]
    pub resolve_after: u32,
}

fn one() -> u32 {
    1
}

/// `[models.<name>]`: what one model does differently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model's own retrain policy.
    #[serde(default)]
    pub policy: Option<PolicyConfig>,
}

/// What happens when an observer's queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Drop the event for that observer and count it: ingestion never waits
    /// for a slow receiver. The default for a daemon.
    #[default]
    Drop,
    /// Wait for room: nothing is dropped, and a slow observer slows the
    /// pipeline down. The default for replay.
    Block,
}

/// `[engine]`: queues, shards and overload behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Shard tasks; a model is always owned by one shard (default: the number of cores).
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// Records queued per shard before `submit` waits and `try_submit` fails (default 4096).
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// Events queued per observer (default 1024).
    #[serde(default = "default_observer_queue")]
    pub observer_queue: usize,
    /// What a full observer queue does (default `drop`).
    #[serde(default)]
    pub overflow: Overflow,
    /// Where state lives; relative paths in observers resolve against the config file.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// How long shutdown waits for observers to finish what they started
    /// (deliveries, running jobs) once every accepted record is processed
    /// (default 30s, at most 1h). What is left then is cut off and reported.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: HumanDuration,
    /// With a `state_dir`: how often each shard's model state is written
    /// to the journal (default 30s, between 1s and 1h). A checkpoint is
    /// also written on shutdown.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: HumanDuration,
    /// With a `state_dir`: how many checkpoints the journal keeps, the
    /// oldest pruned (default 3, between 1 and 100).
    #[serde(default = "default_checkpoints_kept")]
    pub checkpoints_kept: usize,
    /// With a `state_dir`: the most the journal file may hold, in MiB
    /// (default 1024, between 1 and 1048576). Past it a write fails as on
    /// a full disk: reported by `/readyz` and the metrics, never dropped
    /// silently.
    #[serde(default = "default_journal_max_mib")]
    pub journal_max_mib: usize,
}

/// The largest config file read, in bytes (16 MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Upper bound of `engine.shards`.
pub const MAX_SHARDS: usize = 1024;
/// Upper bound of `engine.queue_capacity` and `engine.observer_queue`.
pub const MAX_QUEUE: usize = 1_000_000;
/// Upper bound of `engine.shutdown_timeout`.
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3600);

fn default_shutdown_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// Lower bound of `engine.checkpoint_interval`.
pub const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// Upper bound of `engine.checkpoint_interval`.
pub const MAX_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(3600);
/// Upper bound of `engine.checkpoints_kept`.
pub const MAX_CHECKPOINTS_KEPT: usize = 100;
/// Upper bound of `engine.journal_max_mib` (1 TiB).
pub const MAX_JOURNAL_MIB: usize = 1 << 20;

fn default_journal_max_mib() -> usize {
    1024
}

fn default_checkpoint_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_checkpoints_kept() -> usize {
    3
}

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}
fn default_queue() -> usize {
    4096
}
fn default_observer_queue() -> usize {
    1024
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shards: default_shards(),
            queue_capacity: default_queue(),
            observer_queue: default_observer_queue(),
            overflow: Overflow::Drop,
            state_dir: None,
            shutdown_timeout: default_shutdown_timeout(),
            checkpoint_interval: default_checkpoint_interval(),
            checkpoints_kept: default_checkpoints_kept(),
            journal_max_mib: default_journal_max_mib(),
        }
    }
}

impl EngineConfig {
    /// Checks ranges; keys are dotted paths.
    pub fn validate(&self) -> Result<(), Error> {
        for (key, v, max) in [
            ("engine.shards", self.shards, MAX_SHARDS),
            ("engine.queue_capacity", self.queue_capacity, MAX_QUEUE),
            ("engine.observer_queue", self.observer_queue, MAX_QUEUE),
            ("engine.checkpoints_kept", self.checkpoints_kept, MAX_CHECKPOINTS_KEPT),
            ("engine.journal_max_mib", self.journal_max_mib, MAX_JOURNAL_MIB),
        ] {
            if v == 0 || v > max {
                return Err(Error::config(key, format!("must be between 1 and {max} (got {v})")));
            }
        }
        if self.shutdown_timeout.as_std() > MAX_SHUTDOWN_TIMEOUT {
            return Err(Error::config(
                "engine.shutdown_timeout",
                format!("must be at most 1h (got {})", self.shutdown_timeout),
            ));
        }
        let interval = self.checkpoint_interval.as_std();
        if !(MIN_CHECKPOINT_INTERVAL..=MAX_CHECKPOINT_INTERVAL).contains(&interval) {
            return Err(Error::config(
                "engine.checkpoint_interval",
                format!("must be between 1s and 1h (got {})", self.checkpoint_interval),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Parses and validates a config, all but its detector tables (see
    /// [`Config::plan`]). Errors name the dotted key (`engine.shards`,
    /// `monitors[1].signal`, `polcy`) and the line.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, &e, None))?;
        let config: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            toml_error(text, e.inner(), Some(path))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates the config at `path`. Relative paths in
    /// it (`reference_file`, an observer's `path`) are resolved when it is
    /// built, against the `BuildContext::base_dir` given: pass
    /// [`Config::base_dir`] of `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = monitor_core::fs::read_regular_file(path, MAX_CONFIG_BYTES, "config")?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Config { key, message } => Error::config(key, format!("{message} (in {})", path.display())),
            other => other,
        })
    }

    /// The directory that relative paths in the config at `path` are resolved against.
    pub fn base_dir(path: &Path) -> PathBuf {
        path.parent().filter(|d| !d.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// Checks everything that needs no registry: policies, limits, engine
    /// and server settings, and that each monitor's `models` names a model.
    pub fn validate(&self) -> Result<(), Error> {
        for (i, m) in self.monitors.iter().enumerate() {
            if m.models.as_ref().is_some_and(Vec::is_empty) {
                return Err(Error::config(format!("monitors[{i}].models"), "must name at least one model when given"));
            }
            let max = monitor_strategies::monitor::MAX_DAMPING;
            for (key, v) in [("fire_after", m.fire_after), ("resolve_after", m.resolve_after)] {
                if !(1..=max).contains(&v) {
                    return Err(Error::config(
                        format!("monitors[{i}].{key}"),
                        format!("must be between 1 and {max} windows (got {v})"),
                    ));
                }
            }
        }
        self.plan_with(Vec::new()).validate()?;
        self.engine.validate()?;
        self.input.validate()?;
        self.server.validate()
    }

    /// The monitor plan: each `[[monitors]]` entry's detector built by
    /// `ctx.detectors` (relative paths resolved against `ctx.base_dir`),
    /// with policies and limits, validated. Errors name the dotted key:
    /// `monitors[1].detector.window`, or `monitors[0].detector.kind` for a
    /// kind the registry lacks, with the kinds it has.
    pub fn plan(&self, ctx: &BuildContext) -> Result<MonitorPlan, Error> {
        let monitors = self
            .monitors
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let detector = ctx.detectors.build(&format!("monitors[{i}].detector"), &m.detector, ctx)?;
                Ok(MonitorSpec {
                    signal: m.signal.clone(),
                    detector,
                    models: m.models.clone(),
                    fire_after: m.fire_after,
                    resolve_after: m.resolve_after,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let plan = self.plan_with(monitors);
        plan.validate()?;
        Ok(plan)
    }

    fn plan_with(&self, monitors: Vec<MonitorSpec>) -> MonitorPlan {
        let model_policies =
            self.models.iter().filter_map(|(name, m)| m.policy.clone().map(|p| (name.clone(), p))).collect();
        MonitorPlan {
            monitors,
            policy: self.policy.clone(),
            model_policies,
            limits: self.limits.clone(),
            performance: self.performance.clone(),
            reconstruction: self.reconstruction.clone(),
        }
    }

    /// Builds every `[[observers]]` entry with `registry`. Errors are caught
    /// here, at start, not at the first alert.
    pub fn build_observers(
        &self,
        registry: &ObserverRegistry,
        ctx: &BuildContext,
    ) -> Result<Vec<Box<dyn Observer>>, Error> {
        self.observers
            .iter()
            .enumerate()
            .map(|(i, spec)| registry.build(&format!("observers[{i}]"), spec, ctx))
            .collect()
    }
}

/// A TOML error as a config error: at `path` (from serde) when there is one,
/// else at the key its span points into; with the line.
fn toml_error(text: &str, e: &toml::de::Error, path: Option<String>) -> Error {
    let key = match path {
        Some(p) if !p.is_empty() && p != "." => p,
        _ => toml_key(text, e.span()),
    };
    Error::config(key, format!("{}{}", e.message(), line_suffix(text, e.span())))
}

/// The dotted key that a TOML error span points into, best effort: the
/// nearest `[table]` header above plus the key on the line.
fn toml_key(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else { return String::new() };
    let upto = &text[..span.start.min(text.len())];
    let line_start = upto.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let mut table = String::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for l in upto.lines() {
        let t = l.trim();
        if let Some(name) = t.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let n = index.entry(name.to_owned()).and_modify(|i| *i += 1).or_insert(0);
            table = format!("{name}[{n}]");
        } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            table = name.to_owned();
        }
    }
    let key = line.split('=').next().map(str::trim).filter(|k| !k.starts_with('[') && !k.is_empty());
    match (table.is_empty(), key) {
        (true, Some(k)) => k.to_owned(),
        (false, Some(k)) => format!("{table}.{k}"),
        (false, None) => table,
        (true, None) => String::new(),
    }
}

fn line_suffix(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| format!(" (line {})", text[..s.start.min(text.len())].matches('\n').count() + 1)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Config::from_toml(text) {
            Ok(c) => panic!("accepted {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn builtins() -> BuildContext {
        BuildContext { detectors: monitor_strategies::builtin_detectors(), ..BuildContext::default() }
    }

    /// The error of parsing and planning `text` with the built-in detectors.
    fn plan_err(text: &str) -> String {
        match Config::from_toml(text).and_then(|c| c.plan(&builtins())) {
            Ok(p) => panic!("accepted {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_design_example_parses() {
        let config = Config::from_toml(
            r#"
[[monitors]]
signal = "metrics.accuracy"
detector = { kind = "threshold", statistic = "mean", window = 100, min = 0.90 }

[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "p99", window = 100, max = 250.0 }

[policy]
trigger = { at_least = 2 }
cooldown = "30m"
min_samples = 100

[[observers]]
kind = "webhook"
url = "http://127.0.0.1:9000/hook"
format = "json"
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.monitors.len(), 2);
        assert_eq!(config.observers[0]["kind"], "webhook");
        let plan = config.plan(&builtins()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.monitors[0].detector.params()["min"], 0.9);
    }

    #[test]
    fn unknown_top_level_key_is_named_with_its_line() {
        let e = err(
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", max = 1.0 }\n\n[polcy]\ntrigger = \"any\"\n",
        );
        assert!(e.starts_with("config error at `polcy`: unknown field `polcy`"), "{e}");
        assert!(e.contains("line 5"), "{e}");
        let e = err("[engine]\nshards = 2\nshardz = 1\n");
        assert!(e.starts_with("config error at `engine.shardz`: unknown field `shardz`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e =
            err("[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"adwin\" }\n\n[[monitors]]\nsigal = 1\n");
        assert!(e.starts_with("config error at `monitors[1].sigal`: unknown field `sigal`"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = err("[engine]\nshards = = 2\n");
        assert!(e.starts_with("config error at `engine.shards`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn unknown_detector_key_and_kind_are_named() {
        let e = plan_err(
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", max = 1.0, windw = 3 }\n",
        );
        assert!(e.starts_with("config error at `monitors[0].detector.windw`: unknown field `windw`"), "{e}");
        let e = plan_err(
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", max = 1.0, window = true }\n",
        );
        assert!(e.starts_with("config error at `monitors[0].detector.window`: invalid type"), "{e}");
        assert!(e.contains("a number of samples (1000) or a span of event time"), "{e}");
        let e = plan_err(
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", max = 1.0, window = \"soon\" }\n",
        );
        assert!(e.starts_with("config error at `monitors[0].detector.window`: invalid duration `soon`"), "{e}");
        let e = plan_err(
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"adwin\" }\n\n[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"magic\" }\n",
        );
        assert!(e.starts_with("config error at `monitors[1].detector.kind`: unknown detector kind `magic`"), "{e}");
        assert!(e.contains("known kinds: adaptive_threshold, adwin, chi_square"), "{e}");
        let e = plan_err("[[monitors]]\nsignal = \"latency_ms\"\ndetector = { window = 3 }\n");
        assert_eq!(e, "config error at `monitors[0].detector.kind`: is required");
    }

    #[test]
    fn flap_damping_is_bounded_and_named() {
        let text = |key: &str, v: u32| {
            format!(
                "[[monitors]]\nsignal = \"latency_ms\"\n{key} = {v}\ndetector = {{ kind = \"threshold\", max = 1.0 }}\n"
            )
        };
        assert_eq!(
            err(&text("fire_after", 0)),
            "config error at `monitors[0].fire_after`: must be between 1 and 10000 windows (got 0)"
        );
        assert!(err(&text("resolve_after", 10_001)).starts_with("config error at `monitors[0].resolve_after`"));
        let plan = Config::from_toml(&text("fire_after", 3))
            .and_then(|c| c.plan(&builtins()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((plan.monitors[0].fire_after, plan.monitors[0].resolve_after), (3, 1));
    }

    #[test]
    fn without_a_registry_no_kind_is_known() {
        let config =
            Config::from_toml("[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"adwin\" }\n").unwrap();
        let e = config.plan(&BuildContext::default()).map(drop).unwrap_err().to_string();
        assert!(e.contains("unknown detector kind `adwin`; none are registered"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_the_dotted_key() {
        let e = plan_err(
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", max = 1.0, window = 0 }\n",
        );
        assert_eq!(e, "config error at `monitors[0].detector.window`: must be at least 1 (got 0)");
        let e = err("[engine]\nshards = 0\n");
        assert_eq!(e, "config error at `engine.shards`: must be between 1 and 1024 (got 0)");
        let e = err("[[monitors]]\nsignal = \"latency\"\ndetector = { kind = \"threshold\", max = 1.0 }\n");
        assert!(e.contains("monitors[0].signal") && e.contains("unknown signal `latency`"), "{e}");
        let e = err("[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"adwin\" }\nmodels = []\n");
        assert_eq!(e, "config error at `monitors[0].models`: must name at least one model when given");
        let e = err("[models.fraud.policy]\ntrigger = { at_least = 0 }\n");
        assert_eq!(e, "config error at `models.fraud.policy.trigger.at_least`: must be at least 1 (got 0)");
    }
}
