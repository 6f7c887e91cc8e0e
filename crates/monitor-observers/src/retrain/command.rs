//! The `command` dispatcher: runs a local program per job.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use monitor_core::duration::HumanDuration;
use monitor_core::event::RetrainJob;
use monitor_core::registry::BuildContext;
use monitor_core::{Error, Result};
use serde::Deserialize;

use super::{DispatchOutcome, Dispatcher};

/// How much of each output stream is kept for the log.
const MAX_OUTPUT: usize = 64 * 1024;
/// How often a running child is polled.
const POLL: Duration = Duration::from_millis(20);

/// `dispatch = { kind = "command", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandConfig {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    timeout: Option<HumanDuration>,
    /// The working directory, resolved against the config's directory.
    dir: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// Runs a program for each job.
///
/// In the arguments, `{model}`, `{version}`, `{job_id}`, `{seq}` and
/// `{reason}` (the reasons in one line) are replaced by the job's values. The
/// job is written as JSON to the program's stdin and put in the environment
/// variable `MODEL_MONITOR_JOB`; `MODEL_MONITOR_MODEL`, `MODEL_MONITOR_VERSION`
/// and `MODEL_MONITOR_JOB_ID` are set too. Exit code 0 is success; any other
/// exit, or running past the timeout (default 10m), is a retryable failure. A
/// child that times out is killed with its process group. Its stdout and
/// stderr are captured and logged with `tracing`.
///
/// ```no_run
/// # use monitor_observers::retrain::{CommandDispatcher, Dispatcher};
/// # use std::time::Duration;
/// let dispatcher = CommandDispatcher::new("sh")
///     .args(["-c", "./retrain.sh {model} {version} {job_id}"])
///     .timeout(Duration::from_secs(600));
/// ```
#[derive(Debug, Clone)]
pub struct CommandDispatcher {
    program: PathBuf,
    args: Vec<String>,
    dir: Option<PathBuf>,
    env: BTreeMap<String, String>,
    timeout: Duration,
}

impl CommandDispatcher {
    /// The default timeout of one run.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    /// Runs `program` (looked up in `PATH` unless it holds a `/`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            env: BTreeMap::new(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// The argument templates.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The working directory.
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// An extra environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The longest a run may take before it is killed.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn from_config(config: CommandConfig, ctx: &BuildContext) -> Result<Self> {
        if config.program.trim().is_empty() {
            return Err(Error::config("dispatch.program", "must not be empty"));
        }
        if config.timeout.is_some_and(|t| t.as_std().is_zero()) {
            return Err(Error::config("dispatch.timeout", "must be more than 0s: every run would be killed at once"));
        }
        // A relative path with a slash is relative to the config; a bare
        // name is looked up in PATH.
        let program =
            if config.program.contains('/') { ctx.resolve(&config.program) } else { PathBuf::from(&config.program) };
        let dir = match config.dir {
            Some(dir) => Some(ctx.resolve(&dir)),
            None if ctx.base_dir.as_os_str().is_empty() => None,
            None => Some(ctx.base_dir.clone()),
        };
        Ok(Self {
            program,
            args: config.args,
            dir,
            env: config.env,
            timeout: config.timeout.map_or(Self::DEFAULT_TIMEOUT, HumanDuration::as_std),
        })
    }

    fn command(&self, job: &RetrainJob, json: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(self.args.iter().map(|a| substitute(a, job)))
            .envs(&self.env)
            .env("MODEL_MONITOR_JOB", json)
            .env("MODEL_MONITOR_MODEL", &job.model)
            .env("MODEL_MONITOR_VERSION", &job.version)
            .env("MODEL_MONITOR_JOB_ID", job.job_id.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group, so that a timeout kills its children too.
            cmd.process_group(0);
        }
        cmd
    }
}

/// The job's value of a placeholder.
type Value = fn(&RetrainJob) -> String;

/// The placeholders of templates, and the job's value of each.
const PLACEHOLDERS: [(&str, Value); 5] = [
    ("{model}", |job| job.model.clone()),
    ("{version}", |job| job.version.clone()),
    ("{job_id}", |job| job.job_id.to_string()),
    ("{seq}", |job| job.seq.to_string()),
    ("{reason}", RetrainJob::reason_summary),
];

/// Whether `text` holds a placeholder.
pub(crate) fn has_placeholder(text: &str) -> bool {
    PLACEHOLDERS.iter().any(|(name, _)| text.contains(name))
}

/// Replaces the job placeholders in `template`.
pub(crate) fn substitute(template: &str, job: &RetrainJob) -> String {
    substitute_with(template, job, str::to_owned)
}

