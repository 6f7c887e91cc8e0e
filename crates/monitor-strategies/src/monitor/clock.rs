//! The monitor's event-time clock: the newest `ts` it has accepted, from
//! any model. When the plan has event-time windows (`window = "1h"`), the
//! clock closes the windows of model versions that went quiet, once per
//! shortest window of event time, so that a model that stopped sending is
//! noticed (`quality.no_data`) instead of waiting for its next record.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use monitor_core::event::Event;
use serde::{Deserialize, Serialize};

use super::evaluate::Ctx;
use super::{Monitor, MonitorPlan, Versions};

/// Event time as the monitor has seen it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventClock {
    /// The newest event time accepted.
    pub now: Option<DateTime<Utc>>,
    /// When the windows of quiet versions are next closed.
    pub next_sweep: Option<DateTime<Utc>>,
    /// The index of the last record accepted: the `seq` of events that a
    /// [`Monitor::tick`] causes.
    pub last_seq: u64,
    /// The shortest event-time window of the plan; `None` when it has none
    /// (then the clock does nothing). From the plan, not saved.
    #[serde(skip)]
    period: Option<chrono::Duration>,
}

impl EventClock {
    /// The clock of a monitor of `plan`.
    pub(crate) fn new(plan: &MonitorPlan) -> Self {
        let period = plan
            .monitors
            .iter()
            .filter_map(|m| m.detector.time_window())
            .min()
            .map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
        Self { period, ..Self::default() }
    }

    /// The saved part of `other` in this clock (its period stays).
    pub(crate) fn restore(&mut self, other: Self) {
        *self = Self { period: self.period, ..other };
    }
}

impl Monitor {
    /// Moves the clock to a record's `ts`; closes quiet versions' windows
    /// when a sweep is due.
    pub(super) fn sweep_if_due(&mut self, seq: u64, ts: DateTime<Utc>, events: &mut Vec<Event>) {
        let Some(period) = self.clock.period else { return };
        self.clock.last_seq = seq;
        let now = self.clock.now.map_or(ts, |n| n.max(ts));
        self.clock.now = Some(now);
        match self.clock.next_sweep {
            Some(due) if now < due => return,
            Some(_) => self.sweep(seq, now, events),
            None => {}
        }
        self.clock.next_sweep = now.checked_add_signed(period);
    }

    /// Event time has reached `now` without a record: a service calls it on
    /// a timer with the wall clock, so that the event-time windows of every
    /// model version that stopped sending close (one window after their
    /// end) and show up on `quality.no_data`. A replay needs none: each
    /// record moves the clock. Events carry the `seq` of the last record.
    pub fn tick(&mut self, now: DateTime<Utc>, events: &mut Vec<Event>) {
        let Some(period) = self.clock.period else { return };
        let now = self.clock.now.map_or(now, |n| n.max(now));
        self.clock.now = Some(now);
        self.sweep(self.clock.last_seq, now, events);
        self.clock.next_sweep = now.checked_add_signed(period);
    }

    /// Closes the event-time windows of every model version that ended a
    /// window before `now`, in a fixed order of model and version.
    fn sweep(&mut self, seq: u64, now: DateTime<Utc>, events: &mut Vec<Event>) {
        let plan = Arc::clone(&self.plan);
        let Versions { models, bytes, .. } = &mut self.versions;
        let mut keys: Vec<(String, String)> =
            models.iter().flat_map(|(m, vs)| vs.keys().map(move |v| (m.clone(), v.clone()))).collect();
        keys.sort_unstable();
        for (model, version) in &keys {
            let Some(state) = models.get_mut(model).and_then(|vs| vs.get_mut(version)) else { continue };
            let mut ctx = Ctx::new(&plan, (model, version), seq, now, events, &mut self.stats, bytes)
                .with_feed(self.feed.as_deref_mut());
            ctx.advance(state, now);
            ctx.observe_no_data(state);
            ctx.resolve(state);
            ctx.decide(state);
        }
    }
}
