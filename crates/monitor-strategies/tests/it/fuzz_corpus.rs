//! The committed seeds of the `snapshot` fuzz target
//! (`fuzz/corpus/snapshot`), run through the target's own harness, so that
//! the checks the fuzzer makes (and the inputs that once crashed it) run on
//! stable in every test run.

use std::path::Path;

#[path = "../../../../fuzz/harness/snapshot.rs"]
mod harness;

#[test]
fn the_snapshot_corpus_passes_the_fuzz_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/snapshot");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 6, "the snapshot corpus is missing files: {}", files.len());
    let mut restored = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        match std::panic::catch_unwind(|| harness::check(&bytes)) {
            Ok(true) => restored.push(path.file_name().expect("a file name").to_string_lossy().into_owned()),
            Ok(false) => {}
            Err(_) => panic!("{} fails the snapshot checks", path.display()),
        }
    }
    // The unmutated snapshot restores and carries on, so the checks past
    // parsing run too.
    assert!(restored.iter().any(|name| name == "valid"), "restored: {restored:?}");
}
