//! Isotonic calibration of scores: the non-decreasing step function that
//! best fits the labels (pool adjacent violators), applied by linear
//! interpolation between its points and clipped at its ends, as
//! scikit-learn's `IsotonicRegression(out_of_bounds="clip")` that NannyML
//! calibrates with.

use serde::{Deserialize, Serialize};

/// A fitted calibration map: points (score, probability), scores strictly
/// increasing, probabilities non-decreasing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// The scores of the points.
    pub xs: Vec<f64>,
    /// The calibrated probabilities at those scores.
    pub ys: Vec<f64>,
}

impl Isotonic {
    /// Fits `(score, label in {0, 1})` pairs. Equal scores are pooled
    /// first, as scikit-learn does; only the ends of each run of equal
    /// fitted values are kept, which leaves the interpolation unchanged.
    pub fn fit(pairs: &mut [(f64, f64)]) -> Self {
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks of (x, sum of y, weight), merged while they violate order.
        let mut blocks: Vec<(f64, f64, f64, f64)> = Vec::new(); // (first x, last x, y sum, weight)
        let mut unique: Vec<(f64, f64, f64)> = Vec::new();
        for &(x, y) in pairs.iter() {
            match unique.last_mut() {
                Some(last) if last.0 == x => {
                    last.1 += y;
                    last.2 += 1.0;
                }
                _ => unique.push((x, y, 1.0)),
            }
        }
        // Pool adjacent violators over the unique scores, remembering each
        // unique score's block so that every score gets its fitted value.
        let mut fitted: Vec<(f64, f64)> = Vec::with_capacity(unique.len());
        let mut sizes: Vec<usize> = Vec::new();
        for &(x, sum, w) in &unique {
            blocks.push((x, x, sum, w));
            sizes.push(1);
            while blocks.len() > 1 {
                let n = blocks.len();
                let (a, b) = (blocks[n - 2], blocks[n - 1]);
                if a.2 / a.3 <= b.2 / b.3 {
                    break;
                }
                blocks.pop();
                let merged = sizes.pop().unwrap_or(1);
                if let (Some(last), Some(size)) = (blocks.last_mut(), sizes.last_mut()) {
                    *last = (a.0, b.1, a.2 + b.2, a.3 + b.3);
                    *size += merged;
                }
            }
        }
        let mut k = 0;
        for (block, size) in blocks.iter().zip(&sizes) {
            let y = block.2 / block.3;
            for u in &unique[k..k + size] {
                fitted.push((u.0, y));
            }
            k += size;
        }
        // Keep the first and last point of each run of equal values.
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (i, &(x, y)) in fitted.iter().enumerate() {
            let same_before = i > 0 && fitted[i - 1].1 == y;
            let same_after = i + 1 < fitted.len() && fitted[i + 1].1 == y;
            if !(same_before && same_after) {
                xs.push(x);
                ys.push(y);
            }
        }
        Self { xs, ys }
    }

    /// The calibrated probability of `score`.
    pub fn apply(&self, score: f64) -> f64 {
        let (Some(&first), Some(&last)) = (self.xs.first(), self.xs.last()) else { return score };
        if score <= first {
            return self.ys[0];
        }
        if score >= last {
            return self.ys[self.ys.len() - 1];
        }
        let i = self.xs.partition_point(|&x| x <= score);
        let (x0, x1, y0, y1) = (self.xs[i - 1], self.xs[i], self.ys[i - 1], self.ys[i]);
        y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    }

    /// Points in the map.
    pub fn len(&self) -> usize {
        self.xs.len()
    }

    /// Whether the map has no point (calibration is the identity).
    pub fn is_empty(&self) -> bool {
        self.xs.is_empty()
    }
}

/// The expected calibration error of `(probability, label)` pairs over
/// `bins` bins of equal count, in order of probability: the mean over bins
/// of |mean probability − share of positives|, as NannyML measures
/// calibration (its `needs_calibration`, 10 bins).
pub fn expected_calibration_error(pairs: &mut [(f64, f64)], bins: usize) -> f64 {
    if pairs.is_empty() || bins == 0 {
        return 0.0;
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pairs.len();
    let mut total = 0.0;
    let mut used = 0;
    for b in 0..bins {
        let (lo, hi) = (b * n / bins, (b + 1) * n / bins);
        if hi <= lo {
            continue;
        }
        let slice = &pairs[lo..hi];
        let m = slice.len() as f64;
        let p = slice.iter().map(|x| x.0).sum::<f64>() / m;
        let y = slice.iter().map(|x| x.1).sum::<f64>() / m;
        total += (p - y).abs();
        used += 1;
    }
    total / used.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scikit-learn 1.5:
    /// `IsotonicRegression(out_of_bounds="clip").fit([1, 2, 3, 4, 5, 6], [0, 1, 0, 0, 1, 1])`
    /// predicts [0, 1/3, 1/3, 1/3, 1, 1] there, 1/6 at 1.5 and 2/3 at 4.5,
    /// and 0 and 1 outside.
    #[test]
    fn matches_scikit_learn() {
        let mut pairs = vec![(1.0, 0.0), (2.0, 1.0), (3.0, 0.0), (4.0, 0.0), (5.0, 1.0), (6.0, 1.0)];
        let iso = Isotonic::fit(&mut pairs);
        let at = |x: f64| iso.apply(x);
        for (x, y) in [(1.0, 0.0), (2.0, 1.0 / 3.0), (3.0, 1.0 / 3.0), (4.0, 1.0 / 3.0), (5.0, 1.0), (6.0, 1.0)] {
            assert!((at(x) - y).abs() < 1e-12, "{x}: {}", at(x));
        }
        assert!((at(1.5) - 1.0 / 6.0).abs() < 1e-12);
        assert!((at(4.5) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((at(-3.0), at(9.0)), (0.0, 1.0));
    }

    /// Ties are pooled before fitting: scikit-learn gives 0.5 at score 1
    /// for `fit([1, 1, 2], [0, 1, 1])`, and 1 at score 2.
    #[test]
    fn ties_are_pooled() {
        let mut pairs = vec![(1.0, 0.0), (1.0, 1.0), (2.0, 1.0)];
        let iso = Isotonic::fit(&mut pairs);
        assert_eq!((iso.apply(1.0), iso.apply(2.0)), (0.5, 1.0));
    }
}
