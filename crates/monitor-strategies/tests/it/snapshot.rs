//! Snapshots: a monitor cut at any point, saved, restored into a new monitor
//! and continued gives exactly the events of an uninterrupted run; old,
//! corrupt and mismatched snapshots are refused with a clear error.

use chrono::{DateTime, Duration, Utc};
use monitor_core::event::{Event, EventKind};
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_strategies::{Limits, Monitor, MonitorPlan, MonitorSnapshot, MonitorSpec, PolicyConfig, builtin_detectors};
use proptest::prelude::*;
use uuid::Uuid;

/// A monitor of `signal` by a detector table as written in TOML.
fn monitor(signal: &str, detector: &str) -> MonitorSpec {
    let table: serde_json::Value = toml::from_str(detector).unwrap();
    let spec = builtin_detectors().build("detector", &table, &BuildContext::default()).unwrap();
    MonitorSpec::from_spec(signal, spec).unwrap()
}

/// Every kind of state a monitor keeps: windows (threshold, ks, psi,
/// chi_square), change detectors (adwin, page_hinkley, ddm, kswin with its
/// random generator), p-value families under Bonferroni, open findings,
/// the retrain policy's cooldown, pending labels that join or expire,
/// event-time windows and the clock that closes them, `quality.*` signals,
/// the data-quality detectors, `drift`, and flap damping's counters.
fn plan() -> MonitorPlan {
    plan_holding(10_000)
}

