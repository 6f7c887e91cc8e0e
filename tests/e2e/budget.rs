//! The alarm budget of the replay defaults (crates/monitor-cli/demo/
//! default.toml, every detector at its defaults), as assertions on counts:
//! the same scenarios as `cargo xtask eval` prints in docs/DETECTORS.md, on
//! fewer and shorter streams so that a debug build runs them in seconds.
//!
//! - no change: at most one alarm per signal over 200 000 records (the
//!   budget is at most one per signal per 1M), and none from the
//!   distribution and data-quality tests;
//! - a 0.3σ mean shift caught within 2000 records;
//! - a missing-value jump (1% to 6%) and a new category at 2% caught within
//!   one window (1000 records);
//! - a 0.05σ shift (KS D ≈ 0.02) against a reference of 50 000, in
//!   windows of 10 000 where the p-value alone flags it: no alarm.

use std::path::Path;

use model_monitor::event::{EventKind, Severity};
use model_monitor::record::Record;
use model_monitor::registry::BuildContext;
use model_monitor::runtime::Config;
use model_monitor::strategies::synth::{Change, ModelStream};
use model_monitor::strategies::{Monitor, MonitorPlan, builtin_detectors};

/// The replay defaults, with keys of the `drift` monitors' tables replaced.
fn defaults(overrides: &[(&str, serde_json::Value)]) -> MonitorPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/monitor-cli/demo/default.toml");
    let mut config = Config::load(&path).unwrap();
    for m in &mut config.monitors {
        if m.detector["kind"] == "drift" {
            for (key, value) in overrides {
                m.detector[*key] = value.clone();
            }
        }
    }
    let ctx = BuildContext { detectors: builtin_detectors(), ..BuildContext::default() };
    config.plan(&ctx).unwrap()
}

/// (seq, signal, detector) of every drift finding.
fn drift_findings(plan: &MonitorPlan, records: impl Iterator<Item = Record>) -> Vec<(u64, String, String)> {
    let mut monitor = Monitor::new(plan.clone()).unwrap();
    let (mut events, mut out) = (Vec::new(), Vec::new());
    for (seq, r) in records.enumerate() {
        monitor.process(seq as u64, &r, &mut events).unwrap();
        for e in events.drain(..) {
            if let EventKind::Finding(f) = e.kind {
                if f.severity == Severity::Drift {
                    out.push((e.seq, f.signal.to_string(), f.detector));
                }
            }
        }
    }
    out
}

/// Records from the change to the first drift finding on `signal`.
fn delay(found: &[(u64, String, String)], signal: &str, at: usize) -> Option<u64> {
    found.iter().find(|(seq, s, _)| s == signal && *seq >= at as u64).map(|(seq, _, _)| seq - at as u64)
}

#[test]
fn no_change_stays_within_the_budget() {
    let found = drift_findings(&defaults(&[]), ModelStream::new(1, Change::None, usize::MAX).take(200_000));
    let mut signals: Vec<&str> = found.iter().map(|(_, s, _)| s.as_str()).collect();
    let all = signals.len();
    signals.dedup();
    assert_eq!(all, signals.len(), "more than one false alarm on a signal: {found:?}");
    // ADWIN on the error rate, River's default, may flag a chance run (about
    // once in 10M records in the eval); the gated tests never do here.
    assert!(found.iter().all(|(_, _, detector)| detector == "adwin"), "{found:?}");
}

#[test]
fn a_small_mean_shift_is_caught_within_2000_records() {
    let plan = defaults(&[]);
    for rep in 0..5u64 {
        // After the reference of 10 000, off the window boundaries.
        let at = 11_000 + 173 * rep as usize;
        let found = drift_findings(&plan, ModelStream::new(10 + rep, Change::Shift(0.3), at).take(at + 2000));
        let d = delay(&found, "features.x", at);
        assert!(d.is_some_and(|d| d < 2000), "stream {rep}: {d:?} ({found:?})");
        assert!(found.iter().all(|(_, s, _)| s == "features.x"), "{found:?}");
    }
}

#[test]
fn missing_values_and_new_categories_are_caught_within_one_window() {
    let plan = defaults(&[]);
    // At a window boundary: ten windows of reference, two of no change.
    let at = 12_000;
    for (change, signal) in
        [(Change::Missing(0.06), "quality.missing.income"), (Change::NewCategory(0.02), "features.country")]
    {
        for rep in 0..2u64 {
            let found = drift_findings(&plan, ModelStream::new(20 + rep, change, at).take(at + 1000));
            let d = delay(&found, signal, at);
            assert!(d.is_some_and(|d| d < 1000), "{change:?}, stream {rep}: {d:?} ({found:?})");
        }
    }
}

#[test]
fn an_immaterial_shift_against_a_large_reference_raises_no_alarm() {
    use serde_json::json;
    let large = [("reference", json!(50_000)), ("window", json!(10_000))];
    let stream = || ModelStream::new(30, Change::Shift(0.05), 50_000).take(150_000);
    assert_eq!(drift_findings(&defaults(&large), stream()), []);
    // A KS test without the effect-size gate flags it: significant, not material.
    let ks = [&large[..], &[("kind", json!("ks")), ("min_effect", json!(0.0))]].concat();
    let found = drift_findings(&defaults(&ks), stream());
    assert!(found.iter().any(|(_, s, d)| s == "features.x" && d == "ks"), "{found:?}");
    let gated = [&large[..], &[("kind", json!("ks"))]].concat();
    assert_eq!(drift_findings(&defaults(&gated), stream()), []);
}

/// The replay defaults name kinds only: every key is at its default, so
/// the budget measured here is that of any config left at the defaults.
#[test]
fn the_replay_defaults_leave_every_key_at_its_default() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/monitor-cli/demo/default.toml");
    let config = Config::load(&path).unwrap();
    assert!(!config.monitors.is_empty());
    for m in &config.monitors {
        let keys: Vec<&String> = m.detector.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind"], "{}: {}", m.signal, m.detector);
        assert_eq!((m.fire_after, m.resolve_after), (1, 1));
    }
}
