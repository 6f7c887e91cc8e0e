//! A two-sample detector's reference and current window side by side,
//! summarised in a few dozen numbers for a chart: quantiles for a numeric
//! signal, counts per category for a categorical one.
//!
//! A detector gives one through [`Detector::compare`](crate::detector::Detector::compare)
//! when a report asks, typically at the moment a finding fires. The summary
//! is bounded whatever the window size, so that a report carries aggregates,
//! never raw samples.

use serde::{Deserialize, Serialize};

/// Quantiles taken of a numeric sample: enough for an ECDF that is exact
/// to within 1/64 of the sample.
pub const QUANTILES: usize = 65;

/// Categories listed in a categorical comparison; the rest are summed into
/// one `other` entry.
pub const MAX_COMPARED_CATEGORIES: usize = 24;

/// The reference and the current window of a two-sample test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Comparison {
    /// A numeric signal: both samples as quantiles at `i / (QUANTILES - 1)`.
    Numeric {
        /// Samples in the reference.
        reference_n: u64,
        /// The reference's quantiles, ascending.
        reference: Vec<f64>,
        /// Samples in the current window.
        current_n: u64,
        /// The current window's quantiles, ascending.
        current: Vec<f64>,
    },
    /// A numeric signal known only by bin counts: bin edges (one more than
    /// the counts) and the samples per bin on each side.
    Binned {
        /// Edges of the bins, ascending; the outer bins are open-ended.
        edges: Vec<f64>,
        /// Reference samples per bin.
        reference: Vec<u64>,
        /// Current samples per bin.
        current: Vec<u64>,
    },
    /// A categorical signal: (category, reference count, current count).
    Categorical {
        /// The most frequent categories of either side, then `other`.
        categories: Vec<(String, u64, u64)>,
    },
}

impl Comparison {
    /// A numeric comparison of two sorted samples; `None` when either is empty.
    pub fn numeric(reference: &[f64], current: &[f64]) -> Option<Self> {
        if reference.is_empty() || current.is_empty() {
            return None;
        }
        Some(Self::Numeric {
            reference_n: reference.len() as u64,
            reference: quantiles(reference),
            current_n: current.len() as u64,
            current: quantiles(current),
        })
    }

    /// A categorical comparison of two count tables, kept to the
    /// [`MAX_COMPARED_CATEGORIES`] largest (by the larger share on either side).
    pub fn categorical<'a>(pairs: impl IntoIterator<Item = (&'a str, u64, u64)>) -> Self {
        let mut all: Vec<(String, u64, u64)> = pairs.into_iter().map(|(n, r, c)| (n.to_owned(), r, c)).collect();
        let (rt, ct) = all.iter().fold((0u64, 0u64), |(r, c), x| (r + x.1, c + x.2));
        let share = |x: &(String, u64, u64)| (x.1 as f64 / rt.max(1) as f64).max(x.2 as f64 / ct.max(1) as f64);
        all.sort_by(|a, b| share(b).total_cmp(&share(a)).then_with(|| a.0.cmp(&b.0)));
        if all.len() > MAX_COMPARED_CATEGORIES {
            let rest = all.split_off(MAX_COMPARED_CATEGORIES - 1);
            let (r, c) = rest.iter().fold((0, 0), |(r, c), x| (r + x.1, c + x.2));
            all.push(("(other)".to_owned(), r, c));
        }
        Self::Categorical { categories: all }
    }
}

/// [`QUANTILES`] quantiles of a sorted, non-empty sample (the nearest rank
/// below each probability).
fn quantiles(sorted: &[f64]) -> Vec<f64> {
    let last = sorted.len() - 1;
    (0..QUANTILES).map(|i| sorted[(i * last + (QUANTILES - 1) / 2) / (QUANTILES - 1)]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_quantiles_span_the_sample() {
        let reference: Vec<f64> = (0..1000).map(f64::from).collect();
        let current = [5.0];
        let Some(Comparison::Numeric { reference: r, current: c, reference_n, current_n }) =
            Comparison::numeric(&reference, &current)
        else {
            panic!("expected a numeric comparison")
        };
        assert_eq!((reference_n, current_n), (1000, 1));
        assert_eq!((r.len(), r[0], r[QUANTILES - 1], r[32]), (QUANTILES, 0.0, 999.0, 500.0));
        assert!(c.iter().all(|&x| x == 5.0));
        assert!(Comparison::numeric(&[], &current).is_none());
    }

    #[test]
    fn categories_are_capped_with_the_rest_as_other() {
        let names: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
        let pairs = names.iter().enumerate().map(|(i, n)| (n.as_str(), 100 - i as u64, 1));
        let Comparison::Categorical { categories } = Comparison::categorical(pairs) else { panic!("categorical") };
        assert_eq!(categories.len(), MAX_COMPARED_CATEGORIES);
        assert_eq!(categories[0].0, "c00");
        let other = &categories[MAX_COMPARED_CATEGORIES - 1];
        assert_eq!(other.0, "(other)");
        assert_eq!(other.2, 40 - (MAX_COMPARED_CATEGORIES as u64 - 1));
    }
}
