//! Corrections for testing many signals at once: how the p-value detectors
//! of one monitor share a family-wise alpha (Bonferroni, Benjamini–Hochberg).
//!
//! A [`DetectorSpec`](crate::detector_spec::DetectorSpec) whose detectors
//! report p-values names its [`Correction`] and family alpha through
//! `p_value_family`, and the monitor decides each family's verdicts together.

use serde::{Deserialize, Serialize};

/// How p-value detectors on several features of one model share their alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Bonferroni: each of n tests at alpha / n; controls the family-wise
    /// error rate. The default, as in Alibi Detect.
    #[default]
    Bonferroni,
    /// Benjamini–Hochberg: controls the false discovery rate at alpha;
    /// more power when several features drift together.
    Fdr,
    /// Each test at alpha, uncorrected.
    None,
}

impl Correction {
    /// The spellings accepted in config.
    pub const NAMES: &'static [&'static str] = &["bonferroni", "fdr", "none"];

    /// Which of `p_values` are rejected at family level `alpha`.
    pub fn reject(self, p_values: &[f64], alpha: f64) -> Vec<bool> {
        match self {
            Self::Bonferroni => bonferroni(p_values, alpha),
            Self::Fdr => benjamini_hochberg(p_values, alpha),
            Self::None => p_values.iter().map(|&p| p <= alpha).collect(),
        }
    }

    /// The per-test alpha for `n_tests` tests: alpha / n under Bonferroni;
    /// under FDR the threshold of the smallest p-value (the k-th smallest is
    /// held to k · alpha / n); alpha itself without correction.
    pub fn per_test_alpha(self, alpha: f64, n_tests: usize) -> f64 {
        match self {
            Self::Bonferroni | Self::Fdr => alpha / n_tests.max(1) as f64,
            Self::None => alpha,
        }
    }
}

/// Bonferroni: test i is rejected when `p_i <= alpha / n`. NaN never rejects.
///
/// ```
/// use monitor_core::correction::bonferroni;
/// assert_eq!(bonferroni(&[0.001, 0.02, 0.5], 0.05), [true, false, false]);
/// ```
pub fn bonferroni(p_values: &[f64], alpha: f64) -> Vec<bool> {
    let limit = alpha / p_values.len().max(1) as f64;
    p_values.iter().map(|&p| p <= limit).collect()
}

/// Benjamini–Hochberg step-up: with p-values sorted, reject the k smallest
/// for the largest k with `p_(k) <= k alpha / n`. Equivalent to rejecting
/// where [`false_discovery_control`] is at most alpha.
///
/// ```
/// use monitor_core::correction::benjamini_hochberg;
/// assert_eq!(benjamini_hochberg(&[0.001, 0.02, 0.5], 0.05), [true, true, false]);
/// ```
pub fn benjamini_hochberg(p_values: &[f64], alpha: f64) -> Vec<bool> {
    false_discovery_control(p_values).into_iter().map(|q| q <= alpha).collect()
}

/// Benjamini–Hochberg adjusted p-values, as SciPy's
/// `false_discovery_control(ps, method='bh')`: `p_(k) · n / k`, made
/// monotone from the largest down, clipped to [0, 1], in input order.
/// NaN p-values count as 1.
pub fn false_discovery_control(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let clean: Vec<f64> = p_values.iter().map(|&p| if p.is_nan() { 1.0 } else { p }).collect();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));
    let mut adjusted: Vec<f64> =
        order.iter().enumerate().map(|(k, &i)| clean[i] * (m as f64 / (k + 1) as f64)).collect();
    for k in (0..m.saturating_sub(1)).rev() {
        adjusted[k] = adjusted[k].min(adjusted[k + 1]);
    }
    let mut out = vec![0.0; m];
    for (k, &i) in order.iter().enumerate() {
        out[i] = adjusted[k].clamp(0.0, 1.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_test_alpha_shares_the_family_alpha() {
        assert_eq!(Correction::Bonferroni.per_test_alpha(0.05, 10), 0.005);
        assert_eq!(Correction::Fdr.per_test_alpha(0.05, 10), 0.005);
        assert_eq!(Correction::None.per_test_alpha(0.05, 10), 0.05);
        // No test at all is one test.
        assert_eq!(Correction::Bonferroni.per_test_alpha(0.05, 0), 0.05);
    }

    #[test]
    fn reject_applies_the_rule() {
        let ps = [0.001, 0.02, 0.04, 0.5];
        assert_eq!(Correction::Bonferroni.reject(&ps, 0.05), [true, false, false, false]);
        // BH holds the k-th smallest to k * 0.05 / 4: 0.001 <= 0.0125 and
        // 0.02 <= 0.025 pass, 0.04 > 0.0375 does not.
        assert_eq!(Correction::Fdr.reject(&ps, 0.05), [true, true, false, false]);
        assert_eq!(Correction::None.reject(&ps, 0.05), [true, true, true, false]);
        assert_eq!(Correction::Bonferroni.reject(&[f64::NAN], 0.05), [false]);
    }

    #[test]
    fn adjusted_p_values_are_monotone_and_clipped() {
        // SciPy: false_discovery_control([0.01, 0.04, 0.03, 0.2]) = [0.04, 0.0533.., 0.0533.., 0.2]
        let q = false_discovery_control(&[0.01, 0.04, 0.03, 0.2]);
        let want = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.2];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{q:?}");
        }
        assert_eq!(false_discovery_control(&[0.9, 0.95]), [0.95, 0.95]);
    }

    #[test]
    fn config_spellings_round_trip() {
        for name in Correction::NAMES {
            let c: Correction = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(serde_json::to_value(c).ok(), Some(serde_json::json!(name)));
        }
    }
}
