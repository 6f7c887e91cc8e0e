//! The per-version state of `[[performance]]`: windows of predictions,
//! late labels joined to the window of their prediction, the CBPE
//! reference and fit.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use monitor_core::record::{Record, Value};
use monitor_core::signal::Signal;
use serde::{Deserialize, Serialize};

use super::cbpe::{self, Expected, Fitted, Labelled};
use super::config::{Calibration, MAX_CLASSES, PerformanceSpec, Problem};
use super::metrics::{Binary, Multiclass, Regression};
use super::{Emitted, WindowReport};

/// One prediction as the metrics need it: its class (binary: 1 or 0;
/// multiclass: the class index) or value, and its score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pred {
    value: f64,
    score: Option<f64>,
}

/// The labelled outcomes of one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Outcomes {
    Binary(Binary),
    Multiclass(Multiclass),
    Regression(Regression),
}

/// One window of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Window {
    index: u64,
    predictions: u64,
    labelled: u64,
    /// Whether its `perf.*` values were given to detectors.
    emitted: bool,
    outcomes: Outcomes,
    /// Predictions waiting for a late label: (hash of the id, prediction).
    pending: Vec<(u64, Pred)>,
    /// Expected outcomes from calibrated scores, once CBPE is fitted and
    /// only if it saw the whole window.
    expected: Option<Expected>,
}

/// The state of one model version under a [`PerformanceSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PerfState {
    current: Window,
    open: VecDeque<Window>,
    /// Multiclass: the classes seen, by index.
    classes: Vec<String>,
    /// CBPE's reference while it is collected.
    reference: Vec<Labelled>,
    /// CBPE's fit.
    pub(crate) fitted: Option<Fitted>,
    /// Windows dropped before enough of their labels came.
    pub(crate) unlabelled_windows: u64,
}

/// Ids are kept as 64-bit hashes with a fixed seed: the same in every
/// process, so that a restored snapshot joins as the monitor it was taken
/// from.
fn id_hash(id: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x006d_6f6e_6974_6f72).hash_one(id)
}

fn outcomes_for(problem: Problem) -> Outcomes {
    match problem {
        Problem::Binary => Outcomes::Binary(Binary::default()),
        Problem::Multiclass => Outcomes::Multiclass(Multiclass::default()),
        Problem::Regression => Outcomes::Regression(Regression::default()),
    }
}

fn window(index: u64, problem: Problem) -> Window {
    Window {
        index,
        predictions: 0,
        labelled: 0,
        emitted: false,
        outcomes: outcomes_for(problem),
        pending: Vec::new(),
        expected: None,
    }
}

/// Whether `v` is the positive class `positive` (numbers equal as numbers,
/// a number and a string equal when the string parses to it).
fn is_positive(v: &Value, positive: &Value) -> bool {
    match (v, positive) {
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::Category(a), Value::Category(b)) => a == b,
        (Value::Number(a), Value::Category(b)) | (Value::Category(b), Value::Number(a)) => {
            b.trim().parse::<f64>().is_ok_and(|x| x == *a)
        }
    }
}

impl PerfState {
    pub(crate) fn new(spec: &PerformanceSpec) -> Self {
        Self {
            current: window(0, spec.problem),
            open: VecDeque::new(),
            classes: Vec::new(),
            reference: Vec::new(),
            fitted: None,
            unlabelled_windows: 0,
        }
    }

    fn class_index(&mut self, v: &Value) -> Option<f64> {
        let name = match v {
            Value::Number(x) => x.to_string(),
            Value::Category(c) => c.clone(),
        };
        if let Some(i) = self.classes.iter().position(|c| *c == name) {
            return Some(i as f64);
        }
        if self.classes.len() >= MAX_CLASSES {
            return None;
        }
        self.classes.push(name);
        Some((self.classes.len() - 1) as f64)
    }

