//! The `ledger` dispatcher: an append-only record of the retraining jobs,
//! one JSON line per job, for an audit trail or a batch system that picks
//! jobs up from a file.
//!
//! It is the worked example of a dispatcher written outside
//! `monitor-observers` (see `docs/EXTENDING.md`): one type that implements
//! [`Dispatcher`], one factory, one registration.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use monitor_core::dispatch::{DispatchOutcome, Dispatcher, DispatcherRegistry};
use monitor_core::event::RetrainJob;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// The dispatcher kind this crate registers.
pub const LEDGER_KIND: &str = "ledger";

/// Registers [`LEDGER_KIND`] in `registry`, next to the built-in
/// dispatchers or instead of them.
pub fn register_dispatchers(registry: &mut DispatcherRegistry) {
    registry.register(LEDGER_KIND, |config, ctx| Ok(Box::new(LedgerDispatcher::from_config(config, ctx)?)));
}

/// `dispatch = { kind = "ledger", path = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerConfig {
    /// The ledger file, resolved against the config's directory.
    path: String,
}

/// Appends one JSON line per job to a file: its `job_id`, `model`,
/// `version` and `reasons`, and reports the job `succeeded` once the line is
/// written. A failed write is an error, which the scheduler retries.
///
/// The write is synchronous: a line is a few hundred bytes, and the crate
/// stays free of any async runtime. A lock keeps lines whole when jobs of
/// several models are dispatched at once.
#[derive(Debug)]
pub struct LedgerDispatcher {
    path: PathBuf,
    lock: Mutex<()>,
}

impl LedgerDispatcher {
    /// Appends to the file at `path`, created (with its directory) on the
    /// first job.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), lock: Mutex::new(()) }
    }

    /// Builds it from its `dispatch` table (without `kind`): `path`,
    /// required, relative to the config's directory.
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let LedgerConfig { path } = parse_config(config)?;
        if path.trim().is_empty() {
            return Err(Error::config("path", "must not be empty"));
        }
        Ok(Self::new(ctx.resolve(&path)))
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let _whole_lines = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        OpenOptions::new().create(true).append(true).open(&self.path)?.write_all(line)
    }
}

#[async_trait]
impl Dispatcher for LedgerDispatcher {
    fn kind(&self) -> &str {
        LEDGER_KIND
    }

    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
        let entry = json!({
            "job_id": job.job_id,
            "model": job.model,
            "version": job.version,
            "reasons": job.reasons,
        });
        let mut line =
            serde_json::to_vec(&entry).map_err(|e| Error::observer(LEDGER_KIND, format!("job to JSON: {e}")))?;
        line.push(b'\n');
        self.append(&line).map_err(|e| Error::io(format!("appending to {}", self.path.display()), e))?;
        Ok(DispatchOutcome::succeeded(format!("appended to {}", self.path.display())))
    }
}
