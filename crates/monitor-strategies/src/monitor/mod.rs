//! The synchronous monitor: records in, events out, for every model version.

mod clock;
mod evaluate;
mod feed;
mod plan;
mod query;
mod state;
mod stats;
mod transition;

use std::sync::Arc;

use chrono::Utc;
use monitor_core::event::Event;
use monitor_core::labels::LabelJoiner;
use monitor_core::record::Record;
use monitor_core::signal::{Signal, SignalRef, SignalValue};
use monitor_core::{Error, RecordError};

use crate::performance::{Emitted, VersionWindows};

pub use self::clock::EventClock;
use self::evaluate::Ctx;
pub use self::feed::{WindowFeed, WindowPoint};
pub(crate) use self::plan::Accepts;
pub use self::plan::{EffectiveAlpha, Limits, MAX_DAMPING, MonitorPlan, MonitorSpec, limit_bounds};
pub use self::query::{DetectorState, VersionDetail, VersionOverview};
pub(crate) use self::state::{
    HashMap, Instance, ModelState, Series, VERSION_BYTES, Versions, expected_bytes, series_bytes,
};
pub use self::stats::MonitorStats;

/// The synchronous monitoring loop for every model version: records in,
/// events out. No threads, no async; the runtime wraps it in shards.
///
/// ```
/// use monitor_core::event::EventKind;
/// use monitor_core::record::Record;
/// use monitor_strategies::detectors::ThresholdConfig;
/// use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, PolicyConfig};
///
/// let accuracy = ThresholdConfig { window: 5.into(), min: Some(0.9), ..Default::default() };
/// let plan = MonitorPlan {
///     monitors: vec![MonitorSpec::new("metrics.accuracy", accuracy)?],
///     policy: PolicyConfig { min_samples: 5, ..Default::default() },
///     ..Default::default()
/// };
/// let mut monitor = Monitor::new(plan)?;
/// let mut events = Vec::new();
/// for (seq, acc) in [0.95, 0.96, 0.80, 0.82, 0.79].into_iter().enumerate() {
///     let line = format!(r#"{{"model": "fraud", "metrics": {{"accuracy": {acc}}}}}"#);
///     let record = Record::parse(&line, chrono::Utc::now())?;
///     monitor.process(seq as u64, &record, &mut events)?;
/// }
/// assert!(matches!(events[0].kind, EventKind::Finding(_)));
/// assert!(matches!(events[1].kind, EventKind::RetrainRequested(_)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Monitor {
    pub(crate) plan: Arc<MonitorPlan>,
    pub(crate) versions: Versions,
    pub(crate) labels: LabelJoiner,
    pub(crate) stats: MonitorStats,
    /// Records accepted so far, as a clock for least-recently-seen eviction.
    pub(crate) tick: u64,
    /// Event time: the newest `ts` accepted, which closes the event-time
    /// windows of quiet model versions.
    pub(crate) clock: EventClock,
    /// Where every window verdict goes, when someone wants them.
    pub(crate) feed: Option<Box<dyn WindowFeed>>,
}

