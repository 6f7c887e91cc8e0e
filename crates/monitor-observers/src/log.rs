//! The `log` observer: one `tracing` line per event.

use async_trait::async_trait;
use monitor_core::Result;
use monitor_core::event::{Event, EventKind, Severity};
use monitor_core::observer::Observer;
use monitor_core::registry::{BuildContext, parse_config};
use serde::Deserialize;
use serde_json::Value as Json;

/// Logs each event with `tracing`, one line each: at `warn` for drift
/// findings, at `info` otherwise. Config: `[[observers]] kind = "log"`.
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

/// The line logged for `event`, without its model key.
pub(crate) fn describe(event: &Event) -> String {
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
        let (model, version, seq, kind) = (&event.key.model, &event.key.version, event.seq, event.type_name());
        match &event.kind {
            EventKind::Finding(f) if f.severity == Severity::Drift => {
                tracing::warn!(%model, %version, seq, kind, "{line}");
            }
            _ => tracing::info!(%model, %version, seq, kind, "{line}"),
        }
        Ok(())
    }
}
