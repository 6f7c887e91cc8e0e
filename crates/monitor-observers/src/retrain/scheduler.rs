//! The scheduler core: requests in, one task per job, `job_status` out.
//!
//! Each accepted job is a tokio task, tracked by a `TaskTracker`, that waits
//! for one of `max_concurrent` places (a semaphore: tokio's is fair, so jobs
//! start in the order they were queued), dispatches the job with `backon`'s
//! retries and reports how it ended. Each attempt runs in a task of its own,
//! so that a panicking dispatcher fails its job rather than the scheduler.
//! Nothing here blocks a thread, and there is no worker thread: the queue is
//! the set of job tasks waiting for a place, bounded by `queue`, so no
//! channel is needed (the crate used a crossbeam queue for worker threads
//! before; with tasks it no longer earns its place).
//!
//! The queue's bound is a second semaphore, of `queue` permits: a queued job
//! holds one until it starts. A request that finds none free waits for one
//! in `on_event` (back-pressure: the engine's queue for this observer, and
//! its overflow policy, take it upstream); no request is ever dropped for
//! want of room.
//!
//! Stopping is a `CancellationToken`, the cut-off: `flush` cancels it once
//! `shutdown_timeout` has passed, and dropping the scheduler does too. A job
//! then ends at once: a queued one without starting, a running one by
//! aborting its attempt (a command's process group is killed) or its
//! backoff. Either way it is reported `failed`, its detail saying it was cut
//! off at shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use monitor_core::dispatch::Dispatcher;
use monitor_core::duration::HumanDuration;
use monitor_core::event::{Event, EventKind, JobStatus, JobUpdate, RetrainJob};
use monitor_core::observer::{EventPublisher, Observer, ObserverLosses};
use monitor_core::{Error, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::attempt::attempts;
use super::jobs::{Jobs, SchedulerStats};
use crate::failures::{FailureLog, Loudness, SUMMARY_EVERY};
use crate::retry::RetryPolicy;
use crate::text::escape_control;

/// What the jobs of one scheduler share.
pub(super) struct Shared {
    pub(super) name: String,
    /// The dispatcher's kind, for `job_status` events.
    pub(super) kind: String,
    pub(super) dispatcher: Arc<dyn Dispatcher>,
    pub(super) retry: RetryPolicy,
    pub(super) jobs: Mutex<Jobs>,
    pub(super) publisher: Mutex<Option<Arc<dyn EventPublisher>>>,
    pub(super) stats: SchedulerStats,
    /// `max_concurrent` places for running jobs.
    pub(super) places: Semaphore,
    /// `queue` places for waiting jobs: a queued job holds one until it starts.
    pub(super) room: Arc<Semaphore>,
    /// Cancelled at the shutdown deadline, or when the scheduler is dropped.
    pub(super) cutoff: CancellationToken,
    /// Failed attempts in a row, to keep the log quiet.
    pub(super) failures: FailureLog,
}

impl Shared {
    pub(super) fn jobs(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a status change of `job`. Its `ts` is the event time of the
    /// job's request, like every event's; `at` is now, by the wall clock.
    /// Logged at `DEBUG` only: the event itself reaches every observer (a
    /// `log` observer prints it), and failures are logged by [`Self::failed`].
    pub(super) fn publish(&self, job: &RetrainJob, status: JobStatus, detail: Option<String>) {
        tracing::debug!(
            observer = %self.name,
            model = %escape_control(&job.model),
            version = %escape_control(&job.version),
            job_id = %job.job_id,
            %status,
            dispatcher = %self.kind,
            detail = %escape_control(detail.as_deref().unwrap_or("")),
            "retrain job {status}"
        );
        let update = JobUpdate { job_id: job.job_id, at: Utc::now(), status, dispatcher: self.kind.clone(), detail };
        let event = Event::new(job.key(), job.created_at, job.seq, EventKind::JobStatus(update));
        let publisher = self.publisher.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(publisher) = publisher {
            publisher.publish(event);
        }
    }

    /// Logs a failed attempt of `job`: the first of a run at `WARN`, then
    /// one summary line per [`SUMMARY_EVERY`], the others at `DEBUG`.
    pub(super) fn failed(&self, job: &RetrainJob, what: &str) {
        let (observer, model, job_id) = (&self.name, escape_control(&job.model), job.job_id);
        let what = escape_control(what);
        match self.failures.failure() {
            Loudness::First => tracing::warn!(
                %observer,
                %model,
                %job_id,
                "retrain {what} (further failures of `{}` are counted, with one line per {SUMMARY_EVERY})",
                self.kind
            ),
            Loudness::Summary(n) => tracing::warn!(
                %observer,
                %model,
                %job_id,
                "{n} retrain attempts failed in a row; {} jobs failed so far; the last: {what}",
                self.stats.failed()
            ),
            Loudness::Quiet => tracing::debug!(%observer, %model, %job_id, "retrain {what}"),
        }
    }
}

/// Builds a [`RetrainScheduler`] from code.
///
/// ```
/// # use monitor_observers::dispatch::ChannelDispatcher;
/// # use monitor_observers::retrain::RetrainScheduler;
/// # use monitor_observers::retry::RetryPolicy;
/// # use std::time::Duration;
/// let (dispatcher, jobs) = ChannelDispatcher::new(16);
/// let scheduler = RetrainScheduler::builder(dispatcher)
///     .queue(32)
///     .max_concurrent(2)
///     .retry(RetryPolicy::new(5, Duration::from_secs(1), Duration::from_secs(60)))
///     .shutdown_timeout(Duration::from_secs(30))
///     .build()?;
///
/// // Values out of their bounds are errors that name the key.
/// let (dispatcher, _) = ChannelDispatcher::new(16);
/// let err = RetrainScheduler::builder(dispatcher).queue(1_000_000_000_000).build().unwrap_err();
/// assert_eq!(err.to_string(), "config error at `queue`: must be between 1 and 100000 (got 1000000000000)");
/// # drop((scheduler, jobs));
/// # Ok::<(), monitor_core::Error>(())
/// ```
#[must_use]
pub struct RetrainSchedulerBuilder {
    dispatcher: Arc<dyn Dispatcher>,
    queue: usize,
    max_concurrent: usize,
    retry: RetryPolicy,
    shutdown_timeout: Duration,
    name: String,
}

impl std::fmt::Debug for RetrainSchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrainSchedulerBuilder")
            .field("dispatcher", &self.dispatcher.kind())
            .field("queue", &self.queue)
            .field("max_concurrent", &self.max_concurrent)
            .field("retry", &self.retry)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("name", &self.name)
            .finish()
    }
}

