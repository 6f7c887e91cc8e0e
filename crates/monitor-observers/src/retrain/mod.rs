//! The retrain scheduler and its dispatchers.
//!
//! [`RetrainScheduler`] is an [`Observer`]: on each `retrain_requested` event it
//! builds the [`RetrainJob`] and puts it on a bounded queue. Worker threads
//! (`max_concurrent`, default 1) drain the queue and hand each job to a
//! [`Dispatcher`], which runs it (a command), hands it over (a channel) or
//! submits it to an engine (Airflow, Argo, GitHub Actions, any HTTP API).
//!
//! The job's lifecycle goes back onto the bus as `job_status` events:
//! `queued` → `dispatched` (once per attempt) → `succeeded` or `failed`. A
//! request for a model that already has a job queued or running is `merged`
//! into that job: its reasons are added to the job and the event's detail
//! names the job it joined. So there is never more than one job in flight per
//! model. Once a job has ended, however it ended, the next request for its
//! model starts a new job; spacing requests out is the retrain policy's
//! `cooldown`, in event time.
//!
//! Dispatchers run on the worker threads, never on the async runtime, so a
//! long-running command cannot stall ingestion.

mod channel;
mod command;
mod http;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use monitor_core::event::{Event, EventKind, JobStatus, JobUpdate, RetrainJob};
use monitor_core::observer::{EventPublisher, Observer};
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;

pub use self::channel::ChannelDispatcher;
pub use self::command::CommandDispatcher;
pub use self::http::{HttpDispatcher, HttpPreset};
use crate::retry::{RetryConfig, RetryPolicy};

/// Runs or submits a retraining job. Called on a scheduler worker thread, so
/// it may block (run a process, wait for an HTTP answer).
///
/// Return `Ok` with the outcome when the engine gave an answer, and `Err` when
/// it could not be reached at all; an `Err` is retried like a retryable
/// failure. A panic is caught and counts as a final failure.
pub trait Dispatcher: Send {
    /// The dispatcher's kind, as it appears in `job_status` events
    /// (`command`, `channel`, `airflow`, ...).
    fn kind(&self) -> &str;

    /// Runs or submits `job`.
    fn dispatch(&mut self, job: &RetrainJob) -> Result<DispatchOutcome>;
}

impl Dispatcher for Box<dyn Dispatcher> {
    fn kind(&self) -> &str {
        (**self).kind()
    }

    fn dispatch(&mut self, job: &RetrainJob) -> Result<DispatchOutcome> {
        (**self).dispatch(job)
    }
}

/// What a [`Dispatcher`] made of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchOutcome {
    /// The job ran and succeeded, or the engine accepted it (for engines that
    /// run it on their own, such as Airflow). Reported as `succeeded`.
    Succeeded {
        /// A short human detail: `exit status 0`, `airflow accepted run mm-…`.
        detail: String,
    },
    /// The attempt failed.
    Failed {
        /// A short human detail; never contains secrets.
        detail: String,
        /// Whether another attempt may succeed (a 503, a timeout, a non-zero
        /// exit) or not (a 400, a program that does not exist).
        retryable: bool,
    },
}

impl DispatchOutcome {
    /// A success with `detail`.
    pub fn succeeded(detail: impl Into<String>) -> Self {
        Self::Succeeded { detail: detail.into() }
    }

    /// A failure that another attempt may fix.
    pub fn retryable(detail: impl Into<String>) -> Self {
        Self::Failed { detail: detail.into(), retryable: true }
    }

    /// A failure that no retry will fix.
    pub fn permanent(detail: impl Into<String>) -> Self {
        Self::Failed { detail: detail.into(), retryable: false }
    }

    /// Whether this is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }

    /// The detail string.
    pub fn detail(&self) -> &str {
        match self {
            Self::Succeeded { detail } | Self::Failed { detail, .. } => detail,
        }
    }
}

