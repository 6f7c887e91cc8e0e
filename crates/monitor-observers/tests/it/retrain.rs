//! The retrain scheduler against real child processes and scripted
//! dispatchers. Most tests run on a current-thread runtime: that a job
//! started there ends, and `flush` returns, shows that nothing blocks the
//! runtime's one thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use monitor_core::Result;
use monitor_core::dispatch::{DispatchOutcome, Dispatcher};
use monitor_core::event::{Event, EventKind, JobStatus, RetrainJob};
use monitor_core::observer::{EventPublisher, Observer};
use monitor_observers::dispatch::{ChannelDispatcher, CommandDispatcher};
use monitor_observers::retrain::RetrainScheduler;
use monitor_observers::retry::RetryPolicy;
use tokio::sync::{Semaphore, mpsc};
use uuid::Uuid;

use crate::support::{Published, retrain_event};

const WAIT: Duration = Duration::from_secs(10);

/// A dispatcher that reports each job it starts and waits for a release.
struct Gated {
    started: mpsc::UnboundedSender<RetrainJob>,
    release: Arc<Semaphore>,
}

#[async_trait]
impl Dispatcher for Gated {
    fn kind(&self) -> &str {
        "gated"
    }

    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
        self.started.send(job.clone()).unwrap();
        self.release.acquire().await.unwrap().forget();
        Ok(DispatchOutcome::succeeded("released"))
    }
}

/// A gated dispatcher, the jobs it starts, and its release (one permit per job).
fn gated() -> (Gated, mpsc::UnboundedReceiver<RetrainJob>, Arc<Semaphore>) {
    let (started, started_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    (Gated { started, release: Arc::clone(&release) }, started_rx, release)
}

async fn next(started: &mut mpsc::UnboundedReceiver<RetrainJob>) -> RetrainJob {
    tokio::time::timeout(WAIT, started.recv()).await.unwrap().unwrap()
}

fn attached(scheduler: &mut RetrainScheduler) -> Published {
    let published = Published::default();
    scheduler.attach(Arc::new(published.clone()));
    published
}

fn detail_of(published: &Published, job: Uuid, status: JobStatus) -> String {
    published
        .statuses()
        .into_iter()
        .find(|(id, s, _)| *id == job && *s == status)
        .and_then(|(_, _, detail)| detail)
        .unwrap_or_default()
}

#[tokio::test]
async fn command_dispatcher_really_runs_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        r#"echo "$1 $2 $3" > "$3.args"; cat > "$3.stdin"; printf %s "$MODEL_MONITOR_JOB" > "$3.env"; echo ran"#;
    let dispatcher = CommandDispatcher::new("sh")
        .args(["-c", script, "retrain", "{model}", "{version}", "{job_id}"])
        .current_dir(dir.path());
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let published = attached(&mut scheduler);
    let (job_id, event) = retrain_event("fraud", "accuracy");

    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();

    let read = |ext: &str| std::fs::read_to_string(dir.path().join(format!("{job_id}.{ext}"))).unwrap();
    assert_eq!(read("args").trim(), format!("fraud v3 {job_id}"));
    let stdin: serde_json::Value = serde_json::from_str(&read("stdin")).unwrap();
    assert_eq!(stdin["job_id"], job_id.to_string());
    assert_eq!(stdin["model"], "fraud");
    assert_eq!(stdin["reasons"][0]["signal"], "metrics.accuracy");
    let env: serde_json::Value = serde_json::from_str(&read("env")).unwrap();
    assert_eq!(env, stdin);

    assert_eq!(published.statuses_of(job_id), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Succeeded]);
    assert_eq!(detail_of(&published, job_id, JobStatus::Succeeded), "exit code 0");
    let events = published.events();
    assert!(events.iter().all(|e| e.key.model == "fraud" && e.key.version == "v3" && e.seq == 7));
    assert_eq!(scheduler.stats().succeeded(), 1);
}

