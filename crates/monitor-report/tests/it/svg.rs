//! Timelines and comparisons of a replay with a known change.

use monitor_report::Limits;

use crate::{collect, elements, f, page, plan, ts};

/// Latency 20 ms, 300 ms for records 1000 to 1399, then 20 ms again; the
/// feature `x` uniform on [0, 1), shifted by 0.5 from record 1000 on.
fn lines() -> impl Iterator<Item = String> {
    (0..2000u64).map(|i| {
        let latency = if (1000..1400).contains(&i) { 300.0 } else { 20.0 + (i % 7) as f64 };
        let x = ((i * 7919) % 1000) as f64 / 1000.0 + if i >= 1000 { 0.5 } else { 0.0 };
        format!(
            r#"{{"model": "m", "ts": "{}", "latency_ms": {latency}, "features": {{"x": {x}}}}}"#,
            ts(i).to_rfc3339()
        )
    })
}

fn monitors() -> monitor_strategies::MonitorPlan {
    plan(&[
        ("latency_ms", serde_json::json!({"kind": "threshold", "statistic": "mean", "window": 100, "max": 120.0})),
        ("features.x", serde_json::json!({"kind": "ks", "reference": 500, "window": 100})),
    ])
}

#[test]
fn each_detector_has_a_timeline_with_its_windows_markers_and_ranges() {
    let html = page(&collect(monitors(), Limits::REPLAY, lines()));
    let charts = elements(&html, "figure", "chart timeline");
    let signals: Vec<&str> = charts.iter().map(|c| c["data-signal"].as_str()).collect();
    assert_eq!(signals.len(), 2, "{signals:?}");
    assert!(signals.contains(&"latency_ms") && signals.contains(&"features.x"));

    // The plot areas of the timelines (their x axis is event time, in ms).
    let areas: Vec<_> = elements(&html, "rect", "plot-area").into_iter().filter(|a| f(a, "data-x1") > 1e12).collect();
    assert_eq!(areas.len(), 2);
    let series = elements(&html, "path", "series statistic");
    // One statistic series per timeline: 20 windows of latency, 15 of x
    // (after its reference of 500).
    let points: Vec<f64> = series.iter().map(|s| f(s, "data-points")).collect();
    assert!(points.contains(&20.0) && points.contains(&15.0), "{points:?}");

    // Both timelines of the version share the x axis: the first to the last window.
    for area in &areas {
        assert_eq!(f(area, "data-x0"), ts(99).timestamp_millis() as f64);
        assert_eq!(f(area, "data-x1"), ts(1999).timestamp_millis() as f64);
    }
    // The latency axis spans the statistic and the threshold.
    let latency = areas.iter().find(|a| f(a, "data-y1") >= 300.0).unwrap_or_else(|| panic!("no latency axis"));
    assert!(f(latency, "data-y0") <= 20.0);
    assert_eq!(elements(&html, "line", "threshold max").len(), 1);

    // A drift marker where each change was first judged (the window that
    // ends at line 1100), a recovery where latency came back.
    let drift = elements(&html, "g", "marker drift");
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(drift.iter().all(|m| f(m, "data-seq") == 1099.0));
    let recovered = elements(&html, "g", "marker recovered");
    assert!(recovered.iter().any(|m| f(m, "data-seq") == 1499.0), "{recovered:?}");

    // Each marker's line sits at its time on the axis.
    let area = &areas[0];
    let (x0, x1) = (f(area, "data-x0"), f(area, "data-x1"));
    let (left, width) = (f(area, "x"), f(area, "width"));
    let lines = elements(&html, "line", "marker-line");
    let markers = elements(&html, "g", "marker ");
    assert_eq!(lines.len(), markers.len());
    for (line, marker) in lines.iter().zip(&markers) {
        let expected = left + (f(marker, "data-ms") - x0) / (x1 - x0) * width;
        assert!((f(line, "x1") - expected).abs() <= 0.1, "marker at {} not {expected}", f(line, "x1"));
    }
}

