//! The pages: a replay's report, and the daemon's dashboard (the list of
//! models, and a page per model). Each is one self-contained HTML document:
//! inline CSS and SVG, no script, no request to any host (a
//! Content-Security-Policy says so to the browser as well).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::charts;
use crate::collect::Report;
use crate::labels;
use crate::model::{Health, JobMark, VersionData};
use crate::svg::{escape, num, time};

/// The most a report's charts may weigh: past it, further series are
/// listed in a table instead of drawn, so that a report stays well under
/// 2 MB however many models a log holds.
pub const MAX_CHART_BYTES: usize = 1_500_000;

/// What a page says about where its data came from.
#[derive(Debug, Clone, Default)]
pub struct PageMeta {
    /// The page's title.
    pub title: String,
    /// Lines under the title: the source, the record count, the time taken.
    pub lines: Vec<String>,
    /// Reload the page every this many seconds (a dashboard), or never.
    pub refresh_seconds: Option<u32>,
    /// A link back to the list of models (a dashboard's model page).
    pub back: Option<String>,
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;margin:0 auto;max-width:1500px;padding:0 18px 40px}\
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 4px;color:#444}\
.meta{color:#555;margin:0}table{border-collapse:collapse;margin:8px 0}th,td{text-align:left;padding:4px 10px;border-bottom:1px solid #eee;vertical-align:top}\
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-weight:600;font-size:12px;border:2px solid}\
.badge.drift{background:#D55E00;color:#fff;border-color:#D55E00}.badge.warning{background:#fff;color:#222;border-color:#E69F00;border-style:dashed}.badge.healthy{background:#fff;color:#005a46;border-color:#009E73}\
.charts{display:flex;flex-wrap:wrap;gap:10px}figure.chart{margin:0;border:1px solid #e3e3e3;border-radius:4px;background:#fff;padding:4px}\
figure.chart svg{max-width:100%;height:auto;font-size:11px;font-family:inherit}figure.chart .title{font-size:13px;font-weight:600}\
figcaption{color:#666;font-size:12px;padding:0 6px}details{margin:6px 0}summary{cursor:pointer;color:#0072B2}a{color:#0072B2}\
.note{color:#666}";

/// Opens a page.
fn head(out: &mut String, meta: &PageMeta) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    // Nothing may be fetched: not a script, a style sheet, a font or an image.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
    );
    // Without it a browser asks the server for /favicon.ico.
    out.push_str("<link rel=\"icon\" href=\"data:,\">");
    if let Some(s) = meta.refresh_seconds {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    let _ = write!(out, "<title>{}</title><style>{CSS}</style></head><body>", escape(&meta.title));
    if let Some(back) = &meta.back {
        let _ = write!(out, "<p><a href=\"{}\">← all models</a></p>", escape(back));
    }
    let _ = write!(out, "<h1>{}</h1>", escape(&meta.title));
    for line in &meta.lines {
        let _ = write!(out, "<p class=\"meta\">{}</p>", escape(line));
    }
}

fn badge(h: Health) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", h.name())
}

fn job_status(j: &JobMark) -> String {
    j.status.map_or_else(|| "requested".to_owned(), |s| s.to_string())
}

/// The status table: drift first, then warnings, then healthy.
fn summary(out: &mut String, report: &Report, link: &dyn Fn(usize, &VersionData) -> String) {
    out.push_str("<section class=\"summary\"><h2>Status</h2><table><thead><tr><th>status</th><th>model</th><th>version</th><th>open findings</th><th>findings</th><th>retrain jobs</th></tr></thead><tbody>");
    for (i, v) in report.versions.iter().enumerate() {
        let open: Vec<String> = v
            .open()
            .iter()
            .map(|(s, k)| {
                let statistic = report
                    .monitors
                    .get(s.monitor)
                    .and_then(|m| m.params.get("statistic"))
                    .and_then(serde_json::Value::as_str)
                    .map(|st| format!(" {st}"))
                    .unwrap_or_default();
                format!("{} {}{} ({})", escape(&s.signal), escape(&s.detector), escape(&statistic), k.name())
            })
            .collect();
        let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
        for j in &v.jobs {
            *statuses.entry(job_status(j)).or_default() += 1;
        }
        let jobs: Vec<String> = statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let _ = write!(
            out,
            "<tr class=\"version-row\" data-health=\"{h}\"><td>{badge}</td><td><a href=\"{href}\">{m}</a></td><td>{ver}</td><td>{open}</td><td>{f}</td><td>{jobs}</td></tr>",
            h = v.health().name(),
            badge = badge(v.health()),
            href = escape(&link(i, v)),
            m = escape(&v.model),
            ver = escape(&v.version),
            open = if open.is_empty() { "—".to_owned() } else { open.join("<br>") },
            f = v.findings(),
            jobs = if jobs.is_empty() { "—".to_owned() } else { jobs.join(", ") },
        );
    }
    out.push_str("</tbody></table>");
    if report.versions_dropped > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{} windows of further model versions were not collected (at most {} versions).</p>",
            report.versions_dropped, report.limits.versions
        );
    }
    out.push_str("</section>");
}

/// The event-time span of a version's windows and jobs.
fn span(v: &VersionData) -> (i64, i64) {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for s in &v.series {
        for b in s.all_buckets() {
            lo = lo.min(b.first_ms);
            hi = hi.max(b.last_ms);
        }
        for m in &s.markers {
            lo = lo.min(m.ms);
            hi = hi.max(m.ms);
        }
    }
    for j in &v.jobs {
        lo = lo.min(j.ms);
        hi = hi.max(j.ms);
    }
    if lo > hi {
        return (0, 1000);
    }
    if lo == hi { (lo - 30_000, hi + 30_000) } else { (lo, hi) }
}

