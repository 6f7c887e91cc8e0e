//! A config from arbitrary text: `Config::from_toml`, then the monitor plan
//! built with the built-in detectors, then a monitor of that plan fed a few
//! records. Nothing may panic: a bad key is an error that names it.

use std::path::PathBuf;

use chrono::DateTime;
use monitor_core::record::Record;
use monitor_core::registry::BuildContext;
use monitor_runtime::Config;
use monitor_strategies::Monitor;

const RECORDS: &[&str] = &[
    r#"{"model": "fraud", "id": "a", "latency_ms": 12.5, "prediction": "fraud", "features": {"amount": 120.5, "country": "DE"}, "metrics": {"accuracy": 0.9}}"#,
    r#"{"model": "fraud", "id": "a", "label": "legit"}"#,
    r#"{"model": "fraud", "version": "v2", "latency_ms": 0, "prediction": 0.3, "label": 1, "features": {"amount": null}}"#,
    r#"{"model": "search", "latency_ms": 1e9, "features": {"country": "FR", "amount": -3}}"#,
];

/// Checks one input; panics on a defect.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = match Config::from_toml(text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    config.validate().expect("a parsed config is valid");
    let ctx = BuildContext {
        detectors: monitor_strategies::builtin_detectors(),
        // Relative reference files resolve to nothing here.
        base_dir: PathBuf::from("/nonexistent/model-monitor-fuzz"),
        ..BuildContext::default()
    };
    let plan = match config.plan(&ctx) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // A reference file is read here: a missing one is an error.
    let Ok(mut monitor) = Monitor::new(plan) else { return };
    let mut events = Vec::new();
    let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("a valid time");
    for (seq, line) in RECORDS.iter().cycle().take(12).enumerate() {
        let ts = t0 + chrono::Duration::seconds(seq as i64);
        let record = Record::parse(line, ts).expect("the fixed records are valid");
        let _ = monitor.process(seq as u64, &record, &mut events);
    }
}
