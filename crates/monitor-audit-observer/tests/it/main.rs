//! The incident reporter and the ledger dispatcher, registered in code and
//! built from config, driven without any async runtime crate: their futures
//! never wait.

#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use monitor_audit_observer::{IncidentReporter, KIND, LEDGER_KIND, LedgerDispatcher, register, register_dispatchers};
use monitor_core::dispatch::{DispatchOutcome, Dispatcher, DispatcherRegistry};
use monitor_core::event::*;
use monitor_core::observer::{Observer, ObserverRegistry};
use monitor_core::record::ModelKey;
use monitor_core::registry::BuildContext;
use monitor_core::signal::Signal;

/// Polls a future that never waits to completion.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn finding(signal: &str, severity: Severity) -> Finding {
    Finding {
        signal: Signal::Metric(signal.into()),
        detector: "threshold".into(),
        severity,
        statistic: 0.81,
        threshold: 0.9,
        p_value: None,
        realised: None,
        message: format!("mean of metrics.{signal} 0.81 < min 0.9"),
    }
}

fn event(seq: u64, kind: EventKind) -> Event {
    Event::new(ModelKey::new("fraud", "v3"), DateTime::<Utc>::UNIX_EPOCH, seq, kind)
}

fn incident(observer: &mut dyn Observer) {
    let job_id = uuid::Uuid::new_v4();
    let events = [
        event(10, EventKind::Finding(finding("accuracy", Severity::Warning))),
        event(12, EventKind::Finding(finding("accuracy", Severity::Drift))),
        event(12, EventKind::RetrainRequested(RetrainRequest { job_id, reasons: vec![] })),
        event(
            12,
            EventKind::JobStatus(JobUpdate {
                job_id,
                at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                status: JobStatus::Succeeded,
                dispatcher: "command".into(),
                detail: Some("exit code 0".into()),
            }),
        ),
        event(40, EventKind::Recovered(finding("accuracy", Severity::Drift))),
    ];
    for e in &events {
        run(observer.on_event(e)).unwrap();
    }
}

#[test]
fn registered_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut reporter = IncidentReporter::new(dir.path());
    incident(&mut reporter);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "only the drift opens a report: {files:?}");
    assert_eq!(files[0].file_name().unwrap(), "fraud-v3-metrics.accuracy-12.md");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("# drift: metrics.accuracy of fraud v3\n"), "{text}");
    assert!(text.contains("| detector | threshold |"), "{text}");
    assert!(text.contains("retraining requested, job"), "{text}");
    assert!(text.contains("succeeded via command (exit code 0)"), "{text}");
    assert!(text.trim_end().ends_with("- resolved"), "{text}");
    assert!(reporter.open_reports("fraud").is_empty());
}

#[test]
fn built_from_config_by_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = ObserverRegistry::new();
    register(&mut registry);
    assert_eq!(registry.kinds().collect::<Vec<_>>(), [KIND]);
    let ctx = BuildContext { base_dir: dir.path().to_path_buf(), ..Default::default() };
    let spec = serde_json::json!({"kind": "incident_report", "dir": "incidents", "include_warnings": true});
    let mut observer = registry.build("observers[3]", &spec, &ctx).unwrap();
    incident(observer.as_mut());
    // With warnings included, the warning opens a report too.
    assert_eq!(std::fs::read_dir(dir.path().join("incidents")).unwrap().count(), 2);
}

#[test]
fn config_mistakes_are_named() {
    let mut registry = ObserverRegistry::new();
    register(&mut registry);
    let ctx = BuildContext::default();
    let err = |spec: serde_json::Value| registry.build("observers[3]", &spec, &ctx).err().unwrap().to_string();
    assert_eq!(
        err(serde_json::json!({"kind": "incident_report", "dir": "x", "format": "html"})),
        "config error at `observers[3].format`: unknown field `format`, expected `dir` or `include_warnings`"
    );
    assert_eq!(
        err(serde_json::json!({"kind": "incident_report"})),
        "config error at `observers[3]`: missing field `dir`"
    );
    assert_eq!(
        err(serde_json::json!({"kind": "incident_report", "dir": " "})),
        "config error at `observers[3].dir`: must not be empty"
    );
}

