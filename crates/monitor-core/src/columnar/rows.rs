//! One Arrow record batch into records: each column read as its role says,
//! each row validated like a JSON record.

use std::borrow::Cow;

use crate::error::RecordError;
use crate::record::{Record, Value};
use crate::source::SourceBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, Utc};

use super::columns::{Role, time_unit};

/// One cell, borrowed from its column.
enum Cell<'a> {
    Number(f64),
    Text(Cow<'a, str>),
    Bool(bool),
    Time(i64, TimeUnit),
}

/// A column ready to be read row by row: for a dictionary, its values and
/// its keys.
struct Column<'a> {
    array: &'a dyn Array,
    keys: Option<&'a dyn Array>,
}

impl<'a> Column<'a> {
    fn new(array: &'a dyn Array) -> Self {
        match array.as_any_dictionary_opt() {
            Some(dict) => Self { array: dict.values().as_ref(), keys: Some(dict.keys()) },
            None => Self { array, keys: None },
        }
    }

    /// The index into the dictionary's values of `row`; `None` when the key
    /// is null or points past the values.
    fn key(keys: &dyn Array, row: usize, values: usize) -> Option<usize> {
        if keys.is_null(row) {
            return None;
        }
        let k = match keys.data_type() {
            DataType::Int8 => i64::from(keys.as_primitive::<Int8Type>().value(row)),
            DataType::Int16 => i64::from(keys.as_primitive::<Int16Type>().value(row)),
            DataType::Int32 => i64::from(keys.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => keys.as_primitive::<Int64Type>().value(row),
            DataType::UInt8 => i64::from(keys.as_primitive::<UInt8Type>().value(row)),
            DataType::UInt16 => i64::from(keys.as_primitive::<UInt16Type>().value(row)),
            DataType::UInt32 => i64::from(keys.as_primitive::<UInt32Type>().value(row)),
            DataType::UInt64 => i64::try_from(keys.as_primitive::<UInt64Type>().value(row)).ok()?,
            _ => return None,
        };
        usize::try_from(k).ok().filter(|&k| k < values)
    }

    /// The cell at `row`; `None` when it is null.
    fn cell(&self, row: usize) -> Option<Cell<'a>> {
        let array = self.array;
        let i = match self.keys {
            Some(keys) => Self::key(keys, row, array.len())?,
            None => row,
        };
        if array.is_null(i) {
            return None;
        }
        let number = |x: f64| Some(Cell::Number(x));
        match array.data_type() {
            DataType::Float64 => number(array.as_primitive::<Float64Type>().value(i)),
            DataType::Float32 => number(f64::from(array.as_primitive::<Float32Type>().value(i))),
            DataType::Int64 => number(array.as_primitive::<Int64Type>().value(i) as f64),
            DataType::Int32 => number(f64::from(array.as_primitive::<Int32Type>().value(i))),
            DataType::Int16 => number(f64::from(array.as_primitive::<Int16Type>().value(i))),
            DataType::Int8 => number(f64::from(array.as_primitive::<Int8Type>().value(i))),
            DataType::UInt64 => number(array.as_primitive::<UInt64Type>().value(i) as f64),
            DataType::UInt32 => number(f64::from(array.as_primitive::<UInt32Type>().value(i))),
            DataType::UInt16 => number(f64::from(array.as_primitive::<UInt16Type>().value(i))),
            DataType::UInt8 => number(f64::from(array.as_primitive::<UInt8Type>().value(i))),
            DataType::Boolean => Some(Cell::Bool(array.as_boolean().value(i))),
            DataType::Utf8 => Some(Cell::Text(Cow::Borrowed(array.as_string::<i32>().value(i)))),
            DataType::LargeUtf8 => Some(Cell::Text(Cow::Borrowed(array.as_string::<i64>().value(i)))),
            DataType::Utf8View => Some(Cell::Text(Cow::Borrowed(array.as_string_view().value(i)))),
            dt @ DataType::Timestamp(..) => {
                let unit = time_unit(dt)?;
                let v = match unit {
                    TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(i),
                    TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(i),
                    TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(i),
                    TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(i),
                };
                Some(Cell::Time(v, unit))
            }
            // The plan admits no other type.
            _ => None,
        }
    }
}

