use std::time::{Duration, Instant};

use monitor_core::event::Severity;
use monitor_core::observer::Observer;
use monitor_observers::retry::RetryPolicy;
use monitor_observers::testing::{Response, WebhookReceiver};
use monitor_observers::webhook::{WebhookAlerter, WebhookBuilder};

use crate::support::{finding_event, recovered_event, retrain_event};

const WAIT: Duration = Duration::from_secs(10);

fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts, Duration::from_millis(10), Duration::from_millis(40))
}

fn builder(receiver: &WebhookReceiver) -> WebhookBuilder {
    WebhookAlerter::builder(&receiver.url_for("/hook")).unwrap().retry(fast_retry(3)).group_wait(Duration::ZERO)
}

#[tokio::test]
async fn posts_the_event_as_json() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver).build().unwrap();
    let event = finding_event("fraud", "accuracy", Severity::Drift);
    alerter.on_event(&event).await.unwrap();
    alerter.flush().await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hook"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.json(), serde_json::to_value(&event).unwrap());
    assert_eq!(request.json()["type"], "finding");
    assert_eq!(alerter.stats().delivered(), 1);
    assert_eq!(alerter.stats().failed(), 0);
}

#[tokio::test]
async fn every_event_type_is_sent_unless_filtered() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.on_event(&retrain_event("fraud", "accuracy").1).await.unwrap();
    alerter.on_event(&recovered_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    let types: Vec<String> =
        receiver.requests().iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["finding", "retrain_requested", "recovered"]);

    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter =
        builder(&receiver).events([monitor_observers::webhook::EventType::RetrainRequested]).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.on_event(&retrain_event("fraud", "accuracy").1).await.unwrap();
    alerter.flush().await.unwrap();
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn non_2xx_is_a_failure_and_400_is_not_retried() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(400);
    let mut alerter = builder(&receiver).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(alerter.stats().failed(), 1);
    assert_eq!(alerter.stats().delivered(), 0);
    assert_eq!(alerter.stats().retries(), 0);
}

#[tokio::test]
async fn retries_5xx_and_429_then_delivers() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.respond_with(vec![503, 429, 200]);
    let mut alerter = builder(&receiver).retry(fast_retry(5)).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.windows(2).all(|w| w[0].body == w[1].body), "the same body is re-sent");
    assert_eq!(alerter.stats().delivered(), 1);
    assert_eq!(alerter.stats().retries(), 2);
    assert_eq!(alerter.stats().failed(), 0);
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_counts_it() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(500);
    let mut alerter = builder(&receiver).retry(fast_retry(3)).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(alerter.stats().failed(), 1);
    assert_eq!(alerter.stats().retries(), 2);
}

#[tokio::test]
async fn backoff_grows_between_attempts() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.respond_with(vec![503, 503, 503]);
    // Nominal delays 100ms then 200ms; jitter keeps at least half of each.
    let policy = RetryPolicy::new(4, Duration::from_millis(100), Duration::from_secs(1));
    let mut alerter = builder(&receiver).retry(policy).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    let r = receiver.requests();
    assert_eq!(r.len(), 4);
    assert!(r[1].received_at - r[0].received_at >= Duration::from_millis(50));
    assert!(r[2].received_at - r[1].received_at >= Duration::from_millis(100));
    assert!(r[3].received_at - r[2].received_at >= Duration::from_millis(200));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.push_response(Response::status(429).header("Retry-After", "1"));
    let mut alerter = builder(&receiver).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    let r = receiver.requests();
    assert_eq!(r.len(), 2);
    // The backoff alone would have waited at most 10ms.
    assert!(r[1].received_at - r[0].received_at >= Duration::from_millis(950));
    assert_eq!(alerter.stats().delivered(), 1);
}

#[tokio::test]
async fn a_hanging_or_garbage_receiver_is_timed_out_retried_and_counted() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.push_response(Response::hang());
    receiver.push_response(Response::garbage());
    let mut alerter = builder(&receiver).timeout(Duration::from_millis(300)).retry(fast_retry(3)).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(alerter.stats().retries(), 2);
    assert_eq!(alerter.stats().delivered(), 1);
}

#[tokio::test]
async fn connection_errors_are_retried() {
    // A port that nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut alerter = WebhookAlerter::builder(&format!("http://127.0.0.1:{port}/hook"))
        .unwrap()
        .retry(fast_retry(3))
        .build()
        .unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    assert_eq!(alerter.stats().retries(), 2);
    assert_eq!(alerter.stats().failed(), 1);
}

