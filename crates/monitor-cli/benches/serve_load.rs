//! A load generator for `model-monitor serve`: NDJSON batches over loopback.
//!
//! ```text
//! cargo bench -p monitor-cli --bench serve_load -- [--seconds 10] [--clients 4] [--batch 1000]
//!     [--models 100] [--max-requests 1000000] [--replay-records 1000000] [--config FILE]
//!     [--churn REQUESTS]
//! cargo xtask loadgen [same options]
//! ```
//!
//! It starts the release binary on 127.0.0.1 (port chosen by the system),
//! runs `--clients` connections that post batches of `--batch` records as
//! fast as answers come, for `--seconds` or `--max-requests` in all,
//! whichever ends first, then stops the daemon with SIGTERM. It prints
//! records accepted per second, request latency (p50, p99, max), the 429s,
//! the daemon's peak RSS, and checks that every acknowledged record was
//! processed (the daemon's summary). With `--churn N`, every N requests
//! the records move on to a new version of each model (`v1`, `v2`, ...), so
//! that new versions keep appearing and old ones go idle; the daemon's RSS
//! is then sampled every second and printed as a series, to show whether
//! it stays flat. Then it replays the same records with
//! `model-monitor replay` in the same run, for the ratio of the two.
//!
//! Every request goes to 127.0.0.1 only, and the run is bounded in count
//! and in time. Run as a test (`cargo test --benches`), it is a smoke run
//! of ten requests at most.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Options {
    seconds: u64,
    clients: usize,
    batch: usize,
    models: usize,
    max_requests: u64,
    replay_records: usize,
    config: Option<String>,
    churn: u64,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 10,
        clients: 4,
        batch: 1000,
        models: 100,
        max_requests: 1_000_000,
        replay_records: 1_000_000,
        config: None,
        churn: 0,
    };
    // Run as a test (`cargo test --benches`, without `--bench`): a brief
    // smoke run, unless options say otherwise.
    if !std::env::args().any(|a| a == "--bench") {
        (o.seconds, o.clients, o.max_requests, o.replay_records) = (1, 1, 10, 1_000);
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes this to every bench binary.
            "--bench" => {}
            "--seconds" => o.seconds = value().parse().expect("--seconds"),
            "--clients" => o.clients = value().parse().expect("--clients"),
            "--batch" => o.batch = value().parse().expect("--batch"),
            "--models" => o.models = value().parse().expect("--models"),
            "--max-requests" => o.max_requests = value().parse().expect("--max-requests"),
            "--replay-records" => o.replay_records = value().parse().expect("--replay-records"),
            "--config" => o.config = Some(value()),
            "--churn" => o.churn = value().parse().expect("--churn"),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(o.seconds <= 600, "--seconds is at most 600");
    assert!((1..=64).contains(&o.clients), "--clients is between 1 and 64");
    o
}

/// A record of `model`: latency, prediction, two features and a metric,
/// the five signals the default monitors watch.
fn record(model: usize, i: usize) -> String {
    let x = (i.wrapping_mul(2_654_435_761) % 10_000) as f64 / 100.0;
    let country = ["DE", "FR", "US", "JP"][i % 4];
    let prediction = if i % 7 == 0 { "fraud" } else { "legit" };
    format!(
        "{{\"model\":\"model-{model}\",\"version\":\"v{:06}\",\"id\":\"r{i}\",\"latency_ms\":{:.2},\"prediction\":\"{prediction}\",\"features\":{{\"amount\":{x},\"country\":\"{country}\"}},\"metrics\":{{\"accuracy\":0.9{}}}}}\n",
        1,
        5.0 + x / 10.0,
        i % 10
    )
}

/// Where each record of `body` spells its version's six digits.
fn version_offsets(body: &[u8]) -> Vec<usize> {
    let key = b"\"version\":\"v";
    body.windows(key.len()).enumerate().filter(|(_, w)| *w == key).map(|(i, _)| i + key.len()).collect()
}

/// Rewrites every record of `body` to version `v{generation}`.
fn set_version(body: &mut [u8], offsets: &[usize], generation: u64) {
    let digits = format!("{:06}", generation % 1_000_000);
    for &at in offsets {
        body[at..at + 6].copy_from_slice(digits.as_bytes());
    }
}

/// Bodies of `batch` records each, cycling over the models.
fn bodies(o: &Options) -> Vec<Arc<Vec<u8>>> {
    (0..16)
        .map(|b| {
            let mut body = String::with_capacity(o.batch * 200);
            for j in 0..o.batch {
                let i = b * o.batch + j;
                body.push_str(&record(i % o.models.max(1), i));
            }
            Arc::new(body.into_bytes())
        })
        .collect()
}

