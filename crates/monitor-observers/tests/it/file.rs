use std::io::Write;
use std::sync::{Arc, Mutex};

use monitor_core::event::{Event, Severity};
use monitor_core::observer::Observer;
use monitor_observers::builtin_registry;
use monitor_observers::file::NdjsonObserver;

use crate::support::{ctx_in, finding_event, retrain_event};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_json_event_per_line() {
    let out = Shared::default();
    let mut observer = NdjsonObserver::new(Box::new(out.clone()));
    let events = [finding_event("fraud", "accuracy", Severity::Drift), retrain_event("fraud", "accuracy").1];
    for e in &events {
        observer.on_event(e).await.unwrap();
    }
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let back: Vec<Event> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, events);
}

#[tokio::test]
async fn file_kind_creates_parents_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx_in(dir.path());
    let spec = serde_json::json!({"kind": "file", "path": "out/events.ndjson"});
    for _ in 0..2 {
        let mut observer = builtin_registry().build("observers[0]", &spec, &ctx).unwrap();
        observer.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
        observer.flush().await.unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("out/events.ndjson")).unwrap();
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("events.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let ctx = ctx_in(dir.path());
    for (path, shown) in [("events.fifo", fifo.display().to_string()), ("/dev/null", "/dev/null".to_owned())] {
        let spec = serde_json::json!({"kind": "file", "path": path});
        let err = match builtin_registry().build("observers[0]", &spec, &ctx) {
            Ok(_) => panic!("{path} was accepted"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            err,
            format!(
                "config error at `observers[0].path`: event file {shown}: is not a regular file (a device, a FIFO or a socket); a regular file is needed"
            )
        );
    }
    // From code too; and a directory.
    let err = NdjsonObserver::append(&fifo).unwrap_err().to_string();
    assert!(err.contains("is not a regular file"), "{err}");
    let err = NdjsonObserver::append(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
}
