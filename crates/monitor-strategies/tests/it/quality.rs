//! The data-quality detectors (`missing`, `unseen_categories`,
//! `out_of_range`, `type_change`) against a naive recomputation of their
//! shares and binomial tests, and the monitor's derived
//! `quality.missing.<name>` signals.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::DateTime;
use monitor_core::detector::{Assessment, DriftStatus, Sample};
use monitor_core::event::{Event, EventKind};
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use monitor_strategies::detectors::DetectorSpec;
use monitor_strategies::stats::{binom_test_greater, cohen_h};
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, builtin_detectors};
use proptest::prelude::*;

fn spec(detector: &str) -> Arc<dyn DetectorSpec> {
    let table: serde_json::Value = toml::from_str(detector).unwrap();
    builtin_detectors().build("detector", &table, &BuildContext::default()).unwrap()
}

/// One sample of either type, as proptest makes them.
#[derive(Debug, Clone)]
enum V {
    N(f64),
    C(String),
}

impl V {
    fn value(&self) -> SignalValue<'_> {
        match self {
            V::N(x) => SignalValue::Numeric(*x),
            V::C(c) => SignalValue::Categorical(c),
        }
    }
}

fn run(detector: &str, stream: &[V]) -> Vec<Assessment> {
    let mut d = spec(detector).build("features.f");
    stream.iter().filter_map(|v| d.observe(Sample { value: v.value(), ts: DateTime::UNIX_EPOCH })).collect()
}

/// The verdicts a share detector should give: the samples that count,
/// after the first `reference` of them, in tumbling windows of `window`;
/// each window's share of hits against `expected`.
fn naive(
    counted: &[bool],
    reference: usize,
    window: usize,
    expected: f64,
    alpha: f64,
    min_effect: f64,
) -> Vec<(DriftStatus, f64, f64)> {
    counted[reference.min(counted.len())..]
        .chunks(window)
        .filter(|c| c.len() == window)
        .map(|c| {
            let hits = c.iter().filter(|&&h| h).count() as u64;
            let share = hits as f64 / window as f64;
            let p = binom_test_greater(hits, window as u64, expected);
            let drift = hits > 0 && cohen_h(share, expected) >= min_effect && p <= alpha;
            (if drift { DriftStatus::Drift } else { DriftStatus::Stable }, share, p)
        })
        .collect()
}

fn got(verdicts: &[Assessment]) -> Vec<(DriftStatus, f64, f64)> {
    verdicts.iter().map(|a| (a.status, a.statistic, a.p_value.unwrap())).collect()
}

fn categories() -> impl Strategy<Value = Vec<V>> {
    prop::collection::vec(
        prop_oneof![
            8 => (0u8..6).prop_map(|c| V::C(format!("c{c}"))),
            1 => (0u8..40).prop_map(|c| V::C(format!("rare{c}"))),
            1 => (-5.0..5.0f64).prop_map(V::N),
        ],
        0..600,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `unseen_categories`: the reference is the first 200 categorical
    /// samples; expected is the Good–Turing share (categories seen once).
    #[test]
    fn unseen_categories_match_a_naive_recomputation(stream in categories()) {
        let cats: Vec<&str> = stream.iter().filter_map(|v| match v { V::C(c) => Some(c.as_str()), _ => None }).collect();
        let reference = &cats[..200.min(cats.len())];
        let seen: BTreeSet<&str> = reference.iter().copied().collect();
        let once = seen.iter().filter(|c| reference.iter().filter(|r| r == c).count() == 1).count();
        let expected = once as f64 / reference.len().max(1) as f64;
        let hits: Vec<bool> = cats.iter().map(|c| !seen.contains(c)).collect();
        let want = naive(&hits, 200, 50, expected, 0.05, 0.2);
        let verdicts = run("kind = \"unseen_categories\"\nreference = 200\nwindow = 50", &stream);
        prop_assert_eq!(got(&verdicts), want);
    }

    /// `out_of_range`: outside the first 200 numbers' range; 2 / (n + 1) expected.
    #[test]
    fn out_of_range_matches_a_naive_recomputation(
        xs in prop::collection::vec(prop_oneof![9 => -3.0..3.0f64, 1 => -30.0..30.0f64], 0..600),
    ) {
        let stream: Vec<V> = xs.iter().map(|&x| V::N(x)).collect();
        let reference = &xs[..200.min(xs.len())];
        let lo = reference.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = reference.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let hits: Vec<bool> = xs.iter().map(|&x| x < lo || x > hi).collect();
        let want = naive(&hits, 200, 50, 2.0 / 201.0, 0.05, 0.2);
        prop_assert_eq!(got(&run("kind = \"out_of_range\"\nreference = 200\nwindow = 50", &stream)), want);
        // Configured bounds need no reference, and expect nothing outside.
        let hits: Vec<bool> = xs.iter().map(|&x| !(-2.5..=2.5).contains(&x)).collect();
        let want = naive(&hits, 0, 50, 0.0, 0.05, 0.2);
        let verdicts = run("kind = \"out_of_range\"\nmin = -2.5\nmax = 2.5\nwindow = 50", &stream);
        prop_assert_eq!(got(&verdicts), want);
    }

    /// `missing`: the share of ones of a 0/1 signal against the reference's.
    #[test]
    fn missing_matches_a_naive_recomputation(
        ones in prop::collection::vec(prop::bool::weighted(0.1), 0..600),
        jump in prop::collection::vec(prop::bool::weighted(0.3), 0..300),
    ) {
        let all: Vec<bool> = ones.iter().chain(&jump).copied().collect();
        let stream: Vec<V> = all.iter().map(|&b| V::N(if b { 1.0 } else { 0.0 })).collect();
        let reference = &all[..300.min(all.len())];
        let expected = reference.iter().filter(|&&b| b).count() as f64 / reference.len().max(1) as f64;
        let want = naive(&all, 300, 100, expected, 0.05, 0.2);
        prop_assert_eq!(got(&run("kind = \"missing\"\nreference = 300\nwindow = 100", &stream)), want);
    }

    /// `type_change`: samples of the reference's minority type.
    #[test]
    fn type_change_matches_a_naive_recomputation(stream in categories()) {
        let reference = &stream[..100.min(stream.len())];
        let numbers = reference.iter().filter(|v| matches!(v, V::N(_))).count();
        let categorical = numbers * 2 < reference.len();
        let expected = numbers.min(reference.len() - numbers) as f64 / reference.len().max(1) as f64;
        let hits: Vec<bool> = stream.iter().map(|v| matches!(v, V::C(_)) != categorical).collect();
        let want = naive(&hits, 100, 50, expected, 0.05, 0.0);
        prop_assert_eq!(got(&run("kind = \"type_change\"\nreference = 100\nwindow = 50", &stream)), want);
    }
}

/// Each check catches the change it is for within one window.
#[test]
fn each_check_catches_its_change() {
    let cat = |c: &str| V::C(c.to_owned());
    // A new category in 2% of 1000.
    let mut s: Vec<V> = (0..2000).map(|i| cat(["a", "b", "c"][i % 3])).collect();
    s.extend((0..1000).map(|i| if i % 50 == 0 { cat("new") } else { cat(["a", "b", "c"][i % 3]) }));
    let v = run("kind = \"unseen_categories\"\nreference = 2000", &s);
    assert_eq!(v.iter().map(|a| a.status).collect::<Vec<_>>(), [DriftStatus::Drift]);
    // A number where a category was.
    let mut s: Vec<V> = (0..1500).map(|i| cat(["a", "b"][i % 2])).collect();
    s.push(V::N(4.0));
    s.extend((0..499).map(|_| cat("a")));
    let v = run("kind = \"type_change\"\nreference = 1000\nwindow = 500", &s);
    assert_eq!(v.iter().map(|a| a.status).collect::<Vec<_>>(), [DriftStatus::Stable, DriftStatus::Drift]);
    // Values beyond the reference's range in 3% of a window.
    let mut s: Vec<V> = (0..2000).map(|i| V::N(f64::from(i % 100))).collect();
    s.extend((0..1000).map(|i| V::N(if i % 33 == 0 { 1000.0 } else { 50.0 })));
    let v = run("kind = \"out_of_range\"\nreference = 2000", &s);
    assert_eq!(v.iter().map(|a| a.status).collect::<Vec<_>>(), [DriftStatus::Drift]);
}

fn findings(events: &[Event]) -> Vec<(u64, String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((e.seq, f.signal.to_string(), f.detector.clone())),
            _ => None,
        })
        .collect()
}

