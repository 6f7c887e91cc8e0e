//! Snapshot restore from arbitrary bytes: `Monitor::restore` on the bytes
//! themselves, and on a valid snapshot mutated in place.
//!
//! The first byte chooses: even, the rest is the snapshot; odd, the rest is
//! a list of mutations (4 bytes each: a node of the snapshot's JSON tree,
//! an operation, its argument) applied to the snapshot of a monitor fed a
//! fixed stream, which keeps most inputs readable JSON of the right shape,
//! so that the checks past parsing are reached.
//!
//! A restore may fail, with an error, but never panic; a monitor it accepts
//! must carry on processing records without panicking, and its own
//! snapshot must restore again to the same counters.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Duration, Utc};
use monitor_core::record::{Record, Value};
use monitor_core::registry::BuildContext;
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec};
use serde_json::{Value as Json, json};

/// The detectors of the plan: every kind of state a monitor keeps (windows,
/// references, change detectors with their random generators, time
/// windows, flap damping, quality signals).
fn monitors() -> Vec<(&'static str, Json, u32, u32)> {
    vec![
        (
            "latency_ms",
            json!({"kind": "threshold", "statistic": "mean", "window": 5, "max": 60.0, "warn_max": 50.0}),
            1,
            1,
        ),
        ("latency_ms", json!({"kind": "adwin"}), 1, 1),
        ("latency_ms", json!({"kind": "page_hinkley", "threshold": 20.0}), 1, 1),
        ("latency_ms", json!({"kind": "kswin", "window": 40, "stat": 10, "seed": 7}), 1, 1),
        ("features.*", json!({"kind": "ks", "reference": 20, "window": 10, "alpha": 0.05}), 1, 1),
        ("features.x", json!({"kind": "psi", "reference": 20, "window": 10}), 1, 1),
        ("features.color", json!({"kind": "chi_square", "reference": 20, "window": 10}), 1, 1),
        ("error", json!({"kind": "ddm", "warm_start": 10}), 1, 1),
        ("metrics.accuracy", json!({"kind": "adaptive_threshold"}), 1, 1),
        ("latency_ms", json!({"kind": "threshold", "statistic": "p90", "window": "7s", "max": 60.0}), 2, 2),
        ("features.*", json!({"kind": "drift", "reference": 15, "window": 6, "large_reference": 10}), 2, 3),
        ("quality.missing.*", json!({"kind": "missing", "reference": 10, "window": 8, "min_effect": 0.1}), 1, 1),
        ("features.*", json!({"kind": "unseen_categories", "reference": 10, "window": "4s"}), 1, 1),
        ("features.*", json!({"kind": "out_of_range", "reference": 10, "window": 5}), 1, 1),
        ("features.*", json!({"kind": "type_change", "reference": 10, "window": 5}), 1, 1),
        (
            "metrics.*",
            json!({"kind": "adaptive_threshold", "statistic": "ewma", "window": "3s", "reference_windows": 2}),
            1,
            1,
        ),
        ("quality.no_data", json!({"kind": "threshold", "window": 1, "max": 0.5}), 1, 2),
        ("latency_ms", json!({"kind": "cusum"}), 1, 1),
        ("latency_ms", json!({"kind": "ewma"}), 1, 1),
        ("error", json!({"kind": "eddm"}), 1, 1),
        ("error", json!({"kind": "hddm_a"}), 1, 1),
        ("error", json!({"kind": "hddm_w"}), 1, 1),
        ("features.x", json!({"kind": "wasserstein", "reference": 20, "window": 10}), 1, 1),
        ("features.x", json!({"kind": "mean_shift", "reference": 20, "window": 10, "threshold": 2.0}), 1, 1),
        ("features.color", json!({"kind": "jensen_shannon", "reference": 20, "window": 10}), 1, 1),
    ]
}