/// [`plan`], holding at most `versions` model versions: with fewer than
/// the stream's four, evictions happen, and must carry over too.
fn plan_holding(versions: usize) -> MonitorPlan {
    MonitorPlan {
        monitors: vec![
            monitor(
                "latency_ms",
                "kind = \"threshold\"\nstatistic = \"mean\"\nwindow = 5\nmax = 60.0\nwarn_max = 50.0",
            ),
            monitor("latency_ms", "kind = \"adwin\""),
            monitor("latency_ms", "kind = \"page_hinkley\"\nthreshold = 20.0"),
            monitor("latency_ms", "kind = \"kswin\"\nwindow = 40\nstat = 10\nseed = 7"),
            monitor("features.*", "kind = \"ks\"\nreference = 20\nwindow = 10\nalpha = 0.05"),
            monitor("features.x", "kind = \"psi\"\nreference = 20\nwindow = 10"),
            monitor("features.color", "kind = \"chi_square\"\nreference = 20\nwindow = 10"),
            monitor("error", "kind = \"ddm\"\nwarm_start = 10"),
            monitor("metrics.accuracy", "kind = \"adaptive_threshold\""),
            monitor("latency_ms", "kind = \"threshold\"\nstatistic = \"p90\"\nwindow = \"7s\"\nmax = 60.0")
                .damping(2, 2),
            monitor("features.*", "kind = \"drift\"\nreference = 15\nwindow = \"5s\""),
            monitor("features.*", "kind = \"drift\"\nreference = 15\nwindow = 6\nlarge_reference = 10").damping(2, 3),
            monitor("quality.missing.*", "kind = \"missing\"\nreference = 10\nwindow = 8\nmin_effect = 0.1"),
            monitor("features.*", "kind = \"unseen_categories\"\nreference = 10\nwindow = \"4s\""),
            monitor("features.*", "kind = \"out_of_range\"\nreference = 10\nwindow = 5"),
            monitor("features.*", "kind = \"type_change\"\nreference = 10\nwindow = 5"),
            monitor(
                "metrics.*",
                "kind = \"adaptive_threshold\"\nstatistic = \"ewma\"\nwindow = \"3s\"\nreference_windows = 2",
            ),
            monitor("quality.no_data", "kind = \"threshold\"\nwindow = 1\nmax = 0.5").damping(1, 2),
        ],
        policy: PolicyConfig { min_samples: 10, cooldown: "20s".parse().unwrap(), ..Default::default() },
        limits: Limits {
            pending_labels: 8,
            label_max_age: "30s".parse().unwrap(),
            max_model_versions: versions,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// One generated input line: a prediction with features, or a late label.
#[derive(Debug, Clone)]
enum Line {
    Prediction {
        model: u8,
        version: u8,
        latency: f64,
        x: f64,
        color: u8,
        accuracy: f64,
        id: u16,
        class: bool,
        /// Seconds this line comes after the one before it.
        gap: u8,
        /// 0: `x` given; 1: absent; 2: null; 3: a string.
        x_kind: u8,
    },
    Label {
        model: u8,
        id: u16,
        class: bool,
    },
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => (
            (0u8..2, 0u8..2, 0.0f64..100.0, -3.0f64..3.0, 0u8..4),
            (0.5f64..1.0, 0u16..40, any::<bool>(), prop_oneof![8 => Just(1u8), 1 => 0u8..30], prop_oneof![12 => Just(0u8), 1 => 1u8..4]),
        )
            .prop_map(|((model, version, latency, x, color), (accuracy, id, class, gap, x_kind))| Line::Prediction {
                model, version, latency, x, color, accuracy, id, class, gap, x_kind
            }),
        1 => (0u8..2, 0u16..40, any::<bool>()).prop_map(|(model, id, class)| Line::Label { model, id, class }),
    ]
}

/// The records of a stream, a second or a gap apart; from `shift` on,
/// latency, `x` and the colours move, so detectors fire and recover. Now
/// and then `x` is absent, null or a string.
fn records(lines: &[Line], shift: usize) -> Vec<Record> {
    let start: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().unwrap();
    let class = |c: bool| Value::Category(if c { "fraud" } else { "legit" }.to_owned());
    let mut ts = start;
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            ts += Duration::seconds(match line {
                Line::Prediction { gap, .. } => i64::from(*gap),
                Line::Label { .. } => 1,
            });
            let shifted = i >= shift;
            match line {
                Line::Prediction { model, version, latency, x, color, accuracy, id, class: c, x_kind, .. } => {
                    let mut r = Record::new(format!("m{model}"), ts);
                    r.version = format!("v{version}");
                    r.latency_ms = Some(if shifted { latency * 1.5 + 30.0 } else { *latency });
                    let x = if shifted { x + 2.0 } else { *x };
                    match x_kind {
                        0 => {
                            r.features.insert("x".into(), Value::Number(x));
                        }
                        1 => {}
                        2 => {
                            r.null_features.insert("x".into());
                        }
                        _ => {
                            r.features.insert("x".into(), Value::Category(format!("{x:.0}")));
                        }
                    }
                    let color = if shifted { color / 2 } else { *color };
                    r.features.insert("color".into(), Value::Category(format!("c{color}")));
                    r.metrics.insert("accuracy".into(), if shifted { accuracy - 0.3 } else { *accuracy });
                    r.id = Some(format!("r{id}"));
                    r.prediction = Some(class(*c));
                    r
                }
                Line::Label { model, id, class: c } => {
                    let mut r = Record::new(format!("m{model}"), ts);
                    r.id = Some(format!("r{id}"));
                    r.label = Some(class(*c));
                    r
                }
            }
        })
        .collect()
}

/// Event and job ids are random; everything else must match.
fn normalized(mut events: Vec<Event>) -> Vec<Event> {
    for e in &mut events {
        e.id = Uuid::nil();
        if let EventKind::RetrainRequested(r) = &mut e.kind {
            r.job_id = Uuid::nil();
        }
    }
    events
}

