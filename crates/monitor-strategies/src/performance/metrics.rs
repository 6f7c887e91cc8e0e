//! Realised performance of one window from its labels: the confusion
//! matrix of a binary or multiclass classifier, ROC AUC from scores, and the
//! errors of a regression. Definitions follow scikit-learn (a ratio with a
//! zero denominator is 0, as its `zero_division` default gives).

use serde::{Deserialize, Serialize};

/// Counts of a binary classifier's outcomes, with the scores of labelled
/// predictions for ROC AUC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Binary {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// True negatives.
    pub tn: u64,
    /// False negatives.
    pub fn_: u64,
    /// (score, label is positive) of the labelled predictions that had a score.
    pub scored: Vec<(f64, bool)>,
}

impl Binary {
    /// Adds one labelled prediction.
    pub fn add(&mut self, predicted: bool, actual: bool, score: Option<f64>) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
        if let Some(s) = score {
            self.scored.push((s, actual));
        }
    }

    /// `(metric, value)` for accuracy, precision, recall, f1, specificity
    /// and, when every labelled prediction had a score and both classes
    /// occur, roc_auc.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let (tp, fp, tn, fn_) = (self.tp as f64, self.fp as f64, self.tn as f64, self.fn_ as f64);
        let n = tp + fp + tn + fn_;
        let mut out = vec![
            ("accuracy", ratio(tp + tn, n)),
            ("precision", ratio(tp, tp + fp)),
            ("recall", ratio(tp, tp + fn_)),
            ("f1", ratio(2.0 * tp, 2.0 * tp + fp + fn_)),
            ("specificity", ratio(tn, tn + fp)),
        ];
        if self.scored.len() as f64 == n {
            if let Some(auc) = roc_auc(&self.scored) {
                out.push(("roc_auc", auc));
            }
        }
        out
    }
}

/// `num / den`, 0 when `den` is 0.
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

/// The area under the ROC curve of `(score, positive)` pairs: the
/// Mann–Whitney U statistic over n_pos · n_neg, ties counting one half
/// (scikit-learn's `roc_auc_score`). `None` unless both classes occur.
pub fn roc_auc(pairs: &[(f64, bool)]) -> Option<f64> {
    let mut sorted: Vec<(f64, bool)> = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut negatives_below, mut u) = (0.0_f64, 0.0_f64);
    let (mut n_pos, mut n_neg) = (0.0_f64, 0.0_f64);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0.0, 0.0);
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            if sorted[j].1 {
                pos += 1.0
            } else {
                neg += 1.0
            }
            j += 1;
        }
        u += pos * (negatives_below + 0.5 * neg);
        negatives_below += neg;
        n_pos += pos;
        n_neg += neg;
        i = j;
    }
    (n_pos > 0.0 && n_neg > 0.0).then(|| u / (n_pos * n_neg))
}

/// A multiclass confusion matrix over class indices, for macro averages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Multiclass {
    /// (predicted, actual, count), one entry per pair seen.
    pub cells: Vec<(u32, u32, u64)>,
}

impl Multiclass {
    /// Adds one labelled prediction.
    pub fn add(&mut self, predicted: u32, actual: u32) {
        match self.cells.iter_mut().find(|(p, a, _)| *p == predicted && *a == actual) {
            Some(cell) => cell.2 += 1,
            None => self.cells.push((predicted, actual, 1)),
        }
    }

    /// Accuracy, and the macro averages (over the classes that occur as a
    /// prediction or a label) of precision, recall, f1 and specificity.
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        let n: u64 = self.cells.iter().map(|c| c.2).sum();
        let correct: u64 = self.cells.iter().filter(|c| c.0 == c.1).map(|c| c.2).sum();
        let mut classes: Vec<u32> = self.cells.iter().flat_map(|c| [c.0, c.1]).collect();
        classes.sort_unstable();
        classes.dedup();
        let (mut precision, mut recall, mut f1, mut specificity) = (0.0, 0.0, 0.0, 0.0);
        for &k in &classes {
            let count = |f: &dyn Fn(u32, u32) -> bool| -> f64 {
                self.cells.iter().filter(|c| f(c.0, c.1)).map(|c| c.2 as f64).sum()
            };
            let tp = count(&|p, a| p == k && a == k);
            let fp = count(&|p, a| p == k && a != k);
            let fn_ = count(&|p, a| p != k && a == k);
            let tn = n as f64 - tp - fp - fn_;
            precision += ratio(tp, tp + fp);
            recall += ratio(tp, tp + fn_);
            f1 += ratio(2.0 * tp, 2.0 * tp + fp + fn_);
            specificity += ratio(tn, tn + fp);
        }
        let k = classes.len().max(1) as f64;
        vec![
            ("accuracy", ratio(correct as f64, n as f64)),
            ("precision", precision / k),
            ("recall", recall / k),
            ("f1", f1 / k),
            ("specificity", specificity / k),
        ]
    }
}

