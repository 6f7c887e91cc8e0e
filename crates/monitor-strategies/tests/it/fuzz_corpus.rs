//! The committed seeds of the `snapshot` fuzz target
//! (`fuzz/corpus/snapshot`), run through the target's own harness, so that
//! the checks the fuzzer makes (and the inputs that once crashed it) run on
//! stable in every test run.

use std::path::Path;

#[path = "../../../../fuzz/harness/snapshot.rs"]
mod harness;

#[test]
fn the_snapshot_corpus_passes_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/snapshot");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "the snapshot corpus is missing files: {}", files.len());
    let mut restored = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        match std::panic::catch_unwind(|| harness::check(&bytes)) {
            Ok(true) => restored.push(path.file_name().expect("a file name").to_string_lossy().into_owned()),
            Ok(false) => {}
            Err(_) => panic!("{} fails the snapshot checks", path.display()),
        }
    }
    // The unmutated snapshot restores and carries on, so the checks past
    // parsing run too.
    assert!(restored.iter().any(|name| name == "valid"), "restored: {restored:?}");
}

/// Found by the `snapshot` target: a snapshot whose record counter (or
/// tick, or a policy's samples) was at `u64::MAX` was restored, and the
/// next record overflowed it (a panic with overflow checks, a wrap to 0
/// without). Such counts are refused by name; up to the bound, the monitor
/// carries on.
#[test]
fn a_snapshot_with_counts_that_would_overflow_is_refused() {
    use monitor_strategies::snapshot::MAX_SAVED_COUNT;
    use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, detectors::AdwinConfig};

    let plan = MonitorPlan {
        monitors: vec![MonitorSpec::new("latency_ms", AdwinConfig::default()).expect("a valid monitor")],
        ..MonitorPlan::default()
    };
    let record = |ms: f64| {
        monitor_core::record::Record::parse(&format!(r#"{{"model": "m", "latency_ms": {ms}}}"#), chrono::Utc::now())
            .expect("a valid record")
    };
    let mut monitor = Monitor::new(plan.clone()).expect("a valid plan");
    let mut events = Vec::new();
    for i in 0..10u32 {
        monitor.process(u64::from(i), &record(f64::from(i)), &mut events).expect("accepted");
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&monitor.snapshot().and_then(|s| s.to_json()).expect("saved")).expect("JSON");
    let with = |pointer: &str, n: u64| {
        let mut tree = saved.clone();
        *tree.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = n.into();
        serde_json::to_vec(&tree).expect("JSON")
    };
    for (pointer, path) in [
        ("/stats/records", "stats.records"),
        ("/stats/rejected", "stats.rejected"),
        ("/tick", "tick"),
        ("/models/0/policy/samples", "models[0].policy.samples"),
    ] {
        let err = Monitor::restore(plan.clone(), &with(pointer, u64::MAX)).map(drop).expect_err("refused");
        assert!(err.to_string().contains(path), "{pointer}: {err}");
        let mut restored = Monitor::restore(plan.clone(), &with(pointer, MAX_SAVED_COUNT)).expect("restored");
        restored.process(10, &record(5.0), &mut events).expect("accepted");
        // A label with no prediction to join: rejected, and counted.
        let label = monitor_core::record::Record::parse(r#"{"model": "m", "id": "x", "label": 1}"#, chrono::Utc::now())
            .expect("a valid record");
        assert!(restored.process(11, &label, &mut events).is_err());
    }
}

/// Found by the `snapshot` target: a data-quality detector restored with
/// its count of reference samples at `usize::MAX`, still learning, overflowed
/// it at the next sample. The count saturates, and the detector freezes its
/// reference as it would at the limit.
#[test]
fn a_restored_reference_count_at_its_maximum_does_not_overflow() {
    use monitor_core::registry::BuildContext;
    use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, builtin_detectors};

    /// Sets every `taken` in `tree` to `n`.
    fn set_taken(tree: &mut serde_json::Value, n: u64) -> usize {
        match tree {
            serde_json::Value::Object(map) => {
                let here = map.get_mut("taken").map(|t| *t = n.into()).is_some();
                usize::from(here) + map.values_mut().map(|v| set_taken(v, n)).sum::<usize>()
            }
            serde_json::Value::Array(items) => items.iter_mut().map(|v| set_taken(v, n)).sum(),
            _ => 0,
        }
    }

    let table = serde_json::json!({"kind": "unseen_categories", "reference": 10, "window": 5});
    let spec = builtin_detectors().build("detector", &table, &BuildContext::default()).expect("a valid detector");
    let plan = MonitorPlan {
        monitors: vec![MonitorSpec::from_spec("features.*", spec).expect("a valid monitor")],
        ..MonitorPlan::default()
    };
    let record = |c: &str| {
        let line = format!(r#"{{"model": "m", "features": {{"color": "{c}"}}}}"#);
        monitor_core::record::Record::parse(&line, chrono::Utc::now()).expect("a valid record")
    };
    let mut monitor = Monitor::new(plan.clone()).expect("a valid plan");
    let mut events = Vec::new();
    for (seq, c) in ["red", "blue", "red"].into_iter().enumerate() {
        monitor.process(seq as u64, &record(c), &mut events).expect("accepted");
    }
    let mut tree: serde_json::Value =
        serde_json::from_slice(&monitor.snapshot().and_then(|s| s.to_json()).expect("saved")).expect("JSON");
    assert_eq!(set_taken(&mut tree, u64::MAX), 1, "{tree}");
    let mut restored =
        Monitor::restore(plan, &serde_json::to_vec(&tree).expect("JSON")).expect("a count is any number");
    for (seq, c) in ["red", "green", "green", "red", "blue", "violet"].into_iter().enumerate() {
        restored.process(seq as u64 + 3, &record(c), &mut events).expect("accepted");
    }
}
