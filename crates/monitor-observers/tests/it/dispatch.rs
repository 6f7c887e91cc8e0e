//! The HTTP dispatch presets, each against a local server that checks the
//! method, path, headers and body.

use std::time::Duration;

use monitor_core::dispatch::{DispatchOutcome, Dispatcher};
use monitor_core::event::{JobStatus, RetrainJob};
use monitor_core::observer::Observer;
use monitor_observers::dispatch::{HttpDispatcher, HttpPreset};
use monitor_observers::retrain::RetrainScheduler;
use monitor_observers::retry::RetryPolicy;
use monitor_observers::secret::Secret;
use monitor_observers::testing::{Request, WebhookReceiver};
use serde_json::json;

use crate::support::{Published, ctx, retrain_event};

fn job() -> RetrainJob {
    RetrainJob::from_event(&retrain_event("fraud", "accuracy").1).unwrap()
}

/// Runs one dispatch on the test's runtime, as the scheduler does.
async fn dispatch(dispatcher: HttpDispatcher, job: RetrainJob) -> DispatchOutcome {
    dispatcher.dispatch(&job).await.unwrap()
}

fn only(requests: Vec<Request>) -> Request {
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.into_iter().next().unwrap()
}

fn token() -> Secret {
    Secret::new("s3cret-token")
}

#[tokio::test]
async fn airflow_triggers_an_idempotent_dag_run() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let dispatcher = HttpDispatcher::new(&receiver.url(), HttpPreset::Airflow { dag_id: "retrain_model".into() })
        .unwrap()
        .bearer_token(token());
    let job = job();
    let outcome = dispatch(dispatcher, job.clone()).await;
    assert!(outcome.is_success(), "{outcome:?}");
    let r = only(receiver.requests());
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/v1/dags/retrain_model/dagRuns");
    assert_eq!(r.header("authorization"), Some("Bearer s3cret-token"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["dag_run_id"], format!("model-monitor-{}", job.job_id));
    assert_eq!(body["conf"], serde_json::to_value(&job).unwrap());
    assert!(!outcome.detail().contains("s3cret"));
}

#[tokio::test]
async fn airflow_409_means_the_run_already_exists() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.respond_with(vec![409]);
    let dispatcher = HttpDispatcher::new(&receiver.url(), HttpPreset::Airflow { dag_id: "d".into() }).unwrap();
    let outcome = dispatch(dispatcher, job()).await;
    assert!(outcome.is_success(), "{outcome:?}");
    assert!(outcome.detail().contains("already has run"), "{}", outcome.detail());
}

#[tokio::test]
async fn argo_submits_a_workflow_template_with_parameters() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let preset = HttpPreset::Argo { namespace: "ml".into(), template: "retrain".into() };
    let dispatcher = HttpDispatcher::new(&receiver.url(), preset).unwrap().bearer_token(token());
    let job = job();
    assert!(dispatch(dispatcher, job.clone()).await.is_success());
    let r = only(receiver.requests());
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/api/v1/workflows/ml/submit"));
    assert_eq!(r.header("authorization"), Some("Bearer s3cret-token"));
    let body = r.json();
    assert_eq!(body["namespace"], "ml");
    assert_eq!(body["resourceKind"], "WorkflowTemplate");
    assert_eq!(body["resourceName"], "retrain");
    assert_eq!(body["submitOptions"]["name"], format!("model-monitor-{}", job.job_id));
    assert_eq!(
        body["submitOptions"]["parameters"],
        json!([
            "model=fraud",
            "version=v3",
            format!("job_id={}", job.job_id),
            "reason=metrics.accuracy threshold drift"
        ])
    );
}

#[tokio::test]
async fn github_dispatches_a_workflow_with_ref_and_inputs() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.respond_with(vec![204]);
    let preset = HttpPreset::Github {
        owner: "acme".into(),
        repo: "models".into(),
        workflow: "retrain.yml".into(),
        git_ref: "main".into(),
    };
    let dispatcher = HttpDispatcher::new(&receiver.url(), preset).unwrap().bearer_token(token());
    let job = job();
    assert!(dispatch(dispatcher, job.clone()).await.is_success());
    let r = only(receiver.requests());
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/repos/acme/models/actions/workflows/retrain.yml/dispatches");
    assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
    assert_eq!(r.header("authorization"), Some("Bearer s3cret-token"));
    assert!(r.header("user-agent").is_some_and(|ua| ua.starts_with("model-monitor/")));
    assert_eq!(
        r.json(),
        json!({"ref": "main", "inputs": {
            "model": "fraud", "version": "v3", "job_id": job.job_id.to_string(),
            "reason": "metrics.accuracy threshold drift"}})
    );
}

