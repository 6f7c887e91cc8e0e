//! Signal patterns in config: an exact name or a glob with `*`.

use std::fmt;

use monitor_core::signal::SignalRef;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which signals a monitor applies to: `metrics.accuracy`, `features.*`,
/// `*` (every signal). `*` matches any run of characters, `.` included.
///
/// The signals that the monitor derives (`quality.*`: missing values, empty
/// windows; `perf.*`, `estimated.*`, `multivariate.*`: one value per
/// window) are matched only by patterns that name them, starting with their
/// prefix: `*` or `*.amount` leave them out, so that a monitor written for
/// the signals of the records does not also test the derived ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignalPattern {
    text: String,
}

impl SignalPattern {
    /// A pattern from its text. Only names that could match a signal are
    /// accepted: `latency_ms`, `prediction`, `error`, `features.…`, `metrics.…`,
    /// `quality.…`, or globs.
    pub fn new(text: impl Into<String>) -> Result<Self, String> {
        let text = text.into();
        if text.is_empty() {
            return Err("a signal pattern must not be empty".into());
        }
        if !text.contains('*') {
            text.parse::<monitor_core::signal::Signal>().map_err(|e| e.to_string())?;
        }
        Ok(Self { text })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this pattern is a glob rather than one signal name.
    pub fn is_glob(&self) -> bool {
        self.text.contains('*')
    }

    /// Whether `signal` matches.
    pub fn matches(&self, signal: SignalRef<'_>) -> bool {
        let (prefix, name) = match signal {
            SignalRef::LatencyMs => ("", "latency_ms"),
            SignalRef::Prediction => ("", "prediction"),
            SignalRef::Error => ("", "error"),
            SignalRef::Feature(n) => ("features.", n),
            SignalRef::Metric(n) => ("metrics.", n),
            SignalRef::Quality(n) => ("quality.", n),
            SignalRef::Perf(n) => ("perf.", n),
            SignalRef::Estimated(n) => ("estimated.", n),
            SignalRef::Multivariate(n) => ("multivariate.", n),
        };
        if !prefix.is_empty() && !matches!(prefix, "features." | "metrics.") && !self.text.starts_with(prefix) {
            return false;
        }
        glob_match(self.text.as_bytes(), prefix.as_bytes(), name.as_bytes())
    }
}

/// Glob match of `pattern` against the concatenation `a ++ b`, without allocating.
fn glob_match(pattern: &[u8], a: &[u8], b: &[u8]) -> bool {
    let len = a.len() + b.len();
    let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < len {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if p < pattern.len() && pattern[p] == at(t) {
            p += 1;
            t += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

impl fmt::Display for SignalPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for SignalPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for SignalPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> SignalPattern {
        SignalPattern::new(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn globs_match_features_and_metrics() {
        assert!(pattern("features.*").matches(SignalRef::Feature("amount")));
        assert!(!pattern("features.*").matches(SignalRef::Metric("amount")));
        assert!(pattern("*").matches(SignalRef::LatencyMs));
        assert!(pattern("metrics.*_score").matches(SignalRef::Metric("f1_score")));
        assert!(!pattern("metrics.*_score").matches(SignalRef::Metric("accuracy")));
        assert!(pattern("latency_ms").matches(SignalRef::LatencyMs));
        assert!(!pattern("latency_ms").matches(SignalRef::Error));
    }

    #[test]
    fn derived_signals_are_matched_only_by_name() {
        assert!(pattern("quality.missing.*").matches(SignalRef::Quality("missing.amount")));
        assert!(pattern("quality.*").matches(SignalRef::Quality("no_data")));
        assert!(pattern("quality.no_data").matches(SignalRef::Quality("no_data")));
        assert!(!pattern("*").matches(SignalRef::Quality("no_data")));
        assert!(!pattern("*.amount").matches(SignalRef::Quality("missing.amount")));
        assert!(pattern("perf.*").matches(SignalRef::Perf("roc_auc")));
        assert!(pattern("estimated.f1").matches(SignalRef::Estimated("f1")));
        assert!(!pattern("*").matches(SignalRef::Estimated("f1")));
        assert!(!pattern("*.f1").matches(SignalRef::Perf("f1")));
        assert!(pattern("multivariate.*").matches(SignalRef::Multivariate("reconstruction_error")));
        assert!(!pattern("quality.missing.*").matches(SignalRef::Feature("amount")));
    }

    #[test]
    fn names_that_match_nothing_are_rejected() {
        assert!(SignalPattern::new("latency").is_err());
        assert!(SignalPattern::new("").is_err());
    }
}
