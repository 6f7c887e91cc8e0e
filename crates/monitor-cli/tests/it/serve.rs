//! `model-monitor serve`, as the real binary, over HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{bin, scratch, text};

const CONFIG: &str = r#"
[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 100, max = 1000.0 }

[engine]
shards = 2
"#;

/// A running `serve`: the child, its address, and its stdout after the
/// first line.
pub(super) struct Daemon {
    pub(super) child: Child,
    pub(super) addr: String,
    stdout: BufReader<ChildStdout>,
    stderr: std::path::PathBuf,
}

pub(super) fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Daemon {
    std::fs::write(dir.join("monitor.toml"), config).unwrap();
    let stderr = dir.join("stderr.log");
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("monitor.toml"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").unwrap_or_else(|| {
        panic!("no address in {first:?}; stderr: {}", std::fs::read_to_string(&stderr).unwrap_or_default())
    });
    Daemon { addr: addr.to_owned(), child, stdout, stderr }
}

impl Daemon {
    /// Sends SIGTERM; returns the exit code, the summary line and stderr.
    pub(super) fn terminate(mut self) -> (Option<i32>, serde_json::Value, String) {
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let stderr = std::fs::read_to_string(&self.stderr).unwrap();
        let last = rest.lines().last().unwrap_or_else(|| panic!("no summary; stderr: {stderr}"));
        (status.code(), serde_json::from_str(last).unwrap(), stderr)
    }
}

/// One HTTP/1.1 request on its own connection: the status and the body.
pub(super) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:?}")))?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

pub(super) const NDJSON: (&str, &str) = ("Content-Type", "application/x-ndjson");

#[test]
fn sigterm_while_clients_post_processes_every_acknowledged_record() {
    let dir = scratch("serve-sigterm");
    let daemon = start(dir.path(), CONFIG, &[]);
    let acked = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (addr, acked, sent, stop) =
                (daemon.addr.clone(), Arc::clone(&acked), Arc::clone(&sent), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Bounded: at most 20,000 requests, and it ends at the first refusal after the signal.
                for i in 0..20_000u64 {
                    let body: String =
                        (0..100).map(|j| format!("{{\"model\": \"m{c}-{}\", \"latency_ms\": {j}}}\n", i % 4)).collect();
                    sent.fetch_add(100, Ordering::SeqCst);
                    match http(&addr, "POST", "/v1/records", &[NDJSON], body.as_bytes()) {
                        Ok((200, _)) => {
                            acked.fetch_add(100, Ordering::SeqCst);
                        }
                        Ok((429, _)) => {}
                        // 503 once shutting down, or the connection refused once stopped.
                        Ok((503, _)) | Err(_) if stop.load(Ordering::SeqCst) => return,
                        other => panic!("unexpected answer {other:?}"),
                    }
                }
            })
        })
        .collect();
    for _ in 0..6000 {
        if acked.load(Ordering::SeqCst) >= 5_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(acked.load(Ordering::SeqCst) >= 5_000, "the clients got too few answers");
    stop.store(true, Ordering::SeqCst);
    let (code, last, stderr) = daemon.terminate();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(last["stopped_by"], "SIGTERM");
    let summary = &last["summary"];
    let processed = summary["records"].as_u64().unwrap();
    let (acked, sent) = (acked.load(Ordering::SeqCst), sent.load(Ordering::SeqCst));
    // Every record acknowledged was processed; a request cut off by the
    // stop may have gone in without its answer reaching the client.
    assert!(processed >= acked, "processed {processed} < acknowledged {acked}\n{stderr}");
    assert!(processed <= sent, "processed {processed} > sent {sent}");
    assert_eq!(summary["rejected"], 0);
    assert_eq!(summary["unfinished"], serde_json::json!([]));
    assert!(stderr.contains("SIGTERM"), "{stderr}");
}

#[test]
fn the_token_guards_writes_and_reads_when_configured() {
    let dir = scratch("serve-token");
    let config = format!("{CONFIG}\n[server]\ntoken_env = \"MM_CLI_TEST_TOKEN\"\nprotect_reads = true\n");
    let secret = "sekrit-4f1b9c";
    let daemon = start(dir.path(), &config, &[("MM_CLI_TEST_TOKEN", secret)]);
    let record = b"{\"model\": \"guarded\", \"latency_ms\": 1}\n";
    let bearer = format!("Bearer {secret}");
    let (status, body) = http(&daemon.addr, "POST", "/v1/records", &[NDJSON], record).unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(secret));
    let wrong = http(&daemon.addr, "POST", "/v1/records", &[NDJSON, ("Authorization", "Bearer sekrit-4f1b9")], record);
    assert_eq!(wrong.unwrap().0, 401);
    let right = http(&daemon.addr, "POST", "/v1/records", &[NDJSON, ("Authorization", &bearer)], record).unwrap();
    assert_eq!(right.0, 200, "{}", right.1);
    assert_eq!(http(&daemon.addr, "GET", "/v1/models", &[], b"").unwrap().0, 401);
    assert_eq!(http(&daemon.addr, "GET", "/metrics", &[], b"").unwrap().0, 401);
    let (status, models) = http(&daemon.addr, "GET", "/v1/models", &[("Authorization", &bearer)], b"").unwrap();
    assert_eq!(status, 200);
    assert!(models.contains("guarded"), "{models}");
    // The probes never ask.
    assert_eq!(http(&daemon.addr, "GET", "/healthz", &[], b"").unwrap().0, 200);
    let (code, last, stderr) = daemon.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(last["summary"]["records"], 1);
    assert!(!stderr.contains(secret), "the token leaked into the log: {stderr}");
}