#[test]
fn a_distribution_finding_shows_reference_against_current() {
    let html = page(&collect(monitors(), Limits::REPLAY, lines()));
    let comparisons = elements(&html, "figure", "chart comparison");
    assert_eq!(comparisons.len(), 1, "one finding of a two-sample test: {comparisons:?}");
    assert_eq!(comparisons[0]["data-kind"], "ecdf");
    assert_eq!(comparisons[0]["data-signal"], "features.x");
    assert_eq!(f(&comparisons[0], "data-seq"), 1099.0);
    assert_eq!(elements(&html, "path", "series reference").len(), 1);
    assert_eq!(elements(&html, "path", "series current").len(), 1);
    // The current window lies half a unit above the reference: the axis spans both.
    let area =
        elements(&html, "rect", "plot-area").into_iter().find(|a| f(a, "data-y1") == 1.0 && f(a, "data-x1") >= 1.4);
    assert!(area.is_some(), "the ECDF's x axis covers 0 to 1.5");
    // The p-value timeline of the test shows where p fell below alpha.
    assert!(html.contains("p-value of the test (log scale)"));
}

#[test]
fn categorical_findings_are_bars() {
    let lines = (0..1200u64).map(|i| {
        let c = if i < 1000 { ["a", "b", "c"][(i % 3) as usize] } else { "d" };
        format!(r#"{{"model": "m", "ts": "{}", "features": {{"c": "{c}"}}}}"#, ts(i).to_rfc3339())
    });
    let p = plan(&[("features.c", serde_json::json!({"kind": "chi_square", "reference": 600, "window": 100}))]);
    let html = page(&collect(p, Limits::REPLAY, lines));
    let comparisons = elements(&html, "figure", "chart comparison");
    assert_eq!(comparisons[0]["data-kind"], "bars");
    // Four categories, two bars each.
    assert_eq!(elements(&html, "rect", "bar reference").len(), 4);
    assert_eq!(elements(&html, "rect", "bar current").len(), 4);
}

#[test]
fn retrain_jobs_are_marked_on_every_timeline_of_their_version() {
    let mut p = monitors();
    p.policy.min_samples = 1;
    let html = page(&collect(p, Limits::REPLAY, lines()));
    let jobs = elements(&html, "g", "job ");
    assert_eq!(jobs.len(), 2, "one request, on both timelines: {jobs:?}");
    assert!(jobs.iter().all(|j| f(j, "data-ms") == ts(1099).timestamp_millis() as f64));
}

#[test]
fn the_report_stays_small_however_many_models() {
    // 1,500 models of 300 records, windows of 10: more versions than collected.
    let lines = (0..1500u64 * 300).map(|i| {
        format!(
            r#"{{"model": "model-{:04}", "ts": "{}", "latency_ms": {}}}"#,
            i % 1500,
            ts(i / 1500).to_rfc3339(),
            (i % 97) as f64
        )
    });
    let p = plan(&[("latency_ms", serde_json::json!({"kind": "threshold", "window": 10, "max": 90.0}))]);
    let report = collect(p, Limits::REPLAY, lines);
    assert_eq!(report.versions.len(), Limits::REPLAY.versions);
    assert!(report.versions_dropped > 0);
    let html = page(&report);
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
    // Every version is in the status table; those past the budget are listed, not drawn.
    assert_eq!(elements(&html, "tr", "version-row").len(), Limits::REPLAY.versions);
    assert!(html.contains("Not drawn, to keep this page small"));
}

/// Beside an estimate (`estimated.accuracy`), the realised value of the
/// same windows (`perf.accuracy`) is drawn on the same chart.
#[test]
fn an_estimate_is_drawn_with_its_realised_value() {
    use monitor_core::detector::DriftStatus;
    use monitor_report::model::{Bucket, SeriesData, VersionData};
    let limits = Limits::REPLAY;
    let mut version = VersionData::new("loans", "v1");
    for (signal, values) in [("estimated.accuracy", [0.91, 0.90, 0.88]), ("perf.accuracy", [0.92, 0.89, 0.80])] {
        let mut s = SeriesData::new(signal.into(), "adaptive_threshold".into(), 0, false);
        for (i, v) in values.iter().enumerate() {
            s.push(Bucket::single(i as i64 * 60_000, i as u64 * 100, *v, 0.85, None, DriftStatus::Stable), &limits);
        }
        version.series.push(s);
    }
    let report = monitor_report::Report { versions: vec![version], versions_dropped: 0, monitors: Vec::new(), limits };
    let html = monitor_report::report_page(&report, &monitor_report::PageMeta::default());
    let realised = super::elements(&html, "path", "series realised");
    assert_eq!(realised.len(), 1, "only the estimate's chart carries it");
    assert_eq!(realised[0].get("data-points").map(String::as_str), Some("3"));
    assert!(html.contains("realised (labels)"));
    // The axis spans both: the realised 0.80 lies below every estimate.
    let charts = super::elements(&html, "figure", "chart timeline");
    assert_eq!(charts.len(), 2);
}
