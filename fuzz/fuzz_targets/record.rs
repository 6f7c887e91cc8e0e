//! The `record` fuzz target: see `harness/record.rs`, which the stable tests
//! also run over the committed corpus.

#![no_main]

#[path = "../harness/record.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
