//! Every detector: state that survives a serde round trip, defined results on
//! degenerate input, config errors that name the key.

use std::sync::Arc;

use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use monitor_strategies::builtin_detectors;
use monitor_strategies::detectors::*;
use monitor_strategies::synth::{Segment, bernoulli_stream, gaussian_stream};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn sample(x: f64) -> Sample<'static> {
    Sample { value: SignalValue::Numeric(x), ts: chrono::DateTime::UNIX_EPOCH }
}

fn feed<D: Detector + ?Sized>(d: &mut D, xs: &[f64]) -> Vec<Option<Assessment>> {
    xs.iter().map(|&x| d.observe(sample(x))).collect()
}

/// Serialises `d` after the first part of `xs`, restores it, and checks that
/// the original and the copy say exactly the same about the rest.
fn round_trip<D: Detector + Serialize + DeserializeOwned>(mut d: D, xs: &[f64]) {
    let cut = xs.len() / 2;
    feed(&mut d, &xs[..cut]);
    let json = serde_json::to_string(&d).unwrap();
    let mut restored: D = serde_json::from_str(&json).unwrap();
    let a = feed(&mut d, &xs[cut..]);
    let b = feed(&mut restored, &xs[cut..]);
    assert_eq!(a, b, "{} diverged after a round trip", d.kind());
    let alarms = a.iter().flatten().filter(|a| a.status != DriftStatus::Stable).count();
    assert!(alarms > 0, "{}: the test stream should exercise alarms", d.kind());
}

fn shifting() -> Vec<f64> {
    gaussian_stream(5, &[Segment::new(3000, 0.0, 1.0), Segment::new(3000, 1.5, 1.0), Segment::new(3000, -1.0, 2.0)])
}

fn error_rate() -> Vec<f64> {
    bernoulli_stream(
        6,
        &[
            Segment::bernoulli(2000, 0.1),
            Segment::bernoulli(2000, 0.4),
            Segment::bernoulli(2000, 0.1),
            Segment::bernoulli(2000, 0.5),
        ],
    )
}

/// Builds a detector table, as written in TOML, through the built-in registry.
fn build(text: &str) -> Result<Arc<dyn DetectorSpec>, String> {
    let table: serde_json::Value = toml::from_str(text).unwrap();
    builtin_detectors().build("detector", &table, &BuildContext::default()).map_err(|e| e.to_string())
}

fn parse(text: &str) -> Arc<dyn DetectorSpec> {
    build(text).unwrap()
}

/// As [`round_trip`], through `save_state` and `load_state` of a detector
/// built by `spec`.
fn round_trip_state(spec: &dyn DetectorSpec, xs: &[f64]) {
    let cut = xs.len() / 2;
    let mut d = spec.build("features.x");
    feed(d.as_mut(), &xs[..cut]);
    let json = serde_json::to_string(&d.save_state().unwrap()).unwrap();
    let mut restored = spec.build("features.x");
    restored.load_state(serde_json::from_str(&json).unwrap()).unwrap();
    let a = feed(d.as_mut(), &xs[cut..]);
    let b = feed(restored.as_mut(), &xs[cut..]);
    assert_eq!(a, b, "{} diverged after a round trip", d.kind());
    let alarms = a.iter().flatten().filter(|a| a.status != DriftStatus::Stable).count();
    assert!(alarms > 0, "{}: the test stream should exercise alarms", d.kind());
}

#[test]
fn streaming_detectors_restore_to_the_same_behaviour() {
    round_trip(Adwin::default(), &shifting());
    round_trip(PageHinkley::default(), &shifting());
    round_trip(Kswin::default(), &shifting());
    round_trip(Cusum::default(), &shifting());
    round_trip(Ewma::default(), &shifting());
    round_trip(Ddm::default(), &error_rate());
    round_trip(Eddm::default(), &error_rate());
    round_trip(HddmA::default(), &error_rate());
    round_trip(HddmW::default(), &error_rate());
}

