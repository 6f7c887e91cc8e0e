//! The text report of a replay: per model, its findings and its jobs.
//!
//! [`ReportObserver`] keeps a bounded summary while events stream by: per
//! model version its counts, its first [`LINES_PER_VERSION`] events, and the
//! status history of the jobs those events asked for. Memory stays bounded
//! however many events a replay makes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use model_monitor::event::{Event, EventKind, JobStatus};
use model_monitor::observer::Observer;
use model_monitor::record::ModelKey;
use model_monitor::runtime::{SourceReport, Summary};
use model_monitor::{Result, async_trait};
use uuid::Uuid;

/// Events listed per model version; the rest are counted.
pub(crate) const LINES_PER_VERSION: usize = 50;
/// Healthy models listed one by one; the rest are counted.
const HEALTHY_LISTED: usize = 50;
/// Model versions listed; events of further ones are counted.
const MAX_VERSIONS: usize = 1_000;

#[derive(Debug, Default)]
struct VersionReport {
    findings: u64,
    recoveries: u64,
    requests: u64,
    events: Vec<Event>,
    not_listed: u64,
    jobs: BTreeMap<Uuid, Vec<(JobStatus, Option<String>)>>,
}

#[derive(Debug, Default)]
struct ReportData {
    versions: BTreeMap<ModelKey, VersionReport>,
    versions_not_listed: u64,
}

/// Collects the bounded summary that [`render`] prints.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportObserver {
    data: Arc<Mutex<ReportData>>,
}

#[async_trait]
impl Observer for ReportObserver {
    fn name(&self) -> &str {
        "report"
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        let mut data = self.data.lock().unwrap_or_else(PoisonError::into_inner);
        if !data.versions.contains_key(&event.key) && data.versions.len() >= MAX_VERSIONS {
            data.versions_not_listed += 1;
            return Ok(());
        }
        let v = data.versions.entry(event.key.clone()).or_default();
        match &event.kind {
            EventKind::Finding(_) => v.findings += 1,
            EventKind::Recovered(_) => v.recoveries += 1,
            EventKind::RetrainRequested(_) => v.requests += 1,
            EventKind::JobStatus(j) => {
                // Only the jobs of listed requests are followed.
                if let Some(history) = v.jobs.get_mut(&j.job_id) {
                    if history.len() < 20 {
                        history.push((j.status, j.detail.clone()));
                    }
                }
                return Ok(());
            }
        }
        if v.events.len() < LINES_PER_VERSION {
            if let EventKind::RetrainRequested(r) = &event.kind {
                v.jobs.insert(r.job_id, Vec::new());
            }
            v.events.push(event.clone());
        } else {
            v.not_listed += 1;
        }
        Ok(())
    }
}

