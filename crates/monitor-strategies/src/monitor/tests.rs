//! Tests of the monitor's state machine, policies, label joins and limits.

use chrono::{DateTime, Duration, Utc};
use monitor_core::duration::HumanDuration;
use monitor_core::event::{Event, EventKind, Severity};
use monitor_core::record::{ModelKey, Record, Value};

use super::*;
use crate::detectors::ThresholdConfig;
use crate::policy::PolicyConfig;
use crate::policy::Trigger;

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(secs)
}

fn threshold(signal: &str, window: usize, min: Option<f64>, max: Option<f64>) -> MonitorSpec {
    let c = ThresholdConfig { window: window.into(), min, max, ..ThresholdConfig::default() };
    MonitorSpec::new(signal, c).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(monitors: Vec<MonitorSpec>, policy: PolicyConfig) -> MonitorPlan {
    MonitorPlan { monitors, policy, ..MonitorPlan::default() }
}

fn metric(model: &str, name: &str, x: f64, secs: i64) -> Record {
    let mut r = Record::new(model, t(secs));
    r.metrics.insert(name.into(), x);
    r
}

fn run(monitor: &mut Monitor, records: &[Record]) -> Vec<Event> {
    let mut events = Vec::new();
    for (seq, r) in records.iter().enumerate() {
        monitor.process(seq as u64, r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    }
    events
}

fn kinds(events: &[Event]) -> Vec<(&'static str, u64)> {
    events.iter().map(|e| (e.type_name(), e.seq)).collect()
}

fn eager() -> PolicyConfig {
    PolicyConfig { min_samples: 1, ..PolicyConfig::default() }
}

#[test]
fn a_condition_opens_once_and_recovers_once() {
    let mut m = Monitor::new(plan(
        vec![threshold("metrics.acc", 1, Some(0.9), None)],
        PolicyConfig { min_samples: 1_000, ..PolicyConfig::default() },
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let xs = [0.95, 0.8, 0.7, 0.85, 0.97, 0.99];
    let records: Vec<_> = xs.iter().enumerate().map(|(i, &x)| metric("m", "acc", x, i as i64)).collect();
    let events = run(&mut m, &records);
    assert_eq!(kinds(&events), [("finding", 1), ("recovered", 4)]);
    let EventKind::Recovered(f) = &events[1].kind else { panic!("{events:?}") };
    assert_eq!((f.severity, f.statistic, f.threshold), (Severity::Drift, 0.97, 0.9));
    assert_eq!(m.stats().findings, 1);
    assert_eq!(m.stats().recoveries, 1);
}

#[test]
fn warning_then_drift_are_two_findings() {
    let c = ThresholdConfig { window: 1.into(), min: Some(0.9), warn_min: Some(0.95), ..ThresholdConfig::default() };
    let spec = MonitorSpec::new("metrics.acc", c).unwrap_or_else(|e| panic!("{e}"));
    let mut m = Monitor::new(plan(vec![spec], PolicyConfig { min_samples: 1_000, ..PolicyConfig::default() }))
        .unwrap_or_else(|e| panic!("{e}"));
    let records: Vec<_> =
        [0.99, 0.93, 0.92, 0.85].iter().enumerate().map(|(i, &x)| metric("m", "acc", x, i as i64)).collect();
    let events = run(&mut m, &records);
    let severities: Vec<_> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Finding(f) => f.severity,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(severities, [Severity::Warning, Severity::Drift]);
}

#[test]
fn a_request_answers_new_evidence_and_the_cooldown_spaces_them() {
    let policy = PolicyConfig { min_samples: 2, cooldown: HumanDuration::from_secs(60), ..PolicyConfig::default() };
    let mut m = Monitor::new(plan(vec![threshold("metrics.acc", 1, Some(0.9), None)], policy))
        .unwrap_or_else(|e| panic!("{e}"));
    // One record every 10 s: failing, a recovery at t=60s, failing again at
    // t=70s, a recovery at t=80s, failing from t=90s on.
    let acc = |i: i64| if i == 6 || i == 8 { 0.95 } else { 0.5 };
    let records: Vec<_> = (0..18).map(|i| metric("m", "acc", acc(i), i * 10)).collect();
    let events = run(&mut m, &records);
    let requests: Vec<u64> = events.iter().filter(|e| e.type_name() == "retrain_requested").map(|e| e.seq).collect();
    // min_samples holds the first back to seq 1 (t=10s); the finding that
    // stays open asks no more. The new one at t=70s asks at once (the
    // cooldown ended then); the one at t=90s waits for the cooldown, to t=130s.
    assert_eq!(requests, [1, 7, 13]);
    let EventKind::RetrainRequested(r) = &events[1].kind else { panic!("{events:?}") };
    assert_eq!(r.reasons.len(), 1);
    assert_eq!(r.reasons[0].signal.to_string(), "metrics.acc");
}

#[test]
fn triggers_count_the_monitors_of_one_model_version() {
    let monitors = vec![
        threshold("metrics.a", 1, Some(0.5), None),
        threshold("metrics.b", 1, Some(0.5), None),
        threshold("metrics.c", 1, Some(0.5), None),
    ];
    let record = |a: f64, b: f64, c: f64, secs| {
        let mut r = Record::new("m", t(secs));
        r.metrics.extend([("a".to_owned(), a), ("b".to_owned(), b), ("c".to_owned(), c)]);
        r
    };
    let records =
        [record(0.9, 0.9, 0.9, 0), record(0.1, 0.9, 0.9, 1), record(0.1, 0.1, 0.9, 2), record(0.1, 0.1, 0.1, 3)];
    for (trigger, expected) in [(Trigger::Any, 1), (Trigger::Majority, 2), (Trigger::AtLeast(2), 2), (Trigger::All, 3)]
    {
        let mut m =
            Monitor::new(plan(monitors.clone(), PolicyConfig { trigger, ..eager() })).unwrap_or_else(|e| panic!("{e}"));
        let events = run(&mut m, &records);
        let first = events.iter().find(|e| e.type_name() == "retrain_requested").map(|e| e.seq);
        assert_eq!(first, Some(expected), "{trigger}");
    }
}

#[test]
fn late_labels_feed_the_error_signal_of_the_prediction_version() {
    let spec = threshold("error", 2, None, Some(0.5));
    let mut m = Monitor::new(plan(vec![spec], PolicyConfig { min_samples: 1_000, ..PolicyConfig::default() }))
        .unwrap_or_else(|e| panic!("{e}"));
    let prediction = |id: &str, class: &str, secs| {
        let mut r = Record::new("fraud", t(secs));
        r.version = "v3".into();
        r.id = Some(id.into());
        r.prediction = Some(Value::Category(class.into()));
        r
    };
    let label = |id: &str, class: &str, secs| {
        let mut r = Record::new("fraud", t(secs));
        r.id = Some(id.into());
        r.label = Some(Value::Category(class.into()));
        r
    };
    let records =
        [prediction("a", "fraud", 0), prediction("b", "fraud", 1), label("a", "legit", 2), label("b", "legit", 3)];
    let events = run(&mut m, &records);
    assert_eq!(kinds(&events), [("finding", 3)]);
    assert_eq!(events[0].key, ModelKey::new("fraud", "v3"));
    assert_eq!(m.stats().labels_joined, 2);

    let mut events = Vec::new();
    let err = m.process(4, &label("zzz", "legit", 4), &mut events).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("field `id`: no pending prediction"), "{err}");
    assert_eq!(m.stats().rejected, 1);
}

#[test]
fn monitors_apply_to_matching_signals_and_models_only() {
    let mut only_fraud = threshold("features.*", 1, None, Some(100.0));
    only_fraud.models = Some(vec!["fraud".into()]);
    let mut m = Monitor::new(plan(vec![only_fraud], PolicyConfig { min_samples: 1_000, ..PolicyConfig::default() }))
        .unwrap_or_else(|e| panic!("{e}"));
    let feature = |model: &str, name: &str, x: f64| {
        let mut r = Record::new(model, t(0));
        r.features.insert(name.into(), Value::Number(x));
        r
    };
    let events = run(
        &mut m,
        &[feature("fraud", "amount", 500.0), feature("search", "amount", 500.0), feature("fraud", "age", 300.0)],
    );
    let signals: Vec<String> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Finding(f) => format!("{} {}", e.key.model, f.signal),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(signals, ["fraud features.amount", "fraud features.age"]);
}

#[test]
fn limits_bound_versions_and_signals() {
    let limits = Limits { max_model_versions: 2, max_signals_per_model: 1, ..Limits::default() };
    let mut m = Monitor::new(MonitorPlan { limits, ..MonitorPlan::default() }).unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    for (seq, v) in ["v1", "v2"].iter().enumerate() {
        let mut r = metric("m", "a", 1.0, 0);
        r.version = (*v).into();
        r.metrics.insert("b".into(), 1.0);
        m.process(seq as u64, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    }
    // Seen again: v2 is now the most recent, v1 the least.
    let mut r = metric("m", "a", 1.0, 0);
    r.version = "v2".into();
    m.process(2, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    let mut r = metric("m", "a", 1.0, 0);
    r.version = "v3".into();
    m.process(3, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.stats().versions_evicted, m.stats().signals_dropped), (1, 2));
    let snapshot = m.snapshot().unwrap_or_else(|e| panic!("{e}"));
    let kept: Vec<&str> = snapshot.models.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(kept, ["v2", "v3"]);
}

#[test]
fn invalid_records_are_rejected_before_any_detector() {
    let mut m = Monitor::new(plan(vec![threshold("metrics.acc", 1, Some(0.9), None)], eager()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    let r = metric("m", "acc", f64::NAN, 0);
    let err = m.process(0, &r, &mut events).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err, "field `metrics.acc`: must be a finite number (got NaN)");
    assert!(events.is_empty());
    assert_eq!((m.stats().records, m.stats().rejected), (0, 1));
}

#[test]
fn plan_errors_name_the_dotted_key() {
    let bad = plan(vec![threshold("latency_ms", 0, None, Some(1.0))], PolicyConfig::default());
    assert_eq!(
        Monitor::new(bad).err().map(|e| e.to_string()),
        Some("config error at `monitors[0].detector.window`: must be at least 1 (got 0)".into())
    );
}

#[test]
fn a_timestamp_far_ahead_of_the_clock_is_rejected_and_counted() {
    let mut m = Monitor::new(plan(vec![threshold("metrics.acc", 1, Some(0.9), None)], eager()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    let mut r = metric("m", "acc", 0.5, 0);
    r.ts = "2099-01-01T00:00:00Z".parse().unwrap_or_else(|e| panic!("{e}"));
    let err = m.process(0, &r, &mut events).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        err,
        "field `ts`: is more than 1h ahead of the clock (limits.max_future_skew) (got 2099-01-01T00:00:00+00:00)"
    );
    assert_eq!((m.stats().rejected, m.stats().ts_too_far_ahead), (1, 1));
    // So it cannot hold later requests back behind its cooldown.
    let events = run(&mut m, &[metric("m", "acc", 0.5, 0)]);
    assert_eq!(kinds(&events), [("finding", 0), ("retrain_requested", 0)]);
}

#[test]
fn a_recovery_reports_the_evaluation_that_cleared_it() {
    let mut m = Monitor::new(plan(vec![threshold("metrics.acc", 1, Some(0.9), None)], eager()))
        .unwrap_or_else(|e| panic!("{e}"));
    let events = run(&mut m, &[metric("m", "acc", 0.5, 0), metric("m", "acc", 0.97, 1)]);
    let Some(EventKind::Recovered(f)) = events.last().map(|e| &e.kind) else { panic!("{events:?}") };
    assert_eq!((f.statistic, f.threshold, f.p_value), (0.97, 0.9, None));
}

#[test]
fn an_at_least_trigger_that_can_never_fire_is_a_config_error() {
    let policy = PolicyConfig { trigger: Trigger::AtLeast(3), ..PolicyConfig::default() };
    let monitors = vec![threshold("metrics.acc", 1, Some(0.9), None), threshold("latency_ms", 1, None, Some(9.0))];
    let err = Monitor::new(plan(monitors, policy)).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        err,
        "config error at `policy.trigger.at_least`: is 3, but at most 2 monitors apply: the trigger could never fire"
    );
}

#[test]
fn limits_have_upper_bounds() {
    let limits = Limits { max_model_versions: usize::MAX, ..Limits::default() };
    let err = Monitor::new(MonitorPlan { limits, ..MonitorPlan::default() }).err().map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("config error at `limits.max_model_versions`: must be between 1 and 1000000 (got 18446744073709551615)")
    );
    let limits = Limits { label_max_age: HumanDuration::from_secs(u64::MAX), ..Limits::default() };
    let err = Monitor::new(MonitorPlan { limits, ..MonitorPlan::default() }).err().map(|e| e.to_string());
    assert!(
        err.as_deref().is_some_and(|e| e.starts_with("config error at `limits.label_max_age`: must be at most 30d"))
    );
}

#[test]
fn the_state_budget_bounds_memory_by_eviction_and_by_dropping_signals() {
    // A window of 10,000 counts 164 KiB: a budget of 1 MiB holds six.
    let limits = Limits { max_state_mib: 1, ..Limits::default() };
    let small = MonitorPlan { limits, ..plan(vec![threshold("metrics.acc", 10_000, Some(0.9), None)], eager()) };
    let mut m = Monitor::new(small).unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    for i in 0..20u64 {
        let mut r = metric(&format!("model-{i}"), "acc", 0.95, 0);
        r.version = "v1".into();
        m.process(i, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(m.versions.bytes <= 1 << 20, "{} bytes", m.versions.bytes);
    // Each new model displaces the least recently seen ones, and gets its
    // signal from its next record: nothing grows past the budget.
    assert!(m.stats().versions_evicted >= 7, "{:?}", m.stats());
    assert_eq!(m.stats().versions_evicted + m.versions.count as u64, 20);
    let dropped = m.stats().signals_dropped;
    assert!(dropped > 0 && dropped < 20, "{dropped}");
    let mut r = metric("model-19", "acc", 0.95, 1);
    r.version = "v1".into();
    m.process(20, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.stats().signals_dropped, dropped, "the newest model has room now");
    assert!(m.versions.bytes <= 1 << 20);

    // One signal bigger than the whole budget is ignored and counted.
    let limits = Limits { max_state_mib: 1, ..Limits::default() };
    let huge = MonitorPlan { limits, ..plan(vec![threshold("metrics.acc", 100_000, Some(0.9), None)], eager()) };
    let mut m = Monitor::new(huge).unwrap_or_else(|e| panic!("{e}"));
    m.process(0, &metric("m", "acc", 0.5, 0), &mut events).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.stats().signals_dropped, 1);
    assert!(m.versions.bytes < 4096);
}

#[test]
fn a_series_counts_the_bound_of_the_type_it_holds() {
    use monitor_core::detector_spec::DetectorSpec;

    use crate::detectors::DriftConfig;
    // A drift detector keeps numbers or categories, as its first value was:
    // a numeric feature counts no categories, a categorical one no samples.
    let drift = DriftConfig::default();
    let spec = MonitorSpec::new("features.*", drift.clone()).unwrap_or_else(|e| panic!("{e}"));
    let mut m = Monitor::new(plan(vec![spec], eager())).unwrap_or_else(|e| panic!("{e}"));
    let mut r = metric("m", "acc", 0.5, 0);
    r.metrics.clear();
    r.features.insert("amount".into(), Value::Number(3.0));
    let mut events = Vec::new();
    m.process(0, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    let numeric = m.versions.bytes;
    assert!(numeric >= drift.state_bytes_for(false), "{numeric}");
    assert!(numeric < drift.state_bytes_for(false) + 4096, "{numeric}");
    r.features.insert("country".into(), Value::Category("DE".into()));
    m.process(1, &r, &mut events).unwrap_or_else(|e| panic!("{e}"));
    let categorical = m.versions.bytes - numeric;
    assert!(categorical >= drift.state_bytes_for(true) && categorical < drift.state_bytes_for(true) + 4096);
    // Each is well below the bound whatever the type.
    assert!(drift.state_bytes_for(false) < drift.state_bytes() && drift.state_bytes_for(true) < drift.state_bytes());
}

#[test]
fn as_many_models_as_the_limit_fit_however_the_hash_splits_them() {
    use monitor_core::shard::shard_of;
    // 10,000 models on two shards: each shard's share, with its margin,
    // holds the models that fall on it.
    let limits = Limits::default().per_shard(2);
    let mut per_shard = [0usize; 2];
    for m in 0..10_000 {
        per_shard[shard_of(&format!("model-{m}"), 2)] += 1;
    }
    assert!(per_shard.iter().all(|&n| n <= limits.max_model_versions), "{per_shard:?} > {}", limits.max_model_versions);
    assert!(limits.max_model_versions < 5_500, "{}", limits.max_model_versions);
    // One shard: the limit itself; small limits: at most a tenth more.
    assert_eq!(Limits::default().per_shard(1).max_model_versions, 10_000);
    let small = Limits { max_model_versions: 4, ..Limits::default() };
    assert_eq!(small.per_shard(2).max_model_versions, 2);
}
