//! `cargo xtask chaos`: the daemon killed with SIGKILL at random moments
//! while records stream in over HTTP and its receivers fail, then checked
//! for anything lost or done twice.
//!
//! It builds `model-monitor`, starts `serve` with a journal as a child
//! process, and streams NDJSON requests of 50 records (4 models) with two
//! planted drifts: `m1` and `m3` slow down from known requests on. Each
//! cycle restarts the daemon, posts a few requests, and SIGKILLs it at a
//! random moment, often mid-request. Meanwhile its two receivers on
//! 127.0.0.1, a webhook and an Airflow that dedupes runs by `dag_run_id`,
//! answer 200, answer 500, hang, or go down and come back. A request cut
//! off by a kill is not sent again (its fate is unknown: all of it
//! processed, or none). At the end the daemon runs once more with the
//! receivers up, drains, stops with SIGTERM, and the run checks:
//!
//! - records: processed = acknowledged + whole requests of those cut off
//!   (lost = acknowledged not processed; duplicated = processed beyond that);
//! - every planted drift found and its alert delivered at least once, and
//!   no delivery left pending in the outbox;
//! - one retrain job per planted drift, each run triggered under one
//!   `dag_run_id` (posted again after a kill, it counts once);
//! - the journal passes SQLite's `PRAGMA integrity_check`.

mod net;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use self::net::{Mode, Receiver, Sent};

/// Records per request.
const BATCH: usize = 50;
/// Models in the stream.
const MODELS: usize = 4;
/// Requests in the stream at least.
const MIN_REQUESTS: usize = 40;
/// The pause between two requests of the client.
const PACE: Duration = Duration::from_millis(15);
/// The planted drifts: (model, first slow request).
const DRIFTS: [(usize, usize); 2] = [(1, 8), (3, 24)];

/// What the run found, for docs/RELIABILITY.md.
#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    requests_acked: usize,
    requests_cut_off: usize,
    records_acked: u64,
    records_processed: u64,
    lost: u64,
    duplicated: u64,
    alerts: usize,
    jobs: usize,
    pending: usize,
}

/// A small PRNG (xorshift64*): the run is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Request `i` of the stream: 50 records, one model in four each.
fn body(i: usize) -> String {
    (0..BATCH)
        .map(|j| {
            let model = j % MODELS;
            let slow = DRIFTS.iter().any(|&(m, from)| m == model && i >= from);
            let latency = if slow { 900 + j } else { 100 + (i * 7 + j) % 20 };
            let second = i * BATCH + j;
            format!(
                "{{\"model\": \"m{model}\", \"latency_ms\": {latency}, \"ts\": \"2024-05-{:02}T{:02}:{:02}:{:02}Z\"}}\n",
                1 + second / 86_400 % 28,
                second / 3600 % 24,
                second / 60 % 60,
                second % 60
            )
        })
        .collect()
}

fn config(state: &Path, hook: &Receiver, airflow: &Receiver) -> String {
    format!(
        r#"[[monitors]]
signal = "latency_ms"
detector = {{ kind = "threshold", statistic = "mean", window = 20, max = 500.0 }}

[policy]
min_samples = 20

[engine]
shards = 2
state_dir = "{state}"
checkpoint_interval = "1s"
shutdown_timeout = "20s"

[[observers]]
kind = "webhook"
url = "http://{hook}/hook"
events = ["finding"]
timeout = "1s"
retry = {{ max_attempts = 3, backoff = "50ms", max_backoff = "400ms" }}
shutdown_timeout = "5s"

[[observers]]
kind = "retrain"
retry = {{ max_attempts = 20, backoff = "50ms", max_backoff = "400ms" }}
shutdown_timeout = "10s"
dispatch = {{ kind = "http", preset = "airflow", url = "http://{airflow}", dag_id = "retrain_model", timeout = "1s" }}
"#,
        state = state.display(),
        hook = hook.addr,
        airflow = airflow.addr,
    )
}