fn feed(monitor: &mut Monitor, records: &[Record], offset: usize, events: &mut Vec<Event>) {
    for (i, r) in records.iter().enumerate() {
        // Unjoinable labels are rejected, like in production; that is part of the state too.
        let _ = monitor.process((offset + i) as u64, r, events);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_restored_monitor_carries_on_exactly(
        lines in prop::collection::vec(line(), 1..400),
        cut in 0.0f64..1.0,
        shift in 0.0f64..1.0,
        versions in prop::sample::select(vec![2usize, 3, 10_000]),
    ) {
        let records = records(&lines, (shift * lines.len() as f64) as usize);
        let cut = (cut * records.len() as f64) as usize;
        let plan = || plan_holding(versions);

        let mut whole = Monitor::new(plan()).unwrap();
        let mut expected = Vec::new();
        feed(&mut whole, &records, 0, &mut expected);

        let mut first = Monitor::new(plan()).unwrap();
        let mut got = Vec::new();
        feed(&mut first, &records[..cut], 0, &mut got);
        let saved = first.snapshot().unwrap().to_json().unwrap();
        drop(first);
        let mut second = Monitor::restore(plan(), &saved).unwrap();
        feed(&mut second, &records[cut..], cut, &mut got);

        prop_assert_eq!(normalized(got), normalized(expected));
        prop_assert_eq!(second.stats(), whole.stats());
        prop_assert_eq!(second.pending_labels(), whole.pending_labels());
        // And the states themselves agree.
        prop_assert_eq!(second.snapshot().unwrap(), whole.snapshot().unwrap());
    }
}

fn saved_monitor() -> Vec<u8> {
    let lines: Vec<Line> = (0..200)
        .map(|i| Line::Prediction {
            model: (i % 2) as u8,
            version: 0,
            latency: f64::from(i % 50),
            x: f64::from(i % 7) - 3.0,
            color: (i % 4) as u8,
            accuracy: 0.9,
            id: i as u16,
            class: i % 3 == 0,
            gap: 1,
            x_kind: 0,
        })
        .collect();
    let mut monitor = Monitor::new(plan()).unwrap();
    feed(&mut monitor, &records(&lines, 150), 0, &mut Vec::new());
    monitor.snapshot().unwrap().to_json().unwrap()
}

fn restore_err(bytes: &[u8]) -> String {
    Monitor::restore(plan(), bytes).err().map(|e| e.to_string()).unwrap_or_else(|| "restored".to_owned())
}

#[test]
fn other_versions_and_formats_are_refused_by_name() {
    let mut snapshot: serde_json::Value = serde_json::from_slice(&saved_monitor()).unwrap();
    snapshot["version"] = 1.into();
    assert_eq!(
        restore_err(&serde_json::to_vec(&snapshot).unwrap()),
        "snapshot error at `version`: snapshot format version 1 is not readable by this build, which reads versions 2 to 3"
    );
    snapshot["version"] = 4.into();
    assert_eq!(
        restore_err(&serde_json::to_vec(&snapshot).unwrap()),
        "snapshot error at `version`: snapshot format version 4 is not readable by this build, which reads versions 2 to 3"
    );
    // Version 2, before per-window state, is migrated: it restores.
    snapshot["version"] = 2.into();
    snapshot.as_object_mut().unwrap().remove("windows");
    assert_eq!(restore_err(&serde_json::to_vec(&snapshot).unwrap()), "restored");
    snapshot["format"] = "something-else".into();
    snapshot["format"] = "something-else".into();
    assert_eq!(
        restore_err(&serde_json::to_vec(&snapshot).unwrap()),
        "snapshot error at `format`: expected `model-monitor/monitor-snapshot`, got `something-else`"
    );
}

#[test]
fn corrupt_snapshots_are_refused_and_never_panic() {
    let saved = saved_monitor();
    // Truncated anywhere: an error, never a panic or a partial state.
    for cut in (0..saved.len()).step_by(997) {
        let e = restore_err(&saved[..cut]);
        assert!(e.starts_with("snapshot error at ``: not a readable snapshot"), "cut at {cut}: {e}");
    }
    // A detector's state of the wrong shape names where it is.
    let mut snapshot: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    snapshot["models"][0]["signals"][0]["detectors"][1]["state"]["width"] = "wide".into();
    let e = restore_err(&serde_json::to_vec(&snapshot).unwrap());
    assert!(e.starts_with("snapshot error at `models[0].signals[0].detectors[1].state`"), "{e}");
    // A count of the wrong type names its path.
    let mut snapshot: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    snapshot["stats"]["records"] = (-1).into();
    let e = restore_err(&serde_json::to_vec(&snapshot).unwrap());
    assert!(e.starts_with("snapshot error at `stats.records`"), "{e}");
    // A detector of another kind where the config builds a threshold.
    let mut snapshot: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    snapshot["models"][0]["signals"][0]["detectors"][0]["kind"] = "adwin".into();
    let e = restore_err(&serde_json::to_vec(&snapshot).unwrap());
    assert_eq!(
        e,
        "snapshot error at `models[0].signals[0].detectors[0]`: saved a `adwin` detector where the config builds `threshold`"
    );
}

#[test]
fn a_snapshot_of_other_monitors_is_refused() {
    let saved = saved_monitor();
    let mut other = plan();
    other.monitors[0] = monitor("latency_ms", "kind = \"threshold\"\nwindow = 10\nmax = 60.0");
    let e = Monitor::restore(other, &saved).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with("snapshot error at `monitors[0]`: the config now says"), "{e}");
    let mut fewer = plan();
    fewer.monitors.pop();
    let e = Monitor::restore(fewer, &saved).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("taken under 18 [[monitors]] and the config has 17"), "{e}");
    // Flap damping is part of what a snapshot was taken under.
    let mut damped = plan();
    damped.monitors[0] = damped.monitors[0].clone().damping(3, 1);
    let e = Monitor::restore(damped, &saved).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with("snapshot error at `monitors[0]`: the config now says"), "{e}");
    // The snapshot's own structure round-trips.
    let parsed = MonitorSnapshot::from_json(&saved).unwrap();
    assert_eq!(parsed.models.len(), 2);
}

