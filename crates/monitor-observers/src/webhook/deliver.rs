//! The two tasks behind a webhook: a router that groups, a sender that POSTs.
//!
//! The sender retries with `backon`; `Retry-After` replaces the backoff's
//! delay through its `adjust` hook, never adding an attempt. At shutdown
//! ([`Shutdown`]), a wait that would end past the deadline is not waited:
//! the notification is given up at once, and counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::Retryable;
use monitor_core::event::{Event, EventKind};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::format::{Format, Notification, RenderContext, Renderer};
use super::stats::WebhookStats;
use crate::failures::{FailureLog, Loudness, SUMMARY_EVERY};
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// The longest `Retry-After` honoured; a receiver asking for more is retried then.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The most events one group holds: a group that reaches it is sent at
/// once, without waiting for the rest of `group_wait`.
pub(crate) const MAX_GROUP_EVENTS: usize = 100;

/// What the alerter sends to its router.
#[derive(Debug)]
pub(crate) enum Command {
    Event(Box<Event>),
    /// Send the groups now, deliver everything, then answer.
    Flush(oneshot::Sender<()>),
}

/// What the router sends to the sender.
enum Out {
    Send(Notification),
    Flush(oneshot::Sender<()>),
}

/// What the alerter and its sender share about shutdown.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    /// While a flush is under way: when it gives up.
    deadline: Mutex<Option<Instant>>,
    /// Cancelled when a flush runs past its deadline, or when the alerter is
    /// dropped: from then on every notification is given up at once.
    pub(crate) cutoff: CancellationToken,
}

impl Shutdown {
    /// A flush has begun, and ends at `deadline` (`None`: it is over).
    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    /// Whether waiting `delay` from now would end past the flush's deadline.
    fn would_pass_deadline(&self, delay: Duration) -> bool {
        self.deadline.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|d| Instant::now() + delay > d)
    }
}

/// Everything the sender needs; it owns it.
pub(crate) struct Delivery {
    pub(crate) name: String,
    pub(crate) client: reqwest::Client,
    pub(crate) url: url::Url,
    /// `scheme://host:port`, the only part of the URL that is logged.
    pub(crate) origin: String,
    pub(crate) format: Format,
    pub(crate) retry: RetryPolicy,
    pub(crate) secret: Option<Secret>,
    pub(crate) signature_header: String,
    pub(crate) token: Option<Secret>,
    pub(crate) render: RenderContext,
    pub(crate) stats: WebhookStats,
    pub(crate) shutdown: Arc<Shutdown>,
    /// The receiver's failed attempts in a row, to keep the log quiet.
    pub(crate) failures: FailureLog,
}

/// Spawns the router and the sender on `handle`; returns the router's intake.
/// Both end by themselves when the intake is dropped, after sending what they hold.
pub(crate) fn start(
    handle: &Handle,
    delivery: Delivery,
    queue: usize,
    group_wait: Option<Duration>,
) -> mpsc::Sender<Command> {
    let (intake, commands) = mpsc::channel(queue);
    let (to_sender, outbox) = mpsc::channel(queue);
    handle.spawn(route(commands, to_sender, group_wait, queue));
    handle.spawn(send_all(outbox, delivery));
    intake
}

struct Group {
    model: String,
    due: Instant,
    events: Vec<Event>,
}

