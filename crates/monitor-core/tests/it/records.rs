//! Hostile records: duplicate keys and over-long names are rejected with
//! the field, the value and the limit.

use chrono::Utc;
use monitor_core::record::{MAX_NAME_BYTES, MAX_SIGNALS_PER_RECORD, MAX_TEXT_BYTES, Record};

fn err(line: &str) -> String {
    Record::parse(line, Utc::now()).err().map(|e| e.to_string()).unwrap_or_else(|| "accepted".to_owned())
}

#[test]
fn duplicate_keys_are_rejected_by_name() {
    assert_eq!(
        err(r#"{"model": "a", "model": "b", "latency_ms": 1}"#),
        "field `model`: appears twice in the record; give each field once (got \"b\")"
    );
    assert_eq!(
        err(r#"{"model": "a", "latency_ms": 1, "latency_ms": null}"#),
        "field `latency_ms`: appears twice in the record; give each field once (got null)"
    );
    assert_eq!(
        err(r#"{"model": "a", "features": {"x": 1, "x": 2}}"#),
        "field `features`: this feature appears twice; give each feature once (got \"x\")"
    );
    assert_eq!(
        err(r#"{"model": "a", "metrics": {"acc": 1, "acc": 0.5}}"#),
        "field `metrics`: this metric appears twice; give each metric once (got \"acc\")"
    );
}

#[test]
fn long_names_and_texts_are_rejected_with_the_limit() {
    let long = "m".repeat(MAX_NAME_BYTES + 1);
    let e = err(&format!(r#"{{"model": "{long}", "latency_ms": 1}}"#));
    assert!(e.starts_with("field `model`: is 257 bytes, longer than the limit of 256"), "{e}");
    assert!(e.len() < 200, "the value is not echoed whole: {e}");
    let e = err(&format!(r#"{{"model": "a", "version": "{long}", "latency_ms": 1}}"#));
    assert!(e.starts_with("field `version`: is 257 bytes"), "{e}");
    let e = err(&format!(r#"{{"model": "a", "id": "{long}", "latency_ms": 1}}"#));
    assert!(e.starts_with("field `id`: is 257 bytes"), "{e}");
    let e = err(&format!(r#"{{"model": "a", "features": {{"{long}": 1}}}}"#));
    assert!(e.starts_with("field `features`: is 257 bytes"), "{e}");
    let text = "t".repeat(MAX_TEXT_BYTES + 1);
    let e = err(&format!(r#"{{"model": "a", "features": {{"country": "{text}"}}}}"#));
    assert!(e.starts_with("field `features.country`: is 1025 bytes, longer than the limit of 1024"), "{e}");
    let e = err(&format!(r#"{{"model": "a", "prediction": "{text}"}}"#));
    assert!(e.starts_with("field `prediction`: is 1025 bytes"), "{e}");
    // At the limit is fine.
    let ok = "m".repeat(MAX_NAME_BYTES);
    assert_eq!(err(&format!(r#"{{"model": "{ok}", "latency_ms": 1}}"#)), "accepted");
}

#[test]
fn too_many_features_in_one_record_are_rejected() {
    let features: Vec<String> = (0..=MAX_SIGNALS_PER_RECORD).map(|i| format!("\"f{i}\": 1")).collect();
    let e = err(&format!(r#"{{"model": "a", "features": {{{}}}}}"#, features.join(",")));
    assert!(e.starts_with("field `features`: too many features and metrics in one record (the limit is 4096)"), "{e}");
}
