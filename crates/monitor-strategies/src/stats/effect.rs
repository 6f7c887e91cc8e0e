//! Effect sizes and the test of a share: how large a change is, on a scale
//! that does not grow with the sample, so that an alarm can require a
//! change that is material as well as significant.
//!
//! - [`cramers_v`]: Cramér's V of a contingency table, as SciPy's
//!   `stats.contingency.association(table, method="cramer")`;
//!   [`cramers_v_balanced`] the same for a reference and a current sample
//!   weighed equally, so that a large reference does not dilute it.
//! - [`cohen_h`]: Cohen's h between two proportions (Cohen 1988, §6.2).
//! - [`binom_test_greater`]: the one-sided exact binomial test, as SciPy's
//!   `stats.binomtest(k, n, p, alternative="greater").pvalue`.

use super::special::ln_gamma;

/// Pearson's chi-square statistic of a table, without continuity correction.
fn pearson(table: &[&[f64]]) -> (f64, f64) {
    let cols = table.iter().map(|r| r.len()).max().unwrap_or(0);
    let row_sums: Vec<f64> = table.iter().map(|r| r.iter().sum()).collect();
    let col_sums: Vec<f64> = (0..cols).map(|j| table.iter().map(|r| r.get(j).copied().unwrap_or(0.0)).sum()).collect();
    let total: f64 = row_sums.iter().sum();
    if total <= 0.0 {
        return (0.0, 0.0);
    }
    let mut chi2 = 0.0;
    for (r, row) in table.iter().enumerate() {
        for (c, &col) in col_sums.iter().enumerate() {
            let expected = row_sums[r] * col / total;
            if expected > 0.0 {
                let d = row.get(c).copied().unwrap_or(0.0) - expected;
                chi2 += d * d / expected;
            }
        }
    }
    (chi2, total)
}

/// Cramér's V of a contingency table: sqrt(χ² / (N · (min(r, c) − 1))),
/// χ² without continuity correction, over the rows and columns that are not
/// all zero. As SciPy's `association(table, method="cramer")`; 0 for a
/// table with fewer than two non-empty rows or columns (where SciPy
/// divides by zero).
///
/// ```
/// use monitor_strategies::stats::cramers_v;
///
/// // SciPy: association([[10, 20], [20, 10]], method="cramer") = 0.33333...
/// let v = cramers_v(&[&[10, 20], &[20, 10]]);
/// assert!((v - 1.0 / 3.0).abs() < 1e-12);
/// ```
pub fn cramers_v(table: &[&[u64]]) -> f64 {
    let cols = table.iter().map(|r| r.len()).max().unwrap_or(0);
    let keep_col: Vec<bool> = (0..cols).map(|j| table.iter().any(|r| r.get(j).copied().unwrap_or(0) > 0)).collect();
    let rows: Vec<Vec<f64>> = table
        .iter()
        .filter(|r| r.iter().any(|&x| x > 0))
        .map(|r| (0..cols).filter(|&j| keep_col[j]).map(|j| r.get(j).copied().unwrap_or(0) as f64).collect())
        .collect();
    let k = rows.len().min(keep_col.iter().filter(|&&k| k).count());
    if k < 2 {
        return 0.0;
    }
    let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    let (chi2, total) = pearson(&refs);
    (chi2 / (total * (k - 1) as f64)).sqrt().min(1.0)
}

/// Cramér's V of a reference and a current sample given the same weight:
/// the 2 × k table of their proportions. For two samples,
/// V² = ½ Σ (p_i − q_i)² / (p_i + q_i), between 0 (same distribution) and 1
/// (no category in common). Unlike [`cramers_v`] of the raw counts, it does
/// not shrink when the reference is much larger than the window (with a
/// reference 50 times the window, the raw V of a complete change is below
/// 0.15); it equals [`cramers_v`] of the counts when both totals are equal.
///
/// ```
/// use monitor_strategies::stats::{cramers_v, cramers_v_balanced};
///
/// let v = cramers_v_balanced(&[500, 500], &[60, 40]);
/// assert!((v - cramers_v(&[&[60, 40], &[50, 50]])).abs() < 1e-12);
/// assert!((v - 0.100503781525921).abs() < 1e-12);
/// ```
pub fn cramers_v_balanced(reference: &[u64], current: &[u64]) -> f64 {
    let (nr, nc): (u64, u64) = (reference.iter().sum(), current.iter().sum());
    if nr == 0 || nc == 0 {
        return 0.0;
    }
    let mut v2 = 0.0;
    for i in 0..reference.len().max(current.len()) {
        let p = reference.get(i).copied().unwrap_or(0) as f64 / nr as f64;
        let q = current.get(i).copied().unwrap_or(0) as f64 / nc as f64;
        if p + q > 0.0 {
            v2 += (p - q) * (p - q) / (p + q);
        }
    }
    (0.5 * v2).sqrt().min(1.0)
}

