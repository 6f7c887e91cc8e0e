//! The engine: a cloneable sink, shards that own model state, an event bus,
//! and one task with a bounded queue per observer.
//!
//! One async model: every part is a tokio task on the caller's runtime,
//! tracked by one [`TaskTracker`](tokio_util::task::TaskTracker); one [`CancellationToken`] stops the
//! intake. Shutdown drains every record already accepted, hands every event
//! on, then gives observers until `engine.shutdown_timeout` to finish what
//! they started (deliveries, running jobs). An observer still busy then is
//! cut off, and the [`Summary`] says so in `unfinished`.

mod bus;
mod checkpoints;
pub mod metrics;
mod positions;
mod query;
mod run;
mod shard;
mod sink;
mod summary;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use monitor_core::observer::{Observer, ObserverRegistry};
use monitor_core::registry::BuildContext;
use monitor_core::{Error, RecordError};
use monitor_strategies::{Monitor, MonitorPlan, WindowFeed};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::metrics::RejectReason;
pub use self::query::{Inspector, Overview};
use self::query::{QUERY_QUEUE, ShardQuery};
use self::run::{JournalParts, Parts, run};
pub(crate) use self::sink::BatchDone;
use self::sink::IngestGate;
pub use self::sink::{Offered, Receipt, Refused, RefusedBatch, RejectHandler, Sink};
use self::summary::Counters;
pub use self::summary::{Health, ObserverHealth, ObserverSummary, Summary};
use crate::config::{Config, EngineConfig, Overflow};
use crate::journal::{JobJournal, Journal};

/// How long observers get, after the deadline, to take the events still
/// queued for them (feedback published while they flushed).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Builds an [`Engine`] from a plan or a [`Config`].
pub struct EngineBuilder {
    plan: MonitorPlan,
    settings: EngineConfig,
    observers: Vec<Box<dyn Observer>>,
    on_reject: Option<RejectHandler>,
    metrics_max_models: usize,
    window_feed: Option<WindowFeedFactory>,
}

/// Makes the window feed of each shard's monitor, given the shard's index.
type WindowFeedFactory = Box<dyn Fn(usize) -> Box<dyn WindowFeed> + Send + Sync>;

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("plan", &self.plan)
            .field("settings", &self.settings)
            .field("observers", &self.observers.iter().map(|o| o.name().to_owned()).collect::<Vec<_>>())
            .finish()
    }
}

impl EngineBuilder {
    /// An engine for `plan` with default settings and no observer.
    pub fn new(plan: MonitorPlan) -> Self {
        Self {
            plan,
            settings: EngineConfig::default(),
            observers: Vec::new(),
            on_reject: None,
            metrics_max_models: metrics::DEFAULT_METRICS_MAX_MODELS,
            window_feed: None,
        }
    }

    /// An engine for `config`: its detectors built by `ctx.detectors` (see
    /// [`Config::plan`]) and its observers by `registry`. Every config error
    /// surfaces here, before anything runs.
    pub fn from_config(config: &Config, registry: &ObserverRegistry, ctx: &BuildContext) -> Result<Self, Error> {
        config.validate()?;
        let plan = config.plan(ctx)?;
        let observers = config.build_observers(registry, ctx)?;
        Ok(Self {
            plan,
            settings: config.engine.clone(),
            observers,
            on_reject: None,
            metrics_max_models: metrics::DEFAULT_METRICS_MAX_MODELS,
            window_feed: None,
        })
    }

    /// Replaces the engine settings.
    #[must_use]
    pub fn settings(mut self, settings: EngineConfig) -> Self {
        self.settings = settings;
        self
    }

    /// Sets the number of shards.
    #[must_use]
    pub fn shards(mut self, shards: usize) -> Self {
        self.settings.shards = shards;
        self
    }

