//! The HTTP server, end to end over real HTTP on 127.0.0.1, in process.
//!
//! Every answer a test reads is also checked against the OpenAPI document:
//! its status must be documented for that path, and its JSON must have the
//! documented shape.

use std::io::Write;
use std::time::Duration;

use monitor_core::event::Event;
use monitor_core::observer::{Observer, ObserverRegistry};
use monitor_core::{Result as MonitorResult, async_trait};
use monitor_runtime::server::{Server, ServerHandle, openapi_document};
use monitor_runtime::{Config, EngineBuilder, Summary};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::ctx;

/// A monitor that fires on every record's latency above 100 ms (a window of
/// 2), and on a mean `error` above 0.5 once labels arrive.
const CONFIG: &str = r#"
[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 100.0 }

[[monitors]]
signal = "error"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 0.5 }

[policy]
min_samples = 2

[engine]
shards = 2

[server]
listen = "127.0.0.1:0"
"#;

struct Running {
    base: String,
    client: reqwest::Client,
    handle: ServerHandle,
    engine: monitor_runtime::RunningEngine,
    serving: JoinHandle<()>,
}

fn config(extra: &str) -> Config {
    Config::from_toml(&format!("{CONFIG}{extra}")).unwrap()
}

async fn start_with(config: Config, observers: Vec<Box<dyn Observer>>) -> Running {
    let server = Server::new(config.server.clone(), false).unwrap();
    let mut builder = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &ctx())
        .unwrap()
        .metrics_max_models(config.server.metrics_max_models)
        .observer(server.observer());
    for o in observers {
        builder = builder.observer(o);
    }
    let engine = builder.spawn().unwrap();
    let (handle, serving) = server.bind(engine.engine()).await.unwrap();
    assert!(handle.local_addr().ip().is_loopback());
    Running {
        base: format!("http://{}", handle.local_addr()),
        client: reqwest::Client::new(),
        handle,
        engine,
        serving: tokio::spawn(serving),
    }
}

async fn start(extra: &str) -> Running {
    start_with(config(extra), Vec::new()).await
}

/// An answer: status, headers and body, checked against the document.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

impl Running {
    async fn send(&self, request: reqwest::RequestBuilder, method: &str, template: &str) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let answer = Answer { status, headers, text };
        conforms(method, template, &answer);
        answer
    }

    async fn get(&self, path: &str, template: &str) -> Answer {
        self.send(self.client.get(format!("{}{path}", self.base)), "get", template).await
    }

    async fn post(&self, body: impl Into<reqwest::Body>, content_type: &str) -> Answer {
        let request = self
            .client
            .post(format!("{}/v1/records", self.base))
            .header("content-type", content_type)
            .body(body.into());
        self.send(request, "post", "/v1/records").await
    }

    async fn post_gzip(&self, body: &[u8], content_type: &str) -> Answer {
        let request = self
            .client
            .post(format!("{}/v1/records", self.base))
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(gzip(body));
        self.send(request, "post", "/v1/records").await
    }

    /// Asks until `done` holds for the model's answer: the server's own
    /// observer sees events a moment after the shards make them.
    async fn model_until(&self, model: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            let answer = self.get(&format!("/v1/models/{model}"), "/v1/models/{model}").await;
            if answer.status == StatusCode::OK && done(&answer.json()) {
                return answer.json();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the state of `{model}` never got there");
    }

    async fn stop(self) -> Summary {
        self.handle.shutdown();
        self.serving.await.unwrap();
        self.engine.shutdown().await
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

// ---- The OpenAPI document as a checker ----------------------------------

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unsupported $ref {r}"));
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unsupported type {other}"),
    }
}