    /// The prediction of `record` as the metrics need it; `None` when it
    /// cannot be read under `spec` (a class where a number is expected).
    fn prediction(&mut self, spec: &PerformanceSpec, record: &Record) -> Option<Pred> {
        let prediction = record.prediction.as_ref()?;
        let score = match &spec.score {
            Some(Signal::Metric(m)) => record.metrics.get(m).copied(),
            Some(Signal::Feature(f)) => match record.features.get(f) {
                Some(Value::Number(x)) => Some(*x),
                _ => None,
            },
            _ => None,
        };
        match spec.problem {
            Problem::Binary => match (&spec.score, prediction) {
                (None, Value::Number(s)) => {
                    Some(Pred { value: f64::from(u8::from(*s >= spec.threshold)), score: Some(*s) })
                }
                _ => Some(Pred { value: f64::from(u8::from(is_positive(prediction, &spec.positive))), score }),
            },
            Problem::Multiclass => Some(Pred { value: self.class_index(prediction)?, score: None }),
            Problem::Regression => match prediction {
                Value::Number(x) => Some(Pred { value: *x, score: None }),
                Value::Category(_) => None,
            },
        }
    }

    fn label(&mut self, spec: &PerformanceSpec, label: &Value) -> Option<f64> {
        match spec.problem {
            Problem::Binary => Some(f64::from(u8::from(is_positive(label, &spec.positive)))),
            Problem::Multiclass => self.class_index(label),
            Problem::Regression => match label {
                Value::Number(x) => Some(*x),
                Value::Category(_) => None,
            },
        }
    }

    /// Counts a labelled prediction in `w`, and in CBPE's reference while it
    /// is collected.
    fn count(&mut self, spec: &PerformanceSpec, at: Option<usize>, pred: Pred, actual: f64) {
        let w = match at {
            Some(i) => &mut self.open[i],
            None => &mut self.current,
        };
        w.labelled += 1;
        match &mut w.outcomes {
            Outcomes::Binary(b) => b.add(pred.value == 1.0, actual == 1.0, pred.score),
            Outcomes::Multiclass(m) => m.add(pred.value as u32, actual as u32),
            Outcomes::Regression(r) => r.add(pred.value, actual),
        }
        if let (Some(e), None, Some(score)) = (&spec.estimate, &self.fitted, pred.score) {
            if self.reference.len() < e.reference {
                self.reference.push(Labelled { score, predicted: pred.value == 1.0, actual: actual == 1.0 });
            }
        }
    }

    /// Takes a record (not a late label): its prediction joins the current
    /// window; values of windows that close or complete go to `out`.
    pub(crate) fn observe(&mut self, spec: &PerformanceSpec, record: &Record, out: &mut Vec<Emitted>) {
        let Some(pred) = self.prediction(spec, record) else { return };
        self.current.predictions += 1;
        if let (Some(fitted), Some(score)) = (&self.fitted, pred.score) {
            if let Some(expected) = &mut self.current.expected {
                expected.add(fitted, score, pred.value == 1.0);
            }
        }
        match (&record.label, &record.id) {
            (Some(label), _) => {
                if let Some(actual) = self.label(spec, label) {
                    self.count(spec, None, pred, actual);
                }
            }
            (None, Some(id)) => self.current.pending.push((id_hash(id), pred)),
            (None, None) => {}
        }
        if self.current.predictions as usize >= spec.window {
            self.close(spec, out);
        }
        self.fit_if_ready(spec, out);
    }

    /// Takes a late label: it counts in the window of its prediction, if
    /// that window is still open. Returns whether it found its prediction.
    pub(crate) fn late_label(&mut self, spec: &PerformanceSpec, record: &Record, out: &mut Vec<Emitted>) -> bool {
        let (Some(id), Some(label)) = (&record.id, &record.label) else { return false };
        let h = id_hash(id);
        let found = self.current.pending.iter().position(|(k, _)| *k == h).map(|i| (None, i)).or_else(|| {
            self.open
                .iter()
                .enumerate()
                .find_map(|(w, win)| win.pending.iter().position(|(k, _)| *k == h).map(|i| (Some(w), i)))
        });
        let Some((at, i)) = found else { return false };
        let pred = match at {
            Some(w) => self.open[w].pending.swap_remove(i).1,
            None => self.current.pending.swap_remove(i).1,
        };
        let Some(actual) = self.label(spec, label) else { return true };
        self.count(spec, at, pred, actual);
        if let Some(w) = at {
            if let Some(values) = complete(spec, &mut self.open[w]) {
                out.extend(values);
            }
        }
        self.fit_if_ready(spec, out);
        true
    }

