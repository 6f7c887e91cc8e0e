//! The `ndjson` fuzz target: see `harness/ndjson.rs`, which the stable tests
//! also run over the committed corpus.

#![no_main]

#[path = "../harness/ndjson.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
