//! Heap allocations of `Monitor::process` in steady state, counted by a
//! counting allocator. One test in its own binary, so that nothing else
//! allocates meanwhile.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, unreachable_pub)]

use std::alloc::System;

use chrono::{DateTime, Duration, Utc};
use monitor_core::record::{Record, Value};
use monitor_strategies::detectors::{AdwinConfig, DriftConfig, ThresholdConfig};
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A record of `model` with latency, a metric and two numeric features.
fn record(model: &str, i: u64) -> Record {
    let start = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z").unwrap().with_timezone(&Utc);
    let mut r = Record::new(model, start + Duration::milliseconds(i as i64 * 10));
    r.latency_ms = Some(10.0 + (i % 17) as f64);
    r.metrics.insert("accuracy".into(), 0.9 + (i % 7) as f64 / 100.0);
    r.features.insert("amount".into(), Value::Number((i * 7919 % 1000) as f64));
    r.features.insert("tenure".into(), Value::Number((i * 104_729 % 500) as f64));
    r
}

#[test]
fn processing_a_known_models_record_allocates_nothing_per_record() {
    let drift = DriftConfig { reference: Some(200), window: 100.into(), ..DriftConfig::default() };
    let threshold = ThresholdConfig { window: 100.into(), max: Some(1000.0), ..ThresholdConfig::default() };
    let monitors = vec![
        MonitorSpec::new("latency_ms", threshold).unwrap(),
        MonitorSpec::new("metrics.*", AdwinConfig::default()).unwrap(),
        MonitorSpec::new("features.*", drift).unwrap(),
    ];
    let mut monitor = Monitor::new(MonitorPlan { monitors, ..MonitorPlan::default() }).unwrap();
    let models = ["fraud", "search", "recsys"];
    // Warm up: every series exists, every reference is full, every window
    // has turned over.
    let records: Vec<Record> = (0..6_000).map(|i| record(models[(i % 3) as usize], i)).collect();
    let mut events = Vec::with_capacity(1024);
    for (seq, r) in records.iter().enumerate().take(3_000) {
        monitor.process(seq as u64, r, &mut events).unwrap();
        events.clear();
    }
    let region = Region::new(ALLOCATOR);
    for (seq, r) in records.iter().enumerate().skip(3_000) {
        monitor.process(seq as u64, r, &mut events).unwrap();
        events.clear();
    }
    let stats = region.change();
    let n = stats.allocations + stats.reallocations;
    println!("allocations over 3,000 records in steady state: {n} ({} bytes)", stats.bytes_allocated);
    // A record allocates nothing; a window's evaluation does, a few times
    // (the sorted copy of a drift window, the verdict's message), once per
    // 100 samples. 3,000 records of 3 models close 90 windows (latency and
    // two features, ten windows each): at most 6 allocations per window.
    let windows = 3 * 10 * 3;
    assert!(n <= 6 * windows, "{n} allocations for 3,000 records ({windows} windows)");
}
