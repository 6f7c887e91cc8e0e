//! The `DetectorSpec` trait: a detector as configured, which builds one
//! [`Detector`] per (model, version, signal), and the [`DetectorRegistry`]
//! that turns `detector = { kind = "...", ... }` into one.
//!
//! A detector kind is usually a serde config type that implements
//! [`DetectorSpec`]; [`DetectorRegistry::register_config`] then registers it
//! in one line. The registry parses the table with
//! [`parse_config`] (unknown keys are errors naming them), calls
//! [`DetectorSpec::validate`] and [`DetectorSpec::resolve_paths`], and
//! shares the result behind an [`Arc`].
//!
//! ```
//! use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
//! use monitor_core::detector_spec::{DetectorRegistry, DetectorSpec};
//! use monitor_core::registry::BuildContext;
//! use monitor_core::{Error, Result};
//!
//! /// `{ kind = "above", limit = 10.0 }`: drift on any sample above `limit`.
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct AboveConfig { limit: f64 }
//!
//! #[derive(Debug)]
//! struct Above(f64);
//!
//! impl Detector for Above {
//!     fn kind(&self) -> &str { "above" }
//!     fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
//!         let x = sample.value.as_f64()?;
//!         let status = if x > self.0 { DriftStatus::Drift } else { DriftStatus::Stable };
//!         Some(Assessment { status, statistic: x, threshold: self.0, p_value: None })
//!     }
//!     fn reset(&mut self) {}
//! }
//!
//! impl DetectorSpec for AboveConfig {
//!     fn kind(&self) -> &str { "above" }
//!     fn validate(&self) -> Result<()> {
//!         if self.limit.is_finite() { Ok(()) } else { Err(Error::config("limit", "must be finite")) }
//!     }
//!     fn build(&self, _signal: &str) -> Box<dyn Detector> { Box::new(Above(self.limit)) }
//!     fn params(&self) -> serde_json::Value { serde_json::to_value(self).unwrap_or_default() }
//! }
//!
//! let mut registry = DetectorRegistry::new();
//! registry.register_config::<AboveConfig>("above");
//! let table = serde_json::json!({"kind": "above", "limit": 10.0});
//! let spec = registry.build("monitors[0].detector", &table, &BuildContext::default())?;
//! assert_eq!((spec.kind(), spec.params()["limit"].as_f64()), ("above", Some(10.0)));
//! assert_eq!(spec.build("latency_ms").kind(), "above");
//!
//! let typo = serde_json::json!({"kind": "above", "limt": 10.0});
//! let err = registry.build("monitors[0].detector", &typo, &BuildContext::default()).unwrap_err();
//! assert!(err.to_string().starts_with("config error at `monitors[0].detector.limt`: unknown field"), "{err}");
//! # Ok::<(), monitor_core::Error>(())
//! ```

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::correction::Correction;
use crate::detector::Detector;
use crate::error::Result;
use crate::registry::{BuildContext, Component, Registry, parse_config};

/// The [`DetectorSpec::state_bytes`] of a detector that does not say (64 KiB).
pub const DEFAULT_STATE_BYTES: usize = 64 * 1024;

/// A detector as configured: the parameters of one `[[monitors]]` entry's
/// `detector` table, from which the monitor builds a fresh [`Detector`] for
/// each (model, version, signal) the entry matches.
///
/// Implement it for your detector's config type (serde `Deserialize`, with
/// `#[serde(deny_unknown_fields)]`), in your own crate, depending on
/// `monitor-core` alone; register it with
/// [`DetectorRegistry::register_config`]. A spec is shared by every shard
/// and clone of a plan, so it is immutable once built: per-signal state
/// belongs in the detectors it builds.
pub trait DetectorSpec: Send + Sync + fmt::Debug {
    /// The kind, as written in config and in findings (`threshold`, `ks`).
    fn kind(&self) -> &str;

    /// Whether its detectors take categorical samples (a class, a string
    /// feature) as well as numbers. A monitor whose detector takes numbers
    /// only is not set up on a signal that turns out categorical: it could
    /// never fire, and must not count in its family's multiple-test
    /// correction. The monitor counts and reports each such pair.
    fn accepts_categories(&self) -> bool {
        true
    }

