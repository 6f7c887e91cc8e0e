//! Windows on event time (`window = "1m"`): tumbling windows closed by the
//! first sample of a later window, late samples dropped and counted, empty
//! windows giving no verdict but a `quality.no_data` sample, and the
//! windows of a model version that went quiet closed by the monitor's clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use monitor_core::detector::{Assessment, Sample};
use monitor_core::event::{Event, EventKind};
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use monitor_strategies::detectors::DetectorSpec;
use monitor_strategies::stats::ks_2samp;
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, builtin_detectors};
use proptest::prelude::*;

fn spec(detector: &str) -> Arc<dyn DetectorSpec> {
    let table: serde_json::Value = toml::from_str(detector).unwrap();
    builtin_detectors().build("detector", &table, &BuildContext::default()).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::milliseconds(ms)
}

/// A stream with gaps and late samples: (event time in ms, value). Most
/// samples move time forward a little, some jump over whole windows, some
/// are late by up to a window and a half.
fn stream() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec(
        (prop_oneof![6 => 0i64..3_000, 1 => 10_000i64..40_000, 1 => -15_000i64..0], -100.0..100.0f64),
        0..300,
    )
    .prop_map(|steps| {
        let mut newest = 1_000_000i64;
        steps
            .into_iter()
            .map(|(dt, x)| {
                let ts = newest + dt;
                newest = newest.max(ts);
                (ts, x)
            })
            .collect()
    })
}

/// What tumbling windows of `span` ms make of `samples`, computed naively:
/// a sample is late when a sample of a later window came before it; a
/// window is judged when the first sample of a later window arrives.
/// Returns the samples of each judged window, and the count of late ones.
fn naive_windows(samples: &[(i64, f64)], span: i64) -> (Vec<Vec<f64>>, usize) {
    let mut open: Option<i64> = None;
    let mut held: Vec<f64> = Vec::new();
    let (mut closed, mut late) = (Vec::new(), 0);
    for &(ts, x) in samples {
        let k = ts.div_euclid(span);
        match open {
            Some(o) if k < o => {
                late += 1;
                continue;
            }
            Some(o) if k > o => {
                closed.push(std::mem::take(&mut held));
                open = Some(k);
            }
            None => open = Some(k),
            _ => {}
        }
        held.push(x);
    }
    (closed, late)
}

fn observe_all(detector: &str, samples: &[(i64, f64)]) -> (Vec<Assessment>, u64) {
    let mut d = spec(detector).build("features.x");
    let verdicts =
        samples.iter().filter_map(|&(t, x)| d.observe(Sample { value: SignalValue::Numeric(x), ts: at(t) })).collect();
    (verdicts, d.take_closed_windows().late)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn threshold_statistics_follow_the_windows(samples in stream()) {
        let (windows, late) = naive_windows(&samples, 10_000);
        for (stat, f) in [
            ("mean", (|w: &[f64]| w.iter().sum::<f64>() / w.len() as f64) as fn(&[f64]) -> f64),
            ("max", |w: &[f64]| w.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            ("min", |w: &[f64]| w.iter().copied().fold(f64::INFINITY, f64::min)),
            ("count", |w: &[f64]| w.len() as f64),
        ] {
            let (verdicts, dropped) =
                observe_all(&format!("kind = \"threshold\"\nwindow = \"10s\"\nstatistic = \"{stat}\"\nmax = 50.0"), &samples);
            let got: Vec<f64> = verdicts.iter().map(|a| a.statistic).collect();
            let want: Vec<f64> = windows.iter().map(|w| f(w)).collect();
            prop_assert_eq!(got.len(), want.len(), "{}", stat);
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{}: {} vs {}", stat, g, w);
            }
            prop_assert_eq!(dropped, late as u64);
        }
    }

    #[test]
    fn ks_compares_each_event_time_window_with_the_reference(samples in stream()) {
        let reference: Vec<f64> = samples.iter().take(30).map(|s| s.1).collect();
        prop_assume!(reference.len() == 30);
        let (windows, _) = naive_windows(&samples[30..], 10_000);
        let (verdicts, _) = observe_all("kind = \"ks\"\nreference = 30\nwindow = \"10s\"", &samples);
        prop_assert_eq!(verdicts.len(), windows.len());
        for (a, w) in verdicts.iter().zip(&windows) {
            let r = ks_2samp(&reference, w);
            prop_assert_eq!((a.statistic, a.p_value), (r.statistic, Some(r.p_value)));
        }
    }
}

