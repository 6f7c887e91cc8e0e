//! The state journal: checkpoints of model state across engine restarts.

use monitor_core::event::Event;
use monitor_core::record::Record;
use monitor_core::testing::RecordingObserver;
use monitor_runtime::EngineConfig;
use monitor_runtime::journal::Journal;

use super::{LATENCY_CONFIG, builder};

/// Records of three models whose latency jumps from record 150 on, with
/// event times one second apart.
fn records() -> Vec<Record> {
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    (0..300)
        .map(|i: i64| {
            let ts = (base + chrono::Duration::seconds(i)).to_rfc3339();
            let ms = if i < 150 { 10.0 + (i % 7) as f64 } else { 500.0 };
            let line = format!(r#"{{"model": "m{}", "ts": "{ts}", "latency_ms": {ms}}}"#, i % 3);
            Record::parse(&line, chrono::Utc::now()).unwrap()
        })
        .collect()
}

fn settings(state_dir: Option<&std::path::Path>) -> EngineConfig {
    EngineConfig { shards: 2, state_dir: state_dir.map(ToOwned::to_owned), ..EngineConfig::default() }
}

/// Runs `records` through an engine, returns its events without their
/// event and job ids (fresh in every run).
async fn run(config: &str, settings: EngineConfig, records: &[Record]) -> Vec<serde_json::Value> {
    let recorder = RecordingObserver::new();
    let engine = builder(config).settings(settings).observer(Box::new(recorder.clone())).spawn().unwrap();
    let sink = engine.sink();
    for record in records {
        sink.submit(record.clone()).await.unwrap();
    }
    engine.shutdown().await;
    without_ids(&recorder.events())
}

fn without_ids(events: &[Event]) -> Vec<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            let v_ = v.as_object_mut().unwrap();
            v_.remove("id");
            v_.remove("job_id");
            v
        })
        .collect();
    all.sort_by_key(|v| (v["seq"].as_u64(), v["type"].as_str().map(str::to_owned)));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_engine_carries_on_from_its_checkpoint() {
    let records = records();
    let uninterrupted = run(LATENCY_CONFIG, settings(None), &records).await;
    assert!(uninterrupted.iter().any(|e| e["seq"].as_u64() > Some(152)), "drift after the split: {uninterrupted:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut resumed = run(LATENCY_CONFIG, settings(Some(dir.path())), &records[..152]).await;
    resumed.extend(run(LATENCY_CONFIG, settings(Some(dir.path())), &records[152..]).await);
    resumed.sort_by_key(|v| (v["seq"].as_u64(), v["type"].as_str().map(str::to_owned)));
    assert_eq!(resumed, uninterrupted);

    // One checkpoint per shutdown, within engine.checkpoints_kept.
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.checkpoint_count().unwrap(), 2);
    assert_eq!(journal.latest_checkpoint().unwrap().unwrap().next_seq, 300);
}

#[tokio::test]
async fn checkpoints_are_written_periodically_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let settings = EngineConfig {
        checkpoint_interval: monitor_core::duration::HumanDuration::from_secs(1),
        checkpoints_kept: 2,
        ..settings(Some(dir.path()))
    };
    let engine = builder(LATENCY_CONFIG).settings(settings).spawn().unwrap();
    for record in &records()[..10] {
        engine.sink().submit(record.clone()).await.unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while journal.checkpoint_count().unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "no periodic checkpoint");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(journal.latest_checkpoint().unwrap().unwrap().next_seq, 10);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    engine.shutdown().await;
    assert_eq!(journal.checkpoint_count().unwrap(), 2, "pruned to engine.checkpoints_kept");
}

#[tokio::test]
async fn a_checkpoint_taken_under_other_monitors_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(LATENCY_CONFIG, settings(Some(dir.path())), &records()[..10]).await;
    let other = LATENCY_CONFIG.replace("max = 100.0", "max = 200.0");
    let e = builder(&other).settings(settings(Some(dir.path()))).build().map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("journal.sqlite3") && e.contains("move the journal aside"), "{e}");
    // And one taken with another number of shards.
    let e = builder(LATENCY_CONFIG)
        .settings(EngineConfig { shards: 3, ..settings(Some(dir.path())) })
        .build()
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 shards") && e.contains("engine.shards"), "{e}");
}

#[tokio::test]
async fn the_engine_journals_the_retrain_jobs_it_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let events = run(LATENCY_CONFIG, settings(Some(dir.path())), &records()).await;
    let requested: Vec<&str> =
        events.iter().filter(|e| e["type"] == "retrain_requested").filter_map(|e| e["model"].as_str()).collect();
    assert_eq!(requested.len(), 3);
    let journal = Journal::open(dir.path()).unwrap();
    let jobs = journal.jobs(None, 100).unwrap();
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j.status == "requested" && !j.reasons.is_empty()), "{jobs:?}");
}

/// A stand-in for the retrain scheduler: queues every job it is asked for,
/// and reports those of `m0` succeeded.
struct Scheduler(Option<std::sync::Arc<dyn monitor_core::observer::EventPublisher>>);

#[monitor_core::async_trait]
impl monitor_core::observer::Observer for Scheduler {
    fn name(&self) -> &str {
        "scheduler"
    }

