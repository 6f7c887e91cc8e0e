//! The engine: a cloneable sink, shards that own model state, an event bus,
//! and one task with a bounded queue per observer.

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use monitor_core::event::{Event, EventKind, JobStatus};
use monitor_core::observer::{EventPublisher, Observer, ObserverRegistry};
use monitor_core::record::Record;
use monitor_core::registry::BuildContext;
use monitor_core::{Error, RecordError};
use monitor_strategies::{Monitor, MonitorPlan, MonitorStats};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, EngineConfig, Overflow};

/// Records in input order with their `seq`, as one message to a shard:
/// batching keeps the cost of queueing and waking a shard off the per-record path.
pub(crate) type Batch = Vec<(u64, Record)>;

/// Called for every rejected record with its `seq` and the reason.
pub type RejectHandler = Arc<dyn Fn(u64, &RecordError) + Send + Sync>;

/// Builds an [`Engine`] from a plan or a [`Config`].
pub struct EngineBuilder {
    plan: MonitorPlan,
    settings: EngineConfig,
    observers: Vec<Box<dyn Observer>>,
    on_reject: Option<RejectHandler>,
}

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
        Self { plan, settings: EngineConfig::default(), observers: Vec::new(), on_reject: None }
    }

    /// An engine for `config`: its detectors built by `ctx.detectors` (see
    /// [`Config::plan`]) and its observers by `registry`. Every config error
    /// surfaces here, before anything runs.
    pub fn from_config(config: &Config, registry: &ObserverRegistry, ctx: &BuildContext) -> Result<Self, Error> {
        config.validate()?;
        let plan = config.plan(ctx)?;
        let observers = config.build_observers(registry, ctx)?;
        Ok(Self { plan, settings: config.engine.clone(), observers, on_reject: None })
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

    /// Builds the engine: a handle, and the future that runs it. Drive the
    /// future (spawn it or await it) and call [`Engine::shutdown`] to stop;
    /// the future then drains everything accepted and returns a [`Summary`].
    pub fn build(self) -> Result<(Engine, impl Future<Output = Summary> + Send + 'static), Error> {
        self.settings.validate()?;
        let monitors: Vec<Monitor> =
            (0..self.settings.shards).map(|_| Monitor::new(self.plan.clone())).collect::<Result<_, _>>()?;
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut shard_txs = Vec::with_capacity(monitors.len());
        let mut shard_rxs = Vec::with_capacity(monitors.len());
        for _ in 0..monitors.len() {
            let (tx, rx) = mpsc::channel(self.settings.queue_capacity);
            shard_txs.push(tx);
            shard_rxs.push(rx);
        }
        let on_reject: RejectHandler = self
            .on_reject
            .unwrap_or_else(|| Arc::new(|seq, e: &RecordError| tracing::warn!(seq, error = %e, "record rejected")));
        let sink = Sink {
            shards: shard_txs.into(),
            next_seq: Arc::new(AtomicU64::new(0)),
            counters: Arc::clone(&counters),
            on_reject: Arc::clone(&on_reject),
        };
        let engine = Engine { sink, stop: Arc::new(stop_tx), counters: Arc::clone(&counters) };
        let driver = run(self.settings, monitors, shard_rxs, stop_rx, self.observers, counters, on_reject);
        Ok((engine, driver))
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

    /// Stops accepting records, drains everything accepted, flushes the
    /// observers and returns the summary.
    pub async fn shutdown(self) -> Summary {
        self.engine.shutdown();
        match self.task.await {
            Ok(summary) => summary,
            Err(e) => {
                tracing::error!(error = %e, "engine task failed");
                self.engine.counters.summary()
            }
        }
    }
}

/// A handle to a running engine.
#[derive(Debug, Clone)]
pub struct Engine {
    sink: Sink,
    stop: Arc<watch::Sender<bool>>,
    counters: Arc<Counters>,
}

impl Engine {
    /// A sink to submit records. Sinks are cheap to clone.
    pub fn sink(&self) -> Sink {
        self.sink.clone()
    }

    /// Stops accepting records. What was accepted is still processed; the
    /// engine's future completes once everything is drained.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// The counters so far.
    pub fn stats(&self) -> Summary {
        self.counters.summary()
    }
}

/// Where records go in. Cloneable; every clone feeds the same engine.
#[derive(Clone)]
pub struct Sink {
    shards: Arc<[mpsc::Sender<Batch>]>,
    next_seq: Arc<AtomicU64>,
    counters: Arc<Counters>,
    on_reject: RejectHandler,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("shards", &self.shards.len()).finish()
    }
}

