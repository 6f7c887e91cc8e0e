//! The current window of a two-sample detector, numeric or categorical.

use std::collections::{BTreeMap, VecDeque};

use monitor_core::window::CategoryCounts;
use serde::{Deserialize, Serialize};

use crate::synth::SplitMix64;

/// The current window of numeric samples: the last `window` samples, kept
/// sorted when the detector slides and needs order statistics; or, for an
/// event-time window, a uniform sample of at most `max_samples` of it
/// (Vitter's algorithm R) with exact bin counts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(super) struct NumericWindow {
    pub(super) fifo: VecDeque<f64>,
    /// Maintained incrementally (O(window) memmove per sample) when sliding;
    /// cheaper than sorting the window at every step.
    pub(super) sorted: Option<Vec<f64>>,
    /// Samples per reference bin, for binned tests.
    pub(super) counts: Vec<u64>,
    /// Samples in the window (more than `fifo` holds once a reservoir is full).
    pub(super) total: u64,
    /// The generator of an event-time window's reservoir.
    #[serde(default)]
    pub(super) rng: Option<SplitMix64>,
}

impl NumericWindow {
    pub(super) fn clear(&mut self) {
        self.fifo.clear();
        if let Some(s) = &mut self.sorted {
            s.clear();
        }
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

/// The current window of categorical samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum CategoryWindow {
    /// The last `window` samples.
    Sliding(CategoryCounts),
    /// An event-time window: counts per category, at most `max_categories`.
    Tumbling { counts: BTreeMap<String, u64>, total: u64 },
}

impl CategoryWindow {
    pub(super) fn total(&self) -> u64 {
        match self {
            Self::Sliding(c) => c.total(),
            Self::Tumbling { total, .. } => *total,
        }
    }

    pub(super) fn count(&self, name: &str) -> u64 {
        match self {
            Self::Sliding(c) => c.count(name),
            Self::Tumbling { counts, .. } => counts.get(name).copied().unwrap_or(0),
        }
    }

    pub(super) fn pairs(&self) -> Vec<(&str, u64)> {
        match self {
            Self::Sliding(c) => c.iter().collect(),
            Self::Tumbling { counts, .. } => counts.iter().map(|(n, &c)| (n.as_str(), c)).collect(),
        }
    }
}
