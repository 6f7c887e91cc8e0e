//! One record through a model version: each signal to its detectors, the
//! derived quality signals, the p-value family decided together, then the
//! retrain policy.

use chrono::{DateTime, Utc};
use monitor_core::correction::{Correction, false_discovery_control};
use monitor_core::detector::{AlarmMode, Assessment, ClosedWindows, DriftStatus, Sample};
use monitor_core::event::{Event, EventKind, RetrainRequest};
use monitor_core::record::{ModelKey, Record};
use monitor_core::signal::{NO_DATA, Signal, SignalRef, SignalValue, missing_quality_name};

use super::state::{corrected, expected_bytes, series_of};
use super::transition::{Damping, transition};
use super::{Accepts, Instance, ModelState, MonitorPlan, MonitorStats, Series, WindowFeed, WindowPoint, series_bytes};
use crate::detectors::fmt_num;

/// What one record's processing needs besides the model state.
pub(super) struct Ctx<'a> {
    plan: &'a MonitorPlan,
    model: &'a str,
    version: &'a str,
    seq: u64,
    ts: DateTime<Utc>,
    events: &'a mut Vec<Event>,
    stats: &'a mut MonitorStats,
    /// p-value verdicts of corrected monitors, decided once the whole record
    /// is seen.
    pending: Vec<Pending>,
    /// Whether this record opened a drift finding: new evidence for the
    /// retrain policy.
    evidence: bool,
    /// The event-time windows the version's detectors closed: for
    /// `quality.no_data`.
    windows: WindowTally,
    /// The memory bound of every model version's state, against
    /// `limits.max_state_mib`.
    bytes: &'a mut usize,
    /// Bytes that new signals of this record could not get: the caller
    /// evicts other versions to free them for the next record.
    pub(super) wanted: usize,
    /// The realised value of the window whose estimate is being observed,
    /// for the findings it causes.
    realised: Option<f64>,
    /// Where each verdict goes besides the state machine, if anywhere.
    feed: Option<&'a mut (dyn WindowFeed + 'static)>,
}

/// A p-value verdict waiting for the rest of its family: the other tests
/// of the model version decided in the same record.
pub(super) struct Pending {
    signal: Signal,
    spec: usize,
    assessment: Assessment,
    realised: Option<f64>,
}

/// What the detectors' event-time windows did during one step.
#[derive(Debug, Default, Clone, Copy)]
struct WindowTally {
    /// Whether any window closed.
    closed: bool,
    /// The most empty windows one detector closed.
    empty: u64,
}

impl<'a> Ctx<'a> {
    /// The context of the record `seq` at `ts` of `(model, version)`.
    pub(super) fn new(
        plan: &'a MonitorPlan,
        (model, version): (&'a str, &'a str),
        seq: u64,
        ts: DateTime<Utc>,
        events: &'a mut Vec<Event>,
        stats: &'a mut MonitorStats,
        bytes: &'a mut usize,
    ) -> Self {
        Self {
            plan,
            model,
            version,
            seq,
            ts,
            events,
            stats,
            pending: Vec::new(),
            evidence: false,
            windows: WindowTally::default(),
            bytes,
            wanted: 0,
            realised: None,
            feed: None,
        }
    }

