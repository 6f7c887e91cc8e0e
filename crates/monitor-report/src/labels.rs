//! Chart titles and axis labels: what a detector's statistic is, in which
//! unit, from the monitor's config.

use crate::collect::MonitorInfo;
use crate::model::SeriesData;

/// The unit of a signal's values, where it has one.
pub(crate) fn unit(signal: &str) -> Option<&'static str> {
    match signal {
        "latency_ms" => Some("ms"),
        "error" => Some("error: 0/1 or absolute"),
        s if s.starts_with("quality.missing.") => Some("share missing"),
        _ => None,
    }
}

fn with_unit(text: String, signal: &str) -> String {
    match unit(signal) {
        Some(u) => format!("{text} ({u})"),
        None => text,
    }
}

/// A parameter of the monitor's detector, as text.
fn param(info: Option<&MonitorInfo>, key: &str) -> Option<String> {
    let v = info?.params.get(key)?;
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.values().next().map(|x| x.to_string().trim_matches('"').to_owned()),
        other => Some(other.to_string()),
    }
}

/// The configured bounds of a threshold detector: (name, value).
pub(crate) fn bounds(info: Option<&MonitorInfo>) -> Vec<(&'static str, f64)> {
    let Some(info) = info.filter(|i| i.kind == "threshold") else { return Vec::new() };
    ["min", "max", "warn_min", "warn_max"]
        .into_iter()
        .filter_map(|k| info.params.get(k).and_then(serde_json::Value::as_f64).map(|v| (k, v)))
        .collect()
}

/// What the y axis of a series' timeline shows.
pub(crate) fn y_label(series: &SeriesData, info: Option<&MonitorInfo>, p_values: bool) -> String {
    if p_values {
        return "p-value of the test (log scale)".to_owned();
    }
    let s = series.signal.as_str();
    match series.detector.as_str() {
        "threshold" | "adaptive_threshold" | "mean_shift" => {
            let stat = param(info, "statistic").unwrap_or_else(|| "mean".to_owned());
            with_unit(format!("window {stat} of {s}"), s)
        }
        "ks" => "KS distance D (0–1)".to_owned(),
        "psi" => "population stability index".to_owned(),
        "jensen_shannon" => "Jensen–Shannon distance (0–1)".to_owned(),
        "wasserstein" => "Wasserstein distance (reference std devs)".to_owned(),
        "chi_square" => "chi-square statistic".to_owned(),
        "drift" => "distance from the reference".to_owned(),
        "missing" | "unseen_categories" | "out_of_range" | "type_change" => format!("share of {s} samples"),
        "adwin" => with_unit(format!("ADWIN: window mean of {s}"), s),
        "kswin" => "KSWIN: KS distance D (0–1)".to_owned(),
        "page_hinkley" => "Page–Hinkley cumulative deviation".to_owned(),
        "cusum" => "CUSUM statistic".to_owned(),
        "ewma" => "EWMA control statistic".to_owned(),
        "ddm" | "eddm" => format!("{}: error-rate level", series.detector.to_uppercase()),
        other => format!("{other} statistic"),
    }
}

/// A chart's title: the signal, the detector, and its key parameters.
pub(crate) fn title(series: &SeriesData, info: Option<&MonitorInfo>) -> String {
    let mut params = Vec::new();
    for key in ["statistic", "window", "reference", "min", "max", "alpha", "threshold"] {
        if let Some(v) = param(info, key) {
            params.push(format!("{key} {v}"));
        }
    }
    let params = if params.is_empty() { String::new() } else { format!(" ({})", params.join(", ")) };
    format!("{} — {}{params}", series.signal, series.detector)
}

/// The kind of signal, for grouping a version's charts.
pub(crate) fn group(signal: &str) -> &'static str {
    if signal == "error" || signal.starts_with("perf.") || signal.starts_with("estimated.") {
        "Performance (from labels)"
    } else if signal == "latency_ms" {
        "Service"
    } else if signal.starts_with("metrics.") {
        "Reported metrics"
    } else if signal.starts_with("quality.") {
        "Data quality"
    } else {
        "Inputs and outputs"
    }
}
