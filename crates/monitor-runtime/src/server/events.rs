//! The server's own observer: a bounded ring of recent events for
//! `/v1/events`, and per model its recent findings and jobs for
//! `/v1/models/{model}`.
//!
//! It runs as an observer like any other, on its own task and queue, so the
//! shards never wait for it. Readers take its lock briefly to copy what
//! they answer with.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use monitor_core::event::{Event, EventKind, JobStatus};
use monitor_core::observer::Observer;
use monitor_core::{Result, async_trait};
use serde::Serialize;
use uuid::Uuid;

/// One event of the ring with its number there.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Numbered {
    /// Its number in the ring: 1 for the first event the server saw.
    pub(crate) seq: u64,
    pub(crate) event: Arc<Event>,
}

/// A page of the ring, as `/v1/events` answers it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Page {
    pub(crate) events: Vec<Numbered>,
    /// The `since` of the next call: the last number returned, or the
    /// `since` given when nothing was.
    pub(crate) next_since: u64,
    /// The oldest number still in the ring (the next one when it is empty).
    pub(crate) oldest: u64,
    /// The newest number given so far (0 before the first event). Numbers
    /// start again at 1 when the server restarts.
    pub(crate) newest: u64,
    /// Events after `since` that left the ring before this call.
    pub(crate) missed: u64,
}

/// A retraining job as the server last heard of it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobView {
    pub(crate) job_id: Uuid,
    pub(crate) version: String,
    /// `requested`, then the scheduler's statuses.
    pub(crate) status: String,
    pub(crate) dispatcher: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) requested_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// What one model did lately.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct History {
    /// Findings and recoveries, newest last.
    pub(crate) findings: VecDeque<Arc<Event>>,
    /// Jobs by request time, newest last.
    pub(crate) jobs: VecDeque<JobView>,
    #[serde(skip)]
    touched: u64,
}

#[derive(Debug)]
struct Inner {
    next: u64,
    ring: VecDeque<Numbered>,
    models: HashMap<String, History>,
}

/// The ring and the histories, shared by the observer and the handlers.
#[derive(Debug)]
pub(crate) struct EventLog {
    capacity: usize,
    per_model: usize,
    max_models: usize,
    inner: Mutex<Inner>,
}