#[test]
fn serve_refuses_what_it_cannot_guard() {
    let dir = scratch("serve-refuse");
    std::fs::write(
        dir.path().join("monitor.toml"),
        format!("{CONFIG}\n[server]\ntoken_env = \"MM_CLI_TEST_UNSET_TOKEN\"\n"),
    )
    .unwrap();
    let out = bin()
        .args(["serve", "--config"])
        .arg(dir.path().join("monitor.toml"))
        .env_remove("MM_CLI_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("server.token_env") && stderr.contains("MM_CLI_TEST_UNSET_TOKEN"), "{stderr}");
    // Refused before anything listens.
    let out = bin().args(["serve", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("--insecure"), "{stderr}");
}

#[test]
fn a_restarted_daemon_carries_on_from_the_state_in_its_journal() {
    let dir = scratch("serve-journal");
    let config = format!(
        "[engine]\nshards = 2\nstate_dir = {:?}\n\n[[monitors]]\nsignal = \"latency_ms\"\n\
         detector = {{ kind = \"threshold\", statistic = \"mean\", window = 2, max = 400.0 }}\n\n[policy]\nmin_samples = 2\n",
        dir.path().join("state").display().to_string()
    );
    let post = |daemon: &Daemon, ms: u32| {
        let body = format!("{{\"model\": \"search\", \"latency_ms\": {ms}}}\n");
        let (status, body) = http(&daemon.addr, "POST", "/v1/records", &[NDJSON], body.as_bytes()).unwrap();
        assert_eq!(status, 200, "{body}");
    };
    // Windows of two records, one after the other: 10 then 500 (mean 255),
    // then 500 and 500 (mean 500 > 400). A state that forgot the 10 would
    // fire on the first two 500s; the restored one fires only on the third.
    let daemon = start(dir.path(), &config, &[]);
    post(&daemon, 10);
    let (code, last, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!((last["summary"]["records"].as_u64(), last["summary"]["findings"].as_u64()), (Some(1), Some(0)));
    let daemon = start(dir.path(), &config, &[]);
    post(&daemon, 500);
    post(&daemon, 500);
    let (code, last, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("model state restored from the journal"), "{stderr}");
    assert_eq!((last["summary"]["records"].as_u64(), last["summary"]["findings"].as_u64()), (Some(3), Some(0)));
    let daemon = start(dir.path(), &config, &[]);
    post(&daemon, 500);
    let (code, last, stderr) = daemon.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        (last["summary"]["records"].as_u64(), last["summary"]["findings"].as_u64()),
        (Some(4), Some(1)),
        "{stderr}"
    );
}

/// A receiver on 127.0.0.1 that answers 200 to every request and counts them.
fn receiver() -> (String, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, count)
}

#[test]
fn metrics_count_deliveries_per_receiver() {
    let dir = scratch("serve-deliveries");
    let (hook, received) = receiver();
    let config = format!(
        r#"
[[monitors]]
signal = "latency_ms"
detector = {{ kind = "threshold", statistic = "mean", window = 2, max = 100.0 }}

[[observers]]
kind = "webhook"
url = "http://{hook}/hooks/secret-path"
format = "json"
events = ["finding"]
"#
    );
    let daemon = start(dir.path(), &config, &[]);
    let body = "{\"model\":\"m\",\"latency_ms\":500}\n{\"model\":\"m\",\"latency_ms\":700}\n";
    let (status, answer) =
        http(&daemon.addr, "POST", "/v1/records", &[("Content-Type", "application/x-ndjson")], body.as_bytes())
            .unwrap();
    assert_eq!(status, 200, "{answer}");
    let mut line = String::new();
    for _ in 0..200 {
        let (_, metrics) = http(&daemon.addr, "GET", "/metrics", &[], b"").unwrap();
        if let Some(l) = metrics
            .lines()
            .find(|l| l.starts_with("model_monitor_webhook_deliveries_total{") && l.contains("outcome=\"delivered\""))
        {
            line = l.to_owned();
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(received.load(Ordering::SeqCst) >= 1, "the receiver got the finding");
    assert!(line.contains(&format!("receiver=\"http://{hook}\"")), "{line}");
    assert!(line.ends_with(" 1"), "{line}");
    // The URL's path may hold a secret: it never appears as a label.
    assert!(!line.contains("secret-path"), "{line}");
    let (code, _, _) = daemon.terminate();
    assert_eq!(code, Some(0));
}
