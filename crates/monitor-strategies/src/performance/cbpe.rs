//! Confidence-based performance estimation (CBPE) of a binary classifier:
//! with scores calibrated on a labelled reference, the expected confusion
//! matrix of a window needs no labels. The formulas, and the sampling error
//! of each estimate, are NannyML 0.13's.

use serde::{Deserialize, Serialize};

use super::isotonic::{Isotonic, expected_calibration_error};
use super::metrics::{Binary, ratio};

/// One labelled prediction of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Labelled {
    /// The model's score.
    pub score: f64,
    /// Whether the model predicted the positive class.
    pub predicted: bool,
    /// Whether the label is the positive class.
    pub actual: bool,
}

/// The metrics CBPE estimates, in output order.
pub const METRICS: [&str; 6] = ["accuracy", "precision", "recall", "f1", "specificity", "roc_auc"];

/// What CBPE learned from the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// The calibration map; empty when calibration is off.
    pub calibration: Isotonic,
    /// Per metric of [`METRICS`]: the reference's spread of one
    /// observation's contribution and the share of observations that count
    /// (NannyML's sampling-error components): the sampling error of a
    /// window of n is σ / √(n · share).
    pub sampling: Vec<(f64, f64)>,
    /// Reference rows fitted on.
    pub reference: usize,
    /// Expected calibration error on the reference, before and after calibration.
    pub ece: (f64, f64),
}

impl Fitted {
    /// Fits on the reference; `calibrate` false keeps the scores as they are.
    pub fn fit(reference: &[Labelled], calibrate: bool) -> Self {
        let mut pairs: Vec<(f64, f64)> = reference.iter().map(|r| (r.score, f64::from(u8::from(r.actual)))).collect();
        let before = expected_calibration_error(&mut pairs.clone(), 10);
        let calibration = if calibrate { Isotonic::fit(&mut pairs) } else { Isotonic::default() };
        let mut after: Vec<(f64, f64)> =
            reference.iter().map(|r| (calibration.apply(r.score), f64::from(u8::from(r.actual)))).collect();
        let after = expected_calibration_error(&mut after, 10);
        Self { calibration, sampling: sampling_components(reference), reference: reference.len(), ece: (before, after) }
    }

    /// The calibrated probability of `score`.
    pub fn probability(&self, score: f64) -> f64 {
        if self.calibration.is_empty() { score } else { self.calibration.apply(score) }
    }

    /// The sampling error of metric `i` of [`METRICS`] in a window of `n`.
    pub fn sampling_error(&self, i: usize, n: usize) -> f64 {
        let (sd, share) = self.sampling.get(i).copied().unwrap_or((f64::NAN, 1.0));
        sd / (n as f64 * share).sqrt()
    }
}

/// A window's expected confusion matrix, accumulated prediction by prediction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// Expected true positives, false positives, true negatives, false negatives.
    pub counts: [f64; 4],
    /// The raw scores of the window, for the estimated ROC AUC.
    pub scores: Vec<f64>,
}

impl Expected {
    /// Adds one prediction with its score.
    pub fn add(&mut self, fitted: &Fitted, score: f64, predicted: bool) {
        let p = fitted.probability(score);
        if predicted {
            self.counts[0] += p;
            self.counts[1] += 1.0 - p;
        } else {
            self.counts[3] += p;
            self.counts[2] += 1.0 - p;
        }
        self.scores.push(score);
    }

    /// Predictions added.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether none was added.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The estimates of [`METRICS`], in order (ROC AUC `None` when the
    /// window's expected positives or negatives are none).
    pub fn estimates(&mut self, fitted: &Fitted) -> Vec<Option<f64>> {
        let [tp, fp, tn, fn_] = self.counts;
        let n = self.scores.len() as f64;
        vec![
            Some(ratio(tp + tn, n)),
            Some(ratio(tp, tp + fp)),
            Some(ratio(tp, tp + fn_)),
            Some(ratio(tp, tp + 0.5 * (fp + fn_))),
            Some(ratio(tn, tn + fp)),
            estimate_roc_auc(fitted, &mut self.scores),
        ]
    }
}