/// A running daemon.
struct Daemon {
    child: Child,
    addr: String,
    stdout: BufReader<std::process::ChildStdout>,
}

fn start(bin: &Path, dir: &Path) -> Result<Daemon> {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("daemon.log"))?;
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.join("monitor.toml"))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let mut stdout = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let Some(addr) = first.trim().strip_prefix("listening on http://") else {
        let _ = child.kill();
        bail!("the daemon did not start (see {}): {first:?}", dir.join("daemon.log").display());
    };
    Ok(Daemon { addr: addr.to_owned(), child, stdout })
}

/// Posts requests `next..` until `stop`, or the daemon is gone; returns
/// the next request not sent, with the outcome of each one sent.
fn stream(addr: &str, mut next: usize, limit: usize, stop: &AtomicBool, log: &Mutex<Vec<(usize, Sent)>>) -> usize {
    while next < limit && !stop.load(Ordering::SeqCst) {
        let sent = net::post(addr, &body(next));
        match sent {
            Sent::Unreached => return next,
            Sent::Refused(429 | 503) => std::thread::sleep(Duration::from_millis(20)),
            other => {
                // A steady client, not a flood: the ingest log past a
                // checkpoint stays a few seconds' worth.
                std::thread::sleep(PACE);
                log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((next, other));
                next += 1;
                if other == Sent::Unknown {
                    return next;
                }
            }
        }
    }
    next
}

