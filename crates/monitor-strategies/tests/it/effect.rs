//! Alarms that are material as well as significant: effect sizes against
//! SciPy, the gate of each two-sample test, and one multiple-test family
//! per model version across monitors.
//!
//! Source of the SciPy values: `python3 scripts/effect_reference.py`
//! (SciPy 1.17.1), which writes `effect_cases.rs`.

use std::sync::Arc;

use chrono::DateTime;
use monitor_core::detector::{DriftStatus, Sample};
use monitor_core::event::{Event, EventKind};
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_core::signal::{Signal, SignalValue};
use monitor_strategies::detectors::DetectorSpec;
use monitor_strategies::stats::{
    binom_test_greater, cohen_h, cramers_v, cramers_v_balanced, ks_2samp, share_at_effect,
};
use monitor_strategies::synth::{Segment, SplitMix64, gaussian_stream};
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, builtin_detectors};
use proptest::prelude::*;

use crate::effect_cases::{BINOM_GREATER, CRAMERS_V};

fn spec(detector: &str) -> Arc<dyn DetectorSpec> {
    let table: serde_json::Value = toml::from_str(detector).unwrap();
    builtin_detectors().build("detector", &table, &BuildContext::default()).unwrap()
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    let ok = got == want || (got - want).abs() <= 1e-9 * want.abs() || (got - want).abs() <= 1e-300;
    assert!(ok, "{what}: got {got:e}, SciPy {want:e}");
}

#[test]
fn cramers_v_matches_scipy_association() {
    for &(table, want) in CRAMERS_V {
        close(cramers_v(table), want, &format!("{table:?}"));
    }
}

#[test]
fn the_binomial_tail_matches_scipy_binomtest() {
    for &(k, n, p, want) in BINOM_GREATER {
        close(binom_test_greater(k, n, p), want, &format!("binomtest({k}, {n}, {p})"));
    }
}

proptest! {
    /// The balanced V is SciPy's V of the table whose reference row is
    /// rescaled to the window's total (computed here naively from the
    /// definition, chi-square over N (min(r, c) - 1)).
    #[test]
    fn balanced_v_is_v_of_the_rescaled_table(
        counts in prop::collection::vec((0u64..500, 0u64..500), 2..8),
    ) {
        let reference: Vec<u64> = counts.iter().map(|c| c.0).collect();
        let current: Vec<u64> = counts.iter().map(|c| c.1).collect();
        let (nr, nc) = (reference.iter().sum::<u64>() as f64, current.iter().sum::<u64>() as f64);
        prop_assume!(nr > 0.0 && nc > 0.0);
        let rows = [reference.iter().map(|&x| x as f64 * nc / nr).collect::<Vec<f64>>(),
                    current.iter().map(|&x| x as f64).collect::<Vec<f64>>()];
        let cols: Vec<f64> = (0..counts.len()).map(|j| rows[0][j] + rows[1][j]).collect();
        let total = 2.0 * nc;
        let mut chi2 = 0.0;
        for row in &rows {
            for (j, &col) in cols.iter().enumerate() {
                let e = nc * col / total;
                if e > 0.0 {
                    chi2 += (row[j] - e).powi(2) / e;
                }
            }
        }
        let want = (chi2 / total).sqrt();
        let got = cramers_v_balanced(&reference, &current);
        prop_assert!((got - want).abs() < 1e-9, "{} vs {}", got, want);
    }

    /// Cohen's h and the share it reaches invert each other.
    #[test]
    fn share_at_effect_inverts_cohen_h(p0 in 0.0..0.9f64, h in 0.0..0.5f64) {
        let p = share_at_effect(p0, h);
        prop_assume!(p < 1.0);
        prop_assert!((cohen_h(p, p0) - h).abs() < 1e-9);
    }
}

/// A KS detector's last verdict over a stream of `shift`ed normals after
/// a reference of 50 000: windows of 20 000 make any shift significant.
fn ks_verdict(shift: f64) -> (DriftStatus, f64, f64) {
    let mut d = spec("kind = \"ks\"\nreference = 50000\nwindow = 20000\nalpha = 0.001").build("features.x");
    let xs = gaussian_stream(11, &[Segment::new(50_000, 0.0, 1.0), Segment::new(20_000, shift, 1.0)]);
    let a = xs
        .iter()
        .filter_map(|&x| d.observe(Sample { value: SignalValue::Numeric(x), ts: DateTime::UNIX_EPOCH }))
        .last()
        .unwrap();
    (a.status, a.statistic, a.p_value.unwrap())
}

