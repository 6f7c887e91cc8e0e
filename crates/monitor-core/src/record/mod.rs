//! The record: what a model did for one request, as a producer reports it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::RecordError;
use crate::signal::{SignalRef, SignalValue};

mod loose;

use self::loose::Loose;

/// A model and one of its versions: the unit that windows, detectors and
/// retrain policies are kept for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelKey {
    /// The model's name.
    pub model: String,
    /// The model's version; `"default"` when the producer gave none.
    pub version: String,
}

impl ModelKey {
    /// A key for `model` at `version`.
    pub fn new(model: impl Into<String>, version: impl Into<String>) -> Self {
        Self { model: model.into(), version: version.into() }
    }
}

impl fmt::Display for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.model, self.version)
    }
}

/// The version a record gets when it names none.
pub const DEFAULT_VERSION: &str = "default";

/// A prediction or a label: a number (a score or a regression value) or a
/// string (a class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A finite number.
    Number(f64),
    /// A class or category.
    Category(String),
}

impl Value {
    /// This value as a signal observation.
    pub fn as_signal(&self) -> SignalValue<'_> {
        match self {
            Self::Number(x) => SignalValue::Numeric(*x),
            Self::Category(c) => SignalValue::Categorical(c),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Number(_) => "a number",
            Self::Category(_) => "a string",
        }
    }
}

/// One validated record.
///
/// Build it with [`Record::parse`] (JSON text), [`Record::from_json`] (a parsed
/// JSON value) or directly in code, then [`Record::validate`] it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The model's name; required and non-empty.
    pub model: String,
    /// The model's version; [`DEFAULT_VERSION`] when absent.
    pub version: String,
    /// Event time; the time of receipt when absent.
    pub ts: DateTime<Utc>,
    /// The request id, used to join a label that arrives later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Latency in milliseconds; non-negative.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// What the model predicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Value>,
    /// The true outcome, in this record or in a later one with the same `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Value>,
    /// Input features by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, Value>,
    /// Features given as `null`: named, but without a value. They make no
    /// sample of `features.<name>`; they count as missing in
    /// `quality.missing.<name>`, as an absent feature does.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub null_features: BTreeSet<String>,
    /// Quality metrics by name (accuracy, f1_score, drift_score, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// The longest `model`, `version`, `id`, feature name or metric name
/// accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// The longest string value (a class in `prediction`, `label` or a
/// categorical feature) accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// The most features plus metrics one record may carry.
pub const MAX_SIGNALS_PER_RECORD: usize = 4096;

/// The fields a record may have, in the order of the contract.
pub const RECORD_FIELDS: &[&str] =
    &["model", "version", "ts", "id", "latency_ms", "prediction", "label", "features", "metrics"];

impl Record {
    /// A record for `model` at the default version, time `ts`, with no signal yet.
    pub fn new(model: impl Into<String>, ts: DateTime<Utc>) -> Self {
        Self {
            model: model.into(),
            version: DEFAULT_VERSION.to_owned(),
            ts,
            id: None,
            latency_ms: None,
            prediction: None,
            label: None,
            features: BTreeMap::new(),
            null_features: BTreeSet::new(),
            metrics: BTreeMap::new(),
        }
    }

    /// The model key of this record.
    pub fn key(&self) -> ModelKey {
        ModelKey::new(self.model.clone(), self.version.clone())
    }

    /// Parses and validates one JSON object. `received_at` is the event time
    /// when the record carries no `ts`.
    pub fn parse(text: &str, received_at: DateTime<Utc>) -> Result<Self, RecordError> {
        // Straight into a borrowed tree: no intermediate `serde_json::Value`.
        let loose: Loose<'_> =
            serde_json::from_str(text).map_err(|e| RecordError::record(format!("malformed JSON: {e}")))?;
        Self::from_loose(loose, received_at)
    }

    /// Parses and validates one NDJSON line; errors carry `line` (1-based).
    pub fn parse_line(text: &str, line: u64, received_at: DateTime<Utc>) -> Result<Self, RecordError> {
        Self::parse(text, received_at).map_err(|e| e.at_line(line))
    }

    /// Validates a parsed JSON value.
    pub fn from_json(json: Json, received_at: DateTime<Utc>) -> Result<Self, RecordError> {
        Self::from_loose(Loose::from_json(&json), received_at)
    }

