//! Tests of record parsing and validation.

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

fn parse(text: &str) -> Result<Record, RecordError> {
    Record::parse(text, now())
}

#[test]
fn parses_the_contract_example() {
    let r = parse(
        r#"{"model": "fraud", "version": "v3", "ts": "2026-11-23T10:00:00Z", "id": "req-81f",
            "latency_ms": 12.5, "prediction": "fraud", "label": "legit",
            "features": {"amount": 120.5, "country": "DE"},
            "metrics": {"accuracy": 0.94, "f1_score": 0.90, "drift_score": 0.01, "throughput": 50.0}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.key(), ModelKey::new("fraud", "v3"));
    assert_eq!(r.error(), Some(1.0));
    assert_eq!(r.features["country"], Value::Category("DE".into()));
    let mut names = Vec::new();
    r.for_each_signal(|s, _| names.push(s.to_string()));
    assert_eq!(
        names,
        [
            "latency_ms",
            "prediction",
            "error",
            "features.amount",
            "features.country",
            "metrics.accuracy",
            "metrics.drift_score",
            "metrics.f1_score",
            "metrics.throughput"
        ]
    );
}

#[test]
fn defaults_version_and_time() {
    let r = parse(r#"{"model": "m", "latency_ms": 1}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.version, "default");
    assert_eq!(r.ts, now());
}

#[test]
fn regression_error_is_absolute() {
    let r = parse(r#"{"model": "m", "prediction": 3.5, "label": 5}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.error(), Some(1.5));
}

fn err(text: &str) -> String {
    match Record::parse_line(text, 4, now()) {
        Ok(r) => panic!("accepted {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_json_names_the_line() {
    let e = err(r#"{"model": "m", "latency_ms": 1"#);
    assert!(e.starts_with("line 4: malformed JSON"), "{e}");
}

#[test]
fn missing_model_is_named() {
    assert_eq!(err(r#"{"latency_ms": 1}"#), "line 4: field `model`: is required");
    assert_eq!(
        err(r#"{"model": "", "latency_ms": 1}"#),
        "line 4: field `model`: must be a non-empty string (got \"\")"
    );
}

#[test]
fn negative_latency_names_field_and_value() {
    assert_eq!(err(r#"{"model": "m", "latency_ms": -5}"#), "line 4: field `latency_ms`: must not be negative (got -5)");
}

#[test]
fn non_finite_numbers_are_rejected() {
    // JSON has no NaN; an overflowing literal is the way to smuggle one in.
    let e = err(r#"{"model": "m", "metrics": {"accuracy": 1e999}}"#);
    assert!(e.starts_with("line 4: malformed JSON"), "{e}");
    let mut r = Record::new("m", now());
    r.metrics.insert("accuracy".into(), f64::NAN);
    assert_eq!(
        r.validate().map_err(|e| e.to_string()),
        Err("field `metrics.accuracy`: must be a finite number (got NaN)".to_owned())
    );
    r.metrics.clear();
    r.features.insert("amount".into(), Value::Number(f64::INFINITY));
    assert!(r.validate().is_err());
}

#[test]
fn label_of_the_wrong_type_is_rejected() {
    assert_eq!(
        err(r#"{"model": "m", "prediction": 0.7, "label": "fraud"}"#),
        "line 4: field `label`: must be a number like `prediction` (got \"fraud\")"
    );
    assert_eq!(
        err(r#"{"model": "m", "prediction": "a", "label": [1]}"#),
        "line 4: field `label`: must be a number or a string (got an array of 1)"
    );
}

#[test]
fn unknown_fields_and_empty_records_are_rejected() {
    let e = err(r#"{"model": "m", "latncy_ms": 3}"#);
    assert!(e.starts_with("line 4: field `latncy_ms`: unknown field; expected one of model, version"), "{e}");
    assert_eq!(
        err(r#"{"model": "m"}"#),
        "line 4: carries no signal: give at least one of latency_ms, prediction, label, features or metrics"
    );
    assert!(err("[1, 2]").contains("expected a JSON object, got an array"));
    assert!(err(r#"{"model": "m", "ts": "yesterday", "latency_ms": 1}"#).contains("field `ts`"));
}

#[test]
fn null_features_are_kept_by_name() {
    let r = parse(r#"{"model": "m", "features": {"amount": null, "country": "DE"}}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.null_features.iter().collect::<Vec<_>>(), ["amount"]);
    let mut names = Vec::new();
    r.for_each_signal(|s, _| names.push(s.to_string()));
    assert_eq!(names, ["features.country"], "a null makes no sample");
    // A record of nulls only still says something: which features are missing.
    assert!(parse(r#"{"model": "m", "features": {"amount": null}}"#).is_ok());
    assert!(err(r#"{"model": "m", "features": {"a": null, "a": 1}}"#).contains("appears twice"));
    let mut both = Record::new("m", now());
    both.features.insert("a".into(), Value::Number(1.0));
    both.null_features.insert("a".into());
    assert!(both.validate().unwrap_err().to_string().contains("is both given and null"));
}

#[test]
fn late_labels_need_an_id() {
    let r = parse(r#"{"model": "m", "id": 17, "label": "fraud"}"#).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.is_late_label());
    assert_eq!(r.id.as_deref(), Some("17"));
    assert!(err(r#"{"model": "m", "label": "fraud"}"#).contains("field `id`"));
    // An integer written as a float is that integer (found by schemathesis:
    // JSON Schema's `integer` admits `-35184372088833.0`); a fraction, or a
    // number past 64 bits, is not an id.
    for (id, text) in
        [("-35184372088833.0", "-35184372088833"), ("17.0", "17"), ("-0.0", "0"), ("1e19", "10000000000000000000")]
    {
        let r = parse(&format!(r#"{{"model": "m", "id": {id}, "label": "fraud"}}"#))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(r.id.as_deref(), Some(text));
    }
    // Integer literals just past the 64-bit range, which JSON parsers read
    // as the floats at its ends, are refused too.
    for id in ["17.5", "1.8446744073709552e19", "-1e19", "-9223372036854775809", "18446744073709551616"] {
        assert!(err(&format!(r#"{{"model": "m", "id": {id}, "label": "fraud"}}"#)).contains("field `id`"), "{id}");
    }
}

#[cfg(test)]
mod never_panics {
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    use super::*;

    fn any_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)),
            any::<i64>().prop_map(|x| json!(x)),
            ".{0,12}".prop_map(Json::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("model".to_owned()),
                        Just("version".to_owned()),
                        Just("ts".to_owned()),
                        Just("id".to_owned()),
                        Just("latency_ms".to_owned()),
                        Just("prediction".to_owned()),
                        Just("label".to_owned()),
                        Just("features".to_owned()),
                        Just("metrics".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Json::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_text_is_parsed_or_rejected(text in ".{0,200}") {
            let _ = Record::parse(&text, DateTime::<Utc>::UNIX_EPOCH);
        }

        #[test]
        fn arbitrary_json_is_parsed_or_rejected_and_accepted_records_are_valid(value in any_json()) {
            if let Ok(record) = Record::from_json(value, DateTime::<Utc>::UNIX_EPOCH) {
                prop_assert!(record.validate().is_ok());
                let mut signals = 0;
                record.for_each_signal(|_, v| {
                    if let Some(x) = v.as_f64() { assert!(x.is_finite()); }
                    signals += 1;
                });
                prop_assert!(signals > 0 || record.is_late_label());
            }
        }
    }
}
