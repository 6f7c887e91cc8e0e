//! What only a multivariate test sees: two features whose marginals stay
//! the same while their correlation flips, and labels that come late.

use chrono::{DateTime, Duration, Utc};
use monitor_core::event::EventKind;
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_strategies::detectors::AdaptiveThresholdConfig;
use monitor_strategies::performance::{Calibration, EstimateSpec, PerformanceSpec, Problem, ReconstructionSpec};
use monitor_strategies::synth::SplitMix64;
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, builtin_detectors};

fn at(i: usize) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(365 * 50) + Duration::seconds(i as i64)
}

/// x and y standard normal with correlation +0.9 for the first `flip`
/// records, then −0.9: every marginal is N(0, 1) throughout.
fn correlated(n: usize, flip: usize) -> Vec<Record> {
    let mut rng = SplitMix64::new(7);
    (0..n)
        .map(|i| {
            let rho: f64 = if i < flip { 0.9 } else { -0.9 };
            let (a, b) = (rng.normal(), rng.normal());
            let mut r = Record::new("pricing", at(i));
            r.features.insert("x".into(), Value::Number(a));
            r.features.insert("y".into(), Value::Number(rho * a + (1.0 - rho * rho).sqrt() * b));
            r
        })
        .collect()
}

#[test]
fn a_flipped_correlation_is_flagged_by_reconstruction_and_not_by_ks() {
    let ctx = BuildContext { detectors: builtin_detectors(), ..Default::default() };
    let ks = ctx
        .detectors
        .build("ks", &serde_json::json!({ "kind": "ks", "reference": 5000, "window": 1000 }), &ctx)
        .unwrap();
    let band = AdaptiveThresholdConfig { window: 1.into(), reference_windows: Some(10), ..Default::default() };
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("features.*", ks).unwrap(),
            MonitorSpec::new("multivariate.reconstruction_error", band).unwrap(),
        ],
        reconstruction: vec![ReconstructionSpec {
            models: None,
            features: None,
            window: 500,
            reference: Some(5000),
            variance: 0.65,
            max_categories: 100,
        }],
        ..Default::default()
    };
    let mut monitor = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    for (seq, r) in correlated(10_000, 5000).iter().enumerate() {
        monitor.process(seq as u64, r, &mut events).unwrap();
    }
    let flagged: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.signal.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(flagged, vec!["multivariate.reconstruction_error".to_owned()], "{events:?}");
    let finding = events.iter().find(|e| matches!(e.kind, EventKind::Finding(_))).unwrap();
    assert_eq!(finding.seq, 5499, "the first window after the flip");
    let (fit, _) = monitor.windows("pricing", "default").unwrap().reconstruction().unwrap();
    assert_eq!(fit.components, 1, "one component explains 95% of two features correlated at 0.9");
}