/// Replaces each placeholder in `template` by `encode` of its value, in one
/// pass: a value that holds a placeholder's name is inserted as it is, not
/// replaced in turn.
pub(crate) fn substitute_with(template: &str, job: &RetrainJob, encode: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        match PLACEHOLDERS.iter().find(|(name, _)| tail.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(&encode(&value(job)));
                rest = &tail[name.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Dispatcher for CommandDispatcher {
    fn kind(&self) -> &str {
        "command"
    }

    fn dispatch(&mut self, job: &RetrainJob) -> Result<DispatchOutcome> {
        let json = serde_json::to_string(job).map_err(|e| Error::observer("command", format!("job to JSON: {e}")))?;
        let program = self.program.display().to_string();
        let mut child = match self.command(job, &json).spawn() {
            Ok(child) => child,
            Err(e) => return Ok(DispatchOutcome::permanent(format!("could not start `{program}`: {e}"))),
        };
        let stdout = capture(child.stdout.take());
        let stderr = capture(child.stderr.take());
        if let Some(mut stdin) = child.stdin.take() {
            // On a thread: a program that does not read its stdin must not
            // block us past the timeout. One that closes it early is fine.
            let input = json.clone();
            let spawned = thread::Builder::new().name("retrain-input".into()).spawn(move || {
                let _ = stdin.write_all(input.as_bytes()).and_then(|()| stdin.write_all(b"\n"));
            });
            if let Err(e) = spawned {
                tracing::warn!("could not start a thread to write a retrain command's input: {e}");
            }
        }
        let started = Instant::now();
        let status = wait(&mut child, self.timeout);
        let elapsed = started.elapsed();
        // A killed child's grandchildren may hold the pipes open: don't wait long.
        let grace = Duration::from_secs(1);
        let out = stdout.recv_timeout(grace).unwrap_or_default();
        let err = stderr.recv_timeout(grace).unwrap_or_default();
        let outcome = match status {
            Ok(Some(status)) if status.success() => DispatchOutcome::succeeded(describe(status)),
            Ok(Some(status)) => DispatchOutcome::retryable(describe(status)),
            Ok(None) => DispatchOutcome::retryable(format!("timed out after {}, killed", HumanDuration(self.timeout))),
            Err(e) => DispatchOutcome::retryable(format!("waiting for `{program}`: {e}")),
        };
        let ok = outcome.is_success();
        log_output(job, &program, "stdout", &out, ok);
        log_output(job, &program, "stderr", &err, ok);
        tracing::debug!(job_id = %job.job_id, %program, ?elapsed, "command finished: {}", outcome.detail());
        Ok(outcome)
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status}"),
    }
}

/// Waits for `child` up to `timeout`; `Ok(None)` when it had to be killed.
fn wait(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            kill(child);
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

fn kill(child: &mut Child) {
    #[cfg(unix)]
    {
        // The whole group: `sh -c` would otherwise leave its children running.
        let group = format!("-{}", child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads a stream to its end on a thread, keeping the last `MAX_OUTPUT` bytes.
fn capture<R: Read + Send + 'static>(stream: Option<R>) -> crossbeam_channel::Receiver<String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    if let Some(mut stream) = stream {
        let spawned = thread::Builder::new().name("retrain-output".into()).spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&buf[..n]);
                        if kept.len() > 2 * MAX_OUTPUT {
                            kept.drain(..kept.len() - MAX_OUTPUT);
                        }
                    }
                }
            }
            if kept.len() > MAX_OUTPUT {
                kept.drain(..kept.len() - MAX_OUTPUT);
            }
            let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
        });
        if let Err(e) = spawned {
            tracing::warn!("could not start a thread to read a retrain command's output: {e}");
        }
    }
    rx
}

fn log_output(job: &RetrainJob, program: &str, stream: &str, text: &str, ok: bool) {
    let text = text.trim_end();
    if text.is_empty() {
        return;
    }
    if ok {
        tracing::info!(job_id = %job.job_id, model = %job.model, %program, stream, "{text}");
    } else {
        tracing::warn!(job_id = %job.job_id, model = %job.model, %program, stream, "{text}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;

    #[test]
    fn placeholders_are_replaced() {
        let job = RetrainJob {
            job_id: Uuid::nil(),
            model: "fraud".into(),
            version: "v3".into(),
            reasons: vec![],
            created_at: Utc::now(),
            seq: 4,
        };
        assert_eq!(
            substitute("{model}/{version}/{job_id}/{seq}/{reason}", &job),
            "fraud/v3/00000000-0000-0000-0000-000000000000/4/"
        );
    }

    #[test]
    fn values_that_look_like_placeholders_are_not_replaced_again() {
        let job = RetrainJob {
            job_id: Uuid::nil(),
            model: "{version}".into(),
            version: "v3".into(),
            reasons: vec![],
            created_at: Utc::now(),
            seq: 4,
        };
        assert_eq!(substitute("{model}:{version}:{unknown}:{", &job), "{version}:v3:{unknown}:{");
        assert_eq!(substitute_with("<{model}>", &job, |v| v.to_uppercase()), "<{VERSION}>");
    }

    #[test]
    fn relative_programs_resolve_against_the_base_dir() {
        let ctx = BuildContext { base_dir: PathBuf::from("/etc/mm"), ..BuildContext::default() };
        let config: CommandConfig =
            serde_json::from_value(serde_json::json!({"program": "./retrain.sh", "timeout": "5s"})).unwrap();
        let d = CommandDispatcher::from_config(config, &ctx).unwrap();
        assert_eq!(d.program, PathBuf::from("/etc/mm/./retrain.sh"));
        assert_eq!(d.dir, Some(PathBuf::from("/etc/mm")));
        assert_eq!(d.timeout, Duration::from_secs(5));
        let config: CommandConfig = serde_json::from_value(serde_json::json!({"program": "sh"})).unwrap();
        assert_eq!(CommandDispatcher::from_config(config, &ctx).unwrap().program, PathBuf::from("sh"));
    }
}