    /// Whether its detectors take numbers. A detector of categories only
    /// (unseen categories) is not set up on a signal whose first value is a
    /// number, for the same reasons as [`DetectorSpec::accepts_categories`].
    fn accepts_numbers(&self) -> bool {
        true
    }

    /// An upper bound of one detector's state, in bytes, whatever the
    /// input: windows, reference samples, categories. The monitor adds it
    /// up against `limits.max_state_bytes`, so that memory stays within
    /// the configured budget however many models and signals arrive. The
    /// default, [`DEFAULT_STATE_BYTES`], suits a detector with a window of a
    /// few thousand numbers; override it for anything larger.
    fn state_bytes(&self) -> usize {
        DEFAULT_STATE_BYTES
    }

    /// The bound of one detector's state on a signal whose first value was
    /// a category (`categorical`) or a number. A series keeps the type of
    /// its first value, so a detector that stores numbers or categories,
    /// not both, can bound the one it will hold. The default is
    /// [`DetectorSpec::state_bytes`], the bound whatever the type.
    fn state_bytes_for(&self, categorical: bool) -> usize {
        let _ = categorical;
        self.state_bytes()
    }

    /// Checks every parameter's range. Error keys are relative to the
    /// detector table (`window`, `alpha`); the registry and the plan put the
    /// table's place in front (`monitors[1].detector.window`). Does not read
    /// files: see [`DetectorSpec::load_references`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Resolves what depends on where the config lives, before the spec is
    /// shared: a relative `reference_file` becomes relative to
    /// [`BuildContext::base_dir`]. The registry calls it after parsing.
    fn resolve_paths(&mut self, ctx: &BuildContext) {
        let _ = ctx;
    }

    /// A fresh detector for `signal`, as written in output
    /// (`features.amount`). Detectors with a reference file take that
    /// signal's samples from it. Only called on a validated spec.
    fn build(&self, signal: &str) -> Box<dyn Detector>;

    /// The parameters, as configured with defaults filled in and without
    /// `kind`: what `check-config` prints. Usually
    /// `serde_json::to_value(self).unwrap_or_default()`.
    fn params(&self) -> Json;

    /// For detectors whose verdicts are p-values (`ks`, `chi_square`): how
    /// the signals one monitor tests share the family-wise alpha, and that
    /// alpha. The monitor then decides each record's p-values of the family
    /// together. `None` (the default) leaves each verdict as it is.
    fn p_value_family(&self) -> Option<(Correction, f64)> {
        None
    }

    /// The effect size a verdict must reach, on the test's own scale (KS D,
    /// Cramér's V, a distance, Cohen's h), besides its p-value: what
    /// `check-config` prints next to each signal's alpha. `None` (the
    /// default) when the detector has no such gate.
    fn min_effect(&self) -> Option<f64> {
        None
    }

    /// The span of the detector's windows when they are on event time
    /// (`window = "1h"`); `None` (the default) for windows counted in
    /// samples. The monitor closes the windows of quiet model versions at
    /// this pace, so that a version that stopped sending is noticed.
    fn time_window(&self) -> Option<std::time::Duration> {
        None
    }

    /// Reads the reference files the spec names, once (clones of a plan
    /// share them). `Monitor::new` calls it, so that a missing or bad file
    /// fails at start; errors are config errors at the key that names the
    /// file (`reference_file`).
    fn load_references(&self) -> Result<()> {
        Ok(())
    }

