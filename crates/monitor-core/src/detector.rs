//! The `Detector` trait: a streaming test on one signal of one model version.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Severity;
use crate::signal::SignalValue;

/// Where a detector stands after a sample, the way River's `update(x)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftStatus {
    /// In control.
    #[default]
    Stable,
    /// In the early-warning zone.
    Warning,
    /// Drift (or a threshold violation) detected.
    Drift,
}

impl DriftStatus {
    /// The finding severity of this status; `None` when stable.
    pub fn severity(self) -> Option<Severity> {
        match self {
            Self::Stable => None,
            Self::Warning => Some(Severity::Warning),
            Self::Drift => Some(Severity::Drift),
        }
    }
}

/// One observation handed to a detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// The value.
    pub value: SignalValue<'a>,
    /// Its event time.
    pub ts: DateTime<Utc>,
}

/// A detector's verdict after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// Stable, warning or drift.
    pub status: DriftStatus,
    /// The test statistic (a window mean, a distance, a KS D...).
    pub statistic: f64,
    /// What the statistic was compared with.
    pub threshold: f64,
    /// The p-value, for tests that compute one.
    pub p_value: Option<f64>,
}

/// The event-time windows a detector closed since it was last asked
/// ([`Detector::take_closed_windows`]): how many held samples, how many were
/// empty, and how many samples came too late for their window. The monitor
/// turns them into the `quality.no_data` signal and its counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedWindows {
    /// Windows that held at least one sample.
    pub with_data: u64,
    /// Windows that ended without a sample.
    pub empty: u64,
    /// Samples that arrived after their window had closed, and were dropped.
    pub late: u64,
}

impl ClosedWindows {
    /// Whether no window closed.
    pub fn is_none(&self) -> bool {
        self.with_data == 0 && self.empty == 0
    }
}

/// How the engine reads a detector's alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlarmMode {
    /// The detector tests a condition on every evaluation (a threshold, a
    /// two-sample test). A finding lasts while the condition holds, and a
    /// `recovered` event follows when it clears.
    #[default]
    Condition,
    /// The detector flags the moment a change happens (ADWIN, Page-Hinkley,
    /// DDM). A drift finding is a point event: it stays counted by the retrain
    /// policy until the next retrain request, and no `recovered` follows.
    Change,
}

/// A streaming test on one signal of one model version.
///
/// The engine keeps one detector per (model, version, signal) and feeds it
/// every sample in event order. Implement it in your own crate, depending on
/// `monitor-core` alone, with a
/// [`DetectorSpec`](crate::detector_spec::DetectorSpec) (its config) that
/// builds it, so that config can name it by kind.
///
/// ```
/// use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
///
/// /// Flags drift whenever a sample is above a limit.
/// #[derive(Debug)]
/// struct Above(f64);
///
/// impl Detector for Above {
///     fn kind(&self) -> &str { "above" }
///     fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment> {
///         let x = sample.value.as_f64()?;
///         let status = if x > self.0 { DriftStatus::Drift } else { DriftStatus::Stable };
///         Some(Assessment { status, statistic: x, threshold: self.0, p_value: None })
///     }
///     fn reset(&mut self) {}
/// }
/// ```
pub trait Detector: Send + fmt::Debug {
    /// The detector's kind as used in config (`threshold`, `adwin`, ...).
    fn kind(&self) -> &str;

    /// Feeds one sample. Returns `None` when there is nothing to say yet
    /// (a window that is still filling, a categorical sample for a numeric
    /// test), else the detector's current verdict.
    fn observe(&mut self, sample: Sample<'_>) -> Option<Assessment>;

    /// Forgets everything learned, as if new.
    fn reset(&mut self);

    /// How the engine turns this detector's verdicts into findings.
    fn alarm_mode(&self) -> AlarmMode {
        AlarmMode::Condition
    }

    /// Event time has reached `now` without a sample of this detector's
    /// signal. A detector with event-time windows closes those that ended
    /// before `now` and returns the verdict on the last of them that held
    /// samples; an empty window gives no verdict. The monitor calls it for
    /// model versions that have gone quiet, so that their windows close
    /// anyway. The default does nothing.
    fn advance(&mut self, now: DateTime<Utc>) -> Option<Assessment> {
        let _ = now;
        None
    }

    /// The event-time windows closed since the last call, by a sample or by
    /// [`Detector::advance`]. The default, for detectors without event-time
    /// windows, is none.
    fn take_closed_windows(&mut self) -> ClosedWindows {
        ClosedWindows::default()
    }

    /// Whether this detector's p-values belong to the multiple-test family
    /// its spec declares ([`DetectorSpec::p_value_family`](crate::detector_spec::DetectorSpec::p_value_family)).
    /// True by default; a detector that chooses its test per signal (the
    /// built-in `drift`) says false when it chose a distance, which has no
    /// p-value.
    fn in_p_value_family(&self) -> bool {
        true
    }

    /// The detector's learned state (windows, counters, reference samples),
    /// so that a monitor can be checkpointed and restored. The default says
    /// the detector cannot be saved; a monitor holding one cannot be
    /// snapshotted. Detectors whose state is serde-serialisable implement it
    /// as `serde_json::to_value(self)`.
    fn save_state(&self) -> crate::Result<serde_json::Value> {
        Err(crate::Error::snapshot(self.kind(), "this detector does not support saving its state"))
    }

    /// Replaces the learned state with one taken by [`Detector::save_state`]
    /// from a detector built from the same config. A state that does not fit
    /// is an error, and leaves the detector as it was.
    fn load_state(&mut self, state: serde_json::Value) -> crate::Result<()> {
        let _ = state;
        Err(crate::Error::snapshot(self.kind(), "this detector does not support restoring its state"))
    }

    /// The reference against the current window, summarised for a chart,
    /// for two-sample tests; `None` (the default) for other detectors. A
    /// report asks for it when a finding fires: right after the verdict,
    /// before the next sample.
    fn compare(&self) -> Option<crate::comparison::Comparison> {
        None
    }

    /// A one-line explanation of a verdict, for findings and alerts.
    fn explain(&self, assessment: &Assessment) -> String {
        match assessment.p_value {
            Some(p) => {
                format!("statistic {:.4} vs threshold {:.4} (p = {p:.3e})", assessment.statistic, assessment.threshold)
            }
            None => format!("statistic {:.4} vs threshold {:.4}", assessment.statistic, assessment.threshold),
        }
    }
}