#[tokio::test]
async fn reason_placeholder_and_failing_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let dispatcher = CommandDispatcher::new("sh")
        .args(["-c", r#"echo "$1" > reason.txt; exit 3"#, "retrain", "{reason}"])
        .current_dir(dir.path());
    let mut scheduler = RetrainScheduler::builder(dispatcher)
        .retry(RetryPolicy::new(2, Duration::from_millis(10), Duration::from_millis(10)))
        .build()
        .unwrap();
    let published = attached(&mut scheduler);
    let (job_id, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();

    let reason = std::fs::read_to_string(dir.path().join("reason.txt")).unwrap();
    assert_eq!(reason.trim(), "metrics.accuracy threshold drift");
    assert_eq!(
        published.statuses_of(job_id),
        [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Dispatched, JobStatus::Failed]
    );
    let (_, _, detail) = published.statuses().pop().unwrap();
    assert_eq!(detail.as_deref(), Some("exit code 3 (attempt 2 of 2)"));
    let attempts: Vec<String> = published
        .statuses()
        .into_iter()
        .filter(|(_, s, _)| *s == JobStatus::Dispatched)
        .filter_map(|(_, _, d)| d)
        .collect();
    assert_eq!(attempts, ["attempt 1 of 2", "attempt 2 of 2"]);
    assert_eq!(scheduler.stats().failed(), 1);
    assert_eq!(scheduler.stats().attempts(), 2);
}

/// Reads a pid that a script wrote, waiting until it is there.
async fn pid_in(path: &std::path::Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(pid) = std::fs::read_to_string(path) {
            if pid.ends_with('\n') {
                return pid.trim().to_owned();
            }
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the process is gone (or a zombie waiting for its new parent).
async fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.rsplit(')').next().is_some_and(|s| s.trim_start().starts_with('Z')) => return true,
            Ok(_) if Instant::now() > deadline => return false,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A script that starts a child in the background, writes both pids and waits.
const TWO_PROCESSES: &str = "sleep 30 & echo $! > child.pid; echo $$ > shell.pid; wait";

#[tokio::test]
async fn a_command_that_times_out_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough for the shell to write both pids, even on a busy machine.
    let dispatcher = CommandDispatcher::new("sh")
        .args(["-c", TWO_PROCESSES])
        .current_dir(dir.path())
        .timeout(Duration::from_secs(2));
    let (_, event) = retrain_event("fraud", "accuracy");
    let job = RetrainJob::from_event(&event).unwrap();

    let outcome = dispatcher.dispatch(&job).await.unwrap();
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: true, .. }), "{outcome:?}");
    assert!(outcome.detail().starts_with("timed out after 2s"), "{}", outcome.detail());

    for file in ["shell.pid", "child.pid"] {
        let pid = pid_in(&dir.path().join(file)).await;
        assert!(gone(&pid).await, "{file} {pid} still runs");
    }
}

#[tokio::test]
async fn a_dropped_dispatch_kills_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let dispatcher = CommandDispatcher::new("sh").args(["-c", TWO_PROCESSES]).current_dir(dir.path());
    let job = RetrainJob::from_event(&retrain_event("fraud", "accuracy").1).unwrap();
    let child_pid = dir.path().join("child.pid");
    let shell_pid = dir.path().join("shell.pid");
    // Dropped once both processes run.
    tokio::select! {
        outcome = dispatcher.dispatch(&job) => panic!("the command ended by itself: {outcome:?}"),
        _ = async { (pid_in(&child_pid).await, pid_in(&shell_pid).await) } => {}
    }
    for path in [shell_pid, child_pid] {
        let pid = pid_in(&path).await;
        assert!(gone(&pid).await, "{} {pid} still runs", path.display());
    }
}

#[tokio::test]
async fn a_missing_program_fails_without_retry() {
    let dispatcher = CommandDispatcher::new("/nonexistent/retrain-program");
    let (_, event) = retrain_event("fraud", "accuracy");
    let outcome = dispatcher.dispatch(&RetrainJob::from_event(&event).unwrap()).await.unwrap();
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: false, .. }), "{outcome:?}");
    assert!(outcome.detail().starts_with("could not start `/nonexistent/retrain-program`"), "{}", outcome.detail());
}

