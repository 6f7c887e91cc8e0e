//! An extension crate written outside `monitor-observers`: one Markdown
//! incident report per drift, and a ledger of retraining jobs.
//!
//! This crate is the worked example of `docs/EXTENDING.md`. It depends on
//! `monitor-core` alone (plus serde for its config), and adds to two
//! extension points:
//!
//! - an [`Observer`], registered as `incident_report` in an
//!   [`ObserverRegistry`] by [`register`];
//! - a [`Dispatcher`](monitor_core::dispatch::Dispatcher),
//!   [`LedgerDispatcher`], registered as `ledger` in a
//!   [`DispatcherRegistry`](monitor_core::dispatch::DispatcherRegistry) by
//!   [`register_dispatchers`], which a retrain observer can then name.
//!
//! So that a config can say:
//!
//! ```toml
//! [[observers]]
//! kind = "incident_report"
//! dir = "incidents"        # resolved against the config's directory
//!
//! [[observers]]
//! kind = "retrain"
//! dispatch = { kind = "ledger", path = "retrain-jobs.ndjson" }
//! ```
//!
//! For each `drift` finding it writes `dir/<model>-<version>-<signal>-<seq>.md`
//! with what was found; later events for the same model (the retrain request,
//! the job's status changes, the recovery) are appended to the model's open
//! reports, so that each file tells one incident from start to end.
//!
//! # Example
//!
//! ```
//! use monitor_core::dispatch::DispatcherRegistry;
//! use monitor_core::observer::ObserverRegistry;
//! use monitor_core::registry::BuildContext;
//!
//! let mut registry = ObserverRegistry::new();
//! monitor_audit_observer::register(&mut registry);
//! let mut dispatchers = DispatcherRegistry::new();
//! monitor_audit_observer::register_dispatchers(&mut dispatchers);
//! let ctx = BuildContext { dispatchers, ..Default::default() };
//!
//! // Nothing is written until the first event or job.
//! let spec = serde_json::json!({ "kind": "incident_report", "dir": "incidents" });
//! let observer = registry.build("observers[0]", &spec, &ctx)?;
//! assert_eq!(observer.name(), "incident_report");
//! let spec = serde_json::json!({ "kind": "ledger", "path": "retrain-jobs.ndjson" });
//! let dispatcher = ctx.dispatchers.build("observers[1].dispatch", &spec, &ctx)?;
//! assert_eq!(dispatcher.kind(), "ledger");
//! # Ok::<(), monitor_core::Error>(())
//! ```
//!
//! # Feature flags
//!
//! This crate has no optional features.

#![deny(missing_docs)]

mod ledger;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use monitor_core::event::{AlertKey, Event, EventKind, Finding, Severity};
use monitor_core::observer::{Observer, ObserverRegistry};
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;

pub use crate::ledger::{LEDGER_KIND, LedgerDispatcher, register_dispatchers};

/// The observer kind this crate registers.
pub const KIND: &str = "incident_report";

/// Registers [`KIND`] in `registry`.
pub fn register(registry: &mut ObserverRegistry) {
    registry.register(KIND, |config, ctx| Ok(Box::new(IncidentReporter::from_config(config, ctx)?)));
}

/// The config table: every key is named, unknown keys are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Where reports go.
    dir: String,
    /// Open a report for warnings too, not only for drift.
    #[serde(default)]
    include_warnings: bool,
}

/// Writes one Markdown report per drift finding. See the [crate docs](crate).
///
/// File I/O is synchronous: a report is a few hundred bytes, and the engine
/// runs each observer on its own task, so a slow disk delays only this one.
#[derive(Debug)]
pub struct IncidentReporter {
    dir: PathBuf,
    min_severity: Severity,
    /// Open reports by model name: their path and the alert that opened them.
    open: HashMap<String, Vec<(PathBuf, AlertKey)>>,
}

