//! The `command` dispatcher: runs a local program per job.
//!
//! The child is a `tokio::process` child awaited on the engine's runtime:
//! no thread waits for it, reads its output or writes its input. It runs in
//! a process group of its own, so that a timeout, a shutdown that cuts the
//! job off, or a dropped dispatch kills its children too (`sh -c` would
//! otherwise leave them running); `nix`'s `killpg` sends the signal, since
//! the workspace forbids `unsafe`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use monitor_core::dispatch::{DispatchOutcome, Dispatcher, DispatcherRegistry};
use monitor_core::duration::HumanDuration;
use monitor_core::event::RetrainJob;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::placeholders::substitute;

/// The kind this file registers.
const KIND: &str = "command";

/// How much of each output stream is kept for the log.
const MAX_OUTPUT: usize = 64 * 1024;

/// How long the output is still read once the child has ended: a killed
/// child's grandchildren may hold its pipes open.
const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// Registers `kind = "command"`.
pub(crate) fn register(registry: &mut DispatcherRegistry) {
    registry.register(KIND, |config, ctx| Ok(Box::new(CommandDispatcher::from_config(config, ctx)?)));
}

/// `dispatch = { kind = "command", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandConfig {
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
/// child that times out, or whose dispatch is dropped (a shutdown that cuts
/// the job off), is killed with its process group. Its stdout and stderr are
/// captured and logged with `tracing`.
///
/// ```
/// # use monitor_observers::dispatch::CommandDispatcher;
/// # use std::time::Duration;
/// let dispatcher = CommandDispatcher::new("sh")
///     .args(["-c", "./retrain.sh \"$1\" \"$2\" \"$3\"", "retrain", "{model}", "{version}", "{job_id}"])
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

    /// Builds it from its `dispatch` table (without `kind`): `program`
    /// (required), `args`, `timeout`, `dir` and `env`. A relative `program`
    /// with a `/` and `dir` are resolved against the config's directory,
    /// which is also the default working directory.
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let config: CommandConfig = parse_config(config)?;
        if config.program.trim().is_empty() {
            return Err(Error::config("program", "must not be empty"));
        }
        if config.timeout.is_some_and(|t| t.as_std().is_zero()) {
            return Err(Error::config("timeout", "must be more than 0s: every run would be killed at once"));
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
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        // Its own process group, so that killing the group reaches its children.
        #[cfg(unix)]
        cmd.process_group(0);
        cmd
    }
}

#[async_trait]
impl Dispatcher for CommandDispatcher {
    fn kind(&self) -> &str {
        KIND
    }

    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
        let json = serde_json::to_string(job).map_err(|e| Error::observer(KIND, format!("job to JSON: {e}")))?;
        let program = self.program.display().to_string();
        let mut child = match self.command(job, &json).spawn() {
            Ok(child) => child,
            Err(e) => return Ok(DispatchOutcome::permanent(format!("could not start `{program}`: {e}"))),
        };
        // Declared after `child`, so dropped before it: the group goes first.
        let mut group = ProcessGroup::of(&child);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(&mut child, &mut group, &json, self.timeout, (&mut out, &mut err)).await;
        let outcome = match status {
            Ok(Some(status)) if status.success() => DispatchOutcome::succeeded(describe(status)),
            Ok(Some(status)) => DispatchOutcome::retryable(describe(status)),
            Ok(None) => DispatchOutcome::retryable(format!("timed out after {}, killed", HumanDuration(self.timeout))),
            Err(e) => DispatchOutcome::retryable(format!("waiting for `{program}`: {e}")),
        };
        let ok = outcome.is_success();
        log_output(job, &program, "stdout", &out, ok);
        log_output(job, &program, "stderr", &err, ok);
        tracing::debug!(job_id = %job.job_id, %program, "command finished: {}", outcome.detail());
        Ok(outcome)
    }
}