#[test]
fn a_significant_but_immaterial_shift_is_not_drift() {
    // 0.05σ: D ≈ 0.02, and with 20 000 against 50 000 samples p < 0.001.
    let (status, d, p) = ks_verdict(0.05);
    assert!(p < 0.001 && (0.01..0.03).contains(&d), "D = {d}, p = {p}");
    assert_eq!(status, DriftStatus::Stable);
    // Without the gate, the same window is drift: the gate made the difference.
    let mut ungated =
        spec("kind = \"ks\"\nreference = 50000\nwindow = 20000\nalpha = 0.001\nmin_effect = 0.0").build("features.x");
    let xs = gaussian_stream(11, &[Segment::new(50_000, 0.0, 1.0), Segment::new(20_000, 0.05, 1.0)]);
    let last = xs
        .iter()
        .filter_map(|&x| ungated.observe(Sample { value: SignalValue::Numeric(x), ts: DateTime::UNIX_EPOCH }))
        .last()
        .unwrap();
    assert_eq!(last.status, DriftStatus::Drift);
    // SciPy's D of the same samples.
    let r = ks_2samp(&xs[..50_000], &xs[50_000..]);
    assert!((r.statistic - d).abs() < 1e-12);
}

#[test]
fn a_material_shift_is_drift() {
    // 0.5σ: D ≈ 0.2.
    let (status, d, p) = ks_verdict(0.5);
    assert!(p < 1e-10 && (0.18..0.22).contains(&d), "D = {d}, p = {p}");
    assert_eq!(status, DriftStatus::Drift);
}

#[test]
fn chi_square_is_gated_by_cramers_v() {
    let cat = |c: &'static str| Sample { value: SignalValue::Categorical(c), ts: DateTime::UNIX_EPOCH };
    // 52/48 against 50/50 over 20 000 each: p ≈ 6e-5, V = 0.02.
    let run = |min_effect: f64| {
        let mut d =
            spec(&format!("kind = \"chi_square\"\nreference = 20000\nwindow = 20000\nmin_effect = {min_effect}"))
                .build("features.c");
        let mut last = None;
        for i in 0..40_000 {
            let c = if i < 20_000 {
                ["a", "b"][i % 2]
            } else if i % 25 < 13 {
                "a"
            } else {
                "b"
            };
            last = d.observe(cat(c)).or(last);
        }
        last.unwrap()
    };
    let gated = run(0.1);
    assert!(gated.p_value.unwrap() < 1e-3, "{gated:?}");
    assert_eq!(gated.status, DriftStatus::Stable);
    assert_eq!(run(0.0).status, DriftStatus::Drift);
}

fn record(seq: u64, features: &[(&str, f64)]) -> Record {
    let mut r = Record::new("m", DateTime::UNIX_EPOCH + chrono::Duration::seconds(seq as i64));
    for (name, x) in features {
        r.features.insert((*name).to_owned(), Value::Number(*x));
    }
    r
}

fn drift_findings(events: &[Event]) -> Vec<(String, String, f64)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some((f.signal.to_string(), f.detector.clone(), f.threshold)),
            _ => None,
        })
        .collect()
}

/// Two monitors, a KS on `features.a` and one on `features.*`, make one
/// family of the model version's tests: a finding is held to alpha / m
/// with m counting the tests of both.
#[test]
fn one_family_per_model_version_across_monitors() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("features.a", spec("kind = \"ks\"\nreference = 300\nwindow = 300")).unwrap(),
            MonitorSpec::from_spec("features.*", spec("kind = \"ks\"\nreference = 300\nwindow = 300\nalpha = 0.01"))
                .unwrap(),
        ],
        ..MonitorPlan::default()
    };
    let mut m = Monitor::new(plan.clone()).unwrap();
    let mut events = Vec::new();
    let mut rng = SplitMix64::new(3);
    for seq in 0..600u64 {
        let shift = if seq >= 300 { 1.0 } else { 0.0 };
        m.process(seq, &record(seq, &[("a", rng.normal() + shift), ("b", rng.normal())]), &mut events).unwrap();
    }
    // Three tests: a (monitor 0), a and b (monitor 1). Each at its own alpha / 3.
    let found = drift_findings(&events);
    assert_eq!(
        found,
        [
            ("features.a".to_owned(), "ks".to_owned(), 0.05 / 3.0),
            ("features.a".to_owned(), "ks".to_owned(), 0.01 / 3.0)
        ]
    );
    // check-config says the same.
    let signals: Vec<Signal> = ["features.a", "features.b"].iter().map(|s| s.parse().unwrap()).collect();
    let alphas = plan.effective_alphas("m", &signals, &[]);
    let shown: Vec<(usize, String, usize, f64, Option<f64>)> =
        alphas.iter().map(|e| (e.monitor, e.signal.to_string(), e.tests, e.per_test, e.min_effect)).collect();
    assert_eq!(
        shown,
        [
            (0, "features.a".to_owned(), 3, 0.05 / 3.0, Some(0.1)),
            (1, "features.a".to_owned(), 3, 0.01 / 3.0, Some(0.1)),
            (1, "features.b".to_owned(), 3, 0.01 / 3.0, Some(0.1)),
        ]
    );
}

