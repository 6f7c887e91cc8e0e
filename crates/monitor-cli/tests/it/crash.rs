//! SIGKILL at any moment after a 2xx loses nothing: `serve` with a journal,
//! killed and restarted, finds the same drifts at the same `seq` as a run
//! that was never interrupted, and its webhook receives every one of them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::scratch;
use super::serve::{NDJSON, http, start};

/// Bodies POSTed, in order: 40 requests of 50 records for four models; `m1`
/// slows down from request 16 on, `m3` from request 30 on.
fn bodies() -> Vec<String> {
    (0..40)
        .map(|i| {
            (0..50)
                .map(|j| {
                    let model = j % 4;
                    let slow = (model == 1 && i >= 16) || (model == 3 && i >= 30);
                    let latency = if slow { 900 + j } else { 100 + (i * 7 + j) % 20 };
                    format!("{{\"model\": \"m{model}\", \"latency_ms\": {latency}, \"ts\": \"2024-05-01T00:{:02}:{:02}Z\"}}\n", i, j)
                })
                .collect()
        })
        .collect()
}

/// A webhook receiver on 127.0.0.1 that answers 200 and keeps every body.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    receiver_answering("200 OK")
}

/// A webhook receiver on 127.0.0.1 that answers `status` and keeps every body.
fn receiver_answering(status: &'static str) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&got);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            if let Ok(value) = serde_json::from_slice(&body) {
                keep.lock().unwrap().push(value);
            }
            let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    (addr, got)
}

fn config(state_dir: &Path, hook: &str) -> String {
    format!(
        r#"
[[monitors]]
signal = "latency_ms"
detector = {{ kind = "threshold", statistic = "mean", window = 20, max = 500.0 }}

[engine]
shards = 2
state_dir = "{}"
checkpoint_interval = "1s"

[[observers]]
kind = "webhook"
url = "http://{hook}/hook"
events = ["finding"]
retry = {{ max_attempts = 3, backoff = "50ms", max_backoff = "200ms" }}
"#,
        state_dir.display()
    )
}

fn post_all(addr: &str, bodies: &[String]) {
    for body in bodies {
        let (status, answer) = http(addr, "POST", "/v1/records", &[NDJSON], body.as_bytes()).unwrap();
        assert_eq!(status, 200, "{answer}");
    }
}

/// The findings received: (model, seq), each once however often it came.
fn findings(got: &Mutex<Vec<serde_json::Value>>) -> BTreeSet<(String, u64)> {
    got.lock()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "finding")
        .map(|v| (v["model"].as_str().unwrap_or_default().to_owned(), v["seq"].as_u64().unwrap_or(u64::MAX)))
        .collect()
}

