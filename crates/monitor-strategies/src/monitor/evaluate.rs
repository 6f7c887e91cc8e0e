//! One record through a model version: each signal to its detectors, the
//! p-value families decided together, then the retrain policy.

use chrono::{DateTime, Utc};
use monitor_core::correction::Correction;
use monitor_core::detector::{AlarmMode, Assessment, DriftStatus, Sample};
use monitor_core::event::{Event, EventKind, RetrainRequest};
use monitor_core::record::ModelKey;
use monitor_core::signal::{Signal, SignalRef, SignalValue};
use uuid::Uuid;

use super::state::series_of;
use super::transition::transition;
use super::{Instance, ModelState, MonitorPlan, MonitorStats, Series, series_bytes};

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
    /// The memory bound of every model version's state, against
    /// `limits.max_state_mib`.
    bytes: &'a mut usize,
    /// Bytes that new signals of this record could not get: the caller
    /// evicts other versions to free them for the next record.
    pub(super) wanted: usize,
}

/// A p-value verdict waiting for the rest of its family: the other signals
/// that the same corrected monitor tests in this record.
pub(super) struct Pending {
    signal: Signal,
    spec: usize,
    assessment: Assessment,
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
        Self { plan, model, version, seq, ts, events, stats, pending: Vec::new(), evidence: false, bytes, wanted: 0 }
    }

    fn key(&self) -> ModelKey {
        ModelKey::new(self.model, self.version)
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
        };
        if !slot_exists {
            if state.signals >= self.plan.limits.max_signals_per_model {
                self.stats.signals_dropped += 1;
                if !std::mem::replace(&mut state.warned_signals, true) {
                    tracing::warn!(
                        model = %self.model.escape_debug(),
                        version = %self.version.escape_debug(),
                        signal = %sig.to_string().escape_debug(),
                        limit = self.plan.limits.max_signals_per_model,
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
                .filter(|(_, m)| !categorical || m.detector.accepts_categories())
                .map(|(i, _)| i)
                .collect();
            let cost = series_bytes(&name, specs.iter().map(|&i| self.plan.monitors[i].detector.state_bytes()).sum());
            if *self.bytes + cost > self.plan.limits.max_state_bytes() {
                self.stats.signals_dropped += 1;
                self.wanted += cost;
                if !std::mem::replace(&mut state.warned_signals, true) {
                    tracing::warn!(
                        model = %self.model.escape_debug(),
                        version = %self.version.escape_debug(),
                        signal = %name.escape_debug(),
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
                if categorical && !m.detector.accepts_categories() {
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
                }
                SignalRef::Metric(n) => {
                    state.metrics.insert(n.to_owned(), series);
                }
            }
        }
        match sig {
            SignalRef::LatencyMs => state.latency.as_mut(),
            SignalRef::Prediction => state.prediction.as_mut(),
            SignalRef::Error => state.error.as_mut(),
            SignalRef::Feature(n) => state.features.get_mut(n),
            SignalRef::Metric(n) => state.metrics.get_mut(n),
        }
    }

    pub(super) fn observe(&mut self, state: &mut ModelState, sig: SignalRef<'_>, value: SignalValue<'_>) {
        let ts = self.ts;
        let mut failing_delta: isize = 0;
        let Some(series) = self.series(state, sig, value) else {
            return;
        };
        for inst in &mut series.instances {
            let Some(a) = inst.detector.observe(Sample { value, ts }) else {
                continue;
            };
            let corrected =
                self.plan.monitors[inst.spec].detector.p_value_family().is_some_and(|(c, _)| c != Correction::None);
            if corrected && a.p_value.is_some() {
                self.pending.push(Pending { signal: sig.to_owned(), spec: inst.spec, assessment: a });
                continue;
            }
            failing_delta += self.apply(inst, sig, &a);
        }
        state.failing = state.failing.saturating_add_signed(failing_delta);
    }

    /// Moves an instance to the verdict `a`, emitting what that causes;
    /// returns the change in the number of failing instances.
    fn apply(&mut self, inst: &mut Instance, sig: SignalRef<'_>, a: &Assessment) -> isize {
        let was_failing = inst.status == DriftStatus::Drift;
        inst.last = Some(*a);
        if let Some(kind) = transition(inst, sig, a) {
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

    /// Decides the pending p-value verdicts family by family: Bonferroni or
    /// Benjamini–Hochberg over every signal the monitor tests for this model
    /// version (signals not evaluated in this record count as p = 1).
    pub(super) fn resolve(&mut self, state: &mut ModelState) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let mut specs: Vec<usize> = pending.iter().map(|p| p.spec).collect();
        specs.sort_unstable();
        specs.dedup();
        for spec in specs {
            let Some((correction, alpha)) = self.plan.monitors[spec].detector.p_value_family() else {
                continue;
            };
            let family: Vec<&Pending> = pending.iter().filter(|p| p.spec == spec).collect();
            let mut ps: Vec<f64> = family.iter().map(|p| p.assessment.p_value.unwrap_or(1.0)).collect();
            ps.resize(state.family_size(spec).max(family.len()), 1.0);
            let rejected = correction.reject(&ps, alpha);
            let threshold = family_threshold(correction, alpha, &ps, &rejected);
            for (p, &reject) in family.iter().zip(&rejected) {
                let mut a = p.assessment;
                a.status = if reject { DriftStatus::Drift } else { DriftStatus::Stable };
                a.threshold = threshold;
                let sig = p.signal.as_ref();
                let Some(series) = series_of(state, sig) else { continue };
                let Some(inst) = series.instances.iter_mut().find(|i| i.spec == spec) else { continue };
                let delta = self.apply(inst, sig, &a);
                state.failing = state.failing.saturating_add_signed(delta);
            }
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
            .chain(state.metrics.values_mut());
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
        let request = RetrainRequest { job_id: Uuid::new_v4(), reasons };
        self.events.push(Event::new(self.key(), self.ts, self.seq, EventKind::RetrainRequested(request)));
    }
}

/// The per-test alpha a family was held to: alpha / m for Bonferroni; for
/// Benjamini–Hochberg k · alpha / m for the largest rejected rank k (alpha / m
/// when nothing is rejected).
fn family_threshold(correction: Correction, alpha: f64, ps: &[f64], rejected: &[bool]) -> f64 {
    let m = ps.len().max(1) as f64;
    match correction {
        Correction::Fdr => {
            let k = ps.iter().zip(rejected).filter(|&(_, &r)| r).count().max(1);
            k as f64 * alpha / m
        }
        Correction::Bonferroni => alpha / m,
        Correction::None => alpha,
    }
}