/// Sums of a regression's errors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Regression {
    /// Labelled predictions.
    pub n: u64,
    /// Σ |prediction − label|.
    pub abs: f64,
    /// Σ (prediction − label)².
    pub sq: f64,
    /// Σ |prediction − label| / max(|label|, ε) (scikit-learn's MAPE).
    pub ape: f64,
}

impl Regression {
    /// Adds one labelled prediction.
    pub fn add(&mut self, predicted: f64, actual: f64) {
        let e = (predicted - actual).abs();
        self.n += 1;
        self.abs += e;
        self.sq += e * e;
        self.ape += e / actual.abs().max(f64::EPSILON);
    }

    /// MAE, RMSE and MAPE (a fraction, as scikit-learn gives it).
    pub fn metrics(&self) -> Vec<(&'static str, f64)> {
        if self.n == 0 {
            return Vec::new();
        }
        let n = self.n as f64;
        vec![("mae", self.abs / n), ("rmse", (self.sq / n).sqrt()), ("mape", self.ape / n)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn 1.5: `roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])`
    /// is 0.75; with a tie, `roc_auc_score([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9])`
    /// is 0.875.
    #[test]
    fn roc_auc_matches_scikit_learn() {
        let auc = roc_auc(&[(0.1, false), (0.4, false), (0.35, true), (0.8, true)]);
        assert_eq!(auc, Some(0.75));
        let auc = roc_auc(&[(0.5, false), (0.5, true), (0.2, false), (0.9, true)]);
        assert_eq!(auc, Some(0.875));
        assert_eq!(roc_auc(&[(0.5, true)]), None);
    }

    /// scikit-learn: y_true = [1, 1, 0, 0, 1], y_pred = [1, 0, 0, 1, 1]:
    /// accuracy 0.6, precision 2/3, recall 2/3, f1 2/3; specificity 1/2.
    #[test]
    fn binary_counts() {
        let mut b = Binary::default();
        for (p, a) in [(true, true), (false, true), (false, false), (true, false), (true, true)] {
            b.add(p, a, None);
        }
        let m: Vec<f64> = b.metrics().into_iter().map(|(_, v)| v).collect();
        let expected = [0.6, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 0.5];
        for (got, want) in m.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{m:?}");
        }
    }

    /// scikit-learn, y_true = [0, 1, 2, 2, 1], y_pred = [0, 2, 2, 2, 1]:
    /// accuracy 0.8, macro precision 0.888…, macro recall 0.8333…, macro f1 0.8222….
    #[test]
    fn multiclass_macro_averages() {
        let mut m = Multiclass::default();
        for (p, a) in [(0, 0), (2, 1), (2, 2), (2, 2), (1, 1)] {
            m.add(p, a);
        }
        let got = m.metrics();
        let want = [0.8, 8.0 / 9.0, 5.0 / 6.0, (1.0 + 2.0 / 3.0 + 0.8) / 3.0];
        for ((name, g), w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{name}: {g} != {w}");
        }
    }

    /// scikit-learn: y_true = [3, -0.5, 2, 7], y_pred = [2.5, 0.0, 2, 8]:
    /// MAE 0.5, RMSE sqrt(0.375), MAPE 0.3273809523809524.
    #[test]
    fn regression_errors() {
        let mut r = Regression::default();
        for (p, a) in [(2.5, 3.0), (0.0, -0.5), (2.0, 2.0), (8.0, 7.0)] {
            r.add(p, a);
        }
        let m = r.metrics();
        assert!((m[0].1 - 0.5).abs() < 1e-12);
        assert!((m[1].1 - 0.375_f64.sqrt()).abs() < 1e-12);
        assert!((m[2].1 - 0.327_380_952_380_952_4).abs() < 1e-12);
    }

    /// A zero label divides by ε = 2.22e-16, as scikit-learn does: its
    /// MAPE is finite but enormous. scikit-learn 1.9.1:
    /// `mean_absolute_percentage_error([0.0, 2.0], [1.0, 2.5])` is
    /// 2251799813685248.0 (1/ε for the first row, 0.25 lost to rounding in
    /// the mean); `([0.0], [0.0])` is 0.0; `([0.0, 4.0], [0.0, 3.0])` is 0.125.
    #[test]
    fn mape_of_a_zero_label_is_scikit_learns() {
        let mape = |pairs: &[(f64, f64)]| {
            let mut r = Regression::default();
            for &(p, a) in pairs {
                r.add(p, a);
            }
            r.metrics()[2].1
        };
        assert_eq!(mape(&[(1.0, 0.0), (2.5, 2.0)]), 2_251_799_813_685_248.0);
        assert_eq!(mape(&[(0.0, 0.0)]), 0.0);
        assert_eq!(mape(&[(0.0, 0.0), (3.0, 4.0)]), 0.125);
    }
}
