//! The outbox: a webhook receiver that is down for ten minutes (on a short
//! clock: backoffs of milliseconds, and the outage as long as 600 of the
//! longest) gets every pending delivery once it is back, in order per
//! alert key, nothing lost; and the deliveries pending at a shutdown are
//! made after the next start.

use std::collections::BTreeMap;
use std::time::Duration;

use model_monitor::event::{AlertKey, EventKind};
use model_monitor::observers::testing::{Response, WebhookReceiver};
use model_monitor::runtime::journal::Journal;
use model_monitor::runtime::{Config, EngineBuilder, Overflow};
use model_monitor::testing::RecordingObserver;

use super::{context, observers};

fn config(hook: &str, state: &std::path::Path) -> String {
    format!(
        r#"
[[monitors]]
signal = "latency_ms"
detector = {{ kind = "threshold", statistic = "mean", window = 5, max = 100.0 }}

[engine]
shards = 2
state_dir = "{}"

[[observers]]
kind = "webhook"
url = "{hook}"
format = "json"
events = ["finding", "recovered"]
send_resolved = true
repeat_interval = "0s"
timeout = "1s"
retry = {{ max_attempts = 2, backoff = "1ms", max_backoff = "1ms" }}
"#,
        state.display()
    )
}

/// Three models that drift and recover in turns: several alerts each.
fn records() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..120 {
        for model in ["a", "b", "c"] {
            let slow = (i / 20) % 2 == 1;
            let latency = if slow { 400 } else { 20 };
            out.push(format!(
                r#"{{"model": "{model}", "latency_ms": {latency}, "ts": "2026-11-23T08:{:02}:{:02}Z"}}"#,
                i / 60,
                i % 60
            ));
        }
    }
    out
}

/// The (alert key, seq, type) of a delivered JSON event.
fn delivered(body: &serde_json::Value) -> (String, u64, String) {
    (
        format!(
            "{} {} {}",
            body["model"].as_str().unwrap(),
            body["signal"].as_str().unwrap(),
            body["detector"].as_str().unwrap()
        ),
        body["seq"].as_u64().unwrap(),
        body["type"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_ten_minutes_gets_every_delivery_in_order_per_key() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(Response::status(503));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = Config::from_toml(&config(&receiver.url(), &state)).unwrap();
    let recorder = RecordingObserver::new();
    let engine = EngineBuilder::from_config(&config, &observers(), &context(dir.path()))
        .unwrap()
        .overflow(Overflow::Block)
        .observer(Box::new(recorder.clone()))
        .spawn()
        .unwrap();
    let now = chrono::Utc::now();
    for line in records() {
        engine.sink().submit(model_monitor::record::Record::parse(&line, now).unwrap()).await.unwrap();
    }
    // Down: every attempt fails, and the rows wait, retried with backoff
    // (1ms doubling to 1ms: ten minutes is 600 of the longest backoffs).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let failed_attempts = receiver.requests().len();
    assert!(failed_attempts > 0, "the receiver was tried while down");
    let journal = Journal::open_existing(&state).unwrap();
    let pending = journal.outbox_rows(None, Some("pending"), 1000).unwrap();
    assert!(!pending.is_empty(), "deliveries wait in the outbox while the receiver is down");

    // Back up: everything pending arrives.
    receiver.set_default(Response::status(200));
    let expected: Vec<(String, u64, String)> = recorder
        .events()
        .iter()
        .filter_map(|e| {
            let key = AlertKey::of(e)?;
            let ty = match e.kind {
                EventKind::Finding(_) => "finding",
                EventKind::Recovered(_) => "recovered",
                _ => return None,
            };
            Some((format!("{} {} {}", key.model, key.signal, key.detector), e.seq, ty.to_owned()))
        })
        .collect();
    assert!(expected.len() >= 9, "several alerts per model: {expected:?}");
    let mut got = Vec::new();
    for _ in 0..500 {
        got = receiver.requests()[failed_attempts..].iter().map(|r| delivered(&r.json())).collect::<Vec<_>>();
        let left = journal.outbox_rows(None, Some("pending"), 1000).unwrap().len();
        if left == 0 && got.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let summary = engine.shutdown().await;
    assert_eq!(journal.outbox_rows(None, Some("pending"), 1000).unwrap().len(), 0, "nothing left pending");
    // Nothing lost: every alert event was delivered once the receiver came back.
    let mut want = expected.clone();
    want.sort();
    let mut have = got.clone();
    have.sort();
    have.dedup();
    assert_eq!(have, want);
    // In order per alert key.
    let mut per_key: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (key, seq, _) in &got {
        per_key.entry(key.as_str()).or_default().push(*seq);
    }
    for (key, seqs) in per_key {
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{key}: {seqs:?}");
    }
    assert_eq!(summary.observers.iter().map(|o| o.losses.given_up).sum::<u64>(), 0, "{summary:?}");
}
