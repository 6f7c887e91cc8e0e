//! The `Dispatcher` trait and the registry that builds dispatchers from
//! config: how a retraining job reaches the thing that runs it.
//!
//! A retrain scheduler (in `monitor-observers`) decides *when* a job runs,
//! retries it and reports its status; a [`Dispatcher`] decides *how*: it runs
//! a command, submits the job to Airflow, Argo Workflows or GitHub Actions, or
//! writes it to a ledger. The trait lives here, next to
//! [`RetrainJob`], so that a crate that adds a dispatcher depends on
//! `monitor-core` alone, like an observer crate does.
//!
//! A config names a dispatcher by its `kind` in the retrain observer's
//! `dispatch` table, and the scheduler's factory builds it through the
//! [`DispatcherRegistry`] of its
//! [`BuildContext`](crate::registry::BuildContext):
//!
//! ```
//! use monitor_core::dispatch::{DispatchOutcome, Dispatcher, DispatcherRegistry};
//! use monitor_core::event::RetrainJob;
//! use monitor_core::registry::{BuildContext, parse_config};
//! use monitor_core::{Result, async_trait};
//!
//! /// Accepts every job and says so.
//! struct Accept {
//!     note: String,
//! }
//!
//! #[async_trait]
//! impl Dispatcher for Accept {
//!     fn kind(&self) -> &str {
//!         "accept"
//!     }
//!
//!     async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
//!         Ok(DispatchOutcome::succeeded(format!("{}: {}", self.note, job.model)))
//!     }
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct AcceptConfig {
//!     note: String,
//! }
//!
//! let mut dispatchers = DispatcherRegistry::new();
//! dispatchers.register("accept", |config, _ctx| {
//!     let AcceptConfig { note } = parse_config(config)?;
//!     Ok(Box::new(Accept { note }))
//! });
//! let ctx = BuildContext { dispatchers, ..Default::default() };
//!
//! let spec = serde_json::json!({ "kind": "accept", "note": "noted" });
//! let dispatcher = ctx.dispatchers.build("dispatch", &spec, &ctx)?;
//! assert_eq!(dispatcher.kind(), "accept");
//!
//! let typo = serde_json::json!({ "kind": "accept", "note": "x", "timeot": "1s" });
//! let err = ctx.dispatchers.build("dispatch", &typo, &ctx).err().map(|e| e.to_string()).unwrap_or_default();
//! assert!(err.starts_with("config error at `dispatch.timeot`: unknown field `timeot`"), "{err}");
//! # Ok::<(), monitor_core::Error>(())
//! ```

use async_trait::async_trait;

use crate::error::Result;
use crate::event::RetrainJob;
use crate::registry::{Component, Registry};

/// Runs or submits a retraining job: one attempt per call.
///
/// The scheduler calls [`dispatch`](Dispatcher::dispatch) on the engine's
/// async runtime, from a task of its own, so it must not block a thread:
/// await a child process or an HTTP answer rather than wait for it. Calls for
/// jobs of different models may run at once (the scheduler's
/// `max_concurrent`), hence `&self` and `Sync`: keep what changes behind a
/// lock or an atomic.
///
/// Return `Ok` with the outcome when the attempt got an answer, and `Err`
/// when the engine could not be reached at all; an `Err` is retried like a
/// retryable failure. A panic is caught and fails the job without retry.
///
/// A dispatch may be cancelled: at shutdown past the scheduler's deadline,
/// the future is dropped. Release what it holds on drop (a child process is
/// killed with its process group, say), so that nothing outlives the job.
#[async_trait]
pub trait Dispatcher: Send + Sync + 'static {
    /// The dispatcher's kind, as it appears in `job_status` events
    /// (`command`, `airflow`, `ledger`, ...).
    fn kind(&self) -> &str;

    /// Makes one attempt at running or submitting `job`.
    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome>;
}

#[async_trait]
impl Dispatcher for Box<dyn Dispatcher> {
    fn kind(&self) -> &str {
        (**self).kind()
    }

    async fn dispatch(&self, job: &RetrainJob) -> Result<DispatchOutcome> {
        (**self).dispatch(job).await
    }
}

/// What a [`Dispatcher`] made of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchOutcome {
    /// The job ran and succeeded, or the engine accepted it (for engines that
    /// run it on their own, such as Airflow). Reported as `succeeded`.
    Succeeded {
        /// A short human detail: `exit code 0`, `airflow accepted run mm-…`.
        detail: String,
    },
    /// The attempt failed.
    Failed {
        /// A short human detail; never contains secrets.
        detail: String,
        /// Whether another attempt may succeed (a 503, a timeout, a non-zero
        /// exit) or not (a 400, a program that does not exist).
        retryable: bool,
    },
}

impl DispatchOutcome {
    /// A success with `detail`.
    pub fn succeeded(detail: impl Into<String>) -> Self {
        Self::Succeeded { detail: detail.into() }
    }

    /// A failure that another attempt may fix.
    pub fn retryable(detail: impl Into<String>) -> Self {
        Self::Failed { detail: detail.into(), retryable: true }
    }

    /// A failure that no retry will fix.
    pub fn permanent(detail: impl Into<String>) -> Self {
        Self::Failed { detail: detail.into(), retryable: false }
    }

    /// Whether this is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded { .. })
    }

    /// The detail string.
    pub fn detail(&self) -> &str {
        match self {
            Self::Succeeded { detail } | Self::Failed { detail, .. } => detail,
        }
    }
}

impl Component for Box<dyn Dispatcher> {
    const WHAT: &'static str = "dispatcher";
}

/// Dispatcher factories keyed by `kind`, so that `dispatch = { kind = "..." }`
/// in a retrain observer's config can name a dispatcher from any crate.
pub type DispatcherRegistry = Registry<Box<dyn Dispatcher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::BuildContext;

    struct Nop;

    #[async_trait]
    impl Dispatcher for Nop {
        fn kind(&self) -> &str {
            "nop"
        }

        async fn dispatch(&self, _job: &RetrainJob) -> Result<DispatchOutcome> {
            Ok(DispatchOutcome::succeeded("nothing to do"))
        }
    }

    #[test]
    fn unknown_dispatcher_kinds_list_the_known_ones() {
        let mut registry = DispatcherRegistry::new();
        registry.register("nop", |_, _| Ok(Box::new(Nop)));
        let spec = serde_json::json!({"kind": "cron"});
        let err = registry.build("observers[1].dispatch", &spec, &BuildContext::default()).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("config error at `observers[1].dispatch.kind`: unknown dispatcher kind `cron`; known kinds: nop")
        );
    }

    #[test]
    fn outcomes_say_what_they_are() {
        assert!(DispatchOutcome::succeeded("ok").is_success());
        let failed = DispatchOutcome::retryable("503");
        assert_eq!((failed.is_success(), failed.detail()), (false, "503"));
        assert_eq!(
            DispatchOutcome::permanent("400"),
            DispatchOutcome::Failed { detail: "400".into(), retryable: false }
        );
    }
}
