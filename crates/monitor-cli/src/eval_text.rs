//! The results of `eval` as text, and as the HTML table of its report.

use std::fmt::Write;

use monitor_report::svg::{escape, num};

use crate::eval::Results;
use crate::report::clean;

/// Per config: its alarms, its false alarms on stable stretches, its delay
/// to each change point, then per signal.
pub(crate) fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Evaluated {} against {} configs: {} records ({} malformed lines skipped)",
        clean(&r.file),
        r.configs.len(),
        r.records,
        r.malformed
    );
    if !r.stable.is_empty() {
        let stretches: Vec<String> = r.stable.iter().map(|(a, b)| format!("{a}..{b}")).collect();
        let _ = writeln!(out, "Stable stretches: {} ({} records)", stretches.join(", "), r.stable_records);
    }
    if !r.changes.is_empty() {
        let changes: Vec<String> = r.changes.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "Change points: {}", changes.join(", "));
    }
    for c in &r.configs {
        let _ = writeln!(out, "\n{}", clean(&c.config));
        let _ = writeln!(
            out,
            "  alarms: {} ({} drift, {} warning)",
            c.alarms_total,
            c.drift_alarms,
            c.alarms_total - c.drift_alarms
        );
        if let Some(rate) = c.false_alarms_per_100k {
            let _ =
                writeln!(out, "  false alarms on stable stretches: {} ({rate:.1} per 100k records)", c.false_alarms);
        }
        for d in &c.delays {
            match (d.detected_at, &d.signal, &d.detector) {
                (Some(at), Some(signal), Some(detector)) => {
                    let secs = d.delay_seconds.map(|s| format!(", {s:.0} s of event time")).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  change at {}: detected at {at} by {} {} ({} records later{secs})",
                        d.change,
                        clean(signal),
                        clean(detector),
                        d.delay_records.unwrap_or(0)
                    );
                }
                _ => {
                    let _ = writeln!(out, "  change at {}: not detected", d.change);
                }
            }
        }
        for s in &c.signals {
            let _ = writeln!(
                out,
                "  {} {}: {} alarms, {} false, first at {}",
                clean(&s.signal),
                clean(&s.detector),
                s.alarms,
                s.false_alarms,
                s.first_alarm.map_or_else(|| "-".to_owned(), |a| a.to_string())
            );
        }
        for a in c.alarms.iter().take(20) {
            let _ = writeln!(
                out,
                "    seq {:>8}  {}  {:<7} {} {} {} {}",
                a.seq,
                a.ts.to_rfc3339(),
                a.severity.to_string(),
                clean(&a.model),
                clean(&a.version),
                clean(&a.signal),
                clean(&a.detector)
            );
        }
        if c.alarms_total > 20 {
            let _ = writeln!(out, "    ... and {} more alarms (use --format json)", c.alarms_total - 20);
        }
    }
    out
}

/// The comparison of the configs as an HTML table, every text escaped.
pub(crate) fn html_table(r: &Results) -> String {
    let mut out = String::from(
        "<h2>Configs compared</h2><table><tr><th>config</th><th>alarms</th><th>drift</th><th>false alarms</th><th>per 100k stable records</th><th>delays to change points</th></tr>",
    );
    for c in &r.configs {
        let delays: Vec<String> = c
            .delays
            .iter()
            .map(|d| match d.delay_records {
                Some(n) => format!("{}: {n} records", d.change),
                None => format!("{}: not detected", d.change),
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.config),
            c.alarms_total,
            c.drift_alarms,
            c.false_alarms,
            c.false_alarms_per_100k.map_or_else(|| "—".to_owned(), num),
            escape(&delays.join("; "))
        );
    }
    out.push_str("</table>");
    out
}