#[tokio::test]
async fn a_command_that_ignores_its_input_and_writes_much_still_finishes() {
    // More output than a pipe holds, and stdin never read: neither may stall the run.
    let dispatcher = CommandDispatcher::new("sh").args(["-c", "head -c 1000000 /dev/zero; echo done >&2"]);
    let job = RetrainJob::from_event(&retrain_event("fraud", "accuracy").1).unwrap();
    let outcome = dispatcher.dispatch(&job).await.unwrap();
    assert_eq!(outcome, DispatchOutcome::succeeded("exit code 0"));
}

#[tokio::test]
async fn one_job_in_flight_per_model_and_merges_name_their_job() {
    let (dispatcher, mut started, release) = gated();
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let published = attached(&mut scheduler);

    // fraud's first job starts and waits in the dispatcher.
    let (first, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    let running = next(&mut started).await;
    assert_eq!(running.job_id, first);

    // A second request for fraud is merged into the running job.
    let (second, event) = retrain_event("fraud", "f1_score");
    scheduler.on_event(&event).await.unwrap();
    // churn: one job queued, then a request merged into it while it waits.
    let (third, event) = retrain_event("churn", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    let (fourth, event) = retrain_event("churn", "drift_score");
    scheduler.on_event(&event).await.unwrap();

    release.add_permits(1);
    let queued = next(&mut started).await;
    release.add_permits(1);
    scheduler.flush().await.unwrap();

    assert_eq!(queued.job_id, third);
    let reasons: Vec<String> = queued.reasons.iter().map(|r| r.signal.to_string()).collect();
    assert_eq!(reasons, ["metrics.accuracy", "metrics.drift_score"]);
    assert!(started.try_recv().is_err(), "no other job was dispatched");

    let statuses = published.statuses();
    let merged: Vec<_> = statuses.iter().filter(|(_, s, _)| *s == JobStatus::Merged).collect();
    assert_eq!(merged.len(), 2);
    assert_eq!(merged[0].0, second);
    assert_eq!(merged[0].2.as_deref(), Some(format!("merged into job {first} (running)").as_str()));
    assert_eq!(merged[1].0, fourth);
    assert_eq!(merged[1].2.as_deref(), Some(format!("merged into job {third} (queued)").as_str()));
    assert_eq!(published.statuses_of(first).last(), Some(&JobStatus::Succeeded));
    assert_eq!(published.statuses_of(third).last(), Some(&JobStatus::Succeeded));
    assert_eq!(scheduler.stats().merged(), 2);
}

/// A dispatcher whose first job fails for good and whose later jobs succeed.
#[derive(Default)]
struct FailsFirst(AtomicUsize);

#[async_trait]
impl Dispatcher for FailsFirst {
    fn kind(&self) -> &str {
        "fails-first"
    }

    async fn dispatch(&self, _job: &RetrainJob) -> Result<DispatchOutcome> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        Ok(if n == 0 { DispatchOutcome::permanent("bad input") } else { DispatchOutcome::succeeded("ok") })
    }
}

#[tokio::test]
async fn a_request_after_a_job_ended_starts_a_new_job() {
    let mut scheduler = RetrainScheduler::new(FailsFirst::default());
    let published = attached(&mut scheduler);
    let (first, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(first), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Failed]);
    assert_eq!(detail_of(&published, first, JobStatus::Failed), "bad input (attempt 1 of 3)");
    // The failed job is over: the next request is not folded into it, it runs.
    let (second, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(second), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Succeeded]);
    // And after a success too.
    let (third, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(third), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Succeeded]);
    assert_eq!(scheduler.stats().merged(), 0);
    assert_eq!((scheduler.stats().failed(), scheduler.stats().succeeded()), (1, 2));
}

/// Collects statuses; holds the job task inside the `succeeded` of one job
/// until released, which is after that job has ended.
#[derive(Clone)]
struct HoldsSuccess {
    inner: Published,
    job: Uuid,
    reached: std::sync::mpsc::Sender<()>,
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
}

