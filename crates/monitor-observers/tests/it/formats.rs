//! Webhook formats, checked against each receiver's documented field list,
//! and the alert-fatigue controls.

use std::time::{Duration, Instant};

use monitor_core::event::{Event, Severity};
use monitor_core::observer::Observer;
use monitor_observers::retry::RetryPolicy;
use monitor_observers::secret::Secret;
use monitor_observers::testing::{Response, WebhookReceiver};
use monitor_observers::webhook::{Format, WebhookAlerter, WebhookBuilder};
use serde_json::Value;

use crate::support::{finding_event, recovered_event, retrain_event};

const WAIT: Duration = Duration::from_secs(10);

fn builder(receiver: &WebhookReceiver, format: Format) -> WebhookBuilder {
    WebhookAlerter::builder(&receiver.url_for("/hook"))
        .unwrap()
        .format(format)
        .group_wait(Duration::ZERO)
        .retry(RetryPolicy::new(2, Duration::from_millis(10), Duration::from_millis(10)))
}

async fn send(alerter: &mut WebhookAlerter, events: &[Event]) {
    for e in events {
        alerter.on_event(e).await.unwrap();
    }
    alerter.flush().await.unwrap();
}

fn has_keys(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "`{key}` missing in {value}");
    }
}

#[tokio::test]
async fn slack_sends_text_and_blocks() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Slack).build().unwrap();
    send(&mut alerter, &[finding_event("fraud", "accuracy", Severity::Drift), retrain_event("fraud", "accuracy").1])
        .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let body = r.json();
        assert!(body["text"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        for block in blocks {
            assert!(["header", "section", "context"].contains(&block["type"].as_str().unwrap()), "{block}");
        }
    }
    let finding = requests[0].json();
    assert!(finding["text"].as_str().unwrap().contains("fraud v3: metrics.accuracy drift"), "{finding}");
    assert_eq!(finding["blocks"][1]["text"]["type"], "mrkdwn");
    assert!(requests[1].json()["text"].as_str().unwrap().contains("retraining requested"));
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_with_a_stable_dedup_key() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Pagerduty)
        .routing_key(Secret::new("R0UTING-KEY"))
        .source("ml-prod")
        .build()
        .unwrap();
    send(
        &mut alerter,
        &[
            finding_event("fraud", "accuracy", Severity::Warning),
            finding_event("fraud", "accuracy", Severity::Drift),
            retrain_event("fraud", "accuracy").1,
            recovered_event("fraud", "accuracy", Severity::Drift),
        ],
    )
    .await;
    let bodies: Vec<Value> = receiver.requests().iter().map(|r| r.json()).collect();
    // The retrain request is not an alert: PagerDuty gets triggers and a resolve.
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for trigger in &bodies[..2] {
        has_keys(trigger, &["routing_key", "event_action", "dedup_key", "payload"]);
        assert_eq!(trigger["routing_key"], "R0UTING-KEY");
        assert_eq!(trigger["event_action"], "trigger");
        let payload = &trigger["payload"];
        has_keys(payload, &["summary", "source", "severity", "timestamp", "custom_details"]);
        assert!(payload["summary"].as_str().unwrap().len() <= 1024);
        assert_eq!(payload["source"], "ml-prod");
        assert!(["critical", "error", "warning", "info"].contains(&payload["severity"].as_str().unwrap()));
        assert_eq!(payload["custom_details"]["signal"], "metrics.accuracy");
        assert_eq!(payload["custom_details"]["model"], "fraud");
    }
    assert_eq!(bodies[0]["payload"]["severity"], "warning");
    assert_eq!(bodies[1]["payload"]["severity"], "critical");
    let key = &bodies[0]["dedup_key"];
    assert_eq!(key, "model-monitor/fraud/v3/metrics.accuracy/threshold");
    assert_eq!(&bodies[1]["dedup_key"], key);
    let resolve = &bodies[2];
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(&resolve["dedup_key"], key);
    assert_eq!(resolve["routing_key"], "R0UTING-KEY");
}