/// NannyML's `estimate_roc_auc`: the ROC curve whose true and false
/// positives at each threshold are the calibrated probabilities summed
/// above it (cumulated counts rounded to 5 decimals, as NannyML does). Equal
/// scores have equal probabilities, so they are one step of the curve.
fn estimate_roc_auc(fitted: &Fitted, scores: &mut [f64]) -> Option<f64> {
    scores.sort_by(|a, b| b.total_cmp(a));
    let mut points: Vec<(f64, f64)> = vec![(0.0, 0.0)];
    let (mut tps, mut seen) = (0.0, 0.0);
    let mut i = 0;
    while i < scores.len() {
        let p = fitted.probability(scores[i]);
        let mut j = i;
        while j < scores.len() && scores[j] == scores[i] {
            j += 1;
        }
        tps += p * (j - i) as f64;
        seen += (j - i) as f64;
        points.push((round5(seen - tps), round5(tps)));
        i = j;
    }
    let &(fp_total, tp_total) = points.last()?;
    if fp_total <= 0.0 || tp_total <= 0.0 {
        return None;
    }
    let mut area = 0.0;
    for w in points.windows(2) {
        let (x0, y0) = (w[0].0 / fp_total, w[0].1 / tp_total);
        let (x1, y1) = (w[1].0 / fp_total, w[1].1 / tp_total);
        area += (x1 - x0) * (y0 + y1) / 2.0;
    }
    Some(area)
}

fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

/// Population standard deviation of 0/1 values: `ones` of `n`.
fn binary_sd(ones: f64, n: f64) -> f64 {
    if n == 0.0 {
        return f64::NAN;
    }
    let p = ones / n;
    (p * (1.0 - p)).sqrt()
}

/// NannyML's sampling-error components of each metric of [`METRICS`].
fn sampling_components(reference: &[Labelled]) -> Vec<(f64, f64)> {
    let mut b = Binary::default();
    for r in reference {
        b.add(r.predicted, r.actual, None);
    }
    let (tp, fp, tn, fn_) = (b.tp as f64, b.fp as f64, b.tn as f64, b.fn_ as f64);
    let n = reference.len() as f64;
    // F1: TP count 1, FP and FN 0, each scaled so that their mean is F1.
    let relevant = tp + fp + fn_;
    let f1 = if relevant == 0.0 {
        (f64::NAN, 0.0)
    } else {
        let factor = relevant / ((fp + fn_) * 0.5 + tp);
        (binary_sd(tp, relevant) * factor, relevant / n)
    };
    vec![
        (binary_sd(tp + tn, n), 1.0),
        (binary_sd(tp, tp + fp), ratio(tp + fp, n)),
        (binary_sd(tp, tp + fn_), ratio(tp + fn_, n)),
        f1,
        (binary_sd(tn, tn + fp), ratio(tn + fp, n)),
        auroc_component(reference),
    ]
}

/// NannyML's `auroc_sampling_error_components`: the spread of the share
/// of negatives ranked below each positive (the minority class taken as
/// positive), and the share of positives.
fn auroc_component(reference: &[Labelled]) -> (f64, f64) {
    let positives = reference.iter().filter(|r| r.actual).count();
    let flip = positives * 2 > reference.len();
    let mut rows: Vec<(f64, bool)> =
        reference.iter().map(|r| if flip { (1.0 - r.score, !r.actual) } else { (r.score, r.actual) }).collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n_pos = rows.iter().filter(|r| r.1).count() as f64;
    let n_neg = rows.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return (f64::NAN, 0.0);
    }
    let mut values = Vec::with_capacity(n_pos as usize);
    let mut seen_pos = 0usize;
    for (rank, row) in rows.iter().enumerate() {
        // NannyML drops a positive at rank 0 (its rank is indistinguishable from a negative's).
        if row.1 && rank > 0 {
            values.push((rank - seen_pos) as f64 / n_neg);
            seen_pos += 1;
        }
    }
    let m = values.len() as f64;
    let mean = values.iter().sum::<f64>() / m;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m;
    (var.sqrt(), n_pos / rows.len() as f64)
}