#[tokio::test]
async fn generic_sends_a_templated_body() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let preset = HttpPreset::Generic {
        method: reqwest::Method::PUT,
        body: Some(json!({"pipeline": "retrain-{model}", "args": {"version": "{version}"}, "job": "{job}"})),
        headers: [("X-Team".to_owned(), "ml-{model}".to_owned())].into_iter().collect(),
    };
    let dispatcher = HttpDispatcher::new(&receiver.url_for("/runs/{model}"), preset).unwrap();
    let job = job();
    assert!(dispatch(dispatcher, job.clone()).await.is_success());
    let r = only(receiver.requests());
    assert_eq!((r.method.as_str(), r.path.as_str()), ("PUT", "/runs/fraud"));
    assert_eq!(r.header("x-team"), Some("ml-fraud"));
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert_eq!(body["pipeline"], "retrain-fraud");
    assert_eq!(body["args"]["version"], "v3");
    assert_eq!(body["job"], serde_json::to_value(&job).unwrap());
}

#[tokio::test]
async fn generic_url_placeholders_are_percent_encoded() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let preset = HttpPreset::Generic { method: reqwest::Method::POST, body: None, headers: Default::default() };
    let dispatcher = HttpDispatcher::new(&receiver.url_for("/retrain/{model}?v={version}"), preset.clone()).unwrap();
    let job = RetrainJob::from_event(&retrain_event("../admin/x?drop=1#", "accuracy").1).unwrap();
    assert!(dispatch(dispatcher, job).await.is_success());
    let r = only(receiver.requests());
    // One path segment and one query parameter, whatever the model's name holds.
    assert_eq!(r.path, "/retrain/..%2Fadmin%2Fx%3Fdrop%3D1%23?v=v3");

    // A name that would be a `..` segment is refused, and nothing is sent.
    let dispatcher = HttpDispatcher::new(&receiver.url_for("/retrain/{model}/run"), preset).unwrap();
    let job = RetrainJob::from_event(&retrain_event("..", "accuracy").1).unwrap();
    let outcome = dispatch(dispatcher, job).await;
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: false, .. }), "{outcome:?}");
    assert!(outcome.detail().contains("`{model}` into `..`"), "{}", outcome.detail());
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn statuses_decide_retry() {
    let receiver = WebhookReceiver::start().await.unwrap();
    let url = receiver.url();
    receiver.respond_with(vec![503, 400]);
    let preset = HttpPreset::Airflow { dag_id: "d".into() };
    let outcome = dispatch(HttpDispatcher::new(&url, preset.clone()).unwrap(), job()).await;
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: true, .. }), "{outcome:?}");
    let outcome = dispatch(HttpDispatcher::new(&url, preset).unwrap(), job()).await;
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: false, .. }), "{outcome:?}");
}

#[tokio::test]
async fn the_scheduler_retries_a_failing_engine_with_backoff() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.respond_with(vec![502, 503]);
    let dispatcher = HttpDispatcher::new(&receiver.url(), HttpPreset::Airflow { dag_id: "d".into() }).unwrap();
    let mut scheduler = RetrainScheduler::builder(dispatcher)
        .retry(RetryPolicy::new(3, Duration::from_millis(20), Duration::from_millis(50)))
        .build()
        .unwrap();
    let published = Published::default();
    scheduler.attach(std::sync::Arc::new(published.clone()));
    let (job_id, event) = retrain_event("fraud", "accuracy");
    scheduler.on_event(&event).await.unwrap();
    scheduler.flush().await.unwrap();
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(
        published.statuses_of(job_id),
        [JobStatus::Queued, JobStatus::Dispatched, JobStatus::Dispatched, JobStatus::Dispatched, JobStatus::Succeeded]
    );
    // Every attempt carries the same run id, so the engine can deduplicate.
    let ids: Vec<_> = receiver.requests().iter().map(|r| r.json()["dag_run_id"].clone()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn built_from_config_with_a_token_from_the_environment() {
    let receiver = WebhookReceiver::start().await.unwrap();
    // PATH is always set; its value stands in for a token.
    let spec = json!({"kind": "retrain", "dispatch": {
        "kind": "http", "preset": "github", "url": receiver.url(), "owner": "acme", "repo": "models",
        "workflow": "retrain.yml", "ref": "main", "token_env": "PATH", "timeout": "5s"}});
    let mut scheduler = monitor_observers::builtin_registry().build("observers[0]", &spec, &ctx()).unwrap();
    scheduler.on_event(&retrain_event("fraud", "accuracy").1).await.unwrap();
    scheduler.flush().await.unwrap();
    let r = only(receiver.requests());
    assert_eq!(r.header("authorization"), Some(format!("Bearer {}", std::env::var("PATH").unwrap()).as_str()));
}

#[test]
fn config_errors_name_the_key() {
    let build = |dispatch: serde_json::Value| {
        let spec = json!({"kind": "retrain", "dispatch": dispatch});
        match monitor_observers::builtin_registry().build("observers[2]", &spec, &ctx()) {
            Ok(_) => panic!("expected an error for {spec}"),
            Err(e) => e.to_string(),
        }
    };
    let err = build(json!({"kind": "http", "preset": "jenkins", "url": "http://x/"}));
    assert!(err.contains("unknown variant `jenkins`, expected one of `airflow`, `argo`, `github`, `generic`"), "{err}");
    let err = build(
        json!({"kind": "http", "preset": "airflow", "url": "http://x/", "dag_id": "d", "token_env": "MONITOR_OBSERVERS_TEST_UNSET"}),
    );
    assert_eq!(
        err,
        "config error at `observers[2].dispatch.token_env`: environment variable `MONITOR_OBSERVERS_TEST_UNSET` is not set"
    );
    let err = build(json!({"kind": "http", "preset": "argo", "url": "::", "namespace": "n", "template": "t"}));
    assert!(err.starts_with("config error at `observers[2].dispatch.url`: invalid URL"), "{err}");
    let err = build(json!({"kind": "http", "preset": "airflow", "url": "http://x/", "dag": "d"}));
    assert!(err.contains("unknown field `dag`"), "{err}");
    let err = build(json!({"kind": "http", "preset": "airflow", "url": "http://x/", "dag_id": " "}));
    assert_eq!(err, "config error at `observers[2].dispatch.dag_id`: must not be empty");
    let err = build(json!({"kind": "http", "preset": "generic", "url": "http://x/", "method": "GE T"}));
    assert_eq!(err, "config error at `observers[2].dispatch.method`: `GE T` is not an HTTP method");
}

#[tokio::test]
async fn a_hanging_engine_times_out_and_is_retried() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.push_response(monitor_observers::testing::Response::hang());
    let dispatcher = HttpDispatcher::new(&receiver.url(), HttpPreset::Airflow { dag_id: "d".into() })
        .unwrap()
        .timeout(Duration::from_millis(200));
    let outcome = dispatch(dispatcher, job()).await;
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: true, .. }), "{outcome:?}");
    assert!(outcome.detail().contains("timed out"), "{}", outcome.detail());
}

