//! Records in-process through the engine: `Sink::submit_batch` into the
//! shards, timed until every record is processed.
//!
//! ```text
//! cargo bench -p monitor-runtime --bench sink -- [--records 2000000] [--models 1000] [--batch 1000] [--shards N]
//! ```
//!
//! Each record of one of `--models` models carries five signals: latency, a
//! metric and three features (two numeric, one categorical), watched by a
//! threshold on latency, ADWIN on the metric and `drift` on the features
//! (windows of 100, references of 200). The records are built before the
//! clock starts; the time is from the first submit to the end of the
//! shutdown, when every record is processed. Run as a test (`cargo test
//! --benches`), it is a smoke run of 10,000 records.

#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use monitor_core::record::{Record, Value};
use monitor_runtime::EngineBuilder;
use monitor_strategies::detectors::{AdwinConfig, DriftConfig, ThresholdConfig};
use monitor_strategies::{MonitorPlan, MonitorSpec};

struct Options {
    records: usize,
    models: usize,
    batch: usize,
    shards: usize,
}

fn options() -> Options {
    let mut o = Options {
        records: 2_000_000,
        models: 1_000,
        batch: 1_000,
        shards: std::thread::available_parallelism().map_or(2, usize::from),
    };
    if !std::env::args().any(|a| a == "--bench") {
        o.records = 10_000;
    }
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--records" => o.records = value().parse().expect("--records"),
            "--models" => o.models = value().parse().expect("--models"),
            "--batch" => o.batch = value().parse().expect("--batch"),
            "--shards" => o.shards = value().parse().expect("--shards"),
            _ => {}
        }
    }
    assert!(o.records <= 50_000_000 && (1..=100_000).contains(&o.models) && (1..=100_000).contains(&o.batch));
    assert!((1..=1024).contains(&o.shards));
    o
}

fn record(model: &str, i: usize, start: DateTime<Utc>) -> Record {
    let mut r = Record::new(model, start + Duration::milliseconds(i as i64));
    r.latency_ms = Some(5.0 + (i % 31) as f64);
    r.metrics.insert("accuracy".into(), 0.9 + (i % 7) as f64 / 100.0);
    r.features.insert("amount".into(), Value::Number((i.wrapping_mul(7919) % 1000) as f64));
    r.features.insert("tenure".into(), Value::Number((i.wrapping_mul(104_729) % 500) as f64));
    r.features.insert("country".into(), Value::Category(["DE", "FR", "US", "JP"][i % 4].into()));
    r
}

fn main() {
    let o = options();
    let drift = DriftConfig { reference: Some(200), window: 100.into(), ..DriftConfig::default() };
    let threshold = ThresholdConfig { window: 100.into(), max: Some(1000.0), ..ThresholdConfig::default() };
    let monitors = vec![
        MonitorSpec::new("latency_ms", threshold).unwrap(),
        MonitorSpec::new("metrics.*", AdwinConfig::default()).unwrap(),
        MonitorSpec::new("features.*", drift).unwrap(),
    ];
    let plan = MonitorPlan { monitors, ..MonitorPlan::default() };
    let start = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z").unwrap().with_timezone(&Utc);
    let names: Vec<String> = (0..o.models).map(|m| format!("model-{m}")).collect();
    let mut batches: Vec<Vec<(u64, Record)>> = Vec::with_capacity(o.records.div_ceil(o.batch));
    for b in 0..o.records.div_ceil(o.batch) {
        let batch = (b * o.batch..((b + 1) * o.batch).min(o.records))
            .map(|i| (i as u64, record(&names[i % o.models], i, start)))
            .collect();
        batches.push(batch);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (took, summary) = runtime.block_on(async {
        let engine = EngineBuilder::new(plan).shards(o.shards).spawn().unwrap();
        let sink = engine.sink();
        let started = Instant::now();
        for batch in batches {
            sink.submit_batch(batch).await.unwrap();
        }
        drop(sink);
        let summary = engine.shutdown().await;
        (started.elapsed(), summary)
    });
    let rate = o.records as f64 / took.as_secs_f64();
    println!(
        "sink: {} records of {} models (5 signals each) on {} shards in {:.3} s: {rate:.0} records/s; processed {}, findings {}",
        o.records,
        o.models,
        o.shards,
        took.as_secs_f64(),
        summary.monitor.records,
        summary.monitor.findings
    );
    assert_eq!(summary.monitor.records, o.records as u64, "every record processed");
}
