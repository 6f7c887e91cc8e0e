//! The monitor with reference detectors: bad records stop at the boundary,
//! reference files, multiple-test correction across features.

use std::path::Path;
use std::sync::Arc;

use chrono::DateTime;
use monitor_core::event::{Event, EventKind};
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_core::signal::Signal;
use monitor_strategies::detectors::DetectorSpec;
use monitor_strategies::synth::SplitMix64;
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, PolicyConfig, builtin_detectors};

/// A detector table, as written in TOML, built by the built-in registry with
/// relative paths resolved against `dir`.
fn spec_in(detector: &str, dir: &Path) -> Arc<dyn DetectorSpec> {
    let table: serde_json::Value = toml::from_str(detector).unwrap();
    let ctx = BuildContext { base_dir: dir.to_path_buf(), ..BuildContext::default() };
    builtin_detectors().build("detector", &table, &ctx).unwrap()
}

fn spec(detector: &str) -> Arc<dyn DetectorSpec> {
    spec_in(detector, Path::new(""))
}

fn plan(signal: &str, detector: &str) -> MonitorPlan {
    MonitorPlan {
        monitors: vec![MonitorSpec::from_spec(signal, spec(detector)).unwrap()],
        policy: PolicyConfig { min_samples: 1, ..Default::default() },
        ..Default::default()
    }
}

fn record(features: &[(&str, f64)]) -> Record {
    let mut r = Record::new("fraud", DateTime::UNIX_EPOCH);
    for (name, x) in features {
        r.features.insert((*name).to_owned(), Value::Number(*x));
    }
    r
}

fn findings(events: &[Event]) -> Vec<(String, u64, Option<f64>)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((f.signal.to_string(), e.seq, f.p_value)),
            _ => None,
        })
        .collect()
}

/// NaN and infinite samples are rejected with the record, by
/// `Record::validate`, and never reach a detector: the detector's later
/// verdicts are those of a monitor that never saw them.
#[test]
fn non_finite_samples_never_reach_a_detector() {
    let p = plan("features.*", "kind = \"ks\"\nreference = 50\nwindow = 50");
    let (mut clean, mut dirty) = (Monitor::new(p.clone()).unwrap(), Monitor::new(p).unwrap());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut rng = SplitMix64::new(9);
    for seq in 0..300u64 {
        let x = rng.normal() + if seq > 150 { 2.0 } else { 0.0 };
        let r = record(&[("amount", x)]);
        clean.process(seq, &r, &mut a).unwrap();
        dirty.process(seq, &r, &mut b).unwrap();
        if seq % 20 == 0 {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let e = dirty.process(seq, &record(&[("amount", bad)]), &mut b).unwrap_err();
                assert!(e.to_string().contains("features.amount"), "{e}");
            }
        }
    }
    assert!(!findings(&a).is_empty());
    assert_eq!(findings(&a), findings(&b));
    assert_eq!(dirty.stats().rejected, 45);
}

/// Ten features, one of them shifted a little: its p-value lands between
/// alpha / 10 and alpha. Uncorrected it is flagged; Bonferroni holds it to
/// alpha / 10.
#[test]
fn bonferroni_and_fdr_share_alpha_across_features() {
    let run = |correction: &str| {
        let p = plan(
            "features.*",
            &format!("kind = \"ks\"\nreference = 400\nwindow = 400\nalpha = 0.05\ncorrection = \"{correction}\""),
        );
        let mut m = Monitor::new(p).unwrap();
        let mut events = Vec::new();
        let mut rng = SplitMix64::new(2024);
        for seq in 0..800u64 {
            let feats: Vec<(String, f64)> = (0..10)
                .map(|f| {
                    let shift = if seq >= 400 && f == 3 { 0.17 } else { 0.0 };
                    (format!("f{f}"), rng.normal() + shift)
                })
                .collect();
            let refs: Vec<(&str, f64)> = feats.iter().map(|(n, x)| (n.as_str(), *x)).collect();
            m.process(seq, &record(&refs), &mut events).unwrap();
        }
        findings(&events)
    };
    let none = run("none");
    let bonferroni = run("bonferroni");
    let fdr = run("fdr");
    let f3 = none.iter().find(|f| f.0 == "features.f3").unwrap();
    let p = f3.2.unwrap();
    assert!(p > 0.005 && p <= 0.05, "the test wants 0.005 < p <= 0.05, got {p}");
    assert!(bonferroni.is_empty(), "{bonferroni:?}");
    // Alone in its family, BH also needs p <= alpha / 10 for the first rejection.
    assert!(fdr.is_empty(), "{fdr:?}");

    // A strong shift passes every correction, and the finding reports the
    // per-test alpha it was held to.
    let p = plan("features.*", "kind = \"ks\"\nreference = 300\nwindow = 300");
    let mut m = Monitor::new(p).unwrap();
    let mut events = Vec::new();
    let mut rng = SplitMix64::new(7);
    for seq in 0..600u64 {
        let shift = if seq >= 300 { 1.0 } else { 0.0 };
        let r = record(&[("a", rng.normal() + shift), ("b", rng.normal()), ("c", rng.normal()), ("d", rng.normal())]);
        m.process(seq, &r, &mut events).unwrap();
    }
    let EventKind::Finding(f) = &events[0].kind else { panic!("{events:?}") };
    assert_eq!((f.signal.to_string(), f.threshold), ("features.a".to_owned(), 0.05 / 4.0));
    assert!(f.message.contains("alpha 0.0125"), "{}", f.message);
}

