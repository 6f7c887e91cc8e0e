//! Delivery from the engine's outbox, when it keeps a journal.
//!
//! The engine writes a row per event before the alerter hears of it; a
//! feeder task works the rows off: of each alert key (or job), only the
//! oldest pending row is taken, so deliveries keep their order per key. A
//! row first goes through the alerter's filters (skipped if they do not
//! send it), then one POST per attempt; a failed attempt that a retry may
//! fix makes the row due again after the retry policy's backoff (or the
//! receiver's `Retry-After`), however many attempts it takes, so a
//! receiver that comes back after a long outage gets every delivery, in
//! order per key. An answer that no retry fixes marks the row failed (and
//! counted as given up); `model-monitor outbox retry` makes it due again.
//! At shutdown, what is not delivered by the deadline stays pending in the
//! journal for the next start: nothing is given up for lack of time.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use monitor_core::event::EventKind;
use monitor_core::outbox::{Outbox, OutboxItem};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::admission::Admission;
use super::deliver::{Delivery, MAX_RETRY_AFTER};
use super::format::{Notification, Renderer};

/// Rows read from the outbox at once.
const DUE_BATCH: usize = 64;
/// The longest the feeder sleeps without looking at the outbox (a row made
/// due by an operator is picked up within it).
const IDLE: Duration = Duration::from_secs(2);
/// How long to wait before reading an outbox that failed to answer.
const OUTBOX_RETRY: Duration = Duration::from_secs(1);

/// The alerter's end of a running feeder.
#[derive(Debug)]
pub(crate) struct Feeder {
    pub(crate) wake: Arc<Notify>,
    /// A flush: deliver what is due by the deadline, then answer.
    pub(crate) flushes: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

/// Starts the feeder of `receiver` on the current runtime.
pub(crate) fn start(
    outbox: Arc<dyn Outbox>,
    receiver: String,
    delivery: Delivery,
    admission: Admission,
) -> Option<Feeder> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let wake = Arc::new(Notify::new());
    let (flushes, flush_rx) = mpsc::channel(4);
    let task = Task { outbox, receiver, delivery, admission, admitted: HashSet::new(), renderer: Renderer::default() };
    handle.spawn(task.run(Arc::clone(&wake), flush_rx));
    Some(Feeder { wake, flushes })
}

struct Task {
    outbox: Arc<dyn Outbox>,
    receiver: String,
    delivery: Delivery,
    admission: Admission,
    /// Rows that went through the filters in this process.
    admitted: HashSet<u64>,
    renderer: Renderer,
}

impl Task {
    async fn run(mut self, wake: Arc<Notify>, mut flushes: mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
        loop {
            self.deliver_due(None).await;
            let wait = match self.blocking(|o, r| o.next_due(r)).await {
                Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(IDLE),
                Ok(None) => IDLE,
                Err(_) => OUTBOX_RETRY,
            };
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = self.delivery.shutdown.cutoff.cancelled() => return,
                flush = flushes.recv() => match flush {
                    Some((deadline, done)) => {
                        self.deliver_due(Some(deadline)).await;
                        let _ = done.send(());
                    }
                    None => return,
                },
            }
        }
    }

    /// Runs `f` on the outbox off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Outbox, &str) -> monitor_core::Result<T> + Send + 'static,
    ) -> monitor_core::Result<T> {
        let (outbox, receiver) = (Arc::clone(&self.outbox), self.receiver.clone());
        tokio::task::spawn_blocking(move || f(outbox.as_ref(), &receiver))
            .await
            .map_err(|e| monitor_core::Error::observer(&self.receiver, e.to_string()))?
    }

    /// Delivers the rows due now, and those that become due as earlier
    /// ones of their key are done, until none is due (or `deadline`).
    async fn deliver_due(&mut self, deadline: Option<Instant>) {
        loop {
            let due = match self.blocking(|o, r| o.due(r, Utc::now(), DUE_BATCH)).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(observer = %self.receiver, error = %e, "the outbox cannot be read");
                    return;
                }
            };
            if due.is_empty() {
                return;
            }
            for item in due {
                if deadline.is_some_and(|d| Instant::now() >= d) || self.delivery.shutdown.cutoff.is_cancelled() {
                    return;
                }
                self.deliver(item).await;
            }
        }
    }

    async fn deliver(&mut self, item: OutboxItem) {
        let id = item.id;
        // A row tried before (in this process or an earlier one) went
        // through the filters then; a new one goes through them now.
        if item.attempts == 0 && !self.admitted.contains(&id) {
            if !self.admission.admit(&item.event) {
                self.mark(move |o, _| o.skipped(id)).await;
                return;
            }
            self.admitted.insert(id);
        }
        let groups =
            self.delivery.format.groups() && matches!(item.event.kind, EventKind::Finding(_) | EventKind::Recovered(_));
        let notification =
            if groups { Notification::Group(vec![item.event]) } else { Notification::One(Box::new(item.event)) };
        let mut outcome = Ok(());
        for body in
            self.renderer.render(self.delivery.format, &self.delivery.render, &self.delivery.name, &notification)
        {
            let bytes = match serde_json::to_vec(&body) {
                Ok(bytes) => bytes,
                Err(e) => {
                    outcome = Err((format!("the notification could not be serialised: {e}"), false, None));
                    break;
                }
            };
            if let Err(f) = self.delivery.attempt_once(&bytes).await {
                outcome = Err(f);
                break;
            }
        }
        match outcome {
            Ok(()) => {
                self.admitted.remove(&id);
                self.delivery.count_delivered();
                self.delivery.delivered_again();
                self.mark(move |o, _| o.delivered(id)).await;
            }
            Err((problem, true, retry_after)) => {
                let attempt = item.attempts + 1;
                let delay =
                    retry_after.map_or_else(|| self.delivery.retry.nominal_delay(attempt), |d| d.min(MAX_RETRY_AFTER));
                self.delivery.count_retry();
                self.delivery.log_attempt_failure(&format!("{problem}; attempt {attempt}, due again in {delay:?}"));
                let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                self.mark(move |o, _| o.retry_at(id, at, &problem)).await;
            }
            Err((problem, false, _)) => {
                self.admitted.remove(&id);
                self.delivery.count_failed();
                self.delivery.log_attempt_failure(&format!("{problem}; not retryable, marked failed in the outbox"));
                self.mark(move |o, _| o.failed(id, &problem)).await;
            }
        }
    }

    /// Records a row's outcome; a journal that cannot take it is logged
    /// (and reported by the journal's health): the row stays as it was and
    /// is delivered again, at least once.
    async fn mark(&self, f: impl FnOnce(&dyn Outbox, &str) -> monitor_core::Result<()> + Send + 'static) {
        if let Err(e) = self.blocking(f).await {
            tracing::warn!(observer = %self.receiver, error = %e, "an outbox row could not be updated");
        }
    }
}