#[tokio::test]
async fn pagerduty_sends_at_once_without_a_group_wait() {
    let receiver = WebhookReceiver::start().await.unwrap();
    // Not the test builder, which sets group_wait to zero: the defaults.
    let mut alerter = WebhookAlerter::builder(&receiver.url_for("/hook"))
        .unwrap()
        .format(Format::Pagerduty)
        .routing_key(Secret::new("R0UTING-KEY"))
        .build()
        .unwrap();
    let started = Instant::now();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    // No flush: nothing holds the trigger back for the 30s of the grouping formats.
    assert_eq!(receiver.wait_for(1, WAIT).await.len(), 1);
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn pagerduty_with_min_severity_drift_resolves_a_drift_that_recovers_through_warning() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Pagerduty)
        .routing_key(Secret::new("R0UTING-KEY"))
        .min_severity(Severity::Drift)
        .build()
        .unwrap();
    // drift -> warning -> stable: the recovery carries the last severity, warning.
    send(
        &mut alerter,
        &[
            finding_event("fraud", "accuracy", Severity::Drift),
            finding_event("fraud", "accuracy", Severity::Warning),
            recovered_event("fraud", "accuracy", Severity::Warning),
            // A warning alone never reached PagerDuty: nothing to resolve.
            finding_event("fraud", "f1_score", Severity::Warning),
            recovered_event("fraud", "f1_score", Severity::Warning),
        ],
    )
    .await;
    let bodies: Vec<Value> = receiver.requests().iter().map(|r| r.json()).collect();
    let actions: Vec<(&str, &str)> =
        bodies.iter().map(|b| (b["event_action"].as_str().unwrap(), b["dedup_key"].as_str().unwrap())).collect();
    let key = "model-monitor/fraud/v3/metrics.accuracy/threshold";
    assert_eq!(actions, [("trigger", key), ("resolve", key)]);
    assert_eq!(bodies[0]["payload"]["severity"], "critical");
    assert_eq!(alerter.stats().suppressed(), 1);
}

#[tokio::test]
async fn alertmanager_sends_the_version_4_envelope() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Alertmanager).name("ml-alerts").build().unwrap();
    send(&mut alerter, &[finding_event("fraud", "accuracy", Severity::Drift)]).await;
    send(&mut alerter, &[recovered_event("fraud", "accuracy", Severity::Drift)]).await;
    let bodies: Vec<Value> = receiver.requests().iter().map(|r| r.json()).collect();
    assert_eq!(bodies.len(), 2);
    for body in &bodies {
        has_keys(
            body,
            &[
                "version",
                "groupKey",
                "truncatedAlerts",
                "status",
                "receiver",
                "groupLabels",
                "commonLabels",
                "commonAnnotations",
                "externalURL",
                "alerts",
            ],
        );
        assert_eq!(body["version"], "4");
        assert_eq!(body["receiver"], "ml-alerts");
        assert_eq!(body["groupKey"], "{}:{model=\"fraud\"}");
        assert_eq!(body["groupLabels"]["model"], "fraud");
        let alert = &body["alerts"][0];
        has_keys(alert, &["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]);
        assert_eq!(alert["labels"]["alertname"], "ModelMonitorFinding");
        assert_eq!(alert["labels"]["signal"], "metrics.accuracy");
        assert!(alert["annotations"]["summary"].is_string());
        for time in ["startsAt", "endsAt"] {
            chrono::DateTime::parse_from_rfc3339(alert[time].as_str().unwrap()).unwrap();
        }
    }
    let (firing, resolved) = (&bodies[0], &bodies[1]);
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["alerts"][0]["status"], "firing");
    assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(resolved["alerts"][0]["fingerprint"], firing["alerts"][0]["fingerprint"]);
    assert_eq!(resolved["alerts"][0]["startsAt"], firing["alerts"][0]["startsAt"]);
}

#[tokio::test]
async fn alertmanager_keeps_one_alert_through_a_change_of_severity_and_one_resolve_closes_it() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Alertmanager).build().unwrap();
    let warning = finding_event("fraud", "accuracy", Severity::Warning);
    let mut drift = finding_event("fraud", "accuracy", Severity::Drift);
    drift.ts = warning.ts + chrono::Duration::minutes(1);
    let mut stable = recovered_event("fraud", "accuracy", Severity::Drift);
    stable.ts = warning.ts + chrono::Duration::minutes(2);
    send(&mut alerter, &[warning.clone(), drift, stable]).await;
    let alerts: Vec<Value> = receiver.requests().iter().map(|r| r.json()["alerts"][0].clone()).collect();
    let states: Vec<(&str, &str)> =
        alerts.iter().map(|a| (a["status"].as_str().unwrap(), a["labels"]["severity"].as_str().unwrap())).collect();
    assert_eq!(states, [("firing", "warning"), ("firing", "drift"), ("resolved", "drift")]);
    // One alert: one fingerprint, one start, closed by the one resolve. The
    // fingerprint is the alert's key: the FNV-1a label-set fingerprint of
    // Prometheus over detector, model, signal and version.
    assert!(alerts.iter().all(|a| a["fingerprint"] == "aabbf285b8a3ea7e"), "{alerts:?}");
    let start = warning.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert!(alerts.iter().all(|a| a["startsAt"] == start.as_str()), "{alerts:?}");
}

#[tokio::test]
async fn resolve_can_be_turned_off() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Alertmanager).send_resolved(false).build().unwrap();
    send(
        &mut alerter,
        &[finding_event("fraud", "accuracy", Severity::Drift), recovered_event("fraud", "accuracy", Severity::Drift)],
    )
    .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["status"], "firing");
}

