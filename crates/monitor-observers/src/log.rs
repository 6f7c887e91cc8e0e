//! The `log` observer: one `tracing` line per event.

use async_trait::async_trait;
use monitor_core::Result;
use monitor_core::event::{Event, EventKind, Severity};
use monitor_core::observer::Observer;
use monitor_core::registry::{BuildContext, parse_config};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::text::escape_control;

/// Logs each event with `tracing`, one line each: at `warn` for drift
/// findings, at `info` otherwise. Config: `[[observers]] kind = "log"`.
///
/// Names and messages come from the records, so their control characters
/// (line breaks, ANSI escapes) are written as escapes (`\n`, `\u{1b}`): a
/// model name cannot forge a log line or repaint a terminal.
#[derive(Debug, Clone, Default)]
pub struct LogObserver {
    _private: (),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogConfig {}

impl LogObserver {
    /// A log observer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds it from its config table, which has no keys.
    pub fn from_config(config: Json, _ctx: &BuildContext) -> Result<Self> {
        let LogConfig {} = parse_config(config)?;
        Ok(Self::new())
    }
}

/// The line logged for `event`, without its model key, its control
/// characters escaped.
pub(crate) fn describe(event: &Event) -> String {
    escape_control(&describe_raw(event)).into_owned()
}

fn describe_raw(event: &Event) -> String {
    match &event.kind {
        EventKind::Finding(f) => format!("{} {} ({}): {}", f.severity, f.signal, f.detector, f.message),
        EventKind::Recovered(f) => format!("recovered {} ({}): {}", f.signal, f.detector, f.message),
        EventKind::RetrainRequested(r) => format!(
            "retrain requested, job {}: {}",
            r.job_id,
            r.reasons.iter().map(|f| format!("{} {}", f.signal, f.severity)).collect::<Vec<_>>().join(", ")
        ),
        EventKind::JobStatus(u) => {
            let detail = u.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            format!("job {} {} via {}{detail}", u.job_id, u.status, u.dispatcher)
        }
    }
}

#[async_trait]
impl Observer for LogObserver {
    fn name(&self) -> &str {
        "log"
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        let line = describe(event);
        let (model, version) = (escape_control(&event.key.model), escape_control(&event.key.version));
        let (seq, kind) = (event.seq, event.type_name());
        match &event.kind {
            EventKind::Finding(f) if f.severity == Severity::Drift => {
                tracing::warn!(%model, %version, seq, kind, "{line}");
            }
            _ => tracing::info!(%model, %version, seq, kind, "{line}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use monitor_core::event::Finding;
    use monitor_core::record::ModelKey;
    use monitor_core::signal::Signal;

    use super::*;

    #[test]
    fn lines_cannot_be_forged_by_names() {
        let finding = Finding {
            signal: Signal::Metric("acc\nINFO model=admin forged".into()),
            detector: "threshold".into(),
            severity: Severity::Drift,
            statistic: 0.5,
            threshold: 0.9,
            p_value: None,
            realised: None,
            message: "\u{1b}[2Jcleared".into(),
        };
        let event = Event::new(ModelKey::new("m", "v"), DateTime::<Utc>::UNIX_EPOCH, 0, EventKind::Finding(finding));
        let line = describe(&event);
        assert!(!line.chars().any(char::is_control), "{line}");
        assert_eq!(line, "drift metrics.acc\\nINFO model=admin forged (threshold): \\u{1b}[2Jcleared");
    }
}