fn instant(v: i64, unit: TimeUnit) -> Option<DateTime<Utc>> {
    match unit {
        TimeUnit::Second => DateTime::from_timestamp(v, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(v),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(v),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(v)),
    }
}

fn text(cell: Cell<'_>) -> String {
    match cell {
        Cell::Text(t) => t.into_owned(),
        Cell::Number(x) => format!("{x}"),
        Cell::Bool(b) => b.to_string(),
        Cell::Time(v, _) => v.to_string(),
    }
}

/// A prediction, label or feature value: numbers stay numbers, text and
/// booleans are categories (as in JSON records).
fn value(cell: Cell<'_>) -> Value {
    match cell {
        Cell::Number(x) => Value::Number(x),
        Cell::Text(t) => Value::Category(t.into_owned()),
        Cell::Bool(b) => Value::Category(b.to_string()),
        Cell::Time(v, _) => Value::Number(v as f64),
    }
}

/// Reads every row of `batch`; `first_seq` is the 0-based index of its
/// first row in the file. A bad row is rejected with its row number
/// (1-based, as `line`), the column and the reason.
pub(crate) fn read_batch(
    batch: &RecordBatch,
    roles: &[Option<Role>],
    default_model: Option<&str>,
    first_seq: u64,
) -> SourceBatch {
    let columns: Vec<(&Role, Column<'_>)> = roles
        .iter()
        .zip(batch.columns())
        .filter_map(|(role, array)| role.as_ref().map(|r| (r, Column::new(array.as_ref()))))
        .collect();
    let received = Utc::now();
    let mut out = SourceBatch::default();
    out.records.reserve(batch.num_rows());
    for row in 0..batch.num_rows() {
        let seq = first_seq + row as u64;
        match read_row(&columns, row, default_model, received) {
            Ok(record) => out.records.push((seq, record)),
            Err(e) => out.rejected.push((seq, e.at_line(seq + 1))),
        }
    }
    out
}

fn read_row(
    columns: &[(&Role, Column<'_>)],
    row: usize,
    default_model: Option<&str>,
    received: DateTime<Utc>,
) -> Result<Record, RecordError> {
    let mut record = Record::new(default_model.unwrap_or_default(), received);
    for (role, column) in columns {
        let cell = column.cell(row);
        match role {
            Role::Feature(name) => match cell {
                Some(c) => {
                    record.features.insert(name.clone(), value(c));
                }
                None => {
                    record.null_features.insert(name.clone());
                }
            },
            _ => {
                let Some(cell) = cell else { continue };
                match role {
                    Role::Model => record.model = text(cell),
                    Role::Version => record.version = text(cell),
                    Role::Id => record.id = Some(text(cell)),
                    Role::Ts => {
                        record.ts = match cell {
                            Cell::Time(v, unit) => instant(v, unit)
                                .ok_or_else(|| RecordError::field("ts", v, "is out of the range of dates"))?,
                            other => {
                                let t = text(other);
                                DateTime::parse_from_rfc3339(&t)
                                    .map_err(|e| {
                                        RecordError::field("ts", &t, format!("must be an RFC 3339 time ({e})"))
                                    })?
                                    .with_timezone(&Utc)
                            }
                        }
                    }
                    Role::LatencyMs => record.latency_ms = number(cell),
                    Role::Prediction => record.prediction = Some(value(cell)),
                    Role::Label => record.label = Some(value(cell)),
                    Role::Metric(name) => {
                        if let Some(x) = number(cell) {
                            record.metrics.insert(name.clone(), x);
                        }
                    }
                    Role::Feature(_) => {}
                }
            }
        }
    }
    record.validate()?;
    Ok(record)
}

fn number(cell: Cell<'_>) -> Option<f64> {
    match cell {
        Cell::Number(x) => Some(x),
        _ => None,
    }
}
