//! `[[performance]]` and `[[reconstruction]]` as a config file gives them:
//! an unknown key is refused with its name, and every size out of its
//! bounds is refused with its dotted key, its bounds and the value given.

use monitor_strategies::MonitorPlan;
use monitor_strategies::performance::{MAX_REFERENCE, MAX_WINDOW, PerformanceSpec, ReconstructionSpec};
use serde::Deserialize;

/// The two tables of a config file.
#[derive(Deserialize)]
struct Tables {
    #[serde(default)]
    performance: Vec<PerformanceSpec>,
    #[serde(default)]
    reconstruction: Vec<ReconstructionSpec>,
}

/// Parses and validates `text` as the config loader does: the path of a
/// parse error, then the plan's validation; the error's text.
fn error_of(text: &str) -> String {
    let de = toml::Deserializer::parse(text).unwrap();
    let tables: Tables = match serde_path_to_error::deserialize(de) {
        Ok(t) => t,
        Err(e) => return format!("{}: {}", e.path(), e.inner().message()),
    };
    let plan =
        MonitorPlan { performance: tables.performance, reconstruction: tables.reconstruction, ..Default::default() };
    match plan.validate() {
        Ok(()) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(text: &str, want: &[&str]) {
    let got = error_of(text);
    for w in want {
        assert!(got.contains(w), "`{w}` not in `{got}` for\n{text}");
    }
}

#[test]
fn unknown_keys_are_named() {
    assert_error("[[performance]]\nwindw = 10\n", &["unknown field `windw`", "window"]);
    assert_error(
        "[[performance]]\nestimate = { reference = 100, calibrate = \"none\" }\n",
        &["performance[0].estimate", "unknown field `calibrate`", "calibration"],
    );
    assert_error("[[reconstruction]]\nvarience = 0.5\n", &["unknown field `varience`", "variance"]);
    assert_error("[[performance]]\nproblem = \"ranking\"\n", &["performance[0].problem", "unknown variant `ranking`"]);
    assert_error(
        "[[performance]]\nestimate = { reference = 100, calibration = \"platt\" }\n",
        &["performance[0].estimate.calibration", "unknown variant `platt`"],
    );
}

#[test]
fn performance_sizes_out_of_bounds_name_their_key() {
    assert_error(
        "[[performance]]\nwindow = 0\n",
        &["performance[0].window", &format!("between 1 and {MAX_WINDOW}"), "(got 0)"],
    );
    assert_error(
        &format!("[[performance]]\nwindow = {}\n", MAX_WINDOW + 1),
        &["performance[0].window", &format!("(got {})", MAX_WINDOW + 1)],
    );
    assert_error(
        "[[performance]]\nopen_windows = 65\n",
        &["performance[0].open_windows", "between 1 and 64", "(got 65)"],
    );
    assert_error("[[performance]]\nopen_windows = 0\n", &["performance[0].open_windows", "(got 0)"]);
    assert_error("[[performance]]\nmin_labels = 0.0\n", &["performance[0].min_labels", "(0, 1]", "(got 0)"]);
    assert_error("[[performance]]\nmin_labels = 1.5\n", &["performance[0].min_labels", "(got 1.5)"]);
    assert_error("[[performance]]\nthreshold = nan\n", &["performance[0].threshold", "finite"]);
    assert_error("[[performance]]\nscore = \"latency_ms\"\n", &["performance[0].score", "metrics.<name>"]);
    assert_error("[[performance]]\nmodels = []\n", &["performance[0].models", "at least one model"]);
    assert_error(
        "[[performance]]\nwindow = 100\nestimate = { reference = 150 }\n",
        &["performance[0].estimate.reference", "between 200 and", "(got 150)", "two windows"],
    );
    assert_error(
        &format!("[[performance]]\nestimate = {{ reference = {} }}\n", MAX_REFERENCE + 1),
        &["performance[0].estimate.reference", &format!("(got {})", MAX_REFERENCE + 1)],
    );
    assert_error(
        "[[performance]]\nproblem = \"regression\"\nestimate = { reference = 5000 }\n",
        &["performance[0].estimate", "binary"],
    );
    // The index is that of the entry at fault.
    assert_error("[[performance]]\n[[performance]]\nwindow = 0\n", &["performance[1].window"]);
}

#[test]
fn reconstruction_sizes_out_of_bounds_name_their_key() {
    assert_error("[[reconstruction]]\nwindow = 0\n", &["reconstruction[0].window", "(got 0)"]);
    assert_error(
        "[[reconstruction]]\nwindow = 100\nreference = 199\n",
        &["reconstruction[0].reference", "between 200 and", "(got 199)"],
    );
    // The default reference is 10 windows: too large a window says so.
    assert_error(
        "[[reconstruction]]\nwindow = 200000\n",
        &["reconstruction[0].reference", "(got 2000000)", "10 windows when not set"],
    );
    assert_error("[[reconstruction]]\nmax_categories = 1\n", &["reconstruction[0].max_categories", "(got 1)"]);
    assert_error("[[reconstruction]]\nmax_categories = 10001\n", &["reconstruction[0].max_categories", "(got 10001)"]);
    assert_error("[[reconstruction]]\nvariance = 1.0\n", &["reconstruction[0].variance", "(0, 1)", "(got 1)"]);
    assert_error("[[reconstruction]]\nfeatures = []\n", &["reconstruction[0].features", "(got 0)"]);
    let many: Vec<String> = (0..257).map(|i| format!("\"f{i}\"")).collect();
    assert_error(
        &format!("[[reconstruction]]\nfeatures = [{}]\n", many.join(", ")),
        &["reconstruction[0].features", "between 1 and 256", "(got 257)"],
    );
    let wide: Vec<String> = (0..200).map(|i| format!("\"f{i}\"")).collect();
    assert_error(
        &format!("[[reconstruction]]\nwindow = 100000\nreference = 200000\nfeatures = [{}]\n", wide.join(", ")),
        &["reconstruction[0].reference", "200000 records of 200 features", "20000000 values"],
    );
}

#[test]
fn entries_within_bounds_are_accepted() {
    let text = "[[performance]]\nwindow = 5000\nestimate = { reference = 50000 }\n\
                [[reconstruction]]\nfeatures = [\"a\", \"b\"]\nwindow = 5000\nreference = 50000\n";
    let de = toml::Deserializer::parse(text).unwrap();
    let tables: Tables = serde_path_to_error::deserialize(de).unwrap();
    let plan =
        MonitorPlan { performance: tables.performance, reconstruction: tables.reconstruction, ..Default::default() };
    plan.validate().unwrap();
    assert_eq!(plan.performance[0].estimate.as_ref().map(|e| e.reference), Some(50_000));
    assert_eq!(plan.reconstruction[0].reference(), 50_000);
}