impl EventPublisher for HoldsSuccess {
    fn publish(&self, event: Event) {
        let hold =
            matches!(&event.kind, EventKind::JobStatus(u) if u.job_id == self.job && u.status == JobStatus::Succeeded);
        self.inner.publish(event);
        if hold {
            self.reached.send(()).unwrap();
            self.release.lock().unwrap().recv_timeout(WAIT).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_has_reported_its_end_takes_no_more_requests() {
    let (dispatcher, mut jobs) = ChannelDispatcher::new(8);
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let (first, event) = retrain_event("fraud", "accuracy");
    let (reached, reached_rx) = std::sync::mpsc::channel();
    let (release_tx, release) = std::sync::mpsc::channel();
    let published = Published::default();
    let release = Arc::new(std::sync::Mutex::new(release));
    scheduler.attach(Arc::new(HoldsSuccess { inner: published.clone(), job: first, reached, release }));
    scheduler.on_event(&event).await.unwrap();
    // The job task is inside the `succeeded` of the first job.
    reached_rx.recv_timeout(WAIT).unwrap();
    let (second, event) = retrain_event("fraud", "f1_score");
    scheduler.on_event(&event).await.unwrap();
    assert_eq!(published.statuses_of(second), [JobStatus::Queued], "not merged into a job that has ended");
    release_tx.send(()).unwrap();
    scheduler.flush().await.unwrap();
    let ids: Vec<Uuid> = std::iter::from_fn(|| jobs.try_recv().ok()).map(|job| job.job_id).collect();
    assert_eq!(ids, [first, second]);
    assert_eq!(published.statuses_of(second), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Succeeded]);
}

#[test]
fn cooldown_is_not_a_key_and_says_where_to_look() {
    let spec =
        serde_json::json!({"kind": "retrain", "cooldown": "30m", "dispatch": {"kind": "command", "program": "sh"}});
    let err = match monitor_observers::builtin_registry().build("observers[1]", &spec, &crate::support::ctx()) {
        Ok(_) => panic!("built with a cooldown"),
        Err(e) => e.to_string(),
    };
    assert!(err.starts_with("config error at `observers[1].cooldown`: is not a key of the retrain observer"), "{err}");
    assert!(err.contains("`[policy] cooldown`"), "{err}");
}

#[tokio::test]
async fn channel_dispatcher_hands_jobs_over() {
    let (dispatcher, mut jobs) = ChannelDispatcher::new(8);
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let published = attached(&mut scheduler);
    let (job_id, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    let job = jobs.try_recv().unwrap();
    assert_eq!((job.job_id, job.model.as_str(), job.version.as_str(), job.seq), (job_id, "fraud", "v3", 7));
    assert_eq!(published.statuses_of(job_id), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Succeeded]);
}

#[tokio::test]
async fn max_concurrent_runs_jobs_of_different_models_at_once() {
    let (dispatcher, mut started, release) = gated();
    let mut scheduler = RetrainScheduler::builder(dispatcher).max_concurrent(2).build().unwrap();
    let _published = attached(&mut scheduler);
    for model in ["fraud", "churn", "search"] {
        scheduler.on_event(&retrain_event(model, "accuracy").1).await.unwrap();
    }
    // Two start before either is released; the third waits for a place.
    let mut models = vec![next(&mut started).await.model, next(&mut started).await.model];
    models.sort();
    assert_eq!(models, ["churn", "fraud"]);
    assert!(started.try_recv().is_err());
    release.add_permits(1);
    assert_eq!(next(&mut started).await.model, "search");
    release.add_permits(2);
    scheduler.flush().await.unwrap();
    assert_eq!(scheduler.stats().succeeded(), 3);
}

#[tokio::test]
async fn a_full_queue_makes_requests_wait_never_fail() {
    let (dispatcher, mut started, release) = gated();
    let mut scheduler = RetrainScheduler::builder(dispatcher).queue(1).build().unwrap();
    let published = attached(&mut scheduler);
    scheduler.on_event(&retrain_event("a", "x").1).await.unwrap();
    next(&mut started).await;
    // `a` runs, `b` fills the queue of one.
    scheduler.on_event(&retrain_event("b", "x").1).await.unwrap();
    let (waiting, event) = retrain_event("c", "x");
    {
        let mut request = std::pin::pin!(scheduler.on_event(&event));
        // `c` finds no room: its request waits, rather than failing.
        tokio::select! {
            biased;
            result = &mut request => panic!("the request for c did not wait: {result:?}"),
            () = std::future::ready(()) => {}
        }
        assert!(published.statuses_of(waiting).is_empty());
        // `a` ends and `b` starts: room for `c`.
        release.add_permits(1);
        tokio::time::timeout(WAIT, &mut request).await.unwrap().unwrap();
    }
    assert_eq!(next(&mut started).await.model, "b");
    release.add_permits(2);
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(waiting), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Succeeded]);
    assert_eq!((scheduler.stats().succeeded(), scheduler.stats().failed(), scheduler.stats().refused()), (3, 0, 0));
}