/// Counters of a [`RetrainScheduler`], shared by clones.
#[derive(Debug, Clone, Default)]
pub struct SchedulerStats {
    inner: Arc<Mutex<StatsInner>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct StatsInner {
    queued: u64,
    merged: u64,
    succeeded: u64,
    failed: u64,
    attempts: u64,
}

impl SchedulerStats {
    fn update(&self, f: impl FnOnce(&mut StatsInner)) {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn get(&self) -> StatsInner {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Jobs accepted onto the queue.
    pub fn queued(&self) -> u64 {
        self.get().queued
    }

    /// Requests merged into a job already queued or running.
    pub fn merged(&self) -> u64 {
        self.get().merged
    }

    /// Jobs that succeeded.
    pub fn succeeded(&self) -> u64 {
        self.get().succeeded
    }

    /// Jobs that failed for good (after their last attempt), or that the
    /// queue could not take.
    pub fn failed(&self) -> u64 {
        self.get().failed
    }

    /// Dispatch attempts made, retries included.
    pub fn attempts(&self) -> u64 {
        self.get().attempts
    }
}

/// Where a model's live job is. A job that has ended has no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Running,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
        }
    }
}

#[derive(Debug)]
struct Slot {
    job: RetrainJob,
    phase: Phase,
}

#[derive(Debug, Default)]
struct State {
    /// The live (queued or running) job of each model, by model name.
    jobs: HashMap<String, Slot>,
    /// Jobs queued or running.
    active: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    publisher: Mutex<Option<Arc<dyn EventPublisher>>>,
    retry: RetryPolicy,
    stats: SchedulerStats,
    name: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, job: &RetrainJob, status: JobStatus, dispatcher: &str, detail: Option<String>) {
        tracing::info!(
            observer = %self.name,
            model = %job.model,
            version = %job.version,
            job_id = %job.job_id,
            %status,
            dispatcher,
            detail = detail.as_deref().unwrap_or(""),
            "retrain job {status}"
        );
        let event = Event::new(
            job.key(),
            Utc::now(),
            job.seq,
            EventKind::JobStatus(JobUpdate { job_id: job.job_id, status, dispatcher: dispatcher.to_owned(), detail }),
        );
        let publisher = self.publisher.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(publisher) = publisher {
            publisher.publish(event);
        }
    }

    /// Sleeps for `d`, waking early on shutdown. Returns false on shutdown.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

/// Builds a [`RetrainScheduler`] from code.
///
/// ```
/// # use monitor_observers::retrain::{ChannelDispatcher, RetrainScheduler};
/// # use monitor_observers::retry::RetryPolicy;
/// # use std::time::Duration;
/// let (dispatcher, jobs) = ChannelDispatcher::new(16);
/// let scheduler = RetrainScheduler::builder()
///     .queue(32)
///     .retry(RetryPolicy::new(5, Duration::from_secs(1), Duration::from_secs(60)))
///     .dispatcher(dispatcher)
///     .build();
/// # drop((scheduler, jobs));
/// ```
#[must_use]
pub struct RetrainSchedulerBuilder {
    queue: usize,
    retry: RetryPolicy,
    name: String,
    dispatchers: Vec<Box<dyn Dispatcher>>,
}