fn job(model: &str, signals: &[&str]) -> RetrainJob {
    let request = RetrainRequest {
        job_id: uuid::Uuid::new_v4(),
        reasons: signals.iter().map(|s| finding(s, Severity::Drift)).collect(),
    };
    let event =
        Event::new(ModelKey::new(model, "v3"), DateTime::<Utc>::UNIX_EPOCH, 7, EventKind::RetrainRequested(request));
    RetrainJob::from_event(&event).unwrap()
}

fn ledger_registry() -> DispatcherRegistry {
    let mut dispatchers = DispatcherRegistry::new();
    register_dispatchers(&mut dispatchers);
    dispatchers
}

#[test]
fn the_ledger_is_built_from_config_and_appends_one_line_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let dispatchers = ledger_registry();
    assert_eq!(dispatchers.kinds().collect::<Vec<_>>(), [LEDGER_KIND]);
    let ctx = BuildContext { base_dir: dir.path().to_path_buf(), dispatchers, ..Default::default() };
    let spec = serde_json::json!({"kind": "ledger", "path": "audit/jobs.ndjson"});
    let ledger = ctx.dispatchers.build("observers[1].dispatch", &spec, &ctx).unwrap();
    assert_eq!(ledger.kind(), "ledger");

    let (first, second) = (job("fraud", &["accuracy", "f1_score"]), job("churn", &["accuracy"]));
    for job in [&first, &second] {
        let outcome = run(ledger.dispatch(job)).unwrap();
        let expected = format!("appended to {}", dir.path().join("audit/jobs.ndjson").display());
        assert_eq!(outcome, DispatchOutcome::succeeded(expected));
    }

    let text = std::fs::read_to_string(dir.path().join("audit/jobs.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["job_id"], first.job_id.to_string());
    assert_eq!((lines[0]["model"].as_str(), lines[0]["version"].as_str()), (Some("fraud"), Some("v3")));
    assert_eq!(lines[0]["reasons"], serde_json::to_value(&first.reasons).unwrap());
    assert_eq!(lines[0]["reasons"][1]["signal"], "metrics.f1_score");
    assert_eq!(lines[1]["job_id"], second.job_id.to_string());
    assert_eq!(lines[1].as_object().unwrap().len(), 4, "job_id, model, version, reasons: {}", lines[1]);
}

#[test]
fn ledger_config_mistakes_name_the_nested_key() {
    let ctx = BuildContext { dispatchers: ledger_registry(), ..Default::default() };
    let err = |spec: serde_json::Value| {
        ctx.dispatchers.build("observers[1].dispatch", &spec, &ctx).err().unwrap().to_string()
    };
    assert_eq!(
        err(serde_json::json!({"kind": "ledger", "path": "x", "pth": "y"})),
        "config error at `observers[1].dispatch.pth`: unknown field `pth`, expected `path`"
    );
    assert_eq!(
        err(serde_json::json!({"kind": "ledger", "path": ""})),
        "config error at `observers[1].dispatch.path`: must not be empty"
    );
    assert_eq!(
        err(serde_json::json!({"kind": "ledgr", "path": "x"})),
        "config error at `observers[1].dispatch.kind`: unknown dispatcher kind `ledgr`; known kinds: ledger"
    );
}

#[test]
fn a_ledger_that_cannot_be_written_is_an_error_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let ledger = LedgerDispatcher::new(dir.path());
    let err = run(ledger.dispatch(&job("fraud", &["accuracy"]))).unwrap_err().to_string();
    assert!(err.contains("appending to"), "{err}");
}
