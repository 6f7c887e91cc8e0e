//! The one error type shared by every layer.

use std::fmt;

/// Why a record was rejected: the line (when it came from NDJSON), the field,
/// the offending value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// 1-based line number in the input, when the record came from a file or a body.
    pub line: Option<u64>,
    /// The field at fault (`latency_ms`, `features.amount`), or `None` for a
    /// syntax error that is not tied to one field; shortened when longer
    /// than a valid name can make it (an unknown key of a megabyte).
    pub field: Option<String>,
    /// The offending value as it appeared in the input, shortened when long.
    pub value: Option<String>,
    /// What was wrong and what was expected.
    pub reason: String,
}

impl RecordError {
    /// An error tied to one field and value.
    pub fn field(field: impl Into<String>, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        let field = field.into();
        // The field comes from the input too: an error is as short whatever the input.
        let field = if field.len() <= MAX_FIELD_BYTES { field } else { shorten(&field, MAX_FIELD_BYTES) };
        Self {
            line: None,
            field: Some(field),
            value: Some(shorten(&value.to_string(), MAX_VALUE_BYTES)),
            reason: reason.into(),
        }
    }

    /// An error about the record as a whole (syntax, no signal).
    pub fn record(reason: impl Into<String>) -> Self {
        Self { line: None, field: None, value: None, reason: reason.into() }
    }

    /// The same error, located at `line` (1-based).
    #[must_use]
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
}

/// The most of a value an error quotes, in bytes (then an ellipsis).
const MAX_VALUE_BYTES: usize = 80;
/// The most of a field's name an error gives, in bytes (then an ellipsis):
/// room for `features.` and a name at the record's limit.
const MAX_FIELD_BYTES: usize = crate::record::MAX_NAME_BYTES + 24;

/// `value` cut to at most `max` bytes on a character boundary, with an
/// ellipsis when cut.
fn shorten(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let cut = (0..=max).rev().find(|&i| value.is_char_boundary(i)).unwrap_or(0);
    format!("{}…", &value[..cut])
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.reason)?;
        if let Some(value) = &self.value {
            write!(f, " (got {value})")?;
        }
        Ok(())
    }
}

impl std::error::Error for RecordError {}

/// Every failure that model-monitor reports.
///
/// One enum for all layers, because they share their failures: a config key is
/// wrong, a record is bad, an observer could not deliver, the engine is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record was malformed or invalid; it was rejected and counted.
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),

    /// A configuration value is missing, unknown or out of range.
    #[error("config error at `{key}`: {message}")]
    Config {
        /// The dotted key at fault, for example `monitors[1].detector.window`.
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },

    /// An observer failed to handle an event (a webhook answered 500, a command failed).
    #[error("observer `{observer}`: {message}")]
    Observer {
        /// The observer's name.
        observer: String,
        /// What went wrong; never contains secrets.
        message: String,
    },

    /// A file or stream could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The ingest queue is full; retry later or use the waiting `submit`.
    #[error("ingest queue is full")]
    Full,

    /// The engine has shut down and accepts no more records.
    #[error("engine is shut down")]
    Closed,

    /// A snapshot of saved state could not be taken or restored: it is from
    /// another format version, it is corrupt, or it does not match the plan.
    #[error("snapshot error at `{path}`: {message}")]
    Snapshot {
        /// Where in the snapshot, for example `models[3].signals[0].instances[1]`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// A config error at `key`.
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config { key: key.into(), message: message.into() }
    }

    /// An observer error.
    pub fn observer(observer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Observer { observer: observer.into(), message: message.into() }
    }

    /// A snapshot error at `path`.
    pub fn snapshot(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Snapshot { path: path.into(), message: message.into() }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}

/// The result type of model-monitor.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_error_names_line_field_and_value() {
        let e = RecordError::field("latency_ms", -3.0, "must be a non-negative finite number").at_line(7);
        assert_eq!(e.to_string(), "line 7: field `latency_ms`: must be a non-negative finite number (got -3)");
    }

    #[test]
    fn long_values_are_shortened_on_a_char_boundary() {
        let e = RecordError::field("id", "é".repeat(100), "bad");
        let value = e.value.unwrap_or_default();
        assert!(value.ends_with('…'));
        assert!(value.len() <= 84);
    }

    #[test]
    fn long_fields_are_shortened_and_names_at_the_limit_are_not() {
        let at_limit = format!("features.{}", "n".repeat(crate::record::MAX_NAME_BYTES));
        assert_eq!(RecordError::field(at_limit.clone(), 1, "bad").field, Some(at_limit));
        let field = RecordError::field("k".repeat(1 << 20), 1, "bad").field.unwrap_or_default();
        assert_eq!(field.len(), MAX_FIELD_BYTES + '…'.len_utf8());
        assert!(field.ends_with('…'));
    }
}