impl RetrainSchedulerBuilder {
    /// How many jobs may wait for a place (default 64, from 1 to
    /// [`RetrainScheduler::MAX_QUEUE`]). A request that finds the queue full
    /// waits for room in `on_event`: requests are never dropped.
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// How many jobs run at once, over all models (default 1, at most
    /// [`RetrainScheduler::MAX_CONCURRENT`]); a model has at most one.
    pub fn max_concurrent(mut self, jobs: usize) -> Self {
        self.max_concurrent = jobs;
        self
    }

    /// How failed attempts are retried (default: 3 attempts, 1s doubling to
    /// 1m; see [`RetryPolicy::check`] for the bounds).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long [`Observer::flush`] waits for queued and running jobs before
    /// it cuts them off (default 20s, at most
    /// [`RetrainScheduler::MAX_SHUTDOWN_TIMEOUT`]). Keep it below the
    /// engine's `shutdown_timeout`, so that the jobs it cuts off are
    /// reported before the engine stops.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The observer's name in logs (default `retrain`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Builds the scheduler. Its job tasks are spawned, from the first
    /// request on, onto the runtime that delivers the requests.
    ///
    /// A value out of its bounds is a config error that names its key
    /// (`queue`, `max_concurrent`, `shutdown_timeout`, `retry.max_attempts`,
    /// ...). Nothing is allocated in proportion to `queue` or
    /// `max_concurrent`: they are counts of permits.
    pub fn build(self) -> Result<RetrainScheduler> {
        crate::bounds::size("queue", self.queue, RetrainScheduler::MAX_QUEUE)?;
        crate::bounds::size("max_concurrent", self.max_concurrent, RetrainScheduler::MAX_CONCURRENT)?;
        crate::bounds::positive(
            "shutdown_timeout",
            self.shutdown_timeout,
            RetrainScheduler::MAX_SHUTDOWN_TIMEOUT,
            "every job still running at shutdown would be cut off at once",
        )?;
        self.retry.check()?;
        Ok(self.assemble())
    }

    /// The scheduler of these settings, which are within their bounds.
    fn assemble(self) -> RetrainScheduler {
        let shared = Arc::new(Shared {
            name: self.name.clone(),
            kind: self.dispatcher.kind().to_owned(),
            dispatcher: self.dispatcher,
            retry: self.retry,
            jobs: Mutex::default(),
            publisher: Mutex::default(),
            stats: SchedulerStats::default(),
            places: Semaphore::new(self.max_concurrent),
            room: Arc::new(Semaphore::new(self.queue)),
            cutoff: CancellationToken::new(),
            failures: FailureLog::default(),
        });
        RetrainScheduler {
            name: self.name,
            shared,
            queue: self.queue,
            max_concurrent: self.max_concurrent,
            shutdown_timeout: self.shutdown_timeout,
            tracker: TaskTracker::new(),
            told_full: AtomicBool::new(false),
        }
    }
}

