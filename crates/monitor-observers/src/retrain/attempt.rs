//! A job's attempts: dispatched with the retry policy's backoff, each in a
//! task of its own, and cut off at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::Retryable;
use monitor_core::dispatch::DispatchOutcome;
use monitor_core::event::{JobStatus, RetrainJob};
use tokio_util::task::AbortOnDropHandle;

use super::scheduler::Shared;

/// Why an attempt did not succeed.
#[derive(Debug)]
struct Failure {
    detail: String,
    retryable: bool,
    /// Cut off at shutdown, during the attempt or before it.
    cut_off: bool,
}

/// Makes the job's attempts, retrying as the policy says; returns how the
/// job ended (`succeeded` or `failed`) and the detail.
pub(super) async fn attempts(shared: &Arc<Shared>, job: RetrainJob) -> (JobStatus, String) {
    let max = shared.retry.max_attempts;
    // Attempts started, for the details.
    let started = AtomicU32::new(0);
    let attempt = || {
        let shared = Arc::clone(shared);
        let model = job.model.clone();
        let first = job.clone();
        let started = &started;
        async move {
            if shared.cutoff.is_cancelled() {
                return Err(cut_off(started.load(Ordering::Relaxed), max, true));
            }
            let n = started.fetch_add(1, Ordering::Relaxed) + 1;
            // Reasons merged while the job waited are part of every attempt.
            let job = shared.jobs().current(&model).unwrap_or(first);
            shared.publish(&job, JobStatus::Dispatched, (max > 1).then(|| format!("attempt {n} of {max}")));
            shared.stats.update(|s| s.attempts += 1);
            attempt_once(&shared, job, n, max).await
        }
    };
    let cutoff = shared.cutoff.clone();
    let result = attempt
        .retry(shared.retry.backoff())
        // The backoff ends early at the cut-off; the next attempt then sees it.
        .sleep(move |delay| {
            let cutoff = cutoff.clone();
            async move {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cutoff.cancelled() => {}
                }
            }
        })
        .when(|failure: &Failure| failure.retryable)
        .notify(|failure: &Failure, delay: Duration| {
            let n = started.load(Ordering::Relaxed);
            shared.failed(&job, &format!("attempt {n} of {max} failed: {}; retrying in {delay:?}", failure.detail));
        })
        .await;
    match result {
        Ok(detail) => {
            if let Some(n) = shared.failures.success() {
                tracing::info!(
                    observer = %shared.name,
                    "retrain dispatcher `{}` succeeds again, after {n} failed attempts",
                    shared.kind
                );
            }
            (JobStatus::Succeeded, detail)
        }
        Err(failure) if failure.cut_off => (JobStatus::Failed, failure.detail),
        Err(failure) => {
            let n = started.load(Ordering::Relaxed);
            let detail = if max == 1 { failure.detail } else { format!("{} (attempt {n} of {max})", failure.detail) };
            shared.failed(&job, &format!("job failed for good: {detail}"));
            (JobStatus::Failed, detail)
        }
    }
}

/// The failure of a job cut off at shutdown, after `started` attempts:
/// `before` the next one (in the backoff) or during the last one.
fn cut_off(started: u32, max: u32, before: bool) -> Failure {
    let detail = match (before, started) {
        (true, 0) => "cut off at shutdown before its first attempt".to_owned(),
        (true, n) => format!("cut off at shutdown before attempt {} of {max}, after attempt {n} failed", n + 1),
        (false, n) => format!("cut off at shutdown during attempt {n} of {max}, which was aborted"),
    };
    Failure { detail, retryable: false, cut_off: true }
}

/// One attempt, in a task of its own: a panic fails the job instead of the
/// scheduler, and the cut-off aborts the task (dropping the dispatch, which
/// kills a command's process group) and waits until it is gone.
async fn attempt_once(shared: &Arc<Shared>, job: RetrainJob, n: u32, max: u32) -> std::result::Result<String, Failure> {
    let dispatcher = Arc::clone(&shared.dispatcher);
    let mut task = AbortOnDropHandle::new(tokio::spawn(async move { dispatcher.dispatch(&job).await }));
    let joined = tokio::select! {
        joined = &mut task => joined,
        () = shared.cutoff.cancelled() => {
            task.abort();
            let _ = (&mut task).await;
            return Err(cut_off(n, max, false));
        }
    };
    let failure = |detail: String, retryable: bool| Failure { detail, retryable, cut_off: false };
    match joined {
        Ok(Ok(DispatchOutcome::Succeeded { detail })) => Ok(detail),
        Ok(Ok(DispatchOutcome::Failed { detail, retryable })) => Err(failure(detail, retryable)),
        Ok(Ok(other)) => Err(failure(other.detail().to_owned(), false)),
        Ok(Err(e)) => Err(failure(e.to_string(), true)),
        Err(e) if e.is_panic() => Err(failure("the dispatcher panicked".to_owned(), false)),
        Err(e) => Err(failure(format!("the dispatch task ended early: {e}"), false)),
    }
}
