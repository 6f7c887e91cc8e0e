//! End-to-end: a replayed log through every layer, out to a real webhook
//! receiver and a real retrain command.
#![allow(clippy::unwrap_used)]

mod budget;
mod docs;
mod outbox;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use model_monitor::dispatch::DispatcherRegistry;
use model_monitor::event::{Event, EventKind, JobStatus, Severity};
use model_monitor::observer::ObserverRegistry;
use model_monitor::observers::testing::WebhookReceiver;
use model_monitor::observers::{builtin_dispatchers, builtin_registry};
use model_monitor::registry::BuildContext;
use model_monitor::runtime::{Config, EngineBuilder, LineSource, Overflow, PumpOptions, Summary, pump};
use model_monitor::strategies::builtin_detectors;
use model_monitor::testing::RecordingObserver;

/// Rows of the log: for i in 0..400, one record each of `fraud` (accuracy
/// 0.95, then 0.80 from i = 200), `search` (latency 20 ms, then 400 ms from
/// i = 250) and `recsys` (healthy), one second apart. Line 3i + k is model k.
fn log() -> String {
    let start: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().unwrap();
    let mut out = String::new();
    for i in 0..400 {
        let ts = (start + chrono::Duration::seconds(i)).to_rfc3339();
        let accuracy = if i < 200 { 0.95 } else { 0.80 };
        let latency = if i < 250 { 20.0 } else { 400.0 };
        out += &format!(
            "{{\"model\":\"fraud\",\"version\":\"v3\",\"ts\":\"{ts}\",\"latency_ms\":15,\"metrics\":{{\"accuracy\":{accuracy}}}}}\n"
        );
        out += &format!("{{\"model\":\"search\",\"version\":\"v1\",\"ts\":\"{ts}\",\"latency_ms\":{latency}}}\n");
        out += &format!(
            "{{\"model\":\"recsys\",\"version\":\"v2\",\"ts\":\"{ts}\",\"latency_ms\":20,\"metrics\":{{\"accuracy\":0.95}}}}\n"
        );
    }
    out
}

fn config(hook: &str, jobs: &Path) -> String {
    format!(
        r#"
[[monitors]]
signal = "metrics.accuracy"
detector = {{ kind = "threshold", statistic = "mean", window = 50, min = 0.90 }}

[[monitors]]
signal = "latency_ms"
detector = {{ kind = "threshold", statistic = "p99", window = 100, max = 250.0 }}

[policy]
trigger = "any"
cooldown = "30m"
min_samples = 100

[[observers]]
kind = "webhook"
url = "{hook}"
format = "json"
group_wait = "0s"
events = ["finding"]

[[observers]]
kind = "retrain"
dispatch = {{ kind = "command", program = "sh", args = ["-c", "echo {{model}} {{version}} {{job_id}} >> '{jobs}'"] }}
"#,
        jobs = jobs.display()
    )
}

/// The built-in observers, and the example crate's `incident_report`.
fn observers() -> ObserverRegistry {
    let mut registry = builtin_registry();
    monitor_audit_observer::register(&mut registry);
    registry
}

/// The built-in dispatchers, and the example crate's `ledger`.
fn dispatchers() -> DispatcherRegistry {
    let mut dispatchers = builtin_dispatchers();
    monitor_audit_observer::register_dispatchers(&mut dispatchers);
    dispatchers
}

/// What the binary gives observers, with `dir` as the config's directory.
fn context(dir: &Path) -> BuildContext {
    BuildContext {
        base_dir: dir.to_path_buf(),
        detectors: builtin_detectors(),
        dispatchers: dispatchers(),
        ..Default::default()
    }
}