impl Monitor {
    /// A monitor for `plan`, which is validated.
    pub fn new(plan: impl Into<Arc<MonitorPlan>>) -> Result<Self, Error> {
        let plan = plan.into();
        plan.validate()?;
        plan.load_references()?;
        let labels = LabelJoiner::new(plan.limits.pending_labels, plan.limits.label_max_age.as_chrono());
        let clock = EventClock::new(&plan);
        Ok(Self {
            plan,
            versions: Versions::default(),
            labels,
            stats: MonitorStats::default(),
            tick: 0,
            clock,
            feed: None,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &MonitorPlan {
        &self.plan
    }

    /// Hands every window verdict from now on to `feed` (replacing any
    /// earlier one): the statistic of each evaluation, and the findings and
    /// recoveries it causes.
    pub fn set_window_feed(&mut self, feed: Box<dyn WindowFeed>) {
        self.feed = Some(feed);
    }

    /// The counters so far.
    pub fn stats(&self) -> MonitorStats {
        MonitorStats { labels_expired: self.labels.expired(), ..self.stats }
    }

    /// Predictions waiting for their labels.
    pub fn pending_labels(&self) -> usize {
        self.labels.len()
    }

    /// The per-window state of a model version (`[[performance]]`,
    /// `[[reconstruction]]`): its latest values, estimates beside realised
    /// ones, and its fits.
    pub fn windows(&self, model: &str, version: &str) -> Option<&VersionWindows> {
        self.versions.models.get(model).and_then(|vs| vs.get(version)).map(|s| &s.windows)
    }

    /// Processes one record; `seq` is its 0-based input index. Events are
    /// appended to `events`. A rejected record changes nothing but the
    /// `rejected` counter.
    pub fn process(&mut self, seq: u64, record: &Record, events: &mut Vec<Event>) -> Result<(), RecordError> {
        let result = self.process_inner(seq, record, events);
        match &result {
            Ok(()) => self.stats.records += 1,
            Err(_) => self.stats.rejected += 1,
        }
        result
    }

    fn process_inner(&mut self, seq: u64, record: &Record, events: &mut Vec<Event>) -> Result<(), RecordError> {
        record.validate()?;
        let plan = Arc::clone(&self.plan);
        let ts = record.ts;
        let skew = plan.limits.max_future_skew;
        if Utc::now().checked_add_signed(skew.as_chrono()).is_some_and(|latest| ts > latest) {
            self.stats.ts_too_far_ahead += 1;
            return Err(RecordError::field(
                "ts",
                ts.to_rfc3339(),
                format!("is more than {skew} ahead of the clock (limits.max_future_skew)"),
            ));
        }
        self.tick += 1;
        if record.is_late_label() {
            let joined = self.labels.join(record)?;
            let (state, bytes) = self.versions.state_of(
                &mut self.stats,
                self.tick,
                &plan.limits,
                &joined.key.model,
                &joined.key.version,
            );
            state.policy.samples += 1;
            let mut windowed = Vec::new();
            state.windows.late_label(&plan.performance, record, &mut windowed);
            let mut ctx =
                Ctx::new(&plan, (&joined.key.model, &joined.key.version), seq, ts, events, &mut self.stats, bytes)
                    .with_feed(self.feed.as_deref_mut());
            let sig = SignalRef::Error;
            ctx.observe(state, sig, SignalValue::Numeric(joined.error));
            for e in &windowed {
                observe_windowed(&mut ctx, state, e);
            }
            ctx.observe_no_data(state);
            ctx.resolve(state);
            ctx.decide(state);
            self.stats.labels_joined += 1;
            self.sweep_if_due(seq, ts, events);
            return Ok(());
        }
        self.labels.remember(record);
        let (state, bytes) =
            self.versions.state_of(&mut self.stats, self.tick, &plan.limits, &record.model, &record.version);
        state.policy.samples += 1;
        let mut windowed = Vec::new();
        let mut wanted_windows = 0;
        if !(plan.performance.is_empty() && plan.reconstruction.is_empty()) {
            if !state.windows.started() {
                let cost = VersionWindows::cost(&plan.performance, &plan.reconstruction, &record.model);
                if *bytes + cost <= plan.limits.max_state_bytes() {
                    state.windows.start(&plan.performance, &plan.reconstruction, &record.model);
                    *bytes += cost;
                    state.bytes += cost;
                } else {
                    // Room is made below; the next record of the version starts it.
                    wanted_windows = cost;
                    self.stats.signals_dropped += 1;
                }
            }
            state.windows.observe(&plan.performance, &plan.reconstruction, record, &mut windowed);
        }
        // The key is only built when an event needs it: most records make none.
        let mut ctx = Ctx::new(&plan, (&record.model, &record.version), seq, ts, events, &mut self.stats, bytes)
            .with_feed(self.feed.as_deref_mut());
        record.for_each_signal(|sig, value| ctx.observe(state, sig, value));
        for e in &windowed {
            observe_windowed(&mut ctx, state, e);
        }
        ctx.observe_missing(state, record);
        ctx.observe_no_data(state);
        ctx.resolve(state);
        ctx.decide(state);
        let wanted = ctx.wanted + wanted_windows;
        if wanted > 0 {
            // Make room for this version's new signals by forgetting the
            // least recently seen other versions; they count from the next record.
            self.versions.free(wanted, &mut self.stats, &plan.limits, &record.model, &record.version);
        }
        self.sweep_if_due(seq, ts, events);
        Ok(())
    }
}

/// Gives a per-window value to its detectors; an estimate goes with the
/// realised value of its window, when known.
fn observe_windowed(ctx: &mut Ctx<'_>, state: &mut ModelState, e: &Emitted) {
    match &e.signal {
        Signal::Estimated(metric) => {
            let realised = state.windows.realised(metric, e.window);
            ctx.observe_estimate(state, e.signal.as_ref(), e.value, realised);
        }
        _ => ctx.observe(state, e.signal.as_ref(), SignalValue::Numeric(e.value)),
    }
}

#[cfg(test)]
mod tests;
