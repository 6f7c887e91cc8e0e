//! Multivariate drift by PCA reconstruction error, as NannyML's
//! `DataReconstructionDriftCalculator`: fitted on a reference, categorical
//! features encoded by their frequency there, every feature standardised,
//! the principal components kept that explain a share of the variance
//! (65% by default); a row's error is the Euclidean distance between it
//! and its projection back from those components.

use monitor_core::record::Value;
use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

/// How one feature becomes a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// A number; a missing value takes the reference mean.
    Numeric {
        /// The reference mean (the imputed value).
        mean: f64,
    },
    /// A category, encoded by its share of the reference (NannyML's
    /// normalised count encoding); an unseen category is 0, a missing
    /// value takes the most frequent category's share.
    Categorical {
        /// (category, share of the reference), sorted by category.
        shares: Vec<(String, f64)>,
        /// The share of the most frequent category.
        mode: f64,
    },
}

/// A fitted reconstruction: encodings, standardisation and basis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconstruction {
    /// The features, in column order.
    pub features: Vec<String>,
    /// Each feature's encoding.
    pub encodings: Vec<Encoding>,
    /// Each encoded column's reference mean and standard deviation.
    pub scale: Vec<(f64, f64)>,
    /// The components kept, row-major: `components × features`.
    pub basis: Vec<f64>,
    /// Components kept.
    pub components: usize,
    /// The share of the variance they explain.
    pub explained: f64,
}

/// A reference column while it is collected: numbers, or categories as
/// indices into its dictionary; `None` when missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Column {
    /// A numeric feature.
    Numeric(Vec<Option<f64>>),
    /// A categorical feature: its dictionary (at most `max_categories`, the
    /// rest pooled in the last entry) and the rows' indices.
    Categorical(Vec<String>, Vec<Option<u32>>),
}

impl Column {
    /// A column whose type is that of its first value.
    pub fn for_value(value: &Value) -> Self {
        match value {
            Value::Number(_) => Self::Numeric(Vec::new()),
            Value::Category(_) => Self::Categorical(Vec::new(), Vec::new()),
        }
    }

