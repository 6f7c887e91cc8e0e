//! `replay --report FILE`: the self-contained HTML report, collected while
//! the replay runs (window summaries from the monitors, jobs from the
//! event bus) and written when it is done.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use model_monitor::registry::BuildContext;
use model_monitor::runtime::{Config, EngineBuilder, SourceReport, Summary};
use monitor_report::{Collector, Limits, PageMeta, report_page};

/// A collector for the monitors of `config`, hooked into `builder`.
pub(crate) fn attach(
    builder: EngineBuilder,
    config: &Config,
    ctx: &BuildContext,
) -> anyhow::Result<(EngineBuilder, Collector)> {
    let plan = config.plan(ctx)?;
    let collector = Collector::new(&plan, Limits::REPLAY);
    let feeds = collector.clone();
    let builder = builder.window_feed(move |_| feeds.feed()).observer(collector.observer());
    Ok((builder, collector))
}

/// Writes the report of a finished replay to `path`; returns its size.
pub(crate) fn write(
    path: &Path,
    collector: &Collector,
    source: &str,
    read: &SourceReport,
    summary: &Summary,
    took: Duration,
) -> anyhow::Result<usize> {
    let m = &summary.monitor;
    let meta = PageMeta {
        title: format!("model-monitor report: {source}"),
        lines: vec![
            format!(
                "{} records replayed in {:.2} s; {} malformed lines skipped; {} findings, {} recoveries, {} retrain requests.",
                m.records,
                took.as_secs_f64(),
                read.malformed,
                m.findings,
                m.recoveries,
                m.retrain_requests
            ),
            "Each chart shows one detector of one model version on event time: its statistic per window, \
             the threshold it is held to, findings (▼ drift, ◆ warning), recoveries (●) and retrain jobs (■ succeeded, □ otherwise)."
                .to_owned(),
        ],
        ..PageMeta::default()
    };
    let page = report_page(&collector.report(), &meta);
    std::fs::write(path, &page).with_context(|| format!("cannot write the report to {}", path.display()))?;
    Ok(page.len())
}
