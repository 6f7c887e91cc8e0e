//! Retrain policies: when the findings of a model's monitors add up to a
//! retraining job.

use std::fmt;

use chrono::{DateTime, Utc};
use monitor_core::Error;
use monitor_core::duration::HumanDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many of a model version's monitors must be in drift to retrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trigger {
    /// Any one monitor in drift.
    #[default]
    Any,
    /// Every monitor in drift.
    All,
    /// More than half of the monitors in drift.
    Majority,
    /// At least `k` monitors in drift.
    AtLeast(usize),
}

impl Trigger {
    /// Whether `failing` monitors out of `total` satisfy this trigger.
    pub fn fires(self, failing: usize, total: usize) -> bool {
        if failing == 0 {
            return false;
        }
        match self {
            Self::Any => true,
            Self::All => failing >= total,
            Self::Majority => failing * 2 > total,
            Self::AtLeast(k) => failing >= k,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::All => f.write_str("all"),
            Self::Majority => f.write_str("majority"),
            Self::AtLeast(k) => write!(f, "at_least = {k}"),
        }
    }
}

impl Serialize for Trigger {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::AtLeast(k) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("at_least", k)?;
                map.end()
            }
            other => serializer.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for Trigger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            AtLeast { at_least: usize },
        }
        const EXPECTED: &str = "expected \"any\", \"all\", \"majority\" or { at_least = K }";
        match Raw::deserialize(deserializer).map_err(|_| serde::de::Error::custom(EXPECTED))? {
            Raw::Name(n) => match n.as_str() {
                "any" => Ok(Self::Any),
                "all" => Ok(Self::All),
                "majority" => Ok(Self::Majority),
                other => Err(serde::de::Error::custom(format!("unknown trigger `{other}`: {EXPECTED}"))),
            },
            Raw::AtLeast { at_least } => Ok(Self::AtLeast(at_least)),
        }
    }
}

/// A retrain policy, as written under `[policy]` or `[models.<name>.policy]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// How many monitors must be in drift (default `any`).
    #[serde(default)]
    pub trigger: Trigger,
    /// No new request for the same model version within this much event
    /// time after the last one (default 30m).
    #[serde(default = "default_cooldown")]
    pub cooldown: HumanDuration,
    /// No decision before the model version has sent this many records (default 100).
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
}

fn default_cooldown() -> HumanDuration {
    HumanDuration::from_secs(30 * 60)
}

fn default_min_samples() -> u64 {
    100
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { trigger: Trigger::Any, cooldown: default_cooldown(), min_samples: default_min_samples() }
    }
}

/// The longest `cooldown` that can be set (365 days).
pub const MAX_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);
/// The largest `min_samples` that can be set.
pub const MAX_MIN_SAMPLES: u64 = 1_000_000_000;

impl PolicyConfig {
    /// Checks ranges; keys are relative to the policy table.
    pub fn validate(&self) -> Result<(), Error> {
        if self.trigger == Trigger::AtLeast(0) {
            return Err(Error::config("trigger.at_least", "must be at least 1 (got 0)"));
        }
        if self.cooldown.as_std() > MAX_COOLDOWN {
            return Err(Error::config("cooldown", format!("must be at most 365d (got {})", self.cooldown)));
        }
        if self.min_samples > MAX_MIN_SAMPLES {
            return Err(Error::config(
                "min_samples",
                format!("must be at most {MAX_MIN_SAMPLES} (got {})", self.min_samples),
            ));
        }
        Ok(())
    }
}

/// The policy's memory for one model version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Records seen for this model version.
    pub samples: u64,
    /// Event time of the last retrain request.
    pub last_request: Option<DateTime<Utc>>,
    /// Whether new evidence of drift (a drift finding opened, a change
    /// detected) arrived since the last request. A request answers it; a
    /// condition that merely stays open is no new evidence.
    #[serde(default)]
    pub new_evidence: bool,
}

impl PolicyState {
    /// Whether a request may go out now: enough samples, new evidence of
    /// drift since the last request, the trigger satisfied by `failing` of
    /// `total` monitors, and the cooldown over.
    pub fn should_request(&self, policy: &PolicyConfig, failing: usize, total: usize, now: DateTime<Utc>) -> bool {
        self.new_evidence
            && self.samples >= policy.min_samples
            && policy.trigger.fires(failing, total)
            && self.last_request.is_none_or(|t| {
                // Saturates: a cooldown past the end of time never ends.
                t.checked_add_signed(policy.cooldown.as_chrono()).is_some_and(|end| now >= end)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_count_failing_monitors() {
        assert!(Trigger::Any.fires(1, 5));
        assert!(!Trigger::Any.fires(0, 5));
        assert!(Trigger::All.fires(3, 3) && !Trigger::All.fires(2, 3));
        assert!(Trigger::Majority.fires(2, 3) && !Trigger::Majority.fires(2, 4));
        assert!(Trigger::AtLeast(2).fires(2, 9) && !Trigger::AtLeast(2).fires(1, 9));
    }

    #[test]
    fn parses_every_trigger_shape() {
        #[derive(Deserialize)]
        struct T {
            trigger: Trigger,
        }
        let parse = |s: &str| toml::from_str::<T>(s).map(|t| t.trigger).map_err(|e| e.to_string());
        assert_eq!(parse("trigger = \"majority\""), Ok(Trigger::Majority));
        assert_eq!(parse("trigger = { at_least = 2 }"), Ok(Trigger::AtLeast(2)));
        assert!(parse("trigger = \"most\"").unwrap_err().contains("unknown trigger `most`"));
    }

    #[test]
    fn cooldown_and_min_samples_hold_requests_back() {
        let policy =
            PolicyConfig { min_samples: 10, cooldown: HumanDuration::from_secs(60), ..PolicyConfig::default() };
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut state = PolicyState { samples: 9, last_request: None, new_evidence: true };
        assert!(!state.should_request(&policy, 1, 1, t0));
        state.samples = 10;
        assert!(state.should_request(&policy, 1, 1, t0));
        state.last_request = Some(t0);
        assert!(!state.should_request(&policy, 1, 1, t0 + chrono::Duration::seconds(59)));
        assert!(state.should_request(&policy, 1, 1, t0 + chrono::Duration::seconds(60)));
        // Drift that merely stays open is no new evidence: no new request.
        state.new_evidence = false;
        assert!(!state.should_request(&policy, 1, 1, t0 + chrono::Duration::seconds(600)));
    }

    #[test]
    fn a_cooldown_past_the_end_of_time_never_ends_and_never_panics() {
        let policy = PolicyConfig { cooldown: HumanDuration::from_secs(u64::MAX / 4), ..PolicyConfig::default() };
        let last = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(1);
        let state = PolicyState { samples: 1000, last_request: Some(last), new_evidence: true };
        assert!(!state.should_request(&policy, 1, 1, DateTime::<Utc>::MAX_UTC));
        assert!(
            policy.validate().unwrap_err().to_string().starts_with("config error at `cooldown`: must be at most 365d")
        );
    }
}
