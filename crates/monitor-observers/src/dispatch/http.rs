//! The `http` dispatcher: submits jobs to Airflow, Argo Workflows, GitHub
//! Actions or any HTTP API.
//!
//! One kind, `http`, with a `preset` per engine: the presets share the
//! client, the token, the timeout and the reading of answers, and differ only
//! in the request they build. Requests go out with async `reqwest` on the
//! engine's runtime; the scheduler's task awaits them.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use monitor_core::dispatch::{DispatchOutcome, Dispatcher, DispatcherRegistry};
use monitor_core::duration::HumanDuration;
use monitor_core::event::RetrainJob;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::placeholders::{authority_end, fill, fill_url, has_placeholder, substitute};
use crate::secret::{self, Secret};

/// The kind this file registers.
const KIND: &str = "http";

/// Registers `kind = "http"`, with the presets `airflow`, `argo`, `github`
/// and `generic`.
pub(crate) fn register(registry: &mut DispatcherRegistry) {
    registry.register(KIND, |config, ctx| Ok(Box::new(HttpDispatcher::from_config(config, ctx)?)));
}

/// GitHub's API, the default base URL of the `github` preset.
const GITHUB_API: &str = "https://api.github.com";

/// What an [`HttpDispatcher`] sends, and where.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HttpPreset {
    /// Airflow's stable REST API: `POST /api/v1/dags/{dag_id}/dagRuns` with
    /// `dag_run_id = "model-monitor-{job_id}"` (so a repeat is idempotent: a
    /// 409 means the run exists and counts as dispatched) and the job as `conf`.
    Airflow {
        /// The DAG that retrains.
        dag_id: String,
    },
    /// Argo Workflows: `POST /api/v1/workflows/{namespace}/submit` of a
    /// WorkflowTemplate, with `model`, `version`, `job_id` and `reason` as
    /// parameters and the workflow named `model-monitor-{job_id}` (a 409
    /// means it exists and counts as dispatched).
    Argo {
        /// The namespace of the template and the workflow.
        namespace: String,
        /// The WorkflowTemplate's name.
        template: String,
    },
    /// GitHub Actions: `POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`
    /// with `ref` and `model`, `version`, `job_id` and `reason` as `inputs`.
    Github {
        /// The repository's owner.
        owner: String,
        /// The repository.
        repo: String,
        /// The workflow file name (`retrain.yml`) or id.
        workflow: String,
        /// The branch or tag to run on.
        git_ref: String,
    },
    /// Any API: the URL as given, `method`, and a JSON body template in which
    /// every string has `{model}`, `{version}`, `{job_id}`, `{seq}` and
    /// `{reason}` replaced, and the string `"{job}"` becomes the job itself.
    /// Without a template the body is the job.
    ///
    /// The URL may hold placeholders in its path, query and fragment (not in
    /// its scheme, host or port); their values are percent-encoded (every
    /// byte but `A-Z a-z 0-9 - . _ ~`), so a value never adds a path segment,
    /// a query parameter or a fragment. A value that would make a whole path
    /// segment `.` or `..` fails the job without sending anything.
    Generic {
        /// The HTTP method (default `POST`).
        method: reqwest::Method,
        /// The body template.
        body: Option<Json>,
        /// Extra headers.
        headers: BTreeMap<String, String>,
    },
}

impl HttpPreset {
    fn name(&self) -> &'static str {
        match self {
            Self::Airflow { .. } => "airflow",
            Self::Argo { .. } => "argo",
            Self::Github { .. } => "github",
            Self::Generic { .. } => "http",
        }
    }
}