#[test]
fn reference_detectors_restore_to_the_same_behaviour() {
    let xs = shifting();
    for text in [
        "kind = \"ks\"\nreference = 1000\nwindow = 200",
        "kind = \"ks\"\nreference = 1000\nwindow = 200\nstep = 20",
        "kind = \"psi\"\nreference = 1000\nwindow = 500\nstep = 50",
        "kind = \"chi_square\"\nreference = 1000\nwindow = 300",
        "kind = \"jensen_shannon\"\nreference = 1000\nwindow = 500",
        "kind = \"wasserstein\"\nreference = 1000\nwindow = 200\nstep = 7",
        "kind = \"drift\"\nreference = 1000\nwindow = 200",
        "kind = \"drift\"\nreference = 2000\nwindow = 200\nstep = 50",
        "kind = \"out_of_range\"\nreference = 1000\nwindow = 200",
        "kind = \"out_of_range\"\nwindow = 100\nmin = -2.0\nmax = 2.0",
        "kind = \"threshold\"\nstatistic = \"ewma\"\nhalf_life = 20\nwindow = 50\nmax = 0.8",
        "kind = \"adaptive_threshold\"\nstatistic = \"ewma\"\nalpha = 0.1\nwindow = 50",
    ] {
        round_trip_state(parse(text).as_ref(), &xs);
    }
    // The share of ones, as `missing` reads quality.missing.<name>.
    let ones: Vec<f64> = error_rate();
    round_trip_state(parse("kind = \"missing\"\nreference = 1000\nwindow = 200").as_ref(), &ones);
    let ks: KsConfig = toml::from_str("reference = 1000\nwindow = 200").unwrap();
    round_trip(ks.detector(None), &xs);
    let at = AdaptiveThresholdConfig { window: 50.into(), warning_k: Some(2.0), ..Default::default() };
    DetectorSpec::validate(&at).unwrap();
    round_trip(AdaptiveThreshold::new(at), &xs);
    let th = ThresholdConfig { window: 100.into(), max: Some(0.8), ..Default::default() };
    round_trip(Threshold::new(th), &xs);
}

#[test]
fn defaults_are_the_published_ones() {
    use serde_json::json;
    let params = |text: &str, keys: &[&str]| -> Vec<serde_json::Value> {
        let p = parse(text).params();
        keys.iter().map(|k| p[*k].clone()).collect()
    };
    assert_eq!(params("kind = \"adwin\"", &["delta", "clock"]), [json!(0.002), json!(32)]);
    assert_eq!(
        params("kind = \"page_hinkley\"", &["min_instances", "delta", "threshold", "alpha"]),
        [json!(30), json!(0.005), json!(50.0), json!(0.9999)]
    );
    assert_eq!(params("kind = \"kswin\"", &["alpha", "window", "stat"]), [json!(0.005), json!(100), json!(30)]);
    assert_eq!(
        params("kind = \"ddm\"", &["warm_start", "warning_threshold", "drift_threshold"]),
        [json!(30), json!(2.0), json!(3.0)]
    );
    assert_eq!(params("kind = \"eddm\"", &["alpha", "beta"]), [json!(0.95), json!(0.9)]);
    assert_eq!(params("kind = \"hddm_a\"", &["drift_confidence", "warning_confidence"]), [json!(0.001), json!(0.005)]);
    assert_eq!(params("kind = \"ks\"", &["alpha", "correction"]), [json!(0.05), json!("bonferroni")]);
    assert_eq!(
        parse("kind = \"ks\"").p_value_family(),
        Some((monitor_strategies::stats::Correction::Bonferroni, 0.05))
    );
    for kind in ["psi", "jensen_shannon", "wasserstein"] {
        assert_eq!(params(&format!("kind = \"{kind}\""), &["threshold"]), [json!(0.1)], "{kind}");
        // A distance is its own effect size, and needs no p-value unless asked.
        assert_eq!(parse(&format!("kind = \"{kind}\"")).min_effect(), Some(0.1), "{kind}");
        assert_eq!(parse(&format!("kind = \"{kind}\"")).p_value_family(), None, "{kind}");
        let spelt = parse(&format!("kind = \"{kind}\"\nmin_effect = 0.2\nalpha = 0.01"));
        assert_eq!((spelt.min_effect(), spelt.p_value_family().map(|f| f.1)), (Some(0.2), Some(0.01)), "{kind}");
    }
    // Effect sizes from published practice: KSWIN's D > 0.1, Cohen's small V and h.
    assert_eq!(parse("kind = \"ks\"").min_effect(), Some(0.1));
    assert_eq!(parse("kind = \"chi_square\"").min_effect(), Some(0.1));
    for kind in ["missing", "unseen_categories", "out_of_range"] {
        assert_eq!(parse(&format!("kind = \"{kind}\"")).min_effect(), Some(0.2), "{kind}");
    }
    assert_eq!(parse("kind = \"type_change\"").min_effect(), Some(0.0));
    // A reference of ten windows.
    assert_eq!(params("kind = \"ks\"\nwindow = 300", &["reference"]), [json!(null)]);
    assert_eq!(default_reference(WindowSize::Samples(300)), 3000);
    assert_eq!(
        params("kind = \"drift\"", &["large_reference", "alpha", "min_effect", "threshold"]),
        [json!(1000), json!(0.05), json!(0.1), json!(0.1)]
    );
}