    /// The signals of the spec's reference file, for `check-config` to list
    /// the per-signal alphas; `None` when the spec has no reference file.
    /// Loads the file if [`DetectorSpec::load_references`] has not.
    fn reference_signals(&self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
}

impl Component for Arc<dyn DetectorSpec> {
    const WHAT: &'static str = "detector";
}

/// Detector factories keyed by `kind`, so that `detector = { kind = "..." }`
/// in config can name detectors from any crate. `monitor-strategies` fills
/// one with the built-in kinds (`builtin_detectors()`); add your own with
/// [`DetectorRegistry::register_config`].
pub type DetectorRegistry = Registry<Arc<dyn DetectorSpec>>;

impl Registry<Arc<dyn DetectorSpec>> {
    /// Registers the config type `C` under `kind`: the table is parsed into
    /// a `C`, validated and its paths resolved by [`build_config`].
    pub fn register_config<C>(&mut self, kind: impl Into<String>) -> &mut Self
    where
        C: DetectorSpec + DeserializeOwned + 'static,
    {
        self.register(kind, build_config::<C>)
    }
}

/// The factory of a serde config type: parses `config` (the detector table
/// without `kind`) with [`parse_config`], so that errors name the key
/// (`windw`, `window`); then [`DetectorSpec::validate`] and
/// [`DetectorSpec::resolve_paths`].
pub fn build_config<C>(config: Json, ctx: &BuildContext) -> Result<Arc<dyn DetectorSpec>>
where
    C: DetectorSpec + DeserializeOwned + 'static,
{
    let mut spec: C = parse_config(config)?;
    spec.validate()?;
    spec.resolve_paths(ctx);
    Ok(Arc::new(spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::{Assessment, Sample};
    use crate::error::Error;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Never {
        #[serde(default)]
        window: usize,
        #[serde(default)]
        file: Option<String>,
    }

    #[derive(Debug)]
    struct Quiet;

    impl Detector for Quiet {
        fn kind(&self) -> &str {
            "never"
        }
        fn observe(&mut self, _: Sample<'_>) -> Option<Assessment> {
            None
        }
        fn reset(&mut self) {}
    }

    impl DetectorSpec for Never {
        fn kind(&self) -> &str {
            "never"
        }
        fn validate(&self) -> Result<()> {
            if self.window == 0 { Err(Error::config("window", "must be at least 1 (got 0)")) } else { Ok(()) }
        }
        fn resolve_paths(&mut self, ctx: &BuildContext) {
            self.file = self.file.as_deref().map(|f| ctx.resolve(f).display().to_string());
        }
        fn build(&self, _: &str) -> Box<dyn Detector> {
            Box::new(Quiet)
        }
        fn params(&self) -> Json {
            serde_json::to_value(self).unwrap_or_default()
        }
    }

    fn registry() -> DetectorRegistry {
        let mut r = DetectorRegistry::new();
        r.register_config::<Never>("never");
        r
    }

    fn err(table: Json) -> String {
        match registry().build("monitors[2].detector", &table, &BuildContext::default()) {
            Ok(spec) => panic!("accepted {spec:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_dotted_key() {
        let e = err(serde_json::json!({"kind": "never", "window": 0}));
        assert_eq!(e, "config error at `monitors[2].detector.window`: must be at least 1 (got 0)");
        let e = err(serde_json::json!({"kind": "never", "windw": 3}));
        assert!(e.starts_with("config error at `monitors[2].detector.windw`: unknown field `windw`"), "{e}");
        let e = err(serde_json::json!({"kind": "never", "window": "5m"}));
        assert!(e.starts_with("config error at `monitors[2].detector.window`: invalid type"), "{e}");
        let e = err(serde_json::json!({"kind": "sometimes"}));
        assert_eq!(
            e,
            "config error at `monitors[2].detector.kind`: unknown detector kind `sometimes`; known kinds: never"
        );
    }

    #[test]
    fn paths_are_resolved_against_the_base_dir() {
        let ctx = BuildContext { base_dir: "/etc/mm".into(), ..BuildContext::default() };
        let table = serde_json::json!({"kind": "never", "window": 1, "file": "train.ndjson"});
        let spec = registry().build("d", &table, &ctx).unwrap();
        let want = std::path::Path::new("/etc/mm").join("train.ndjson").display().to_string();
        assert_eq!(spec.params()["file"], Json::String(want));
        assert_eq!((spec.p_value_family(), spec.reference_signals().unwrap()), (None, None));
    }
}
