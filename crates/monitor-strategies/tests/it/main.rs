//! Integration tests of monitor-strategies: parity with River and SciPy,
//! state round trips, config errors and the monitor's handling of bad input.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::type_complexity, missing_docs, unreachable_pub)]

mod river;
mod scipy;
#[rustfmt::skip]
mod scipy_cases;
mod detectors;
mod effect;
#[rustfmt::skip]
mod effect_cases;
mod fuzz_corpus;
mod monitor;
mod multivariate;
mod nannyml;
#[rustfmt::skip]
mod nannyml_cases;
mod performance_config;
mod properties;
mod quality;
mod snapshot;
mod time_windows;
