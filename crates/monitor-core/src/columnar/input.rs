//! `[input]`: how the columns of a columnar file (Parquet) map onto the
//! record contract. Parsed whether or not Parquet support is built, so that
//! one config file serves every build.

use crate::error::Error;
use crate::record::MAX_NAME_BYTES;
use serde::{Deserialize, Serialize};

/// The most columns a file may name as features or metrics in `[input]`.
pub const MAX_MAPPED_COLUMNS: usize = 4096;

/// `[input]`: how the columns of a Parquet file map onto a record.
///
/// Without it, the columns named as the record's fields are read: `model`,
/// `version`, `ts`, `id`, `latency_ms`, `prediction`, `label`, and every
/// `features.<name>` and `metrics.<name>` column. Each key below names
/// another column for that field; `default_model` gives every row the same
/// model when the file has no model column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputColumns {
    /// The column of the model's name.
    pub model: Option<String>,
    /// The model of every row, for a file without a model column.
    pub default_model: Option<String>,
    /// The column of the model's version.
    pub version: Option<String>,
    /// The column of the event time: a timestamp, or RFC 3339 text.
    pub ts: Option<String>,
    /// The column of the request id.
    pub id: Option<String>,
    /// The column of the latency in milliseconds.
    pub latency_ms: Option<String>,
    /// The column of the prediction.
    pub prediction: Option<String>,
    /// The column of the label.
    pub label: Option<String>,
    /// Columns read as features, under their own names.
    #[serde(default)]
    pub features: Vec<String>,
    /// Columns read as quality metrics, under their own names.
    #[serde(default)]
    pub metrics: Vec<String>,
}

impl InputColumns {
    /// Checks the sizes: names within [`MAX_NAME_BYTES`], at most
    /// [`MAX_MAPPED_COLUMNS`] feature and metric columns.
    pub fn validate(&self) -> Result<(), Error> {
        if self.features.len() + self.metrics.len() > MAX_MAPPED_COLUMNS {
            return Err(Error::config(
                "input.features",
                format!(
                    "at most {MAX_MAPPED_COLUMNS} feature and metric columns (got {})",
                    self.features.len() + self.metrics.len()
                ),
            ));
        }
        let singles = [
            ("input.model", &self.model),
            ("input.default_model", &self.default_model),
            ("input.version", &self.version),
            ("input.ts", &self.ts),
            ("input.id", &self.id),
            ("input.latency_ms", &self.latency_ms),
            ("input.prediction", &self.prediction),
            ("input.label", &self.label),
        ];
        for (key, name) in singles {
            if let Some(name) = name {
                check_name(key, name)?;
            }
        }
        for (key, list) in [("input.features", &self.features), ("input.metrics", &self.metrics)] {
            for name in list {
                check_name(key, name)?;
            }
        }
        if self.model.is_some() && self.default_model.is_some() {
            return Err(Error::config(
                "input.default_model",
                "give either `model` (a column) or `default_model`, not both",
            ));
        }
        Ok(())
    }
}

pub(crate) fn check_name(key: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(Error::config(key, format!("must be 1 to {MAX_NAME_BYTES} bytes (got {})", name.len())));
    }
    Ok(())
}
