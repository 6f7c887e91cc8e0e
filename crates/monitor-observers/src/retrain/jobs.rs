//! The retrain scheduler's job state: the live job of each model, requests
//! merged into it, and the counters.
//!
//! Pure bookkeeping, without I/O or tasks, so that the rules of merging and
//! queueing are tested on their own. The scheduler keeps it behind a mutex
//! that is never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use monitor_core::event::{AlertKey, RetrainJob};
use uuid::Uuid;

/// Where a model's live job is. A job that has ended has no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a free place among `max_concurrent`.
    Queued,
    /// Being dispatched, retries and their backoff included.
    Running,
}

impl Phase {
    pub(crate) fn describe(self) -> &'static str {
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

/// The live (queued or running) job of each model, by model name.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    live: HashMap<String, Slot>,
    queued: usize,
}

impl Jobs {
    /// Merges `request` into its model's live job, if there is one: returns
    /// the id of that job and where it is.
    pub(crate) fn merge(&mut self, request: &RetrainJob) -> Option<(Uuid, Phase)> {
        let slot = self.live.get_mut(&request.model)?;
        merge_reasons(&mut slot.job, request);
        Some((slot.job.job_id, slot.phase))
    }

    /// Jobs waiting for a free place.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Makes `job` its model's live job, queued.
    pub(crate) fn enqueue(&mut self, job: RetrainJob) {
        if let Some(old) = self.live.insert(job.model.clone(), Slot { job, phase: Phase::Queued }) {
            // `merge` comes first, so a model never has two; count it right anyway.
            if old.phase == Phase::Queued {
                self.queued -= 1;
            }
        }
        self.queued += 1;
    }

    /// Moves the model's job from queued to running; returns it.
    pub(crate) fn start(&mut self, model: &str) -> Option<RetrainJob> {
        let slot = self.live.get_mut(model)?;
        if slot.phase == Phase::Queued {
            slot.phase = Phase::Running;
            self.queued -= 1;
        }
        Some(slot.job.clone())
    }

    /// The model's live job as it is now, with every reason merged so far.
    pub(crate) fn current(&self, model: &str) -> Option<RetrainJob> {
        self.live.get(model).map(|slot| slot.job.clone())
    }

    /// Ends the model's live job: from now on a request starts a new one.
    pub(crate) fn end(&mut self, model: &str) -> Option<RetrainJob> {
        let slot = self.live.remove(model)?;
        if slot.phase == Phase::Queued {
            self.queued -= 1;
        }
        Some(slot.job)
    }
}

/// Adds the reasons of `request` to `job`, one per alert: a reason is
/// identified by its [`AlertKey`] under the job's model and version (that
/// is, by signal and detector; every reason counts towards the job's model).
/// A known alert is not added twice; a more severe finding of it replaces
/// the one the job has.
pub(crate) fn merge_reasons(job: &mut RetrainJob, request: &RetrainJob) {
    let key = job.key();
    for reason in &request.reasons {
        let alert = AlertKey::new(&key, reason);
        match job.reasons.iter_mut().find(|known| AlertKey::new(&key, known) == alert) {
            Some(known) if reason.severity > known.severity => *known = reason.clone(),
            Some(_) => {}
            None => job.reasons.push(reason.clone()),
        }
    }
}

/// Counters of a [`RetrainScheduler`](super::RetrainScheduler), shared by clones.
#[derive(Debug, Clone, Default)]
pub struct SchedulerStats {
    inner: Arc<Mutex<StatsInner>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StatsInner {
    pub(crate) queued: u64,
    pub(crate) merged: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) refused: u64,
    pub(crate) attempts: u64,
}

impl SchedulerStats {
    pub(crate) fn update(&self, f: impl FnOnce(&mut StatsInner)) {
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

    /// Jobs that failed for good: after their last attempt, on a failure no
    /// retry fixes, or cut off at shutdown.
    pub fn failed(&self) -> u64 {
        self.get().failed
    }

    /// Requests that could not be queued (after the cut-off at shutdown);
    /// each was reported `failed`. A full queue is not a reason: a request
    /// waits for room.
    pub fn refused(&self) -> u64 {
        self.get().refused
    }

    /// Dispatch attempts made, retries included.
    pub fn attempts(&self) -> u64 {
        self.get().attempts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use monitor_core::event::{Finding, Severity};
    use monitor_core::signal::Signal;

    use super::*;

    fn finding(signal: &str, severity: Severity) -> Finding {
        Finding {
            signal: Signal::Metric(signal.into()),
            detector: "threshold".into(),
            severity,
            statistic: 0.5,
            threshold: 0.9,
            p_value: None,
            realised: None,
            message: String::new(),
        }
    }

    fn job(model: &str, reasons: Vec<Finding>) -> RetrainJob {
        RetrainJob {
            job_id: Uuid::new_v4(),
            model: model.into(),
            version: "v".into(),
            reasons,
            created_at: Utc::now(),
            seq: 0,
        }
    }

    #[test]
    fn merging_keeps_one_reason_per_alert_at_its_worst_severity() {
        let mut first = job("m", vec![finding("a", Severity::Warning)]);
        let other = job("m", vec![finding("a", Severity::Drift), finding("b", Severity::Warning)]);
        merge_reasons(&mut first, &other);
        let reasons: Vec<_> = first.reasons.iter().map(|r| (r.signal.to_string(), r.severity)).collect();
        assert_eq!(reasons, [("metrics.a".into(), Severity::Drift), ("metrics.b".into(), Severity::Warning)]);
        // A milder repeat changes nothing.
        merge_reasons(&mut first, &job("m", vec![finding("a", Severity::Warning)]));
        assert_eq!(first.reasons[0].severity, Severity::Drift);
        assert_eq!(first.reasons.len(), 2);
    }

    #[test]
    fn a_model_has_one_live_job_and_the_queue_counts_only_waiting_ones() {
        let mut jobs = Jobs::default();
        let first = job("m", vec![finding("a", Severity::Drift)]);
        assert!(jobs.merge(&first).is_none());
        jobs.enqueue(first.clone());
        assert_eq!(jobs.queued(), 1);
        let second = job("m", vec![finding("b", Severity::Drift)]);
        assert_eq!(jobs.merge(&second), Some((first.job_id, Phase::Queued)));
        assert_eq!(jobs.start("m").map(|j| j.reasons.len()), Some(2));
        assert_eq!(jobs.queued(), 0);
        assert_eq!(jobs.merge(&second).map(|(_, phase)| phase), Some(Phase::Running));
        assert_eq!(jobs.end("m").map(|j| j.job_id), Some(first.job_id));
        assert!(jobs.merge(&second).is_none(), "an ended job takes no more requests");
        // A job that ends while still queued (cut off) leaves the queue.
        jobs.enqueue(second);
        assert!(jobs.end("m").is_some());
        assert_eq!(jobs.queued(), 0);
    }
}
