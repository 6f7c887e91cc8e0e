//! Request bodies in the forms that receivers accept.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use monitor_core::event::{AlertKey, Event, EventKind, Finding, JobStatus, Severity};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::admission::{EventType, MAX_OPEN_ALERTS};
use crate::secret::Secret;
use crate::text::{self, escape_control};

/// PagerDuty's Events API v2 endpoint, the default URL of that format.
pub(crate) const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Alertmanager's "zero time", the `endsAt` of a firing alert.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Our [`Event`], serialised as it is: one event per request, every type.
    #[default]
    Json,
    /// A Slack incoming-webhook message: `text` plus `blocks`. Findings of one
    /// model are grouped into one message; retrain and job events are sent too.
    Slack,
    /// PagerDuty Events API v2: a `trigger` per finding and a `resolve` per
    /// recovery, with a `dedup_key` stable per model, version, signal and
    /// detector ([`AlertKey::dedup_key`]). Drift maps to severity `critical`, warning to `warning`.
    /// Only findings and recoveries are sent.
    Pagerduty,
    /// The Alertmanager webhook envelope, version 4: findings of one model go
    /// out as one group of `alerts[]`, firing or resolved. An alert's
    /// `fingerprint` is stable per model, version, signal and detector
    /// ([`AlertKey::fingerprint`]); its `severity` label may change. Only findings and recoveries are sent.
    Alertmanager,
}

impl Format {
    /// Its name in the config: `json`, `slack`, `pagerduty`, `alertmanager`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Pagerduty => "pagerduty",
            Self::Alertmanager => "alertmanager",
        }
    }

    /// Whether findings are grouped per model for `group_wait`. PagerDuty
    /// takes one request per alert, so holding its triggers back would only
    /// delay them.
    pub(crate) fn groups(self) -> bool {
        matches!(self, Self::Slack | Self::Alertmanager)
    }

    /// Whether this format sends events of type `ty`.
    pub(crate) fn sends(self, ty: EventType) -> bool {
        match self {
            Self::Json | Self::Slack => true,
            Self::Pagerduty | Self::Alertmanager => matches!(ty, EventType::Finding | EventType::Recovered),
        }
    }
}

/// What the sender hands to the renderer: one event, or the findings of one
/// model gathered during `group_wait`.
#[derive(Debug, Clone)]
pub(crate) enum Notification {
    One(Box<Event>),
    Group(Vec<Event>),
}

impl Notification {
    fn events(&self) -> &[Event] {
        match self {
            Self::One(e) => std::slice::from_ref(e),
            Self::Group(events) => events,
        }
    }
}

/// What renderers need besides the events.
#[derive(Debug, Clone)]
pub(crate) struct RenderContext {
    pub(crate) routing_key: Option<Secret>,
    pub(crate) source: String,
}

/// Renders notifications; keeps the start time of firing Alertmanager
/// alerts, by alert, for the `startsAt` of their later updates and of their
/// resolve. An entry goes with its resolve, and there are at most
/// [`MAX_OPEN_ALERTS`] of them.
#[derive(Debug, Default)]
pub(crate) struct Renderer {
    started: HashMap<AlertKey, DateTime<Utc>>,
}

impl Renderer {
    /// The bodies to send for `n`: none, one, or (PagerDuty) one per alert.
    pub(crate) fn render(
        &mut self,
        format: Format,
        ctx: &RenderContext,
        receiver: &str,
        n: &Notification,
    ) -> Vec<Json> {
        match format {
            Format::Json => match n {
                Notification::One(e) => serde_json::to_value(e).into_iter().collect(),
                Notification::Group(events) => serde_json::to_value(events).into_iter().collect(),
            },
            Format::Slack => vec![slack(n.events())],
            Format::Pagerduty => n.events().iter().filter_map(|e| pagerduty(ctx, e)).collect(),
            Format::Alertmanager => self.alertmanager(receiver, n.events()).into_iter().collect(),
        }
    }

