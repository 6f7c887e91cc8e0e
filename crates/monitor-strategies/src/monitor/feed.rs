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

#[cfg(test)]
mod tests {
    use monitor_core::event::EventKind;
    use monitor_core::record::Record;

    use super::{WindowFeed, WindowPoint};
    use crate::detectors::ThresholdConfig;
    use crate::{Monitor, MonitorPlan, MonitorSpec};

    /// Every point, as (seq, statistic, caused a finding).
    #[derive(Debug, Default, Clone)]
    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<(u64, f64, bool)>>>);

    impl WindowFeed for Recorder {
        fn window(&mut self, p: &WindowPoint<'_>) {
            let finding = matches!(p.event, Some(EventKind::Finding(_)));
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push((p.seq, p.assessment.statistic, finding));
        }
    }

    #[test]
    fn every_window_verdict_is_fed_with_the_finding_it_caused() {
        let threshold = ThresholdConfig { window: 2.into(), max: Some(100.0), ..Default::default() };
        let plan = MonitorPlan {
            monitors: vec![MonitorSpec::new("latency_ms", threshold).unwrap_or_else(|e| panic!("{e}"))],
            ..Default::default()
        };
        let mut monitor = Monitor::new(plan).unwrap_or_else(|e| panic!("{e}"));
        let recorder = Recorder::default();
        monitor.set_window_feed(Box::new(recorder.clone()));
        let mut events = Vec::new();
        for (seq, ms) in [10, 20, 300, 400, 10, 30].into_iter().enumerate() {
            let line = format!(r#"{{"model": "m", "latency_ms": {ms}}}"#);
            let record = Record::parse(&line, chrono::Utc::now()).unwrap_or_else(|e| panic!("{e}"));
            monitor.process(seq as u64, &record, &mut events).unwrap_or_else(|e| panic!("{e}"));
        }
        let points = recorder.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // Tumbling windows of two: three verdicts, the middle one a finding.
        assert_eq!(points, [(1, 15.0, false), (3, 350.0, true), (5, 20.0, false)]);
    }
}
