//! A feed of every window verdict, for reports and dashboards: each
//! detector's statistic over time, not only the findings it causes.
//!
//! The monitor hands each verdict to a [`WindowFeed`] by reference, as it is
//! applied, so that a feed that keeps nothing costs nothing, and one that
//! keeps a bounded summary decides itself what to copy.

use std::fmt;

use chrono::{DateTime, Utc};
use monitor_core::detector::{Assessment, Detector};
use monitor_core::event::EventKind;
use monitor_core::signal::SignalRef;

/// One verdict of one detector of one model version.
#[derive(Clone, Copy)]
pub struct WindowPoint<'a> {
    /// The model.
    pub model: &'a str,
    /// The version.
    pub version: &'a str,
    /// The signal watched.
    pub signal: SignalRef<'a>,
    /// Index of the `[[monitors]]` entry that made the detector.
    pub monitor: usize,
    /// The detector, which a feed may ask for more (its kind, its
    /// [`compare`](Detector::compare) at a finding).
    pub detector: &'a dyn Detector,
    /// The input line of the record that caused the verdict.
    pub seq: u64,
    /// Event time of the verdict.
    pub ts: DateTime<Utc>,
    /// The verdict, after any multiple-test correction.
    pub assessment: &'a Assessment,
    /// The finding or recovery this verdict caused, if any.
    pub event: Option<&'a EventKind>,
}

impl fmt::Debug for WindowPoint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowPoint")
            .field("model", &self.model)
            .field("version", &self.version)
            .field("signal", &self.signal)
            .field("monitor", &self.monitor)
            .field("detector", &self.detector.kind())
            .field("seq", &self.seq)
            .field("ts", &self.ts)
            .field("assessment", self.assessment)
            .field("event", &self.event)
            .finish()
    }
}

/// Takes every window verdict of a [`Monitor`](super::Monitor) (see
/// [`Monitor::set_window_feed`](super::Monitor::set_window_feed)). It runs on
/// the monitor's hot path: keep it cheap and bounded.
pub trait WindowFeed: Send + fmt::Debug {
    /// One verdict.
    fn window(&mut self, point: &WindowPoint<'_>);
}