    /// Adds a row's value (`None`, or a value of the other type: missing).
    pub fn push(&mut self, value: Option<&Value>, max_categories: usize) {
        match self {
            Self::Numeric(v) => v.push(match value {
                Some(Value::Number(x)) => Some(*x),
                _ => None,
            }),
            Self::Categorical(dict, v) => v.push(match value {
                Some(Value::Category(c)) => Some(match dict.iter().position(|d| d == c) {
                    Some(i) => i as u32,
                    None if dict.len() < max_categories => {
                        dict.push(c.clone());
                        (dict.len() - 1) as u32
                    }
                    None => (max_categories - 1) as u32,
                }),
                _ => None,
            }),
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Categorical(_, v) => v.len(),
        }
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Reconstruction {
    /// Fits on reference columns of equal length (at least two rows);
    /// keeps the fewest components whose explained variance exceeds
    /// `variance` (scikit-learn's `PCA(n_components=variance)`). Returns
    /// the fit and every reference row's error.
    pub fn fit(features: Vec<String>, columns: &[Column], variance: f64) -> Option<(Self, Vec<f64>)> {
        let rows = columns.first()?.len();
        let d = columns.len();
        if rows < 2 || d == 0 || columns.iter().any(|c| c.len() != rows) {
            return None;
        }
        let encodings: Vec<Encoding> = columns.iter().map(|c| encoding_of(c, rows)).collect();
        let mut data = DMatrix::<f64>::zeros(rows, d);
        for (j, (column, encoding)) in columns.iter().zip(&encodings).enumerate() {
            for i in 0..rows {
                data[(i, j)] = match (column, encoding) {
                    (Column::Numeric(v), Encoding::Numeric { mean }) => v[i].unwrap_or(*mean),
                    (Column::Categorical(dict, v), Encoding::Categorical { shares, mode }) => match v[i] {
                        Some(k) => share_of(shares, &dict[k as usize]),
                        None => *mode,
                    },
                    _ => 0.0,
                };
            }
        }
        let mut scale = Vec::with_capacity(d);
        for j in 0..d {
            let col = data.column(j);
            let mean = col.mean();
            let var = col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / rows as f64;
            // scikit-learn's StandardScaler leaves a constant column unscaled.
            let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
            scale.push((mean, sd));
            for x in data.column_mut(j).iter_mut() {
                *x = (*x - mean) / sd;
            }
        }
        let covariance = data.transpose() * &data / (rows as f64 - 1.0);
        let eigen = SymmetricEigen::new(covariance);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let total: f64 = eigen.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let (mut kept, mut explained) = (0, 0.0);
        for &i in &order {
            kept += 1;
            explained += eigen.eigenvalues[i].max(0.0) / total.max(f64::MIN_POSITIVE);
            if explained > variance {
                break;
            }
        }
        let mut basis = Vec::with_capacity(kept * d);
        for &i in &order[..kept] {
            basis.extend(eigen.eigenvectors.column(i).iter());
        }
        let fit = Self { features, encodings, scale, basis, components: kept, explained };
        let (mut row, mut residual) = (vec![0.0; d], vec![0.0; d]);
        let errors = (0..rows)
            .map(|i| {
                row.iter_mut().enumerate().for_each(|(j, x)| *x = data[(i, j)]);
                residual.copy_from_slice(&row);
                fit.residual_norm(&row, &mut residual)
            })
            .collect();
        Some((fit, errors))
    }

    /// The reconstruction error of a record's features; `scratch` is reused
    /// between calls to spare an allocation per record.
    pub fn error(&self, features: &std::collections::BTreeMap<String, Value>, scratch: &mut Vec<f64>) -> f64 {
        scratch.clear();
        for ((name, encoding), (mean, sd)) in self.features.iter().zip(&self.encodings).zip(&self.scale) {
            let x = match (encoding, features.get(name)) {
                (Encoding::Numeric { .. }, Some(Value::Number(x))) => *x,
                (Encoding::Numeric { mean }, _) => *mean,
                (Encoding::Categorical { shares, .. }, Some(Value::Category(c))) => share_of(shares, c),
                (Encoding::Categorical { mode, .. }, _) => *mode,
            };
            scratch.push((x - mean) / sd);
        }
        // The residual is a copy of the row next to it in `scratch`: no
        // allocation per record.
        let d = scratch.len();
        scratch.extend_from_within(..d);
        let (z, residual) = scratch.split_at_mut(d);
        self.residual_norm(z, residual)
    }

    /// ‖z − B'Bz‖ for a standardised row z (the reference mean of z is 0);
    /// `residual` holds a copy of z on entry.
    fn residual_norm(&self, z: &[f64], residual: &mut [f64]) -> f64 {
        let d = z.len();
        for c in 0..self.components {
            let b = &self.basis[c * d..(c + 1) * d];
            let p: f64 = b.iter().zip(z).map(|(a, x)| a * x).sum();
            residual.iter_mut().zip(b).for_each(|(r, a)| *r -= p * a);
        }
        residual.iter().map(|r| r * r).sum::<f64>().sqrt()
    }

    /// Bytes held by the fit.
    pub fn bytes(&self) -> usize {
        let categories: usize = self
            .encodings
            .iter()
            .map(|e| match e {
                Encoding::Numeric { .. } => 8,
                Encoding::Categorical { shares, .. } => shares.iter().map(|(c, _)| c.len() + 32).sum(),
            })
            .sum();
        self.features.iter().map(|f| f.len() + 24).sum::<usize>()
            + categories
            + 16 * self.scale.len()
            + 8 * self.basis.len()
    }
}

fn share_of(shares: &[(String, f64)], category: &str) -> f64 {
    shares.binary_search_by(|(c, _)| c.as_str().cmp(category)).map_or(0.0, |i| shares[i].1)
}

fn encoding_of(column: &Column, rows: usize) -> Encoding {
    match column {
        Column::Numeric(v) => {
            let present: Vec<f64> = v.iter().flatten().copied().collect();
            let mean = if present.is_empty() { 0.0 } else { present.iter().sum::<f64>() / present.len() as f64 };
            Encoding::Numeric { mean }
        }
        Column::Categorical(dict, v) => {
            let mut counts = vec![0usize; dict.len()];
            for k in v.iter().flatten() {
                counts[*k as usize] += 1;
            }
            // Missing values are imputed with the most frequent category, and counted as it.
            let mode = counts.iter().enumerate().max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i))).map(|(i, _)| i);
            if let Some(m) = mode {
                counts[m] += v.iter().filter(|k| k.is_none()).count();
            }
            let mut shares: Vec<(String, f64)> =
                dict.iter().zip(&counts).map(|(c, n)| (c.clone(), *n as f64 / rows as f64)).collect();
            shares.sort_by(|a, b| a.0.cmp(&b.0));
            let mode = mode.map_or(0.0, |m| counts[m] as f64 / rows as f64);
            Encoding::Categorical { shares, mode }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two perfectly correlated features: one component explains all the
    /// variance, and rows on the line reconstruct exactly while a row off
    /// it does not.
    #[test]
    fn a_line_is_one_component() {
        let xs: Vec<Option<f64>> = (0..100).map(|i| Some(f64::from(i))).collect();
        let ys: Vec<Option<f64>> = (0..100).map(|i| Some(2.0 * f64::from(i) + 1.0)).collect();
        let columns = vec![Column::Numeric(xs), Column::Numeric(ys)];
        let (fit, errors) = Reconstruction::fit(vec!["x".into(), "y".into()], &columns, 0.65).unwrap();
        assert_eq!(fit.components, 1);
        assert!((fit.explained - 1.0).abs() < 1e-9);
        assert!(errors.iter().all(|e| *e < 1e-9));
        let mut off = std::collections::BTreeMap::new();
        off.insert("x".to_owned(), Value::Number(0.0));
        off.insert("y".to_owned(), Value::Number(199.0));
        assert!(fit.error(&off, &mut Vec::new()) > 1.0);
    }
}
