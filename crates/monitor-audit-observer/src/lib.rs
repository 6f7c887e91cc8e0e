//! An observer crate written outside `monitor-observers`: one Markdown
//! incident report per drift.
//!
//! This crate is the worked example of `docs/EXTENDING.md`. It depends on
//! `monitor-core` alone (plus serde for its config), implements
//! [`Observer`], and registers the kind `incident_report` in an
//! [`ObserverRegistry`], so that a config can say:
//!
//! ```toml
//! [[observers]]
//! kind = "incident_report"
//! dir = "incidents"        # resolved against the config's directory
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
//! use monitor_core::observer::ObserverRegistry;
//! use monitor_core::registry::BuildContext;
//!
//! let mut registry = ObserverRegistry::new();
//! monitor_audit_observer::register(&mut registry);
//! let dir = std::env::temp_dir().join("incident-report-doctest");
//! let spec = serde_json::json!({ "kind": "incident_report", "dir": dir });
//! let observer = registry.build("observers[0]", &spec, &BuildContext::default())?;
//! assert_eq!(observer.name(), "incident_report");
//! # Ok::<(), monitor_core::Error>(())
//! ```
//!
//! # Feature flags
//!
//! This crate has no optional features.

#![deny(missing_docs)]

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use monitor_core::event::{Event, EventKind, Finding, Severity};
use monitor_core::observer::{Observer, ObserverRegistry};
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;

/// The kind this crate registers.
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
    /// Open reports by model name: their path and the finding that opened them.
    open: HashMap<String, Vec<(PathBuf, Finding)>>,
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
        self.open.entry(event.key.model.clone()).or_default().push((path, finding.clone()));
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
                // Close the reports this recovery ends; keep the others open.
                let (closed, still_open): (Vec<_>, Vec<_>) = std::mem::take(reports)
                    .into_iter()
                    .partition(|(_, opened)| opened.signal == f.signal && opened.detector == f.detector);
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
