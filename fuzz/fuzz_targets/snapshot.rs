//! The `snapshot` fuzz target: see `harness/snapshot.rs`, which the stable
//! tests also run over the committed corpus.

#![no_main]

#[path = "../harness/snapshot.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::check(data);
});