/// Groups findings per model for `group_wait`. A group is sent when it is
/// due, when it holds [`MAX_GROUP_EVENTS`], and, when the groups hold
/// `queue` events in all, the one due first is sent early: so the router
/// never holds more than a queue's worth of events.
async fn route(
    mut commands: mpsc::Receiver<Command>,
    out: mpsc::Sender<Out>,
    group_wait: Option<Duration>,
    queue: usize,
) {
    let mut groups: Vec<Group> = Vec::new();
    loop {
        let next_due = groups.iter().map(|g| g.due).min();
        let command = match next_due {
            Some(due) => tokio::select! {
                c = commands.recv() => c,
                () = tokio::time::sleep_until(due) => {
                    let now = Instant::now();
                    let (ready, waiting): (Vec<_>, Vec<_>) = groups.into_iter().partition(|g| g.due <= now);
                    groups = waiting;
                    for g in ready {
                        if out.send(Out::Send(Notification::Group(g.events))).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
            },
            None => commands.recv().await,
        };
        match command {
            None => break,
            Some(Command::Event(event)) => {
                let groupable = matches!(event.kind, EventKind::Finding(_) | EventKind::Recovered(_));
                match group_wait {
                    Some(wait) if groupable => {
                        let i = match groups.iter().position(|g| g.model == event.key.model) {
                            Some(i) => {
                                groups[i].events.push(*event);
                                i
                            }
                            None => {
                                groups.push(Group {
                                    model: event.key.model.clone(),
                                    due: Instant::now() + wait,
                                    events: vec![*event],
                                });
                                groups.len() - 1
                            }
                        };
                        let full = if groups[i].events.len() >= MAX_GROUP_EVENTS {
                            Some(i)
                        } else if groups.iter().map(|g| g.events.len()).sum::<usize>() >= queue {
                            groups.iter().enumerate().min_by_key(|(_, g)| g.due).map(|(i, _)| i)
                        } else {
                            None
                        };
                        if let Some(i) = full {
                            let g = groups.remove(i);
                            if out.send(Out::Send(Notification::Group(g.events))).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ => {
                        if out.send(Out::Send(Notification::One(event))).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Some(Command::Flush(done)) => {
                for g in groups.drain(..) {
                    if out.send(Out::Send(Notification::Group(g.events))).await.is_err() {
                        return;
                    }
                }
                if out.send(Out::Flush(done)).await.is_err() {
                    return;
                }
            }
        }
    }
    for g in groups {
        if out.send(Out::Send(Notification::Group(g.events))).await.is_err() {
            return;
        }
    }
}

async fn send_all(mut outbox: mpsc::Receiver<Out>, delivery: Delivery) {
    let mut renderer = Renderer::default();
    while let Some(out) = outbox.recv().await {
        match out {
            Out::Send(notification) => {
                for body in renderer.render(delivery.format, &delivery.render, &delivery.name, &notification) {
                    match serde_json::to_vec(&body) {
                        Ok(bytes) => delivery.post(bytes).await,
                        Err(e) => {
                            delivery.count_failed();
                            tracing::warn!(observer = %delivery.name, "could not serialise a notification: {e}");
                        }
                    }
                }
            }
            Out::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Why an attempt at delivering failed.
#[derive(Debug)]
struct Failure {
    problem: String,
    retryable: bool,
    /// The receiver's `Retry-After`, if it sent one.
    retry_after: Option<Duration>,
    /// Cut off at shutdown, before or during the attempt.
    cut_off: bool,
}

impl Failure {
    fn cut_off() -> Self {
        Self { problem: "cut off at shutdown".to_owned(), retryable: false, retry_after: None, cut_off: true }
    }
}

impl Delivery {
    /// POSTs `body`, retrying as the policy says. Counts the outcome.
    async fn post(&self, body: Vec<u8>) {
        let signature = self.secret.as_ref().map(|s| sign(s, &body));
        let max = self.retry.max_attempts;
        let mut attempt = 0;
        let past_deadline = AtomicBool::new(false);
        let cutoff = self.shutdown.cutoff.clone();
        let result = (|| {
            attempt += 1;
            self.attempt_until_cutoff(&body, signature.as_deref())
        })
        .retry(self.retry.backoff())
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
        .when(|f: &Failure| f.retryable)
        // `Retry-After` replaces the backoff's delay, up to MAX_RETRY_AFTER;
        // once the backoff has no delay left, there is no attempt left
        // either. During a flush, a wait past its deadline is not waited.
        .adjust(|f: &Failure, delay| {
            let delay = delay.map(|d| f.retry_after.map_or(d, |wait| wait.min(MAX_RETRY_AFTER)))?;
            if self.shutdown.would_pass_deadline(delay) {
                past_deadline.store(true, Ordering::Relaxed);
                return None;
            }
            Some(delay)
        })
        .notify(|f: &Failure, delay: Duration| {
            self.count_retry();
            self.log_failure(&format!("{}; retrying in {delay:?}", f.problem));
        })
        .await;
        match result {
            Ok(()) => {
                self.count_delivered();
                tracing::debug!(observer = %self.name, receiver = %self.origin, attempt, "delivered");
                if let Some(n) = self.failures.success() {
                    tracing::info!(
                        observer = %self.name,
                        receiver = %self.origin,
                        "webhook receiver accepts notifications again, after {n} failed attempts"
                    );
                }
            }
            Err(f) if f.cut_off => {
                self.count_failed();
                tracing::debug!(observer = %self.name, receiver = %self.origin, "notification cut off at shutdown, given up");
            }
            Err(f) => {
                self.count_failed();
                let why = if past_deadline.load(Ordering::Relaxed) {
                    format!("after attempt {attempt} of {max}, the next would come after the shutdown deadline")
                } else if f.retryable {
                    format!("after {attempt} of {max} attempts")
                } else {
                    "not retryable".to_owned()
                };
                self.log_failure(&format!("{}; {why}, giving up", f.problem));
            }
        }
    }

    /// One signed POST of `body`, for the outbox: `Err` with the problem,
    /// whether a retry may fix it, and the receiver's `Retry-After`.
    pub(crate) async fn attempt_once(&self, body: &[u8]) -> Result<(), (String, bool, Option<Duration>)> {
        let signature = self.secret.as_ref().map(|s| sign(s, body));
        self.attempt_until_cutoff(body, signature.as_deref()).await.map_err(|f| (f.problem, f.retryable, f.retry_after))
    }

    /// Counts a notification the receiver accepted.
    pub(crate) fn count_delivered(&self) {
        self.stats.count_delivered();
        self.export("delivered");
    }

    /// Counts a notification given up.
    pub(crate) fn count_failed(&self) {
        self.stats.count_failed();
        self.export("failed");
    }

    /// Counts an attempt that will be retried.
    pub(crate) fn count_retry(&self) {
        self.stats.count_retry();
        self.export("retried");
    }

    fn export(&self, outcome: &'static str) {
        metrics::counter!(monitor_core::observer::WEBHOOK_DELIVERIES_METRIC, "observer" => self.name.clone(), "receiver" => self.origin.clone(), "outcome" => outcome)
            .increment(1);
    }

    /// Says once that the receiver takes notifications again after failures.
    pub(crate) fn delivered_again(&self) {
        if let Some(n) = self.failures.success() {
            tracing::info!(
                observer = %self.name,
                receiver = %self.origin,
                "webhook receiver accepts notifications again, after {n} failed attempts"
            );
        }
    }

    /// Logs a failed attempt (see `log_failure`).
    pub(crate) fn log_attempt_failure(&self, what: &str) {
        self.log_failure(what);
    }

    /// Logs a failed attempt: the first of a run at `WARN`, then one summary
    /// line per [`SUMMARY_EVERY`], the others at `DEBUG`.
    fn log_failure(&self, what: &str) {
        let (observer, receiver) = (&self.name, &self.origin);
        match self.failures.failure() {
            Loudness::First => tracing::warn!(
                %observer,
                %receiver,
                "webhook delivery failed: {what} (further failures of this receiver are counted, with one line per {SUMMARY_EVERY})"
            ),
            Loudness::Summary(n) => tracing::warn!(
                %observer,
                %receiver,
                "webhook delivery failed {n} times in a row; {} notifications given up so far; the last: {what}",
                self.stats.failed()
            ),
            Loudness::Quiet => tracing::debug!(%observer, %receiver, "webhook delivery failed: {what}"),
        }
    }

    /// One attempt, abandoned at the cut-off.
    async fn attempt_until_cutoff(&self, body: &[u8], signature: Option<&str>) -> Result<(), Failure> {
        if self.shutdown.cutoff.is_cancelled() {
            return Err(Failure::cut_off());
        }
        tokio::select! {
            biased;
            () = self.shutdown.cutoff.cancelled() => Err(Failure::cut_off()),
            result = self.attempt(body, signature) => result,
        }
    }

    /// One POST of `body`.
    async fn attempt(&self, body: &[u8], signature: Option<&str>) -> Result<(), Failure> {
        let mut request =
            self.client.post(self.url.clone()).header(CONTENT_TYPE, "application/json").body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header(self.signature_header.as_str(), signature);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let failure = |problem: String, retryable: bool, retry_after: Option<Duration>| Failure {
            problem,
            retryable,
            retry_after,
            cut_off: false,
        };
        match request.send().await {
            Ok(mut response) => {
                let status = response.status();
                let retry_after = retry_after(response.headers());
                if status.is_redirection() {
                    return Err(failure(crate::redirect_detail(status, response.headers(), &self.url), false, None));
                }
                // A bounded prefix: what a receiver answers is not ours to hold.
                let _ = crate::read_body_prefix(&mut response).await;
                if status.is_success() {
                    return Ok(());
                }
                let retryable = status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error();
                Err(failure(format!("HTTP {status}"), retryable, retry_after))
            }
            Err(e) => Err(failure(crate::describe_request_error(&e), true, None)),
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Lower-case hex digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub(crate) fn sign(secret: &Secret, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    // HMAC takes keys of any length, so this cannot fail; be total anyway.
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex(&mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        let sig = sign(&Secret::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
