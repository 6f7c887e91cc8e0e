//! The retrain scheduler: retrain requests become jobs, jobs reach a
//! [`Dispatcher`](monitor_core::dispatch::Dispatcher), and their lifecycle
//! goes back onto the bus.
//!
//! [`RetrainScheduler`] is an [`Observer`](monitor_core::observer::Observer):
//! on each `retrain_requested` event it builds the
//! [`RetrainJob`](monitor_core::event::RetrainJob) and queues it. Up to
//! `max_concurrent` jobs (default 1) run at once, each handed to the
//! dispatcher, which runs it (a command), hands it over (a channel) or
//! submits it to an engine (Airflow, Argo, GitHub Actions, any HTTP API, or
//! a dispatcher of your own).
//!
//! The job's lifecycle goes back onto the bus as `job_status` events:
//! `queued` → `dispatched` (once per attempt) → `succeeded` or `failed`. A
//! request for a model that already has a job queued or running is `merged`
//! into that job: its reasons are added to the job (one per alert, see
//! [`AlertKey`](monitor_core::event::AlertKey)) and the event's detail names
//! the job it joined. So there is never more than one job in flight per
//! model. Once a job has ended, however it ended, the next request for its
//! model starts a new job; spacing requests out is the retrain policy's
//! `cooldown`, in event time.
//!
//! Jobs run as tasks on the engine's runtime and only ever await, so a
//! long-running command cannot stall ingestion. At shutdown, `flush` waits
//! for queued and running jobs; with a `shutdown_timeout`, jobs still
//! running past it are cut off (a command is killed with its process group)
//! and reported `failed`.
//!
//! One concern per module: `scheduler` runs jobs, `jobs` keeps their state
//! and merges requests, `config` builds a scheduler from its table.

mod attempt;
mod config;
mod jobs;
mod scheduler;

pub use self::jobs::SchedulerStats;
pub use self::scheduler::{RetrainScheduler, RetrainSchedulerBuilder};
