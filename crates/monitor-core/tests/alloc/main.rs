//! Heap allocations of parsing a record, counted by a counting allocator.
//! One test in its own binary, so that nothing else allocates meanwhile.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, unreachable_pub)]

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A car-loan record: 7 features (5 numeric, 2 categorical), a prediction
/// and a label.
const CAR_LOAN: &str = r#"{"model": "car-loan", "version": "v1", "ts": "2026-11-23T10:00:00Z", "id": "8412", "prediction": 1, "label": 1, "features": {"car_value": 39811.0, "salary_range": "40K - 60K", "debt_to_income_ratio": 0.632, "loan_length": 3.0, "repaid_loan_on_prev_car": false, "size_of_downpayment": 0.4, "driver_tenure": 0.21}}"#;

#[test]
fn parsing_a_record_allocates_a_bounded_number_of_times() {
    let now = chrono::Utc::now();
    // Warm up whatever is initialised lazily.
    drop(monitor_core::record::Record::parse(CAR_LOAN, now).unwrap());
    let region = Region::new(ALLOCATOR);
    let record = monitor_core::record::Record::parse(CAR_LOAN, now).unwrap();
    let stats = region.change();
    drop(record);
    let n = stats.allocations + stats.reallocations;
    println!("allocations per car-loan record: {n} ({} bytes)", stats.bytes_allocated);
    // What is owned: model, version, id, 7 feature names, 2 classes and the
    // map's node; the borrowed parse tree's two vectors.
    assert!(n <= 15, "{n} allocations to parse one record");
}