impl IncidentReporter {
    /// Writes reports into `dir`, created when the first one is written.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), min_severity: Severity::Drift, open: HashMap::new() }
    }

    /// Opens reports for warnings too.
    #[must_use]
    pub fn include_warnings(mut self) -> Self {
        self.min_severity = Severity::Warning;
        self
    }

    /// Builds it from its config table (`dir`, `include_warnings`).
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let config: Config = parse_config(config)?;
        if config.dir.trim().is_empty() {
            return Err(Error::config("dir", "must not be empty"));
        }
        let reporter = Self::new(ctx.resolve(&config.dir));
        Ok(if config.include_warnings { reporter.include_warnings() } else { reporter })
    }

    /// The reports written so far that are still open, for a model.
    pub fn open_reports(&self, model: &str) -> Vec<&Path> {
        self.open.get(model).map(|v| v.iter().map(|(p, _)| p.as_path()).collect()).unwrap_or_default()
    }

    fn open_report(&mut self, event: &Event, finding: &Finding) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let name = format!(
            "{}-{}-{}-{}.md",
            file_safe(&event.key.model),
            file_safe(&event.key.version),
            file_safe(&finding.signal.to_string()),
            event.seq
        );
        let path = self.dir.join(name);
        let p_value = finding.p_value.map(|p| format!("| p-value | {p} |\n")).unwrap_or_default();
        let text = format!(
            "# {severity}: {signal} of {model} {version}\n\n\
             {message}\n\n\
             | | |\n| --- | --- |\n\
             | model | {model} |\n| version | {version} |\n| signal | `{signal}` |\n\
             | detector | {detector} |\n| statistic | {statistic} |\n| threshold | {threshold} |\n{p_value}\
             | first seen | {ts} (input #{seq}) |\n| event | {id} |\n\n\
             ## Timeline\n\n- {ts}: {severity} detected by {detector}\n",
            severity = finding.severity,
            signal = finding.signal,
            model = event.key.model,
            version = event.key.version,
            message = finding.message,
            detector = finding.detector,
            statistic = finding.statistic,
            threshold = finding.threshold,
            ts = event.ts.to_rfc3339(),
            seq = event.seq,
            id = event.id,
        );
        fs::write(&path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        self.open.entry(event.key.model.clone()).or_default().push((path, AlertKey::new(&event.key, finding)));
        Ok(())
    }

    /// Appends a timeline line to the model's open reports.
    fn append(&self, model: &str, line: &str) -> Result<()> {
        for (path, _) in self.open.get(model).into_iter().flatten() {
            append_line(path, line)?;
        }
        Ok(())
    }
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut file =
        OpenOptions::new().append(true).open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    writeln!(file, "- {line}").map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// A model or signal name as a file-name part: anything unusual becomes `_`.
fn file_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

#[async_trait]
impl Observer for IncidentReporter {
    fn name(&self) -> &str {
        KIND
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        let model = event.key.model.as_str();
        let ts = event.ts.to_rfc3339();
        match &event.kind {
            EventKind::Finding(f) if f.severity >= self.min_severity => self.open_report(event, f),
            EventKind::Finding(_) => Ok(()),
            EventKind::RetrainRequested(r) => {
                self.append(model, &format!("{ts}: retraining requested, job `{}`", r.job_id))
            }
            EventKind::JobStatus(u) => {
                let detail = u.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
                self.append(model, &format!("{ts}: job `{}` {} via {}{detail}", u.job_id, u.status, u.dispatcher))
            }
            EventKind::Recovered(f) => {
                let Some(reports) = self.open.get_mut(model) else { return Ok(()) };
                // Close the reports of the alert this recovery ends; keep the others open.
                let ended = AlertKey::new(&event.key, f);
                let (closed, still_open): (Vec<_>, Vec<_>) =
                    std::mem::take(reports).into_iter().partition(|(_, opened)| *opened == ended);
                *reports = still_open;
                for (path, _) in closed {
                    append_line(&path, &format!("{ts}: recovered, {}", f.message))?;
                    append_line(&path, "resolved")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("fraud/v3 beta"), "fraud_v3_beta");
        assert_eq!(file_safe("metrics.f1_score"), "metrics.f1_score");
    }
}