#[test]
fn effective_alpha_per_feature_for_check_config() {
    let mut p = plan("features.*", "kind = \"ks\"\nalpha = 0.05");
    p.monitors.push(MonitorSpec::from_spec("latency_ms", spec("kind = \"adwin\"")).unwrap());
    p.monitors
        .push(MonitorSpec::from_spec("features.*", spec("kind = \"chi_square\"\ncorrection = \"none\"")).unwrap());
    let signals: Vec<Signal> = ["features.a", "features.b", "features.c", "features.d", "latency_ms"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let alphas = p.effective_alphas("fraud", &signals, &[]);
    assert_eq!(alphas.len(), 8);
    assert!(alphas[..4].iter().all(|e| e.monitor == 0 && e.per_test == 0.0125 && e.tests == 4));
    assert!(alphas[4..].iter().all(|e| e.monitor == 2 && e.per_test == 0.05));
}

/// A reference file of training records: loaded once, shared by clones of
/// the plan, compared against from the first window on.
#[test]
fn reference_file_is_the_reference_from_the_first_window() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut rng = SplitMix64::new(11);
    let mut text = String::new();
    for _ in 0..2000 {
        let country = if rng.uniform() < 0.7 { "DE" } else { "FR" };
        text.push_str(&format!(
            "{{\"model\": \"fraud\", \"features\": {{\"amount\": {}, \"country\": \"{country}\"}}}}\n",
            100.0 + 10.0 * rng.normal()
        ));
    }
    std::fs::write(dir.join("train.ndjson"), text).unwrap();

    let p = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec(
                "features.*",
                spec_in("kind = \"psi\"\nreference_file = \"train.ndjson\"\nwindow = 500", &dir),
            )
            .unwrap(),
            MonitorSpec::from_spec(
                "features.amount",
                spec_in("kind = \"ks\"\nreference_file = \"train.ndjson\"\nwindow = 500", &dir),
            )
            .unwrap(),
        ],
        policy: PolicyConfig { min_samples: 1, ..Default::default() },
        ..Default::default()
    };
    let mut m = Monitor::new(p.clone()).unwrap();
    let signals = p.monitors[0].detector.reference_signals().unwrap();
    assert_eq!(signals.unwrap(), ["features.amount", "features.country"]);
    assert_eq!(p.monitors[0].detector.params()["reference_file"], dir.join("train.ndjson").display().to_string());
    let mut events = Vec::new();
    for seq in 0..500u64 {
        let line = format!(
            "{{\"model\": \"fraud\", \"features\": {{\"amount\": {}, \"country\": \"{}\"}}}}",
            130.0 + 10.0 * rng.normal(),
            if rng.uniform() < 0.3 { "DE" } else { "FR" }
        );
        m.process(seq, &Record::parse(&line, DateTime::UNIX_EPOCH).unwrap(), &mut events).unwrap();
    }
    let mut got: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((f.signal.to_string(), f.detector.clone())),
            _ => None,
        })
        .collect();
    got.sort();
    let want = [("features.amount", "ks"), ("features.amount", "psi"), ("features.country", "psi")];
    assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));

    // A missing file is a config error naming the key and the path.
    let bad = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("features.*", spec_in("kind = \"ks\"\nreference_file = \"nope.ndjson\"", &dir))
                .unwrap(),
        ],
        ..Default::default()
    };
    let e = Monitor::new(bad).unwrap_err().to_string();
    assert!(e.contains("monitors[0].detector.reference_file") && e.contains("nope.ndjson"), "{e}");
}