#[tokio::test]
async fn two_hundred_requests_through_a_queue_of_two_all_run() {
    let (dispatcher, mut jobs) = ChannelDispatcher::new(256);
    let mut scheduler = RetrainScheduler::builder(dispatcher).queue(2).build().unwrap();
    let published = attached(&mut scheduler);
    for i in 0..200 {
        scheduler.on_event(&retrain_event(&format!("model-{i}"), "accuracy").1).await.unwrap();
    }
    scheduler.flush().await.unwrap();
    assert_eq!(std::iter::from_fn(|| jobs.try_recv().ok()).count(), 200);
    let failed = published.statuses().into_iter().filter(|(_, s, _)| *s == JobStatus::Failed).count();
    assert_eq!(failed, 0);
    assert_eq!(scheduler.stats().succeeded(), 200);
    assert_eq!(scheduler.losses(), monitor_core::observer::ObserverLosses::default());
}

/// A dispatcher that panics.
struct Panics;

#[async_trait]
impl Dispatcher for Panics {
    fn kind(&self) -> &str {
        "panics"
    }

    async fn dispatch(&self, _job: &RetrainJob) -> Result<DispatchOutcome> {
        panic!("a bug in a dispatcher")
    }
}

#[tokio::test]
async fn a_panicking_dispatcher_fails_its_job_not_the_scheduler() {
    let mut scheduler = RetrainScheduler::new(Panics);
    let published = attached(&mut scheduler);
    let (first, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(first), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Failed]);
    assert_eq!(detail_of(&published, first, JobStatus::Failed), "the dispatcher panicked (attempt 1 of 3)");
    // The scheduler goes on.
    let (second, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(second).last(), Some(&JobStatus::Failed));
}

#[tokio::test]
async fn flush_cuts_off_a_running_command_at_the_shutdown_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let dispatcher = CommandDispatcher::new("sh").args(["-c", TWO_PROCESSES]).current_dir(dir.path());
    let mut scheduler = RetrainScheduler::builder(dispatcher)
        .max_concurrent(1)
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let published = attached(&mut scheduler);
    let (running, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    let (waiting, event) = retrain_event("churn", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    let shell = pid_in(&dir.path().join("shell.pid")).await;
    let child = pid_in(&dir.path().join("child.pid")).await;

    scheduler.flush().await.unwrap();

    assert_eq!(published.statuses_of(running), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Failed]);
    assert_eq!(
        detail_of(&published, running, JobStatus::Failed),
        "cut off at shutdown during attempt 1 of 3, which was aborted"
    );
    assert_eq!(published.statuses_of(waiting), [JobStatus::Queued, JobStatus::Failed]);
    assert_eq!(detail_of(&published, waiting, JobStatus::Failed), "cut off at shutdown before it started");
    assert!(gone(&shell).await, "the shell {shell} still runs");
    assert!(gone(&child).await, "its child {child} still runs");
    assert_eq!(scheduler.stats().failed(), 2);

    // After the cut-off, a request is refused and said so.
    let (late, event) = retrain_event("search", "accuracy");
    let err = scheduler.on_event(&event).await.unwrap_err().to_string();
    assert!(err.contains("the scheduler has shut down"), "{err}");
    assert_eq!(published.statuses_of(late), [JobStatus::Failed]);
    // Every loss is counted: two jobs cut off, one request refused.
    assert_eq!(scheduler.losses(), monitor_core::observer::ObserverLosses { given_up: 2, dropped: 1 });
}

