//! `eval`: configs compared on the demo's log, whose accuracy falls and
//! latency rises from line 900 on (see demo/generate.py).

use crate::{bin, scratch, text};

#[test]
fn a_stricter_threshold_detects_the_change_sooner_and_stable_stretches_count_false_alarms() {
    let dir = scratch("eval");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo");
    let config = std::fs::read_to_string(demo.join("monitor.toml")).unwrap();
    let monitors = config.split("[[observers]]").next().unwrap();
    std::fs::write(dir.path().join("a.toml"), monitors).unwrap();
    std::fs::write(dir.path().join("b.toml"), monitors.replace("min = 0.90, warn_min = 0.92", "min = 0.93")).unwrap();
    // A threshold no window meets: every window of the stable stretch is a false alarm.
    std::fs::write(dir.path().join("c.toml"), monitors.replace("min = 0.90, warn_min = 0.92", "min = 0.999")).unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["eval", demo.join("records.ndjson").to_str().unwrap()])
        .args(["--config", "a.toml", "--config", "b.toml", "--config", "c.toml"])
        .args(["--stable", "0..900", "--change", "900", "--format", "json", "--report", "eval.html"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results["records"], 1800);
    assert_eq!(results["stable_records"], 900);
    let configs = results["configs"].as_array().unwrap();
    let delay = |i: usize| configs[i]["delays"][0]["delay_records"].as_u64().unwrap();
    assert_eq!(configs[0]["false_alarms"], 0);
    assert!(delay(1) < delay(0), "min 0.93 fires before min 0.90: {} vs {}", delay(1), delay(0));
    assert!(configs[2]["false_alarms"].as_u64().unwrap() >= 1);
    let rate = configs[2]["false_alarms_per_100k"].as_f64().unwrap();
    let expected = configs[2]["false_alarms"].as_f64().unwrap() * 100_000.0 / 900.0;
    assert!((rate - expected).abs() < 1e-9);
    // Every alarm listed carries where and when it fired.
    for a in configs[0]["alarms"].as_array().unwrap() {
        assert!(a["seq"].is_u64() && a["ts"].is_string() && a["signal"].is_string(), "{a}");
    }
    let html = std::fs::read_to_string(dir.path().join("eval.html")).unwrap();
    assert_eq!(html.matches("<h2 class=\"config\">").count(), 3);

    // Text by default: a line per change point.
    let out = bin()
        .current_dir(dir.path())
        .args(["eval", demo.join("records.ndjson").to_str().unwrap(), "--config", "a.toml", "--change", "900"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.contains("change at 900: detected at "), "{stdout}");
}

#[test]
fn a_bad_range_names_the_argument() {
    let out = bin().args(["eval", "x.ndjson", "--config", "a.toml", "--stable", "9..3"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("TO must be greater than FROM"), "{}", text(&out.stderr));
}
