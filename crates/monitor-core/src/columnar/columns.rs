//! Which Parquet column feeds which field of a record: the plan that the
//! `[input]` table makes of a file's schema.

use std::collections::BTreeSet;

use crate::error::Error;
use arrow_schema::{DataType, Schema, TimeUnit};

use super::input::{InputColumns, MAX_MAPPED_COLUMNS, check_name};

/// The field of a record a column fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Model,
    Version,
    Ts,
    Id,
    LatencyMs,
    Prediction,
    Label,
    Feature(String),
    Metric(String),
}

impl Role {
    fn accepts(&self, dt: &DataType) -> bool {
        let number = dt.is_numeric()
            && !matches!(
                dt,
                DataType::Float16
                    | DataType::Decimal32(..)
                    | DataType::Decimal64(..)
                    | DataType::Decimal128(..)
                    | DataType::Decimal256(..)
            );
        let text = is_text(dt);
        match self {
            Self::Model => text,
            Self::Version | Self::Id => text || dt.is_integer(),
            Self::Ts => text || matches!(dt, DataType::Timestamp(..)),
            Self::LatencyMs | Self::Metric(_) => number,
            Self::Prediction | Self::Label | Self::Feature(_) => number || text || *dt == DataType::Boolean,
        }
    }

    fn expected(&self) -> &'static str {
        match self {
            Self::Model => "text",
            Self::Version | Self::Id => "text or an integer",
            Self::Ts => "a timestamp or RFC 3339 text",
            Self::LatencyMs | Self::Metric(_) => "a number",
            Self::Prediction | Self::Label | Self::Feature(_) => "a number, text or a boolean",
        }
    }
}

/// Text: UTF-8 strings, or a dictionary of them (pandas' categoricals).
pub(crate) fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(key, value) => key.is_integer() && matches!(**value, DataType::Utf8 | DataType::LargeUtf8),
        _ => false,
    }
}

/// The unit of a timestamp column, to turn its integers into instants.
pub(crate) fn time_unit(dt: &DataType) -> Option<TimeUnit> {
    match dt {
        DataType::Timestamp(unit, _) => Some(*unit),
        _ => None,
    }
}

/// What each column of a file is read as, in the file's column order;
/// `None` for a column that is not read.
#[derive(Debug, Clone)]
pub(crate) struct ColumnPlan {
    pub(crate) roles: Vec<Option<Role>>,
    /// Columns not read, for a note.
    pub(crate) unread: Vec<String>,
}

impl ColumnPlan {
    /// Maps `schema` with `columns`; an error names the column and what it
    /// should hold, or the mapped column the file lacks.
    pub(crate) fn new(schema: &Schema, columns: &InputColumns, path: &str) -> Result<Self, Error> {
        let mut wanted: Vec<(String, Role)> = Vec::new();
        let singles = [
            (&columns.model, Role::Model),
            (&columns.version, Role::Version),
            (&columns.ts, Role::Ts),
            (&columns.id, Role::Id),
            (&columns.latency_ms, Role::LatencyMs),
            (&columns.prediction, Role::Prediction),
            (&columns.label, Role::Label),
        ];
        for (name, role) in singles {
            if let Some(name) = name {
                wanted.push((name.clone(), role));
            }
        }
        wanted.extend(columns.features.iter().map(|n| (n.clone(), Role::Feature(n.clone()))));
        wanted.extend(columns.metrics.iter().map(|n| (n.clone(), Role::Metric(n.clone()))));
        let mapped: BTreeSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
        for (name, _) in &wanted {
            if schema.field_with_name(name).is_err() {
                return Err(Error::config(
                    "input",
                    format!("{path} has no column `{name}` (its columns: {})", column_list(schema)),
                ));
            }
        }
        let mut roles = Vec::with_capacity(schema.fields().len());
        let mut unread = Vec::new();
        let mut taken: BTreeSet<&'static str> = BTreeSet::new();
        for field in schema.fields() {
            let name = field.name().as_str();
            let role = match wanted.iter().find(|(n, _)| n == name) {
                Some((_, role)) => Some(role.clone()),
                None if mapped.contains(name) => None,
                None => default_role(name, columns),
            };
            let Some(role) = role else {
                unread.push(name.to_owned());
                roles.push(None);
                continue;
            };
            if !role.accepts(field.data_type()) {
                return Err(Error::config(
                    "input",
                    format!(
                        "{path}: column `{name}` holds {}, but as {} it must hold {}",
                        field.data_type(),
                        describe(&role),
                        role.expected()
                    ),
                ));
            }
            if let Some(single) = single_name(&role) {
                if !taken.insert(single) {
                    return Err(Error::config("input", format!("{path}: two columns are read as `{single}`")));
                }
            }
            if let Role::Feature(n) | Role::Metric(n) = &role {
                check_name(&format!("column `{name}`"), n)?;
            }
            roles.push(Some(role));
        }
        if !taken.contains("model") && columns.default_model.is_none() {
            return Err(Error::config(
                "input.model",
                format!(
                    "{path} has no `model` column: name it with `[input] model = \"<column>\"`, or give every row one model with `[input] default_model = \"<name>\"` (its columns: {})",
                    column_list(schema)
                ),
            ));
        }
        if roles.iter().flatten().filter(|r| matches!(r, Role::Feature(_) | Role::Metric(_))).count()
            > MAX_MAPPED_COLUMNS
        {
            return Err(Error::config(
                "input",
                format!("{path}: more than {MAX_MAPPED_COLUMNS} feature and metric columns"),
            ));
        }
        Ok(Self { roles, unread })
    }
}

/// The role a column has by its name alone, when `[input]` does not map
/// another column onto that field.
fn default_role(name: &str, columns: &InputColumns) -> Option<Role> {
    let free = |mapped: &Option<String>| mapped.is_none();
    match name {
        "model" if free(&columns.model) && columns.default_model.is_none() => Some(Role::Model),
        "version" if free(&columns.version) => Some(Role::Version),
        "ts" if free(&columns.ts) => Some(Role::Ts),
        "id" if free(&columns.id) => Some(Role::Id),
        "latency_ms" if free(&columns.latency_ms) => Some(Role::LatencyMs),
        "prediction" if free(&columns.prediction) => Some(Role::Prediction),
        "label" if free(&columns.label) => Some(Role::Label),
        _ => {
            if let Some(n) = name.strip_prefix("features.").filter(|n| !n.is_empty()) {
                Some(Role::Feature(n.to_owned()))
            } else {
                name.strip_prefix("metrics.").filter(|n| !n.is_empty()).map(|n| Role::Metric(n.to_owned()))
            }
        }
    }
}

fn single_name(role: &Role) -> Option<&'static str> {
    Some(match role {
        Role::Model => "model",
        Role::Version => "version",
        Role::Ts => "ts",
        Role::Id => "id",
        Role::LatencyMs => "latency_ms",
        Role::Prediction => "prediction",
        Role::Label => "label",
        Role::Feature(_) | Role::Metric(_) => return None,
    })
}

fn describe(role: &Role) -> String {
    match role {
        Role::Feature(n) => format!("feature `{n}`"),
        Role::Metric(n) => format!("metric `{n}`"),
        other => format!("`{}`", single_name(other).unwrap_or_default()),
    }
}

fn column_list(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().take(20).map(|f| f.name().as_str()).collect();
    let more = schema.fields().len().saturating_sub(names.len());
    if more > 0 { format!("{}, and {more} more", names.join(", ")) } else { names.join(", ") }
}