impl std::fmt::Debug for RetrainSchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrainSchedulerBuilder")
            .field("queue", &self.queue)
            .field("retry", &self.retry)
            .field("dispatchers", &self.dispatchers.iter().map(|d| d.kind().to_owned()).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for RetrainSchedulerBuilder {
    fn default() -> Self {
        Self {
            queue: RetrainScheduler::DEFAULT_QUEUE,
            retry: RetrainScheduler::DEFAULT_RETRY,
            name: "retrain".to_owned(),
            dispatchers: Vec::new(),
        }
    }
}

impl RetrainSchedulerBuilder {
    /// The capacity of the job queue (default 64). A request that finds it
    /// full is reported `failed` and returned as an error.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity.max(1);
        self
    }

    /// How failed attempts are retried (default: 3 attempts, 1s doubling to 1m).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The observer's name in logs (default `retrain`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Adds a worker thread with its own dispatcher. Each call adds one, so
    /// the number of calls is the number of jobs that may run at once
    /// (`max_concurrent`); one model never has two.
    pub fn dispatcher(mut self, dispatcher: impl Dispatcher + 'static) -> Self {
        self.dispatchers.push(Box::new(dispatcher));
        self
    }

    /// Starts the worker threads. Without any dispatcher, jobs are queued and
    /// reported `failed` ("no dispatcher").
    pub fn build(self) -> RetrainScheduler {
        let (tx, rx) = crossbeam_channel::bounded::<String>(self.queue);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            publisher: Mutex::new(None),
            retry: self.retry,
            stats: SchedulerStats::default(),
            name: self.name.clone(),
        });
        let kind = self.dispatchers.first().map_or_else(|| "none".to_owned(), |d| d.kind().to_owned());
        let mut dispatchers = self.dispatchers;
        if dispatchers.is_empty() {
            dispatchers.push(Box::new(NoDispatcher));
        }
        let mut workers = 0;
        for (i, dispatcher) in dispatchers.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let rx = rx.clone();
            let spawned = thread::Builder::new()
                .name(format!("{}-worker-{i}", self.name))
                .spawn(move || worker(&shared, &rx, dispatcher));
            match spawned {
                Ok(_) => workers += 1,
                Err(e) => tracing::error!(observer = %self.name, "could not start a retrain worker thread: {e}"),
            }
        }
        RetrainScheduler { shared, tx, capacity: self.queue, kind, workers, name: self.name }
    }
}

struct NoDispatcher;

impl Dispatcher for NoDispatcher {
    fn kind(&self) -> &str {
        "none"
    }

    fn dispatch(&mut self, _job: &RetrainJob) -> Result<DispatchOutcome> {
        Ok(DispatchOutcome::permanent("no dispatcher is configured"))
    }
}

/// Schedules retraining jobs: one bounded queue, worker threads, at most one
/// job in flight per model. See the [module docs](self).
///
/// ```
/// # use monitor_observers::retrain::{ChannelDispatcher, RetrainScheduler};
/// # use monitor_core::event::*;
/// # use monitor_core::observer::Observer;
/// # use monitor_core::record::ModelKey;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> monitor_core::Result<()> {
/// let (dispatcher, jobs) = ChannelDispatcher::new(16);
/// let mut scheduler = RetrainScheduler::new(dispatcher);
/// let request = RetrainRequest { job_id: uuid::Uuid::new_v4(), reasons: vec![] };
/// let event = Event::new(ModelKey::new("fraud", "v3"), chrono::Utc::now(), 7, EventKind::RetrainRequested(request));
/// scheduler.on_event(&event).await?;
/// scheduler.flush().await?; // waits until the job has been dispatched
/// assert_eq!(jobs.try_recv().map(|job| job.model).ok().as_deref(), Some("fraud"));
/// # Ok(()) }
/// ```
pub struct RetrainScheduler {
    shared: Arc<Shared>,
    tx: Sender<String>,
    capacity: usize,
    kind: String,
    workers: usize,
    name: String,
}

impl std::fmt::Debug for RetrainScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrainScheduler")
            .field("name", &self.name)
            .field("dispatcher", &self.kind)
            .field("workers", &self.workers)
            .field("queue", &self.capacity)
            .finish()
    }
}

impl RetrainScheduler {
    /// The default queue capacity.
    pub const DEFAULT_QUEUE: usize = 64;

    /// The default retry policy of jobs: 3 attempts, 1s doubling to 1m.
    pub const DEFAULT_RETRY: RetryPolicy =
        RetryPolicy { max_attempts: 3, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(60) };

    /// A scheduler with one worker and default settings.
    pub fn new(dispatcher: impl Dispatcher + 'static) -> Self {
        Self::builder().dispatcher(dispatcher).build()
    }

    /// A builder for other settings or more workers.
    pub fn builder() -> RetrainSchedulerBuilder {
        RetrainSchedulerBuilder::default()
    }

