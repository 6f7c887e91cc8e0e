//! The `config` fuzz target: see `harness/config.rs`, which the stable tests
//! also run over the committed corpus.

#![no_main]

#[path = "../harness/config.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check(data));