/// Feeds `input` to the child and reads its output while waiting for it, up
/// to `timeout`. `Ok(None)` when it had to be killed.
async fn run(
    child: &mut Child,
    group: &mut ProcessGroup,
    input: &str,
    timeout: Duration,
    (out, err): (&mut Vec<u8>, &mut Vec<u8>),
) -> std::io::Result<Option<ExitStatus>> {
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let io = async {
        let feed = async {
            // A program that does not read its stdin, or closes it early, is fine.
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(input.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
            }
        };
        tokio::join!(feed, capture(stdout, out), capture(stderr, err));
    };
    tokio::pin!(io);
    let mut io_done = false;
    let waited = {
        let wait = tokio::time::timeout(timeout, child.wait());
        tokio::pin!(wait);
        loop {
            tokio::select! {
                waited = &mut wait => break waited,
                () = &mut io, if !io_done => io_done = true,
            }
        }
    };
    let status = match waited {
        Ok(Ok(status)) => Ok(Some(status)),
        Ok(Err(e)) => {
            group.kill();
            Err(e)
        }
        Err(_) => {
            group.kill();
            child.wait().await.map(|_| None)
        }
    };
    // Reaped: the group's id may be reused from now on.
    group.disarm();
    if !io_done {
        let _ = tokio::time::timeout(OUTPUT_GRACE, io).await;
    }
    status
}

/// The process group of a child, killed when this is dropped unless the
/// child was reaped first: so a dispatch that is dropped half-way (cut off
/// at shutdown) leaves no process behind.
#[derive(Debug)]
struct ProcessGroup {
    id: Option<i32>,
}

impl ProcessGroup {
    fn of(child: &Child) -> Self {
        Self { id: child.id().and_then(|id| i32::try_from(id).ok()) }
    }

    /// Sends `SIGKILL` to the whole group.
    fn kill(&self) {
        #[cfg(unix)]
        if let Some(id) = self.id {
            use nix::sys::signal::{Signal, killpg};
            // ESRCH (the group is gone already) is fine.
            let _ = killpg(nix::unistd::Pid::from_raw(id), Signal::SIGKILL);
        }
    }

    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status}"),
    }
}

/// Reads a stream to its end into `kept`, keeping the last `MAX_OUTPUT` bytes.
async fn capture<R: AsyncRead + Unpin>(stream: Option<R>, kept: &mut Vec<u8>) {
    let Some(mut stream) = stream else { return };
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * MAX_OUTPUT {
                    kept.drain(..kept.len() - MAX_OUTPUT);
                }
            }
        }
    }
}

fn log_output(job: &RetrainJob, program: &str, stream: &str, bytes: &[u8], ok: bool) {
    let bytes = &bytes[bytes.len().saturating_sub(MAX_OUTPUT)..];
    let text = String::from_utf8_lossy(bytes);
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
    use super::*;

    #[test]
    fn relative_programs_resolve_against_the_base_dir() {
        let ctx = BuildContext { base_dir: PathBuf::from("/etc/mm"), ..Default::default() };
        let d = CommandDispatcher::from_config(serde_json::json!({"program": "./retrain.sh", "timeout": "5s"}), &ctx)
            .unwrap();
        assert_eq!(d.program, PathBuf::from("/etc/mm/./retrain.sh"));
        assert_eq!(d.dir, Some(PathBuf::from("/etc/mm")));
        assert_eq!(d.timeout, Duration::from_secs(5));
        let d = CommandDispatcher::from_config(serde_json::json!({"program": "sh"}), &ctx).unwrap();
        assert_eq!(d.program, PathBuf::from("sh"));
    }

    #[test]
    fn config_mistakes_name_their_key() {
        let ctx = BuildContext::default();
        let err = |spec| CommandDispatcher::from_config(spec, &ctx).unwrap_err().to_string();
        assert_eq!(err(serde_json::json!({"program": " "})), "config error at `program`: must not be empty");
        assert!(err(serde_json::json!({"program": "sh", "timeot": "1s"})).starts_with("config error at `timeot`"));
        assert!(err(serde_json::json!({"program": "sh", "timeout": "0s"})).starts_with("config error at `timeout`"));
    }
}