async fn run(config_text: &str, input: String, dir: &Path) -> (Summary, Vec<Event>) {
    let config = Config::from_toml(config_text).unwrap();
    let recorder = RecordingObserver::new();
    let engine = EngineBuilder::from_config(&config, &observers(), &context(dir))
        .unwrap()
        .shards(2)
        .overflow(Overflow::Block)
        .observer(Box::new(recorder.clone()))
        .spawn()
        .unwrap();
    let mut source = LineSource::spawn("e2e", "log", std::io::Cursor::new(input), 1 << 20);
    let stop = engine.engine().stop_token();
    let stats = pump(&mut source, &engine.sink(), PumpOptions::default(), &stop).await.unwrap();
    assert_eq!(stats.malformed, 0);
    let summary = engine.shutdown().await;
    (summary, recorder.events())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_and_latency_findings_reach_a_webhook_and_start_one_job_per_failing_model() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs_file = dir.path().join("jobs.txt");
    let (summary, events) = run(&config(&receiver.url(), &jobs_file), log(), dir.path()).await;

    // The exact findings: fraud's first window of 50 at 0.80 closes at its
    // record 249 (line 3*249); search's first window of 100 with a p99 of
    // 400 ms closes at its record 299 (line 3*299 + 1).
    let mut findings: Vec<(String, u64, String, Severity, f64, f64)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) => {
                Some((e.key.to_string(), e.seq, f.signal.to_string(), f.severity, f.statistic, f.threshold))
            }
            _ => None,
        })
        .collect();
    findings.sort_by_key(|f| f.1);
    assert_eq!(
        findings,
        [
            ("fraud v3".into(), 747, "metrics.accuracy".into(), Severity::Drift, 0.80, 0.90),
            ("search v1".into(), 898, "latency_ms".into(), Severity::Drift, 400.0, 250.0),
        ]
    );
    assert!(!events.iter().any(|e| e.type_name() == "recovered"));

    // One job per failing model, at the finding, although both keep failing
    // for minutes afterwards: the 30m cooldown holds the rest back.
    let requests: BTreeMap<String, Vec<(u64, String)>> = events.iter().fold(BTreeMap::new(), |mut acc, e| {
        if let EventKind::RetrainRequested(r) = &e.kind {
            acc.entry(e.key.model.clone()).or_default().push((e.seq, r.job_id.to_string()));
        }
        acc
    });
    assert_eq!(requests.keys().collect::<Vec<_>>(), ["fraud", "search"]);
    assert_eq!(requests["fraud"].iter().map(|r| r.0).collect::<Vec<_>>(), [747]);
    assert_eq!(requests["search"].iter().map(|r| r.0).collect::<Vec<_>>(), [898]);
    assert_eq!((summary.monitor.records, summary.monitor.findings, summary.monitor.retrain_requests), (1200, 2, 2));

    // The command really ran, once per job, with the job's id.
    let written = std::fs::read_to_string(&jobs_file).unwrap();
    let mut lines: Vec<&str> = written.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [format!("fraud v3 {}", requests["fraud"][0].1), format!("search v1 {}", requests["search"][0].1)]
    );
    let statuses: Vec<(String, JobStatus)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::JobStatus(j) => Some((e.key.model.clone(), j.status)),
            _ => None,
        })
        .filter(|(_, s)| *s != JobStatus::Queued)
        .collect();
    for model in ["fraud", "search"] {
        let of_model: Vec<JobStatus> = statuses.iter().filter(|(m, _)| m == model).map(|(_, s)| *s).collect();
        assert_eq!(of_model, [JobStatus::Dispatched, JobStatus::Succeeded], "{model}");
    }
    // One clock per field: a job's status events carry its request's event
    // time in `ts`, and the wall-clock time of the change in `at`.
    for e in &events {
        if let EventKind::JobStatus(j) = &e.kind {
            let request = events
                .iter()
                .find(|r| matches!(&r.kind, EventKind::RetrainRequested(q) if q.job_id == j.job_id))
                .unwrap();
            assert_eq!(e.ts, request.ts, "{e:?}");
        }
    }
    assert_eq!(summary.jobs_succeeded, 2);

    // The webhook got each finding, as our JSON event.
    let requests = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(requests.len(), 2);
    let mut bodies: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST");
            assert_eq!(r.header("content-type"), Some("application/json"));
            r.json()
        })
        .collect();
    bodies.sort_by_key(|b| b["seq"].as_u64());
    let fraud = &bodies[0];
    assert_eq!(fraud["type"], "finding");
    assert_eq!(fraud["model"], "fraud");
    assert_eq!(fraud["version"], "v3");
    assert_eq!(fraud["seq"], 747);
    assert_eq!(fraud["signal"], "metrics.accuracy");
    assert_eq!(fraud["detector"], "threshold");
    assert_eq!(fraud["severity"], "drift");
    assert_eq!(fraud["statistic"], 0.8);
    assert_eq!(fraud["threshold"], 0.9);
    assert_eq!(fraud["ts"], "2026-11-23T08:04:09Z");
    assert_eq!(bodies[1]["model"], "search");
    assert_eq!(bodies[1]["signal"], "latency_ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_log_gives_no_findings_and_no_jobs() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let healthy: String = log().lines().filter(|l| l.contains("recsys")).map(|l| format!("{l}\n")).collect();
    let (summary, events) = run(&config(&receiver.url(), &dir.path().join("jobs.txt")), healthy, dir.path()).await;
    assert_eq!(summary.monitor.records, 400);
    assert!(events.is_empty(), "{events:?}");
    assert!(!dir.path().join("jobs.txt").exists());
    assert!(receiver.requests().is_empty());
}