/// The plan every input is restored under: at most four model versions
/// (the stream has six, so evictions are part of the state) and eight
/// pending labels.
fn plan() -> Arc<MonitorPlan> {
    static PLAN: OnceLock<Arc<MonitorPlan>> = OnceLock::new();
    Arc::clone(PLAN.get_or_init(|| {
        let registry = monitor_strategies::builtin_detectors();
        let ctx = BuildContext::default();
        let monitors = monitors()
            .into_iter()
            .map(|(signal, table, fire, resolve)| {
                let spec = registry
                    .build("detector", &table, &ctx)
                    .unwrap_or_else(|e| panic!("the plan's detector {table} does not build: {e}"));
                MonitorSpec::from_spec(signal, spec).expect("the plan's signals are valid").damping(fire, resolve)
            })
            .collect();
        let policy = serde_json::from_value(json!({"min_samples": 10, "cooldown": "20s"})).expect("a valid policy");
        let limits =
            serde_json::from_value(json!({"pending_labels": 8, "label_max_age": "30s", "max_model_versions": 4}))
                .expect("valid limits");
        Arc::new(MonitorPlan { monitors, policy, limits, ..MonitorPlan::default() })
    }))
}

/// `n` records from `start` on, a second or more apart, from a fixed
/// generator: predictions with numeric, categorical, null and retyped
/// features, late labels, six model versions; from the middle on, the
/// values shift so that detectors fire.
fn stream(seed: u64, n: usize, start: DateTime<Utc>) -> Vec<Record> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut ts = start;
    (0..n)
        .map(|i| {
            let r = next();
            ts += Duration::seconds(if r % 9 == 0 { (r % 30) as i64 } else { 1 });
            let shifted = i >= n / 2;
            let mut record = Record::new(format!("m{}", r % 3), ts);
            record.id = Some(format!("r{}", (r >> 4) % 40));
            let class = Value::Category(if (r >> 10) % 2 == 0 { "fraud" } else { "legit" }.to_owned());
            if r % 5 == 0 {
                record.label = Some(class);
                return record;
            }
            record.version = format!("v{}", (r >> 2) % 2);
            let unit = ((r >> 12) % 1000) as f64 / 1000.0;
            record.latency_ms = Some(if shifted { unit * 150.0 + 30.0 } else { unit * 100.0 });
            let x = if shifted { unit * 6.0 - 1.0 } else { unit * 6.0 - 3.0 };
            match (r >> 22) % 16 {
                0 => {}
                1 => {
                    record.null_features.insert("x".into());
                }
                2 => {
                    record.features.insert("x".into(), Value::Category(format!("{x:.0}")));
                }
                _ => {
                    record.features.insert("x".into(), Value::Number(x));
                }
            }
            let color = (r >> 26) % if shifted { 2 } else { 4 };
            record.features.insert("color".into(), Value::Category(format!("c{color}")));
            record.metrics.insert("accuracy".into(), if shifted { 0.6 } else { 0.9 } + unit / 10.0);
            record.prediction = Some(class);
            record
        })
        .collect()
}

/// In the past, so that no record is refused as ahead of the clock.
fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time")
}

/// Records into `monitor`; unjoinable labels and the like are rejected,
/// as in production.
fn feed(monitor: &mut Monitor, records: &[Record], first_seq: u64) {
    let mut events = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let _ = monitor.process(first_seq.wrapping_add(i as u64), r, &mut events);
    }
}

/// The snapshot of a monitor fed the fixed stream, as a JSON tree.
fn valid_snapshot() -> &'static Json {
    static SNAPSHOT: OnceLock<Json> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut monitor = Monitor::new(plan()).expect("the plan is valid");
        feed(&mut monitor, &stream(1, 300, start()), 0);
        let bytes = monitor.snapshot().and_then(|s| s.to_json()).expect("a monitor of built-in detectors saves");
        serde_json::from_slice(&bytes).expect("a snapshot is JSON")
    })
}

/// The number of nodes in `tree`, itself included.
fn count(tree: &Json) -> usize {
    1 + match tree {
        Json::Array(items) => items.iter().map(count).sum(),
        Json::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// The `n`th node of `tree` in pre-order.
fn node(tree: &mut Json, n: usize) -> Option<&mut Json> {
    let mut n = n;
    fn walk<'a>(tree: &'a mut Json, n: &mut usize) -> Option<&'a mut Json> {
        if *n == 0 {
            return Some(tree);
        }
        *n -= 1;
        match tree {
            Json::Array(items) => items.iter_mut().find_map(|item| walk(item, n)),
            Json::Object(map) => map.values_mut().find_map(|v| walk(v, n)),
            _ => None,
        }
    }
    walk(tree, &mut n)
}

