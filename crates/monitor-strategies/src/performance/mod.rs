//! Signals computed per window of a model version: its performance from
//! labels (`perf.*`), its performance estimated without them by
//! confidence-based performance estimation (`estimated.*`, CBPE), and the
//! drift of all its features together (`multivariate.reconstruction_error`).
//!
//! `[[performance]]` ([`PerformanceSpec`]) and `[[reconstruction]]`
//! ([`ReconstructionSpec`]) say what is computed; each value is then a
//! sample of its signal, which `[[monitors]]` watch like any other (one
//! sample per window). Fitted state (the calibration map, the PCA basis)
//! is learned from the first records of each model version, bounded, and
//! saved in snapshots. The statistics follow NannyML 0.13 and are tested
//! against it on its car-loan dataset.

mod cbpe;
mod config;
mod isotonic;
mod metrics;
mod pca;
mod recon;
mod state;

use monitor_core::record::Record;
use monitor_core::signal::Signal;
use serde::{Deserialize, Serialize};

pub use self::cbpe::{Expected, Fitted, Labelled, METRICS as ESTIMATED_METRICS};
pub use self::config::{
    Calibration, EstimateSpec, MAX_CATEGORIES, MAX_CLASSES, MAX_FEATURES, MAX_OPEN_WINDOWS, MAX_REFERENCE,
    MAX_REFERENCE_VALUES, MAX_WINDOW, PerformanceSpec, Problem, ReconstructionSpec,
};
pub use self::isotonic::{Isotonic, expected_calibration_error};
pub use self::metrics::{Binary, Multiclass, Regression, roc_auc};
pub use self::pca::{Column, Encoding, Reconstruction};
pub use self::recon::RECONSTRUCTION_ERROR;
use self::recon::ReconState;
use self::state::PerfState;

/// A value of a per-window signal, as computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emitted {
    /// The signal (`perf.f1`, `estimated.roc_auc`, ...).
    pub signal: Signal,
    /// Its value over the window.
    pub value: f64,
    /// The window's 0-based index in the model version.
    pub window: u64,
    /// For an estimate: its confidence band, ± 3 sampling errors (NannyML's).
    pub band: Option<(f64, f64)>,
}

/// A window still open for late labels, with its realised values so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// The window's 0-based index.
    pub window: u64,
    /// Its predictions.
    pub predictions: u64,
    /// How many of them are labelled.
    pub labelled: u64,
    /// The realised metrics so far.
    pub realised: Vec<(String, f64)>,
}

/// The most recent values kept per version for queries.
const HISTORY: usize = 256;

/// The per-window state of one model version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionWindows {
    /// Index into the plan's `performance`, and its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    perf: Option<(usize, PerfState)>,
    /// Index into the plan's `reconstruction`, and its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recon: Option<(usize, ReconState)>,
    /// The latest values, newest last (at most 256), for queries: an
    /// estimate and the realised value of its window side by side.
    #[serde(default)]
    recent: std::collections::VecDeque<Emitted>,
    /// Whether the state was set up (after the version's first record).
    #[serde(default)]
    started: bool,
}

impl VersionWindows {
    /// Whether nothing applies or was set up.
    pub fn is_empty(&self) -> bool {
        self.perf.is_none() && self.recon.is_none()
    }

    /// Whether the state was set up.
    pub(crate) fn started(&self) -> bool {
        self.started
    }

    /// The bytes the bound of a version's state costs under the entries
    /// that apply to `model`.
    pub(crate) fn cost(performance: &[PerformanceSpec], reconstruction: &[ReconstructionSpec], model: &str) -> usize {
        performance.iter().find(|s| s.applies_to(model)).map_or(0, PerformanceSpec::state_bytes)
            + reconstruction.iter().find(|s| s.applies_to(model)).map_or(0, ReconstructionSpec::state_bytes)
    }