/// Escapes control characters, so that a name from the input cannot forge
/// report lines or send terminal escapes.
pub(crate) fn clean(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// Renders the report.
pub(crate) fn render(
    source: &str,
    read: &SourceReport,
    summary: &Summary,
    observer: &ReportObserver,
    took: Duration,
) -> String {
    let data = observer.data.lock().unwrap_or_else(PoisonError::into_inner);
    let m = &summary.monitor;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Replayed {}: {} records in {:.2}s ({} malformed lines skipped, {} records rejected)\n",
        clean(source),
        // This run's records: a monitor restored from a journal counts on
        // from earlier runs.
        read.submitted,
        took.as_secs_f64(),
        read.malformed,
        m.rejected.saturating_sub(read.malformed),
    );
    let mut models: BTreeMap<&str, Vec<(&ModelKey, &VersionReport)>> = BTreeMap::new();
    for model in read.records_by_model.keys() {
        models.entry(model).or_default();
    }
    for (key, v) in &data.versions {
        models.entry(&key.model).or_default().push((key, v));
    }
    // Models with findings first, all of them (bounded by MAX_VERSIONS);
    // healthy ones are listed up to a point, then counted.
    let mut healthy_listed = 0;
    let mut healthy_more = 0u64;
    for (model, versions) in
        models.iter().filter(|(_, v)| !v.is_empty()).chain(models.iter().filter(|(_, v)| v.is_empty()))
    {
        let records = read.records_by_model.get(*model).copied().unwrap_or(0);
        if versions.is_empty() {
            if healthy_listed >= HEALTHY_LISTED {
                healthy_more += 1;
                continue;
            }
            healthy_listed += 1;
        }
        let _ = writeln!(out, "{} ({records} records read)", clean(model));
        if versions.is_empty() {
            let _ = writeln!(out, "  healthy: no findings");
        }
        for (key, v) in versions {
            render_version(&mut out, key, v);
        }
        out.push('\n');
    }
    if healthy_more > 0 {
        let _ = writeln!(out, "{healthy_more} more models with no findings (not listed)\n");
    }
    if read.records_of_other_models > 0 {
        let _ = writeln!(out, "{} records of further models (not listed one by one)\n", read.records_of_other_models);
    }
    if data.versions_not_listed > 0 {
        let _ = writeln!(out, "{} events of further model versions (not listed)\n", data.versions_not_listed);
    }
    let _ = writeln!(
        out,
        "Totals: findings {}, recoveries {}, retrain requests {}; job attempts {}, jobs succeeded {}, jobs failed {}",
        m.findings,
        m.recoveries,
        m.retrain_requests,
        summary.jobs_dispatched,
        summary.jobs_succeeded,
        summary.jobs_failed,
    );
    for o in summary.observers.iter().filter(|o| o.lost_anything() || o.errors > 0) {
        let _ = writeln!(
            out,
            "Observer {}: {} events dropped (queue full), {} given up after retries, {} dropped inside, {} errors (see the log)",
            clean(&o.name),
            o.events_dropped,
            o.losses.given_up,
            o.losses.dropped,
            o.errors
        );
    }
    if m.signals_dropped > 0 {
        let _ = writeln!(
            out,
            "Signals: {} values ignored past limits.max_signals_per_model (see the log)",
            m.signals_dropped
        );
    }
    if m.late_samples > 0 || m.empty_windows > 0 {
        let _ = writeln!(
            out,
            "Event-time windows: {} samples came after their window had been judged and were dropped; {} windows ended empty",
            m.late_samples, m.empty_windows
        );
    }
    for what in &summary.unfinished {
        let _ = writeln!(out, "Unfinished: {}", clean(what));
    }
    out
}

fn render_version(out: &mut String, key: &ModelKey, v: &VersionReport) {
    let _ = writeln!(
        out,
        "  version {}: {} findings, {} recoveries, {} retrain requests",
        clean(&key.version),
        v.findings,
        v.recoveries,
        v.requests
    );
    for e in &v.events {
        match &e.kind {
            EventKind::Finding(f) => {
                let severity = f.severity.to_string();
                let _ = writeln!(
                    out,
                    "    line {:>6}  {severity:<9} {} by {}: {}",
                    e.seq + 1,
                    clean(&f.signal.to_string()),
                    clean(&f.detector),
                    clean(&f.message)
                );
            }
            EventKind::Recovered(f) => {
                let _ = writeln!(
                    out,
                    "    line {:>6}  {:<9} {} by {}: {}",
                    e.seq + 1,
                    "recovered",
                    clean(&f.signal.to_string()),
                    clean(&f.detector),
                    clean(&f.message)
                );
            }
            EventKind::RetrainRequested(r) => {
                let reasons: Vec<String> =
                    r.reasons.iter().map(|f| clean(&format!("{} {}", f.signal, f.detector))).collect();
                let _ = writeln!(
                    out,
                    "    line {:>6}  {:<9} job {} because of {}",
                    e.seq + 1,
                    "retrain",
                    r.job_id,
                    reasons.join(", ")
                );
                if let Some(history) = v.jobs.get(&r.job_id).filter(|h| !h.is_empty()) {
                    let steps: Vec<String> = history
                        .iter()
                        .map(|(s, d)| match d {
                            Some(d) => format!("{s} ({})", clean(d)),
                            None => s.to_string(),
                        })
                        .collect();
                    let _ = writeln!(out, "                           {}", steps.join(" -> "));
                }
            }
            EventKind::JobStatus(_) => {}
        }
    }
    if v.not_listed > 0 {
        let _ = writeln!(out, "    ... and {} more events (use --format json for all of them)", v.not_listed);
    }
}
