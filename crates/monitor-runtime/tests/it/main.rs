//! Integration tests of the engine, config loading and replay.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use monitor_core::event::{Event, EventKind, JobStatus, JobUpdate};
use monitor_core::observer::{EventPublisher, Observer, ObserverRegistry};
use monitor_core::record::Record;
use monitor_core::registry::BuildContext;
use monitor_core::testing::RecordingObserver;
use monitor_core::{Error, async_trait};
use monitor_runtime::{Config, EngineBuilder, EngineConfig, Overflow, ReplayOptions, replay_lines};

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
    assert!(matches!(sink.try_submit(latency("m", 1.0)), Err(Error::Full)));
    let waiting = tokio::time::timeout(Duration::from_millis(50), sink.submit(latency("m", 1.0))).await;
    assert!(waiting.is_err(), "submit must wait while the queue is full");
    let task = tokio::spawn(driver);
    sink.submit(latency("m", 1.0)).await.unwrap();
    engine.shutdown();
    let summary = task.await.unwrap();
    assert_eq!((summary.records, summary.overloaded), (3, 1));
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
    assert_eq!(summary.records, 3000);
    // Each of the ten models goes into drift once and asks for one retrain.
    assert_eq!((summary.findings, summary.retrain_requests), (10, 10));
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
    assert_eq!((summary.records, summary.rejected), (0, 1));
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
        let (key, job_id, seq) = (event.key.clone(), request.job_id, event.seq);
        self.workers.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let update = JobUpdate { job_id, status: JobStatus::Succeeded, dispatcher: "test".into(), detail: None };
            publisher.publish(Event::new(key, Utc::now(), seq, EventKind::JobStatus(update)));
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
    assert_eq!(summary.findings + summary.recoveries, 100);
    assert!(summary.events_dropped > 0, "{summary:?}");
    let total_recorded = recorder.events().len() as u64;
    // The recorder keeps up; whatever was dropped was (almost all) the sluggish one's.
    assert!(total_recorded + summary.events_dropped >= 100, "{summary:?} {total_recorded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_skips_malformed_lines_or_stops_when_strict() {
    let input = "{\"model\": \"m\", \"latency_ms\": 5}\nnot json\n\n{\"model\": \"m\", \"latency_ms\": -1}\n{\"model\": \"m\", \"latency_ms\": 7}\n";
    for (strict, submitted, malformed) in [(false, 2, 2), (true, 1, 1)] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let engine = builder(LATENCY_CONFIG)
            .on_reject(move |seq, e| log.lock().unwrap().push((seq, e.to_string())))
            .spawn()
            .unwrap();
        let sink = engine.sink();
        let stats =
            tokio::task::spawn_blocking(move || replay_lines(input.as_bytes(), &sink, ReplayOptions { strict }))
                .await
                .unwrap()
                .unwrap();
        let summary = engine.shutdown().await;
        assert_eq!((stats.submitted, stats.malformed, summary.records), (submitted, malformed, submitted));
        assert_eq!(stats.stopped_by.is_some(), strict);
        let seen = seen.lock().unwrap();
        assert!(seen[0].1.starts_with("line 2: malformed JSON"), "{seen:?}");
        assert_eq!(seen[0].0, 1);
        if !strict {
            assert_eq!(seen[1], (3, "line 4: field `latency_ms`: must not be negative (got -1)".to_owned()));
        }
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
