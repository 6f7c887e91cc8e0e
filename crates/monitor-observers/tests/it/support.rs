use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use monitor_core::event::{Event, EventKind, Finding, JobStatus, RetrainRequest, Severity};
use monitor_core::observer::EventPublisher;
use monitor_core::record::ModelKey;
use monitor_core::registry::BuildContext;
use monitor_core::signal::Signal;
use uuid::Uuid;

/// Collects what observers publish.
#[derive(Clone, Default)]
pub struct Published(Arc<Mutex<Vec<Event>>>);

impl EventPublisher for Published {
    fn publish(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Published {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// (job id, status, detail) of each job status event.
    pub fn statuses(&self) -> Vec<(Uuid, JobStatus, Option<String>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::JobStatus(u) => Some((u.job_id, u.status, u.detail)),
                _ => None,
            })
            .collect()
    }

    pub fn statuses_of(&self, job: Uuid) -> Vec<JobStatus> {
        self.statuses().into_iter().filter(|(id, _, _)| *id == job).map(|(_, s, _)| s).collect()
    }
}

pub fn finding(signal: &str, severity: Severity) -> Finding {
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

pub fn finding_event(model: &str, signal: &str, severity: Severity) -> Event {
    Event::new(ModelKey::new(model, "v3"), Utc::now(), 41, EventKind::Finding(finding(signal, severity)))
}

pub fn recovered_event(model: &str, signal: &str, severity: Severity) -> Event {
    Event::new(ModelKey::new(model, "v3"), Utc::now(), 42, EventKind::Recovered(finding(signal, severity)))
}

pub fn retrain_event(model: &str, signal: &str) -> (Uuid, Event) {
    let job_id = Uuid::new_v4();
    let request = RetrainRequest { job_id, reasons: vec![finding(signal, Severity::Drift)] };
    (job_id, Event::new(ModelKey::new(model, "v3"), Utc::now(), 7, EventKind::RetrainRequested(request)))
}

/// A build context with the built-in dispatchers, resolving paths against `dir`.
pub fn ctx_in(dir: &Path) -> BuildContext {
    BuildContext { base_dir: dir.to_path_buf(), ..ctx() }
}

/// A build context with the built-in dispatchers.
pub fn ctx() -> BuildContext {
    BuildContext { dispatchers: monitor_observers::builtin_dispatchers(), ..Default::default() }
}

/// Writes an executable shell script `name` into `dir`.
pub fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// What `tracing` wrote while a [`capture_logs`] guard was held, on this thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines logged at WARN.
    pub fn warnings(&self) -> Vec<String> {
        self.text().lines().filter(|l| l.contains(" WARN ")).map(str::to_owned).collect()
    }
}

/// Captures what `tracing` logs on this thread (DEBUG and up, without
/// colours) until the guard is dropped. On a current-thread runtime, that is
/// every task of the test.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