/// A retrain observer whose dispatcher comes from an outside crate, named in
/// TOML, resolved against the config's directory.
const LEDGER_CONFIG: &str = r#"
[[monitors]]
signal = "metrics.accuracy"
detector = { kind = "threshold", statistic = "mean", window = 50, min = 0.90 }

[policy]
trigger = "any"
cooldown = "30m"
min_samples = 100

[[observers]]
kind = "retrain"
dispatch = { kind = "ledger", path = "audit/retrain-jobs.ndjson" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_from_an_outside_crate_runs_the_jobs_of_a_toml_config() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, events) = run(LEDGER_CONFIG, log(), dir.path()).await;

    let request = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RetrainRequested(r) => Some((e.key.clone(), r.clone())),
            _ => None,
        })
        .unwrap();
    let ledger = std::fs::read_to_string(dir.path().join("audit/retrain-jobs.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = ledger.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "one job, for fraud: {ledger}");
    assert_eq!(lines[0]["job_id"], request.1.job_id.to_string());
    assert_eq!((lines[0]["model"].as_str(), lines[0]["version"].as_str()), (Some("fraud"), Some("v3")));
    assert_eq!(lines[0]["reasons"], serde_json::to_value(&request.1.reasons).unwrap());
    assert_eq!(lines[0]["reasons"][0]["signal"], "metrics.accuracy");

    let statuses: Vec<(JobStatus, String, Option<String>)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::JobStatus(j) => Some((j.status, j.dispatcher.clone(), j.detail.clone())),
            _ => None,
        })
        .collect();
    let path = dir.path().join("audit/retrain-jobs.ndjson");
    assert_eq!(
        statuses,
        [
            (JobStatus::Queued, "ledger".to_owned(), None),
            (JobStatus::Dispatched, "ledger".to_owned(), Some("attempt 1 of 3".to_owned())),
            (JobStatus::Succeeded, "ledger".to_owned(), Some(format!("appended to {}", path.display()))),
        ]
    );
    assert_eq!(summary.jobs_succeeded, 1);
}

#[test]
fn an_unknown_dispatcher_kind_in_toml_lists_the_registered_ones() {
    let config = Config::from_toml(
        "[[observers]]\nkind = \"retrain\"\ndispatch = { kind = \"ledgr\", path = \"jobs.ndjson\" }\n",
    )
    .unwrap();
    let err = config.build_observers(&observers(), &context(Path::new("."))).err().unwrap().to_string();
    assert_eq!(
        err,
        "config error at `observers[0].dispatch.kind`: unknown dispatcher kind `ledgr`; known kinds: command, http, ledger"
    );
}