#[test]
fn out_of_range_parameters_name_their_key() {
    let cases = [
        ("kind = \"ks\"\nalpha = 1.5", "alpha"),
        ("kind = \"ks\"\nalpha = 0.0", "alpha"),
        ("kind = \"chi_square\"\nalpha = -0.1", "alpha"),
        ("kind = \"ks\"\nwindow = 0", "window"),
        ("kind = \"ks\"\nmin_effect = 1.5", "min_effect"),
        ("kind = \"chi_square\"\nmin_effect = -0.1", "min_effect"),
        ("kind = \"psi\"\nalpha = 1.0", "alpha"),
        ("kind = \"ks\"\nwindow = \"1h\"\nstep = 10", "step"),
        ("kind = \"ks\"\nwindow = \"400d\"", "window"),
        ("kind = \"ks\"\nwindow = \"1h\"\nmax_samples = 0", "max_samples"),
        ("kind = \"threshold\"\nmax = 1.0\nalpha = 0.5", "alpha"),
        ("kind = \"threshold\"\nmax = 1.0\nstatistic = \"ewma\"\nalpha = 0.5\nhalf_life = 3", "half_life"),
        ("kind = \"threshold\"\nmax = 1.0\nstatistic = \"ewma\"\nalpha = 0.0", "alpha"),
        ("kind = \"adaptive_threshold\"\nwindow = \"1h\"\nreference = 1000", "reference"),
        ("kind = \"adaptive_threshold\"\nreference_windows = 1", "reference_windows"),
        ("kind = \"drift\"\nlarge_reference = 0", "large_reference"),
        ("kind = \"missing\"\nmin_effect = 4.0", "min_effect"),
        ("kind = \"missing\"\nreference = 0", "reference"),
        ("kind = \"unseen_categories\"\nmax_categories = 1", "max_categories"),
        ("kind = \"out_of_range\"\nmin = 3.0\nmax = 1.0", "min"),
        ("kind = \"type_change\"\nalpha = 0.0", "alpha"),
        ("kind = \"psi\"\nbins = 1", "bins"),
        ("kind = \"jensen_shannon\"\nbins = 0", "bins"),
        ("kind = \"wasserstein\"\nreference = 0", "reference"),
        ("kind = \"psi\"\nwindow = 10\nstep = 0", "step"),
        ("kind = \"adwin\"\ndelta = 1.0", "delta"),
        ("kind = \"adwin\"\nclock = 0", "clock"),
        ("kind = \"kswin\"\nalpha = 2.0", "alpha"),
        ("kind = \"kswin\"\nwindow = 40", "window"),
        ("kind = \"kswin\"\nstat = 0", "stat"),
        ("kind = \"page_hinkley\"\nalpha = 0.0", "alpha"),
        ("kind = \"eddm\"\nbeta = 1.0", "beta"),
        ("kind = \"eddm\"\nalpha = 0.8", "alpha"),
        ("kind = \"hddm_a\"\ndrift_confidence = 0.0", "drift_confidence"),
        ("kind = \"hddm_w\"\nlambda = 1.0", "lambda"),
        ("kind = \"ddm\"\ndrift_threshold = 1.0", "drift_threshold"),
        ("kind = \"cusum\"\nh = 0.0", "h"),
        ("kind = \"ewma\"\nlambda = 0.0", "lambda"),
        ("kind = \"adaptive_threshold\"\nwindow = 0", "window"),
        ("kind = \"adaptive_threshold\"\nwindow = 100\nreference = 150", "reference"),
        ("kind = \"adaptive_threshold\"\nk = 2.0\nwarning_k = 3.0", "warning_k"),
    ];
    for (text, key) in cases {
        let e = build(text).unwrap_err();
        assert!(e.starts_with(&format!("config error at `detector.{key}`")), "{text}: {e}");
    }
}

#[test]
fn unknown_keys_are_named_for_every_kind() {
    let registry = builtin_detectors();
    assert_eq!(registry.kinds().count(), 22);
    for kind in registry.kinds() {
        let e = build(&format!("kind = \"{kind}\"\nwindw = 3")).unwrap_err();
        assert!(e.starts_with("config error at `detector.windw`: unknown field `windw`"), "{kind}: {e}");
    }
}