/// A numeric test on a categorical feature could never fire: it is not set
/// up there, it is counted, and it leaves the Bonferroni family.
#[test]
fn numeric_detectors_skip_categorical_signals_and_leave_their_family() {
    let p = plan("features.*", "kind = \"ks\"\nalpha = 0.05\nreference = 5\nwindow = 5");
    let signals: Vec<Signal> = ["features.a", "features.country"].iter().map(|s| s.parse().unwrap()).collect();
    let categorical: Vec<Signal> = vec!["features.country".parse().unwrap()];
    let alphas = p.effective_alphas("fraud", &signals, &categorical);
    assert_eq!(alphas.len(), 1);
    assert_eq!((alphas[0].signal.to_string(), alphas[0].per_test, alphas[0].tests), ("features.a".to_owned(), 0.05, 1));
    assert_eq!(p.unusable("fraud", &categorical), vec![(0, categorical[0].clone())]);

    let mut monitor = Monitor::new(p).unwrap();
    let mut events = Vec::new();
    for i in 0..10u64 {
        let mut r = record(&[("a", if i < 5 { 0.0 } else { 100.0 } + i as f64)]);
        r.features.insert("country".into(), Value::Category(if i < 5 { "DE" } else { "FR" }.into()));
        monitor.process(i, &r, &mut events).unwrap();
    }
    assert_eq!(monitor.stats().monitors_skipped, 1);
    // `a` alone is tested, at the full alpha: its shift is found.
    assert_eq!(findings(&events).iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["features.a"]);
}

/// Every size key has an upper bound, checked before anything is built:
/// `window = 1e12` used to abort the process on a failed allocation.
#[test]
fn oversized_detector_settings_are_config_errors() {
    let cases = [
        ("kind = \"threshold\"\nmax = 1.0\nwindow = 1000000000000", "window", "must be at most 1000000"),
        ("kind = \"kswin\"\nwindow = 1000000000000", "window", "must be at most 1000000"),
        ("kind = \"mean_shift\"\nthreshold = 1.0\nwindow = 1000000000000", "window", "must be at most 1000000"),
        ("kind = \"adaptive_threshold\"\nwindow = 1000000000000", "window", "must be at most 1000000"),
        ("kind = \"adwin\"\nmax_buckets = 1000000000000", "max_buckets", "must be at most 1000"),
        ("kind = \"psi\"\nbins = 1000000000000", "bins", "must be between 2 and 10000"),
        ("kind = \"chi_square\"\nbins = 1000000000000", "bins", "must be between 2 and 10000"),
        ("kind = \"jensen_shannon\"\nbins = 1000000000000", "bins", "must be between 2 and 10000"),
        ("kind = \"ks\"\nreference = 1000000000000", "reference", "must be at most 1000000"),
        ("kind = \"psi\"\nmax_categories = 1000000000000", "max_categories", "must be between 2 and 10000"),
    ];
    for (table, key, message) in cases {
        let table: serde_json::Value = toml::from_str(table).unwrap();
        let err = builtin_detectors().build("monitors[0].detector", &table, &BuildContext::default()).unwrap_err();
        let err = err.to_string();
        assert!(err.starts_with(&format!("config error at `monitors[0].detector.{key}`: {message}")), "{err}");
    }
}

/// Flap damping on a stream that alternates between drift and clear
/// windows: undamped it fires and recovers every other window; with
/// `fire_after = 2` it never fires; a sustained change fires once, and
/// resolves only after `resolve_after` clear windows.
#[test]
fn flap_damping_holds_an_alternating_stream() {
    let run = |fire_after: u32, resolve_after: u32, xs: &[f64]| {
        let monitor = MonitorSpec::from_spec("features.*", spec("kind = \"threshold\"\nwindow = 1\nmax = 0.5"))
            .unwrap()
            .damping(fire_after, resolve_after);
        let plan = MonitorPlan { monitors: vec![monitor], ..MonitorPlan::default() };
        let mut m = Monitor::new(plan).unwrap();
        let mut events = Vec::new();
        for (seq, &x) in xs.iter().enumerate() {
            m.process(seq as u64, &record(&[("a", x)]), &mut events).unwrap();
        }
        events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Finding(_) => format!("F{}", e.seq),
                EventKind::Recovered(_) => format!("R{}", e.seq),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let alternating: Vec<f64> = (0..20).map(|i| f64::from(i % 2)).collect();
    assert_eq!(run(1, 1, &alternating), "F1 R2 F3 R4 F5 R6 F7 R8 F9 R10 F11 R12 F13 R14 F15 R16 F17 R18 F19");
    assert_eq!(run(2, 1, &alternating), "");
    // Three windows in drift, then clear ones broken by one in drift.
    let sustained = [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    assert_eq!(run(2, 3, &sustained), "F2 R9");
    assert_eq!(run(3, 1, &sustained), "F3 R4");
}