/// Checks `value` against `schema` (the subset of JSON Schema the document
/// uses); the error names the path.
fn check(doc: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let passing = options.iter().filter(|s| check(doc, s, value, path).is_ok()).count();
        return if passing == 1 { Ok(()) } else { Err(format!("{path}: {passing} of oneOf match {value}")) };
    }
    if let Some(t) = schema.get("type") {
        let ok = match t {
            Value::String(name) => type_matches(name, value),
            Value::Array(names) => names.iter().any(|n| type_matches(n.as_str().unwrap(), value)),
            _ => panic!("bad type in schema at {path}"),
        };
        if !ok {
            return Err(format!("{path}: {value} is not of type {t}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if x < min {
            return Err(format!("{path}: {x} < minimum {min}"));
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                return Err(format!("{path}: required `{key}` is missing in {value}"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, v) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => check(doc, s, v, &format!("{path}.{key}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return Err(format!("{path}: `{key}` is not a documented property")),
                    Some(extra) if extra.is_object() => check(doc, extra, v, &format!("{path}.{key}"))?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check(doc, items, v, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

/// The answer's status is documented for `method` `template`, and its body
/// has the documented shape.
fn conforms(method: &str, template: &str, answer: &Answer) {
    let doc = openapi_document();
    let operation = &doc["paths"][template][method];
    assert!(operation.is_object(), "{method} {template} is not in the OpenAPI document");
    let status = answer.status.as_str();
    let response = &operation["responses"][status];
    assert!(response.is_object(), "{method} {template} answered {status}, which is not documented: {}", answer.text);
    let content_type = answer.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap().trim();
    let media = &response["content"][essence];
    assert!(media.is_object(), "{method} {template} {status}: content type {content_type} not documented");
    if essence == "application/json" {
        let body: Value = serde_json::from_str(&answer.text).unwrap();
        if let Err(e) = check(&doc, &media["schema"], &body, "$") {
            panic!("{method} {template} {status}: {e}");
        }
    }
}

// ---- The tests ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_posted_show_in_the_models_state() {
    let s = start("").await;
    let lines: Vec<Value> = [20.0, 30.0, 250.0, 300.0]
        .iter()
        .map(|ms| json!({"model": "ingest-query", "version": "v3", "latency_ms": ms}))
        .collect();
    let answer = s.post(ndjson(&lines), "application/x-ndjson").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!((answer.json()["accepted"].as_u64(), answer.json()["rejected"].as_u64()), (Some(4), Some(0)));

    let model = s.model_until("ingest-query", |m| !m["recent_findings"].as_array().unwrap().is_empty()).await;
    let version = &model["versions"][0];
    assert_eq!((version["version"].as_str(), version["records"].as_u64()), (Some("v3"), Some(4)));
    let detector = &version["detectors"][0];
    assert_eq!(detector["signal"], "latency_ms");
    assert_eq!(detector["status"], "drift");
    assert_eq!((detector["statistic"].as_f64(), detector["threshold"].as_f64()), (Some(275.0), Some(100.0)));
    assert_eq!(detector["open"]["severity"], "drift");
    assert_eq!(version["open_findings"], 1);
    assert_eq!(model["recent_findings"][0]["type"], "finding");
    // A retrain request followed the drift, and its job is listed.
    assert_eq!(model["jobs"][0]["status"], "requested");

    let models = s.get("/v1/models", "/v1/models").await.json();
    let listed = models["models"].as_array().unwrap().iter().find(|m| m["model"] == "ingest-query").unwrap();
    assert_eq!((listed["records"].as_u64(), listed["open_findings"].as_u64()), (Some(4), Some(1)));

    let events = s.get("/v1/events?since=0&limit=10", "/v1/events").await.json();
    let types: Vec<&str> =
        events["events"].as_array().unwrap().iter().map(|e| e["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["finding", "retrain_requested"]);
    let next = events["next_since"].as_u64().unwrap();
    let after = s.get(&format!("/v1/events?since={next}"), "/v1/events").await.json();
    assert!(after["events"].as_array().unwrap().is_empty());

    let unknown = s.get("/v1/models/nobody", "/v1/models/{model}").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let summary = s.stop().await;
    assert_eq!((summary.monitor.records, summary.monitor.findings), (4, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_objects_arrays_and_gzip_bodies_are_taken() {
    let s = start("").await;
    let one = s.post(json!({"model": "bodies", "latency_ms": 1}).to_string(), "application/json").await;
    assert_eq!(one.json()["accepted"], 1);
    let array = json!([{"model": "bodies", "latency_ms": 1}, {"model": "bodies", "latency_ms": 2}]).to_string();
    assert_eq!(s.post(array.clone(), "application/json; charset=utf-8").await.json()["accepted"], 2);
    let gz = s.post_gzip(array.as_bytes(), "application/json").await;
    assert_eq!((gz.status, gz.json()["accepted"].as_u64()), (StatusCode::OK, Some(2)));
    let lines: Vec<Value> = (0..100).map(|i| json!({"model": "bodies", "latency_ms": i})).collect();
    let gz = s.post_gzip(ndjson(&lines).as_bytes(), "application/x-ndjson").await;
    assert_eq!(gz.json()["accepted"], 100);
    let broken = s
        .send(
            s.client
                .post(format!("{}/v1/records", s.base))
                .header("content-encoding", "gzip")
                .body(b"not gzip at all".to_vec()),
            "post",
            "/v1/records",
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    let csv = s.post("model,latency\n", "text/csv").await;
    assert_eq!(csv.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(s.stop().await.monitor.records, 105);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ndjson_is_answered_with_line_numbers() {
    let s = start("").await;
    let body = "{\"model\": \"bad-lines\", \"latency_ms\": -5}\n{not json\n\n{\"latency_ms\": 3}\n";
    let answer = s.post(body, "application/x-ndjson").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let json = answer.json();
    assert_eq!((json["accepted"].as_u64(), json["rejected"].as_u64()), (Some(0), Some(3)));
    let errors = json["errors"].as_array().unwrap();
    let lines: Vec<u64> = errors.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 2, 4]);
    assert_eq!(errors[0]["field"], "latency_ms");
    assert_eq!(errors[2]["field"], "model");
    // Good lines beside bad ones go in; the answer still lists the bad ones.
    let mixed = s.post("{\"model\": \"bad-lines\", \"latency_ms\": 5}\n{oops\n", "application/x-ndjson").await;
    assert_eq!(mixed.status, StatusCode::OK);
    assert_eq!(mixed.json()["errors"][0]["line"], 2);
    let summary = s.stop().await;
    assert_eq!((summary.monitor.records, summary.monitor.rejected), (1, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_and_lines_over_their_limits_are_refused() {
    let s = start("max_body_bytes = 2048\nmax_decoded_bytes = 4096\nmax_line_bytes = 100\n").await;
    let big = "x".repeat(3000);
    assert_eq!(s.post(big.clone(), "application/x-ndjson").await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A small gzip body that inflates past max_decoded_bytes.
    let bomb = s.post_gzip("\n".repeat(100_000).as_bytes(), "application/x-ndjson").await;
    assert_eq!(bomb.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", bomb.text);
    // A body sent without a length (chunked) is cut off at the limit too.
    let chunk = format!("5dc\r\n{}\r\n", " ".repeat(1500));
    let request = format!(
        "POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    assert!(raw(&s, &request).await.starts_with("HTTP/1.1 413"));
    let long_line = format!("{{\"model\": \"limits\", \"latency_ms\": 1, \"id\": \"{}\"}}", "a".repeat(100));
    let body = format!("{{\"model\": \"limits\", \"latency_ms\": 1}}\n{long_line}\n");
    let answer = s.post(body, "application/x-ndjson").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["errors"][0]["line"], 2);
    assert!(answer.json()["errors"][0]["reason"].as_str().unwrap().contains("server.max_line_bytes"));
    s.stop().await;
}

/// Sends `request` as it is and returns the whole answer as text.
async fn raw(s: &Running, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(s.handle.local_addr()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // The server may close before reading the whole body: what it said is read.
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_loses_nothing() {
    let config = config("max_queued_records = 100\ningest_wait = \"0s\"\nretry_after = \"2s\"\n");
    let server = Server::new(config.server.clone(), false).unwrap();
    let (engine, driver) = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &ctx())
        .unwrap()
        .observer(server.observer())
        .build()
        .unwrap();
    let (handle, serving) = server.bind(&engine).await.unwrap();
    let serving = tokio::spawn(serving);
    let url = format!("http://{}/v1/records", handle.local_addr());
    let client = reqwest::Client::new();
    let post = |body: String| {
        let request = client.post(&url).header("content-type", "application/x-ndjson").body(body);
        async move {
            let response = request.send().await.unwrap();
            let (status, headers) = (response.status(), response.headers().clone());
            let answer = Answer { status, headers, text: response.text().await.unwrap() };
            conforms("post", "/v1/records", &answer);
            answer
        }
    };
    // The engine's driver is not running: nothing is processed, so the
    // records accepted hold the whole budget.
    let lines: Vec<Value> = (0..80).map(|i| json!({"model": "overload", "latency_ms": i})).collect();
    assert_eq!(post(ndjson(&lines)).await.json()["accepted"], 80);
    let refused = post(ndjson(&lines)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text);
    assert_eq!(refused.headers.get("retry-after").unwrap(), "2");
    assert_eq!(engine.stats().overloaded, 80);
    // Once the engine runs, the budget comes back and the same body goes in.
    let driver = tokio::spawn(driver);
    let mut accepted = false;
    for _ in 0..500 {
        let again = post(ndjson(&lines)).await;
        if again.status == StatusCode::OK {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted, "the retried body was never accepted");
    handle.shutdown();
    serving.await.unwrap();
    engine.shutdown();
    let summary = driver.await.unwrap();
    // Every record acknowledged was processed; the refused ones were not.
    assert_eq!(summary.monitor.records, 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_label_makes_an_error_finding() {
    let s = start("").await;
    let predictions: Vec<Value> = (0..4)
        .map(|i| json!({"model": "late-labels", "id": format!("req-{i}"), "prediction": "fraud", "latency_ms": 5}))
        .collect();
    assert_eq!(s.post(ndjson(&predictions), "application/x-ndjson").await.json()["accepted"], 4);
    // The labels come later, in their own request, and disagree.
    let labels: Vec<Value> =
        (0..4).map(|i| json!({"model": "late-labels", "id": format!("req-{i}"), "label": "legit"})).collect();
    let answer = s.post(serde_json::to_string(&labels).unwrap(), "application/json").await;
    assert_eq!(answer.json()["accepted"], 4, "{}", answer.text);
    let model = s
        .model_until("late-labels", |m| {
            m["recent_findings"].as_array().unwrap().iter().any(|f| f["signal"] == "error" && f["type"] == "finding")
        })
        .await;
    let error = model["versions"][0]["detectors"].as_array().unwrap().iter().find(|d| d["signal"] == "error").unwrap();
    assert_eq!((error["status"].as_str(), error["statistic"].as_f64()), (Some("drift"), Some(1.0)));
    let summary = s.stop().await;
    assert_eq!(summary.monitor.labels_joined, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_scrape_parses_as_prometheus_text() {
    let s = start("metrics_max_models = 2\n").await;
    // One model after the other, each processed before the next is sent:
    // labels are given in the order models are first counted.
    for model in ["scrape-a", "scrape-b", "scrape-c", "scrape-d"] {
        let lines: Vec<Value> = [10.0, 500.0].iter().map(|ms| json!({"model": model, "latency_ms": ms})).collect();
        s.post(ndjson(&lines), "application/x-ndjson").await;
        s.model_until(model, |m| !m["recent_findings"].as_array().unwrap().is_empty()).await;
    }
    s.post("{\"model\": \"scrape-a\", \"latency_ms\": -1}\n", "application/x-ndjson").await;
    s.model_until("scrape-d", |m| !m["recent_findings"].as_array().unwrap().is_empty()).await;
    let scrape = s.get("/metrics", "/metrics").await;
    assert!(scrape.headers["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let lines = scrape.text.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        parsed
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(x) | prometheus_parse::Value::Gauge(x) => x,
                prometheus_parse::Value::Untyped(x) => x,
                _ => 0.0,
            })
            .sum()
    };
    // Two models have labels of their own; the rest share `_other`. The
    // recorder is the process's, so other tests' models may hold the two
    // named slots of their own engines: count this test's by total.
    let ingested = value("model_monitor_records_ingested_total", &[("model", "scrape-a")])
        + value("model_monitor_records_ingested_total", &[("model", "scrape-b")]);
    assert_eq!(ingested, 4.0, "{}", scrape.text);
    assert!(value("model_monitor_records_ingested_total", &[("model", "_other")]) >= 4.0);
    assert!(value("model_monitor_records_ingested_total", &[("model", "scrape-c")]) == 0.0);
    assert_eq!(value("model_monitor_records_rejected_total", &[("model", "scrape-a"), ("reason", "malformed")]), 1.0);
    assert_eq!(
        value(
            "model_monitor_findings_total",
            &[("model", "scrape-a"), ("detector", "threshold"), ("severity", "drift")]
        ),
        1.0
    );
    assert_eq!(value("model_monitor_open_findings", &[("model", "scrape-b")]), 1.0);
    assert!(value("model_monitor_ingest_to_processed_seconds_count", &[]) >= 4.0);
    assert!(parsed.samples.iter().any(|s| s.metric == "model_monitor_shard_queue_records"));
    assert!(parsed.samples.iter().any(|s| s.metric == "model_monitor_observer_queue_events"));
    assert!(parsed.samples.iter().any(|s| s.metric == "model_monitor_http_requests_total"));
    assert_eq!(value("model_monitor_ready", &[]), 1.0);
    // Everything exported is in the list that dashboards and rules are checked against.
    for sample in &parsed.samples {
        assert!(exported(&sample.metric), "`{}` is exported but not in EXPORTED", sample.metric);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_path_answers_as_documented() {
    let state = tempfile::tempdir().unwrap();
    let mut config = config("");
    config.engine.state_dir = Some(state.path().to_owned());
    let s = start_with(config, vec![Box::new(Outboxed)]).await;
    let doc = openapi_document();
    assert_eq!(doc["openapi"], "3.1.0");
    let served = s.get("/v1/openapi.json", "/v1/openapi.json").await.json();
    assert_eq!(served, doc);
    // A drift and its retrain request: a job, and rows in the outbox.
    s.post(
        "{\"model\": \"documented\", \"latency_ms\": 500}\n{\"model\": \"documented\", \"latency_ms\": 500}\n",
        "application/x-ndjson",
    )
    .await;
    s.model_until("documented", |m| !m["jobs"].as_array().unwrap().is_empty()).await;
    let mut job = String::new();
    let mut row = 0;
    for _ in 0..500 {
        let jobs = s.get("/v1/jobs", "/v1/jobs").await.json();
        let rows = s.get("/v1/outbox", "/v1/outbox").await.json();
        if let (Some(j), Some(r)) = (jobs["jobs"][0]["id"].as_str(), rows["rows"][0]["id"].as_u64()) {
            (job, row) = (j.to_owned(), r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!job.is_empty() && row > 0, "no job or outbox row");
    let mut called = Vec::new();
    for (template, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let path = template
                .replace("{model}", "documented")
                .replace("{id}", if template.starts_with("/v1/jobs") { &job } else { "" });
            let path =
                if template.starts_with("/v1/outbox/") { template.replace("{id}", &row.to_string()) } else { path };
            let answer = match (method.as_str(), template.as_str()) {
                ("get", _) => s.get(&path, template).await,
                ("post", "/v1/records") => {
                    s.post("{\"model\": \"documented\", \"latency_ms\": 2}\n", "application/x-ndjson").await
                }
                ("post", _) => s.send(s.client.post(format!("{}{path}", s.base)), "post", template).await,
                (other, _) => panic!("undocumented method {other}"),
            };
            assert!(answer.status.is_success(), "{method} {path}: {} {}", answer.status, answer.text);
            called.push(format!("{method} {template}"));
        }
    }
    called.sort();
    assert_eq!(
        called,
        [
            "get /",
            "get /healthz",
            "get /metrics",
            "get /models/{model}",
            "get /readyz",
            "get /v1/events",
            "get /v1/jobs",
            "get /v1/jobs/{id}",
            "get /v1/models",
            "get /v1/models/{model}",
            "get /v1/openapi.json",
            "get /v1/outbox",
            "post /v1/jobs/{id}/cancel",
            "post /v1/jobs/{id}/retry",
            "post /v1/outbox/{id}/retry",
            "post /v1/records"
        ]
    );
    // Bad query strings, unknown ids and refused actions are documented answers too.
    assert_eq!(s.get("/v1/events?since=minus-one", "/v1/events").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/v1/models?limit=-1", "/v1/models").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/v1/jobs?limit=0", "/v1/jobs").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/v1/jobs/nobody", "/v1/jobs/{id}").await.status, StatusCode::NOT_FOUND);
    let cancel = || s.send(s.client.post(format!("{}/v1/jobs/{job}/cancel", s.base)), "post", "/v1/jobs/{id}/cancel");
    assert_eq!(cancel().await.status, StatusCode::OK);
    let again = cancel().await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    s.stop().await;
}

/// An observer that takes the outbox and delivers nothing: its rows stay pending.
struct Outboxed;

#[async_trait]
impl Observer for Outboxed {
    fn name(&self) -> &str {
        "outboxed"
    }
    fn use_outbox(&mut self, _outbox: std::sync::Arc<dyn monitor_core::outbox::Outbox>, _receiver: &str) -> bool {
        true
    }
    async fn on_event(&mut self, _event: &Event) -> MonitorResult<()> {
        Ok(())
    }
}

/// An observer that does nothing, to stand in the engine's observer list.
struct Idle;

#[async_trait]
impl Observer for Idle {
    fn name(&self) -> &str {
        "idle"
    }
    async fn on_event(&mut self, _event: &Event) -> MonitorResult<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_lists_every_observer() {
    let s = start_with(config(""), vec![Box::new(Idle)]).await;
    let mut ready = None;
    for _ in 0..500 {
        let answer = s.get("/readyz", "/readyz").await;
        if answer.status == StatusCode::OK {
            ready = Some(answer.json());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ready = ready.expect("never ready");
    let names: Vec<&str> = ready["observers"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["server", "idle"]);
    assert_eq!(s.get("/healthz", "/healthz").await.json()["status"], "ok");
    let nowhere = raw(&s, "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(nowhere.starts_with("HTTP/1.1 404"), "{nowhere}");
    s.stop().await;
}

/// The `model_monitor_*` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("model_monitor_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Whether `name` is a series `/metrics` exports: a metric, or a
/// histogram's bucket, sum or count.
fn exported(name: &str) -> bool {
    use monitor_runtime::server::metrics::EXPORTED;
    EXPORTED.contains(&name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix).is_some_and(|base| base.ends_with("_seconds") && EXPORTED.contains(&base))
        })
}

fn deploy_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn exprs_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs_of(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs_of(v, out)),
        _ => {}
    }
}

#[test]
fn the_grafana_dashboard_queries_exported_metrics() {
    let dashboard: Value = serde_json::from_str(&deploy_file("grafana-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    exprs_of(&dashboard["panels"], &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "a query that names no model-monitor metric: {expr}");
        for name in names {
            assert!(exported(&name), "the dashboard queries `{name}`, which /metrics does not export: {expr}");
        }
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(panel["title"].is_string() && panel["gridPos"].is_object(), "{panel}");
    }
}

#[test]
fn the_alerting_rules_parse_and_query_exported_metrics() {
    let rules: serde_yaml::Value = serde_yaml::from_str(&deploy_file("prometheus-rules.yml")).unwrap();
    let rules: Value = serde_json::to_value(rules).unwrap();
    let groups = rules["groups"].as_array().unwrap();
    let mut alerts = Vec::new();
    for group in groups {
        assert!(group["name"].is_string());
        for rule in group["rules"].as_array().unwrap() {
            let alert = rule["alert"].as_str().unwrap_or_else(|| panic!("a rule without `alert`: {rule}"));
            let expr = rule["expr"].as_str().unwrap_or_else(|| panic!("{alert} has no expr"));
            if let Some(wait) = rule.get("for") {
                let wait = wait.as_str().unwrap();
                assert!(wait.ends_with('m') && wait[..wait.len() - 1].parse::<u32>().is_ok(), "{alert}: for = {wait}");
            }
            assert!(rule["annotations"]["summary"].is_string(), "{alert} has no summary");
            assert!(rule["labels"]["severity"].is_string(), "{alert} has no severity");
            assert_eq!(expr.matches('(').count(), expr.matches(')').count(), "{alert}: unbalanced parentheses");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{alert} names no model-monitor metric");
            for name in names {
                assert!(exported(&name), "{alert} queries `{name}`, which /metrics does not export");
            }
            alerts.push(alert.to_owned());
        }
    }
    for wanted in [
        "ModelMonitorIngestionStopped",
        "ModelMonitorModelInDrift",
        "ModelMonitorReceiverFailing",
        "ModelMonitorRetrainJobsFailing",
    ] {
        assert!(alerts.iter().any(|a| a == wanted), "no {wanted} rule");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_fails_readiness_and_raises_a_metric_without_crashing() {
    let state = tempfile::tempdir().unwrap();
    let mut config = config("");
    config.engine.state_dir = Some(state.path().to_owned());
    // A journal bounded at 1 MiB fills as a disk would.
    config.engine.journal_max_mib = 1;
    let s = start_with(config, Vec::new()).await;
    let pad = "x".repeat(200);
    let body: String = (0..1000)
        .map(|i| {
            format!("{{\"model\": \"full-{}\", \"latency_ms\": 1, \"features\": {{\"pad\": \"{pad}\"}}}}\n", i % 3)
        })
        .collect();
    let mut refused = None;
    for _ in 0..50 {
        let answer = s.post(body.clone(), "application/x-ndjson").await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            refused = Some(answer);
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    // Refused, not acknowledged: the client keeps the records.
    let refused = refused.expect("the journal never filled");
    assert!(refused.text.contains("journal cannot be written"), "{}", refused.text);
    let ready = s.get("/readyz", "/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let journal = &ready.json()["journal"];
    assert_eq!(journal["ok"], false);
    assert!(journal["errors"].as_u64().unwrap() >= 1);
    assert!(journal["last_error"].as_str().unwrap().contains("full"), "{journal}");
    let metrics = s.get("/metrics", "/metrics").await.text;
    assert!(metrics.lines().any(|l| l == "model_monitor_journal_failing 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("model_monitor_journal_errors_total ") && !l.ends_with(" 0")));
    assert_eq!(s.get("/healthz", "/healthz").await.status, StatusCode::OK);
    let summary = s.stop().await;
    assert!(summary.monitor.records > 0);
}