/// A keep-alive HTTP/1.1 connection that posts NDJSON.
struct Connection {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    fn post(&mut self, body: &[u8]) -> std::io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.stream = Some(BufReader::new(stream));
        }
        let Some(reader) = self.stream.as_mut() else { unreachable!() };
        let head = format!(
            "POST /v1/records HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let stream = reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))?;
        let mut length = 0usize;
        let mut close = false;
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            } else if lower == "connection: close" {
                close = true;
            }
        }
        let mut answer = vec![0; length];
        reader.read_exact(&mut answer)?;
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn peak_rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let o = options();
    let exe = env!("CARGO_BIN_EXE_model-monitor");
    let bodies = bodies(&o);
    println!(
        "serve_load: {} clients, batches of {} records over {} models, {} s at most, {} requests at most",
        o.clients, o.batch, o.models, o.seconds, o.max_requests
    );
    let mut serve = Command::new(exe);
    serve.args(["serve", "--listen", "127.0.0.1:0"]).env("RUST_LOG", "warn");
    if let Some(config) = &o.config {
        serve.args(["--config", config]);
    }
    let mut child = serve.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start the daemon");
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the daemon's address");
    let addr = first.trim().strip_prefix("listening on http://").expect("listening on ...").to_owned();
    assert!(addr.starts_with("127."), "loopback only: {addr}");

    let requests = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..o.clients)
        .map(|c| {
            let (addr, bodies, requests) = (addr.clone(), bodies.clone(), Arc::clone(&requests));
            let (max, churn) = (o.max_requests, o.churn);
            std::thread::spawn(move || {
                let mut connection = Connection { addr, stream: None };
                let (mut latencies, mut acked, mut refused, mut errors) = (Vec::new(), 0u64, 0u64, 0u64);
                // With churn, each client rewrites its own copies' versions.
                let mut own: Vec<(Vec<u8>, Vec<usize>, u64)> =
                    bodies.iter().map(|b| (b.to_vec(), version_offsets(b), 1)).collect();
                let mut i = c;
                loop {
                    let n = requests.fetch_add(1, Ordering::Relaxed);
                    if Instant::now() >= deadline || n >= max {
                        break;
                    }
                    let (body, offsets, generation) = &mut own[i % bodies.len()];
                    i += 1;
                    if churn > 0 && *generation != 1 + n / churn {
                        *generation = 1 + n / churn;
                        set_version(body, offsets, *generation);
                    }
                    let body = &*body;
                    let sent = Instant::now();
                    match connection.post(body) {
                        Ok(200) => {
                            latencies.push(sent.elapsed());
                            acked += 1;
                        }
                        Ok(429) => {
                            refused += 1;
                            // Retry-After is a second; a load test backs off briefly.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Ok(status) => panic!("unexpected status {status}"),
                        Err(_) => {
                            errors += 1;
                            connection.stream = None;
                        }
                    }
                }
                (latencies, acked, refused, errors)
            })
        })
        .collect();
    // The daemon's RSS once a second while the clients post.
    let sampler = {
        let requests = Arc::clone(&requests);
        let max = o.max_requests;
        std::thread::spawn(move || {
            let mut series = Vec::new();
            while Instant::now() < deadline && requests.load(Ordering::Relaxed) < max {
                std::thread::sleep(Duration::from_secs(1));
                series.push((started.elapsed().as_secs(), requests.load(Ordering::Relaxed), peak_rss_mib(pid).0));
            }
            series
        })
    };
    let mut latencies = Vec::new();
    let (mut acked, mut refused, mut errors) = (0u64, 0u64, 0u64);
    for w in workers {
        let (l, a, r, e) = w.join().expect("a client failed");
        latencies.extend(l);
        acked += a;
        refused += r;
        errors += e;
    }
    let elapsed = started.elapsed();
    let (rss, hwm) = peak_rss_mib(pid);
    let series = sampler.join().expect("the RSS sampler");
    if o.churn > 0 && !series.is_empty() {
        // Ten points over the run: seconds, records posted, versions so far, RSS.
        let step = series.len().div_ceil(10).max(1);
        println!("RSS over the run (s, records posted, versions per model, MiB):");
        for &(t, n, mib) in series.iter().step_by(step).chain(series.last()) {
            let posted = n * o.batch as u64;
            println!("  {t:>5} s  {posted:>11}  v{:<7}  {mib:>7.0}", 1 + n / o.churn);
        }
    }
    latencies.sort_unstable();
    let records = acked * o.batch as u64;
    let rate = records as f64 / elapsed.as_secs_f64();
    let kill = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
    assert!(kill.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).expect("the summary");
    let status = child.wait().expect("the daemon's exit");
    let summary: serde_json::Value =
        rest.lines().last().and_then(|l| serde_json::from_str(l).ok()).expect("a summary line");
    let processed = summary["summary"]["records"].as_u64().unwrap_or(0);
    println!("elapsed            {:.2} s", elapsed.as_secs_f64());
    println!("requests           {acked} accepted, {refused} answered 429, {errors} failed");
    println!("records accepted   {records} ({rate:.0} records/s)");
    println!(
        "request latency    p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!("daemon RSS         {rss:.0} MiB at the end, {hwm:.0} MiB at peak");
    println!(
        "processed          {processed} (exit {status}; every acknowledged record processed: {})",
        processed >= records
    );
    assert!(status.success(), "the daemon failed");
    assert!(processed >= records, "acknowledged records were lost: {processed} < {records}");

    // The same records through `replay`, in the same run.
    let replayed = (records as usize).min(o.replay_records).max(o.batch);
    let dir = std::env::temp_dir().join(format!("model-monitor-serve-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let file = dir.join("records.ndjson");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("the replay file"));
        for b in 0..replayed.div_ceil(o.batch) {
            out.write_all(&bodies[b % bodies.len()]).expect("write");
        }
        out.flush().expect("flush");
    }
    let shards = std::thread::available_parallelism().map_or(2, usize::from).to_string();
    let mut replay = Command::new(exe);
    replay.args(["replay", "--shards", &shards]).arg(&file).env("RUST_LOG", "error");
    if let Some(config) = &o.config {
        replay.args(["--config", config]);
    }
    let t = Instant::now();
    let out = replay.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("replay");
    let replay_time = t.elapsed();
    let replayed = replayed.div_ceil(o.batch) * o.batch;
    let replay_rate = replayed as f64 / replay_time.as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "replay             {replayed} records in {:.2} s ({replay_rate:.0} records/s, exit {out}); HTTP / replay = {:.2}",
        replay_time.as_secs_f64(),
        rate / replay_rate
    );
}