    /// The start of `alert`, which fires at `at`: kept from its first
    /// firing, so that a change of severity keeps its start.
    fn start(&mut self, alert: &AlertKey, at: DateTime<Utc>) -> DateTime<Utc> {
        if let Some(start) = self.started.get(alert) {
            return *start;
        }
        if self.started.len() >= MAX_OPEN_ALERTS {
            let oldest = self.started.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.started.remove(&oldest);
                tracing::debug!("{MAX_OPEN_ALERTS} alerts firing: forgetting the start of the oldest");
            }
        }
        self.started.insert(alert.clone(), at);
        at
    }

    fn alertmanager(&mut self, receiver: &str, events: &[Event]) -> Option<Json> {
        // One entry per alert: a later event of the same alert (a change of
        // severity, its recovery) within the group replaces the earlier one.
        let mut alerts: Vec<AmAlert> = Vec::new();
        for event in events {
            let (finding, firing) = match &event.kind {
                EventKind::Finding(f) => (f, true),
                EventKind::Recovered(f) => (f, false),
                _ => continue,
            };
            let labels = alert_labels(event, finding);
            let alert = AlertKey::new(&event.key, finding);
            let fingerprint = alert.fingerprint();
            let starts_at =
                if firing { self.start(&alert, event.ts) } else { self.started.remove(&alert).unwrap_or(event.ts) };
            let mut annotations = BTreeMap::new();
            // Annotations are for people: no control character gets through.
            annotations.insert("summary".to_owned(), escape_control(&summary(event, finding)).into_owned());
            annotations.insert("description".to_owned(), escape_control(&finding.message).into_owned());
            annotations.insert("statistic".to_owned(), finding.statistic.to_string());
            annotations.insert("threshold".to_owned(), finding.threshold.to_string());
            if let Some(p) = finding.p_value {
                annotations.insert("p_value".to_owned(), p.to_string());
            }
            let alert = json!({
                "status": if firing { "firing" } else { "resolved" },
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(starts_at),
                "endsAt": if firing { ZERO_TIME.to_owned() } else { rfc3339(event.ts) },
                "generatorURL": "",
                "fingerprint": fingerprint,
            });
            let entry = AmAlert { fingerprint, body: alert, labels, annotations };
            match alerts.iter_mut().find(|a| a.fingerprint == entry.fingerprint) {
                Some(earlier) => *earlier = entry,
                None => alerts.push(entry),
            }
        }
        let label_sets: Vec<_> = alerts.iter().map(|a| a.labels.clone()).collect();
        let annotation_sets: Vec<_> = alerts.iter().map(|a| a.annotations.clone()).collect();
        let alerts: Vec<Json> = alerts.into_iter().map(|a| a.body).collect();
        let first = events.first()?;
        if alerts.is_empty() {
            return None;
        }
        let firing = alerts.iter().any(|a| a["status"] == "firing");
        let model = &first.key.model;
        Some(json!({
            "version": "4",
            "groupKey": format!("{{}}:{{model={}}}", Json::String(model.clone())),
            "truncatedAlerts": 0,
            "status": if firing { "firing" } else { "resolved" },
            "receiver": receiver,
            "groupLabels": { "model": model },
            "commonLabels": common(&label_sets),
            "commonAnnotations": common(&annotation_sets),
            "externalURL": "",
            "alerts": alerts,
        }))
    }
}

/// One entry of an Alertmanager group, before it is serialised.
struct AmAlert {
    fingerprint: String,
    body: Json,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn rfc3339(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `fraud v3: metrics.accuracy drift (threshold)`.
fn summary(event: &Event, f: &Finding) -> String {
    format!("{} {}: {} {} ({})", event.key.model, event.key.version, f.signal, f.severity, f.detector)
}

fn alert_labels(event: &Event, f: &Finding) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("alertname".to_owned(), "ModelMonitorFinding".to_owned()),
        ("model".to_owned(), event.key.model.clone()),
        ("version".to_owned(), event.key.version.clone()),
        ("signal".to_owned(), f.signal.to_string()),
        ("detector".to_owned(), f.detector.clone()),
        ("severity".to_owned(), f.severity.to_string()),
    ])
}