/// The correction decides significance; the detector's effect gate still
/// applies after it.
#[test]
fn the_effect_gate_holds_through_the_correction() {
    let run = |min_effect: f64| {
        let detector = format!("kind = \"ks\"\nreference = 20000\nwindow = 20000\nmin_effect = {min_effect}");
        let plan = MonitorPlan {
            monitors: vec![MonitorSpec::from_spec("features.*", spec(&detector)).unwrap()],
            ..MonitorPlan::default()
        };
        let mut m = Monitor::new(plan).unwrap();
        let mut events = Vec::new();
        let mut rng = SplitMix64::new(5);
        for seq in 0..40_000u64 {
            // A tiny shift of `a` (D ≈ 0.025) and none of `b`.
            let shift = if seq >= 20_000 { 0.06 } else { 0.0 };
            m.process(seq, &record(seq, &[("a", rng.normal() + shift), ("b", rng.normal())]), &mut events).unwrap();
        }
        drift_findings(&events)
    };
    // Significant after Bonferroni over the two features...
    assert_eq!(run(0.0), [("features.a".to_owned(), "ks".to_owned(), 0.025)]);
    // ...but not material.
    assert_eq!(run(0.1), []);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `drift` with a small reference is KS (numbers) or chi-square
    /// (categories): the same verdicts, statistics and p-values.
    #[test]
    fn drift_with_a_small_reference_is_the_test_it_chose(
        xs in prop::collection::vec(-3.0..3.0f64, 0..400),
        shift in 0.0..2.0f64,
        cats in prop::collection::vec(0u8..5, 0..400),
    ) {
        let xs: Vec<f64> = xs.iter().enumerate().map(|(i, x)| if i >= 200 { x + shift } else { *x }).collect();
        let numbers = |text: &str| -> Vec<(DriftStatus, f64, Option<f64>)> {
            let mut d = spec(text).build("features.x");
            xs.iter()
                .filter_map(|&x| d.observe(Sample { value: SignalValue::Numeric(x), ts: DateTime::UNIX_EPOCH }))
                .map(|a| (a.status, a.statistic, a.p_value))
                .collect()
        };
        prop_assert_eq!(
            numbers("kind = \"drift\"\nreference = 100\nwindow = 50"),
            numbers("kind = \"ks\"\nreference = 100\nwindow = 50")
        );
        let names: Vec<String> = cats.iter().enumerate().map(|(i, c)| format!("c{}", if i >= 200 { c / 2 } else { *c })).collect();
        let categories = |text: &str| -> Vec<(DriftStatus, f64, Option<f64>)> {
            let mut d = spec(text).build("features.c");
            names.iter()
                .filter_map(|c| d.observe(Sample { value: SignalValue::Categorical(c), ts: DateTime::UNIX_EPOCH }))
                .map(|a| (a.status, a.statistic, a.p_value))
                .collect()
        };
        prop_assert_eq!(
            categories("kind = \"drift\"\nreference = 100\nwindow = 50"),
            categories("kind = \"chi_square\"\nreference = 100\nwindow = 50")
        );
    }

    /// `drift` with a large reference: the normalised Wasserstein distance,
    /// drift when it and KS D both reach 0.1, recomputed here naively.
    #[test]
    fn drift_with_a_large_reference_needs_the_distance_and_d(
        xs in prop::collection::vec(-3.0..3.0f64, 60..300),
        shift in 0.0..1.0f64,
    ) {
        let xs: Vec<f64> = xs.iter().enumerate().map(|(i, x)| if i >= 60 { x + shift } else { *x }).collect();
        let mut d = spec("kind = \"drift\"\nreference = 60\nwindow = 30\nlarge_reference = 50").build("features.x");
        let got: Vec<(DriftStatus, f64)> = xs
            .iter()
            .filter_map(|&x| d.observe(Sample { value: SignalValue::Numeric(x), ts: DateTime::UNIX_EPOCH }))
            .map(|a| (a.status, a.statistic))
            .collect();
        let reference = &xs[..60];
        let mean = reference.iter().sum::<f64>() / 60.0;
        let sd = (reference.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 60.0).sqrt();
        let want: Vec<(DriftStatus, f64, f64)> = xs[60..]
            .chunks(30)
            .filter(|w| w.len() == 30)
            .map(|w| {
                let distance = monitor_strategies::stats::wasserstein(reference, w) / sd.max(0.001);
                let ks = ks_2samp(reference, w).statistic;
                let drift = distance >= 0.1 && ks >= 0.1;
                (if drift { DriftStatus::Drift } else { DriftStatus::Stable }, distance, ks)
            })
            .collect();
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((g.1 - w.1).abs() < 1e-9, "{:?} vs {:?}", g, w);
            // The verdict, away from the edges where rounding decides.
            if (g.1 - 0.1).abs() > 1e-9 && (w.2 - 0.1).abs() > 1e-9 {
                prop_assert_eq!(g.0, w.0);
            }
        }
    }
}
