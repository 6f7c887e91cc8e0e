use monitor_core::dispatch::DispatcherRegistry;
use monitor_core::observer::ObserverRegistry;
use monitor_core::registry::BuildContext;
use monitor_observers::{builtin_registry, register_builtin_dispatchers, register_builtins};
use serde_json::json;

use crate::support::{ctx, ctx_in};

fn build_err(spec: serde_json::Value) -> String {
    match builtin_registry().build("observers[0]", &spec, &ctx()) {
        Ok(observer) => panic!("expected an error, built {}", observer.name()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn builds_each_builtin_kind() {
    let mut registry = ObserverRegistry::new();
    register_builtins(&mut registry);
    assert_eq!(registry.kinds().collect::<Vec<_>>(), ["file", "log", "retrain", "webhook"]);
    let dir = tempfile::tempdir().unwrap();
    crate::support::script(dir.path(), "retrain.sh", "exit 0");
    let ctx = ctx_in(dir.path());
    for (spec, name) in [
        (json!({"kind": "log"}), "log"),
        (json!({"kind": "file", "path": "events.ndjson"}), "file"),
        (
            json!({"kind": "webhook", "url": "http://127.0.0.1:9000/hook", "format": "json", "timeout": "10s"}),
            "webhook",
        ),
        (
            json!({"kind": "webhook", "url": "https://hooks.example.com/x", "events": ["finding", "recovered", "retrain_requested", "job_status"], "name": "ops"}),
            "ops",
        ),
        (
            json!({"kind": "retrain", "queue": 8, "dispatch": {"kind": "command", "program": "./retrain.sh", "args": ["{model}", "{version}", "{job_id}"], "timeout": "10m"}}),
            "retrain",
        ),
        (
            json!({"kind": "retrain", "max_concurrent": 2, "shutdown_timeout": "1m", "dispatch": {"kind": "http", "preset": "airflow", "url": "http://127.0.0.1:8080", "dag_id": "retrain"}}),
            "retrain",
        ),
    ] {
        let observer = registry.build("observers[0]", &spec, &ctx).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(observer.name(), name);
    }
}

#[test]
fn the_builtin_dispatchers_are_command_and_http() {
    let mut dispatchers = DispatcherRegistry::new();
    register_builtin_dispatchers(&mut dispatchers);
    assert_eq!(dispatchers.kinds().collect::<Vec<_>>(), ["command", "http"]);
    assert_eq!(monitor_observers::builtin_dispatchers().kinds().collect::<Vec<_>>(), ["command", "http"]);
}

#[test]
fn retrain_observers_need_dispatchers_in_the_build_context() {
    let spec = json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh"}});
    let err = builtin_registry().build("observers[1]", &spec, &BuildContext::default()).err().unwrap().to_string();
    assert!(err.starts_with("config error at `observers[1].dispatch.kind`: no dispatcher kind is registered"), "{err}");
    assert!(builtin_registry().build("observers[1]", &spec, &ctx()).is_ok());
}

#[test]
fn unknown_kinds_are_named_with_the_known_ones() {
    assert_eq!(
        build_err(json!({"kind": "ticket"})),
        "config error at `observers[0].kind`: unknown observer kind `ticket`; known kinds: file, log, retrain, webhook"
    );
}

#[test]
fn unknown_keys_are_named() {
    let err = build_err(json!({"kind": "webhook", "url": "http://127.0.0.1:9000/", "retries": 3}));
    assert!(
        err.starts_with("config error at `observers[0].retries`: unknown field `retries`, expected one of"),
        "{err}"
    );
    let err = build_err(json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh"}, "queu": 3}));
    assert!(err.contains("unknown field `queu`"), "{err}");
    let err = build_err(json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh", "timeot": "1s"}}));
    assert!(err.starts_with("config error at `observers[0].dispatch.timeot`: unknown field `timeot`"), "{err}");
    let err = build_err(json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh", "env": {"A": 1}}}));
    assert!(err.starts_with("config error at `observers[0].dispatch.env.A`: invalid type"), "{err}");
    let err = build_err(json!({"kind": "log", "level": "debug"}));
    assert!(err.contains("unknown field `level`"), "{err}");
    let err = build_err(json!({"kind": "file"}));
    assert!(err.contains("missing field `path`"), "{err}");
}

#[test]
fn unknown_dispatch_kinds_and_formats_list_the_known_ones() {
    let err = build_err(json!({"kind": "retrain", "dispatch": {"kind": "cron"}}));
    assert_eq!(
        err,
        "config error at `observers[0].dispatch.kind`: unknown dispatcher kind `cron`; known kinds: command, http"
    );
    let err = build_err(json!({"kind": "retrain", "dispatch": {"program": "sh"}}));
    assert_eq!(err, "config error at `observers[0].dispatch.kind`: is required");
    let err = build_err(json!({"kind": "webhook", "url": "http://127.0.0.1:9000/", "format": "xml"}));
    assert!(
        err.contains("unknown variant `xml`, expected one of `json`, `slack`, `pagerduty`, `alertmanager`"),
        "{err}"
    );
}

#[test]
fn invalid_urls_and_values_are_config_errors_at_build() {
    let err = build_err(json!({"kind": "webhook", "url": "not a url"}));
    assert!(err.starts_with("config error at `observers[0].url`: invalid URL"), "{err}");
    let err = build_err(json!({"kind": "webhook"}));
    assert_eq!(err, "config error at `observers[0].url`: is required");
    let err = build_err(json!({"kind": "webhook", "url": "http://127.0.0.1:9000/", "timeout": "soon"}));
    assert!(err.contains("invalid duration `soon`"), "{err}");
    let err =
        build_err(json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh"}, "max_concurrent": 0}));
    assert_eq!(err, "config error at `observers[0].max_concurrent`: must be between 1 and 1024 (got 0)");
}

#[test]
fn keys_that_would_do_nothing_are_config_errors() {
    let hook = "http://127.0.0.1:9000/hook";
    let cases = [
        (
            json!({"kind": "webhook", "url": hook, "routing_key_env": "PATH"}),
            "config error at `observers[0].routing_key_env`: is for format = \"pagerduty\" only; format = \"json\" has no routing key",
        ),
        (
            json!({"kind": "webhook", "url": hook, "format": "slack", "source": "ml-prod"}),
            "config error at `observers[0].source`: is PagerDuty's `payload.source`, for format = \"pagerduty\" only, not \"slack\"",
        ),
        (
            json!({"kind": "webhook", "url": hook, "signature_header": "X-Signature"}),
            "config error at `observers[0].signature_header`: names the header of the body's signature, which is sent only with `secret_env`: give `secret_env` too, or leave `signature_header` out",
        ),
        (
            json!({"kind": "webhook", "format": "pagerduty", "routing_key_env": "PATH", "group_wait": "30s"}),
            "config error at `observers[0].group_wait`: format = \"pagerduty\" sends one request per alert and never groups: leave `group_wait` out",
        ),
        (
            json!({"kind": "webhook", "url": hook, "group_wait": "10s"}),
            "config error at `observers[0].group_wait`: format = \"json\" sends one request per event and never groups: leave `group_wait` out",
        ),
        (
            json!({"kind": "webhook", "url": hook, "format": "alertmanager", "events": ["finding", "job_status"]}),
            "config error at `observers[0].events`: format = \"alertmanager\" sends findings and recoveries only, so `job_status` would never be sent",
        ),
        (
            json!({"kind": "webhook", "url": hook, "timeout": "0s"}),
            "config error at `observers[0].timeout`: must be more than 0s: every request would time out at once",
        ),
        (
            json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh", "timeout": "0s"}}),
            "config error at `observers[0].dispatch.timeout`: must be more than 0s: every run would be killed at once",
        ),
        (
            json!({"kind": "retrain", "dispatch": {"kind": "http", "preset": "airflow", "url": hook, "dag_id": "d", "timeout": "0s"}}),
            "config error at `observers[0].dispatch.timeout`: must be more than 0s: every request would time out at once",
        ),
    ];
    for (spec, expected) in cases {
        assert_eq!(build_err(spec), expected);
    }
    // The same keys where they do something are fine; so is a zero wait.
    let ctx = ctx();
    for spec in [
        json!({"kind": "webhook", "format": "pagerduty", "routing_key_env": "PATH", "source": "ml-prod", "group_wait": "0s"}),
        json!({"kind": "webhook", "url": hook, "secret_env": "PATH", "signature_header": "X-Signature", "group_wait": "0s"}),
        json!({"kind": "webhook", "url": hook, "format": "slack", "group_wait": "1m", "events": ["job_status"]}),
    ] {
        builtin_registry().build("observers[0]", &spec, &ctx).unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
}

#[test]
fn the_builder_refuses_the_same_keys() {
    use monitor_observers::webhook::{Format, WebhookAlerter};
    let builder = || WebhookAlerter::builder("http://127.0.0.1:9000/hook").unwrap();
    let err = |b: monitor_observers::webhook::WebhookBuilder| b.build().unwrap_err().to_string();
    assert!(err(builder().source("x")).starts_with("config error at `source`"));
    assert!(err(builder().signature_header("X-Sig")).starts_with("config error at `signature_header`"));
    assert!(err(builder().timeout(std::time::Duration::ZERO)).starts_with("config error at `timeout`"));
    let pagerduty = || builder().format(Format::Pagerduty).routing_key(monitor_observers::secret::Secret::new("k"));
    assert!(err(pagerduty().group_wait(std::time::Duration::from_secs(1))).starts_with("config error at `group_wait`"));
    assert!(pagerduty().build().is_ok(), "pagerduty needs no group_wait");
}

#[test]
fn missing_environment_variables_are_named_at_start() {
    let err = build_err(
        json!({"kind": "webhook", "url": "http://127.0.0.1:9000/", "secret_env": "MONITOR_OBSERVERS_TEST_UNSET"}),
    );
    assert_eq!(
        err,
        "config error at `observers[0].secret_env`: environment variable `MONITOR_OBSERVERS_TEST_UNSET` is not set"
    );
    let err = build_err(json!({"kind": "webhook", "format": "pagerduty"}));
    assert!(err.starts_with("config error at `observers[0].routing_key_env`: is required"), "{err}");
}

#[test]
fn secrets_stay_out_of_errors_and_debug_output() {
    // HOME is always set and is not a URL: the error names the key, not the value.
    let home = std::env::var("HOME").unwrap();
    let err = build_err(json!({"kind": "webhook", "url_env": "HOME"}));
    assert!(err.starts_with("config error at `observers[0].url_env`: invalid URL"), "{err}");
    assert!(!err.contains(&home), "{err}");
    let err = build_err(json!({"kind": "webhook", "url": "http://x/", "url_env": "HOME"}));
    assert!(err.contains("either `url` or `url_env`"), "{err}");

    let alerter = monitor_observers::WebhookAlerter::builder("https://hooks.example.com/T000/B000/XXXXSECRET")
        .unwrap()
        .bearer_token(monitor_observers::secret::Secret::new("tok-123"))
        .build()
        .unwrap();
    let debug = format!("{alerter:?}");
    assert!(!debug.contains("tok-123") && !debug.contains("XXXXSECRET"), "{debug}");
}

#[test]
fn a_command_that_is_not_there_fails_the_config_check() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::script(dir.path(), "retrain.sh", "exit 0");
    std::fs::write(dir.path().join("notes.txt"), "not a program").unwrap();
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    crate::support::script(&dir.path().join("bin"), "train-model", "exit 0");
    let ctx = ctx_in(dir.path());
    let build = |dispatch: serde_json::Value| {
        let spec = json!({"kind": "retrain", "dispatch": dispatch});
        builtin_registry().build("observers[3]", &spec, &ctx).map(|_| ()).map_err(|e| e.to_string())
    };
    let shown = |name: &str| dir.path().join(name).display().to_string();
    assert_eq!(
        build(json!({"kind": "command", "program": "./nope.sh"})),
        Err(format!("config error at `observers[3].dispatch.program`: `{}` does not exist", shown("./nope.sh")))
    );
    assert_eq!(
        build(json!({"kind": "command", "program": "./notes.txt"})),
        Err(format!("config error at `observers[3].dispatch.program`: `{}` is not executable", shown("./notes.txt")))
    );
    let err = build(json!({"kind": "command", "program": "surely-no-such-program-here"})).unwrap_err();
    assert!(
        err.starts_with(
            "config error at `observers[3].dispatch.program`: `surely-no-such-program-here` is not found in `PATH`"
        ),
        "{err}"
    );
    // What is there passes: a script, a name in PATH, a name in the child's own PATH.
    assert_eq!(build(json!({"kind": "command", "program": "./retrain.sh"})), Ok(()));
    assert_eq!(build(json!({"kind": "command", "program": "sh"})), Ok(()));
    let bin = dir.path().join("bin").display().to_string();
    assert_eq!(build(json!({"kind": "command", "program": "train-model", "env": {"PATH": bin}})), Ok(()));
}

#[test]
fn every_size_and_time_has_a_bound_named_in_its_error() {
    let hook = "http://127.0.0.1:9000/hook";
    let cases = [
        (
            json!({"kind": "webhook", "url": hook, "queue": 1_000_000_000_000_u64}),
            "queue",
            "must be between 1 and 100000",
        ),
        (json!({"kind": "webhook", "url": hook, "timeout": "1h"}), "timeout", "must be at most 5m (got 1h)"),
        (
            json!({"kind": "webhook", "url": hook, "format": "slack", "group_wait": "2h"}),
            "group_wait",
            "must be at most 1h",
        ),
        (json!({"kind": "webhook", "url": hook, "shutdown_timeout": "2h"}), "shutdown_timeout", "must be at most 1h"),
        (json!({"kind": "webhook", "url": hook, "shutdown_timeout": "0s"}), "shutdown_timeout", "must be more than 0s"),
        (
            json!({"kind": "webhook", "url": hook, "retry": {"max_attempts": 4_294_967_295_u64}}),
            "retry.max_attempts",
            "must be between 1 and 20",
        ),
        (
            json!({"kind": "webhook", "url": hook, "retry": {"max_backoff": "1d"}}),
            "retry.max_backoff",
            "must be at most 1h",
        ),
        (
            json!({"kind": "retrain", "queue": 1_000_000_000_000_u64, "dispatch": {"kind": "command", "program": "sh"}}),
            "queue",
            "must be between 1 and 100000",
        ),
        (
            json!({"kind": "retrain", "max_concurrent": 1_000_000_000, "dispatch": {"kind": "command", "program": "sh"}}),
            "max_concurrent",
            "must be between 1 and 1024",
        ),
        (
            json!({"kind": "retrain", "shutdown_timeout": "1d", "dispatch": {"kind": "command", "program": "sh"}}),
            "shutdown_timeout",
            "must be at most 1h",
        ),
        (
            json!({"kind": "retrain", "dispatch": {"kind": "command", "program": "sh", "timeout": "30d"}}),
            "dispatch.timeout",
            "must be at most 7d",
        ),
        (
            json!({"kind": "retrain", "dispatch": {"kind": "http", "preset": "airflow", "url": hook, "dag_id": "d", "timeout": "1h"}}),
            "dispatch.timeout",
            "must be at most 5m",
        ),
    ];
    for (spec, key, message) in cases {
        let err = build_err(spec.clone());
        let prefix = format!("config error at `observers[0].{key}`: {message}");
        assert!(err.starts_with(&prefix), "{spec}: {err}");
    }
}
