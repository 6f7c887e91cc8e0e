//! The `command` dispatcher: runs a local program per job.
//!
//! The child is a `tokio::process` child awaited on the engine's runtime:
//! no thread waits for it, reads its output or writes its input. It runs in
//! a process group of its own, so that a timeout, a shutdown that cuts the
//! job off, or a dropped dispatch kills its children too (`sh -c` would
//! otherwise leave them running); `nix`'s `killpg` sends the signal, since
//! the workspace forbids `unsafe`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
use crate::text::escape_control;

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
    /// Variables of model-monitor's environment passed on as they are.
    #[serde(default)]
    inherit_env: Vec<String>,
}

/// Runs a program for each job.
///
/// In the arguments, `{model}`, `{version}`, `{job_id}`, `{seq}` and
/// `{reason}` (the reasons in one line) are replaced by the job's values. The
/// job is written as JSON to the program's stdin and put in the environment
/// variable `MODEL_MONITOR_JOB`; `MODEL_MONITOR_MODEL`, `MODEL_MONITOR_VERSION`
/// and `MODEL_MONITOR_JOB_ID` are set too.
///
/// The child starts from an empty environment: it gets [`SAFE_ENV`](CommandDispatcher::SAFE_ENV) (`PATH`,
/// `HOME`, `LANG`, `TZ`, `TMPDIR`) from model-monitor's, the variables named
/// with [`inherit_env`](CommandDispatcher::inherit_env), those set with
/// [`env`](CommandDispatcher::env), and the `MODEL_MONITOR_*` ones, in that order (a later
/// one wins). So the tokens and signing keys that model-monitor holds never
/// reach it unless named. Exit code 0 is success; any other
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
    inherit_env: Vec<String>,
    timeout: Duration,
}

impl CommandDispatcher {
    /// The default timeout of one run.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
    /// The longest `timeout` of one run: a week.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);
    /// The variables a child inherits from model-monitor's environment, when
    /// set: nothing else (no token, no signing key) reaches it unless the
    /// config names it in `inherit_env`.
    pub const SAFE_ENV: [&'static str; 5] = ["PATH", "HOME", "LANG", "TZ", "TMPDIR"];

    /// Runs `program` (looked up in `PATH` unless it holds a `/`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            dir: None,
            env: BTreeMap::new(),
            inherit_env: Vec::new(),
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

    /// Passes the variable `name` of model-monitor's environment on to the
    /// child, when it is set (a token the training job needs, say).
    #[must_use]
    pub fn inherit_env(mut self, name: impl Into<String>) -> Self {
        self.inherit_env.push(name.into());
        self
    }

    /// The longest a run may take before it is killed (default 10m). From
    /// code it is held to [`MAX_TIMEOUT`](Self::MAX_TIMEOUT); config refuses more.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(Self::MAX_TIMEOUT);
        self
    }

    /// Builds it from its `dispatch` table (without `kind`): `program`
    /// (required), `args`, `timeout`, `dir`, `env` and `inherit_env`. A
    /// relative `program` with a `/` and `dir` are resolved against the
    /// config's directory, which is also the default working directory.
    ///
    /// The program must be there now: a path that is not an executable file,
    /// or a bare name that no directory of the child's `PATH` holds, is a
    /// config error at `program`, caught by `check-config`.
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let config: CommandConfig = parse_config(config)?;
        if config.program.trim().is_empty() {
            return Err(Error::config("program", "must not be empty"));
        }
        if let Some(timeout) = config.timeout {
            crate::bounds::positive(
                "timeout",
                timeout.as_std(),
                Self::MAX_TIMEOUT,
                "every run would be killed at once",
            )?;
        }
        for (i, name) in config.inherit_env.iter().enumerate() {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(Error::config(format!("inherit_env[{i}]"), format!("`{name}` is not a variable name")));
            }
        }
        // A relative path with a slash is relative to the config; a bare
        // name is looked up in PATH.
        let program =
            if config.program.contains('/') { ctx.resolve(&config.program) } else { PathBuf::from(&config.program) };
        // The PATH the child will have (it inherits model-monitor's, or the config sets one).
        let child_path = config.env.get("PATH").cloned().or_else(|| std::env::var("PATH").ok());
        find_program(&program, child_path.as_deref()).map_err(|why| Error::config("program", why))?;
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
            inherit_env: config.inherit_env,
            timeout: config.timeout.map_or(Self::DEFAULT_TIMEOUT, HumanDuration::as_std),
        })
    }

    fn command(&self, job: &RetrainJob, json: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env_clear();
        for name in Self::SAFE_ENV.iter().copied().chain(self.inherit_env.iter().map(String::as_str)) {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
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
        let program = escape_control(&self.program.display().to_string()).into_owned();
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

/// Logs what the child wrote on one stream, as one line: its line breaks and
/// other control characters are escaped, so that it cannot forge log lines.
fn log_output(job: &RetrainJob, program: &str, stream: &str, bytes: &[u8], ok: bool) {
    let bytes = &bytes[bytes.len().saturating_sub(MAX_OUTPUT)..];
    let text = String::from_utf8_lossy(bytes);
    let text = escape_control(text.trim_end());
    if text.is_empty() {
        return;
    }
    let model = escape_control(&job.model);
    let program = escape_control(program);
    if ok {
        tracing::info!(job_id = %job.job_id, %model, %program, stream, "{text}");
    } else {
        tracing::warn!(job_id = %job.job_id, %model, %program, stream, "{text}");
    }
}

/// Whether `program` can be run: a path (with a `/`) must be an executable
/// file; a bare name must be one in a directory of `path` (the child's
/// `PATH`). The error says what was looked for, and where.
fn find_program(program: &Path, path: Option<&str>) -> std::result::Result<(), String> {
    let shown = escape_control(&program.display().to_string()).into_owned();
    if program.as_os_str().to_string_lossy().contains('/') {
        return match std::fs::metadata(program) {
            Ok(meta) if meta.is_file() && is_executable(&meta) => Ok(()),
            Ok(meta) if meta.is_file() => Err(format!("`{shown}` is not executable")),
            Ok(_) => Err(format!("`{shown}` is not a file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("`{shown}` does not exist")),
            Err(e) => Err(format!("`{shown}` cannot be checked: {e}")),
        };
    }
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Err(format!("`{shown}` is a bare name, to be found in `PATH`, and the child has no `PATH`"));
    };
    let found = std::env::split_paths(path)
        .any(|dir| std::fs::metadata(dir.join(program)).is_ok_and(|meta| meta.is_file() && is_executable(&meta)));
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{shown}` is not found in `PATH` ({}); give its path, or fix `PATH` (or `env.PATH`)",
            escape_control(path)
        ))
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn relative_programs_resolve_against_the_base_dir() {
        let base = tempfile::tempdir().unwrap();
        let script = base.path().join("retrain.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let ctx = BuildContext { base_dir: base.path().to_path_buf(), ..Default::default() };
        let d = CommandDispatcher::from_config(serde_json::json!({"program": "./retrain.sh", "timeout": "5s"}), &ctx)
            .unwrap();
        assert_eq!(d.program, base.path().join("./retrain.sh"));
        assert_eq!(d.dir, Some(base.path().to_path_buf()));
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
