//! The `channel` dispatcher: hands jobs to the embedding program.
//!
//! It is built in code, not from config (a config cannot hold the receiving
//! end), so it registers no kind. The channel is a bounded tokio channel: the
//! receiver awaits jobs in async code, or takes them with `blocking_recv`
//! on a thread of its own.

use async_trait::async_trait;
use monitor_core::Result;
use monitor_core::dispatch::{DispatchOutcome, Dispatcher};
use monitor_core::event::RetrainJob;
use tokio::sync::mpsc::{self, Receiver, Sender, error::TrySendError};

/// Sends each job on a bounded channel, for a program that embeds
/// model-monitor and runs retraining itself.
///
/// A full channel is a retryable failure; a dropped receiver a final one.
///
/// ```
/// # use monitor_observers::dispatch::ChannelDispatcher;
/// # use monitor_observers::retrain::RetrainScheduler;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (dispatcher, mut jobs) = ChannelDispatcher::new(16);
/// let scheduler = RetrainScheduler::new(dispatcher);
/// tokio::spawn(async move {
///     while let Some(job) = jobs.recv().await {
///         // retrain job.model ...
///         # let _ = job;
///     }
/// });
/// # drop(scheduler);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelDispatcher {
    tx: Sender<RetrainJob>,
}

impl ChannelDispatcher {
    /// A dispatcher and the receiving end of its channel of `capacity` jobs.
    pub fn new(capacity: usize) -> (Self, Receiver<RetrainJob>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }

    /// A dispatcher that sends on an existing channel.
    pub fn with_sender(tx: Sender<RetrainJob>) -> Self {
        Self { tx }
    }
}

#[async_trait]
impl Dispatcher for ChannelDispatcher {
    fn kind(&self) -> &str {
        "channel"
    }

    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
        Ok(match self.tx.try_send(job.clone()) {
            Ok(()) => DispatchOutcome::succeeded("handed to the in-process channel"),
            Err(TrySendError::Full(_)) => DispatchOutcome::retryable("the in-process channel is full"),
            Err(TrySendError::Closed(_)) => DispatchOutcome::permanent("the in-process channel is closed"),
        })
    }
}
