//! The tests of the two-sample detectors: which comparison a detector
//! makes with its gates (p-value and effect size), and how `drift` chooses
//! one by signal type and reference size.

use serde::{Deserialize, Serialize};

/// Which comparison a [`DistributionDetector`](super::two_sample::DistributionDetector) makes, with its gates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum DistributionTest {
    /// Two-sample Kolmogorov–Smirnov; drift when p <= alpha and D >= min_effect.
    Ks {
        /// Significance.
        alpha: f64,
        /// The smallest KS D that counts.
        #[serde(default)]
        min_effect: f64,
    },
    /// Pearson's chi-square of homogeneity; drift when p <= alpha and
    /// Cramér's V (reference and window weighed equally) >= min_effect.
    ChiSquare {
        /// Significance.
        alpha: f64,
        /// The smallest Cramér's V that counts.
        #[serde(default)]
        min_effect: f64,
    },
    /// Population stability index; drift when PSI >= threshold (and, with
    /// an alpha, the chi-square test of the same bins has p <= alpha).
    Psi {
        /// The smallest PSI that counts.
        threshold: f64,
        /// Significance, when a p-value is required too.
        #[serde(default)]
        alpha: Option<f64>,
    },
    /// Jensen–Shannon distance; drift when it reaches the threshold (and,
    /// with an alpha, the chi-square test of the same bins has p <= alpha).
    JensenShannon {
        /// The smallest distance that counts.
        threshold: f64,
        /// Significance, when a p-value is required too.
        #[serde(default)]
        alpha: Option<f64>,
        /// The smallest Cramér's V that counts too (`drift` sets it).
        #[serde(default)]
        min_v: Option<f64>,
    },
    /// Wasserstein distance over the reference's standard deviation
    /// (floored at 0.001, as Evidently); drift when it reaches the threshold
    /// (and, with an alpha, the KS test has p <= alpha).
    Wasserstein {
        /// The smallest normalised distance that counts.
        threshold: f64,
        /// Significance, when a p-value is required too.
        #[serde(default)]
        alpha: Option<f64>,
        /// The smallest KS D that counts too (`drift` sets it).
        #[serde(default)]
        min_d: Option<f64>,
    },
}

impl DistributionTest {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Ks { .. } => "ks",
            Self::ChiSquare { .. } => "chi_square",
            Self::Psi { .. } => "psi",
            Self::JensenShannon { .. } => "jensen_shannon",
            Self::Wasserstein { .. } => "wasserstein",
        }
    }

    /// Whether the current window's samples are kept (order statistics).
    pub(crate) fn needs_order(self) -> bool {
        matches!(self, Self::Ks { .. } | Self::Wasserstein { .. })
    }

    /// Whether its verdicts carry a p-value.
    pub(crate) fn has_p_value(self) -> bool {
        match self {
            Self::Ks { .. } | Self::ChiSquare { .. } => true,
            Self::Psi { alpha, .. } | Self::JensenShannon { alpha, .. } | Self::Wasserstein { alpha, .. } => {
                alpha.is_some()
            }
        }
    }
}

/// How `drift` chooses its test once it knows the signal's type and the
/// reference's size, the way Evidently's defaults do: a p-value test (KS
/// for numbers, chi-square for categories) for a reference of up to
/// `large_reference` samples, a distance (normalised Wasserstein, or
/// Jensen–Shannon) above. Either way the effect size (KS D, Cramér's V)
/// must reach `min_effect` as well: the Wasserstein distance alone, a mean
/// over the whole range, moves with a few samples in the tails, and over
/// windows of 1000 crosses 0.1 in about 0.4% of windows of an unchanged
/// distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AutoTest {
    /// The largest reference tested with a p-value.
    pub large_reference: usize,
    /// Significance of KS and chi-square.
    pub alpha: f64,
    /// The smallest KS D or Cramér's V that counts.
    pub min_effect: f64,
    /// The smallest Wasserstein or Jensen–Shannon distance that counts.
    pub threshold: f64,
}

impl AutoTest {
    /// The test for a reference of `n` samples of the given type.
    pub fn choose(&self, n: usize, categorical: bool) -> DistributionTest {
        let (alpha, min_effect, threshold) = (self.alpha, self.min_effect, self.threshold);
        match (n <= self.large_reference, categorical) {
            (true, false) => DistributionTest::Ks { alpha, min_effect },
            (true, true) => DistributionTest::ChiSquare { alpha, min_effect },
            (false, false) => DistributionTest::Wasserstein { threshold, alpha: None, min_d: Some(min_effect) },
            (false, true) => DistributionTest::JensenShannon { threshold, alpha: None, min_v: Some(min_effect) },
        }
    }
}