/// Runs the chaos: `kills` SIGKILLs, from `seed`.
pub(crate) fn run(bin: &Path, kills: usize, seed: u64) -> Result<()> {
    let started = Instant::now();
    let dir = tempdir()?;
    let state = dir.join("state");
    let hook = Receiver::start()?;
    let airflow = Receiver::start()?;
    std::fs::write(dir.join("monitor.toml"), config(&state, &hook, &airflow))?;
    let mut rng = Rng(seed.max(1));
    let total = MIN_REQUESTS.max(kills * 3);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut next = 0;
    let mut tally = Tally::default();
    let modes = [Mode::Ok, Mode::Ok, Mode::Error, Mode::Hang, Mode::Down];
    for _ in 0..kills {
        hook.set(modes[rng.below(modes.len() as u64) as usize]);
        airflow.set(modes[rng.below(modes.len() as u64) as usize]);
        let mut daemon = start(bin, &dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, from, s, l) = (daemon.addr.clone(), next, Arc::clone(&stop), Arc::clone(&log));
        let poster = std::thread::spawn(move || stream(&addr, from, usize::MAX, &s, &l));
        std::thread::sleep(Duration::from_millis(50 + rng.below(1500)));
        daemon.child.kill().context("SIGKILL")?;
        daemon.child.wait()?;
        stop.store(true, Ordering::SeqCst);
        next = poster.join().map_err(|_| anyhow::anyhow!("the client thread panicked"))?;
        tally.kills += 1;
    }
    // The rest of the stream, with the receivers up; then drain and stop.
    hook.set(Mode::Ok);
    airflow.set(Mode::Ok);
    let daemon = start(bin, &dir)?;
    let never = AtomicBool::new(false);
    next = stream(&daemon.addr, next, total.max(next + 8), &never, &log);
    let _ = next;
    wait_until(Duration::from_secs(30), || {
        let alerts = alerts(&hook);
        DRIFTS.iter().all(|(m, _)| alerts.iter().any(|(model, _)| model == &format!("m{m}")))
            && airflow.runs.lock().map(|r| r.len() >= DRIFTS.len()).unwrap_or(false)
    });
    // Let deliveries of the last findings settle before asking the outbox.
    wait_until(Duration::from_secs(30), || pending(bin, &state).is_ok_and(|n| n == 0));
    let summary = terminate(daemon)?;
    tally.records_processed = number(&summary, "records").context("no `records` in the summary")?;

    let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tally.requests_acked = log.iter().filter(|(_, s)| *s == Sent::Acked).count();
    tally.requests_cut_off = log.iter().filter(|(_, s)| *s == Sent::Unknown).count();
    tally.records_acked = (tally.requests_acked * BATCH) as u64;
    let beyond = tally.records_processed.saturating_sub(tally.records_acked);
    tally.lost = tally.records_acked.saturating_sub(tally.records_processed);
    // Requests cut off by a kill were processed whole or not at all.
    let whole = beyond % BATCH as u64 == 0 && beyond <= (tally.requests_cut_off * BATCH) as u64;
    tally.duplicated = if whole { 0 } else { beyond };
    let alerts = alerts(&hook);
    tally.alerts = alerts.len();
    let runs = airflow.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    tally.jobs = runs.len();
    tally.pending = pending(bin, &state)?;

    let mut problems = Vec::new();
    if tally.lost > 0 || tally.duplicated > 0 {
        problems.push(format!(
            "records: {} acknowledged, {} processed ({} requests cut off by kills)",
            tally.records_acked, tally.records_processed, tally.requests_cut_off
        ));
    }
    for (m, from) in DRIFTS {
        if !alerts.iter().any(|(model, _)| model == &format!("m{m}")) {
            problems.push(format!("the drift planted in m{m} from request {from} was not alerted"));
        }
    }
    if runs.len() != DRIFTS.len() {
        problems.push(format!("{} distinct retrain runs for {} planted drifts: {runs:?}", runs.len(), DRIFTS.len()));
    }
    if tally.pending > 0 {
        problems.push(format!("{} deliveries still pending in the outbox", tally.pending));
    }
    let check = Command::new(bin).args(["jobs", "list", "--state-dir"]).arg(&state).output()?;
    if !check.status.success() {
        problems.push(format!("the journal failed its integrity check: {}", String::from_utf8_lossy(&check.stderr)));
    }
    println!(
        "chaos: {} kills survived; {} requests acknowledged ({} records), {} cut off by a kill; \
         {} records processed; {} alerts and {} retrain runs checked; {} pending; lost: {}, duplicated: {}; \
         seed {seed}, {:.1}s",
        tally.kills,
        tally.requests_acked,
        tally.records_acked,
        tally.requests_cut_off,
        tally.records_processed,
        tally.alerts,
        tally.jobs,
        tally.pending,
        tally.lost,
        tally.duplicated,
        started.elapsed().as_secs_f64()
    );
    if !problems.is_empty() {
        bail!("chaos found problems (files kept in {}):\n  {}", dir.display(), problems.join("\n  "));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The findings the webhook received: (model, seq), once each.
fn alerts(hook: &Receiver) -> std::collections::BTreeSet<(String, String)> {
    let bodies = hook.bodies.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    bodies
        .iter()
        .filter(|b| net::field(b, "type") == Some("finding"))
        .filter_map(|b| Some((net::field(b, "model")?.to_owned(), net::field(b, "seq")?.to_owned())))
        .collect()
}

/// Deliveries pending in the outbox, read from the journal file.
fn pending(bin: &Path, state: &Path) -> Result<usize> {
    let out = Command::new(bin)
        .args(["outbox", "list", "--status", "pending", "--limit", "1000", "--format", "json", "--state-dir"])
        .arg(state)
        .output()?;
    if !out.status.success() {
        bail!("outbox list failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().count())
}

/// SIGTERM; the summary line.
fn terminate(mut daemon: Daemon) -> Result<String> {
    let status = Command::new("kill").args(["-TERM", &daemon.child.id().to_string()]).status()?;
    if !status.success() {
        bail!("kill -TERM failed");
    }
    let exit = daemon.child.wait()?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut daemon.stdout, &mut rest)?;
    if !exit.success() {
        bail!("the daemon exited with {exit} on SIGTERM");
    }
    rest.lines().last().map(str::to_owned).context("no summary line")
}

/// The number after `"key":` in a JSON line.
fn number(line: &str, key: &str) -> Option<u64> {
    net::field(line, key)?.parse().ok()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !done() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("model-monitor-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
