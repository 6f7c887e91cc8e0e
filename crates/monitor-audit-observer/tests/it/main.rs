//! The incident reporter, registered in code and built from config, driven
//! without any async runtime crate: its futures never wait.

#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Utc};
use monitor_audit_observer::{IncidentReporter, KIND, register};
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

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incident-report-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn finding(signal: &str, severity: Severity) -> Finding {
    Finding {
        signal: Signal::Metric(signal.into()),
        detector: "threshold".into(),
        severity,
        statistic: 0.81,
        threshold: 0.9,
        p_value: None,
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
    let dir = temp_dir("code");
    let mut reporter = IncidentReporter::new(&dir);
    incident(&mut reporter);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "only the drift opens a report: {files:?}");
    assert_eq!(files[0].file_name().unwrap(), "fraud-v3-metrics.accuracy-12.md");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.starts_with("# drift: metrics.accuracy of fraud v3\n"), "{text}");
    assert!(text.contains("| detector | threshold |"), "{text}");
    assert!(text.contains("retraining requested, job"), "{text}");
    assert!(text.contains("succeeded via command (exit code 0)"), "{text}");
    assert!(text.trim_end().ends_with("- resolved"), "{text}");
    assert!(reporter.open_reports("fraud").is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn built_from_config_by_the_registry() {
    let dir = temp_dir("config");
    let mut registry = ObserverRegistry::new();
    register(&mut registry);
    assert_eq!(registry.kinds().collect::<Vec<_>>(), [KIND]);
    let ctx = BuildContext { base_dir: dir.clone(), ..BuildContext::default() };
    let spec = serde_json::json!({"kind": "incident_report", "dir": "incidents", "include_warnings": true});
    let mut observer = registry.build("observers[3]", &spec, &ctx).unwrap();
    incident(observer.as_mut());
    // With warnings included, the warning opens a report too.
    assert_eq!(std::fs::read_dir(dir.join("incidents")).unwrap().count(), 2);
    std::fs::remove_dir_all(dir).ok();
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
