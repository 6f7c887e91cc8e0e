//! Range checks of config values, with errors that name the key, the bound
//! and the value given.

use std::time::Duration;

use monitor_core::duration::HumanDuration;
use monitor_core::{Error, Result};

/// Checks a size (a queue, a number of jobs): from 1 to `max`.
pub(crate) fn size(key: &str, value: usize, max: usize) -> Result<()> {
    if value == 0 || value > max {
        return Err(Error::config(key, format!("must be between 1 and {max} (got {value})")));
    }
    Ok(())
}

/// Checks a duration: at most `max`.
pub(crate) fn at_most(key: &str, value: Duration, max: Duration) -> Result<()> {
    if value > max {
        return Err(Error::config(
            key,
            format!("must be at most {} (got {})", HumanDuration(max), HumanDuration(value)),
        ));
    }
    Ok(())
}

/// Checks a duration: more than zero (`zero` says what zero would do) and
/// at most `max`.
pub(crate) fn positive(key: &str, value: Duration, max: Duration, zero: &str) -> Result<()> {
    if value.is_zero() {
        return Err(Error::config(key, format!("must be more than 0s: {zero}")));
    }
    at_most(key, value, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_the_bound_and_the_value() {
        assert_eq!(
            size("queue", 1_000_000_000_000, 100_000).unwrap_err().to_string(),
            "config error at `queue`: must be between 1 and 100000 (got 1000000000000)"
        );
        assert!(size("queue", 1, 1).is_ok());
        assert_eq!(
            at_most("timeout", Duration::from_secs(7200), Duration::from_secs(300)).unwrap_err().to_string(),
            "config error at `timeout`: must be at most 5m (got 2h)"
        );
        assert_eq!(
            positive("timeout", Duration::ZERO, Duration::from_secs(1), "it would end at once")
                .unwrap_err()
                .to_string(),
            "config error at `timeout`: must be more than 0s: it would end at once"
        );
    }
}
