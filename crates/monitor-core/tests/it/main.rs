//! Integration tests of monitor-core, one binary (see CONVENTIONS.md, "Tests").
//!
//! The windows and streaming statistics are checked against a naive
//! recomputation over the same samples, after every operation, on random
//! sequences made of segments of different shapes: ties and repeated values,
//! negative numbers, large magnitudes, a large offset with a small spread, and
//! sudden jumps between them that the windows then have to evict.

mod categories;
mod fuzz_corpus;
mod records;
mod sketch;
mod stats;
mod windows;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Samples whose neighbours are alike, as in a real signal: each segment
/// draws from one shape, and segments change abruptly.
fn series(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    let segment = prop_oneof![
        // Ties and repeated values, negatives included.
        3 => prop::collection::vec((-4i32..=4).prop_map(f64::from), 1..40),
        // Ordinary values of either sign.
        3 => prop::collection::vec(-1e3..1e3f64, 1..40),
        // Large magnitudes of either sign.
        1 => prop::collection::vec(-1e12..1e12f64, 1..40),
        // A large offset with a small spread: the textbook trap for running variance.
        1 => prop::collection::vec((-8i32..=8).prop_map(|i| 1e9 + f64::from(i) * 0.25), 1..40),
        // A constant run.
        1 => (-1e6..1e6f64, 1usize..40).prop_map(|(x, n)| vec![x; n]),
    ];
    prop::collection::vec(segment, 1..12).prop_map(move |segments| {
        let mut v: Vec<f64> = segments.into_iter().flatten().collect();
        v.truncate(max_len);
        v
    })
}

/// The quantiles that detectors use, plus the edges.
const QUANTILES: &[f64] = &[0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// Naive statistics of a slice of samples.
struct Naive {
    sorted: Vec<f64>,
    mean: f64,
    m2: f64,
    /// The largest magnitude, the scale of rounding errors.
    scale: f64,
}

impl Naive {
    fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        // Two passes; the mean is computed from offsets to the first sample so
        // that a large offset does not cost precision.
        let pivot = values.first().copied().unwrap_or_default();
        let mean = pivot + values.iter().map(|x| x - pivot).sum::<f64>() / n;
        let m2 = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>();
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let scale = values.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        Self { sorted, mean, m2, scale }
    }

    fn len(&self) -> usize {
        self.sorted.len()
    }

    fn variance(&self) -> Option<f64> {
        (self.len() > 0).then(|| self.m2 / self.len() as f64)
    }

    fn sample_variance(&self) -> Option<f64> {
        (self.len() > 1).then(|| self.m2 / (self.len() - 1) as f64)
    }

    /// Nearest rank: the sorted sample at `floor(q * (n - 1))`.
    fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.len();
        (n > 0).then(|| self.sorted[((q * (n - 1) as f64).floor() as usize).min(n - 1)])
    }

    fn min(&self) -> Option<f64> {
        self.sorted.first().copied()
    }

    fn max(&self) -> Option<f64> {
        self.sorted.last().copied()
    }

    /// Tolerance for the mean: 1e-9 relative to the samples' magnitude.
    fn mean_tol(&self) -> f64 {
        1e-9 * self.scale + 1e-9
    }

    /// Tolerance for the variance: 1e-9 relative plus 1e-9 absolute, plus the
    /// conditioning of the problem. A mean is only known to about
    /// `EPSILON * scale`, and that error enters every deviation, so even a
    /// stable algorithm is off by about `EPSILON * scale * std_dev`: for samples
    /// at 1e9 with a spread of 0.25, that is already 1e-8.
    fn variance_tol(&self) -> f64 {
        let var = self.m2 / self.len().max(1) as f64;
        1e-9 * var + 1e4 * f64::EPSILON * self.scale * var.sqrt() + 1e-9
    }
}

/// Fails unless `got` is within `tol` of `want`; both `None` also passes.
fn assert_close(what: &str, got: Option<f64>, want: Option<f64>, tol: f64) -> Result<(), TestCaseError> {
    match (got, want) {
        (Some(g), Some(w)) => {
            prop_assert!(
                (g - w).abs() <= tol,
                "{what}: got {g}, want {w} (off by {:e}, tolerance {tol:e})",
                (g - w).abs()
            );
        }
        (g, w) => prop_assert_eq!(g, w, "{}", what),
    }
    Ok(())
}

/// Fails unless `got` is within `alpha * |want|` of `want`, the DDSketch bound.
fn assert_relative(what: &str, got: Option<f64>, want: Option<f64>, alpha: f64) -> Result<(), TestCaseError> {
    let tol = want.map_or(0.0, |w| alpha * w.abs() * (1.0 + 1e-9) + 1e-9);
    assert_close(what, got, want, tol)
}
