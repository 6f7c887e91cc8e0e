//! `unseen_categories`: the share of a categorical signal's values that
//! the reference never had, against the share of unseen values a sample
//! like the reference would show. That share is the Good–Turing estimate of
//! the reference's missing mass (Good 1953): its categories seen once, as
//! a share of its samples, plus what it held beyond `max_categories`. So a
//! feature with a long tail of rare values (ids, cities) does not alarm,
//! and a new category at a few percent does.

use std::collections::BTreeMap;

use monitor_core::Error;
use monitor_core::detector::Detector;
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use serde::{Deserialize, Serialize};

use super::distribution::{default_alpha, default_window};
use super::reference::{OTHER, count_category};
use super::reference::{ReferenceData, ReferenceFile, file_spec};
use super::share::{Check, ShareDetector, ShareParams, default_share_effect};
use super::window::WindowSize;
use crate::stats::Correction;

/// Config of the `unseen_categories` detector: `{ kind = "unseen_categories" }`,
/// or with any of the keys below. It is not set up on numeric signals, and
/// numbers in a categorical one are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnseenCategoriesConfig {
    /// The first `reference` samples of each model version are the
    /// reference (default: ten windows).
    #[serde(default)]
    pub reference: Option<usize>,
    /// A file of NDJSON records whose samples of the signal are the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_file: Option<ReferenceFile>,
    /// Current window: samples (default 1000), or a span of event time (`"1h"`).
    #[serde(default = "default_window")]
    pub window: WindowSize,
    /// Evaluate every `step` samples; absent means tumbling. Count windows only.
    #[serde(default)]
    pub step: Option<usize>,
    /// Significance of the binomial test (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How the alpha is shared by the tests of a model version (default `bonferroni`).
    #[serde(default)]
    pub correction: Correction,
    /// The smallest Cohen's h between the window's share of unseen values
    /// and the expected share that is drift (default 0.2, Cohen's small effect).
    #[serde(default = "default_share_effect")]
    pub min_effect: f64,
    /// Distinct categories of the reference remembered (default 100); the
    /// rest count as unseen, and in the expected share.
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
}

fn default_max_categories() -> usize {
    100
}

impl Default for UnseenCategoriesConfig {
    fn default() -> Self {
        Self {
            reference: None,
            reference_file: None,
            window: default_window(),
            step: None,
            alpha: default_alpha(),
            correction: Correction::default(),
            min_effect: default_share_effect(),
            max_categories: default_max_categories(),
        }
    }
}

impl UnseenCategoriesConfig {
    fn share_params(&self) -> ShareParams {
        ShareParams {
            reference: self.reference,
            no_reference: false,
            window: self.window,
            step: self.step,
            alpha: self.alpha,
            min_effect: self.min_effect,
        }
    }

    /// The reference's categories, at most `max_categories` of the longest name.
    fn reference_bytes(&self) -> usize {
        self.max_categories * (64 + monitor_core::record::MAX_TEXT_BYTES)
    }
}

/// The reference's categories, and the share of unseen values expected.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Unseen {
    max_categories: usize,
    counts: BTreeMap<String, u64>,
    expected: f64,
}

impl Unseen {
    fn new(max_categories: usize) -> Self {
        Self { max_categories, ..Self::default() }
    }
}

impl Check for Unseen {
    const KIND: &'static str = "unseen_categories";

    fn learn(&mut self, value: SignalValue<'_>) -> bool {
        let Some(c) = value.as_category() else { return false };
        count_category(&mut self.counts, c, self.max_categories);
        true
    }

    fn freeze(&mut self) {
        let n: u64 = self.counts.values().sum();
        let once = self.counts.iter().filter(|&(name, &k)| k == 1 && name != OTHER).count() as u64;
        let beyond = self.counts.get(OTHER).copied().unwrap_or(0);
        self.expected = (once + beyond) as f64 / n.max(1) as f64;
        self.counts.remove(OTHER);
    }

    fn expected(&self) -> f64 {
        self.expected
    }

    fn hit(&self, value: SignalValue<'_>) -> Option<bool> {
        value.as_category().map(|c| !self.counts.contains_key(c))
    }

    fn with_reference_file(&self, data: &ReferenceData, signal: &str) -> Option<Self> {
        let s = data.signal(signal)?;
        if s.categories.is_empty() {
            return None;
        }
        let mut check = Self::new(self.max_categories);
        for (name, &k) in &s.categories {
            if check.counts.len() < self.max_categories {
                check.counts.insert(name.clone(), k);
            } else {
                *check.counts.entry(OTHER.to_owned()).or_default() += k;
            }
        }
        check.freeze();
        Some(check)
    }

    fn what(&self) -> String {
        "values the reference never had".to_owned()
    }

    fn reset(&mut self) {
        *self = Self::new(self.max_categories);
    }
}

impl DetectorSpec for UnseenCategoriesConfig {
    fn kind(&self) -> &str {
        "unseen_categories"
    }

    fn accepts_categories(&self) -> bool {
        true
    }

    fn accepts_numbers(&self) -> bool {
        false
    }

    fn state_bytes(&self) -> usize {
        self.share_params().state_bytes() + self.reference_bytes()
    }

    fn time_window(&self) -> Option<std::time::Duration> {
        self.window.time().map(|d| d.as_std())
    }

    fn validate(&self) -> Result<(), Error> {
        self.share_params().validate()?;
        super::distribution::validate_max_categories(self.max_categories)?;
        Ok(())
    }

    fn resolve_paths(&mut self, ctx: &BuildContext) {
        file_spec::resolve(&mut self.reference_file, ctx);
    }

    fn build(&self, signal: &str) -> Box<dyn Detector> {
        Box::new(
            ShareDetector::new(Unseen::new(self.max_categories), &self.share_params())
                .with_file(self.reference_file.as_ref(), signal),
        )
    }

    fn params(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn p_value_family(&self) -> Option<(Correction, f64)> {
        Some((self.correction, self.alpha))
    }

    fn min_effect(&self) -> Option<f64> {
        Some(self.min_effect)
    }

    fn load_references(&self) -> Result<(), Error> {
        file_spec::load(self.reference_file.as_ref())
    }

    fn reference_signals(&self) -> Result<Option<Vec<String>>, Error> {
        file_spec::signals(self.reference_file.as_ref())
    }
}