    /// Hands every verdict applied to `feed` as well.
    pub(super) fn with_feed(mut self, feed: Option<&'a mut (dyn WindowFeed + 'static)>) -> Self {
        self.feed = feed;
        self
    }

    fn key(&self) -> ModelKey {
        ModelKey::new(self.model, self.version)
    }

    /// Whether any monitor of this model watches `sig`.
    fn watched(&self, sig: SignalRef<'_>) -> bool {
        self.plan.monitors.iter().any(|m| m.applies_to(self.model) && m.signal.matches(sig))
    }

    fn series<'s>(
        &mut self,
        state: &'s mut ModelState,
        sig: SignalRef<'_>,
        value: SignalValue<'_>,
    ) -> Option<&'s mut Series> {
        let slot_exists = match sig {
            SignalRef::LatencyMs => state.latency.is_some(),
            SignalRef::Prediction => state.prediction.is_some(),
            SignalRef::Error => state.error.is_some(),
            SignalRef::Feature(n) => state.features.contains_key(n),
            SignalRef::Metric(n) => state.metrics.contains_key(n),
            SignalRef::Quality(n) => state.quality.contains_key(n),
            SignalRef::Perf(_) | SignalRef::Estimated(_) | SignalRef::Multivariate(_) => {
                state.windowed.contains_key(&sig.to_owned())
            }
        };
        if !slot_exists {
            if state.signals >= self.plan.limits.max_signals_per_model {
                self.stats.signals_dropped += 1;
                // Once per version, and at most at each power of two of the
                // total: a flood of names cannot flood the log.
                let first = !std::mem::replace(&mut state.warned_signals, true);
                if first && self.stats.signals_dropped.is_power_of_two() {
                    tracing::warn!(
                        model = %self.model.escape_debug(),
                        version = %self.version.escape_debug(),
                        signal = %sig.to_string().escape_debug(),
                        limit = self.plan.limits.max_signals_per_model,
                        dropped = self.stats.signals_dropped,
                        "model version has more signals than limits.max_signals_per_model; new signals are ignored and counted"
                    );
                }
                return None;
            }
            let categorical = matches!(value, SignalValue::Categorical(_));
            let name = sig.to_string();
            let specs: Vec<usize> = self
                .plan
                .monitors
                .iter()
                .enumerate()
                .filter(|(_, m)| m.applies_to(self.model) && m.signal.matches(sig))
                .filter(|(_, m)| m.detector.accepts(categorical))
                .map(|(i, _)| i)
                .collect();
            let cost = series_bytes(
                &name,
                specs.iter().map(|&i| self.plan.monitors[i].detector.state_bytes_for(categorical)).sum(),
            );
            if *self.bytes + cost > self.plan.limits.max_state_bytes() {
                self.stats.signals_dropped += 1;
                self.wanted += cost;
                let first = !std::mem::replace(&mut state.warned_signals, true);
                if first && self.stats.signals_dropped.is_power_of_two() {
                    tracing::warn!(
                        model = %self.model.escape_debug(),
                        version = %self.version.escape_debug(),
                        signal = %name.escape_debug(),
                        dropped = self.stats.signals_dropped,
                        "the state budget (limits.max_state_mib) is spent; new signals are ignored and counted"
                    );
                }
                return None;
            }
            *self.bytes += cost;
            state.bytes += cost;
            let mut instances = Vec::with_capacity(specs.len());
            for (spec, m) in self.plan.monitors.iter().enumerate() {
                if !(m.applies_to(self.model) && m.signal.matches(sig)) {
                    continue;
                }
                if !m.detector.accepts(categorical) {
                    // It could never fire here; it must not widen the family either.
                    self.stats.monitors_skipped += 1;
                    continue;
                }
                let detector = m.detector.build(&name);
                instances.push(Instance {
                    mode: detector.alarm_mode(),
                    detector,
                    spec,
                    status: DriftStatus::Stable,
                    open: None,
                    last: None,
                    streak: 0,
                });
            }
            state.signals += 1;
            state.instances += instances.len();
            let series = Series { instances, categorical };
            match sig {
                SignalRef::LatencyMs => state.latency = Some(series),
                SignalRef::Prediction => state.prediction = Some(series),
                SignalRef::Error => state.error = Some(series),
                SignalRef::Feature(n) => {
                    state.features.insert(n.to_owned(), series);
                    self.expect(state, n);
                }
                SignalRef::Metric(n) => {
                    state.metrics.insert(n.to_owned(), series);
                }
                SignalRef::Quality(n) => {
                    state.quality.insert(n.to_owned(), series);
                }
                SignalRef::Perf(_) | SignalRef::Estimated(_) | SignalRef::Multivariate(_) => {
                    state.windowed.insert(sig.to_owned(), series);
                }
            }
        }
        series_of(state, sig)
    }

    /// Starts watching the missing values of `feature` if a monitor of
    /// this model watches `quality.missing.<feature>`.
    fn expect(&mut self, state: &mut ModelState, feature: &str) {
        if state.expected.len() >= self.plan.limits.max_signals_per_model
            || state.expected.iter().any(|(f, _)| f == feature)
        {
            return;
        }
        let name = missing_quality_name(feature);
        if !self.watched(SignalRef::Quality(&name)) {
            return;
        }
        let cost = expected_bytes(feature);
        if *self.bytes + cost > self.plan.limits.max_state_bytes() {
            self.stats.signals_dropped += 1;
            self.wanted += cost;
            return;
        }
        *self.bytes += cost;
        state.bytes += cost;
        state.expected.push((feature.to_owned(), name));
    }

    pub(super) fn observe(&mut self, state: &mut ModelState, sig: SignalRef<'_>, value: SignalValue<'_>) {
        let ts = self.ts;
        let Some(series) = self.series(state, sig, value) else {
            return;
        };
        let mut failing_delta: isize = 0;
        let tallied = sig != SignalRef::Quality(NO_DATA);
        for inst in &mut series.instances {
            let verdict = inst.detector.observe(Sample { value, ts });
            let closed = inst.detector.take_closed_windows();
            self.tally(closed, tallied);
            if let Some(a) = verdict {
                failing_delta += self.verdict(inst, sig, a);
            }
        }
        state.failing = state.failing.saturating_add_signed(failing_delta);
    }

    /// Observes an estimate (`estimated.<metric>`) of a window whose
    /// realised value is `realised`, if known: the findings and recoveries
    /// it causes carry it.
    pub(super) fn observe_estimate(
        &mut self,
        state: &mut ModelState,
        sig: SignalRef<'_>,
        value: f64,
        realised: Option<f64>,
    ) {
        self.realised = realised;
        self.observe(state, sig, SignalValue::Numeric(value));
        self.realised = None;
    }

    /// Counts what a detector's event-time windows did.
    fn tally(&mut self, closed: ClosedWindows, for_no_data: bool) {
        self.stats.late_samples += closed.late;
        self.stats.empty_windows += closed.empty;
        if for_no_data && !closed.is_none() {
            self.windows.closed = true;
            self.windows.empty = self.windows.empty.max(closed.empty);
        }
    }

    /// Takes a detector's verdict: a corrected p-value waits for its
    /// family; anything else is applied now. Returns the change in the
    /// number of failing instances.
    fn verdict(&mut self, inst: &mut Instance, sig: SignalRef<'_>, a: Assessment) -> isize {
        if a.p_value.is_some() && corrected(self.plan, inst.spec) && inst.detector.in_p_value_family() {
            self.pending.push(Pending {
                signal: sig.to_owned(),
                spec: inst.spec,
                assessment: a,
                realised: self.realised,
            });
            return 0;
        }
        self.apply(inst, sig, &a, self.realised)
    }

    /// Feeds `quality.missing.<name>` of every feature the version is
    /// watched for: 1.0 when `record` lacks the feature or gives it as
    /// null, else 0.0. A feature is watched from the first record that names
    /// it, with a value or null.
    pub(super) fn observe_missing(&mut self, state: &mut ModelState, record: &Record) {
        for name in &record.null_features {
            self.expect(state, name);
        }
        if state.expected.is_empty() {
            return;
        }
        let expected = std::mem::take(&mut state.expected);
        for (feature, quality) in &expected {
            let missing = if record.features.contains_key(feature) { 0.0 } else { 1.0 };
            self.observe(state, SignalRef::Quality(quality), SignalValue::Numeric(missing));
        }
        state.expected = expected;
    }

    /// Event time reached `now` with no record of this version: each
    /// detector with event-time windows closes those that ended one window
    /// before `now` (a window of grace for records of other models that are
    /// a little ahead), giving verdicts on the ones that held samples.
    pub(super) fn advance(&mut self, state: &mut ModelState, now: DateTime<Utc>) {
        let mut failing_delta: isize = 0;
        for (signal, series) in state.sorted_series_mut() {
            let tallied = signal != Signal::Quality(NO_DATA.to_owned());
            for inst in &mut series.instances {
                let Some(span) = self.plan.monitors[inst.spec].detector.time_window() else { continue };
                let span = chrono::Duration::from_std(span).unwrap_or(chrono::Duration::MAX);
                let Some(cutoff) = now.checked_sub_signed(span) else { continue };
                let verdict = inst.detector.advance(cutoff);
                let closed = inst.detector.take_closed_windows();
                self.tally(closed, tallied);
                if let Some(a) = verdict {
                    failing_delta += self.verdict(inst, signal.as_ref(), a);
                }
            }
        }
        state.failing = state.failing.saturating_add_signed(failing_delta);
    }

    /// Feeds `quality.no_data` if event-time windows closed during this
    /// step: the most empty windows one detector of the version closed,
    /// 0 when every window that closed held samples.
    pub(super) fn observe_no_data(&mut self, state: &mut ModelState) {
        let tally = std::mem::take(&mut self.windows);
        if tally.closed && self.watched(SignalRef::Quality(NO_DATA)) {
            self.observe(state, SignalRef::Quality(NO_DATA), SignalValue::Numeric(tally.empty as f64));
        }
    }

    /// Moves an instance to the verdict `a`, emitting what that causes
    /// (with `realised`, the realised value of an estimate's window);
    /// returns the change in the number of failing instances.
    fn apply(&mut self, inst: &mut Instance, sig: SignalRef<'_>, a: &Assessment, realised: Option<f64>) -> isize {
        let was_failing = inst.status == DriftStatus::Drift;
        inst.last = Some(*a);
        let spec = &self.plan.monitors[inst.spec];
        let damping = Damping { fire_after: spec.fire_after, resolve_after: spec.resolve_after };
        let mut caused = transition(inst, sig, a, damping);
        if let (Some(kind), Some(r), SignalRef::Estimated(metric)) = (caused.as_mut(), realised, sig) {
            with_realised(kind, inst, metric, r);
        }
        if let Some(feed) = self.feed.as_deref_mut() {
            feed.window(&WindowPoint {
                model: self.model,
                version: self.version,
                signal: sig,
                monitor: inst.spec,
                detector: inst.detector.as_ref(),
                seq: self.seq,
                ts: self.ts,
                assessment: a,
                event: caused.as_ref(),
            });
        }
        if let Some(kind) = caused {
            match &kind {
                EventKind::Finding(f) => {
                    self.stats.findings += 1;
                    self.evidence |= f.severity == monitor_core::event::Severity::Drift;
                }
                _ => self.stats.recoveries += 1,
            }
            self.events.push(Event::new(self.key(), self.ts, self.seq, kind));
        }
        isize::from(inst.status == DriftStatus::Drift) - isize::from(was_failing)
    }

    /// Decides the pending p-value verdicts as one family: every corrected
    /// p-value test of the model version, across monitors (tests not
    /// evaluated in this record count as p = 1). Each is held to its own
    /// monitor's alpha and correction: Bonferroni rejects p ≤ alpha / m,
    /// Benjamini–Hochberg rejects where the adjusted p-value is at most
    /// alpha. A rejected test is drift only if its detector's own verdict
    /// was drift, which also requires its effect size (`min_effect`).
    pub(super) fn resolve(&mut self, state: &mut ModelState) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let m = state.p_value_tests(self.plan).max(pending.len());
        let mut ps: Vec<f64> = pending.iter().map(|p| p.assessment.p_value.unwrap_or(1.0)).collect();
        ps.resize(m, 1.0);
        let adjusted = false_discovery_control(&ps);
        let family: Vec<(Correction, f64)> =
            pending.iter().map(|p| self.plan.monitors[p.spec].detector.p_value_family().unwrap_or_default()).collect();
        for (i, p) in pending.iter().enumerate() {
            let (correction, alpha) = family[i];
            let (reject, threshold) = match correction {
                Correction::Fdr => {
                    let k = adjusted.iter().filter(|&&q| q <= alpha).count().max(1);
                    (adjusted[i] <= alpha, k as f64 * alpha / m as f64)
                }
                Correction::Bonferroni => (ps[i] <= alpha / m as f64, alpha / m as f64),
                Correction::None => (ps[i] <= alpha, alpha),
            };
            let mut a = p.assessment;
            a.status = if reject && a.status == DriftStatus::Drift { DriftStatus::Drift } else { DriftStatus::Stable };
            a.threshold = threshold;
            let sig = p.signal.as_ref();
            let Some(series) = series_of(state, sig) else { continue };
            let Some(inst) = series.instances.iter_mut().find(|i| i.spec == p.spec) else { continue };
            let delta = self.apply(inst, sig, &a, p.realised);
            state.failing = state.failing.saturating_add_signed(delta);
        }
    }

    /// Asks the retrain policy after a record; emits a request when it fires.
    pub(super) fn decide(&mut self, state: &mut ModelState) {
        state.policy.new_evidence |= self.evidence;
        let policy = self.plan.policy_for(self.model);
        if !state.policy.should_request(policy, state.failing, state.instances, self.ts) {
            return;
        }
        let mut reasons = Vec::new();
        let mut cleared = 0;
        let all = [&mut state.latency, &mut state.prediction, &mut state.error]
            .into_iter()
            .filter_map(Option::as_mut)
            .chain(state.features.values_mut())
            .chain(state.metrics.values_mut())
            .chain(state.quality.values_mut())
            .chain(state.windowed.values_mut());
        for series in all {
            for inst in &mut series.instances {
                if inst.status != DriftStatus::Drift {
                    continue;
                }
                if let Some(f) = &inst.open {
                    reasons.push(f.clone());
                }
                // A change detector's alarm is answered by this request.
                if inst.mode == AlarmMode::Change {
                    inst.status = DriftStatus::Stable;
                    inst.open = None;
                    cleared += 1;
                }
            }
        }
        reasons.sort_by(|a, b| a.signal.cmp(&b.signal).then_with(|| a.detector.cmp(&b.detector)));
        state.failing -= cleared;
        state.policy.last_request = Some(self.ts);
        state.policy.new_evidence = false;
        self.stats.retrain_requests += 1;
        let request = RetrainRequest { job_id: RetrainRequest::job_id_for(&self.key(), self.ts, self.seq), reasons };
        self.events.push(Event::new(self.key(), self.ts, self.seq, EventKind::RetrainRequested(request)));
    }
}

/// Puts the realised value `r` of the estimated `metric` beside the
/// estimate, in the event and in the finding the instance keeps open.
fn with_realised(kind: &mut EventKind, inst: &mut Instance, metric: &str, r: f64) {
    let (EventKind::Finding(f) | EventKind::Recovered(f)) = kind else { return };
    f.realised = Some(r);
    f.message.push_str(&format!("; realised perf.{metric} {}", fmt_num(r)));
    if let (EventKind::Finding(f), Some(open)) = (&*kind, &mut inst.open) {
        open.clone_from(f);
    }
}