#[tokio::test]
async fn on_event_never_waits_for_the_network() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(Response::status(200).delay(Duration::from_secs(3600)));
    let mut alerter = builder(&receiver).timeout(WebhookAlerter::MAX_TIMEOUT).build().unwrap();
    let started = Instant::now();
    for i in 0..50 {
        alerter.on_event(&finding_event(&format!("model-{i}"), "accuracy", Severity::Drift)).await.unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(receiver.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_huge_answer_is_read_only_in_part() {
    let receiver = WebhookReceiver::start().await.unwrap();
    // A terabyte: a client that read it whole would never finish.
    receiver.push_response(Response::huge_body(500, 1 << 40));
    receiver.push_response(Response::huge_body(200, 1 << 40));
    let mut alerter = builder(&receiver).timeout(Duration::from_secs(60)).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!((alerter.stats().retries(), alerter.stats().delivered()), (1, 1));
    // What was taken is a prefix, give or take the sockets' buffers.
    let sent = receiver.body_bytes_sent();
    assert!(sent < 64 << 20, "{sent} bytes read");
}

#[tokio::test]
async fn redirects_are_failures_and_are_not_followed() {
    let elsewhere = WebhookReceiver::start().await.unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(Response::status(307).header("Location", elsewhere.url_for("/stolen?token=s3cret")));
    let mut alerter = builder(&receiver).secret(monitor_observers::secret::Secret::new("signing-key")).build().unwrap();
    let (logs, guard) = crate::support::capture_logs();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    drop(guard);
    assert_eq!(receiver.requests().len(), 1, "a redirect is not retried");
    assert!(elsewhere.requests().is_empty(), "the signed body went nowhere else");
    assert_eq!((alerter.stats().failed(), alerter.stats().delivered()), (1, 0));
    assert_eq!(alerter.losses().given_up, 1);
    let text = logs.text();
    assert!(text.contains(&format!("a redirect to {}, not followed", elsewhere.url())), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("/stolen"), "{text}");
}

#[tokio::test]
async fn every_lost_alert_is_counted_and_the_log_stays_quiet() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(500);
    receiver.push_response(Response::garbage());
    let mut alerter = builder(&receiver).queue(2).retry(fast_retry(2)).build().unwrap();
    let (logs, guard) = crate::support::capture_logs();
    let mut refused = 0;
    for i in 0..20 {
        if alerter.on_event(&finding_event(&format!("model-{i}"), "accuracy", Severity::Drift)).await.is_err() {
            refused += 1;
        }
    }
    alerter.flush().await.unwrap();
    drop(guard);
    let (stats, losses) = (alerter.stats(), alerter.losses());
    assert_eq!(stats.delivered(), 0);
    assert_eq!((losses.given_up, losses.dropped), (stats.failed(), stats.dropped()));
    assert_eq!(losses.dropped, refused);
    assert_eq!(losses.given_up + losses.dropped, 20, "{losses:?}");
    // One line for the first failed delivery, one for the first drop.
    let warnings = logs.warnings();
    assert!(warnings.len() <= 2, "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("further failures of this receiver are counted")), "{warnings:#?}");
}

#[tokio::test]
async fn a_retry_after_past_the_shutdown_deadline_is_not_waited() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(Response::status(503).header("Retry-After", "86400"));
    let mut alerter = builder(&receiver).retry(fast_retry(5)).shutdown_timeout(Duration::from_secs(2)).build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    // Capped at 5 minutes, and then cut by the flush's deadline: given up at once.
    tokio::time::timeout(WAIT, alerter.flush()).await.unwrap().unwrap();
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!((alerter.stats().failed(), alerter.stats().retries()), (1, 0));
}

#[tokio::test]
async fn a_flush_past_its_deadline_gives_up_what_is_pending_and_counts_it() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(Response::hang());
    let mut alerter = builder(&receiver)
        .timeout(WebhookAlerter::MAX_TIMEOUT)
        .shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    for i in 0..3 {
        alerter.on_event(&finding_event(&format!("model-{i}"), "accuracy", Severity::Drift)).await.unwrap();
    }
    tokio::time::timeout(WAIT, alerter.flush()).await.unwrap().unwrap();
    assert_eq!(alerter.losses().given_up, 3);
    assert_eq!(alerter.stats().delivered(), 0);
    // Cut off: it takes nothing more, and says so.
    let refused = alerter.on_event(&finding_event("late", "accuracy", Severity::Drift)).await.unwrap_err();
    assert!(refused.to_string().contains("cut off at shutdown"), "{refused}");
    assert_eq!(alerter.losses().dropped, 1);
}

#[tokio::test]
async fn groups_are_bounded() {
    use monitor_observers::webhook::Format;
    let receiver = WebhookReceiver::start().await.unwrap();
    let mut alerter = builder(&receiver)
        .format(Format::Slack)
        .group_wait(WebhookAlerter::MAX_GROUP_WAIT)
        .queue(1000)
        .build()
        .unwrap();
    for i in 0..150 {
        alerter.on_event(&finding_event("fraud", &format!("signal_{i}"), Severity::Drift)).await.unwrap();
    }
    // A full group goes out at once, without waiting for its hour.
    let first = receiver.wait_for(1, WAIT).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].json()["text"].as_str().unwrap().starts_with("model-monitor: fraud v3: 100 findings"));
    alerter.flush().await.unwrap();
    let all = receiver.requests();
    assert_eq!(all.len(), 2);
    assert!(all[1].json()["text"].as_str().unwrap().starts_with("model-monitor: fraud v3: 50 findings"));
}

#[tokio::test]
async fn credentials_in_the_url_are_warned_about_and_never_logged() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(500);
    let url = receiver.url_for("/hook").replace("http://", "http://alice:pa55word@");
    let (logs, guard) = crate::support::capture_logs();
    let builder = WebhookAlerter::builder(&url).unwrap().retry(fast_retry(2));
    let debug = format!("{builder:?}");
    let mut alerter = builder.build().unwrap();
    alerter.on_event(&finding_event("fraud", "accuracy", Severity::Drift)).await.unwrap();
    alerter.flush().await.unwrap();
    drop(guard);
    // They are sent, as HTTP Basic authentication.
    assert_eq!(receiver.requests()[0].header("authorization"), Some("Basic YWxpY2U6cGE1NXdvcmQ="));
    let text = logs.text();
    assert!(text.contains("the URL carries credentials"), "{text}");
    for shown in [text.as_str(), debug.as_str(), &format!("{alerter:?}")] {
        assert!(!shown.contains("pa55word") && !shown.contains("alice"), "{shown}");
    }
}
