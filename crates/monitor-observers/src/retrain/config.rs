//! The retrain observer's config table and its factory: plain data in, a
//! [`RetrainScheduler`] out, with the dispatcher built through the
//! [`BuildContext`]'s dispatcher registry, so that the scheduler knows no
//! dispatcher kind by name.

use monitor_core::duration::HumanDuration;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;

use super::RetrainScheduler;
use crate::retry::RetryConfig;

/// The `[[observers]]` table of `kind = "retrain"`, without `kind` and
/// `dispatch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrainConfig {
    name: Option<String>,
    queue: Option<usize>,
    max_concurrent: Option<usize>,
    shutdown_timeout: Option<HumanDuration>,
    /// Refused with an explanation, rather than as an unknown field.
    cooldown: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    retry: RetryConfig,
}

impl RetrainScheduler {
    /// Builds a scheduler from its config table (the `[[observers]]` entry
    /// without `kind`):
    ///
    /// ```toml
    /// [[observers]]
    /// kind = "retrain"
    /// dispatch = { kind = "command", program = "./retrain.sh", args = ["{model}", "{version}", "{job_id}"], timeout = "10m" }
    /// queue = 64                # optional: jobs waiting for a place (1 to 100000)
    /// max_concurrent = 1        # optional: jobs running at once, over all models (1 to 1024)
    /// retry = { max_attempts = 3, backoff = "1s", max_backoff = "1m" }   # optional
    /// shutdown_timeout = "20s"  # optional (at most 1h): then flush cuts running jobs off
    /// ```
    ///
    /// Every value is checked against its bounds, with an error that names
    /// the key.
    ///
    /// `dispatch` is built by `ctx.dispatchers`, the registry of dispatcher
    /// kinds: `command` and `http` (presets `airflow`, `argo`, `github`,
    /// `generic`) when it holds
    /// [`builtin_dispatchers`](crate::builtin_dispatchers), and any kind
    /// registered next to them. Its errors name the nested key
    /// (`dispatch.kind`, `dispatch.timeout`).
    ///
    /// There is no `cooldown` key: a request joins its model's job only while
    /// that job is queued or running, and the retrain policy's `cooldown`
    /// spaces requests out. Giving one is a config error that says so.
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let (config, dispatch) = split_dispatch(config)?;
        let config: RetrainConfig = parse_config(config)?;
        if config.cooldown.is_some() {
            return Err(Error::config(
                "cooldown",
                "is not a key of the retrain observer: a request joins its model's job only while that job is queued \
                 or running, and starts a new job once it has ended; to space jobs out, set `[policy] cooldown` \
                 (event time)",
            ));
        }
        let retry = config.retry.resolve(Self::DEFAULT_RETRY)?;
        // The bounds, checked before the dispatcher is built (and its
        // environment read), so that check-config names them first.
        let mut builder = Self::builder(crate::dispatch::ChannelDispatcher::new(1).0)
            .queue(config.queue.unwrap_or(Self::DEFAULT_QUEUE))
            .max_concurrent(config.max_concurrent.unwrap_or(1))
            .retry(retry);
        if let Some(timeout) = config.shutdown_timeout {
            builder = builder.shutdown_timeout(timeout.as_std());
        }
        builder.build()?;
        if ctx.dispatchers.kinds().next().is_none() {
            return Err(Error::config(
                "dispatch.kind",
                "no dispatcher kind is registered in the build context: give it \
                 `monitor_observers::builtin_dispatchers()` (and any of your own) as `dispatchers`",
            ));
        }
        let dispatcher = ctx.dispatchers.build("dispatch", &dispatch, ctx)?;
        let mut builder = Self::builder(dispatcher)
            .queue(config.queue.unwrap_or(Self::DEFAULT_QUEUE))
            .max_concurrent(config.max_concurrent.unwrap_or(1))
            .retry(retry);
        if let Some(name) = config.name {
            builder = builder.name(name);
        }
        if let Some(timeout) = config.shutdown_timeout {
            builder = builder.shutdown_timeout(timeout.as_std());
        }
        builder.build()
    }
}

/// Takes the `dispatch` table out of the config, so that its errors name it.
fn split_dispatch(config: Json) -> Result<(Json, Json)> {
    let Json::Object(mut table) = config else {
        return Err(Error::config("", "expected a table"));
    };
    let dispatch = table.remove("dispatch").ok_or_else(|| {
        Error::config(
            "dispatch",
            "is required, for example dispatch = { kind = \"command\", program = \"./retrain.sh\" }",
        )
    })?;
    Ok((Json::Object(table), dispatch))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> BuildContext {
        BuildContext { dispatchers: crate::builtin_dispatchers(), ..Default::default() }
    }

    #[test]
    fn dispatch_is_required_and_unknown_kinds_are_named() {
        let err = RetrainScheduler::from_config(serde_json::json!({}), &ctx()).unwrap_err().to_string();
        assert!(err.contains("`dispatch`: is required"), "{err}");
        let err = RetrainScheduler::from_config(serde_json::json!({"dispatch": {"kind": "carrier_pigeon"}}), &ctx())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config error at `dispatch.kind`: unknown dispatcher kind `carrier_pigeon`; known kinds: command, http"
        );
    }

    #[test]
    fn an_empty_dispatcher_registry_says_what_to_register() {
        let spec = serde_json::json!({"dispatch": {"kind": "command", "program": "sh"}});
        let err = RetrainScheduler::from_config(spec, &BuildContext::default()).unwrap_err().to_string();
        assert!(err.starts_with("config error at `dispatch.kind`: no dispatcher kind is registered"), "{err}");
        assert!(err.contains("builtin_dispatchers()"), "{err}");
    }

    #[test]
    fn settings_that_make_no_sense_are_refused() {
        for (key, value, max) in [
            ("queue", "0", 100_000),
            ("max_concurrent", "0", 1024),
            ("queue", "1000000000000", 100_000),
            ("max_concurrent", "1000000000", 1024),
        ] {
            let spec: Json = serde_json::from_str(&format!(
                r#"{{"dispatch": {{"kind": "command", "program": "sh"}}, "{key}": {value}}}"#
            ))
            .unwrap();
            let err = RetrainScheduler::from_config(spec, &ctx()).unwrap_err().to_string();
            assert_eq!(err, format!("config error at `{key}`: must be between 1 and {max} (got {value})"));
        }
        for (key, value, expected) in [
            ("shutdown_timeout", "\"2h\"", "config error at `shutdown_timeout`: must be at most 1h (got 2h)"),
            (
                "retry",
                r#"{"max_attempts": 4294967295}"#,
                "config error at `retry.max_attempts`: must be between 1 and 20 (got 4294967295)",
            ),
            (
                "retry",
                r#"{"backoff": 6214954135204232960}"#,
                "config error at `retry.backoff`: must be at most 10m (got 71932339527826d18h29m20s)",
            ),
        ] {
            let spec: Json = serde_json::from_str(&format!(
                r#"{{"dispatch": {{"kind": "command", "program": "sh"}}, "{key}": {value}}}"#
            ))
            .unwrap();
            let err = RetrainScheduler::from_config(spec, &ctx()).unwrap_err().to_string();
            assert_eq!(err, expected);
        }
        let spec = serde_json::json!({"dispatch": {"kind": "command", "program": "sh"}, "shutdown_timeout": "0s"});
        let err = RetrainScheduler::from_config(spec, &ctx()).unwrap_err().to_string();
        assert!(err.starts_with("config error at `shutdown_timeout`: must be more than 0s"), "{err}");
    }
}
