//! Hostile input over real HTTP on 127.0.0.1: the fuzz seeds posted as
//! bodies, the defects schemathesis found in the server and its OpenAPI
//! document (scripts/schemathesis.sh), each kept as a regression test, and
//! every input limit checked at and past it, with what is counted.

use monitor_core::observer::ObserverRegistry;
use monitor_core::record::{MAX_NAME_BYTES, MAX_SIGNALS_PER_RECORD, MAX_TEXT_BYTES, RECORD_FIELDS};
use monitor_runtime::server::{Server, ServerHandle, openapi_document};
use monitor_runtime::{Config, EngineBuilder, RunningEngine, Summary};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::fuzz_corpus::corpus;

/// A latency monitor, so that records have something to feed.
const CONFIG: &str = r#"
[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 100.0 }

[[monitors]]
signal = "features.*"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 100.0 }

[server]
listen = "127.0.0.1:0"
"#;

struct Running {
    base: String,
    client: reqwest::Client,
    handle: ServerHandle,
    engine: RunningEngine,
    serving: JoinHandle<()>,
}

/// A server over an engine of [`CONFIG`] plus `extra` (more keys of
/// `[server]`, then other tables).
async fn start(extra: &str) -> Running {
    let config = Config::from_toml(&format!("{CONFIG}{extra}")).expect("a valid config");
    let server = Server::new(config.server.clone(), false).expect("a server");
    let engine = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &super::ctx())
        .expect("an engine")
        .observer(server.observer())
        .spawn()
        .expect("a running engine");
    let (handle, serving) = server.bind(engine.engine()).await.expect("bound to loopback");
    Running {
        base: format!("http://{}", handle.local_addr()),
        client: reqwest::Client::new(),
        handle,
        engine,
        serving: tokio::spawn(serving),
    }
}

impl Running {
    /// Posts `body` to /v1/records; the status and the JSON answer.
    async fn post(&self, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}/v1/records", self.base)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.expect("the server answers");
        let status = answer.status();
        let text = answer.text().await.expect("an answer body");
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {e}: {text}")))
    }

    async fn post_json(&self, body: &Value) -> (StatusCode, Value) {
        self.post(body.to_string(), &[("content-type", "application/json")]).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let answer = self.client.get(format!("{}{path}", self.base)).send().await.expect("the server answers");
        let status = answer.status();
        let text = answer.text().await.expect("an answer body");
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {status}: {e}: {text}")))
    }

    async fn stop(self) -> Summary {
        self.handle.shutdown();
        self.serving.await.expect("the server stops");
        self.engine.shutdown().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_parser_answers_every_fuzz_seed_with_200_or_400() {
    let s = start("max_line_bytes = 256\n").await;
    // The NDJSON seeds start with two bytes of the harness's settings.
    let bodies = corpus("record").into_iter().chain(corpus("ndjson").into_iter().map(|(n, b)| (n, b[2..].to_vec())));
    let mut answered = 0;
    for (name, body) in bodies {
        for content_type in ["application/json", "application/x-ndjson"] {
            let (status, json) = s.post(body.clone(), &[("content-type", content_type)]).await;
            let what = format!("{name} as {content_type}: {status} {json}");
            assert!(matches!(status.as_u16(), 200 | 400), "{what}");
            match json.get("accepted").and_then(Value::as_u64) {
                Some(accepted) => {
                    assert!(json["rejected"].is_u64(), "{what}");
                    assert_eq!(status == StatusCode::OK, accepted > 0, "{what}");
                }
                None => assert_eq!((status, json["error"].is_string()), (StatusCode::BAD_REQUEST, true), "{what}"),
            }
            answered += 1;
        }
    }
    assert!(answered >= 20, "{answered} bodies posted");
    s.stop().await;
}

// ---- Found by schemathesis ----------------------------------------------

/// `?limit=` and `?since=` past 64 bits were answered 400 while the
/// document set no maximum; now the document's maximum is what the server
/// takes (larger limits are capped), and one past it is a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_integers_are_taken_up_to_the_documented_maximum() {
    let doc = openapi_document();
    let events = &doc["paths"]["/v1/events"]["get"]["parameters"];
    assert_eq!(events[0]["schema"]["maximum"], json!(u64::MAX), "since");
    assert_eq!(events[1]["schema"]["maximum"], json!(usize::MAX), "limit");
    assert_eq!(doc["paths"]["/v1/models"]["get"]["parameters"][0]["schema"]["maximum"], json!(usize::MAX));
    let s = start("").await;
    let max = u64::MAX;
    for path in [format!("/v1/events?since={max}&limit={max}"), format!("/v1/models?limit={max}")] {
        assert_eq!(s.get(&path).await.0, StatusCode::OK, "{path}");
    }
    for path in ["/v1/events?since=18446744073709551616", "/v1/models?limit=39181275239231255738318848"] {
        let (status, json) = s.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(json["error"].as_str().is_some_and(|e| e.starts_with("bad query string")), "{json}");
    }
    s.stop().await;
}