impl EventLog {
    pub(crate) fn new(capacity: usize, per_model: usize, max_models: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            per_model: per_model.max(1),
            max_models: max_models.max(1),
            inner: Mutex::new(Inner { next: 1, ring: VecDeque::new(), models: HashMap::new() }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, event: Event) {
        let event = Arc::new(event);
        let mut inner = self.lock();
        let seq = inner.next;
        inner.next += 1;
        if inner.ring.len() >= self.capacity {
            inner.ring.pop_front();
        }
        inner.ring.push_back(Numbered { seq, event: Arc::clone(&event) });
        self.remember(&mut inner, seq, &event);
    }

    fn remember(&self, inner: &mut Inner, seq: u64, event: &Arc<Event>) {
        if !inner.models.contains_key(&event.key.model) && inner.models.len() >= self.max_models {
            // Forget the model that has been quiet the longest.
            let oldest = inner.models.iter().min_by_key(|(_, h)| h.touched).map(|(m, _)| m.clone());
            if let Some(model) = oldest {
                inner.models.remove(&model);
            }
        }
        let per_model = self.per_model;
        let history = inner.models.entry(event.key.model.clone()).or_default();
        history.touched = seq;
        match &event.kind {
            EventKind::Finding(_) | EventKind::Recovered(_) => {
                if history.findings.len() >= per_model {
                    history.findings.pop_front();
                }
                history.findings.push_back(Arc::clone(event));
            }
            EventKind::RetrainRequested(r) => {
                if history.jobs.len() >= per_model {
                    history.jobs.pop_front();
                }
                history.jobs.push_back(JobView {
                    job_id: r.job_id,
                    version: event.key.version.clone(),
                    status: "requested".to_owned(),
                    dispatcher: None,
                    detail: None,
                    requested_at: event.ts,
                    updated_at: event.ts,
                });
            }
            EventKind::JobStatus(u) => {
                if let Some(job) = history.jobs.iter_mut().find(|j| j.job_id == u.job_id) {
                    // A job merged into another keeps its last real status.
                    if u.status != JobStatus::Merged || job.status == "requested" {
                        job.status = u.status.to_string();
                    }
                    job.dispatcher = Some(u.dispatcher.clone());
                    job.detail.clone_from(&u.detail);
                    // A job's status changes on the wall clock; its `ts` is its request's event time.
                    job.updated_at = u.at;
                }
            }
        }
    }

    /// Up to `limit` events numbered after `since`, oldest first.
    pub(crate) fn page(&self, since: u64, limit: usize) -> Page {
        let inner = self.lock();
        let oldest = inner.ring.front().map_or(inner.next, |n| n.seq);
        let start = since.saturating_add(1).max(oldest);
        let missed = start - since.saturating_add(1).min(start);
        // Numbers are consecutive in the ring, so the start is an index.
        let skip = usize::try_from(start - oldest).unwrap_or(usize::MAX);
        let events: Vec<Numbered> = inner.ring.iter().skip(skip).take(limit).cloned().collect();
        let next_since = events.last().map_or(since.max(start.saturating_sub(1)), |n| n.seq);
        Page { events, next_since, oldest, newest: inner.next - 1, missed }
    }

    /// What `model` did lately; `None` if the server has heard nothing of it.
    pub(crate) fn history(&self, model: &str) -> Option<History> {
        self.lock().models.get(model).cloned()
    }
}

/// The observer that feeds an [`EventLog`].
pub(crate) struct EventLogObserver {
    pub(crate) log: Arc<EventLog>,
}

#[async_trait]
impl Observer for EventLogObserver {
    fn name(&self) -> &str {
        "server"
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        self.log.push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use monitor_core::event::{Finding, JobUpdate, RetrainRequest, Severity};
    use monitor_core::record::ModelKey;
    use monitor_core::signal::Signal;

    use super::*;

    fn finding(model: &str) -> Event {
        let f = Finding {
            signal: Signal::LatencyMs,
            detector: "threshold".into(),
            severity: Severity::Drift,
            statistic: 1.0,
            threshold: 0.5,
            p_value: None,
            realised: None,
            message: String::new(),
        };
        Event::new(ModelKey::new(model, "v1"), Utc::now(), 0, EventKind::Finding(f))
    }

    #[test]
    fn pages_follow_the_ring_and_report_what_was_missed() {
        let log = EventLog::new(3, 10, 10);
        for _ in 0..5 {
            log.push(finding("a"));
        }
        // Numbers 1..=5; the ring holds 3, 4, 5.
        let page = log.page(0, 10);
        assert_eq!(page.events.iter().map(|n| n.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!((page.oldest, page.missed, page.next_since), (3, 2, 5));
        let page = log.page(3, 1);
        assert_eq!(page.events.iter().map(|n| n.seq).collect::<Vec<_>>(), [4]);
        assert_eq!((page.missed, page.next_since), (0, 4));
        let page = log.page(5, 10);
        assert!(page.events.is_empty());
        assert_eq!(page.next_since, 5);
        let page = log.page(100, 10);
        assert!(page.events.is_empty());
        assert_eq!(page.next_since, 100);
    }

    #[test]
    fn histories_are_bounded_and_follow_jobs() {
        let log = EventLog::new(100, 2, 2);
        for _ in 0..3 {
            log.push(finding("a"));
        }
        assert_eq!(log.history("a").unwrap().findings.len(), 2);
        let job_id = Uuid::new_v4();
        let request = RetrainRequest { job_id, reasons: Vec::new() };
        log.push(Event::new(ModelKey::new("a", "v1"), Utc::now(), 1, EventKind::RetrainRequested(request)));
        let update = JobUpdate {
            job_id,
            at: Utc::now(),
            status: JobStatus::Succeeded,
            dispatcher: "command".into(),
            detail: Some("exit 0".into()),
        };
        log.push(Event::new(ModelKey::new("a", "v1"), Utc::now(), 1, EventKind::JobStatus(update)));
        let jobs = log.history("a").unwrap().jobs;
        assert_eq!((jobs[0].status.as_str(), jobs[0].detail.as_deref()), ("succeeded", Some("exit 0")));
        log.push(finding("b"));
        log.push(finding("c"));
        assert!(log.history("a").is_none(), "the quietest model is forgotten first");
        assert!(log.history("b").is_some() && log.history("c").is_some());
    }
}
