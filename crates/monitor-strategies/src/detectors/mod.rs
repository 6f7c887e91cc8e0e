//! The built-in detectors, each with its config type, which implements
//! [`DetectorSpec`], and [`builtin_detectors`], the registry that names them
//! in config.
//!
//! A detector is one file: the detector, its config type (serde, unknown
//! keys denied, published defaults) and the config's `DetectorSpec` impl;
//! plus one line in [`register_builtin_detectors`].

use monitor_core::Error;

mod adaptive;
mod adwin;
mod cadence;
mod control;
mod ddm;
mod distribution;
mod drift;
mod hddm;
mod kswin;
mod mean_shift;
mod missing;
mod out_of_range;
mod page_hinkley;
mod reference;
mod share;
mod threshold;
mod two_sample;
mod two_sample_test;
mod type_change;
mod unseen;
mod window;

pub use adaptive::{AdaptiveThreshold, AdaptiveThresholdConfig, MAX_REFERENCE_WINDOWS};
pub use adwin::{Adwin, AdwinConfig};
pub use cadence::Cadence;
pub use control::{Cusum, CusumConfig, Ewma, EwmaConfig};
pub use ddm::{Ddm, DdmConfig, Eddm, EddmConfig};
pub use distribution::{
    AutoTest, ChiSquareConfig, DEFAULT_TIME_REFERENCE, DistributionDetector, DistributionTest, JensenShannonConfig,
    KsConfig, PsiConfig, WassersteinConfig, WindowSpec, default_reference,
};
pub use drift::DriftConfig;
pub use hddm::{HddmA, HddmAConfig, HddmW, HddmWConfig};
pub use kswin::{Kswin, KswinConfig};
pub use mean_shift::{MeanShift, MeanShiftConfig};
pub use missing::MissingConfig;
pub use out_of_range::OutOfRangeConfig;
pub use page_hinkley::{Direction, PageHinkley, PageHinkleyConfig};
pub use reference::{MAX_REFERENCE_BYTES, ReferenceData, ReferenceFile, ReferenceSignal};
pub use threshold::{Threshold, ThresholdConfig};
pub use type_change::TypeChangeConfig;
pub use unseen::UnseenCategoriesConfig;
pub use window::{MAX_TIME_WINDOW, TimeWindows, WindowSize};

/// The trait every config type here implements, and the registry of kinds.
pub use monitor_core::detector_spec::{DetectorRegistry, DetectorSpec};

pub(crate) use threshold::fmt_num;

/// Implements [`Detector::save_state`] and [`Detector::load_state`] for a
/// detector whose whole state is serde-serialisable: the state is the
/// detector itself, config included, so a restored detector is the one saved.
macro_rules! serde_state {
    () => {
        fn save_state(&self) -> monitor_core::Result<serde_json::Value> {
            serde_json::to_value(self).map_err(|e| monitor_core::Error::snapshot(self.kind(), e.to_string()))
        }

        fn load_state(&mut self, state: serde_json::Value) -> monitor_core::Result<()> {
            *self =
                serde_json::from_value(state).map_err(|e| monitor_core::Error::snapshot(self.kind(), e.to_string()))?;
            Ok(())
        }
    };
}
pub(crate) use serde_state;

/// Registers the built-in detector kinds in `registry`: `threshold`,
/// `mean_shift`, `adaptive_threshold`, `adwin`, `page_hinkley`, `ddm`,
/// `eddm`, `hddm_a`, `hddm_w`, `kswin`, `cusum`, `ewma`, `ks`, `psi`,
/// `chi_square`, `jensen_shannon`, `wasserstein`, `drift`, and the
/// data-quality kinds `missing`, `unseen_categories`, `out_of_range` and
/// `type_change`. Each is its config type, parsed with unknown keys
/// denied, and validated.
pub fn register_builtin_detectors(registry: &mut DetectorRegistry) {
    registry
        .register_config::<ThresholdConfig>("threshold")
        .register_config::<MeanShiftConfig>("mean_shift")
        .register_config::<AdaptiveThresholdConfig>("adaptive_threshold")
        .register_config::<AdwinConfig>("adwin")
        .register_config::<PageHinkleyConfig>("page_hinkley")
        .register_config::<DdmConfig>("ddm")
        .register_config::<EddmConfig>("eddm")
        .register_config::<HddmAConfig>("hddm_a")
        .register_config::<HddmWConfig>("hddm_w")
        .register_config::<KswinConfig>("kswin")
        .register_config::<CusumConfig>("cusum")
        .register_config::<EwmaConfig>("ewma")
        .register_config::<KsConfig>("ks")
        .register_config::<PsiConfig>("psi")
        .register_config::<ChiSquareConfig>("chi_square")
        .register_config::<JensenShannonConfig>("jensen_shannon")
        .register_config::<WassersteinConfig>("wasserstein")
        .register_config::<DriftConfig>("drift")
        .register_config::<MissingConfig>("missing")
        .register_config::<UnseenCategoriesConfig>("unseen_categories")
        .register_config::<OutOfRangeConfig>("out_of_range")
        .register_config::<TypeChangeConfig>("type_change");
}

