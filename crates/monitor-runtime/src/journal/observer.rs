//! The observer that writes retrain jobs to the journal; the engine
//! installs it when a `state_dir` is configured.

use monitor_core::event::{Event, EventKind};
use monitor_core::observer::Observer;
use monitor_core::{Result, async_trait};

use super::Journal;

/// Writes each `retrain_requested` and `job_status` event to the journal's
/// jobs table, off the async threads.
#[derive(Debug)]
pub struct JobJournal {
    journal: Journal,
}

impl JobJournal {
    /// An observer writing to `journal`.
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }
}

#[async_trait]
impl Observer for JobJournal {
    fn name(&self) -> &str {
        "journal"
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        if !matches!(event.kind, EventKind::RetrainRequested(_) | EventKind::JobStatus(_)) {
            return Ok(());
        }
        let journal = self.journal.clone();
        let event = event.clone();
        tokio::task::spawn_blocking(move || journal.record_job_event(&event))
            .await
            .map_err(|e| monitor_core::Error::observer("journal", e.to_string()))?
    }
}
