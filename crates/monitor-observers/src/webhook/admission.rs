//! Which events a webhook sends: the `events` and `min_severity` filters,
//! and the record of open alerts behind `repeat_interval` and resolves.
//!
//! Pure logic over event time, without I/O: [`Admission::admit`] decides
//! before anything is queued, so that what is never sent costs nothing.
//! Alerts are keyed by [`AlertKey`], the one identity of an alert that the
//! PagerDuty `dedup_key` and the Alertmanager `fingerprint` use too.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use monitor_core::event::{AlertKey, Event, EventKind, Finding, Severity};
use serde::{Deserialize, Serialize};

use super::format::Format;
use super::stats::WebhookStats;
use crate::text::escape_control;

/// The most alerts an alerter (and its Alertmanager renderer) keeps open. An
/// alert that would go past it pushes out the one sent longest ago, whose
/// recovery is then not sent; a warning says so.
pub(crate) const MAX_OPEN_ALERTS: usize = 10_000;

/// The `type` of an event, for the `events = [...]` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// `finding`
    Finding,
    /// `recovered`
    Recovered,
    /// `retrain_requested`
    RetrainRequested,
    /// `job_status`
    JobStatus,
}

impl EventType {
    /// Its name in `events = [...]`: `finding`, `recovered`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Finding => "finding",
            Self::Recovered => "recovered",
            Self::RetrainRequested => "retrain_requested",
            Self::JobStatus => "job_status",
        }
    }

    /// The type of `event`.
    pub fn of(event: &Event) -> Self {
        match event.kind {
            EventKind::Finding(_) => Self::Finding,
            EventKind::Recovered(_) => Self::Recovered,
            EventKind::RetrainRequested(_) => Self::RetrainRequested,
            EventKind::JobStatus(_) => Self::JobStatus,
        }
    }
}

/// An alert this webhook has sent and not resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OpenAlert {
    /// The severity it was last sent with.
    severity: Severity,
    /// The event time it was last sent at.
    sent_at: DateTime<Utc>,
}

/// Decides which events a webhook sends, and keeps its open alerts.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub(crate) name: String,
    pub(crate) format: Format,
    pub(crate) events: Option<Vec<EventType>>,
    pub(crate) min_severity: Option<Severity>,
    pub(crate) send_resolved: bool,
    pub(crate) repeat_interval: chrono::Duration,
    /// The alerts sent and not resolved, at most [`MAX_OPEN_ALERTS`].
    open: HashMap<AlertKey, OpenAlert>,
    pub(crate) stats: WebhookStats,
}

impl Admission {
    /// An admission with no alert open yet.
    pub(crate) fn new(
        name: String,
        format: Format,
        events: Option<Vec<EventType>>,
        min_severity: Option<Severity>,
        send_resolved: bool,
        repeat_interval: chrono::Duration,
        stats: WebhookStats,
    ) -> Self {
        Self { name, format, events, min_severity, send_resolved, repeat_interval, open: HashMap::new(), stats }
    }

    /// Whether `event` should go out, updating the record of open alerts.
    ///
    /// Every finding and recovery updates that record, whichever types are
    /// sent: an alert opens when its finding is sent and closes with its
    /// recovery, sent or not, so the next finding after a recovery is new.
    pub(crate) fn admit(&mut self, event: &Event) -> bool {
        let ty = EventType::of(event);
        let wanted = self.format.sends(ty) && self.events.as_ref().is_none_or(|e| e.contains(&ty));
        match &event.kind {
            EventKind::Finding(f) => wanted && self.admit_finding(event, f),
            EventKind::Recovered(f) => {
                let was_open = self.open.remove(&AlertKey::new(&event.key, f)).is_some();
                if !wanted || !self.send_resolved {
                    return false;
                }
                if self.events.as_ref().is_some_and(|e| !e.contains(&EventType::Finding)) {
                    // No finding is sent, so no alert is open: a recovery
                    // is an event of its own, filtered like a finding.
                    return self.min_severity.is_none_or(|min| f.severity >= min);
                }
                if !was_open {
                    // Nothing open for it (not sent, or already resolved):
                    // there is nothing to resolve.
                    self.stats.count_suppressed();
                    tracing::debug!(observer = %self.name, model = %escape_control(&event.key.model), "recovery of an alert that is not open, not sent");
                    return false;
                }
                true
            }
            EventKind::RetrainRequested(_) | EventKind::JobStatus(_) => wanted,
        }
    }