    fn attach(&mut self, publisher: std::sync::Arc<dyn monitor_core::observer::EventPublisher>) {
        self.0 = Some(publisher);
    }

    async fn on_event(&mut self, event: &Event) -> monitor_core::Result<()> {
        use monitor_core::event::{EventKind, JobStatus, JobUpdate};
        let EventKind::RetrainRequested(request) = &event.kind else { return Ok(()) };
        let mut statuses = vec![JobStatus::Queued];
        if event.key.model == "m0" {
            statuses.extend([JobStatus::Dispatched, JobStatus::Succeeded]);
        }
        for status in statuses {
            let update = JobUpdate {
                job_id: request.job_id,
                at: chrono::Utc::now(),
                status,
                dispatcher: "test".into(),
                detail: None,
            };
            let kind = EventKind::JobStatus(update);
            let publisher = self.0.as_ref().unwrap();
            publisher.publish(Event::new(event.key.clone(), event.ts, event.seq, kind));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_jobs_are_requested_again_with_their_ids_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = RecordingObserver::new();
    let engine = builder(LATENCY_CONFIG)
        .settings(settings(Some(dir.path())))
        .observer(Box::new(Scheduler(None)))
        .observer(Box::new(recorder.clone()))
        .spawn()
        .unwrap();
    for record in records() {
        engine.sink().submit(record).await.unwrap();
    }
    engine.shutdown().await;
    let first: Vec<Event> =
        recorder.events().into_iter().filter(|e| e.type_name() == "retrain_requested" && e.key.model != "m0").collect();
    assert_eq!(first.len(), 2);

    // The next start asks again for the two jobs left queued, not for the
    // one that succeeded, under the same ids, event times and seqs.
    let recorder = RecordingObserver::new();
    let engine = builder(LATENCY_CONFIG)
        .settings(settings(Some(dir.path())))
        .observer(Box::new(recorder.clone()))
        .spawn()
        .unwrap();
    engine.shutdown().await;
    let again: Vec<Event> = recorder.events().into_iter().filter(|e| e.type_name() == "retrain_requested").collect();
    let key = |e: &Event| (e.seq, e.key.clone(), e.ts, serde_json::to_value(&e.kind).unwrap());
    let mut want: Vec<_> = first.iter().map(key).collect();
    let mut got: Vec<_> = again.iter().map(key).collect();
    want.sort_by_key(|k| k.0);
    got.sort_by_key(|k| k.0);
    assert_eq!(got, want);
    let journal = Journal::open(dir.path()).unwrap();
    let statuses: Vec<String> = journal.jobs(None, 10).unwrap().into_iter().map(|j| j.status).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "succeeded").count(), 1, "{statuses:?}");
}

/// The journal's files, in bytes: the database and its WAL.
fn journal_bytes(dir: &std::path::Path) -> u64 {
    ["journal.sqlite3", "journal.sqlite3-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The bound docs/JOURNAL.md gives for this load: checkpoints and the
/// ingest log of one interval, well under it.
const SOAK_BOUND: u64 = 16 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_stays_bounded_under_a_steady_load() {
    let dir = tempfile::tempdir().unwrap();
    let settings = EngineConfig {
        checkpoint_interval: monitor_core::duration::HumanDuration::from_secs(1),
        ..settings(Some(dir.path()))
    };
    let engine = builder(LATENCY_CONFIG).settings(settings).spawn().unwrap();
    let sink = engine.sink();
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    let started = std::time::Instant::now();
    let mut sizes = Vec::new();
    let mut sent = 0u64;
    // Four and a half seconds of requests of 100 records: four checkpoints.
    while started.elapsed() < std::time::Duration::from_millis(4500) {
        let records = (0..100u64)
            .map(|j| {
                let ts = (base + chrono::Duration::seconds((sent + j) as i64)).to_rfc3339();
                let line = format!(r#"{{"model": "m{}", "ts": "{ts}", "latency_ms": {}}}"#, j % 5, 10 + j % 7);
                (j + 1, Record::parse(&line, chrono::Utc::now()).unwrap())
            })
            .collect();
        let offered = sink.offer_lines(100, records, std::time::Duration::from_secs(5)).await.unwrap();
        offered.receipt.unwrap().processed().await;
        sent += 100;
        sizes.push(journal_bytes(dir.path()));
    }
    engine.shutdown().await;
    let journal = Journal::open_existing(dir.path()).unwrap();
    // The last checkpoint covers every entry but the newest, kept for numbering.
    assert_eq!(journal.ingest_len().unwrap(), 1);
    let largest = sizes.iter().copied().max().unwrap();
    assert!(largest < SOAK_BOUND, "the journal reached {largest} bytes after {sent} records");
    // It stops growing once the first checkpoints prune the ingest log:
    // the second half is no larger than twice the first's largest.
    let half = sizes.len() / 2;
    let first = sizes[..half].iter().copied().max().unwrap();
    let second = sizes[half..].iter().copied().max().unwrap();
    assert!(second <= first * 2, "grew from {first} to {second} bytes");
    assert!(sent > 1000, "{sent}");
}