/// One version's section: its findings and jobs, then its charts by group.
/// Returns false when the chart budget ran out before it.
fn version(out: &mut String, id: &str, v: &VersionData, report: &Report, budget: usize) {
    let _ = write!(
        out,
        "<section class=\"version\" id=\"{id}\" data-model=\"{m}\" data-version=\"{ver}\" data-health=\"{h}\"><h2>{m} · {ver} {badge}</h2>",
        m = escape(&v.model),
        ver = escape(&v.version),
        h = v.health().name(),
        badge = badge(v.health()),
    );
    if !v.jobs.is_empty() {
        out.push_str("<details><summary>Retrain jobs</summary><table><tr><th>requested at</th><th>line</th><th>job</th><th>status</th><th>because of</th></tr>");
        for j in &v.jobs {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
                time(j.ms),
                j.seq + 1,
                j.job_id,
                escape(&job_status(j)),
                j.detail.as_deref().map(|d| format!(" ({})", escape(d))).unwrap_or_default(),
                escape(&j.reasons.join(", ")),
            );
        }
        out.push_str("</table></details>");
        if v.jobs_dropped > 0 {
            let _ = write!(out, "<p class=\"note\">{} earlier jobs not listed.</p>", v.jobs_dropped);
        }
    }
    let span = span(v);
    let jobs: Vec<&JobMark> = v.jobs.iter().collect();
    let mut groups: BTreeMap<&str, Vec<&crate::model::SeriesData>> = BTreeMap::new();
    for s in &v.series {
        groups.entry(labels::group(&s.signal)).or_default().push(s);
    }
    let mut skipped: Vec<&crate::model::SeriesData> = Vec::new();
    for (group, series) in groups {
        let _ = write!(out, "<h3>{}</h3><div class=\"charts\">", escape(group));
        for s in series {
            if out.len() > budget {
                skipped.push(s);
                continue;
            }
            let info = report.monitors.get(s.monitor);
            // Beside an estimate, the value its window's labels gave.
            let realised = s
                .signal
                .strip_prefix("estimated.")
                .and_then(|metric| v.series.iter().find(|r| r.signal.strip_prefix("perf.") == Some(metric)));
            charts::timeline(out, s, realised, info, &jobs, span);
            for at in &s.comparisons {
                charts::comparison(out, &s.signal, at);
            }
        }
        out.push_str("</div>");
    }
    if !skipped.is_empty() {
        out.push_str("<p class=\"note\">Not drawn, to keep this page small:</p><table><tr><th>signal</th><th>detector</th><th>windows</th><th>last statistic</th></tr>");
        for s in skipped {
            let last = s.all_buckets().last().map_or_else(|| "—".to_owned(), |b| num(b.max));
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{last}</td></tr>",
                escape(&s.signal),
                escape(&s.detector),
                s.windows
            );
        }
        out.push_str("</table>");
    }
    if v.series_dropped > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{} windows of further signals were not collected (at most {} series a version).</p>",
            v.series_dropped, report.limits.series_per_version
        );
    }
    out.push_str("</section>");
}

/// A whole report: the status table, then each version's charts.
pub fn report_page(report: &Report, meta: &PageMeta) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, meta);
    summary(&mut out, report, &|i, _| format!("#v{i}"));
    let budget = out.len() + MAX_CHART_BYTES;
    for (i, v) in report.versions.iter().enumerate() {
        version(&mut out, &format!("v{i}"), v, report, budget);
    }
    out.push_str("</body></html>\n");
    out
}

/// The dashboard's front page: the models and their status, each linking
/// to `model_href(model)`.
pub fn index_page(report: &Report, meta: &PageMeta, model_href: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, meta);
    summary(&mut out, report, &|_, v| model_href(&v.model));
    if report.versions.is_empty() {
        out.push_str("<p class=\"note\">No window has been judged yet.</p>");
    }
    out.push_str("</body></html>\n");
    out
}

/// The dashboard's page of one model: its versions' charts.
pub fn model_page(report: &Report, meta: &PageMeta) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, meta);
    if report.versions.is_empty() {
        out.push_str("<p class=\"note\">No window of this model has been judged yet.</p>");
    }
    let budget = out.len() + MAX_CHART_BYTES;
    for (i, v) in report.versions.iter().enumerate() {
        version(&mut out, &format!("v{i}"), v, report, budget);
    }
    out.push_str("</body></html>\n");
    out
}

/// Several reports on one page (configs compared on the same log, say):
/// `intro` (HTML the caller built, its text escaped) first, then each
/// report's status table and charts under its name.
pub fn multi_page(meta: &PageMeta, intro: &str, reports: &[(String, Report)]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    head(&mut out, meta);
    out.push_str(intro);
    let budget = out.len() + MAX_CHART_BYTES;
    for (n, (name, report)) in reports.iter().enumerate() {
        let _ = write!(out, "<h2 class=\"config\">{}</h2>", escape(name));
        summary(&mut out, report, &|i, _| format!("#r{n}v{i}"));
        for (i, v) in report.versions.iter().enumerate() {
            version(&mut out, &format!("r{n}v{i}"), v, report, budget);
        }
    }
    out.push_str("</body></html>\n");
    out
}