/// Submits each job over HTTP, as an [`HttpPreset`] says, with an optional
/// bearer token and a timeout (default 30s).
///
/// A 2xx answer is success (for Airflow and Argo a 409 too: the run exists);
/// 408, 429, 5xx and connection errors are retryable; other answers are final
/// failures. A 3xx is never followed (the job and the token would go where
/// the config does not say): it is a final failure that names where it
/// pointed. At most [`MAX_RESPONSE_BODY`](crate::MAX_RESPONSE_BODY) bytes of
/// an answer are read. The token never appears in logs, errors or events,
/// nor do credentials in the URL (`user:password@`, accepted with a warning).
///
/// ```
/// # use monitor_observers::dispatch::{HttpDispatcher, HttpPreset};
/// let airflow = HttpDispatcher::new("http://airflow.internal:8080", HttpPreset::Airflow { dag_id: "retrain".into() })?;
/// # drop(airflow);
/// # Ok::<(), monitor_core::Error>(())
/// ```
pub struct HttpDispatcher {
    preset: HttpPreset,
    url: url::Url,
    /// The URL as given, with its placeholders, for the generic preset.
    raw_url: String,
    token: Option<Secret>,
    timeout: Duration,
    /// Built on first use, with the final timeout.
    client: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for HttpDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDispatcher")
            .field("preset", &self.preset)
            .field("origin", &self.url.origin().ascii_serialization())
            .field("token", &self.token)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `dispatch = { kind = "http", preset = "...", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "preset", rename_all = "snake_case", deny_unknown_fields)]
enum HttpConfig {
    Airflow {
        url: String,
        dag_id: String,
        token_env: Option<String>,
        timeout: Option<HumanDuration>,
    },
    Argo {
        url: String,
        namespace: String,
        template: String,
        token_env: Option<String>,
        timeout: Option<HumanDuration>,
    },
    Github {
        url: Option<String>,
        owner: String,
        repo: String,
        workflow: String,
        #[serde(rename = "ref")]
        git_ref: String,
        token_env: Option<String>,
        timeout: Option<HumanDuration>,
    },
    Generic {
        url: String,
        method: Option<String>,
        body: Option<Json>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        token_env: Option<String>,
        timeout: Option<HumanDuration>,
    },
}

impl HttpDispatcher {
    /// The default timeout of one request.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// The longest `timeout` of one request.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

    /// A dispatcher for `preset` at `url`: the engine's base URL, or for
    /// [`HttpPreset::Generic`] the full URL. An invalid URL is a config error
    /// at `url`; one with credentials (`user:password@`) is accepted with a
    /// warning that does not repeat them.
    pub fn new(url: &str, preset: HttpPreset) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| Error::config("url", format!("invalid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
            return Err(Error::config("url", "expected an http or https URL"));
        }
        match &preset {
            HttpPreset::Generic { headers, .. } => {
                for (name, value) in headers {
                    if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err() {
                        return Err(Error::config(format!("headers.{name}"), "is not a valid HTTP header"));
                    }
                }
                if has_placeholder(&url[..authority_end(url)]) {
                    return Err(Error::config(
                        "url",
                        "placeholders are allowed in the URL's path, query and fragment, not in its scheme, host or port",
                    ));
                }
            }
            HttpPreset::Airflow { dag_id } => path_segment("dag_id", dag_id)?,
            HttpPreset::Argo { namespace, .. } => path_segment("namespace", namespace)?,
            HttpPreset::Github { owner, repo, workflow, .. } => {
                path_segment("owner", owner)?;
                path_segment("repo", repo)?;
                path_segment("workflow", workflow)?;
            }
        }
        crate::warn_userinfo(KIND, &parsed);
        Ok(Self {
            preset,
            url: parsed,
            raw_url: url.trim().to_owned(),
            token: None,
            timeout: Self::DEFAULT_TIMEOUT,
            client: OnceLock::new(),
        })
    }

    /// Sends `Authorization: Bearer <token>`.
    #[must_use]
    pub fn bearer_token(mut self, token: Secret) -> Self {
        self.token = Some(token);
        self
    }

    /// The timeout of one request (default 30s). From code it is held to
    /// [`MAX_TIMEOUT`](Self::MAX_TIMEOUT); config refuses more.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(Self::MAX_TIMEOUT);
        self
    }

    /// Builds it from its `dispatch` table (without `kind`): a `preset`
    /// (`airflow`, `argo`, `github`, `generic`) and its keys, with an
    /// optional `token_env` (read now) and `timeout`. Errors name the key,
    /// relative to the table.
    pub fn from_config(config: Json, _ctx: &BuildContext) -> Result<Self> {
        let config: HttpConfig = parse_config(config)?;
        let nonempty = |key: &str, value: String| {
            if value.trim().is_empty() { Err(Error::config(key, "must not be empty")) } else { Ok(value) }
        };
        let (url, preset, token_env, timeout) = match config {
            HttpConfig::Airflow { url, dag_id, token_env, timeout } => {
                (url, HttpPreset::Airflow { dag_id: nonempty("dag_id", dag_id)? }, token_env, timeout)
            }
            HttpConfig::Argo { url, namespace, template, token_env, timeout } => (
                url,
                HttpPreset::Argo {
                    namespace: nonempty("namespace", namespace)?,
                    template: nonempty("template", template)?,
                },
                token_env,
                timeout,
            ),
            HttpConfig::Github { url, owner, repo, workflow, git_ref, token_env, timeout } => (
                url.unwrap_or_else(|| GITHUB_API.to_owned()),
                HttpPreset::Github {
                    owner: nonempty("owner", owner)?,
                    repo: nonempty("repo", repo)?,
                    workflow: nonempty("workflow", workflow)?,
                    git_ref: nonempty("ref", git_ref)?,
                },
                token_env,
                timeout,
            ),
            HttpConfig::Generic { url, method, body, headers, token_env, timeout } => {
                let method = match method {
                    None => reqwest::Method::POST,
                    Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| Error::config("method", format!("`{m}` is not an HTTP method")))?,
                };
                (url, HttpPreset::Generic { method, body, headers }, token_env, timeout)
            }
        };
        if let Some(timeout) = timeout {
            crate::bounds::positive(
                "timeout",
                timeout.as_std(),
                Self::MAX_TIMEOUT,
                "every request would time out at once",
            )?;
        }
        let mut dispatcher = Self::new(&url, preset)?;
        if let Some(token) = secret::optional("token_env", token_env.as_deref())? {
            dispatcher = dispatcher.bearer_token(token);
        }
        Ok(dispatcher.timeout(timeout.map_or(Self::DEFAULT_TIMEOUT, HumanDuration::as_std)))
    }

    /// The URL with `segments` appended to its path, each percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> url::Url {
        let mut url = self.url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Method, URL, extra headers and body of the request for `job`, or why
    /// the job's values make no valid request.
    fn request(&self, job: &RetrainJob) -> std::result::Result<(reqwest::Method, url::Url, HeaderMap, Json), String> {
        let job_json = serde_json::to_value(job).unwrap_or(Json::Null);
        let run_name = format!("model-monitor-{}", job.job_id);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let inputs = json!({
            "model": job.model,
            "version": job.version,
            "job_id": job.job_id.to_string(),
            "reason": job.reason_summary(),
        });
        Ok(match &self.preset {
            HttpPreset::Airflow { dag_id } => (
                reqwest::Method::POST,
                self.endpoint(&["api", "v1", "dags", dag_id, "dagRuns"]),
                headers,
                json!({ "dag_run_id": run_name, "conf": job_json }),
            ),
            HttpPreset::Argo { namespace, template } => (
                reqwest::Method::POST,
                self.endpoint(&["api", "v1", "workflows", namespace, "submit"]),
                headers,
                json!({
                    "namespace": namespace,
                    "resourceKind": "WorkflowTemplate",
                    "resourceName": template,
                    "submitOptions": {
                        "name": run_name,
                        "labels": format!("model-monitor/job-id={}", job.job_id),
                        "parameters": [
                            format!("model={}", job.model),
                            format!("version={}", job.version),
                            format!("job_id={}", job.job_id),
                            format!("reason={}", job.reason_summary()),
                        ],
                    },
                }),
            ),
            HttpPreset::Github { owner, repo, workflow, git_ref } => {
                headers.insert(ACCEPT, HeaderValue::from_static("application/vnd.github+json"));
                headers.insert("x-github-api-version", HeaderValue::from_static("2022-11-28"));
                (
                    reqwest::Method::POST,
                    self.endpoint(&["repos", owner, repo, "actions", "workflows", workflow, "dispatches"]),
                    headers,
                    json!({ "ref": git_ref, "inputs": inputs }),
                )
            }
            HttpPreset::Generic { method, body, headers: extra } => {
                for (name, value) in extra {
                    let header = HeaderName::from_bytes(name.as_bytes()).ok();
                    let value = HeaderValue::from_str(&substitute(value, job)).ok();
                    let (Some(header), Some(value)) = (header, value) else {
                        return Err(format!("the header `{name}` with the job's values is not a valid header value"));
                    };
                    headers.insert(header, value);
                }
                let templated = fill_url(&self.raw_url, job)?;
                let body = body.as_ref().map_or_else(|| job_json.clone(), |t| fill(t, job, &job_json));
                (method.clone(), templated, headers, body)
            }
        })
    }

    fn client(&self) -> Result<reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let client = crate::http_client(self.timeout, self.preset.name())?;
        // Two first dispatches at once may both build one; either will do.
        Ok(self.client.get_or_init(|| client).clone())
    }

    /// Sends the request; returns the status and what to say about the
    /// answer: the start of its body, or where a redirect pointed.
    async fn send(
        client: reqwest::Client,
        token: Option<Secret>,
        (method, url, headers, body): (reqwest::Method, url::Url, HeaderMap, Json),
    ) -> std::result::Result<(reqwest::StatusCode, String), String> {
        let mut request =
            client.request(method, url.clone()).headers(headers).header(CONTENT_TYPE, "application/json").json(&body);
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose());
        }
        let mut response = request.send().await.map_err(|e| crate::describe_request_error(&e))?;
        let status = response.status();
        if status.is_redirection() {
            return Ok((status, crate::redirect_detail(status, response.headers(), &url)));
        }
        // A bounded prefix: an engine that answers a gigabyte costs 64 KiB.
        let text = String::from_utf8_lossy(&crate::read_body_prefix(&mut response).await).into_owned();
        Ok((status, text))
    }
}

/// Checks a config value that becomes one path segment of the request.
fn path_segment(key: &str, value: &str) -> Result<()> {
    if matches!(value, "." | "..") {
        return Err(Error::config(key, format!("`{value}` cannot be a path segment")));
    }
    Ok(())
}

#[async_trait]
impl Dispatcher for HttpDispatcher {
    fn kind(&self) -> &str {
        self.preset.name()
    }

    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
        let client = self.client()?;
        let request = match self.request(job) {
            Ok(request) => request,
            Err(detail) => {
                tracing::debug!(dispatcher = self.preset.name(), job_id = %job.job_id, "{detail}");
                return Ok(DispatchOutcome::permanent(detail));
            }
        };
        let origin = request.1.origin().ascii_serialization();
        let result = Self::send(client, self.token.clone(), request).await;
        let name = self.preset.name();
        let run = format!("model-monitor-{}", job.job_id);
        Ok(match result {
            Err(problem) => DispatchOutcome::retryable(format!("{origin}: {problem}")),
            Ok((status, _)) if status.is_success() => match &self.preset {
                HttpPreset::Airflow { dag_id } => DispatchOutcome::succeeded(format!(
                    "airflow accepted run {run} of {dag_id} (HTTP {})",
                    status.as_u16()
                )),
                HttpPreset::Argo { template, .. } => DispatchOutcome::succeeded(format!(
                    "argo submitted workflow {run} from {template} (HTTP {})",
                    status.as_u16()
                )),
                HttpPreset::Github { workflow, .. } => DispatchOutcome::succeeded(format!(
                    "github dispatched workflow {workflow} (HTTP {})",
                    status.as_u16()
                )),
                HttpPreset::Generic { .. } => {
                    DispatchOutcome::succeeded(format!("{origin} answered HTTP {}", status.as_u16()))
                }
            },
            Ok((status, _))
                if status.as_u16() == 409
                    && matches!(self.preset, HttpPreset::Airflow { .. } | HttpPreset::Argo { .. }) =>
            {
                DispatchOutcome::succeeded(format!("{name} already has run {run} (HTTP 409)"))
            }
            Ok((status, redirect)) if status.is_redirection() => {
                DispatchOutcome::permanent(format!("{origin} answered {redirect}"))
            }
            Ok((status, body)) => {
                let code = status.as_u16();
                let detail = format!("{origin} answered HTTP {code}: {}", crate::text::snippet(&body));
                // The scheduler logs failures, quietly when they repeat.
                tracing::debug!(dispatcher = name, job_id = %job.job_id, "{detail}");
                if code == 408 || code == 429 || status.is_server_error() {
                    DispatchOutcome::retryable(detail)
                } else {
                    DispatchOutcome::permanent(detail)
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    fn job() -> RetrainJob {
        RetrainJob {
            job_id: Uuid::nil(),
            model: "fraud detector".into(),
            version: "v3".into(),
            reasons: vec![],
            created_at: Utc::now(),
            seq: 1,
        }
    }

    #[test]
    fn paths_are_appended_and_encoded() {
        let d = HttpDispatcher::new("http://h:1/prefix/", HttpPreset::Airflow { dag_id: "re train".into() }).unwrap();
        let (_, url, _, body) = d.request(&job()).unwrap();
        assert_eq!(url.as_str(), "http://h:1/prefix/api/v1/dags/re%20train/dagRuns");
        assert_eq!(body["dag_run_id"], "model-monitor-00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn generic_templates_fill_strings_and_the_job() {
        let t = json!({"name": "{model}/{version}", "job": "{job}", "n": [1, "{seq}"]});
        let j = job();
        let filled = fill(&t, &j, &serde_json::to_value(&j).unwrap());
        assert_eq!(filled["name"], "fraud detector/v3");
        assert_eq!(filled["job"]["model"], "fraud detector");
        assert_eq!(filled["n"], json!([1, "1"]));
    }

    #[test]
    fn generic_urls_take_placeholders() {
        let preset = HttpPreset::Generic { method: reqwest::Method::PUT, body: None, headers: BTreeMap::new() };
        let d = HttpDispatcher::new("http://h:1/retrain/{model}?v={version}", preset).unwrap();
        let (method, url, _, body) = d.request(&job()).unwrap();
        assert_eq!(method, reqwest::Method::PUT);
        assert_eq!(url.as_str(), "http://h:1/retrain/fraud%20detector?v=v3");
        assert_eq!(body["model"], "fraud detector");
    }

    fn generic(url: &str) -> HttpDispatcher {
        let preset = HttpPreset::Generic { method: reqwest::Method::POST, body: None, headers: BTreeMap::new() };
        HttpDispatcher::new(url, preset).unwrap()
    }

    #[test]
    fn generic_url_values_are_percent_encoded() {
        let d = generic("http://h:1/retrain/{model}?v={version}&r={reason}#{seq}");
        let mut j = job();
        j.model = "../admin/x?drop=1#".into();
        j.version = "v3&drop=1 +".into();
        let (_, url, _, _) = d.request(&j).unwrap();
        assert_eq!(url.path(), "/retrain/..%2Fadmin%2Fx%3Fdrop%3D1%23");
        assert_eq!(url.query(), Some("v=v3%26drop%3D1%20%2B&r="));
        assert_eq!(url.query_pairs().collect::<Vec<_>>().len(), 2);
        assert_eq!(url.fragment(), Some("1"));
        assert_eq!(url.host_str(), Some("h"));
    }

    #[test]
    fn generic_url_values_cannot_climb_the_path() {
        let d = generic("http://h:1/api/{model}/run");
        for model in ["..", ".", "%2e%2e"] {
            let mut j = job();
            j.model = model.into();
            match d.request(&j) {
                // `%` is encoded, so `%2e%2e` stays a name.
                Ok((_, url, _, _)) => assert_eq!((model, url.path()), ("%2e%2e", "/api/%252e%252e/run")),
                Err(e) => assert!(e.contains("would change the path"), "{model}: {e}"),
            }
        }
        let mut j = job();
        j.model = ".".into();
        assert!(generic("http://h:1/api/{model}./run").request(&j).is_err());
        // Dot segments of the template itself are the template's business.
        assert_eq!(generic("http://h:1/a/../{model}").request(&job()).unwrap().1.path(), "/fraud%20detector");
    }

    #[test]
    fn generic_placeholders_stay_out_of_the_host() {
        let preset = HttpPreset::Generic { method: reqwest::Method::POST, body: None, headers: BTreeMap::new() };
        let err = HttpDispatcher::new("http://{model}.internal/retrain", preset).unwrap_err().to_string();
        assert!(err.starts_with("config error at `url`: placeholders are allowed in the URL's path"), "{err}");
    }

    #[test]
    fn generic_headers_that_the_job_makes_invalid_fail_the_job() {
        let preset = HttpPreset::Generic {
            method: reqwest::Method::POST,
            body: None,
            headers: [("X-Model".to_owned(), "{model}".to_owned())].into_iter().collect(),
        };
        let d = HttpDispatcher::new("http://h:1/", preset).unwrap();
        let mut j = job();
        j.model = "a\r\nX-Injected: 1".into();
        let err = d.request(&j).unwrap_err();
        assert!(err.contains("`X-Model`"), "{err}");
    }

    #[test]
    fn preset_path_segments_cannot_be_dots() {
        let err = HttpDispatcher::new("http://h:1/", HttpPreset::Airflow { dag_id: "..".into() }).unwrap_err();
        assert_eq!(err.to_string(), "config error at `dag_id`: `..` cannot be a path segment");
    }

    #[test]
    fn tokens_are_not_printed() {
        let d = HttpDispatcher::new("http://h:1/", HttpPreset::Airflow { dag_id: "d".into() })
            .unwrap()
            .bearer_token(Secret::new("tok-123"));
        assert!(!format!("{d:?}").contains("tok-123"));
    }
}