/// `Content-Encoding` was a header parameter, so a generator paired
/// `gzip` with a plain body, which is a 400; the encoding is now described,
/// not a parameter. An empty array, which the document admitted, holds no
/// record and is a 400: the document now asks for one item at least.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_operation_documents_only_bodies_it_takes() {
    let doc = openapi_document();
    let post = &doc["paths"]["/v1/records"]["post"];
    assert!(post.get("parameters").is_none(), "{post}");
    assert!(post["description"].as_str().is_some_and(|d| d.contains("Content-Encoding: gzip")));
    let body = &post["requestBody"]["content"]["application/json"]["schema"]["oneOf"];
    assert_eq!(body[1]["minItems"], 1);
    let s = start("").await;
    let record = r#"{"model": "enc", "latency_ms": 1}"#;
    let headers = [("content-type", "application/json"), ("content-encoding", "gzip")];
    let (status, json) = s.post(record, &headers).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["error"].as_str().is_some_and(|e| e.contains("cannot be inflated")), "{json}");
    let (status, json) = s.post_json(&json!([])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    s.stop().await;
}

/// The record schema was looser than the parser: an empty `id` or
/// `version`, unknown fields, a label of the other type, a record without
/// a signal, all admitted and all rejected. It now states every rule JSON
/// Schema can, with the parser's own limits; and the parser takes what
/// JSON Schema calls an integer, `-35184372088833.0`, as an id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_schema_states_the_parsers_rules() {
    let doc = openapi_document();
    let schema = &doc["components"]["schemas"]["Record"];
    let mut fields: Vec<&str> =
        schema["properties"].as_object().expect("properties").keys().map(String::as_str).collect();
    let mut expected = RECORD_FIELDS.to_vec();
    fields.sort_unstable();
    expected.sort_unstable();
    assert_eq!(fields, expected);
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["model"]["maxLength"], MAX_NAME_BYTES);
    assert_eq!(schema["properties"]["features"]["maxProperties"], MAX_SIGNALS_PER_RECORD);
    assert_eq!(schema["properties"]["prediction"]["oneOf"][1]["maxLength"], MAX_TEXT_BYTES);

    let s = start("").await;
    // Admitted by the schema, and accepted: nulls count as absent, and an
    // integer may be written as a float.
    for record in [
        json!({"model": "m", "version": null, "ts": null, "features": null, "metrics": {"a": null, "b": 1}}),
        json!({"model": "m", "id": -35_184_372_088_833.0, "label": false}),
        json!({"model": "m", "id": 7, "label": "x", "prediction": null, "latency_ms": null}),
        json!({"model": "m", "features": {"f": null}}),
    ] {
        let (status, json) = s.post_json(&record).await;
        assert_eq!((status, &json["accepted"]), (StatusCode::OK, &json!(1)), "{record}: {json}");
    }
    // Refused by the schema, and rejected.
    for (record, field) in [
        (r#"{"model": "m", "id": "", "latency_ms": 1}"#, "id"),
        (r#"{"model": "m", "version": "", "latency_ms": 1}"#, "version"),
        (r#"{"model": "m", "latency_ms": 1, "extra": 1}"#, "extra"),
        (r#"{"model": "m", "prediction": 1, "label": "x"}"#, "label"),
        (r#"{"model": "m", "label": "x"}"#, "id"),
        (r#"{"model": "m", "id": -9223372036854775809, "label": "x"}"#, "id"),
    ] {
        let (status, json) = s.post(record, &[("content-type", "application/json")]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{record}: {json}");
        assert_eq!(json["errors"][0]["field"], field, "{record}: {json}");
    }
    let (status, json) = s.post_json(&json!({"model": "m", "metrics": {"a": null}, "features": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert!(json["errors"][0]["reason"].as_str().is_some_and(|r| r.contains("carries no signal")), "{json}");
    s.stop().await;
}

// ---- Limits, at and past them ---------------------------------------------

/// A name past 256 bytes, a class past 1024 and more than 4096 features and
/// metrics: each record is rejected, naming the field, and counted; at the
/// limit it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_past_a_size_limit_are_rejected_and_counted() {
    let s = start("max_body_bytes = 16777216\n").await;
    let features = |n: usize| -> Value { Value::Object((0..n).map(|i| (format!("f{i}"), json!(1.0))).collect()) };
    let at_limit = json!([
        {"model": "n".repeat(MAX_NAME_BYTES), "latency_ms": 1},
        {"model": "m", "prediction": "c".repeat(MAX_TEXT_BYTES)},
        {"model": "wide", "features": features(MAX_SIGNALS_PER_RECORD)},
    ]);
    let (status, json) = s.post_json(&at_limit).await;
    assert_eq!((status, &json["accepted"], &json["rejected"]), (StatusCode::OK, &json!(3), &json!(0)), "{json}");
    let past = json!([
        {"model": "n".repeat(MAX_NAME_BYTES + 1), "latency_ms": 1},
        {"model": "m", "prediction": "c".repeat(MAX_TEXT_BYTES + 1)},
        {"model": "wide", "features": features(MAX_SIGNALS_PER_RECORD + 1)},
        {"model": "m", "features": features(MAX_SIGNALS_PER_RECORD / 2 + 1), "metrics": {"a": 1, "b": 2}},
        {"model": "m", "latency_ms": 1},
    ]);
    let (status, json) = s.post_json(&past).await;
    // The record of 2049 features and 2 metrics is within the limit.
    assert_eq!((status, &json["accepted"], &json["rejected"]), (StatusCode::OK, &json!(2), &json!(3)), "{json}");
    let fields: Vec<&Value> = json["errors"].as_array().expect("errors").iter().map(|e| &e["field"]).collect();
    assert_eq!(fields, [&json!("model"), &json!("prediction"), &json!("features")], "{json}");
    let reason = json["errors"][2]["reason"].as_str().expect("a reason");
    assert!(reason.contains("too many features and metrics"), "{reason}");
    let summary = s.stop().await;
    assert_eq!((summary.monitor.records, summary.monitor.rejected), (5, 3), "{summary:?}");
}

/// A line past `server.max_line_bytes` is rejected with its number and
/// counted, and the lines around it are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_past_its_limit_is_rejected_and_counted() {
    let s = start("max_line_bytes = 64\n").await;
    let fits = r#"{"model": "lines", "latency_ms": 1}"#;
    let long = format!(r#"{{"model": "lines", "latency_ms": 1, "id": "{}"}}"#, "a".repeat(64));
    let body = format!("{fits}\n{long}\n{fits}\n");
    let (status, json) = s.post(body, &[("content-type", "application/x-ndjson")]).await;
    assert_eq!((status, &json["accepted"], &json["rejected"]), (StatusCode::OK, &json!(2), &json!(1)), "{json}");
    assert_eq!(json["errors"][0]["line"], 2);
    let summary = s.stop().await;
    assert_eq!((summary.monitor.records, summary.monitor.rejected), (2, 1), "{summary:?}");
}

/// Past `limits.max_model_versions` (models and versions alike), the
/// quietest version is evicted to make room and counted; the engine never
/// holds more. Past `limits.max_signals_per_model`, new signals of that
/// version are ignored and counted; the record's other signals are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_versions_and_signals_past_their_limits_are_counted() {
    let s = start("[limits]\nmax_model_versions = 4\nmax_signals_per_model = 3\n").await;
    let records: Vec<Value> = (0..6)
        .flat_map(|m| {
            (0..2).map(move |v| json!({"model": format!("m{m}"), "version": format!("v{v}"), "latency_ms": 1}))
        })
        .collect();
    let (status, json) = s.post_json(&Value::Array(records)).await;
    assert_eq!((status, &json["accepted"]), (StatusCode::OK, &json!(12)), "{json}");
    let wide = json!({"model": "m5", "version": "v1", "latency_ms": 2,
        "features": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}});
    let (status, json) = s.post_json(&wide).await;
    assert_eq!((status, &json["accepted"]), (StatusCode::OK, &json!(1)), "{json}");
    let mut held = 0;
    for _ in 0..500 {
        let (_, models) = s.get("/v1/models").await;
        let version = models["models"].as_array().expect("models").iter().find(|m| m["model"] == "m5");
        let signals =
            version.and_then(|m| m["versions"].as_array()?.iter().find(|v| v["version"] == "v1")?["signals"].as_u64());
        held = models["versions_total"].as_u64().expect("a count");
        if signals == Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(held <= 4, "{held} versions held");
    let summary = s.stop().await;
    assert_eq!(summary.monitor.records, 13, "{summary:?}");
    assert!(summary.monitor.versions_evicted >= 8, "{summary:?}");
    // latency_ms and two of the five features fit; three features do not.
    assert_eq!(summary.monitor.signals_dropped, 3, "{summary:?}");
}