    fn from_loose(loose: Loose<'_>, received_at: DateTime<Utc>) -> Result<Self, RecordError> {
        let Loose::Object(map) = loose else {
            return Err(RecordError::record(format!("expected a JSON object, got {}", loose.type_name())));
        };
        // Empty strings do not allocate; the default version is set at the
        // end, only when the record names none.
        let mut record = Self {
            model: String::new(),
            version: String::new(),
            ts: received_at,
            id: None,
            latency_ms: None,
            prediction: None,
            label: None,
            features: BTreeMap::new(),
            null_features: Default::default(),
            metrics: BTreeMap::new(),
        };
        let mut model = None;
        let mut seen = [false; RECORD_FIELDS.len()];
        for (field, value) in map {
            if let Some(i) = RECORD_FIELDS.iter().position(|f| *f == field) {
                if std::mem::replace(&mut seen[i], true) {
                    return Err(RecordError::field(
                        &*field,
                        &value,
                        "appears twice in the record; give each field once",
                    ));
                }
            }
            if value == Loose::Null {
                continue;
            }
            match &*field {
                "model" => model = Some(non_empty_string("model", value)?),
                "version" => record.version = non_empty_string("version", value)?,
                "ts" => record.ts = timestamp(&value)?,
                "id" => record.id = Some(request_id(value)?),
                "latency_ms" => {
                    let x = number("latency_ms", &value)?;
                    if x < 0.0 {
                        return Err(RecordError::field("latency_ms", &value, "must not be negative"));
                    }
                    record.latency_ms = Some(x);
                }
                "prediction" => record.prediction = Some(prediction_value("prediction", value)?),
                "label" => record.label = Some(prediction_value("label", value)?),
                "features" => (record.features, record.null_features) = features(value)?,
                "metrics" => record.metrics = metrics(value)?,
                other => {
                    return Err(RecordError::field(
                        other,
                        &value,
                        format!("unknown field; expected one of {}", RECORD_FIELDS.join(", ")),
                    ));
                }
            }
        }
        if record.version.is_empty() {
            record.version = DEFAULT_VERSION.to_owned();
        }
        record.model = model.ok_or_else(|| RecordError {
            line: None,
            field: Some("model".into()),
            value: None,
            reason: "is required".into(),
        })?;
        record.validate()?;
        Ok(record)
    }

    /// Bounds on names, texts and counts, so that no record can make the
    /// engine hold more than a few kilobytes per name it remembers.
    fn check_sizes(&self) -> Result<(), RecordError> {
        let name = |field: &str, text: &str| {
            if text.len() > MAX_NAME_BYTES {
                Err(RecordError::field(
                    field,
                    format!("{:?}…", prefix(text)),
                    format!("is {} bytes, longer than the limit of {MAX_NAME_BYTES}", text.len()),
                ))
            } else {
                Ok(())
            }
        };
        let text = |field: &dyn Fn() -> String, value: &Value| match value {
            Value::Category(c) if c.len() > MAX_TEXT_BYTES => Err(RecordError::field(
                field(),
                format!("{:?}…", prefix(c)),
                format!("is {} bytes, longer than the limit of {MAX_TEXT_BYTES}", c.len()),
            )),
            _ => Ok(()),
        };
        name("model", &self.model)?;
        name("version", &self.version)?;
        if let Some(id) = &self.id {
            name("id", id)?;
        }
        for (field, value) in [("prediction", &self.prediction), ("label", &self.label)] {
            if let Some(v) = value {
                text(&|| field.to_owned(), v)?;
            }
        }
        let count = self.features.len() + self.null_features.len() + self.metrics.len();
        if count > MAX_SIGNALS_PER_RECORD {
            return Err(RecordError::field(
                "features",
                count,
                format!("too many features and metrics in one record (the limit is {MAX_SIGNALS_PER_RECORD})"),
            ));
        }
        for (n, v) in &self.features {
            name("features", n)?;
            // The field's name is only built for an error.
            text(&|| format!("features.{n}"), v)?;
        }
        for n in &self.null_features {
            name("features", n)?;
            if self.features.contains_key(n) {
                return Err(RecordError::field(
                    format!("features.{n}"),
                    "null",
                    "is both given and null; give each feature once",
                ));
            }
        }
        for n in self.metrics.keys() {
            name("metrics", n)?;
        }
        Ok(())
    }

