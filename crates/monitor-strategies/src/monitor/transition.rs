//! The alarm state machine: how a detector's verdicts become findings and
//! recoveries, for condition and change detectors.

use monitor_core::detector::{AlarmMode, Assessment, DriftStatus};
use monitor_core::event::{EventKind, Finding};
use monitor_core::signal::SignalRef;

use super::Instance;

/// Moves an instance to the status of `a`; returns the event the move causes.
pub(super) fn transition(inst: &mut Instance, sig: SignalRef<'_>, a: &Assessment) -> Option<EventKind> {
    let finding = |inst: &Instance, severity| Finding {
        signal: sig.to_owned(),
        detector: inst.detector.kind().to_owned(),
        severity,
        statistic: a.statistic,
        threshold: a.threshold,
        p_value: a.p_value,
        message: inst.detector.explain(a),
    };
    // Non-finite statistics (an empty window, zero variance) never become findings.
    if !a.statistic.is_finite() {
        return None;
    }
    match (inst.mode, a.status.severity()) {
        (AlarmMode::Condition, Some(severity)) if a.status != inst.status => {
            let f = finding(inst, severity);
            inst.status = a.status;
            inst.open = Some(f.clone());
            Some(EventKind::Finding(f))
        }
        (AlarmMode::Condition, None) if inst.status != DriftStatus::Stable => {
            let mut f = inst.open.take().unwrap_or_else(|| finding(inst, monitor_core::event::Severity::Drift));
            // The recovery reports the evaluation that cleared the finding.
            f.statistic = a.statistic;
            f.threshold = a.threshold;
            f.p_value = a.p_value;
            f.message = inst.detector.explain(a);
            inst.status = DriftStatus::Stable;
            Some(EventKind::Recovered(f))
        }
        (AlarmMode::Change, Some(severity)) if a.status == DriftStatus::Drift || inst.status == DriftStatus::Stable => {
            let f = finding(inst, severity);
            inst.status = a.status;
            inst.open = Some(f.clone());
            Some(EventKind::Finding(f))
        }
        (AlarmMode::Change, None) if inst.status == DriftStatus::Warning => {
            inst.status = DriftStatus::Stable;
            inst.open = None;
            None
        }
        _ => None,
    }
}