/// A dispatcher that fails, retryably, and says when it has been called.
struct FailsAndTells(mpsc::UnboundedSender<()>);

#[async_trait]
impl Dispatcher for FailsAndTells {
    fn kind(&self) -> &str {
        "fails"
    }

    async fn dispatch(&self, _job: &RetrainJob) -> Result<DispatchOutcome> {
        self.0.send(()).unwrap();
        Ok(DispatchOutcome::retryable("busy"))
    }
}

#[tokio::test]
async fn flush_cuts_off_a_job_waiting_to_retry() {
    let (called, mut calls) = mpsc::unbounded_channel();
    let mut scheduler = RetrainScheduler::builder(FailsAndTells(called))
        .retry(RetryPolicy::new(3, RetryPolicy::MAX_BACKOFF, RetryPolicy::MAX_MAX_BACKOFF))
        .shutdown_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let published = attached(&mut scheduler);
    let (job, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    // The first attempt has been made; its failure starts minutes of backoff.
    tokio::time::timeout(WAIT, calls.recv()).await.unwrap().unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(job), [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Failed]);
    assert_eq!(
        detail_of(&published, job, JobStatus::Failed),
        "cut off at shutdown before attempt 2 of 3, after attempt 1 failed"
    );
}

#[tokio::test]
async fn flush_within_the_default_deadline_waits_for_the_job() {
    let dir = tempfile::tempdir().unwrap();
    // Long enough that a flush which did not wait would see it still running.
    let dispatcher =
        CommandDispatcher::new("sh").args(["-c", "sleep 0.3; echo done > done.txt"]).current_dir(dir.path());
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let published = attached(&mut scheduler);
    let (job, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(published.statuses_of(job).last(), Some(&JobStatus::Succeeded));
    assert_eq!(std::fs::read_to_string(dir.path().join("done.txt")).unwrap().trim(), "done");
}

#[tokio::test]
async fn dropping_the_scheduler_leaves_no_command_running() {
    let dir = tempfile::tempdir().unwrap();
    let dispatcher = CommandDispatcher::new("sh").args(["-c", TWO_PROCESSES]).current_dir(dir.path());
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let published = attached(&mut scheduler);
    let (job, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    let shell = pid_in(&dir.path().join("shell.pid")).await;
    let child = pid_in(&dir.path().join("child.pid")).await;
    drop(scheduler);
    assert!(gone(&shell).await, "the shell {shell} still runs");
    assert!(gone(&child).await, "its child {child} still runs");
    let deadline = Instant::now() + WAIT;
    while published.statuses_of(job).last() != Some(&JobStatus::Failed) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(detail_of(&published, job, JobStatus::Failed).starts_with("cut off at shutdown"));
}

/// The names of the variables in an `env` dump.
fn names(dump: &str) -> std::collections::BTreeSet<String> {
    dump.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k.to_owned()).collect()
}

#[tokio::test]
async fn the_child_gets_a_clean_environment() {
    let dir = tempfile::tempdir().unwrap();
    // A variable of ours that is not in the safe set stands in for a secret.
    let secret = std::env::vars()
        .map(|(k, _)| k)
        .find(|k| !CommandDispatcher::SAFE_ENV.contains(&k.as_str()) && !k.starts_with("MODEL_MONITOR_"))
        .expect("the test runs with some variable beyond the safe set (cargo sets CARGO_*)");
    let run = |dispatcher: CommandDispatcher, file: &'static str| async move {
        let job = RetrainJob::from_event(&retrain_event("fraud", "accuracy").1).unwrap();
        let outcome = dispatcher.args(["-c", &format!("env > {file}")]).dispatch(&job).await.unwrap();
        assert!(outcome.is_success(), "{outcome:?}");
    };
    run(CommandDispatcher::new("sh").current_dir(dir.path()).env("MLFLOW_TRACKING_URI", "http://mlflow"), "clean.env")
        .await;
    let clean = names(&std::fs::read_to_string(dir.path().join("clean.env")).unwrap());
    // `sh` adds PWD, SHLVL and `_` of its own.
    let allowed: Vec<&str> = CommandDispatcher::SAFE_ENV
        .iter()
        .copied()
        .chain(["MLFLOW_TRACKING_URI", "MODEL_MONITOR_JOB", "MODEL_MONITOR_MODEL", "MODEL_MONITOR_VERSION"])
        .chain(["MODEL_MONITOR_JOB_ID", "PWD", "SHLVL", "_", "OLDPWD"])
        .collect();
    let extra: Vec<&String> = clean.iter().filter(|k| !allowed.contains(&k.as_str())).collect();
    assert!(extra.is_empty(), "the child inherited {extra:?}");
    assert!(!clean.contains(&secret));
    assert!(clean.contains("PATH") && clean.contains("MODEL_MONITOR_JOB") && clean.contains("MLFLOW_TRACKING_URI"));

    // What the config names is passed on.
    run(CommandDispatcher::new("sh").current_dir(dir.path()).inherit_env(secret.clone()), "named.env").await;
    let named = names(&std::fs::read_to_string(dir.path().join("named.env")).unwrap());
    assert!(named.contains(&secret), "{named:?}");
}

