//! The two-sample Kolmogorov–Smirnov test, as SciPy's `ks_2samp` computes it
//! with `method="auto"`.

use super::TestResult;
use super::kolmogorov::{kolmogn_sf, outer_prob_inside, prob_outside_square};
use super::sort::sort_f64;

/// SciPy's `MAX_AUTO_N`: the exact p-value when neither sample is larger.
const MAX_EXACT_N: usize = 10_000;

/// A sample sorted once, for tests that compare many windows against it.
///
/// NaNs are dropped: they have no place in an order statistic.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SortedSample {
    values: Vec<f64>,
}

impl SortedSample {
    /// Sorts `values` (dropping NaNs).
    pub fn new(mut values: Vec<f64>) -> Self {
        values.retain(|x| !x.is_nan());
        sort_f64(&mut values);
        Self { values }
    }

    /// Wraps values that are already sorted ascending and free of NaN.
    /// Returns `None` when they are not.
    pub fn from_sorted(values: Vec<f64>) -> Option<Self> {
        let ok = values.iter().all(|x| !x.is_nan()) && values.windows(2).all(|w| w[0] <= w[1]);
        ok.then_some(Self { values })
    }

    /// The sorted values.
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The population mean and standard deviation (numpy's `std`, ddof = 0).
    pub fn mean_std(&self) -> (f64, f64) {
        let n = self.values.len() as f64;
        if self.values.is_empty() {
            return (0.0, 0.0);
        }
        let mean = super::special::np_sum(&self.values) / n;
        let dev: Vec<f64> = self.values.iter().map(|x| (x - mean) * (x - mean)).collect();
        (mean, (super::special::np_sum(&dev) / n).sqrt())
    }
}

/// D = sup |F1 - F2| of two sorted samples, with ties handled as SciPy does
/// (both empirical CDFs evaluated right-continuously at every distinct value).
///
/// The merge keeps |i·n2 - j·n1| in integers and advances without
/// data-dependent branches, so it runs at memory speed; D is then computed
/// from the maximising counts as SciPy computes it, i/n1 - j/n2 in floats.
pub(crate) fn ks_statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    let (m1, m2) = (n1 as i128, n2 as i128);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut best, mut bi, mut bj) = (0i128, 0usize, 0usize);
    let mut v = f64::NEG_INFINITY;
    while i < n1 && j < n2 {
        let (x, y) = (a[i], b[j]);
        v = x.min(y);
        i += usize::from(x == v);
        j += usize::from(y == v);
        let next = a.get(i).copied().unwrap_or(f64::INFINITY).min(b.get(j).copied().unwrap_or(f64::INFINITY));
        if next != v {
            let diff = (i as i128 * m2 - j as i128 * m1).abs();
            if diff > best {
                (best, bi, bj) = (diff, i, j);
            }
        }
    }
    // One sample is used up; take the rest of the other's ties with the
    // last value, which closes the last distinct value.
    while i < n1 && a[i] <= v {
        i += 1;
    }
    while j < n2 && b[j] <= v {
        j += 1;
    }
    let diff = (i as i128 * m2 - j as i128 * m1).abs();
    if diff > best {
        (bi, bj) = (i, j);
    }
    (bi as f64 / n1 as f64 - bj as f64 / n2 as f64).abs()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The p-value of D for sample sizes n1 and n2, exact or asymptotic as SciPy
/// chooses; also returns D as SciPy reports it (rounded to a multiple of
/// 1/lcm in the exact case).
pub(crate) fn ks_p_value(d: f64, n1: usize, n2: usize) -> (f64, f64) {
    let (n1u, n2u) = (n1 as u64, n2 as u64);
    let g = gcd(n1u, n2u);
    if n1.max(n2) <= MAX_EXACT_N {
        let lcm = (n1u / g) * n2u;
        let h = (d * lcm as f64).round_ties_even() as u64;
        let d_exact = h as f64 / lcm as f64;
        if h == 0 {
            return (d_exact, 1.0);
        }
        let p = if n1 == n2 { prob_outside_square(n1u, h) } else { outer_prob_inside(n1u, n2u, g, h) };
        if (0.0..=1.0).contains(&p) {
            return (d_exact, p);
        }
        // SciPy falls back to the asymptotic distribution (with the rounded D).
        return (d_exact, asymptotic(d_exact, n1, n2));
    }
    (d, asymptotic(d, n1, n2))
}

fn asymptotic(d: f64, n1: usize, n2: usize) -> f64 {
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    kolmogn_sf(en.round_ties_even() as u64, d).clamp(0.0, 1.0)
}

/// The two-sided two-sample KS test of `reference` against `current`, as
/// SciPy's `ks_2samp(reference, current)` (method `auto`): exact p-value
/// when neither sample has more than 10 000 values, else the distribution of
/// D_n at n = round(n1 n2 / (n1 + n2)).
///
/// Ties are handled like SciPy. NaNs are dropped. An empty sample gives
/// `statistic = 0, p_value = 1` (no evidence of a difference) where SciPy
/// raises.
///
/// ```
/// use monitor_strategies::stats::ks_2samp;
///
/// let r = ks_2samp(&[1.0, 2.0, 3.0, 4.0], &[3.5, 4.5, 5.5, 6.5]);
/// assert_eq!(r.statistic, 0.75);
/// assert!((r.p_value - 0.2285714285714286).abs() < 1e-15);
/// ```
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> TestResult {
    let (r, c) = sort_both(reference, current);
    ks_2samp_sorted(r.as_slice(), c.as_slice())
}

/// Samples this large are sorted on two threads, one each: sorting is most
/// of the work, and the two sorts are independent.
const PARALLEL_SORT_LEN: usize = 1 << 16;

/// Both samples, sorted; on two threads when both are large.
fn sort_both(a: &[f64], b: &[f64]) -> (SortedSample, SortedSample) {
    if a.len().min(b.len()) < PARALLEL_SORT_LEN {
        return (SortedSample::new(a.to_vec()), SortedSample::new(b.to_vec()));
    }
    std::thread::scope(|scope| {
        let other = scope.spawn(|| SortedSample::new(b.to_vec()));
        let first = SortedSample::new(a.to_vec());
        // A panic in a sort would be a bug; sort on this thread then.
        let second = other.join().unwrap_or_else(|_| SortedSample::new(b.to_vec()));
        (first, second)
    })
}

/// [`ks_2samp`] on samples that are already sorted ascending (for example a
/// reference kept as a [`SortedSample`]): O(n1 + n2).
pub fn ks_2samp_sorted(reference: &[f64], current: &[f64]) -> TestResult {
    if reference.is_empty() || current.is_empty() {
        return TestResult { statistic: 0.0, p_value: 1.0 };
    }
    let d = ks_statistic_sorted(reference, current);
    let (statistic, p_value) = ks_p_value(d, reference.len(), current.len());
    TestResult { statistic, p_value }
}

#[cfg(test)]
mod parallel_tests {
    use super::*;
    use crate::synth::SplitMix64;

    /// Large samples are sorted on two threads: the same answer as sorting
    /// them one after the other.
    #[test]
    fn large_samples_give_the_same_result_sorted_in_parallel() {
        let mut rng = SplitMix64::new(3);
        let a: Vec<f64> = (0..100_000).map(|_| rng.normal()).collect();
        let b: Vec<f64> = (0..80_000).map(|_| rng.normal() + 0.01).collect();
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        assert_eq!(ks_2samp(&a, &b), ks_2samp_sorted(&sa, &sb));
    }
}