/// Schedules retraining jobs: a bounded queue, up to `max_concurrent` jobs
/// at once, at most one job in flight per model. See the [module
/// docs](super).
///
/// ```
/// # use monitor_observers::dispatch::ChannelDispatcher;
/// # use monitor_observers::retrain::RetrainScheduler;
/// # use monitor_core::event::*;
/// # use monitor_core::observer::Observer;
/// # use monitor_core::record::ModelKey;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> monitor_core::Result<()> {
/// let (dispatcher, mut jobs) = ChannelDispatcher::new(16);
/// let mut scheduler = RetrainScheduler::new(dispatcher);
/// let request = RetrainRequest { job_id: uuid::Uuid::new_v4(), reasons: vec![] };
/// let event = Event::new(ModelKey::new("fraud", "v3"), chrono::Utc::now(), 7, EventKind::RetrainRequested(request));
/// scheduler.on_event(&event).await?;
/// scheduler.flush().await?; // waits until the job has been dispatched
/// assert_eq!(jobs.try_recv().map(|job| job.model).ok().as_deref(), Some("fraud"));
/// # Ok(()) }
/// ```
pub struct RetrainScheduler {
    name: String,
    shared: Arc<Shared>,
    queue: usize,
    max_concurrent: usize,
    shutdown_timeout: Duration,
    /// One task per queued or running job.
    tracker: TaskTracker,
    /// Whether the log has said that requests wait for room.
    told_full: AtomicBool,
}

impl std::fmt::Debug for RetrainScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetrainScheduler")
            .field("name", &self.name)
            .field("dispatcher", &self.shared.kind)
            .field("queue", &self.queue)
            .field("max_concurrent", &self.max_concurrent)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl RetrainScheduler {
    /// The default queue capacity.
    pub const DEFAULT_QUEUE: usize = 64;
    /// The largest `queue`.
    pub const MAX_QUEUE: usize = 100_000;
    /// The largest `max_concurrent`.
    pub const MAX_CONCURRENT: usize = 1024;
    /// The default `shutdown_timeout`: below the engine's default (30s), so
    /// that the jobs cut off are reported before the engine stops.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);
    /// The longest `shutdown_timeout`, the engine's own upper bound.
    pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3600);

    /// The default retry policy of jobs: 3 attempts, 1s doubling to 1m.
    pub const DEFAULT_RETRY: RetryPolicy =
        RetryPolicy { max_attempts: 3, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(60) };

    /// A scheduler with default settings: one job at a time.
    pub fn new(dispatcher: impl Dispatcher) -> Self {
        // The defaults are within their bounds.
        Self::builder(dispatcher).assemble()
    }

    /// A builder for other settings.
    pub fn builder(dispatcher: impl Dispatcher) -> RetrainSchedulerBuilder {
        RetrainSchedulerBuilder {
            dispatcher: Arc::new(dispatcher),
            queue: Self::DEFAULT_QUEUE,
            max_concurrent: 1,
            retry: Self::DEFAULT_RETRY,
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
            name: "retrain".to_owned(),
        }
    }

    /// The scheduler's counters; clones share them.
    pub fn stats(&self) -> SchedulerStats {
        self.shared.stats.clone()
    }

    /// Handles a retrain request: merges it into its model's job if that is
    /// queued or running, or else queues a new job, waiting for room in the
    /// queue if it is full. Returns an error only after the cut-off, or
    /// without a tokio runtime (the request is then reported `failed` and
    /// counted as dropped).
    ///
    /// Its status is published under the jobs' lock, which a job task takes
    /// before it starts and before it ends: so `queued` comes before the
    /// job's `dispatched`, and `merged` before the end of the job it joined.
    /// (Publishing never blocks.)
    async fn request(&self, job: RetrainJob) -> Result<()> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.refuse(&job, "the retrain scheduler needs a tokio runtime");
        };
        if self.merge(&job) {
            return Ok(());
        }
        let waiting = match Arc::clone(&self.shared.room).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(TryAcquireError::Closed) => None,
            Err(TryAcquireError::NoPermits) => {
                if !self.told_full.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        observer = %self.name,
                        "the retrain queue is full ({} jobs): requests wait for room, and so does the engine \
                         (back-pressure); none is dropped",
                        self.queue
                    );
                }
                tokio::select! {
                    biased;
                    () = self.shared.cutoff.cancelled() => None,
                    permit = Arc::clone(&self.shared.room).acquire_owned() => permit.ok(),
                }
            }
        };
        let Some(waiting) = waiting.filter(|_| !self.shared.cutoff.is_cancelled()) else {
            return self.refuse(&job, "the scheduler has shut down");
        };
        let mut jobs = self.shared.jobs();
        // No job of its model can have appeared meanwhile (only requests
        // make jobs, one at a time), but merge rather than assume it.
        if let Some((joined, phase)) = jobs.merge(&job) {
            self.merged(&job, joined, phase.describe());
            return Ok(());
        }
        let model = job.model.clone();
        jobs.enqueue(job.clone());
        self.shared.stats.update(|s| s.queued += 1);
        self.shared.publish(&job, JobStatus::Queued, None);
        drop(jobs);
        self.tracker.spawn_on(run_job(Arc::clone(&self.shared), model, waiting), &runtime);
        Ok(())
    }

    /// Merges `job` into its model's live job, if there is one.
    fn merge(&self, job: &RetrainJob) -> bool {
        let mut jobs = self.shared.jobs();
        match jobs.merge(job) {
            Some((joined, phase)) => {
                self.merged(job, joined, phase.describe());
                true
            }
            None => false,
        }
    }

    /// Counts and publishes a merge (under the jobs' lock).
    fn merged(&self, job: &RetrainJob, joined: uuid::Uuid, phase: &str) {
        self.shared.stats.update(|s| s.merged += 1);
        self.shared.publish(job, JobStatus::Merged, Some(format!("merged into job {joined} ({phase})")));
    }

    /// Reports a request that could not be queued: `failed`, counted as
    /// dropped, and an error.
    fn refuse(&self, job: &RetrainJob, detail: &str) -> Result<()> {
        self.shared.stats.update(|s| s.refused += 1);
        self.shared.publish(job, JobStatus::Failed, Some(detail.to_owned()));
        Err(Error::observer(&self.name, format!("job {} for {}: {detail}", job.job_id, escape_control(&job.model))))
    }
}