    /// Whether a finding goes out; opens (or updates) its alert if so.
    fn admit_finding(&mut self, event: &Event, f: &Finding) -> bool {
        if self.min_severity.is_some_and(|min| f.severity < min) {
            // Below the bar. An open alert of this key (a drift that became
            // a warning) stays open as it was sent, for its recovery to close.
            return false;
        }
        let key = AlertKey::new(&event.key, f);
        if let Some(open) = self.open.get(&key) {
            if open.severity == f.severity && event.ts.signed_duration_since(open.sent_at) < self.repeat_interval {
                self.stats.count_suppressed();
                tracing::debug!(observer = %self.name, model = %escape_control(&event.key.model), "repeat within repeat_interval, not sent");
                return false;
            }
        } else if self.open.len() >= MAX_OPEN_ALERTS {
            self.evict_oldest();
        }
        self.open.insert(key, OpenAlert { severity: f.severity, sent_at: event.ts });
        true
    }

    /// Forgets the open alert sent longest ago, to stay within [`MAX_OPEN_ALERTS`].
    fn evict_oldest(&mut self) {
        let oldest = self.open.iter().min_by_key(|(_, a)| a.sent_at).map(|(k, _)| k.clone());
        if let Some(key) = oldest {
            self.open.remove(&key);
            tracing::warn!(
                observer = %self.name,
                alert = %escape_control(&key.to_string()),
                "{MAX_OPEN_ALERTS} alerts are open: forgetting the oldest, whose recovery will not be sent"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use monitor_core::record::ModelKey;
    use monitor_core::signal::Signal;

    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            signal: Signal::LatencyMs,
            detector: "threshold".into(),
            severity,
            statistic: 200.0,
            threshold: 120.0,
            p_value: None,
            realised: None,
            message: "slow".into(),
        }
    }

    fn builder() -> super::super::WebhookBuilder {
        super::super::WebhookAlerter::builder("http://127.0.0.1:1/").unwrap()
    }

    fn at(secs: i64, kind: EventKind) -> Event {
        Event::new(ModelKey::new("m", "v"), DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs), 0, kind)
    }

