//! When a window-based detector evaluates: tumbling or sliding with a step.

use monitor_core::Error;

/// Evaluate once the window is full, then every `step` samples. A step equal
/// to the window (the default) makes the window tumbling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cadence {
    step: usize,
    since: usize,
}

impl Cadence {
    /// Every `step` samples; `None` means tumbling (`step = window`).
    pub fn new(window: usize, step: Option<usize>) -> Self {
        Self { step: step.unwrap_or(window).max(1), since: 0 }
    }

    /// Counts one sample; true when the detector should evaluate now.
    pub fn tick(&mut self, window_full: bool) -> bool {
        self.since += 1;
        if window_full && self.since >= self.step {
            self.since = 0;
            true
        } else {
            false
        }
    }

    /// Starts counting again.
    pub fn reset(&mut self) {
        self.since = 0;
    }
}

/// Checks `window` and `step` of a window-based detector.
pub(crate) fn validate_window(window: usize, step: Option<usize>) -> Result<(), Error> {
    if window == 0 {
        return Err(Error::config("window", "must be at least 1 (got 0)"));
    }
    if window > super::MAX_WINDOW {
        return Err(Error::config("window", format!("must be at most {} (got {window})", super::MAX_WINDOW)));
    }
    match step {
        Some(0) => Err(Error::config("step", "must be at least 1 (got 0)")),
        Some(s) if s > window => Err(Error::config("step", format!("must not exceed window = {window} (got {s})"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_evaluates_every_window() {
        let mut c = Cadence::new(3, None);
        let fired: Vec<bool> = (1..=7).map(|i| c.tick(i >= 3)).collect();
        assert_eq!(fired, [false, false, true, false, false, true, false]);
    }

    #[test]
    fn sliding_evaluates_every_step_once_full() {
        let mut c = Cadence::new(3, Some(1));
        let fired: Vec<bool> = (1..=5).map(|i| c.tick(i >= 3)).collect();
        assert_eq!(fired, [false, false, true, true, true]);
    }
}
