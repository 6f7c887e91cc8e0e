//! The committed seeds of the `record` fuzz target (`fuzz/corpus/record`),
//! run through the target's own harness, so that the checks the fuzzer
//! makes (and the inputs that once crashed it) run on stable in every test
//! run.

use std::path::Path;

#[path = "../../../../fuzz/harness/record.rs"]
mod harness;

/// Every file of `fuzz/corpus/<target>`, by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path.file_name().expect("a file name").to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_record_corpus_passes_the_fuzz_checks() {
    let files = corpus("record");
    assert!(files.len() >= 9, "the record corpus is missing files: {}", files.len());
    for (name, bytes) in files {
        if std::panic::catch_unwind(|| harness::check(&bytes)).is_err() {
            panic!("fuzz/corpus/record/{name} fails the record checks");
        }
    }
}

/// Found by the `record` target: an unknown key, or a feature's name
/// before its size was checked, was echoed whole as the error's field, so
/// that a line of a megabyte gave an error of a megabyte (in every answer
/// and log line that lists it).
#[test]
fn an_error_names_a_long_field_in_a_few_hundred_bytes() {
    let received_at = chrono::Utc::now();
    let long = "k".repeat(1 << 20);
    for line in [
        format!(r#"{{"model": "m", "latency_ms": 1, "{long}": 1}}"#),
        format!(r#"{{"model": "m", "features": {{"{long}": [1]}}}}"#),
        format!(r#"{{"model": "m", "metrics": {{"{long}": "x"}}}}"#),
    ] {
        let e = monitor_core::record::Record::parse(&line, received_at).expect_err("the line is invalid");
        let field = e.field.as_deref().expect("the error names the field");
        assert!(field.len() <= 300 && field.ends_with('…'), "a field of {} bytes", field.len());
        assert!(e.to_string().len() < 1000, "an error of {} bytes", e.to_string().len());
    }
}