impl Sink {
    /// The shard that owns `model`.
    pub(crate) fn shard_index(&self, model: &str) -> usize {
        let mut h = DefaultHasher::new();
        model.hash(&mut h);
        (h.finish() % self.shards.len() as u64) as usize
    }

    /// Number of shards.
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard_of(&self, model: &str) -> &mpsc::Sender<Batch> {
        &self.shards[self.shard_index(model)]
    }

    /// Sends a batch of records, all owned by shard `shard`, in order,
    /// blocking while its queue is full. For threads outside the runtime.
    pub(crate) fn blocking_submit_batch(&self, shard: usize, batch: Batch) -> Result<(), Error> {
        let n = batch.len() as u64;
        self.shards[shard].blocking_send(batch).map_err(|_| Error::Closed)?;
        self.counters.submitted.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// The next sequence number, for callers that do not number their input.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Submits a record, waiting while the queue is full (back-pressure).
    /// Returns its `seq`.
    pub async fn submit(&self, record: Record) -> Result<u64, Error> {
        let seq = self.next_seq();
        self.submit_at(seq, record).await.map(|()| seq)
    }

    /// Submits a record with the caller's `seq` (a line index), waiting while
    /// the queue is full.
    pub async fn submit_at(&self, seq: u64, record: Record) -> Result<(), Error> {
        self.shard_of(&record.model).send(vec![(seq, record)]).await.map_err(|_| Error::Closed)?;
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Submits a record from a thread outside the async runtime, blocking
    /// while the queue is full. Panics if called from within an async task
    /// (a tokio rule), so use it from `spawn_blocking` or a plain thread.
    pub fn blocking_submit_at(&self, seq: u64, record: Record) -> Result<(), Error> {
        self.shard_of(&record.model).blocking_send(vec![(seq, record)]).map_err(|_| Error::Closed)?;
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Submits a record if there is room; [`Error::Full`] when the queue is full.
    pub fn try_submit(&self, record: Record) -> Result<u64, Error> {
        let seq = self.next_seq();
        match self.shard_of(&record.model).try_send(vec![(seq, record)]) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                Ok(seq)
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.overloaded.fetch_add(1, Ordering::Relaxed);
                Err(Error::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Counts a record the caller rejected before submitting it (bad JSON,
    /// say), and reports it like the shards' own rejections.
    pub fn reject(&self, seq: u64, error: &RecordError) {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        (self.on_reject)(seq, error);
    }
}

/// What the engine did, returned when it shuts down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Records accepted by the shards.
    pub records: u64,
    /// Records rejected, before the sink or by a shard.
    pub rejected: u64,
    /// `try_submit` calls refused because the queue was full.
    pub overloaded: u64,
    /// Late labels joined to their predictions.
    pub labels_joined: u64,
    /// Findings (warning and drift).
    pub findings: u64,
    /// Recoveries.
    pub recoveries: u64,
    /// Retrain requests.
    pub retrain_requests: u64,
    /// Jobs dispatched to a retraining engine.
    pub jobs_dispatched: u64,
    /// Jobs that succeeded.
    pub jobs_succeeded: u64,
    /// Jobs that failed.
    pub jobs_failed: u64,
    /// Events dropped because an observer's queue was full.
    pub events_dropped: u64,
    /// Errors returned by observers.
    pub observer_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    submitted: AtomicU64,
    records: AtomicU64,
    rejected: AtomicU64,
    overloaded: AtomicU64,
    labels_joined: AtomicU64,
    findings: AtomicU64,
    recoveries: AtomicU64,
    retrain_requests: AtomicU64,
    jobs_dispatched: AtomicU64,
    jobs_succeeded: AtomicU64,
    jobs_failed: AtomicU64,
    events_dropped: AtomicU64,
    observer_errors: AtomicU64,
}

impl Counters {
    fn summary(&self) -> Summary {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Summary {
            records: get(&self.records),
            rejected: get(&self.rejected),
            overloaded: get(&self.overloaded),
            labels_joined: get(&self.labels_joined),
            findings: get(&self.findings),
            recoveries: get(&self.recoveries),
            retrain_requests: get(&self.retrain_requests),
            jobs_dispatched: get(&self.jobs_dispatched),
            jobs_succeeded: get(&self.jobs_succeeded),
            jobs_failed: get(&self.jobs_failed),
            events_dropped: get(&self.events_dropped),
            observer_errors: get(&self.observer_errors),
        }
    }

    fn add_monitor_delta(&self, before: MonitorStats, after: MonitorStats) {
        let add = |a: &AtomicU64, d: u64| {
            if d > 0 {
                a.fetch_add(d, Ordering::Relaxed);
            }
        };
        add(&self.records, after.records - before.records);
        add(&self.rejected, after.rejected - before.rejected);
        add(&self.labels_joined, after.labels_joined - before.labels_joined);
        add(&self.findings, after.findings - before.findings);
        add(&self.recoveries, after.recoveries - before.recoveries);
        add(&self.retrain_requests, after.retrain_requests - before.retrain_requests);
    }

    fn count_job(&self, event: &Event) {
        if let EventKind::JobStatus(update) = &event.kind {
            let counter = match update.status {
                JobStatus::Dispatched => &self.jobs_dispatched,
                JobStatus::Succeeded => &self.jobs_succeeded,
                JobStatus::Failed => &self.jobs_failed,
                JobStatus::Queued | JobStatus::Merged => return,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

enum ObserverMsg {
    Event(Arc<Event>),
    Flush(oneshot::Sender<()>),
}

struct ObserverLink {
    name: String,
    tx: mpsc::Sender<ObserverMsg>,
    warned_full: AtomicBool,
}

/// Publishes observer feedback (job status) onto the bus. Unbounded, because
/// feedback is a handful of events per retraining job and must never block
/// the dispatcher thread that sends it.
struct BusPublisher {
    tx: mpsc::UnboundedSender<Event>,
}

impl EventPublisher for BusPublisher {
    fn publish(&self, event: Event) {
        if self.tx.send(event).is_err() {
            tracing::debug!("event published after the bus stopped; dropped");
        }
    }
}

async fn run(
    settings: EngineConfig,
    monitors: Vec<Monitor>,
    shard_rxs: Vec<mpsc::Receiver<Batch>>,
    stop: watch::Receiver<bool>,
    observers: Vec<Box<dyn Observer>>,
    counters: Arc<Counters>,
    on_reject: RejectHandler,
) -> Summary {
    let (feedback_tx, feedback_rx) = mpsc::unbounded_channel();
    let publisher: Arc<dyn EventPublisher> = Arc::new(BusPublisher { tx: feedback_tx });

    let mut links = Vec::with_capacity(observers.len());
    let mut observer_tasks = Vec::with_capacity(observers.len());
    for mut observer in observers {
        observer.attach(Arc::clone(&publisher));
        let (tx, rx) = mpsc::channel(settings.observer_queue);
        links.push(ObserverLink { name: observer.name().to_owned(), tx, warned_full: AtomicBool::new(false) });
        observer_tasks.push(tokio::spawn(observer_loop(observer, rx, Arc::clone(&counters))));
    }
    drop(publisher);
    let links = Arc::new(links);

    let (bus_tx, bus_rx) = mpsc::channel::<Event>(settings.observer_queue.max(64));
    let (drained_tx, drained_rx) = oneshot::channel();
    let (finish_tx, finish_rx) = oneshot::channel();
    let bus = tokio::spawn(bus_loop(
        bus_rx,
        feedback_rx,
        Arc::clone(&links),
        settings.overflow,
        Arc::clone(&counters),
        drained_tx,
        finish_rx,
    ));

    let shards: Vec<_> = monitors
        .into_iter()
        .zip(shard_rxs)
        .map(|(monitor, rx)| {
            tokio::spawn(shard_loop(
                monitor,
                rx,
                stop.clone(),
                bus_tx.clone(),
                Arc::clone(&counters),
                Arc::clone(&on_reject),
            ))
        })
        .collect();
    drop(bus_tx);
    for shard in shards {
        if let Err(e) = shard.await {
            tracing::error!(error = %e, "shard task failed");
        }
    }

    // Every shard is done: wait until the bus has handed their events on,
    // then let observers finish what those events started.
    let _ = drained_rx.await;
    let mut acks = Vec::with_capacity(links.len());
    for link in links.iter() {
        let (ack_tx, ack_rx) = oneshot::channel();
        if link.tx.send(ObserverMsg::Flush(ack_tx)).await.is_ok() {
            acks.push(ack_rx);
        }
    }
    for ack in acks {
        let _ = ack.await;
    }
    let _ = finish_tx.send(());
    drop(links);
    if let Err(e) = bus.await {
        tracing::error!(error = %e, "bus task failed");
    }
    for task in observer_tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "observer task failed");
        }
    }
    counters.summary()
}

async fn shard_loop(
    mut monitor: Monitor,
    mut rx: mpsc::Receiver<Batch>,
    mut stop: watch::Receiver<bool>,
    bus: mpsc::Sender<Event>,
    counters: Arc<Counters>,
    on_reject: RejectHandler,
) {
    let mut events = Vec::new();
    let mut stopping = *stop.borrow();
    if stopping {
        rx.close();
    }
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            // A shutdown, or every engine handle dropped: refuse new
            // records; what is queued is still processed.
            _ = stop.changed(), if !stopping => {
                stopping = true;
                rx.close();
                continue;
            }
        };
        let Some(batch) = msg else { break };
        let before = monitor.stats();
        for (seq, record) in batch {
            // A bug in a detector must cost one record, not the shard and
            // every model it owns.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| monitor.process(seq, &record, &mut events)));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => on_reject(seq, &e),
                Err(_) => {
                    events.clear();
                    counters.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(seq, model = %record.model, "a detector panicked on this record; record skipped");
                    on_reject(seq, &RecordError::record("internal error: a detector panicked on this record"));
                }
            }
            for event in events.drain(..) {
                if bus.send(event).await.is_err() {
                    tracing::error!("event bus closed before the shards; event lost");
                }
            }
        }
        counters.add_monitor_delta(before, monitor.stats());
    }
}

async fn bus_loop(
    mut main: mpsc::Receiver<Event>,
    mut feedback: mpsc::UnboundedReceiver<Event>,
    links: Arc<Vec<ObserverLink>>,
    overflow: Overflow,
    counters: Arc<Counters>,
    drained: oneshot::Sender<()>,
    mut finish: oneshot::Receiver<()>,
) {
    let mut drained = Some(drained);
    let mut main_open = true;
    loop {
        tokio::select! {
            event = main.recv(), if main_open => match event {
                Some(event) => deliver(event, &links, overflow, &counters).await,
                None => {
                    main_open = false;
                    if let Some(d) = drained.take() {
                        let _ = d.send(());
                    }
                }
            },
            Some(event) = feedback.recv() => deliver(event, &links, overflow, &counters).await,
            _ = &mut finish, if !main_open => break,
        }
    }
    while let Ok(event) = feedback.try_recv() {
        deliver(event, &links, overflow, &counters).await;
    }
}

async fn deliver(event: Event, links: &[ObserverLink], overflow: Overflow, counters: &Counters) {
    counters.count_job(&event);
    let event = Arc::new(event);
    for link in links {
        let msg = ObserverMsg::Event(Arc::clone(&event));
        match overflow {
            Overflow::Block => {
                if link.tx.send(msg).await.is_err() {
                    tracing::error!(observer = %link.name, "observer task ended early; event lost");
                }
            }
            Overflow::Drop => match link.tx.try_send(msg) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                    if !link.warned_full.swap(true, Ordering::Relaxed) {
                        tracing::warn!(observer = %link.name, "observer queue full; dropping events for it");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    tracing::error!(observer = %link.name, "observer task ended early; event lost");
                }
            },
        }
    }
}

async fn observer_loop(mut observer: Box<dyn Observer>, mut rx: mpsc::Receiver<ObserverMsg>, counters: Arc<Counters>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            ObserverMsg::Event(event) => {
                if let Err(e) = observer.on_event(&event).await {
                    counters.observer_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(observer = observer.name(), error = %e, "observer failed to handle an event");
                }
            }
            ObserverMsg::Flush(ack) => {
                if let Err(e) = observer.flush().await {
                    counters.observer_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(observer = observer.name(), error = %e, "observer failed to flush");
                }
                let _ = ack.send(());
            }
        }
    }
}