/// Labels that come after later predictions count in their prediction's
/// window: the window's `perf.*` values wait for them (min_labels = 1).
#[test]
fn late_labels_count_in_the_window_of_their_prediction() {
    let plan = MonitorPlan {
        performance: vec![PerformanceSpec {
            models: None,
            problem: Problem::Binary,
            window: 4,
            positive: Value::Number(1.0),
            score: None,
            threshold: 0.5,
            min_labels: 1.0,
            open_windows: 4,
            estimate: None,
        }],
        ..Default::default()
    };
    let mut monitor = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    let mut seq = 0;
    let mut send = |monitor: &mut Monitor, r: Record| {
        monitor.process(seq, &r, &mut events).unwrap();
        seq += 1;
    };
    // Window 0: scores 0.9, 0.8, 0.2, 0.1 (predicted positive, positive, negative, negative).
    for (i, score) in [0.9, 0.8, 0.2, 0.1].into_iter().enumerate() {
        let mut r = Record::new("fraud", at(i));
        r.id = Some(format!("p{i}"));
        r.prediction = Some(Value::Number(score));
        send(&mut monitor, r);
    }
    // Window 1 starts before any label of window 0 comes.
    let mut r = Record::new("fraud", at(10));
    r.id = Some("p4".into());
    r.prediction = Some(Value::Number(0.7));
    send(&mut monitor, r);
    let windows = monitor.windows("fraud", "default").unwrap();
    assert_eq!(windows.recent().count(), 0, "no value before the labels");
    for (i, label) in [1.0, 0.0, 0.0, 1.0].into_iter().enumerate() {
        let mut r = Record::new("fraud", at(20 + i));
        r.id = Some(format!("p{i}"));
        r.label = Some(Value::Number(label));
        send(&mut monitor, r);
    }
    let windows = monitor.windows("fraud", "default").unwrap();
    let got: Vec<(String, u64, f64)> = windows.recent().map(|e| (e.signal.to_string(), e.window, e.value)).collect();
    // tp 1, fp 1, tn 1, fn 1; scikit-learn's roc_auc_score([1, 0, 0, 1], [0.9, 0.8, 0.2, 0.1]) = 0.5.
    let want = [
        ("perf.accuracy", 0.5),
        ("perf.precision", 0.5),
        ("perf.recall", 0.5),
        ("perf.f1", 0.5),
        ("perf.specificity", 0.5),
        ("perf.roc_auc", 0.5),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((signal, window, value), (name, v)) in got.iter().zip(want) {
        assert_eq!((signal.as_str(), *window), (name, 0));
        assert!((value - v).abs() < 1e-12, "{signal}: {value}");
    }
}

/// A finding on an estimate carries the realised value of its window when
/// the window's labels came before it closed (late labels included), and
/// none when they come after; they then give the window's `perf.*` values.
#[test]
fn an_estimate_finding_carries_the_realised_value_when_the_labels_came_in_time() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::new(
                "estimated.accuracy",
                AdaptiveThresholdConfig { window: 1.into(), reference_windows: Some(2), k: 1.0, ..Default::default() },
            )
            .unwrap(),
        ],
        performance: vec![PerformanceSpec {
            models: None,
            problem: Problem::Binary,
            window: 4,
            positive: Value::Number(1.0),
            score: None,
            threshold: 0.5,
            min_labels: 1.0,
            open_windows: 4,
            estimate: Some(EstimateSpec { reference: 8, calibration: Calibration::None }),
        }],
        ..Default::default()
    };
    let run = |labels_in_time: bool| {
        let mut monitor = Monitor::new(plan.clone()).unwrap();
        let mut events = Vec::new();
        let mut seq = 0;
        let mut send = |monitor: &mut Monitor, r: Record| {
            monitor.process(seq, &r, &mut events).unwrap();
            seq += 1;
        };
        // The reference, labelled: accuracy 1.0 then 0.75, so the band is 0.875 ± 0.125.
        for (i, label) in [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0].into_iter().enumerate() {
            let mut r = Record::new("fraud", at(i));
            r.prediction = Some(Value::Number([0.9, 0.8, 0.2, 0.1][i % 4]));
            r.label = Some(Value::Number(label));
            send(&mut monitor, r);
        }
        // Window 2: four scores of 0.6, all predicted positive; estimated
        // accuracy 0.6, below the band. Its labels (1, 0, 1, 0) give a
        // realised accuracy of 0.5.
        let label = |i: usize, t: usize| {
            let mut r = Record::new("fraud", at(t));
            r.id = Some(format!("p{i}"));
            r.label = Some(Value::Number(if i % 2 == 0 { 1.0 } else { 0.0 }));
            r
        };
        for i in 8..12 {
            if labels_in_time && i == 11 {
                for j in 8..11 {
                    send(&mut monitor, label(j, 20 + j));
                }
            }
            let mut r = Record::new("fraud", at(i));
            r.id = Some(format!("p{i}"));
            r.prediction = Some(Value::Number(0.6));
            if labels_in_time && i == 11 {
                r.label = Some(Value::Number(0.0));
            }
            send(&mut monitor, r);
        }
        if !labels_in_time {
            for j in 8..12 {
                send(&mut monitor, label(j, 40 + j));
            }
        }
        let windows = monitor.windows("fraud", "default").unwrap();
        assert_eq!(windows.realised("accuracy", 2), Some(0.5), "the labels are in at the end either way");
        let findings: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Finding(f) => Some(f.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].signal.to_string(), "estimated.accuracy");
        assert!((findings[0].statistic - 0.6).abs() < 1e-12, "{}", findings[0].statistic);
        findings[0].clone()
    };
    let in_time = run(true);
    assert_eq!(in_time.realised, Some(0.5));
    assert!(in_time.message.ends_with("; realised perf.accuracy 0.5"), "{}", in_time.message);
    let late = run(false);
    assert_eq!(late.realised, None);
    assert!(!late.message.contains("realised"), "{}", late.message);
}
