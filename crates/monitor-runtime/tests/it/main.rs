//! Integration tests of the engine, config loading and replay.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use monitor_core::event::{Event, EventKind, JobStatus, JobUpdate};
use monitor_core::observer::{EventPublisher, Observer, ObserverRegistry};
use monitor_core::record::Record;
use monitor_core::registry::BuildContext;
use monitor_core::source::{Position, Source, SourceBatch};
use monitor_core::testing::RecordingObserver;
use monitor_core::{Error, async_trait};
use monitor_runtime::{Config, EngineBuilder, EngineConfig, LineSource, Overflow, PumpOptions, pump};
use tokio_util::sync::CancellationToken;

mod fuzz_corpus;
#[cfg(feature = "server")]
mod hostile_http;
mod journal;
#[cfg(feature = "parquet")]
mod parquet;
#[cfg(feature = "server")]
mod server;

const LATENCY_CONFIG: &str = r#"
[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 100.0 }
[policy]
min_samples = 2
"#;

fn latency(model: &str, ms: f64) -> Record {
    Record::parse(&format!(r#"{{"model": "{model}", "latency_ms": {ms}}}"#), Utc::now()).unwrap()
}

/// Config may name the built-in detectors.
fn ctx() -> BuildContext {
    BuildContext { detectors: monitor_strategies::builtin_detectors(), ..BuildContext::default() }
}

fn builder(config: &str) -> EngineBuilder {
    let config = Config::from_toml(config).unwrap();
    EngineBuilder::from_config(&config, &ObserverRegistry::new(), &ctx()).unwrap()
}

#[tokio::test]
async fn try_submit_reports_a_full_queue_and_submit_waits() {
    let settings = EngineConfig { shards: 1, queue_capacity: 2, ..EngineConfig::default() };
    let (engine, driver) = builder(LATENCY_CONFIG).settings(settings).build().unwrap();
    let sink = engine.sink();
    // The driver is not running yet, so nothing drains the queue.
    sink.try_submit(latency("m", 1.0)).unwrap();
    sink.try_submit(latency("m", 1.0)).unwrap();
    let refused = sink.try_submit(latency("m", 42.0)).unwrap_err();
    assert!(matches!(refused.error, Error::Full));
    // The record comes back untouched, to be retried or parked.
    assert_eq!(refused.record.latency_ms, Some(42.0));
    let waiting = tokio::time::timeout(Duration::from_millis(50), sink.submit(latency("m", 1.0))).await;
    assert!(waiting.is_err(), "submit must wait while the queue is full");
    let task = tokio::spawn(driver);
    sink.submit(latency("m", 1.0)).await.unwrap();
    engine.shutdown();
    let summary = task.await.unwrap();
    assert_eq!((summary.monitor.records, summary.overloaded), (3, 1));
    assert!(matches!(sink.submit(latency("m", 1.0)).await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_everything_accepted_across_shards() {
    let recorder = RecordingObserver::new();
    let engine = builder(LATENCY_CONFIG).shards(3).observer(Box::new(recorder.clone())).spawn().unwrap();
    let sink = engine.sink();
    for i in 0..3000 {
        let model = format!("m{}", i % 10);
        sink.submit(latency(&model, if i < 1500 { 10.0 } else { 500.0 })).await.unwrap();
    }
    let summary = engine.shutdown().await;
    assert_eq!(summary.monitor.records, 3000);
    // Each of the ten models goes into drift once and asks for one retrain.
    assert_eq!((summary.monitor.findings, summary.monitor.retrain_requests), (10, 10));
    assert_eq!(recorder.events().len(), 20);
    assert_eq!(recorder.flush_count(), 1);
}

#[tokio::test]
async fn rejected_records_are_counted_and_reported_with_their_seq() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let engine = builder(LATENCY_CONFIG)
        .on_reject(move |seq, e| log.lock().unwrap().push((seq, e.to_string())))
        .spawn()
        .unwrap();
    let sink = engine.sink();
    let mut bad = latency("m", 1.0);
    bad.latency_ms = Some(f64::INFINITY);
    let seq = sink.submit(bad).await.unwrap();
    let summary = engine.shutdown().await;
    assert_eq!((summary.monitor.records, summary.monitor.rejected), (0, 1));
    assert_eq!(
        *seen.lock().unwrap(),
        [(seq, "field `latency_ms`: must be a non-negative finite number (got inf)".to_owned())]
    );
}

/// Answers each retrain request from another thread, later, the way a
/// retrain scheduler reports job status.
struct SlowScheduler {
    publisher: Option<Arc<dyn EventPublisher>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

#[async_trait]
impl Observer for SlowScheduler {
    fn name(&self) -> &str {
        "slow-scheduler"
    }

    fn attach(&mut self, publisher: Arc<dyn EventPublisher>) {
        self.publisher = Some(publisher);
    }

    async fn on_event(&mut self, event: &Event) -> monitor_core::Result<()> {
        let EventKind::RetrainRequested(request) = &event.kind else { return Ok(()) };
        let publisher = Arc::clone(self.publisher.as_ref().unwrap());
        let (key, job_id, seq, ts) = (event.key.clone(), request.job_id, event.seq, event.ts);
        self.workers.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let update = JobUpdate {
                job_id,
                at: Utc::now(),
                status: JobStatus::Succeeded,
                dispatcher: "test".into(),
                detail: None,
            };
            publisher.publish(Event::new(key, ts, seq, EventKind::JobStatus(update)));
        }));
        Ok(())
    }

    async fn flush(&mut self) -> monitor_core::Result<()> {
        let workers = std::mem::take(&mut self.workers);
        tokio::task::spawn_blocking(move || workers.into_iter().for_each(|w| w.join().unwrap())).await.unwrap();
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_status_published_during_flush_reaches_every_observer() {
    let recorder = RecordingObserver::new();
    let scheduler = SlowScheduler { publisher: None, workers: Vec::new() };
    let engine =
        builder(LATENCY_CONFIG).observer(Box::new(scheduler)).observer(Box::new(recorder.clone())).spawn().unwrap();
    for _ in 0..2 {
        engine.sink().submit(latency("m", 500.0)).await.unwrap();
    }
    let summary = engine.shutdown().await;
    let types: Vec<_> = recorder.events().iter().map(Event::type_name).collect();
    assert_eq!(types, ["finding", "retrain_requested", "job_status"]);
    assert_eq!(summary.jobs_succeeded, 1);
}

/// Takes its time over every event.
struct Sluggish;

#[async_trait]
impl Observer for Sluggish {
    fn name(&self) -> &str {
        "sluggish"
    }
    async fn on_event(&mut self, _event: &Event) -> monitor_core::Result<()> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_observer_drops_its_own_events_and_no_one_elses() {
    let config = "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", window = 1, max = 100.0 }\n[engine]\nobserver_queue = 1\n";
    let recorder = RecordingObserver::new();
    let engine = builder(config)
        .overflow(Overflow::Drop)
        .observer(Box::new(Sluggish))
        .observer(Box::new(recorder.clone()))
        .spawn()
        .unwrap();
    let sink = engine.sink();
    // Alternate so every record flips the finding: 100 events.
    for i in 0..100 {
        sink.submit(latency("m", if i % 2 == 0 { 500.0 } else { 1.0 })).await.unwrap();
    }
    let summary = engine.shutdown().await;
    assert_eq!(summary.monitor.findings + summary.monitor.recoveries, 100);
    assert!(summary.events_dropped() > 0, "{summary:?}");
    // The summary says whose events were dropped: the sluggish one's queue
    // of one overflows; every event the recorder missed is counted as its own.
    assert_eq!(summary.observers[0].name, "sluggish");
    assert!(summary.observers[0].events_dropped > 0, "{summary:?}");
    assert!(summary.lost_anything());
    let total_recorded = recorder.events().len() as u64;
    assert_eq!(total_recorded, 100 - summary.observers[1].events_dropped, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_source_skips_malformed_lines_or_stops_when_strict() {
    let input = "{\"model\": \"m\", \"latency_ms\": 5}\nnot json\n\n{\"model\": \"m\", \"latency_ms\": -1}\n{\"model\": \"m\", \"latency_ms\": 7}\n";
    for (strict, submitted, malformed) in [(false, 2, 2), (true, 1, 1)] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let engine = builder(LATENCY_CONFIG)
            .on_reject(move |seq, e| log.lock().unwrap().push((seq, e.to_string())))
            .spawn()
            .unwrap();
        let mut source = LineSource::spawn("test", "input", input.as_bytes(), 1 << 20);
        let stats = pump(&mut source, &engine.sink(), PumpOptions { strict }, &CancellationToken::new()).await.unwrap();
        let summary = engine.shutdown().await;
        assert_eq!((stats.submitted, stats.malformed, summary.monitor.records), (submitted, malformed, submitted));
        assert_eq!(stats.stopped_by.is_some(), strict);
        // Lines are 1-based in positions: the whole input, or up to the bad line.
        let acked = if strict { 2 } else { 5 };
        assert_eq!(stats.acked, Some(Position::new("input", acked)));
        assert_eq!(source.acked(), stats.acked.as_ref());
        let seen = seen.lock().unwrap();
        assert!(seen[0].1.starts_with("line 2: malformed JSON"), "{seen:?}");
        assert_eq!(seen[0].0, 1);
        if !strict {
            assert_eq!(seen[1], (3, "line 4: field `latency_ms`: must not be negative (got -1)".to_owned()));
        }
    }
}

/// Batches of records spread over models, from memory; remembers every
/// acknowledgement and how many records the engine had processed by then.
struct Scripted {
    batches: Vec<SourceBatch>,
    acks: Arc<Mutex<Vec<(u64, u64)>>>,
    engine: monitor_runtime::Engine,
}

#[async_trait]
impl Source for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn next_batch(&mut self) -> monitor_core::Result<Option<SourceBatch>> {
        Ok(if self.batches.is_empty() { None } else { Some(self.batches.remove(0)) })
    }

    async fn ack(&mut self, position: &Position) -> monitor_core::Result<()> {
        let processed = self.engine.stats().monitor.records;
        self.acks.lock().unwrap().push((position.offset, processed));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_acknowledged_in_order_once_processed() {
    let engine = builder(LATENCY_CONFIG).shards(4).spawn().unwrap();
    let mut seq = 0;
    let batches: Vec<SourceBatch> = (1..=50)
        .map(|b| {
            let records = (0..20)
                .map(|i| {
                    seq += 1;
                    (seq - 1, latency(&format!("m{i}"), 10.0))
                })
                .collect();
            SourceBatch { records, rejected: Vec::new(), position: Some(Position::new("p", b * 20)) }
        })
        .collect();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let mut source = Scripted { batches, acks: Arc::clone(&acks), engine: engine.engine().clone() };
    let report = pump(&mut source, &engine.sink(), PumpOptions::default(), &CancellationToken::new()).await.unwrap();
    let summary = engine.shutdown().await;
    assert_eq!((report.submitted, summary.monitor.records), (1000, 1000));
    let acks = acks.lock().unwrap();
    let offsets: Vec<u64> = acks.iter().map(|a| a.0).collect();
    assert_eq!(offsets, (1..=50).map(|b| b * 20).collect::<Vec<_>>(), "every batch, in order");
    // Shards publish their counts after each batch part, so by the time a
    // batch is acknowledged every record up to it has been counted.
    for (offset, processed) in acks.iter() {
        assert!(processed >= offset, "batch ending at {offset} acknowledged with {processed} processed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_keeps_each_models_order_across_shards() {
    let recorder = RecordingObserver::new();
    let config =
        "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", window = 1, max = 100.0 }\n";
    let engine = builder(config).shards(4).observer(Box::new(recorder.clone())).spawn().unwrap();
    // Each model alternates high and low: in order, every record flips it.
    let records: Vec<(u64, Record)> =
        (0..400).map(|i| (i, latency(&format!("m{}", i % 8), if (i / 8) % 2 == 0 { 500.0 } else { 1.0 }))).collect();
    engine.sink().submit_batch(records).await.unwrap();
    let summary = engine.shutdown().await;
    assert_eq!(summary.monitor.findings + summary.monitor.recoveries, 400);
    for m in 0..8 {
        let seqs: Vec<u64> =
            recorder.events().iter().filter(|e| e.key.model == format!("m{m}")).map(|e| e.seq).collect();
        assert_eq!(seqs.len(), 50);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "model m{m} out of order: {seqs:?}");
    }
}

/// Never finishes flushing.
struct Stuck;

#[async_trait]
impl Observer for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }
    async fn on_event(&mut self, _event: &Event) -> monitor_core::Result<()> {
        Ok(())
    }
    async fn flush(&mut self) -> monitor_core::Result<()> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_off_an_observer_at_the_deadline_and_says_so() {
    let config = format!("{LATENCY_CONFIG}\n[engine]\nshutdown_timeout = \"200ms\"\n");
    let recorder = RecordingObserver::new();
    let engine = builder(&config).observer(Box::new(Stuck)).observer(Box::new(recorder.clone())).spawn().unwrap();
    for _ in 0..2 {
        engine.sink().submit(latency("m", 500.0)).await.unwrap();
    }
    let summary = engine.shutdown().await;
    assert_eq!(summary.monitor.records, 2);
    // The healthy observer got everything and finished; the stuck one is reported.
    assert_eq!(recorder.events().len(), 2);
    assert_eq!(recorder.flush_count(), 1);
    assert_eq!(summary.unfinished.len(), 1, "{:?}", summary.unfinished);
    assert!(summary.unfinished[0].starts_with("observer `stuck` had not finished"), "{:?}", summary.unfinished);
}

#[test]
fn engine_sizes_have_upper_bounds() {
    for (key, value) in [("shards", "100000"), ("queue_capacity", "1000000000000"), ("shutdown_timeout", "\"2h\"")] {
        let err = Config::from_toml(&format!("[engine]\n{key} = {value}\n")).unwrap_err().to_string();
        assert!(err.starts_with(&format!("config error at `engine.{key}`: must be")), "{err}");
    }
}

#[test]
fn unknown_observer_kinds_fail_at_start() {
    let config = Config::from_toml("[[observers]]\nkind = \"carrier-pigeon\"\n").unwrap();
    let err = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &BuildContext::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config error at `observers[0].kind`: unknown observer kind `carrier-pigeon`; none are registered"
    );
}

/// `[limits]` bound the whole engine, not each shard: 4 shards share 8
/// model versions, so of 40 models at most 8 are tracked at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_shared_by_the_shards() {
    let config = format!("{LATENCY_CONFIG}\n[limits]\nmax_model_versions = 8\n");
    let engine = builder(&config).shards(4).spawn().unwrap();
    for i in 0..40 {
        engine.sink().submit(latency(&format!("m{i}"), 10.0)).await.unwrap();
    }
    let summary = engine.shutdown().await;
    assert_eq!(summary.monitor.records, 40);
    assert!(summary.monitor.versions_evicted >= 32, "{summary:?}");
}

/// Says when it takes its first event, and never returns from it.
struct StuckOnEvent(Option<tokio::sync::oneshot::Sender<()>>);

#[async_trait]
impl Observer for StuckOnEvent {
    fn name(&self) -> &str {
        "stuck-on-event"
    }
    async fn on_event(&mut self, _event: &Event) -> monitor_core::Result<()> {
        if let Some(entered) = self.0.take() {
            let _ = entered.send(());
        }
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_observer_queue_cannot_hold_shutdown_past_its_deadline() {
    let config =
        format!("{LATENCY_CONFIG}\n[engine]\nshutdown_timeout = \"200ms\"\nobserver_queue = 1\noverflow = \"drop\"\n");
    let (entered, entered_rx) = tokio::sync::oneshot::channel();
    let engine = builder(&config).observer(Box::new(StuckOnEvent(Some(entered)))).spawn().unwrap();
    // A finding, which the observer takes and never finishes with...
    for ms in [500.0, 500.0] {
        engine.sink().submit(latency("m", ms)).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), entered_rx).await.unwrap().unwrap();
    // ... then a recovery, which fills its queue of one: the flush finds no
    // room, and waits for it only until the deadline.
    for ms in [1.0, 1.0] {
        engine.sink().submit(latency("m", ms)).await.unwrap();
    }
    let summary = tokio::time::timeout(Duration::from_secs(30), engine.shutdown()).await.expect("shutdown ended");
    assert_eq!(summary.unfinished.len(), 1, "{:?}", summary.unfinished);
    assert!(
        summary.unfinished[0].starts_with("observer `stuck-on-event` had not finished"),
        "{:?}",
        summary.unfinished
    );
}

#[tokio::test]
async fn offer_batch_queues_a_batch_whole_or_not_at_all() {
    let settings = EngineConfig { shards: 2, queue_capacity: 1, ..EngineConfig::default() };
    let (engine, driver) = builder(LATENCY_CONFIG).settings(settings).build().unwrap();
    let sink = engine.sink();
    // Two models owned by different shards.
    let a = "a";
    let b = (0..100).map(|i| format!("b{i}")).find(|m| sink.shard_index(m) != sink.shard_index(a)).unwrap();
    let wait = Duration::ZERO;
    // The driver is not running: the first batch fills `a`'s queue.
    sink.offer_batch(vec![(0, latency(a, 1.0))], wait).await.unwrap();
    let both = vec![(1, latency(&b, 1.0)), (2, latency(a, 2.0))];
    let refused = sink.offer_batch(both, wait).await.unwrap_err();
    assert!(matches!(refused.error, Error::Full));
    // Nothing went in, not even the part whose queue had room.
    assert_eq!(refused.records.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(engine.health().shard_queues.iter().sum::<u64>(), 1);
    assert_eq!(engine.stats().overloaded, 2);
    let task = tokio::spawn(driver);
    let receipt = sink.offer_batch(refused.records, Duration::from_secs(60)).await.unwrap();
    assert_eq!(receipt.records(), 2);
    receipt.processed().await;
    assert_eq!(engine.stats().monitor.records, 3);
    engine.shutdown();
    let summary = task.await.unwrap();
    assert_eq!(summary.monitor.records, 3);
    let closed = sink.offer_batch(vec![(3, latency(a, 1.0))], wait).await.unwrap_err();
    assert!(matches!(closed.error, Error::Closed));
}

#[tokio::test]
async fn the_inspector_asks_the_shards_that_own_the_models() {
    let settings = EngineConfig { shards: 2, ..EngineConfig::default() };
    let engine = builder(LATENCY_CONFIG).settings(settings).spawn().unwrap();
    let sink = engine.sink();
    for model in ["x", "y", "z"] {
        sink.submit(latency(model, 300.0)).await.unwrap();
        sink.submit(latency(model, 300.0)).await.unwrap();
    }
    let inspector = engine.engine().inspector();
    let mut overview = inspector.overview(10).await.unwrap();
    while overview.versions.iter().map(|v| v.records).sum::<u64>() < 6 {
        tokio::task::yield_now().await;
        overview = inspector.overview(10).await.unwrap();
    }
    assert_eq!(overview.total, 3);
    let models: Vec<&str> = overview.versions.iter().map(|v| v.model.as_str()).collect();
    assert_eq!(models, ["x", "y", "z"]);
    assert_eq!(inspector.overview(2).await.unwrap().versions.len(), 2);
    let y = inspector.model("y", 10).await.unwrap();
    assert_eq!((y[0].overview.open_findings, y[0].detectors[0].statistic), (1, Some(300.0)));
    assert!(inspector.model("nobody", 10).await.unwrap().is_empty());
    engine.shutdown().await;
    assert!(matches!(inspector.overview(10).await, Err(Error::Closed)));
}