impl Drop for RetrainScheduler {
    /// Cuts every job off: a dropped scheduler leaves no job, and no
    /// command, running.
    fn drop(&mut self) {
        self.shared.cutoff.cancel();
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

    fn schedules_jobs(&self) -> bool {
        true
    }

    /// Queues (or merges) the job of a `retrain_requested` event; waits for
    /// room when the queue is full, so that no request is dropped.
    async fn on_event(&mut self, event: &Event) -> Result<()> {
        match RetrainJob::from_event(event) {
            Some(job) => self.request(job).await,
            None => Ok(()),
        }
    }

    /// Waits until no job is queued or running, without blocking a thread.
    /// Past `shutdown_timeout`, cuts the remaining jobs off (each is
    /// reported `failed`) and waits for them to end, which they do at once.
    /// After a cut-off the scheduler takes no more jobs.
    async fn flush(&mut self) -> Result<()> {
        self.tracker.close();
        let ended = tokio::time::timeout(self.shutdown_timeout, self.tracker.wait()).await.is_ok();
        if !ended {
            tracing::warn!(
                observer = %self.name,
                jobs = self.tracker.len(),
                "retrain jobs still queued or running after shutdown_timeout ({}): cutting them off",
                HumanDuration(self.shutdown_timeout)
            );
            self.shared.cutoff.cancel();
            self.tracker.wait().await;
        }
        self.tracker.reopen();
        Ok(())
    }

    /// Jobs that failed for good (after their last attempt, on a failure no
    /// retry fixes, or cut off at shutdown), and requests that could not be
    /// queued (after the cut-off).
    fn losses(&self) -> ObserverLosses {
        let stats = &self.shared.stats;
        ObserverLosses { given_up: stats.failed(), dropped: stats.refused() }
    }
}

/// One job, from its place in the queue to its end. `waiting` is its room
/// in the queue, given back when it starts.
async fn run_job(shared: Arc<Shared>, model: String, waiting: OwnedSemaphorePermit) {
    let place = tokio::select! {
        biased;
        () = shared.cutoff.cancelled() => None,
        place = shared.places.acquire() => place.ok(),
    };
    let Some(_place) = place else {
        end(&shared, &model, JobStatus::Failed, "cut off at shutdown before it started".to_owned());
        return;
    };
    let Some(job) = shared.jobs().start(&model) else { return };
    drop(waiting);
    let (status, detail) = attempts(&shared, job).await;
    end(&shared, &model, status, detail);
}

/// Ends the model's job and reports it. The job ends before its end is
/// told: from here on a request for this model starts a new job rather than
/// joining one that is over.
fn end(shared: &Shared, model: &str, status: JobStatus, detail: String) {
    let Some(job) = shared.jobs().end(model) else { return };
    match status {
        JobStatus::Succeeded => shared.stats.update(|s| s.succeeded += 1),
        _ => shared.stats.update(|s| s.failed += 1),
    }
    shared.publish(&job, status, Some(detail));
}