/// The generated streams exercise what the property claims: on a fixed
/// stream of the same shape, many detector kinds fire, labels join and a
/// retraining is requested, and a cut in the middle changes nothing.
#[test]
fn the_streams_exercise_every_kind_of_state() {
    let lines: Vec<Line> = (0..400u16)
        .map(|i| {
            if i % 5 == 4 {
                Line::Label { model: ((i - 1) % 2) as u8, id: i - 1, class: i % 3 == 0 }
            } else {
                Line::Prediction {
                    model: (i % 2) as u8,
                    version: ((i / 2) % 2) as u8,
                    latency: f64::from((i * 37) % 100),
                    x: f64::from((i * 13) % 7) - 3.0,
                    color: (i % 4) as u8,
                    accuracy: 0.9 + f64::from(i % 10) / 100.0,
                    id: i,
                    class: i % 2 == 0,
                    // Now and then a gap of empty windows, and an `x` missing or of the other type.
                    gap: if i % 50 == 25 { 20 } else { 1 },
                    x_kind: match (i % 17, i > 250) {
                        (3, _) => 1,
                        (7, _) => 2,
                        (11, true) => 3,
                        _ => 0,
                    },
                }
            }
        })
        .collect();
    let records = records(&lines, 200);
    let mut whole = Monitor::new(plan()).unwrap();
    let mut expected = Vec::new();
    feed(&mut whole, &records, 0, &mut expected);
    let mut kinds: Vec<&str> = expected
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => Some(f.detector.as_str()),
            _ => None,
        })
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert!(kinds.len() >= 5, "only {kinds:?} fired");
    for kind in ["drift", "missing", "type_change", "unseen_categories"] {
        assert!(kinds.contains(&kind), "{kind} did not fire: {kinds:?}");
    }
    assert!(whole.stats().empty_windows > 0, "{:?}", whole.stats());
    assert!(expected.iter().any(|e| matches!(e.kind, EventKind::RetrainRequested(_))));
    assert!(whole.stats().labels_joined > 0, "{:?}", whole.stats());

    let mut first = Monitor::new(plan()).unwrap();
    let mut got = Vec::new();
    feed(&mut first, &records[..200], 0, &mut got);
    let mut second = Monitor::restore(plan(), &first.snapshot().unwrap().to_json().unwrap()).unwrap();
    feed(&mut second, &records[200..], 200, &mut got);
    assert_eq!(normalized(got), normalized(expected));
}