    fn close(&mut self, spec: &PerformanceSpec, out: &mut Vec<Emitted>) {
        let next = window(self.current.index + 1, spec.problem);
        let mut closed = std::mem::replace(&mut self.current, next);
        if self.fitted.is_some() {
            self.current.expected = Some(Expected::default());
        }
        if let (Some(fitted), Some(expected)) = (&self.fitted, &mut closed.expected) {
            if expected.len() as u64 == closed.predictions {
                let n = expected.len();
                for ((name, value), i) in cbpe::METRICS.iter().zip(expected.estimates(fitted)).zip(0..) {
                    let Some(value) = value else { continue };
                    let band = 3.0 * fitted.sampling_error(i, n);
                    out.push(Emitted {
                        signal: Signal::Estimated((*name).to_owned()),
                        value,
                        window: closed.index,
                        band: Some(((value - band).max(0.0), (value + band).min(1.0))),
                    });
                }
            }
        }
        closed.expected = None;
        if let Some(values) = complete(spec, &mut closed) {
            out.extend(values);
        }
        self.open.push_back(closed);
        while self.open.len() > spec.open_windows {
            if let Some(w) = self.open.pop_front() {
                if !w.emitted {
                    self.unlabelled_windows += 1;
                }
            }
        }
    }

    /// Fits CBPE once its reference is full, and gives the reference's
    /// windows (their realised values: labels exist there) to the
    /// `estimated.*` signals, as NannyML sets its thresholds on them.
    fn fit_if_ready(&mut self, spec: &PerformanceSpec, out: &mut Vec<Emitted>) {
        let Some(e) = &spec.estimate else { return };
        if self.fitted.is_some() || self.reference.len() < e.reference {
            return;
        }
        let reference = std::mem::take(&mut self.reference);
        let fitted = Fitted::fit(&reference, e.calibration == Calibration::Isotonic);
        for (k, chunk) in reference.chunks(spec.window).enumerate() {
            if chunk.len() < spec.window {
                break;
            }
            let mut b = Binary::default();
            for r in chunk {
                b.add(r.predicted, r.actual, Some(r.score));
            }
            for (name, value) in b.metrics() {
                out.push(Emitted { signal: Signal::Estimated(name.to_owned()), value, window: k as u64, band: None });
            }
        }
        self.fitted = Some(fitted);
        // Estimates start with the next whole window.
        self.current.expected = (self.current.predictions == 0).then(Expected::default);
    }

    /// The windows still open for labels, with their realised values so far.
    pub(crate) fn reports(&self) -> Vec<WindowReport> {
        self.open
            .iter()
            .map(|w| WindowReport {
                window: w.index,
                predictions: w.predictions,
                labelled: w.labelled,
                realised: metrics_of(&w.outcomes).into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
            })
            .collect()
    }
}

fn metrics_of(outcomes: &Outcomes) -> Vec<(&'static str, f64)> {
    match outcomes {
        Outcomes::Binary(b) => b.metrics(),
        Outcomes::Multiclass(m) => m.metrics(),
        Outcomes::Regression(r) => r.metrics(),
    }
}

/// The `perf.*` values of a closed window once enough of it is labelled, once.
fn complete(spec: &PerformanceSpec, w: &mut Window) -> Option<Vec<Emitted>> {
    if w.emitted || w.predictions == 0 || (w.labelled as f64) < spec.min_labels * w.predictions as f64 {
        return None;
    }
    w.emitted = true;
    let values = metrics_of(&w.outcomes)
        .into_iter()
        .map(|(name, value)| Emitted { signal: Signal::Perf(name.to_owned()), value, window: w.index, band: None })
        .collect();
    Some(values)
}