    #[test]
    fn repeats_are_suppressed_within_the_interval_and_recoveries_reset() {
        let mut w = builder().repeat_interval(Duration::from_secs(100)).build().unwrap().admission;
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Warning)))));
        assert!(!w.admit(&at(50, EventKind::Finding(finding(Severity::Warning)))));
        // An escalation is a new alert.
        assert!(w.admit(&at(60, EventKind::Finding(finding(Severity::Drift)))));
        assert!(!w.admit(&at(159, EventKind::Finding(finding(Severity::Drift)))));
        assert!(w.admit(&at(160, EventKind::Finding(finding(Severity::Drift)))));
        assert!(w.admit(&at(170, EventKind::Recovered(finding(Severity::Drift)))));
        // Nothing to resolve any more.
        assert!(!w.admit(&at(171, EventKind::Recovered(finding(Severity::Drift)))));
        assert!(w.admit(&at(172, EventKind::Finding(finding(Severity::Drift)))));
        assert_eq!(w.stats.suppressed(), 3);
    }

    #[test]
    fn min_severity_and_event_filters() {
        let mut w = builder()
            .min_severity(Severity::Drift)
            .events([EventType::Finding, EventType::Recovered])
            .build()
            .unwrap()
            .admission;
        assert!(!w.admit(&at(0, EventKind::Finding(finding(Severity::Warning)))));
        assert!(!w.admit(&at(0, EventKind::Recovered(finding(Severity::Warning)))));
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        let job = monitor_core::event::JobUpdate {
            job_id: uuid::Uuid::nil(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            status: monitor_core::event::JobStatus::Queued,
            dispatcher: "command".into(),
            detail: None,
        };
        assert!(!w.admit(&at(0, EventKind::JobStatus(job))));
    }

    #[test]
    fn a_recovery_is_sent_when_its_alert_is_open_whatever_its_severity() {
        let mut w = builder().min_severity(Severity::Drift).build().unwrap().admission;
        // drift (sent), warning (below the bar, not sent), then stable: the
        // recovery carries `warning` and resolves the drift that was sent.
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        assert!(!w.admit(&at(10, EventKind::Finding(finding(Severity::Warning)))));
        assert!(w.admit(&at(20, EventKind::Recovered(finding(Severity::Warning)))));
        assert!(w.open.is_empty());
        // A warning alone opens nothing, so its recovery resolves nothing.
        assert!(!w.admit(&at(30, EventKind::Finding(finding(Severity::Warning)))));
        assert!(!w.admit(&at(40, EventKind::Recovered(finding(Severity::Warning)))));
        assert_eq!(w.stats.suppressed(), 1);
    }

    #[test]
    fn a_change_of_severity_updates_the_one_open_alert() {
        let mut w = builder().build().unwrap().admission;
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        // The de-escalation is sent, on the same alert: one is open.
        assert!(w.admit(&at(10, EventKind::Finding(finding(Severity::Warning)))));
        assert_eq!(w.open.len(), 1);
        assert!(w.admit(&at(20, EventKind::Recovered(finding(Severity::Warning)))));
        // One resolve closed it: a second recovery has nothing to close.
        assert!(!w.admit(&at(30, EventKind::Recovered(finding(Severity::Drift)))));
        assert!(w.open.is_empty());
    }

    #[test]
    fn a_de_escalation_below_min_severity_keeps_the_alert_as_sent() {
        let mut w = builder()
            .min_severity(Severity::Drift)
            .repeat_interval(Duration::from_secs(100))
            .build()
            .unwrap()
            .admission;
        assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
        assert!(!w.admit(&at(10, EventKind::Finding(finding(Severity::Warning)))));
        // Back to drift: the receiver still has that drift open, so it is a repeat.
        assert!(!w.admit(&at(20, EventKind::Finding(finding(Severity::Drift)))));
        assert_eq!(w.open.values().map(|a| a.severity).collect::<Vec<_>>(), [Severity::Drift]);
    }

    #[test]
    fn a_recovery_ends_the_alert_even_when_it_is_not_sent() {
        let interval = Duration::from_secs(3600);
        let mut quiet = builder().repeat_interval(interval).send_resolved(false).build().unwrap().admission;
        let mut findings_only =
            builder().repeat_interval(interval).events([EventType::Finding]).build().unwrap().admission;
        for w in [&mut quiet, &mut findings_only] {
            assert!(w.admit(&at(0, EventKind::Finding(finding(Severity::Drift)))));
            assert!(!w.admit(&at(10, EventKind::Recovered(finding(Severity::Drift)))));
            // A new episode, not a repeat of the one that ended.
            assert!(w.admit(&at(20, EventKind::Finding(finding(Severity::Drift)))));
        }
    }

    #[test]
    fn open_alerts_are_bounded() {
        let mut w = builder().build().unwrap().admission;
        for i in 0..=MAX_OPEN_ALERTS {
            let event = Event::new(
                ModelKey::new(format!("m{i}"), "v"),
                DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(i64::try_from(i).unwrap()),
                0,
                EventKind::Finding(finding(Severity::Drift)),
            );
            assert!(w.admit(&event));
        }
        assert_eq!(w.open.len(), MAX_OPEN_ALERTS);
        // The oldest went; the newest stayed.
        assert!(!w.open.keys().any(|k| k.model == "m0"));
        assert!(w.open.keys().any(|k| k.model == format!("m{MAX_OPEN_ALERTS}")));
    }
}