/// The pairs that every map in `sets` has.
fn common(sets: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some((first, rest)) = sets.split_first() else { return BTreeMap::new() };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|s| s.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The PagerDuty `dedup_key` of a finding: its alert's, so that its resolve
/// closes the same incident; cut at PagerDuty's limit of 255 bytes.
pub(crate) fn dedup_key(event: &Event, f: &Finding) -> String {
    truncate(&AlertKey::new(&event.key, f).dedup_key(), 255)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let cut = (0..=max).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text[..cut].to_owned()
}

fn pagerduty(ctx: &RenderContext, event: &Event) -> Option<Json> {
    let routing_key = ctx.routing_key.as_ref().map(Secret::expose).unwrap_or_default();
    match &event.kind {
        EventKind::Finding(f) => Some(json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key(event, f),
            "client": "model-monitor",
            "payload": {
                // What PagerDuty shows people: no control character gets
                // through; `custom_details` keeps the names as they are.
                "summary": truncate(&escape_control(&format!("{}: {}", summary(event, f), f.message)), 1024),
                "source": ctx.source,
                "severity": match f.severity {
                    Severity::Drift => "critical",
                    Severity::Warning => "warning",
                },
                "timestamp": rfc3339(event.ts),
                "component": escape_control(&event.key.model),
                "group": escape_control(&event.key.version),
                "class": escape_control(&f.signal.to_string()),
                "custom_details": {
                    "model": event.key.model,
                    "version": event.key.version,
                    "signal": f.signal.to_string(),
                    "detector": f.detector,
                    "severity": f.severity,
                    "statistic": f.statistic,
                    "threshold": f.threshold,
                    "p_value": f.p_value,
                    "message": f.message,
                    "seq": event.seq,
                    "event_id": event.id,
                },
            },
        })),
        EventKind::Recovered(f) => Some(json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key(event, f),
        })),
        EventKind::RetrainRequested(_) | EventKind::JobStatus(_) => None,
    }
}

/// One line about an event, in Slack's mrkdwn, before escaping: the
/// templates hold no `&`, `<` or `>`, so escaping the whole line (see
/// [`text::slack`]) escapes exactly the names and messages in it.
fn slack_line(event: &Event) -> String {
    match &event.kind {
        EventKind::Finding(f) => format!(
            "{} *{}* `{}` ({}): {} (statistic {}, threshold {})",
            match f.severity {
                Severity::Drift => ":red_circle:",
                Severity::Warning => ":large_yellow_circle:",
            },
            f.severity,
            f.signal,
            f.detector,
            f.message,
            f.statistic,
            f.threshold
        ),
        EventKind::Recovered(f) => {
            format!(":large_green_circle: *resolved* `{}` ({}): {} is back to normal", f.signal, f.detector, f.severity)
        }
        EventKind::RetrainRequested(r) => format!(
            ":arrows_counterclockwise: retraining requested, job `{}`: {}",
            r.job_id,
            r.reasons.iter().map(|f| format!("{} {}", f.signal, f.severity)).collect::<Vec<_>>().join(", ")
        ),
        EventKind::JobStatus(u) => {
            let what = match u.status {
                JobStatus::Queued => "queued",
                JobStatus::Dispatched => "started",
                JobStatus::Succeeded => "succeeded",
                JobStatus::Failed => "failed",
                JobStatus::Merged => "merged",
            };
            let detail = u.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            format!(":gear: retraining {what} via {} (job `{}`){detail}", u.dispatcher, u.job_id)
        }
    }
}