    /// Sets up the state of the entries that apply to `model` (the first
    /// of each kind), once.
    pub(crate) fn start(
        &mut self,
        performance: &[PerformanceSpec],
        reconstruction: &[ReconstructionSpec],
        model: &str,
    ) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        if let Some((i, spec)) = performance.iter().enumerate().find(|(_, s)| s.applies_to(model)) {
            self.perf = Some((i, PerfState::new(spec)));
        }
        if let Some((i, spec)) = reconstruction.iter().enumerate().find(|(_, s)| s.applies_to(model)) {
            self.recon = Some((i, ReconState::new(spec)));
        }
    }

    /// The bytes the bound of the state costs under these entries.
    pub(crate) fn bytes(&self, performance: &[PerformanceSpec], reconstruction: &[ReconstructionSpec]) -> usize {
        self.perf.as_ref().and_then(|(i, _)| performance.get(*i)).map_or(0, PerformanceSpec::state_bytes)
            + self.recon.as_ref().and_then(|(i, _)| reconstruction.get(*i)).map_or(0, ReconstructionSpec::state_bytes)
    }

    /// Takes a record (not a late label); the values it completes go to `out`.
    pub(crate) fn observe(
        &mut self,
        performance: &[PerformanceSpec],
        reconstruction: &[ReconstructionSpec],
        record: &Record,
        out: &mut Vec<Emitted>,
    ) {
        let start = out.len();
        if let Some((i, state)) = &mut self.perf {
            if let Some(spec) = performance.get(*i) {
                state.observe(spec, record, out);
            }
        }
        if let Some((i, state)) = &mut self.recon {
            if let Some(spec) = reconstruction.get(*i) {
                state.observe(spec, record, out);
            }
        }
        self.remember(&out[start..]);
    }

    /// Takes a late label; the values it completes go to `out`.
    pub(crate) fn late_label(&mut self, performance: &[PerformanceSpec], record: &Record, out: &mut Vec<Emitted>) {
        let start = out.len();
        if let Some((i, state)) = &mut self.perf {
            if let Some(spec) = performance.get(*i) {
                state.late_label(spec, record, out);
            }
        }
        self.remember(&out[start..]);
    }

    fn remember(&mut self, values: &[Emitted]) {
        for v in values {
            if self.recent.len() == HISTORY {
                self.recent.pop_front();
            }
            self.recent.push_back(v.clone());
        }
    }

    /// The latest values, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Emitted> {
        self.recent.iter()
    }

    /// The realised value of `metric` (`perf.<metric>`) over `window`, once
    /// given (enough of the window's labels came): what an estimate of
    /// that window is compared with.
    pub fn realised(&self, metric: &str, window: u64) -> Option<f64> {
        self.recent
            .iter()
            .rev()
            .find(|e| e.window == window && matches!(&e.signal, Signal::Perf(m) if m == metric))
            .map(|e| e.value)
    }

    /// The windows still open for late labels.
    pub fn open_windows(&self) -> Vec<WindowReport> {
        self.perf.as_ref().map(|(_, s)| s.reports()).unwrap_or_default()
    }

    /// CBPE's fit, once made.
    pub fn estimation(&self) -> Option<&Fitted> {
        self.perf.as_ref().and_then(|(_, s)| s.fitted.as_ref())
    }

    /// The reconstruction's fit, once made, with the mean error of each
    /// reference window.
    pub fn reconstruction(&self) -> Option<(&Reconstruction, &[f64])> {
        self.recon.as_ref().and_then(|(_, s)| s.fitted.as_ref().map(|f| (f, s.reference_errors.as_slice())))
    }

    /// Windows closed before enough of their labels came.
    pub fn unlabelled_windows(&self) -> u64 {
        self.perf.as_ref().map_or(0, |(_, s)| s.unlabelled_windows)
    }

    /// Checks a restored state against the plan: each part must come from
    /// an entry that exists and applies to `model`.
    pub(crate) fn check(
        &self,
        performance: &[PerformanceSpec],
        reconstruction: &[ReconstructionSpec],
        model: &str,
    ) -> Result<(), String> {
        if let Some((i, _)) = &self.perf {
            if !performance.get(*i).is_some_and(|s| s.applies_to(model)) {
                return Err(format!("saved under performance[{i}], which does not apply to model `{model}` now"));
            }
        }
        if let Some((i, _)) = &self.recon {
            if !reconstruction.get(*i).is_some_and(|s| s.applies_to(model)) {
                return Err(format!("saved under reconstruction[{i}], which does not apply to model `{model}` now"));
            }
        }
        Ok(())
    }
}

/// What fitting on reference records gives, for `check-config`.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// CBPE's fit, if the records held enough labelled predictions.
    pub estimation: Option<Fitted>,
    /// The reconstruction's fit and the mean error of each reference window.
    pub reconstruction: Option<(Reconstruction, Vec<f64>)>,
    /// The values the reference windows give.
    pub values: Vec<Emitted>,
}

/// Fits `performance` and `reconstruction` on `records` as a model
/// version's first records would be, without a monitor.
pub fn fit_on(
    performance: Option<&PerformanceSpec>,
    reconstruction: Option<&ReconstructionSpec>,
    records: &[Record],
) -> FitReport {
    let perf: Vec<PerformanceSpec> = performance.cloned().into_iter().collect();
    let recon: Vec<ReconstructionSpec> = reconstruction.cloned().into_iter().collect();
    let mut windows = VersionWindows::default();
    windows.start(&perf, &recon, "");
    let mut values = Vec::new();
    for r in records {
        if r.is_late_label() {
            windows.late_label(&perf, r, &mut values);
        } else {
            windows.observe(&perf, &recon, r, &mut values);
        }
    }
    FitReport {
        estimation: windows.estimation().cloned(),
        reconstruction: windows.reconstruction().map(|(f, e)| (f.clone(), e.to_vec())),
        values,
    }
}