#[test]
fn a_window_that_held_more_than_max_samples_is_sampled_uniformly() {
    // 30 000 samples in one minute, 1000 kept: a uniform sample of the minute.
    let mut d = spec("kind = \"ks\"\nreference = 1000\nwindow = \"1m\"\nmax_samples = 1000").build("features.x");
    let mut t = 0;
    for i in 0..1000 {
        d.observe(Sample { value: SignalValue::Numeric(f64::from(i % 100)), ts: at(t) });
    }
    for i in 0..30_000 {
        t = 60_000 + i64::from(i) * 2;
        d.observe(Sample { value: SignalValue::Numeric(f64::from(i % 100)), ts: at(t) });
    }
    let a = d.advance(at(t + 60_000)).unwrap();
    // The same distribution: a uniform sample stays close to it.
    assert!(a.statistic < 0.08, "{a:?}");
    assert_eq!(d.take_closed_windows().with_data, 1);
}

fn events_of(events: &[Event], model: &str) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e.key.model == model)
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(("finding".to_owned(), f.signal.to_string(), e.ts.to_rfc3339())),
            EventKind::Recovered(f) => Some(("recovered".to_owned(), f.signal.to_string(), e.ts.to_rfc3339())),
            _ => None,
        })
        .collect()
}

fn latency(model: &str, ms: i64, x: f64) -> Record {
    let mut r = Record::new(model, at(ms));
    r.latency_ms = Some(x);
    r
}

/// A model that stops sending: its one-minute windows close on the
/// monitor's clock, moved by another model's records; the empty ones make
/// `quality.no_data` samples, which a threshold turns into a finding. When
/// the model sends again, the next window with samples clears it.
#[test]
fn a_model_that_stopped_sending_is_noticed() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("latency_ms", spec("kind = \"threshold\"\nwindow = \"1m\"\nmax = 100.0")).unwrap(),
            MonitorSpec::from_spec("quality.no_data", spec("kind = \"threshold\"\nwindow = 1\nmax = 0.5")).unwrap(),
        ],
        ..MonitorPlan::default()
    };
    let mut m = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    let mut seq = 0;
    // Both models every 10 s for 5 minutes; then only `busy` for 5 more
    // minutes; then both again.
    for t in (0..900_000).step_by(10_000) {
        let quiet_gap = (300_000..600_000).contains(&t);
        m.process(seq, &latency("busy", t, 10.0), &mut events).unwrap();
        seq += 1;
        if !quiet_gap {
            m.process(seq, &latency("quiet", t + 1, 10.0), &mut events).unwrap();
            seq += 1;
        }
    }
    assert_eq!(events_of(&events, "busy"), []);
    let quiet = events_of(&events, "quiet");
    assert_eq!(quiet.len(), 2, "{quiet:?}");
    let (finding, recovered) = (&quiet[0], &quiet[1]);
    assert_eq!((finding.0.as_str(), finding.1.as_str()), ("finding", "quality.no_data"));
    assert_eq!((recovered.0.as_str(), recovered.1.as_str()), ("recovered", "quality.no_data"));
    // Noticed during the gap (the window [5m, 6m) is empty, and closes one
    // window later on the clock), not when the model came back at 10m.
    let noticed: DateTime<Utc> = finding.2.parse().unwrap();
    assert!(noticed >= at(420_000) && noticed < at(600_000), "{noticed}");
    assert!(m.stats().empty_windows >= 4, "{:?}", m.stats());
}

/// `Monitor::tick` moves the clock without a record, as a service's timer.
#[test]
fn a_tick_closes_the_windows_of_every_quiet_version() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec(
                "latency_ms",
                spec("kind = \"threshold\"\nwindow = \"1m\"\nstatistic = \"count\"\nmin = 5.0"),
            )
            .unwrap(),
        ],
        ..MonitorPlan::default()
    };
    let mut m = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    for (seq, t) in [0, 1000, 2000].into_iter().enumerate() {
        m.process(seq as u64, &latency("m", t, 1.0), &mut events).unwrap();
    }
    assert!(events.is_empty());
    m.tick(at(200_000), &mut events);
    // The first minute held 3 samples: fewer than 5, a finding, with the
    // seq of the last record.
    let EventKind::Finding(f) = &events[0].kind else { panic!("{events:?}") };
    assert_eq!((f.statistic, events[0].seq), (3.0, 2));
}

/// Late records are dropped by the windows and counted, never reordered
/// into a window that has been judged.
#[test]
fn late_records_are_counted() {
    let plan = MonitorPlan {
        monitors: vec![
            MonitorSpec::from_spec("features.*", spec("kind = \"threshold\"\nwindow = \"1m\"\nmax = 100.0")).unwrap(),
        ],
        ..MonitorPlan::default()
    };
    let mut m = Monitor::new(plan).unwrap();
    let mut events = Vec::new();
    for (seq, t) in [0, 61_000, 30_000, 62_000, 59_999].into_iter().enumerate() {
        let mut r = Record::new("m", at(t));
        r.features.insert("x".into(), Value::Number(1.0));
        m.process(seq as u64, &r, &mut events).unwrap();
    }
    assert_eq!(m.stats().late_samples, 2);
}