/// Numbers that sit on the edges of what the state's fields hold.
const NUMBERS: &[f64] =
    &[0.0, -1.0, 1.0, 2.0, 0.5, -0.5, 1e-300, 1e300, -1e300, 4_294_967_296.0, 9_007_199_254_740_993.0];

fn number(arg: u8) -> Json {
    match arg % 4 {
        0 => json!(u64::MAX - u64::from(arg)),
        1 => json!(i64::MIN + i64::from(arg)),
        2 => json!(u64::from(arg)),
        _ => json!(NUMBERS[usize::from(arg / 4) % NUMBERS.len()]),
    }
}

fn text(arg: u8) -> Json {
    let texts = ["", "x", "features.*", "latency_ms", "m0", "v0", "fraud", "2026-11-23T08:00:00Z", "adwin", "Drift"];
    match arg % 16 {
        15 => json!("é".repeat(usize::from(arg) * 40)),
        i => json!(texts[usize::from(i) % texts.len()]),
    }
}

/// Applies one mutation to `tree`.
fn mutate(tree: &mut Json, at: u16, op: u8, arg: u8) {
    let nodes = count(tree);
    let donor = node(&mut tree.clone(), usize::from(arg) * nodes / 256).cloned();
    let Some(target) = node(tree, usize::from(at) % nodes) else { return };
    let index = |len: usize| usize::from(arg) % len.max(1);
    match (op % 12, &mut *target) {
        (0, _) => *target = number(arg),
        (1, _) => *target = text(arg),
        (2, _) => *target = Json::Null,
        (3, _) => *target = Json::Bool(arg % 2 == 0),
        (4, _) => *target = json!([]),
        (5, _) => *target = json!({}),
        (6, Json::Array(items)) if !items.is_empty() => {
            items.remove(index(items.len()));
        }
        (6, Json::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(index(map.len())).cloned();
            if let Some(key) = key {
                map.remove(&key);
            }
        }
        (7, Json::Array(items)) if !items.is_empty() => {
            let copy = items[index(items.len())].clone();
            items.push(copy);
        }
        (8, Json::Array(items)) => items.truncate(index(items.len())),
        (9, Json::Array(items)) if items.len() > 1 => {
            let (i, len) = (index(items.len()), items.len());
            items.swap(i, (i + 1) % len);
        }
        (10, Json::Number(n)) => {
            if let Some(x) = n.as_f64() {
                let scaled = [-x, x + 1.0, x - 1.0, x * 1000.0, x / 3.0][usize::from(arg) % 5];
                *target = serde_json::Number::from_f64(scaled).map_or(Json::Null, Json::Number);
            }
        }
        (11, _) => {
            if let Some(donor) = donor {
                *target = donor;
            }
        }
        _ => {}
    }
}

/// Checks one input; panics on a defect. Whether the snapshot was
/// restored (rather than refused).
pub(crate) fn check(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else { return false };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut tree = valid_snapshot().clone();
        for m in rest.chunks_exact(4) {
            mutate(&mut tree, u16::from_be_bytes([m[0], m[1]]), m[2], m[3]);
        }
        serde_json::to_vec(&tree).expect("a JSON tree serializes")
    };
    let mut monitor = match Monitor::restore(plan(), &bytes) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return false;
        }
    };
    let stats = monitor.stats();
    let more = stream(2, 60, start() + Duration::days(1));
    feed(&mut monitor, &more, stats.records.saturating_add(1));
    let saved = monitor.snapshot().and_then(|s| s.to_json()).expect("a restored monitor saves");
    let again =
        Monitor::restore(plan(), &saved).unwrap_or_else(|e| panic!("a restored monitor's snapshot is refused: {e}"));
    assert_eq!(again.stats(), monitor.stats(), "a second restore changes the counters");
    true
}
