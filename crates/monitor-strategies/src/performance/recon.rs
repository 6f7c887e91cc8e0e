//! The per-version state of `[[reconstruction]]`: the reference rows while
//! they are collected, then the fit and the current window's errors.

use monitor_core::record::Record;
use monitor_core::signal::Signal;
use serde::{Deserialize, Serialize};

use super::Emitted;
use super::config::{MAX_FEATURES, ReconstructionSpec};
use super::pca::{Column, Reconstruction};

/// The name of the signal, after `multivariate.`.
pub const RECONSTRUCTION_ERROR: &str = "reconstruction_error";

/// The state of one model version under a [`ReconstructionSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReconState {
    /// The features, fixed by the spec or by the first record.
    features: Vec<String>,
    /// The reference columns while collected; a column's type is that of
    /// its first value.
    columns: Vec<Option<Column>>,
    collected: usize,
    pub(crate) fitted: Option<Reconstruction>,
    /// The mean error of each reference window, for reports.
    pub(crate) reference_errors: Vec<f64>,
    /// The current window: its index, rows, Σ error.
    window: (u64, u64, f64),
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl ReconState {
    pub(crate) fn new(spec: &ReconstructionSpec) -> Self {
        let features = spec.features.clone().unwrap_or_default();
        Self {
            columns: vec![None; features.len()],
            features,
            collected: 0,
            fitted: None,
            reference_errors: Vec::new(),
            window: (0, 0, 0.0),
            scratch: Vec::new(),
        }
    }

    /// Takes a record with features; values of windows that close go to `out`.
    pub(crate) fn observe(&mut self, spec: &ReconstructionSpec, record: &Record, out: &mut Vec<Emitted>) {
        if record.features.is_empty() {
            return;
        }
        if self.features.is_empty() {
            self.features = record.features.keys().take(MAX_FEATURES.min(64)).cloned().collect();
            self.columns = vec![None; self.features.len()];
        }
        let Some(fit) = &self.fitted else {
            self.collect(spec, record, out);
            return;
        };
        let error = fit.error(&record.features, &mut self.scratch);
        self.window.1 += 1;
        self.window.2 += error;
        if self.window.1 as usize >= spec.window {
            out.push(Emitted {
                signal: Signal::Multivariate(RECONSTRUCTION_ERROR.to_owned()),
                value: self.window.2 / self.window.1 as f64,
                window: self.window.0,
                band: None,
            });
            self.window = (self.window.0 + 1, 0, 0.0);
        }
    }

    fn collect(&mut self, spec: &ReconstructionSpec, record: &Record, out: &mut Vec<Emitted>) {
        for (name, column) in self.features.iter().zip(&mut self.columns) {
            let value = record.features.get(name);
            if column.is_none() {
                let Some(v) = value else { continue };
                let mut c = Column::for_value(v);
                for _ in 0..self.collected {
                    c.push(None, spec.max_categories);
                }
                *column = Some(c);
            }
            if let Some(c) = column {
                c.push(value, spec.max_categories);
            }
        }
        self.collected += 1;
        if self.collected < spec.reference() {
            return;
        }
        let (features, columns): (Vec<String>, Vec<Column>) = self
            .features
            .iter()
            .cloned()
            .zip(std::mem::take(&mut self.columns))
            .filter_map(|(f, c)| c.map(|c| (f, c)))
            .unzip();
        self.collected = 0;
        let Some((fit, errors)) = Reconstruction::fit(features.clone(), &columns, spec.variance) else {
            tracing::warn!("the reconstruction's reference has fewer than two rows or no feature; collecting again");
            self.columns = vec![None; self.features.len()];
            return;
        };
        for (k, chunk) in errors.chunks(spec.window).enumerate() {
            if chunk.len() < spec.window {
                break;
            }
            let mean = chunk.iter().sum::<f64>() / chunk.len() as f64;
            self.reference_errors.push(mean);
            out.push(Emitted {
                signal: Signal::Multivariate(RECONSTRUCTION_ERROR.to_owned()),
                value: mean,
                window: k as u64,
                band: None,
            });
        }
        self.window = (self.reference_errors.len() as u64, 0, 0.0);
        self.features = features;
        self.fitted = Some(fit);
    }
}