/// Cohen's h between a proportion `p` and a baseline `p0`:
/// 2 asin √p − 2 asin √p0, positive when `p` is the larger. Cohen (1988)
/// calls 0.2 a small effect, 0.5 medium, 0.8 large. Proportions are
/// clamped to [0, 1].
///
/// ```
/// use monitor_strategies::stats::cohen_h;
///
/// assert!((cohen_h(0.65, 0.45) - 0.404860075).abs() < 1e-9);
/// assert_eq!(cohen_h(0.3, 0.3), 0.0);
/// ```
pub fn cohen_h(p: f64, p0: f64) -> f64 {
    let phi = |x: f64| 2.0 * x.clamp(0.0, 1.0).sqrt().asin();
    phi(p) - phi(p0)
}

/// The proportion whose Cohen's h above `p0` is `h`: sin²(asin √p0 + h / 2),
/// at most 1. The share a detector with `min_effect = h` must reach.
///
/// ```
/// use monitor_strategies::stats::{cohen_h, share_at_effect};
///
/// let p = share_at_effect(0.01, 0.2);
/// assert!((cohen_h(p, 0.01) - 0.2).abs() < 1e-12);
/// ```
pub fn share_at_effect(p0: f64, h: f64) -> f64 {
    let angle = p0.clamp(0.0, 1.0).sqrt().asin() + h / 2.0;
    if angle >= std::f64::consts::FRAC_PI_2 { 1.0 } else { angle.max(0.0).sin().powi(2) }
}

/// P(X ≥ k) for X ~ Binomial(n, p): the p-value of the one-sided exact
/// binomial test that the rate is above `p`, as SciPy's
/// `binomtest(k, n, p, alternative="greater").pvalue`. Computed as the
/// regularized incomplete beta function I_p(k, n − k + 1), so it keeps its
/// relative precision far into the tail.
///
/// ```
/// use monitor_strategies::stats::binom_test_greater;
///
/// // SciPy: binomtest(7, 10, 0.5, alternative="greater").pvalue = 0.171875
/// assert!((binom_test_greater(7, 10, 0.5) - 0.171875).abs() < 1e-15);
/// assert_eq!(binom_test_greater(0, 10, 0.5), 1.0);
/// assert_eq!(binom_test_greater(3, 10, 0.0), 0.0);
/// ```
pub fn binom_test_greater(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    beta_reg(k as f64, (n - k + 1) as f64, p)
}

/// The regularized incomplete beta function I_x(a, b), by its continued
/// fraction (modified Lentz) on the side where it converges quickly.
fn beta_reg(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (-x).ln_1p();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        (front * beta_fraction(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - front * beta_fraction(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

/// The continued fraction of the incomplete beta function (Numerical
/// Recipes, 3rd ed., §6.4), evaluated by the modified Lentz method.
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const EPS: f64 = 1e-16;
    const TINY: f64 = 1e-300;
    const MAX_ITER: usize = 1_000_000;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X >= k) summed term by term from the binomial pmf.
    fn naive_sf(k: u64, n: u64, p: f64) -> f64 {
        let ln_choose = |i: u64| ln_gamma((n + 1) as f64) - ln_gamma((i + 1) as f64) - ln_gamma((n - i + 1) as f64);
        (k..=n).map(|i| (ln_choose(i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp()).sum()
    }

    #[test]
    fn binomial_tail_matches_the_sum_of_its_terms() {
        for &(n, p) in &[(10u64, 0.5), (50, 0.02), (1000, 0.01), (1000, 0.3), (7, 0.9)] {
            for k in 0..=n {
                let (got, want) = (binom_test_greater(k, n, p), naive_sf(k, n, p).min(1.0));
                assert!((got - want).abs() <= 1e-10 * want.max(1e-300) + 1e-14, "n={n} p={p} k={k}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn cramers_v_of_balanced_counts_is_the_plain_one() {
        let (r, c) = ([30u64, 50, 20], [10u64, 60, 30]);
        assert!((cramers_v_balanced(&r, &c) - cramers_v(&[&r, &c])).abs() < 1e-12);
        assert_eq!(cramers_v_balanced(&[5, 0], &[0, 5]), 1.0);
        assert_eq!(cramers_v_balanced(&[], &[1]), 0.0);
        assert_eq!(cramers_v(&[&[3, 0], &[0, 0]]), 0.0);
    }
}
