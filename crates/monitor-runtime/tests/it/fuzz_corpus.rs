//! The committed seeds of the `ndjson` and `config` fuzz targets
//! (`fuzz/corpus/<target>`), run through the targets' own harnesses, so
//! that the checks the fuzzer makes (and the inputs that once crashed it)
//! run on stable in every test run. `hostile_http` posts the record and
//! NDJSON seeds to a real server.

use std::path::Path;

#[path = "../../../../fuzz/harness/config.rs"]
mod config_harness;
#[path = "../../../../fuzz/harness/ndjson.rs"]
mod ndjson_harness;

/// Every file of `fuzz/corpus/<target>`, by name.
pub(crate) fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
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

fn replay(target: &str, min_files: usize, check: fn(&[u8])) {
    let files = corpus(target);
    assert!(files.len() >= min_files, "the {target} corpus is missing files: {}", files.len());
    for (name, bytes) in files {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("fuzz/corpus/{target}/{name} fails the {target} checks");
        }
    }
}

#[test]
fn the_ndjson_corpus_passes_the_fuzz_checks() {
    replay("ndjson", 5, ndjson_harness::check);
}

#[test]
fn the_config_corpus_passes_the_fuzz_checks() {
    replay("config", 5, config_harness::check);
}