    /// Builds a scheduler from its config table (the `[[observers]]` entry
    /// without `kind`):
    ///
    /// ```toml
    /// [[observers]]
    /// kind = "retrain"
    /// dispatch = { kind = "command", program = "sh", args = ["-c", "./retrain.sh {model} {version} {job_id}"], timeout = "10m" }
    /// queue = 64              # optional
    /// max_concurrent = 1      # optional: jobs running at once, over all models
    /// retry = { max_attempts = 3, backoff = "1s", max_backoff = "1m" }   # optional
    /// ```
    ///
    /// HTTP engines (see [`HttpPreset`]), each with an optional
    /// `token_env` (a bearer token, read now) and `timeout`:
    ///
    /// ```toml
    /// dispatch = { kind = "http", preset = "airflow", url = "http://airflow:8080", dag_id = "retrain", token_env = "AIRFLOW_TOKEN" }
    /// dispatch = { kind = "http", preset = "argo", url = "https://argo:2746", namespace = "ml", template = "retrain" }
    /// dispatch = { kind = "http", preset = "github", owner = "acme", repo = "models", workflow = "retrain.yml", ref = "main", token_env = "GITHUB_TOKEN" }
    /// dispatch = { kind = "http", preset = "generic", url = "https://ml.internal/retrain/{model}", method = "POST", body = { job = "{job}" } }
    /// ```
    ///
    /// There is no `cooldown` key: a request joins its model's job only while
    /// that job is queued or running, and the retrain policy's `cooldown`
    /// spaces requests out. Giving one is a config error that says so.
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let (config, dispatch) = split_dispatch(config)?;
        let config: RetrainConfig = parse_config(config)?;
        if config.cooldown.is_some() {
            return Err(Error::config(
                "cooldown",
                "is not a key of the retrain observer: a request joins its model's job only while that job is queued \
                 or running, and starts a new job once it has ended; to space jobs out, set `[policy] cooldown` \
                 (event time)",
            ));
        }
        let max_concurrent = config.max_concurrent.unwrap_or(1);
        if max_concurrent == 0 {
            return Err(Error::config("max_concurrent", "must be at least 1"));
        }
        if config.queue == Some(0) {
            return Err(Error::config("queue", "must be at least 1"));
        }
        let dispatch: DispatchConfig = serde_json::from_value(dispatch).map_err(|e| {
            Error::config(
                "dispatch",
                format!("{e}; known dispatch kinds: command, http (presets airflow, argo, github, generic)"),
            )
        })?;
        let mut builder = Self::builder()
            .queue(config.queue.unwrap_or(Self::DEFAULT_QUEUE))
            .retry(config.retry.or(Self::DEFAULT_RETRY));
        if let Some(name) = config.name {
            builder = builder.name(name);
        }
        for _ in 0..max_concurrent {
            builder = match &dispatch {
                DispatchConfig::Command(c) => builder.dispatcher(CommandDispatcher::from_config(c.clone(), ctx)?),
                DispatchConfig::Http(c) => builder.dispatcher(HttpDispatcher::from_config(c.clone(), ctx)?),
            };
        }
        Ok(builder.build())
    }

    /// The scheduler's counters; clones share them.
    pub fn stats(&self) -> SchedulerStats {
        self.shared.stats.clone()
    }

    /// Handles a retrain request: merges it into its model's job if that is
    /// queued or running, or else queues a new job. Returns an error only
    /// when the queue is full.
    ///
    /// Its status is published under the state lock, which the worker takes
    /// before it starts a job and before it ends one: so `queued` comes
    /// before the job's `dispatched`, and `merged` before the end of the job
    /// it joined. (Publishing never blocks.)
    fn request(&self, job: RetrainJob) -> Result<()> {
        let mut state = self.shared.lock();
        // A slot is a live job: the worker removes it as the job ends.
        if let Some(slot) = state.jobs.get_mut(&job.model) {
            merge_reasons(&mut slot.job, &job);
            let detail = format!("merged into job {} ({})", slot.job.job_id, slot.phase.describe());
            self.shared.stats.update(|s| s.merged += 1);
            self.shared.publish(&job, JobStatus::Merged, &self.kind, Some(detail));
            return Ok(());
        }
        match self.tx.try_send(job.model.clone()) {
            Ok(()) => {
                state.jobs.insert(job.model.clone(), Slot { job: job.clone(), phase: Phase::Queued });
                state.active += 1;
                self.shared.stats.update(|s| s.queued += 1);
                self.shared.publish(&job, JobStatus::Queued, &self.kind, None);
                Ok(())
            }
            Err(e) => {
                drop(state);
                let detail = match e {
                    TrySendError::Full(_) => format!("retrain queue is full ({} jobs)", self.capacity),
                    TrySendError::Disconnected(_) => "retrain workers have stopped".to_owned(),
                };
                self.shared.stats.update(|s| s.failed += 1);
                self.shared.publish(&job, JobStatus::Failed, &self.kind, Some(detail.clone()));
                Err(Error::observer(&self.name, format!("job {} for {}: {detail}", job.job_id, job.model)))
            }
        }
    }
}