/// The monitor derives `quality.missing.<name>` for each feature a version
/// has named (with a value or null): absent and null count as missing.
#[test]
fn the_monitor_feeds_missing_values_of_features_it_has_seen() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("quality.missing.*", spec("kind = \"threshold\"\nwindow = 1\nmax = 0.5")).unwrap(),
        ],
        ..MonitorPlan::default()
    };
    let mut m = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    let lines = [
        r#"{"model": "m", "features": {"a": 1.0}}"#,
        r#"{"model": "m", "features": {"a": null, "b": "x"}}"#,
        r#"{"model": "m", "features": {"b": "y"}}"#,
        r#"{"model": "m", "features": {"a": 2.0, "b": "y"}}"#,
        r#"{"model": "m", "latency_ms": 3.0}"#,
    ];
    for (seq, line) in lines.iter().enumerate() {
        m.process(seq as u64, &Record::parse(line, DateTime::UNIX_EPOCH).unwrap(), &mut events).unwrap();
    }
    let recovered: Vec<(u64, String)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Recovered(f) => Some((e.seq, f.signal.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(
        findings(&events),
        [
            (1, "quality.missing.a".to_owned(), "threshold".to_owned()),
            (4, "quality.missing.a".to_owned(), "threshold".to_owned()),
            (4, "quality.missing.b".to_owned(), "threshold".to_owned()),
        ]
    );
    assert_eq!(recovered, [(3, "quality.missing.a".to_owned())]);
}

/// A feature that turns from numbers to categories is a finding of
/// `type_change`, while the numeric detectors ignore the categories.
#[test]
fn a_feature_that_changes_type_is_a_finding() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("features.*", spec("kind = \"type_change\"\nreference = 100\nwindow = 100"))
                .unwrap(),
            MonitorSpec::from_spec("features.*", spec("kind = \"ks\"\nreference = 100\nwindow = 100")).unwrap(),
        ],
        ..MonitorPlan::default()
    };
    let mut m = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    for seq in 0..300u64 {
        let mut r = Record::new("m", DateTime::UNIX_EPOCH);
        let v = if seq >= 250 { Value::Category(format!("{seq}.5")) } else { Value::Number(seq as f64 % 10.0) };
        r.features.insert("amount".into(), v);
        m.process(seq, &r, &mut events).unwrap();
    }
    assert_eq!(findings(&events), [(299, "features.amount".to_owned(), "type_change".to_owned())]);
    let EventKind::Finding(f) = &events[0].kind else { panic!() };
    assert!(f.message.contains("categories, not numbers"), "{}", f.message);
}