#[tokio::test]
async fn job_status_ts_is_the_request_event_time_and_at_the_wall_clock() {
    let (dispatcher, _jobs) = ChannelDispatcher::new(8);
    let mut scheduler = RetrainScheduler::new(dispatcher);
    let published = attached(&mut scheduler);
    let (job, mut event) = retrain_event("fraud", "accuracy");
    // Yesterday's log, replayed.
    event.ts = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:04:09Z").unwrap().into();
    let before = chrono::Utc::now();
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    let after = chrono::Utc::now();
    let updates: Vec<(chrono::DateTime<chrono::Utc>, monitor_core::event::JobUpdate)> = published
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::JobStatus(u) => Some((e.ts, u)),
            _ => None,
        })
        .collect();
    assert_eq!(updates.len(), 3);
    for (ts, update) in &updates {
        assert_eq!(update.job_id, job);
        assert_eq!(*ts, event.ts, "ts is event time");
        assert!(update.at >= before && update.at <= after, "at is the wall clock: {}", update.at);
    }
    let json = serde_json::to_value(&published.events()[0]).unwrap();
    assert_eq!(json["ts"], "2026-11-23T10:04:09Z");
    assert!(json["at"].as_str().is_some_and(|at| at.parse::<chrono::DateTime<chrono::Utc>>().is_ok()), "{json}");
}

/// A dispatcher that always fails, retryably.
struct AlwaysFails;

#[async_trait]
impl Dispatcher for AlwaysFails {
    fn kind(&self) -> &str {
        "down"
    }

    async fn dispatch(&self, _job: &RetrainJob) -> Result<DispatchOutcome> {
        Ok(DispatchOutcome::retryable("HTTP 503"))
    }
}

#[tokio::test]
async fn failed_jobs_are_losses_and_the_log_stays_quiet() {
    let mut scheduler = RetrainScheduler::builder(AlwaysFails)
        .retry(RetryPolicy::new(2, Duration::from_millis(1), Duration::from_millis(2)))
        .max_concurrent(4)
        .build()
        .unwrap();
    let _published = attached(&mut scheduler);
    let (logs, guard) = crate::support::capture_logs();
    for i in 0..20 {
        scheduler.on_event(&retrain_event(&format!("model-{i}"), "accuracy").1).await.unwrap();
    }
    scheduler.flush().await.unwrap();
    drop(guard);
    assert_eq!(scheduler.losses(), monitor_core::observer::ObserverLosses { given_up: 20, dropped: 0 });
    let warnings = logs.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("further failures of `down` are counted"), "{warnings:#?}");
}
