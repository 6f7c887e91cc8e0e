//! The report's SVG, checked by its structure: how many charts, series and
//! markers, where the markers sit and what the axes span, for a replay of
//! known changes. No byte comparison: layout may change, meaning may not.

mod svg;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use monitor_core::record::Record;
use monitor_report::{Collector, Limits, PageMeta, Report, report_page};
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, builtin_detectors};

/// The elements named `tag` whose class list starts with `class`, as
/// attribute maps.
pub(crate) fn elements(html: &str, tag: &str, class: &str) -> Vec<HashMap<String, String>> {
    let mut found = Vec::new();
    let open = format!("<{tag} ");
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let attrs = parse_attrs(&after[..end]);
        if attrs.get("class").is_some_and(|c| c.starts_with(class)) {
            found.push(attrs);
        }
        rest = &after[end..];
    }
    found
}

fn parse_attrs(text: &str) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().trim_start_matches('/').to_owned();
        let value_start = &rest[eq + 2..];
        let close = value_start.find('"').unwrap_or(value_start.len());
        attrs.insert(name, value_start[..close].to_owned());
        rest = value_start.get(close + 1..).unwrap_or("");
    }
    attrs
}

pub(crate) fn f(attrs: &HashMap<String, String>, name: &str) -> f64 {
    attrs.get(name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number `{name}` in {attrs:?}"))
}

/// Event time of record `i`: one record a second from 08:00.
pub(crate) fn ts(i: u64) -> DateTime<Utc> {
    let start = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z").unwrap_or_else(|e| panic!("{e}"));
    start.with_timezone(&Utc) + Duration::seconds(i as i64)
}

pub(crate) fn plan(monitors: &[(&str, serde_json::Value)]) -> MonitorPlan {
    let registry = builtin_detectors();
    let ctx = monitor_core::registry::BuildContext::default();
    let monitors = monitors
        .iter()
        .map(|(signal, detector)| {
            let spec = registry.build("detector", detector, &ctx).unwrap_or_else(|e| panic!("{e}"));
            MonitorSpec::from_spec(signal, spec).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    MonitorPlan { monitors, ..Default::default() }
}

/// Replays `lines` through a monitor of `plan` with a collector attached.
pub(crate) fn collect(plan: MonitorPlan, limits: Limits, lines: impl Iterator<Item = String>) -> Report {
    let collector = Collector::new(&plan, limits);
    let mut monitor = Monitor::new(plan).unwrap_or_else(|e| panic!("{e}"));
    monitor.set_window_feed(collector.feed());
    let mut events = Vec::new();
    for (seq, line) in lines.enumerate() {
        let record = Record::parse(&line, Utc::now()).unwrap_or_else(|e| panic!("{e}"));
        monitor.process(seq as u64, &record, &mut events).unwrap_or_else(|e| panic!("{e}"));
        for e in events.drain(..) {
            collector.on_event(&e);
        }
    }
    collector.report()
}

pub(crate) fn page(report: &Report) -> String {
    report_page(report, &PageMeta { title: "test".into(), ..Default::default() })
}

#[test]
fn a_report_has_no_reference_to_any_other_host() {
    let report = collect(
        plan(&[("latency_ms", serde_json::json!({"kind": "threshold", "window": 10, "max": 100.0}))]),
        Limits::REPLAY,
        (0..100u64).map(|i| format!(r#"{{"model": "m", "ts": "{}", "latency_ms": {}}}"#, ts(i).to_rfc3339(), i * 3)),
    );
    let html = page(&report);
    assert!(html.contains("Content-Security-Policy"));
    for needle in ["<script", "src=", "@import", "url(", "https:", "<link rel=\"stylesheet\""] {
        assert!(!html.contains(needle), "the report must fetch nothing, yet it holds `{needle}`");
    }
    // Only the SVG namespace, which is a name, not a request.
    assert_eq!(html.matches("http:").count(), html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
}
