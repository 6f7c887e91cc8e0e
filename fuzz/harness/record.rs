//! One record from arbitrary bytes, by both ways a record is read: the
//! strict path (`Record::parse`, straight from the text, duplicate keys
//! refused) and the loose path (`Record::from_json`, from a parsed JSON value,
//! as a JSON body's elements are read).
//!
//! Neither may panic; a record the strict path accepts is valid, is the same
//! record by the loose path, and survives a serde round trip; an error names
//! its line and stays short whatever the input.

use chrono::{DateTime, Utc};
use monitor_core::RecordError;
use monitor_core::record::{MAX_NAME_BYTES, Record};

/// The longest field an error may name: a signal's prefix, a name at its
/// limit and an ellipsis.
const MAX_ERROR_FIELD: usize = MAX_NAME_BYTES + 32;
/// The longest value an error may quote (80 bytes and an ellipsis).
const MAX_ERROR_VALUE: usize = 84;

fn received_at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time")
}

fn check_error(e: &RecordError) {
    let field = e.field.as_deref().unwrap_or("");
    assert!(field.len() <= MAX_ERROR_FIELD, "an error names a field of {} bytes", field.len());
    let value = e.value.as_deref().unwrap_or("");
    assert!(value.len() <= MAX_ERROR_VALUE, "an error quotes a value of {} bytes", value.len());
    let _ = e.to_string();
}

/// Checks one input; panics on a defect.
pub(crate) fn check(data: &[u8]) {
    // The loose path takes bytes; the strict one, text.
    let loose = serde_json::from_slice::<serde_json::Value>(data).map(|v| Record::from_json(v, received_at()));
    if let Ok(Err(e)) = &loose {
        check_error(e);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Record::parse_line(text, 7, received_at()) {
        Ok(record) => {
            record.validate().expect("a parsed record is valid");
            match loose {
                Ok(Ok(other)) => assert_eq!(other, record, "the loose path reads another record"),
                Ok(Err(e)) => panic!("the loose path rejects what the strict path accepts: {e}"),
                Err(e) => panic!("serde_json rejects what the strict path accepts: {e}"),
            }
            let mut signals = 0usize;
            record.for_each_signal(|_, _| signals += 1);
            assert!(signals > 0 || record.is_late_label(), "an accepted record carries no signal");
            let json = serde_json::to_vec(&record).expect("a record serializes");
            let back: Record = serde_json::from_slice(&json).expect("a serialized record deserializes");
            assert_eq!(back, record, "a serde round trip changes the record");
        }
        Err(e) => {
            assert_eq!(e.line, Some(7), "an error of a line names the line");
            check_error(&e);
        }
    }
}
