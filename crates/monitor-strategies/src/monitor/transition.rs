//! The alarm state machine: how a detector's verdicts become findings and
//! recoveries, for condition and change detectors, with flap damping.
//!
//! Flap damping works like Prometheus' `for:`: a condition detector's
//! finding fires only after `fire_after` consecutive verdicts away from the
//! current status, and resolves only after `resolve_after` consecutive
//! clear ones. A verdict that agrees with the current status starts the
//! count again, so a stream that alternates never fires (or never resolves)
//! under a damping of 2 or more. Change detectors flag points in time and
//! are not damped.

use monitor_core::detector::{AlarmMode, Assessment, DriftStatus};
use monitor_core::event::{EventKind, Finding, Severity};
use monitor_core::signal::SignalRef;

use super::Instance;

/// How many consecutive verdicts a change of status needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Damping {
    /// To open a finding, or change its severity.
    pub(super) fire_after: u32,
    /// To resolve an open finding.
    pub(super) resolve_after: u32,
}

/// Moves an instance towards the status of `a`; returns the event the move
/// causes.
pub(super) fn transition(
    inst: &mut Instance,
    sig: SignalRef<'_>,
    a: &Assessment,
    damping: Damping,
) -> Option<EventKind> {
    let finding = |inst: &Instance, severity| Finding {
        signal: sig.to_owned(),
        detector: inst.detector.kind().to_owned(),
        severity,
        statistic: a.statistic,
        threshold: a.threshold,
        p_value: a.p_value,
        realised: None,
        message: inst.detector.explain(a),
    };
    // Non-finite statistics (an empty window, zero variance) never become findings.
    if !a.statistic.is_finite() {
        return None;
    }
    if inst.mode == AlarmMode::Condition {
        if a.status == inst.status {
            inst.streak = 0;
            return None;
        }
        inst.streak = inst.streak.saturating_add(1);
        let needed = if a.status == DriftStatus::Stable { damping.resolve_after } else { damping.fire_after };
        if inst.streak < needed {
            return None;
        }
        inst.streak = 0;
    }
    match (inst.mode, a.status.severity()) {
        (AlarmMode::Condition, Some(severity)) => {
            let f = finding(inst, severity);
            inst.status = a.status;
            inst.open = Some(f.clone());
            Some(EventKind::Finding(f))
        }
        (AlarmMode::Condition, None) => {
            let mut f = inst.open.take().unwrap_or_else(|| finding(inst, Severity::Drift));
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

#[cfg(test)]
mod tests {
    use monitor_core::detector::{Detector, Sample};

    use super::*;

    /// Returns whatever status it is told, with statistic 1.
    #[derive(Debug)]
    struct Told;

    impl Detector for Told {
        fn kind(&self) -> &str {
            "told"
        }
        fn observe(&mut self, _: Sample<'_>) -> Option<Assessment> {
            None
        }
        fn reset(&mut self) {}
    }

    fn verdict(status: DriftStatus) -> Assessment {
        Assessment { status, statistic: 1.0, threshold: 0.5, p_value: None }
    }

    /// The events a stream of verdicts causes: 'F' finding, 'R' recovered, '.' none.
    fn run(verdicts: &str, fire_after: u32, resolve_after: u32) -> String {
        let mut inst = Instance {
            detector: Box::new(Told),
            spec: 0,
            mode: AlarmMode::Condition,
            status: DriftStatus::Stable,
            open: None,
            last: None,
            streak: 0,
        };
        let damping = Damping { fire_after, resolve_after };
        verdicts
            .chars()
            .map(|c| {
                let status = if c == 'D' { DriftStatus::Drift } else { DriftStatus::Stable };
                match transition(&mut inst, SignalRef::LatencyMs, &verdict(status), damping) {
                    Some(EventKind::Finding(_)) => 'F',
                    Some(EventKind::Recovered(_)) => 'R',
                    _ => '.',
                }
            })
            .collect()
    }

    #[test]
    fn without_damping_every_change_of_status_is_an_event() {
        assert_eq!(run("DSDSDS", 1, 1), "FRFRFR");
    }

    #[test]
    fn an_alternating_stream_never_fires_under_damping() {
        assert_eq!(run("DSDSDSDSDS", 2, 1), "..........");
        // Once open, it never resolves either.
        assert_eq!(run("DDSDSDSDSD", 2, 2), ".F........");
    }

    #[test]
    fn consecutive_verdicts_fire_and_resolve() {
        assert_eq!(run("DDDSSSS", 3, 4), "..F...R");
        // A clear verdict in between starts the count again.
        assert_eq!(run("DDSDDD", 3, 1), ".....F");
    }
}