    /// Checks the invariants of the contract. Records built in code should be
    /// validated before they are submitted; parsed records already are.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.model.is_empty() {
            return Err(RecordError::field("model", "\"\"", "must be a non-empty string"));
        }
        if self.version.is_empty() {
            return Err(RecordError::field("version", "\"\"", "must be a non-empty string"));
        }
        self.check_sizes()?;
        if let Some(x) = self.latency_ms {
            if !x.is_finite() || x < 0.0 {
                return Err(RecordError::field("latency_ms", x, "must be a non-negative finite number"));
            }
        }
        for (field, value) in [("prediction", &self.prediction), ("label", &self.label)] {
            if let Some(Value::Number(x)) = value {
                if !x.is_finite() {
                    return Err(RecordError::field(field, x, "must be a finite number or a string"));
                }
            }
        }
        for (name, value) in &self.features {
            if let Value::Number(x) = value {
                if !x.is_finite() {
                    return Err(RecordError::field(
                        format!("features.{name}"),
                        x,
                        "must be a finite number or a string",
                    ));
                }
            }
        }
        for (name, x) in &self.metrics {
            if !x.is_finite() {
                return Err(RecordError::field(format!("metrics.{name}"), x, "must be a finite number"));
            }
        }
        if let (Some(prediction), Some(label)) = (&self.prediction, &self.label) {
            if std::mem::discriminant(prediction) != std::mem::discriminant(label) {
                return Err(RecordError::field(
                    "label",
                    value_text(label),
                    format!("must be {} like `prediction`", prediction.type_name()),
                ));
            }
        }
        if self.label.is_some() && self.prediction.is_none() && self.id.is_none() {
            return Err(RecordError::field(
                "id",
                "null",
                "is required when a label arrives without its prediction, to join the two",
            ));
        }
        if !self.has_signal() && self.label.is_none() {
            return Err(RecordError::record(
                "carries no signal: give at least one of latency_ms, prediction, label, features or metrics",
            ));
        }
        Ok(())
    }

    /// Whether this record is a late label: a label and an id, no prediction.
    pub fn is_late_label(&self) -> bool {
        self.label.is_some() && self.prediction.is_none() && self.id.is_some()
    }

    fn has_signal(&self) -> bool {
        self.latency_ms.is_some()
            || self.prediction.is_some()
            || !self.features.is_empty()
            || !self.null_features.is_empty()
            || !self.metrics.is_empty()
    }

    /// The `error` signal, when both prediction and label are in this record.
    pub fn error(&self) -> Option<f64> {
        match (&self.prediction, &self.label) {
            (Some(p), Some(l)) => prediction_error(p, l),
            _ => None,
        }
    }

    /// Calls `f` for every signal this record carries, in a fixed order:
    /// latency, prediction, error, features, metrics.
    pub fn for_each_signal<'a>(&'a self, mut f: impl FnMut(SignalRef<'a>, SignalValue<'a>)) {
        if let Some(x) = self.latency_ms {
            f(SignalRef::LatencyMs, SignalValue::Numeric(x));
        }
        if let Some(p) = &self.prediction {
            f(SignalRef::Prediction, p.as_signal());
        }
        if let Some(e) = self.error() {
            f(SignalRef::Error, SignalValue::Numeric(e));
        }
        for (name, value) in &self.features {
            f(SignalRef::Feature(name), value.as_signal());
        }
        for (name, x) in &self.metrics {
            f(SignalRef::Metric(name), SignalValue::Numeric(*x));
        }
    }
}

/// The `error` signal of a prediction against its label: for classes 1.0 on a
/// mismatch, else 0.0; for numbers the absolute error. `None` when the types differ.
pub fn prediction_error(prediction: &Value, label: &Value) -> Option<f64> {
    match (prediction, label) {
        (Value::Number(p), Value::Number(l)) => Some((p - l).abs()),
        (Value::Category(p), Value::Category(l)) => Some(if p == l { 0.0 } else { 1.0 }),
        _ => None,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Number(x) => x.to_string(),
        Value::Category(c) => format!("{c:?}"),
    }
}

/// The first few characters of an over-long text, for an error message.
fn prefix(text: &str) -> String {
    text.chars().take(40).collect()
}

fn non_empty_string(field: &str, value: Loose<'_>) -> Result<String, RecordError> {
    match value {
        Loose::Str(s) if !s.is_empty() => Ok(s.into_owned()),
        other => Err(RecordError::field(field, &other, "must be a non-empty string")),
    }
}