/// A registry holding the built-in detector kinds
/// ([`register_builtin_detectors`]): what a `BuildContext` needs for
/// `[[monitors]]` entries to name them. Add your own kinds to it.
///
/// ```
/// use monitor_core::registry::BuildContext;
///
/// let detectors = monitor_strategies::builtin_detectors();
/// let table = serde_json::json!({"kind": "ks", "alpha": 0.01});
/// let ks = detectors.build("monitors[0].detector", &table, &BuildContext::default())?;
/// assert_eq!(ks.p_value_family(), Some((monitor_core::correction::Correction::Bonferroni, 0.01)));
///
/// let table = serde_json::json!({"kind": "magic"});
/// let err = detectors.build("monitors[0].detector", &table, &BuildContext::default()).unwrap_err();
/// assert!(err.to_string().contains("unknown detector kind `magic`; known kinds: adaptive_threshold, adwin"));
/// # Ok::<(), monitor_core::Error>(())
/// ```
pub fn builtin_detectors() -> DetectorRegistry {
    let mut registry = DetectorRegistry::new();
    register_builtin_detectors(&mut registry);
    registry
}

/// The largest `window`, `reference` or `step` of any detector, in samples:
/// a window of this size holds 8 MB of numbers.
pub const MAX_WINDOW: usize = 1_000_000;
/// The largest `bins` and `max_categories`.
pub const MAX_BINS: usize = 10_000;
/// The largest ADWIN `max_buckets` (River's default is 5; more buys no accuracy).
pub const MAX_BUCKETS: usize = 1000;

/// A probability-like parameter strictly between 0 and 1.
pub(crate) fn check_open_unit(key: &str, x: f64) -> Result<(), Error> {
    if x > 0.0 && x < 1.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be between 0 and 1, exclusive (got {x})")))
    }
}

/// A factor in (0, 1].
pub(crate) fn check_open_unit_closed(key: &str, x: f64) -> Result<(), Error> {
    if x > 0.0 && x <= 1.0 { Ok(()) } else { Err(Error::config(key, format!("must be in (0, 1] (got {x})"))) }
}

/// A finite number above 0.
pub(crate) fn check_positive(key: &str, x: f64) -> Result<(), Error> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be a positive number (got {x})")))
    }
}

/// A finite number at or above 0.
pub(crate) fn check_non_negative(key: &str, x: f64) -> Result<(), Error> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(key, format!("must be a non-negative number (got {x})")))
    }
}

/// A count of at least 1.
pub(crate) fn check_positive_int(key: &str, x: u64) -> Result<(), Error> {
    if x >= 1 { Ok(()) } else { Err(Error::config(key, "must be at least 1 (got 0)")) }
}

#[cfg(test)]
mod tests {
    use monitor_core::registry::BuildContext;

    use super::*;

    fn build(toml_text: &str) -> Result<std::sync::Arc<dyn monitor_core::detector_spec::DetectorSpec>, String> {
        let table: serde_json::Value = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        builtin_detectors().build("detector", &table, &BuildContext::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_of_the_design_is_registered() {
        let registry = builtin_detectors();
        assert_eq!(registry.kinds().count(), 22);
        for kind in [
            "threshold",
            "mean_shift",
            "adaptive_threshold",
            "adwin",
            "page_hinkley",
            "ddm",
            "eddm",
            "hddm_a",
            "hddm_w",
            "kswin",
            "cusum",
            "ewma",
            "ks",
            "psi",
            "chi_square",
            "jensen_shannon",
            "wasserstein",
            "drift",
            "missing",
            "unseen_categories",
            "out_of_range",
            "type_change",
        ] {
            assert!(registry.contains(kind), "{kind}");
        }
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let e = build("kind = \"magic\"").unwrap_err();
        assert!(e.starts_with("config error at `detector.kind`: unknown detector kind `magic`; known kinds: "), "{e}");
        for kind in builtin_detectors().kinds() {
            assert!(e.contains(kind), "{e} lacks {kind}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = build("kind = \"threshold\"\nmin = 0.9\nwindw = 10").unwrap_err();
        assert!(e.starts_with("config error at `detector.windw`: unknown field `windw`"), "{e}");
        assert!(e.contains("expected one of `statistic`, `window`"), "{e}");
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let spec = build("kind = \"threshold\"\nmax = 120.0").unwrap_or_else(|e| panic!("{e}"));
        let want = ThresholdConfig { max: Some(120.0), ..ThresholdConfig::default() };
        assert_eq!(spec.params(), serde_json::to_value(want).unwrap_or_default());
        assert_eq!(spec.kind(), "threshold");
    }
}