#[tokio::test]
async fn findings_of_one_model_within_group_wait_go_out_as_one_notification() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Alertmanager).group_wait(Duration::from_millis(300)).build().unwrap();
    for event in [
        finding_event("fraud", "accuracy", Severity::Drift),
        finding_event("churn", "accuracy", Severity::Drift),
        finding_event("fraud", "f1_score", Severity::Drift),
        finding_event("fraud", "drift_score", Severity::Warning),
    ] {
        alerter.on_event(&event).await.unwrap();
    }
    // No flush: the group_wait timer sends them.
    let requests = receiver.wait_for(2, WAIT).await;
    assert_eq!(requests.len(), 2);
    let mut sizes: Vec<(String, usize)> = requests
        .iter()
        .map(|r| {
            let body = r.json();
            (body["groupLabels"]["model"].as_str().unwrap().to_owned(), body["alerts"].as_array().unwrap().len())
        })
        .collect();
    sizes.sort();
    assert_eq!(sizes, [("churn".to_owned(), 1), ("fraud".to_owned(), 3)]);
    let fraud = requests.iter().map(|r| r.json()).find(|b| b["groupLabels"]["model"] == "fraud").unwrap();
    assert_eq!(fraud["commonLabels"]["model"], "fraud");
    assert!(fraud["commonLabels"].get("signal").is_none(), "signals differ: {fraud}");
}

#[tokio::test]
async fn the_same_alert_is_not_resent_within_repeat_interval() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Json).repeat_interval(Duration::from_secs(3600)).build().unwrap();
    let first = finding_event("fraud", "accuracy", Severity::Drift);
    let mut again = first.clone();
    again.ts = first.ts + chrono::Duration::minutes(30);
    let mut later = first.clone();
    later.ts = first.ts + chrono::Duration::minutes(61);
    let other = finding_event("fraud", "f1_score", Severity::Drift);
    send(&mut alerter, &[first, again, other, later.clone()]).await;
    let requests = receiver.requests();
    let signals: Vec<Value> = requests.iter().map(|r| r.json()["signal"].clone()).collect();
    assert_eq!(signals, ["metrics.accuracy", "metrics.f1_score", "metrics.accuracy"]);
    assert_eq!(requests[2].json()["ts"], serde_json::to_value(later.ts).unwrap());
    assert_eq!(alerter.stats().suppressed(), 1);
}

#[tokio::test]
async fn min_severity_drops_warnings() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Json).min_severity(Severity::Drift).build().unwrap();
    send(
        &mut alerter,
        &[finding_event("fraud", "accuracy", Severity::Warning), finding_event("fraud", "f1_score", Severity::Drift)],
    )
    .await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["severity"], "drift");
}

#[tokio::test]
async fn the_body_is_signed_with_hmac_sha256() {
    use hmac::{KeyInit, Mac};
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver, Format::Json).secret(Secret::new("shared-secret")).build().unwrap();
    send(&mut alerter, &[finding_event("fraud", "accuracy", Severity::Drift)]).await;
    let request = receiver.requests().pop().unwrap();
    let header = request.header("x-model-monitor-signature").unwrap();
    let hex = header.strip_prefix("sha256=").unwrap();
    let signature: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    // The receiver's side: recompute over the raw body, compare in constant time.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"shared-secret").unwrap();
    mac.update(&request.body);
    mac.verify_slice(&signature).expect("signature verifies");
    let mut wrong = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"other-secret").unwrap();
    wrong.update(&request.body);
    assert!(wrong.verify_slice(&signature).is_err());
}

#[tokio::test]
async fn a_dead_receiver_does_not_slow_a_healthy_one() {
    let dead = WebhookReceiver::start().await.unwrap();
    dead.set_default(Response::hang());
    let healthy = WebhookReceiver::start().await.unwrap();
    let mut stuck = WebhookAlerter::builder(&dead.url())
        .unwrap()
        .timeout(WebhookAlerter::MAX_TIMEOUT)
        .retry(RetryPolicy::new(5, Duration::from_secs(60), Duration::from_secs(60)))
        .build()
        .unwrap();
    let mut fine = builder(&healthy, Format::Json).build().unwrap();
    let started = Instant::now();
    for i in 0..20 {
        let event = finding_event(&format!("model-{i}"), "accuracy", Severity::Drift);
        stuck.on_event(&event).await.unwrap();
        fine.on_event(&event).await.unwrap();
    }
    fine.flush().await.unwrap();
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());
    assert_eq!(healthy.requests().len(), 20, "each event once, none re-sent");
    assert_eq!(fine.stats().delivered(), 20);
    assert_eq!(dead.wait_for(1, WAIT).await.len(), 1, "the dead one is still stuck on its first request");
    assert_eq!(stuck.stats().delivered() + stuck.stats().failed(), 0);
}