#[tokio::test]
async fn a_huge_answer_costs_a_prefix_whatever_its_status() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.push_response(monitor_observers::testing::Response::huge_body(200, 1 << 40));
    receiver.push_response(monitor_observers::testing::Response::huge_body(503, 1 << 40));
    let airflow = || {
        HttpDispatcher::new(&receiver.url(), HttpPreset::Airflow { dag_id: "d".into() })
            .unwrap()
            .timeout(Duration::from_secs(60))
    };
    let outcome = dispatch(airflow(), job()).await;
    assert!(outcome.is_success(), "{outcome:?}");
    let outcome = dispatch(airflow(), job()).await;
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: true, .. }), "{outcome:?}");
    // The detail carries the start of the body, shortened.
    assert!(outcome.detail().ends_with(&"x".repeat(200)), "{}", outcome.detail());
    assert!(outcome.detail().len() < 300);
    let sent = receiver.body_bytes_sent();
    assert!(sent < 64 << 20, "{sent} bytes read");
}

#[tokio::test]
async fn redirects_fail_the_job_and_are_not_followed() {
    let elsewhere = WebhookReceiver::start().await.unwrap();
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(
        monitor_observers::testing::Response::status(308)
            .header("Location", elsewhere.url_for("/api/v1/dags/d/dagRuns?token=s3cret")),
    );
    let dispatcher =
        HttpDispatcher::new(&receiver.url(), HttpPreset::Airflow { dag_id: "d".into() }).unwrap().bearer_token(token());
    let outcome = dispatch(dispatcher, job()).await;
    assert!(matches!(outcome, DispatchOutcome::Failed { retryable: false, .. }), "{outcome:?}");
    let detail = outcome.detail();
    assert!(
        detail.starts_with(&format!(
            "{} answered HTTP 308 Permanent Redirect: a redirect to {}, not followed",
            receiver.url(),
            elsewhere.url()
        )),
        "{detail}"
    );
    assert!(!detail.contains("s3cret"), "{detail}");
    assert_eq!(receiver.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the job and its token went nowhere else");
}

#[tokio::test]
async fn credentials_in_a_dispatcher_url_stay_out_of_details() {
    let receiver = WebhookReceiver::start().await.unwrap();
    receiver.set_default(400);
    let url = receiver.url().replace("http://", "http://bob:hunter2@");
    let dispatcher = HttpDispatcher::new(&url, HttpPreset::Airflow { dag_id: "d".into() }).unwrap();
    assert!(!format!("{dispatcher:?}").contains("hunter2"));
    let outcome = dispatch(dispatcher, job()).await;
    assert!(!outcome.detail().contains("hunter2") && !outcome.detail().contains("bob"), "{}", outcome.detail());
    assert_eq!(only(receiver.requests()).header("authorization"), Some("Basic Ym9iOmh1bnRlcjI="));
}