fn request_id(value: Loose<'_>) -> Result<String, RecordError> {
    // The integers of 64 bits written as floats: JSON has one number type,
    // and `17.0` is the integer 17 to JSON Schema and to many producers. The
    // bounds are open: an integer literal just past `i64::MIN` is read as
    // the float -2⁶³, and one past `u64::MAX` as 2⁶⁴.
    const MIN: f64 = -9_223_372_036_854_775_808.0;
    const END: f64 = 18_446_744_073_709_551_616.0;
    match value {
        Loose::Str(s) if !s.is_empty() => Ok(s.into_owned()),
        Loose::Int(n) => Ok(n.to_string()),
        Loose::UInt(n) => Ok(n.to_string()),
        Loose::Float(x) if x.fract() == 0.0 && x > MIN && x < END => {
            Ok(if x < 0.0 { (x as i64).to_string() } else { (x as u64).to_string() })
        }
        other => Err(RecordError::field("id", &other, "must be a non-empty string or an integer")),
    }
}

fn timestamp(value: &Loose<'_>) -> Result<DateTime<Utc>, RecordError> {
    match value {
        Loose::Str(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| RecordError::field("ts", value, format!("must be an RFC 3339 timestamp ({e})"))),
        other => Err(RecordError::field("ts", other, "must be an RFC 3339 timestamp string")),
    }
}

fn number(field: &str, value: &Loose<'_>) -> Result<f64, RecordError> {
    match value.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(RecordError::field(field, value, "must be a finite number")),
    }
}

fn prediction_value(field: &str, value: Loose<'_>) -> Result<Value, RecordError> {
    match value {
        Loose::Int(_) | Loose::UInt(_) | Loose::Float(_) => number(field, &value).map(Value::Number),
        Loose::Str(s) => Ok(Value::Category(s.into_owned())),
        Loose::Bool(b) => Ok(Value::Category(b.to_string())),
        other => Err(RecordError::field(field, &other, "must be a number or a string")),
    }
}

/// The features with a value, and the names of those given as null.
type Features = (BTreeMap<String, Value>, BTreeSet<String>);

fn features(value: Loose<'_>) -> Result<Features, RecordError> {
    let Loose::Object(map) = value else {
        return Err(RecordError::field("features", &value, "must be an object of name: value"));
    };
    let mut out = BTreeMap::new();
    let mut nulls = BTreeSet::new();
    for (name, v) in map {
        if name.is_empty() {
            return Err(RecordError::field("features", "\"\"", "feature names must be non-empty"));
        }
        if out.contains_key(&*name) || nulls.contains(&*name) {
            return Err(RecordError::field(
                "features",
                format!("{name:?}"),
                "this feature appears twice; give each feature once",
            ));
        }
        let value = match v {
            // A missing value is common in production: no sample, but it
            // counts in the feature's missing-value share.
            Loose::Null => {
                nulls.insert(name.into_owned());
                continue;
            }
            // The error's field name is only built for an error.
            Loose::Int(_) | Loose::UInt(_) | Loose::Float(_) => match v.as_f64() {
                Some(x) if x.is_finite() => Value::Number(x),
                _ => return Err(RecordError::field(format!("features.{name}"), &v, "must be a finite number")),
            },
            Loose::Str(s) => Value::Category(s.into_owned()),
            Loose::Bool(b) => Value::Category(b.to_string()),
            other => {
                return Err(RecordError::field(
                    format!("features.{name}"),
                    &other,
                    "must be a number, a string or a boolean",
                ));
            }
        };
        out.insert(name.into_owned(), value);
    }
    Ok((out, nulls))
}

fn metrics(value: Loose<'_>) -> Result<BTreeMap<String, f64>, RecordError> {
    let Loose::Object(map) = value else {
        return Err(RecordError::field("metrics", &value, "must be an object of name: number"));
    };
    let mut out = BTreeMap::new();
    for (name, v) in map {
        if name.is_empty() {
            return Err(RecordError::field("metrics", "\"\"", "metric names must be non-empty"));
        }
        if v == Loose::Null {
            continue;
        }
        let x = match v.as_f64() {
            Some(x) if x.is_finite() => x,
            _ => return Err(RecordError::field(format!("metrics.{name}"), &v, "must be a finite number")),
        };
        if out.contains_key(&*name) {
            return Err(RecordError::field(
                "metrics",
                format!("{name:?}"),
                "this metric appears twice; give each metric once",
            ));
        }
        out.insert(name.into_owned(), x);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
