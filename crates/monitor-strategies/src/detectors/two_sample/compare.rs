//! A two-sample detector's reference and current window summarised for a
//! report's chart ([`Comparison`]).

use monitor_core::comparison::Comparison;
use monitor_core::detector::{Assessment, DriftStatus};

use super::{DistributionDetector, ReferenceState};
use crate::stats::sort_f64;

impl DistributionDetector {
    /// The reference against the current window, as it stands.
    pub(super) fn comparison_now(&self) -> Option<Comparison> {
        match &self.reference {
            ReferenceState::Numeric(r) => {
                let reference = r.sorted.as_slice();
                if let Some(s) = self.numeric.sorted.as_ref().filter(|s| !s.is_empty()) {
                    return Comparison::numeric(reference, s);
                }
                if !self.numeric.fifo.is_empty() {
                    let mut current: Vec<f64> = self.numeric.fifo.iter().copied().collect();
                    sort_f64(&mut current);
                    return Comparison::numeric(reference, &current);
                }
                let bins = r.bins.as_ref()?;
                let (first, last) = (*reference.first()?, *reference.last()?);
                let mut edges = Vec::with_capacity(bins.edges().len() + 2);
                edges.push(first.min(bins.edges().first().copied().unwrap_or(first)));
                edges.extend_from_slice(bins.edges());
                edges.push(last.max(bins.edges().last().copied().unwrap_or(last)));
                Some(Comparison::Binned {
                    edges,
                    reference: bins.reference_counts().to_vec(),
                    current: self.numeric.counts.clone(),
                })
            }
            ReferenceState::Categorical(r) => {
                let current = self.categories.as_ref()?;
                let mut pairs: Vec<(&str, u64, u64)> =
                    r.counts.iter().map(|(n, &c)| (n.as_str(), c, current.count(n))).collect();
                pairs.extend(
                    current
                        .pairs()
                        .into_iter()
                        .filter(|(n, c)| *c > 0 && !r.counts.contains_key(*n))
                        .map(|(n, c)| (n, 0, c)),
                );
                Some(Comparison::categorical(pairs))
            }
            ReferenceState::Collecting { .. } => None,
        }
    }

    /// Keeps the comparison of an event-time window about to be cleared,
    /// when its verdict was drift (only then may a report ask for it).
    pub(super) fn keep_comparison(&mut self, verdict: Option<&Assessment>) {
        self.compared = verdict.filter(|a| a.status == DriftStatus::Drift).and_then(|_| self.comparison_now());
    }
}