/// Adds the reasons of `request` to `job`, skipping those it already has
/// (same signal, detector and severity).
fn merge_reasons(job: &mut RetrainJob, request: &RetrainJob) {
    for reason in &request.reasons {
        let known = job
            .reasons
            .iter()
            .any(|r| r.signal == reason.signal && r.detector == reason.detector && r.severity == reason.severity);
        if !known {
            job.reasons.push(reason.clone());
        }
    }
}

impl Drop for RetrainScheduler {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        // Dropping `tx` disconnects the queue; idle workers wake and exit, a
        // busy one exits after its current attempt.
    }
}

#[async_trait]
impl Observer for RetrainScheduler {
    fn name(&self) -> &str {
        &self.name
    }

    fn attach(&mut self, publisher: Arc<dyn EventPublisher>) {
        *self.shared.publisher.lock().unwrap_or_else(PoisonError::into_inner) = Some(publisher);
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        match RetrainJob::from_event(event) {
            Some(job) => self.request(job),
            None => Ok(()),
        }
    }

    /// Waits, off the async runtime, until no job is queued or running.
    async fn flush(&mut self) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let wait = move || {
            let mut state = shared.lock();
            while state.active > 0 && !state.shutdown {
                state = shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(wait)
                .await
                .map_err(|e| Error::observer(&self.name, format!("flush was interrupted: {e}")))?;
        } else {
            wait();
        }
        Ok(())
    }
}

fn worker(shared: &Shared, rx: &Receiver<String>, mut dispatcher: Box<dyn Dispatcher>) {
    let kind = dispatcher.kind().to_owned();
    while let Ok(model) = rx.recv() {
        let job = {
            let mut state = shared.lock();
            if state.shutdown {
                break;
            }
            match state.jobs.get_mut(&model) {
                Some(slot) => {
                    slot.phase = Phase::Running;
                    slot.job.clone()
                }
                None => continue,
            }
        };
        let (status, detail) = run(shared, &model, job.clone(), dispatcher.as_mut());
        // The job ends before its end is told: from here on a request for
        // this model starts a new job rather than joining one that is over.
        let job = shared.lock().jobs.remove(&model).map_or(job, |slot| slot.job);
        match status {
            JobStatus::Succeeded => shared.stats.update(|s| s.succeeded += 1),
            _ => shared.stats.update(|s| s.failed += 1),
        }
        shared.publish(&job, status, &kind, Some(detail));
        let mut state = shared.lock();
        state.active = state.active.saturating_sub(1);
        drop(state);
        shared.changed.notify_all();
    }
}

