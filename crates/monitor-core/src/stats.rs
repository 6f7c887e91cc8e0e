//! Streaming statistics that windows are built from.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Count, mean and variance of a multiset of numbers, with O(1) insertion and
/// removal (Welford's update and its inverse).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// No samples.
    pub const fn new() -> Self {
        Self { count: 0, mean: 0.0, m2: 0.0 }
    }

    /// Adds `x`.
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Removes `x`, which must have been added before.
    ///
    /// Rounding leaves a residue of the order of `f64::EPSILON * x²` in the
    /// variance, which matters once samples much larger than the rest have
    /// been removed; the windows recompute their moments to shed it.
    pub fn remove(&mut self, x: f64) {
        match self.count {
            0 => {}
            1 => *self = Self::new(),
            n => {
                let n_after = (n - 1) as f64;
                let mean_after = (self.mean * n as f64 - x) / n_after;
                self.m2 -= (x - self.mean) * (x - mean_after);
                self.mean = mean_after;
                self.count -= 1;
                // Rounding can push M2 a hair below zero once the window is constant.
                if self.m2 < 0.0 {
                    self.m2 = 0.0;
                }
            }
        }
    }

    /// Number of samples.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The mean, or `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then_some(self.mean)
    }

    /// The population variance (divides by n), or `None` when empty.
    pub fn variance(&self) -> Option<f64> {
        (self.count > 0).then(|| self.m2 / self.count as f64)
    }

    /// The sample variance (divides by n - 1), or `None` with fewer than two samples.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.count > 1).then(|| self.m2 / (self.count - 1) as f64)
    }

    /// The population standard deviation, or `None` when empty.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// Minimum and maximum of a FIFO window, exact under eviction, amortised O(1)
/// per operation (monotonic deques).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Extrema {
    next: u64,
    front: u64,
    min: VecDeque<(u64, f64)>,
    max: VecDeque<(u64, f64)>,
}

impl Extrema {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `x` at the back of the window.
    pub fn push_back(&mut self, x: f64) {
        let i = self.next;
        self.next += 1;
        while self.min.back().is_some_and(|&(_, m)| m >= x) {
            self.min.pop_back();
        }
        self.min.push_back((i, x));
        while self.max.back().is_some_and(|&(_, m)| m <= x) {
            self.max.pop_back();
        }
        self.max.push_back((i, x));
    }

    /// Inserts `x` at position `pos` of the window (0 is the oldest), for a
    /// sample that arrives out of order. Costs O(samples after `pos`) plus the
    /// entries `x` supersedes.
    pub(crate) fn insert(&mut self, pos: usize, x: f64) {
        let at = self.front + pos as u64;
        if at >= self.next {
            return self.push_back(x);
        }
        self.next += 1;
        insert_monotone(&mut self.min, at, x, |kept, new| kept >= new);
        insert_monotone(&mut self.max, at, x, |kept, new| kept <= new);
    }

    /// Evicts the oldest sample.
    pub fn pop_front(&mut self) {
        if self.front == self.next {
            return;
        }
        let i = self.front;
        self.front += 1;
        if self.min.front().is_some_and(|&(j, _)| j == i) {
            self.min.pop_front();
        }
        if self.max.front().is_some_and(|&(j, _)| j == i) {
            self.max.pop_front();
        }
    }

    /// The minimum, or `None` when empty.
    pub fn min(&self) -> Option<f64> {
        self.min.front().map(|&(_, x)| x)
    }

    /// The maximum, or `None` when empty.
    pub fn max(&self) -> Option<f64> {
        self.max.front().map(|&(_, x)| x)
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

/// Inserts `x` at window index `at` into a monotonic deque, where an entry
/// stays only while no later sample `superseded` it, as `push_back` keeps it.
fn insert_monotone(deque: &mut VecDeque<(u64, f64)>, at: u64, x: f64, superseded: impl Fn(f64, f64) -> bool) {
    // Entries from `at` on move one place back.
    let split = deque.iter().rposition(|&(j, _)| j < at).map_or(0, |i| i + 1);
    let mut later = deque.split_off(split);
    later.iter_mut().for_each(|e| e.0 += 1);
    while deque.back().is_some_and(|&(_, m)| superseded(m, x)) {
        deque.pop_back();
    }
    // The first later entry is the extreme of everything after `x`.
    if later.front().is_none_or(|&(_, y)| !superseded(x, y)) {
        deque.push_back((at, x));
    }
    deque.append(&mut later);
}

/// An exponentially weighted moving average, z = alpha·x + (1 − alpha)·z,
/// starting at the first sample: pandas' `ewm(alpha=..., adjust=False).mean()`.
///
/// ```
/// use monitor_core::stats::Ewma;
///
/// let mut z = Ewma::new(0.5);
/// for x in [1.0, 3.0, 3.0] {
///     z.add(x);
/// }
/// assert_eq!(z.value(), Some(2.5));
/// // A half-life of h samples: a sample's weight halves every h samples.
/// assert!((Ewma::from_half_life(1.0).alpha() - 0.5).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Ewma {
    /// An average that weighs the newest sample `alpha`, in (0, 1].
    pub const fn new(alpha: f64) -> Self {
        Self { alpha, value: None }
    }

    /// An average whose weights halve every `half_life` samples:
    /// alpha = 1 − exp(−ln 2 / half_life), as pandas' `halflife`.
    pub fn from_half_life(half_life: f64) -> Self {
        Self::new(1.0 - (-std::f64::consts::LN_2 / half_life).exp())
    }

    /// The weight of the newest sample.
    pub const fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Adds `x`.
    pub fn add(&mut self, x: f64) {
        self.value = Some(match self.value {
            None => x,
            Some(z) => self.alpha.mul_add(x - z, z),
        });
    }

    /// The average, or `None` before the first sample.
    pub const fn value(&self) -> Option<f64> {
        self.value
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.value = None;
    }
}

/// The exact quantile of `values` by the nearest-rank rule used across
/// model-monitor: the element at rank `floor(q * (n - 1))` of the sorted values.
/// Reorders `values`. `None` when empty or `q` is outside `[0, 1]`.
pub fn exact_quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = quantile_rank(values.len() as u64, q) as usize;
    let (_, x, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*x)
}

/// The 0-based rank of quantile `q` among `n` sorted samples.
pub(crate) fn quantile_rank(n: u64, q: f64) -> u64 {
    ((q * (n - 1) as f64).floor() as u64).min(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_a_textbook_example() {
        // Population variance of 2, 4, 4, 4, 5, 5, 7, 9 is 4 (std dev 2).
        let mut m = Moments::new();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            m.add(x);
        }
        assert_eq!(m.mean(), Some(5.0));
        assert_eq!(m.variance(), Some(4.0));
        m.remove(2.0);
        m.remove(4.0);
        let mean = m.mean().unwrap_or_default();
        assert!((mean - 34.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn empty_statistics_are_none() {
        let m = Moments::new();
        assert_eq!((m.mean(), m.variance(), m.sample_variance()), (None, None, None));
        let e = Extrema::new();
        assert_eq!((e.min(), e.max()), (None, None));
        assert_eq!(exact_quantile(&mut [], 0.5), None);
    }
}