/// Waits until the receiver holds `n` distinct findings, for at most 30s.
fn wait_for(got: &Mutex<Vec<serde_json::Value>>, n: usize) -> BTreeSet<(String, u64)> {
    for _ in 0..300 {
        let seen = findings(got);
        if seen.len() >= n {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    findings(got)
}

#[test]
fn sigkill_after_2xx_loses_nothing_and_drift_is_found_at_the_same_seq() {
    let bodies = bodies();
    let total = (bodies.len() * 50) as u64;

    // An uninterrupted run.
    let dir = scratch("crash-reference");
    let (hook, got) = receiver();
    let daemon = start(dir.path(), &config(&dir.path().join("state"), &hook), &[]);
    post_all(&daemon.addr, &bodies);
    let (code, summary, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary["summary"]["records"], total, "{summary}");
    let reference = findings(&got);
    let models: BTreeSet<&str> = reference.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(models, BTreeSet::from(["m1", "m3"]), "{reference:?}");

    // The same stream, killed twice: once right after a checkpoint's
    // interval, once a few requests later with no time to write one.
    let dir = scratch("crash-killed");
    let state = dir.path().join("state");
    let (hook, got) = receiver();
    let config = config(&state, &hook);
    let mut daemon = start(dir.path(), &config, &[]);
    post_all(&daemon.addr, &bodies[..14]);
    std::thread::sleep(Duration::from_millis(1500));
    post_all(&daemon.addr, &bodies[14..20]);
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let mut daemon = start(dir.path(), &config, &[]);
    // The records of the last requests were past the checkpoint: read
    // again from the ingest log.
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    assert!(log.contains("processed again"), "{log}");
    post_all(&daemon.addr, &bodies[20..33]);
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    let daemon = start(dir.path(), &config, &[]);
    post_all(&daemon.addr, &bodies[33..]);
    let seen = wait_for(&got, reference.len());
    let (code, summary, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    // Every record answered 2xx was processed once: the counts restored
    // from the checkpoint and the records fed again add up to the total.
    assert_eq!(summary["summary"]["records"], total, "{summary}");
    assert_eq!(seen, reference, "findings after two SIGKILLs differ from an uninterrupted run");
    let integrity = rusqlite_free_integrity(&state.join("journal.sqlite3"));
    assert!(integrity, "the journal is readable after SIGKILL");
}

/// The journal opens again after the kills (its integrity is checked at
/// open), as `model-monitor jobs list` shows.
fn rusqlite_free_integrity(path: &Path) -> bool {
    let out = super::bin().args(["jobs", "list", "--state-dir"]).arg(path.parent().unwrap()).output().unwrap();
    out.status.success()
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = super::bin().args(args).output().unwrap();
    (out.status.success(), super::text(&out.stdout), super::text(&out.stderr))
}

#[test]
fn jobs_and_outbox_act_through_the_api_of_a_running_daemon_and_on_a_stopped_ones_file() {
    let dir = scratch("journal-api");
    let state = dir.path().join("state");
    // A receiver that always fails: its deliveries stay pending.
    let (hook, got) = receiver_answering("500 Internal Server Error");
    let config =
        config(&state, &hook).replace("events = [\"finding\"]", "events = [\"finding\", \"retrain_requested\"]");
    let daemon = start(dir.path(), &config, &[]);
    post_all(&daemon.addr, &bodies()[..20]);
    let url = format!("http://{}", daemon.addr);
    let mut pending = String::new();
    for _ in 0..100 {
        let (ok, out, err) = cli(&["outbox", "list", "--status", "pending", "--format", "json", "--url", &url]);
        assert!(ok, "{err}");
        if out.lines().any(|l| l.contains("\"attempts\":1") || l.contains("\"attempts\":2")) {
            pending = out;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!got.lock().unwrap().is_empty(), "the receiver was tried");
    let row: serde_json::Value = serde_json::from_str(pending.lines().next().expect("a pending row")).unwrap();
    let id = row["id"].as_u64().unwrap().to_string();
    let (ok, out, err) = cli(&["outbox", "retry", &id, "--url", &url]);
    assert!(ok && out.contains("is due now"), "{out}{err}");
    let (ok, out, err) = cli(&["jobs", "list", "--url", &url]);
    assert!(ok && out.starts_with("ID") && out.contains("m1"), "{out}{err}");
    let job = out.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let (ok, out, err) = cli(&["jobs", "show", &job, "--url", &url]);
    assert!(ok && out.contains("status:") && out.contains("reasons:"), "{out}{err}");
    let (ok, out, err) = cli(&["jobs", "retry", &job, "--url", &url]);
    assert!(ok && out.contains("asked for again now"), "{out}{err}");
    let (ok, _, err) = cli(&["jobs", "show", "nobody", "--url", &url]);
    assert!(!ok && err.contains("HTTP 404"), "{err}");
    let (code, _, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");

    // Stopped: the same journal, in its file; what was pending still is.
    let state = state.display().to_string();
    let (ok, out, err) = cli(&["outbox", "list", "--status", "pending", "--state-dir", &state]);
    assert!(ok && out.starts_with("      ID") && out.contains("pending"), "{out}{err}");
    let (ok, out, err) = cli(&["jobs", "retry", &job, "--state-dir", &state]);
    assert!(ok && out.contains("at the daemon's next start"), "{out}{err}");
    let (ok, out, _) = cli(&["jobs", "list", "--status", "queued", "--state-dir", &state]);
    assert!(ok && out.contains(&job), "{out}");
    let (ok, _, err) = cli(&["outbox", "list", "--url", "https://127.0.0.1:1"]);
    assert!(!ok && err.contains("plain HTTP"), "{err}");
}