/// Runs `job`'s attempts; returns how it ended (`succeeded` or `failed`) and
/// the detail, for the worker to report once the job is over.
fn run(shared: &Shared, model: &str, mut job: RetrainJob, dispatcher: &mut dyn Dispatcher) -> (JobStatus, String) {
    let kind = dispatcher.kind().to_owned();
    let max = shared.retry.max_attempts;
    for attempt in 1..=max {
        if attempt > 1 {
            // Reasons merged while the job waited are part of the retry.
            if let Some(slot) = shared.lock().jobs.get(model) {
                job = slot.job.clone();
            }
        }
        let detail = (max > 1).then(|| format!("attempt {attempt} of {max}"));
        shared.publish(&job, JobStatus::Dispatched, &kind, detail);
        shared.stats.update(|s| s.attempts += 1);
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| dispatcher.dispatch(&job)));
        let (detail, retryable) = match outcome {
            Ok(Ok(DispatchOutcome::Succeeded { detail })) => return (JobStatus::Succeeded, detail),
            Ok(Ok(DispatchOutcome::Failed { detail, retryable })) => (detail, retryable),
            Ok(Err(e)) => (e.to_string(), true),
            Err(_) => ("the dispatcher panicked".to_owned(), false),
        };
        if !retryable || attempt == max {
            let detail = if max > 1 { format!("{detail} (attempt {attempt} of {max})") } else { detail };
            return (JobStatus::Failed, detail);
        }
        let delay = shared.retry.delay(attempt);
        tracing::warn!(
            observer = %shared.name,
            model = %job.model,
            job_id = %job.job_id,
            "retrain attempt {attempt} of {max} failed: {detail}; retrying in {delay:?}"
        );
        if !shared.sleep(delay) {
            return (
                JobStatus::Failed,
                format!("{detail}; the scheduler stopped before attempt {} of {max}", attempt + 1),
            );
        }
    }
    // `max_attempts` is at least 1, so the loop has returned.
    (JobStatus::Failed, "no attempt was made".to_owned())
}

/// Takes the `dispatch` table out of the config, so that its errors name it.
fn split_dispatch(config: Json) -> Result<(Json, Json)> {
    let Json::Object(mut table) = config else {
        return Err(Error::config("", "expected a table"));
    };
    let dispatch = table.remove("dispatch").ok_or_else(|| {
        Error::config(
            "dispatch",
            "is required, for example dispatch = { kind = \"command\", program = \"./retrain.sh\" }",
        )
    })?;
    Ok((Json::Object(table), dispatch))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrainConfig {
    name: Option<String>,
    queue: Option<usize>,
    max_concurrent: Option<usize>,
    /// Refused with an explanation, rather than as an unknown field.
    cooldown: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    retry: RetryConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum DispatchConfig {
    Command(command::CommandConfig),
    Http(http::HttpConfig),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use monitor_core::event::{Finding, Severity};
    use monitor_core::signal::Signal;

    use super::*;

    fn finding(signal: &str) -> Finding {
        Finding {
            signal: Signal::Metric(signal.into()),
            detector: "threshold".into(),
            severity: Severity::Drift,
            statistic: 0.5,
            threshold: 0.9,
            p_value: None,
            message: String::new(),
        }
    }

    #[test]
    fn merging_skips_known_reasons() {
        let mut job = RetrainJob {
            job_id: uuid::Uuid::nil(),
            model: "m".into(),
            version: "v".into(),
            reasons: vec![finding("a")],
            created_at: Utc::now(),
            seq: 0,
        };
        let mut other = job.clone();
        other.reasons = vec![finding("a"), finding("b")];
        merge_reasons(&mut job, &other);
        assert_eq!(job.reasons.len(), 2);
    }

    #[test]
    fn dispatch_is_required_and_unknown_kinds_are_named() {
        let ctx = BuildContext::default();
        let err = RetrainScheduler::from_config(serde_json::json!({}), &ctx).unwrap_err().to_string();
        assert!(err.contains("`dispatch`: is required"), "{err}");
        let err = RetrainScheduler::from_config(serde_json::json!({"dispatch": {"kind": "carrier_pigeon"}}), &ctx)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant `carrier_pigeon`"), "{err}");
        assert!(err.contains("known dispatch kinds: command, http (presets airflow, argo, github, generic)"), "{err}");
    }
}
