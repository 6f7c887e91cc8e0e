//! Two-sample statistics: the tests and distances behind the reference
//! detectors, usable on their own.
//!
//! Every function agrees with its SciPy 1.17 counterpart to 1e-9 relative
//! (1e-12 absolute for p-values near 0); the integration tests embed SciPy's
//! values, produced by `scripts/scipy_reference.py`. Where SciPy raises on
//! degenerate input (an empty sample, a zero expected frequency), these
//! functions return a defined "no evidence" result instead, and never panic.
//!
//! | function | SciPy |
//! | --- | --- |
//! | [`ks_2samp`], [`ks_2samp_sorted`] | `stats.ks_2samp(method="auto")` |
//! | [`chi_square`], [`chi2_contingency`] | `stats.chi2_contingency` |
//! | [`chisquare`] | `stats.chisquare` |
//! | [`jensen_shannon_distance`] | `spatial.distance.jensenshannon` |
//! | [`wasserstein`], [`wasserstein_sorted`] | `stats.wasserstein_distance` |
//! | [`false_discovery_control`] | `stats.false_discovery_control` |
//! | [`cramers_v`], [`cramers_v_balanced`] | `stats.contingency.association(method="cramer")` |
//! | [`binom_test_greater`] | `stats.binomtest(alternative="greater")` |
//!
//! Effect sizes ([`cramers_v`], [`cohen_h`]) let an alarm require a change
//! that is material as well as significant.
//!
//! Reference statistics are meant to be computed once: sort a reference
//! into a [`SortedSample`], bin it into [`Bins`], and compare every window
//! against those.
//!
//! ```
//! use monitor_strategies::stats::{Bins, SortedSample, ks_2samp_sorted, psi_binned};
//!
//! let reference = SortedSample::new((0..5000).map(|i| (i % 100) as f64).collect());
//! let bins = Bins::from_sorted(&reference, 10);
//! let mut window: Vec<f64> = (0..1000).map(|i| (i % 100) as f64 + 20.0).collect();
//! window.sort_by(f64::total_cmp);
//! let ks = ks_2samp_sorted(reference.as_slice(), &window);
//! assert!(ks.p_value < 1e-10);
//! assert!(psi_binned(&bins, &window) > 0.1);
//! ```

mod chi2;
mod distance;
mod effect;
mod kolmogorov;
mod ks;
pub(crate) mod sort;
pub(crate) mod special;

pub use chi2::{chi_square, chi2_contingency, chisquare};
pub use distance::{
    Bins, EMPTY_BIN, jensen_shannon, jensen_shannon_distance, psi, psi_binned, psi_from_proportions, wasserstein,
    wasserstein_sorted,
};
pub use effect::{binom_test_greater, cohen_h, cramers_v, cramers_v_balanced, share_at_effect};
pub use ks::{SortedSample, ks_2samp, ks_2samp_sorted};
/// Multiple-test corrections live in `monitor-core`, so that a detector crate
/// can name them; re-exported here with the other statistics.
pub use monitor_core::correction::{Correction, benjamini_hochberg, bonferroni, false_discovery_control};
pub use sort::sort_f64;

pub(crate) use distance::proportions;
pub(crate) use ks::ks_statistic_sorted;

/// The outcome of a two-sample test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestResult {
    /// The test statistic (KS: the largest distance between the two
    /// empirical CDFs).
    pub statistic: f64,
    /// The p-value: the probability of a statistic at least this large if
    /// both samples came from one distribution.
    pub p_value: f64,
}

/// The outcome of a chi-square test.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChiSquareResult {
    /// Pearson's statistic.
    pub statistic: f64,
    /// The p-value from the chi-square distribution with `dof` degrees of freedom.
    pub p_value: f64,
    /// Degrees of freedom.
    pub dof: usize,
}

impl ChiSquareResult {
    /// The result of a degenerate table: no evidence either way.
    pub const NONE: Self = Self { statistic: 0.0, p_value: 1.0, dof: 0 };
}

/// The chi-square survival function P(X > x) for `dof` degrees of freedom,
/// via the regularized incomplete gamma function (SciPy's `chi2.sf`).
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    special::chi2_sf(x, dof)
}

/// The survival function of the two-sided one-sample Kolmogorov–Smirnov
/// statistic, P(D_n > d) (SciPy's `kstwo.sf(d, n)`).
pub fn kolmogorov_smirnov_sf(d: f64, n: u64) -> f64 {
    kolmogorov::kolmogn_sf(n, d)
}