fn slack(events: &[Event]) -> Json {
    let Some(first) = events.first() else { return json!({ "text": "" }) };
    let key = &first.key;
    let title = if let [event] = events {
        match &event.kind {
            EventKind::Finding(f) => format!("{key}: {} {}", f.signal, f.severity),
            EventKind::Recovered(f) => format!("{key}: {} resolved", f.signal),
            EventKind::RetrainRequested(_) => format!("{key}: retraining requested"),
            EventKind::JobStatus(u) => format!("{key}: retraining {}", u.status),
        }
    } else {
        let firing = events.iter().filter(|e| matches!(e.kind, EventKind::Finding(_))).count();
        let resolved = events.len() - firing;
        match (firing, resolved) {
            (f, 0) => format!("{key}: {f} findings"),
            (0, r) => format!("{key}: {r} resolved"),
            (f, r) => format!("{key}: {f} findings, {r} resolved"),
        }
    };
    let title = text::slack(&title);
    // Slack allows 50 blocks, 150 characters in a header, 3000 in a section.
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": truncate(&format!("model-monitor: {title}"), 150) },
    })];
    let lines: Vec<String> = events.iter().map(|e| text::slack(&slack_line(e))).collect();
    for line in lines.iter().take(45) {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(line, 3000) } }));
    }
    if lines.len() > 45 {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("…and {} more", lines.len() - 45) } }));
    }
    let last = events.iter().map(|e| e.seq).max().unwrap_or(first.seq);
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": text::slack(&format!("model *{}* version *{}* · input #{last} · {}", key.model, key.version, rfc3339(first.ts))) }],
    }));
    let text = std::iter::once(format!("model-monitor: {title}")).chain(lines).collect::<Vec<_>>().join("\n");
    json!({ "text": truncate(&text, 3000), "blocks": blocks })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use monitor_core::record::ModelKey;
    use monitor_core::signal::Signal;

    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            signal: Signal::Metric("accuracy".into()),
            detector: "threshold".into(),
            severity,
            statistic: 0.81,
            threshold: 0.9,
            p_value: None,
            realised: None,
            message: "mean of metrics.accuracy 0.81 < min 0.9".into(),
        }
    }

    fn event(kind: EventKind) -> Event {
        Event::new(ModelKey::new("fraud", "v3"), DateTime::<Utc>::UNIX_EPOCH, 41, kind)
    }

    #[test]
    fn fingerprints_are_stable_per_alert_whatever_its_severity() {
        let mut r = Renderer::default();
        let mut fingerprint = |e: Event| {
            let body = r.alertmanager("am", &[e]).unwrap();
            body["alerts"][0]["fingerprint"].as_str().unwrap().to_owned()
        };
        let drift = fingerprint(event(EventKind::Finding(finding(Severity::Drift))));
        assert_eq!(drift, fingerprint(event(EventKind::Finding(finding(Severity::Warning)))));
        assert_eq!(drift, fingerprint(event(EventKind::Recovered(finding(Severity::Warning)))));
        assert_eq!(drift.len(), 16);
        let mut other = finding(Severity::Drift);
        other.detector = "ks".into();
        assert_ne!(drift, fingerprint(event(EventKind::Finding(other))));
        let mut v4 = event(EventKind::Finding(finding(Severity::Drift)));
        v4.key.version = "v4".into();
        assert_ne!(drift, fingerprint(v4));
    }

    #[test]
    fn pagerduty_dedup_keys_are_the_alert_key_cut_at_255_bytes() {
        let e = event(EventKind::Finding(finding(Severity::Drift)));
        assert_eq!(dedup_key(&e, &finding(Severity::Warning)), "model-monitor/fraud/v3/metrics.accuracy/threshold");
        let mut long = e.clone();
        long.key.model = "é".repeat(200);
        let key = dedup_key(&long, &finding(Severity::Drift));
        assert!(key.len() <= 255 && key.starts_with("model-monitor/éé"), "{key}");
    }

    #[test]
    fn a_change_of_severity_keeps_the_alert_and_one_resolve_closes_it() {
        let mut r = Renderer::default();
        let at = |minutes: i64, kind: EventKind| {
            let mut e = event(kind);
            e.ts += chrono::Duration::minutes(minutes);
            e
        };
        let warn = r.alertmanager("am", &[at(0, EventKind::Finding(finding(Severity::Warning)))]).unwrap();
        let drift = r.alertmanager("am", &[at(1, EventKind::Finding(finding(Severity::Drift)))]).unwrap();
        assert_eq!(warn["alerts"][0]["fingerprint"], drift["alerts"][0]["fingerprint"]);
        assert_eq!(drift["alerts"][0]["labels"]["severity"], "drift");
        assert_eq!(drift["alerts"][0]["startsAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(r.started.len(), 1);
        let heal = r.alertmanager("am", &[at(2, EventKind::Recovered(finding(Severity::Drift)))]).unwrap();
        assert_eq!(heal["alerts"][0]["fingerprint"], warn["alerts"][0]["fingerprint"]);
        assert_eq!(heal["alerts"][0]["startsAt"], "1970-01-01T00:00:00.000Z");
        assert!(r.started.is_empty(), "the resolve forgets the alert");
    }

    #[test]
    fn a_group_carries_one_entry_per_alert_in_its_latest_state() {
        let mut r = Renderer::default();
        let body = r
            .alertmanager(
                "am",
                &[
                    event(EventKind::Finding(finding(Severity::Warning))),
                    event(EventKind::Finding(finding(Severity::Drift))),
                ],
            )
            .unwrap();
        let alerts = body["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{body}");
        assert_eq!(alerts[0]["labels"]["severity"], "drift");
        assert_eq!(body["commonLabels"]["severity"], "drift");
    }

    #[test]
    fn alert_starts_are_bounded() {
        let mut r = Renderer::default();
        for i in 0..=MAX_OPEN_ALERTS {
            let mut e = event(EventKind::Finding(finding(Severity::Drift)));
            e.key.model = format!("m{i}");
            e.ts += chrono::Duration::seconds(i64::try_from(i).unwrap());
            r.alertmanager("am", &[e]).unwrap();
        }
        assert_eq!(r.started.len(), MAX_OPEN_ALERTS);
    }

    #[test]
    fn alertmanager_resolves_keep_their_start() {
        let mut r = Renderer::default();
        let fire = event(EventKind::Finding(finding(Severity::Drift)));
        let mut heal = event(EventKind::Recovered(finding(Severity::Drift)));
        heal.ts = fire.ts + chrono::Duration::minutes(5);
        let body = r.alertmanager("am", &[fire]).unwrap();
        assert_eq!(body["status"], "firing");
        assert_eq!(body["alerts"][0]["endsAt"], ZERO_TIME);
        let body = r.alertmanager("am", &[heal]).unwrap();
        assert_eq!(body["status"], "resolved");
        assert_eq!(body["alerts"][0]["startsAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(body["alerts"][0]["endsAt"], "1970-01-01T00:05:00.000Z");
    }

    #[test]
    fn slack_escapes_names_and_messages_everywhere() {
        let mut e = event(EventKind::Finding(finding(Severity::Drift)));
        e.key.model = "<!channel> <https://evil|click>".into();
        e.key.version = "v1\nfake".into();
        if let EventKind::Finding(f) = &mut e.kind {
            f.message = "a & b <@U123>".into();
        }
        let body = slack(&[e]);
        let texts = [
            body["text"].clone(),
            body["blocks"][0]["text"]["text"].clone(),
            body["blocks"][1]["text"]["text"].clone(),
            body["blocks"][2]["elements"][0]["text"].clone(),
        ];
        for (i, t) in texts.iter().enumerate() {
            let t = t.as_str().unwrap();
            assert!(!t.contains('<') && !t.contains('>'), "{t}");
            assert!(!t.contains("v1\nfake"), "{t}");
            if i != 2 {
                assert!(t.contains("&lt;!channel&gt; &lt;https://evil|click&gt;"), "{t}");
            }
        }
        assert!(texts[2].as_str().unwrap().contains("a &amp; b &lt;@U123&gt;"), "{}", texts[2]);
        // Line breaks are ours only: one per event line in `text`.
        assert_eq!(texts[0].as_str().unwrap().lines().count(), 2, "{}", texts[0]);
    }

    #[test]
    fn pagerduty_and_alertmanager_text_carries_no_control_characters() {
        let mut e = event(EventKind::Finding(finding(Severity::Drift)));
        e.key.model = "fraud\n\u{1b}[2Jforged \"x\"".into();
        if let EventKind::Finding(f) = &mut e.kind {
            f.message = "line1\rline2".into();
        }
        let ctx = RenderContext { routing_key: Some(Secret::new("k")), source: "s".into() };
        let pd = pagerduty(&ctx, &e).unwrap();
        let summary = pd["payload"]["summary"].as_str().unwrap();
        assert!(!summary.chars().any(char::is_control), "{summary}");
        assert!(summary.starts_with("fraud\\n\\u{1b}[2Jforged"), "{summary}");
        assert!(!pd["payload"]["component"].as_str().unwrap().chars().any(char::is_control));
        // The details keep the name as it is, for machines.
        assert_eq!(pd["payload"]["custom_details"]["model"], e.key.model.as_str());
        let am = Renderer::default().alertmanager("am", &[e.clone()]).unwrap();
        for key in ["summary", "description"] {
            let text = am["alerts"][0]["annotations"][key].as_str().unwrap();
            assert!(!text.chars().any(char::is_control), "{key}: {text}");
        }
        assert_eq!(am["alerts"][0]["labels"]["model"], e.key.model.as_str());
        assert_eq!(am["groupKey"], format!("{{}}:{{model={}}}", serde_json::to_string(&e.key.model).unwrap()));
    }

    #[test]
    fn common_keeps_shared_pairs() {
        let a = BTreeMap::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())]);
        let b = BTreeMap::from([("a".to_owned(), "1".to_owned()), ("b".to_owned(), "3".to_owned())]);
        assert_eq!(common(&[a, b]), BTreeMap::from([("a".to_owned(), "1".to_owned())]));
    }
}