    /// Sets how many messages each shard queues: single records from
    /// `submit`, or batches of up to 256 from a replay.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.settings.queue_capacity = capacity;
        self
    }

    /// Sets what a full observer queue does.
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.settings.overflow = overflow;
        self
    }

    /// Sets how many models get a `model` label of their own in the
    /// engine's metrics (default 100, at most 10,000); later ones share the
    /// label `_other` (see [`metrics`]).
    #[must_use]
    pub fn metrics_max_models(mut self, max: usize) -> Self {
        self.metrics_max_models = max;
        self
    }

    /// Adds an observer built in code.
    #[must_use]
    pub fn observer(mut self, observer: Box<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Calls `handler` for every record a shard rejects (records the caller
    /// rejects before the sink go through [`Sink::reject`]). The default logs
    /// a warning.
    #[must_use]
    pub fn on_reject(mut self, handler: impl Fn(u64, &RecordError) + Send + Sync + 'static) -> Self {
        self.on_reject = Some(Arc::new(handler));
        self
    }

    /// Gives each shard's monitor the window feed `make(shard)` returns
    /// (see [`Monitor::set_window_feed`]): every window verdict, for a
    /// report or a dashboard.
    #[must_use]
    pub fn window_feed(mut self, make: impl Fn(usize) -> Box<dyn WindowFeed> + Send + Sync + 'static) -> Self {
        self.window_feed = Some(Box::new(make));
        self
    }

    /// Builds the engine: a handle, and the future that runs it. Drive the
    /// future (spawn it or await it) and call [`Engine::shutdown`] to stop;
    /// the future then drains everything accepted and returns a [`Summary`].
    pub fn build(self) -> Result<(Engine, impl Future<Output = Summary> + Send + 'static), Error> {
        self.settings.validate()?;
        if self.metrics_max_models == 0 || self.metrics_max_models > metrics::MAX_METRICS_MAX_MODELS {
            return Err(Error::config(
                "server.metrics_max_models",
                format!("must be between 1 and {} (got {})", metrics::MAX_METRICS_MAX_MODELS, self.metrics_max_models),
            ));
        }
        let journal = self.settings.state_dir.as_deref().map(Journal::open).transpose()?;
        if let Some(journal) = &journal {
            journal.set_max_bytes((self.settings.journal_max_mib as u64) << 20)?;
        }
        let mut observers = self.observers;
        let scheduled = observers.iter().any(|o| o.schedules_jobs());
        let mut receivers = Vec::new();
        if let Some(journal) = &journal {
            // Observers that deliver from the outbox, each under a name of
            // its own (config order is stable across restarts).
            for observer in &mut observers {
                let mut receiver = observer.name().to_owned();
                let mut n = 1;
                while receivers.contains(&receiver) {
                    n += 1;
                    receiver = format!("{}#{n}", observer.name());
                }
                let outbox: Arc<dyn monitor_core::outbox::Outbox> = Arc::new(journal.clone());
                if observer.use_outbox(outbox, &receiver) {
                    receivers.push(receiver);
                }
            }
            observers.push(Box::new(JobJournal::new(journal.clone())));
        }
        // The limits bound the whole engine: each shard gets its share.
        let mut plan = self.plan;
        plan.validate()?;
        plan.limits = plan.limits.per_shard(self.settings.shards);
        let plan = Arc::new(plan);
        let checkpoints::Restored { monitors, entries, positions, next_seq, refeed } = match &journal {
            Some(journal) => checkpoints::restore(journal, &plan, self.settings.shards)?,
            None => checkpoints::Restored {
                monitors: (0..self.settings.shards)
                    .map(|_| Monitor::new(Arc::clone(&plan)))
                    .collect::<Result<Vec<_>, _>>()?,
                entries: vec![0; self.settings.shards],
                positions: positions::SourcePositions::default(),
                next_seq: 0,
                refeed: Vec::new(),
            },
        };
        let mut monitors = monitors;
        if let Some(make) = &self.window_feed {
            for (shard, monitor) in monitors.iter_mut().enumerate() {
                monitor.set_window_feed(make(shard));
            }
        }
        let next_seq = Arc::new(AtomicU64::new(next_seq));
        let positions = Arc::new(positions);
        let names: Vec<String> = observers.iter().map(|o| o.name().to_owned()).collect();
        let counters = Arc::new(Counters::new(monitors.len(), &names, self.metrics_max_models));
        let stop = CancellationToken::new();
        let mut shard_txs = Vec::with_capacity(monitors.len());
        let mut shard_rxs = Vec::with_capacity(monitors.len());
        let mut query_txs = Vec::with_capacity(monitors.len());
        for _ in 0..monitors.len() {
            let (tx, rx) = mpsc::channel(self.settings.queue_capacity);
            let (query_tx, query_rx) = mpsc::channel(QUERY_QUEUE);
            shard_txs.push(tx);
            shard_rxs.push((rx, query_rx));
            query_txs.push(query_tx);
        }
        let on_reject: RejectHandler = self
            .on_reject
            .unwrap_or_else(|| Arc::new(|seq, e: &RecordError| tracing::warn!(seq, error = %e, "record rejected")));
        let ingest = journal.as_ref().map(|journal| {
            Arc::new(IngestGate { journal: journal.clone(), lock: Arc::new(tokio::sync::Mutex::new(())) })
        });
        // New requests wait until the records read again are queued.
        let refeed_guard = match &ingest {
            Some(gate) => Some(
                Arc::clone(&gate.lock)
                    .try_lock_owned()
                    .map_err(|_| Error::io("the ingest log", std::io::Error::other("locked before the start")))?,
            ),
            None => None,
        };
        let sink = Sink {
            shards: shard_txs.into(),
            next_seq: Arc::clone(&next_seq),
            counters: Arc::clone(&counters),
            on_reject: Arc::clone(&on_reject),
            ingest,
            positions: Arc::clone(&positions),
        };
        let queries: Arc<[mpsc::Sender<ShardQuery>]> = query_txs.into();
        let (feedback_tx, feedback_rx) = mpsc::unbounded_channel();
        let engine = Engine {
            sink: sink.clone(),
            stop: stop.clone(),
            counters: Arc::clone(&counters),
            inspector: Inspector { shards: Arc::clone(&queries) },
            journal: journal.clone(),
            feedback: feedback_tx.clone(),
        };
        let journal = match journal {
            Some(journal) => {
                let redo = journal.unfinished_jobs(scheduled)?;
                Some(JournalParts { journal, queries, next_seq, redo, receivers, refeed, refeed_guard, sink })
            }
            None => None,
        };
        let parts = Parts {
            settings: self.settings,
            monitors,
            entries,
            positions,
            shard_rxs,
            stop,
            observers,
            counters,
            on_reject,
            journal,
            feedback: (feedback_tx, feedback_rx),
        };
        Ok((engine, run(parts)))
    }

    /// Builds the engine and spawns it on the current tokio runtime.
    pub fn spawn(self) -> Result<RunningEngine, Error> {
        let (engine, driver) = self.build()?;
        Ok(RunningEngine { engine, task: tokio::spawn(driver) })
    }
}

/// An engine spawned by [`EngineBuilder::spawn`].
#[derive(Debug)]
pub struct RunningEngine {
    engine: Engine,
    task: JoinHandle<Summary>,
}

impl RunningEngine {
    /// The handle.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A sink to submit records.
    pub fn sink(&self) -> Sink {
        self.engine.sink()
    }

    /// Stops accepting records, drains everything accepted, lets observers
    /// finish (up to `engine.shutdown_timeout`) and returns the summary.
    pub async fn shutdown(self) -> Summary {
        self.engine.shutdown();
        match self.task.await {
            Ok(summary) => summary,
            Err(e) => {
                tracing::error!(error = %e, "engine task failed");
                let mut summary = self.engine.counters.summary();
                summary.unfinished.push(format!("the engine task failed: {e}"));
                summary
            }
        }
    }
}

/// A handle to a running engine.
#[derive(Debug, Clone)]
pub struct Engine {
    sink: Sink,
    stop: CancellationToken,
    counters: Arc<Counters>,
    inspector: Inspector,
    journal: Option<Journal>,
    feedback: mpsc::UnboundedSender<monitor_core::event::Event>,
}

impl Engine {
    /// The journal, when the engine keeps one (`engine.state_dir`).
    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_ref()
    }

    /// Asks for the retrain job `id` of the journal again: marks it
    /// `requested` and publishes its request on the bus, where the retrain
    /// scheduler dispatches it under the same idempotency key.
    pub fn retry_job(&self, id: &str) -> Result<crate::journal::JobRow, Error> {
        let journal = self.journal.as_ref().ok_or_else(no_journal)?;
        let request = journal.retry_job(id)?;
        self.feedback.send(request).map_err(|_| Error::Closed)?;
        journal.job(id)?.ok_or(Error::Closed)
    }

    /// A sink to submit records. Sinks are cheap to clone.
    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// Stops accepting records. What was accepted is still processed; the
    /// engine's future completes once everything is drained.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// The token that [`Engine::shutdown`] cancels, for tasks that must stop
    /// with the engine (a source's reader, say).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> Summary {
        self.counters.summary()
    }

    /// Asks the shards about the models they hold.
    pub fn inspector(&self) -> Inspector {
        self.inspector.clone()
    }

    /// What runs and what is queued, now.
    pub fn health(&self) -> Health {
        self.counters.health()
    }

    /// Whether [`Engine::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// The error of an operation on the journal of an engine that keeps none.
fn no_journal() -> Error {
    Error::config("engine.state_dir", "is not set: this engine keeps no journal")
}
