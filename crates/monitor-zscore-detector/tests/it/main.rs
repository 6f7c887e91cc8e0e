//! The `zscore` kind from outside the built-in detectors: named in TOML,
//! built through a registry that holds the built-ins and it, driven by
//! records to a finding.

#![allow(clippy::unwrap_used, missing_docs)]

use monitor_core::detector::{DriftStatus, Sample};
use monitor_core::event::{Event, EventKind, Severity};
use monitor_core::record::Record;
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use monitor_runtime::Config;
use monitor_strategies::{Monitor, builtin_detectors};

const CONFIG: &str = r#"
[[monitors]]
signal = "latency_ms"
detector = { kind = "zscore", reference = 200, window = 20, threshold = 4.0 }

[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 20, max = 1000.0 }

[policy]
min_samples = 1
"#;

/// The built-in kinds and `zscore`.
fn ctx() -> BuildContext {
    let mut detectors = builtin_detectors();
    monitor_zscore_detector::register(&mut detectors);
    BuildContext { detectors, ..BuildContext::default() }
}

/// Latencies around 20 ms (18 and 22 in turn), then around 26 ms from `shift` on.
fn latency(seq: u64, shift: u64) -> Record {
    let ms = if seq % 2 == 0 { 18.0 } else { 22.0 } + if seq >= shift { 6.0 } else { 0.0 };
    Record::parse(&format!(r#"{{"model": "search", "latency_ms": {ms}}}"#), chrono::Utc::now()).unwrap()
}

#[test]
fn a_toml_config_names_the_kind_and_records_drive_it_to_a_finding() {
    let config = Config::from_toml(CONFIG).unwrap();
    let plan = config.plan(&ctx()).unwrap();
    assert_eq!(plan.monitors[0].detector.kind(), "zscore");
    assert_eq!(
        plan.monitors[0].detector.params(),
        serde_json::json!({"reference": 200, "window": 20, "threshold": 4.0})
    );
    let mut monitor = Monitor::new(plan).unwrap();
    let mut events: Vec<Event> = Vec::new();
    for seq in 0..400 {
        monitor.process(seq, &latency(seq, 300), &mut events).unwrap();
    }
    let findings: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((f.detector.as_str(), f.severity, e.seq)),
            _ => None,
        })
        .collect();
    // The first window after the shift (records 300..=319) is drift; nothing before it.
    assert_eq!(findings, [("zscore", Severity::Drift, 319)]);
    let EventKind::Finding(f) = &events[0].kind else { panic!("{events:?}") };
    assert!(f.statistic > 4.0 && f.message.contains("standard errors"), "{f:?}");
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::RetrainRequested(_))));
}

/// The wiring that `docs/EXTENDING.md` shows, as it shows it.
#[test]
fn the_documented_wiring_builds_a_monitor() -> Result<(), monitor_core::Error> {
    let config = Config::from_toml(CONFIG)?;
    let mut detectors = monitor_strategies::builtin_detectors();
    monitor_zscore_detector::register(&mut detectors);
    let ctx = BuildContext { detectors, ..BuildContext::default() };
    let plan = config.plan(&ctx)?;
    let monitor = Monitor::new(plan)?;
    assert_eq!(monitor.plan().monitors.len(), 2);
    Ok(())
}

#[test]
fn without_registering_it_the_error_names_the_kind_and_lists_the_known_ones() {
    let config = Config::from_toml(CONFIG).unwrap();
    let ctx = BuildContext { detectors: builtin_detectors(), ..BuildContext::default() };
    let e = config.plan(&ctx).unwrap_err().to_string();
    assert!(
        e.starts_with("config error at `monitors[0].detector.kind`: unknown detector kind `zscore`; known kinds: "),
        "{e}"
    );
    for kind in builtin_detectors().kinds() {
        assert!(e.contains(kind), "{e} lacks {kind}");
    }
    assert!(e.contains("threshold") && e.contains("wasserstein"), "{e}");
}

#[test]
fn config_errors_name_the_dotted_key() {
    let err = |detector: &str| {
        let text = format!("[[monitors]]\nsignal = \"latency_ms\"\ndetector = {detector}\n");
        Config::from_toml(&text).unwrap().plan(&ctx()).unwrap_err().to_string()
    };
    let e = err(r#"{ kind = "zscore", windw = 20 }"#);
    assert!(e.starts_with("config error at `monitors[0].detector.windw`: unknown field `windw`"), "{e}");
    let e = err(r#"{ kind = "zscore", window = "5m" }"#);
    assert!(e.starts_with("config error at `monitors[0].detector.window`: invalid type"), "{e}");
    let e = err(r#"{ kind = "zscore", reference = 1 }"#);
    assert_eq!(
        e,
        "config error at `monitors[0].detector.reference`: must be at least 2 to estimate a deviation (got 1)"
    );
}

#[test]
fn a_saved_state_restores_the_same_behaviour() {
    let table = serde_json::json!({"kind": "zscore", "reference": 50, "window": 10, "warning": 2.0});
    let spec = ctx().detectors.build("detector", &table, &BuildContext::default()).unwrap();
    let xs: Vec<f64> = (0..300).map(|i| f64::from(i % 7) + if i >= 200 { 3.0 } else { 0.0 }).collect();
    let observe = |d: &mut Box<dyn monitor_core::detector::Detector>, xs: &[f64]| -> Vec<_> {
        xs.iter()
            .filter_map(|&x| d.observe(Sample { value: SignalValue::Numeric(x), ts: chrono::DateTime::UNIX_EPOCH }))
            .collect()
    };
    let mut d = spec.build("latency_ms");
    observe(&mut d, &xs[..120]);
    let state = d.save_state().unwrap();
    let mut restored = spec.build("latency_ms");
    restored.load_state(state).unwrap();
    let (a, b) = (observe(&mut d, &xs[120..]), observe(&mut restored, &xs[120..]));
    assert_eq!(a, b);
    assert!(a.iter().any(|a| a.status == DriftStatus::Drift), "{a:?}");
    assert!(restored.load_state(serde_json::json!({"config": 1})).is_err());
}