/// A reference with zero variance, an all-equal window, a window of one
/// category: every verdict is defined and finite.
#[test]
fn degenerate_input_gives_defined_results() {
    let constant = vec![3.0; 3000];
    let mut jump = vec![3.0; 2000];
    jump.extend(vec![4.0; 1000]);
    for text in [
        "kind = \"ks\"\nreference = 500\nwindow = 100",
        "kind = \"psi\"\nreference = 500\nwindow = 100",
        "kind = \"chi_square\"\nreference = 500\nwindow = 100",
        "kind = \"jensen_shannon\"\nreference = 500\nwindow = 100",
        "kind = \"wasserstein\"\nreference = 500\nwindow = 100",
        "kind = \"drift\"\nreference = 500\nwindow = 100",
        "kind = \"drift\"\nreference = 1500\nwindow = 100",
        "kind = \"out_of_range\"\nreference = 500\nwindow = 100",
        "kind = \"type_change\"\nreference = 500\nwindow = 100",
        "kind = \"adaptive_threshold\"\nwindow = 100",
        "kind = \"cusum\"",
        "kind = \"ewma\"",
        "kind = \"adwin\"",
        "kind = \"page_hinkley\"",
        "kind = \"kswin\"",
        "kind = \"ddm\"",
        "kind = \"eddm\"",
        "kind = \"hddm_a\"",
        "kind = \"hddm_w\"",
    ] {
        let c = parse(text);
        for xs in [&constant, &jump] {
            let mut d = c.build("features.x");
            for a in feed(d.as_mut(), xs).into_iter().flatten() {
                assert!(a.statistic.is_finite() && a.threshold.is_finite(), "{text}: {a:?}");
                assert!(a.p_value.is_none_or(|p| (0.0..=1.0).contains(&p)), "{text}: {a:?}");
            }
        }
        // A constant stream is no change.
        let mut d = c.build("features.x");
        let alarms =
            feed(d.as_mut(), &constant).into_iter().flatten().filter(|a| a.status == DriftStatus::Drift).count();
        assert_eq!(alarms, 0, "{text} alarmed on a constant stream");
    }
    // A constant reference, then a different constant: the distances see it.
    for text in [
        "kind = \"wasserstein\"\nreference = 500\nwindow = 100",
        "kind = \"ks\"\nreference = 500\nwindow = 100",
        "kind = \"psi\"\nreference = 500\nwindow = 100",
    ] {
        let mut d = parse(text).build("features.x");
        let last = feed(d.as_mut(), &jump).into_iter().flatten().last().unwrap();
        assert_eq!(last.status, DriftStatus::Drift, "{text}: {last:?}");
    }
}

#[test]
fn categorical_signals_are_compared_by_category() {
    let cat = |c: &'static str| Sample { value: SignalValue::Categorical(c), ts: chrono::DateTime::UNIX_EPOCH };
    for text in [
        "kind = \"chi_square\"\nreference = 300\nwindow = 300",
        "kind = \"psi\"\nreference = 300\nwindow = 300",
        "kind = \"jensen_shannon\"\nreference = 300\nwindow = 300",
    ] {
        let mut d = parse(text).build("features.x");
        let mut last = None;
        for i in 0..600 {
            // The reference is mostly DE; the window mostly FR, with a new category.
            let c = match (i < 300, i % 10) {
                (true, 0..=7) => "DE",
                (true, _) => "FR",
                (false, 0..=3) => "DE",
                (false, 4..=8) => "FR",
                (false, _) => "US",
            };
            last = d.observe(cat(c)).or(last);
        }
        let a = last.unwrap();
        assert_eq!(a.status, DriftStatus::Drift, "{text}: {a:?}");
        // KS ignores categories.
        assert_eq!(parse("kind = \"ks\"").build("features.x").observe(cat("DE")), None);
    }
}

/// `statistic = "ewma"`: at each evaluation, the average of every sample so
/// far, recomputed here from its weights.
#[test]
fn the_ewma_statistic_is_the_weighted_average_of_every_sample() {
    let xs = gaussian_stream(12, &[Segment::new(500, 0.0, 1.0), Segment::new(500, 2.0, 1.0)]);
    for (text, alpha) in [
        ("kind = \"threshold\"\nstatistic = \"ewma\"\nalpha = 0.2\nwindow = 10\nmax = 1.0", 0.2),
        ("kind = \"threshold\"\nstatistic = \"ewma\"\nhalf_life = 10\nwindow = 10\nmax = 1.0", 1.0 - 0.5f64.powf(0.1)),
        ("kind = \"threshold\"\nstatistic = \"ewma\"\nwindow = 9\nmax = 1.0", 0.2),
    ] {
        let mut d = parse(text).build("x");
        for (i, a) in feed(d.as_mut(), &xs).into_iter().enumerate() {
            let Some(a) = a else { continue };
            let mut want = xs[0];
            for &x in &xs[1..=i] {
                want = alpha * x + (1.0 - alpha) * want;
            }
            assert!((a.statistic - want).abs() < 1e-9, "{text}: at {i}, {} vs {want}", a.statistic);
        }
        // And it drifts once the mean has moved.
        let last = feed(parse(text).build("x").as_mut(), &xs).into_iter().flatten().last().unwrap();
        assert_eq!(last.status, DriftStatus::Drift, "{text}");
    }
}
