//! Window sizes: `window = 1000` counts samples, `window = "1h"` cuts event
//! time into tumbling windows. One type for the config key, the clock of
//! event-time windows, and the windowed statistic that `threshold`,
//! `mean_shift` and `adaptive_threshold` evaluate.
//!
//! Event-time windows are aligned to the epoch: with `window = "1h"` a
//! window is one clock hour, [k·1h, (k+1)·1h). A window closes when a sample
//! of a later window arrives, or when the monitor's clock has passed its
//! end by one more window (a version that went quiet). A sample whose
//! window has already closed is late: it is dropped and counted. A window
//! that ends without a sample gives no verdict; it is counted as empty, and
//! the monitor reports it on `quality.no_data`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use monitor_core::Error;
use monitor_core::detector::ClosedWindows;
use monitor_core::duration::HumanDuration;
use monitor_core::sketch::QuantileSketch;
use monitor_core::stats::{Ewma, Moments};
use monitor_core::window::{SlidingWindow, Statistic};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cadence::Cadence;

/// The longest event-time window (366 days).
pub const MAX_TIME_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// The size of a window: a number of samples, or a span of event time.
///
/// In config, `window = 1000` is 1000 samples and `window = "1h"` is
/// tumbling windows of one hour of event time.
///
/// ```
/// use monitor_strategies::detectors::WindowSize;
///
/// let w: WindowSize = serde_json::from_value(serde_json::json!("1h"))?;
/// assert_eq!(w.time().map(|d| d.as_std().as_secs()), Some(3600));
/// assert_eq!(WindowSize::from(1000).samples(), Some(1000));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSize {
    /// The last N samples.
    Samples(usize),
    /// Tumbling windows of this much event time.
    Time(HumanDuration),
}

impl WindowSize {
    /// The number of samples, for a count window.
    pub fn samples(self) -> Option<usize> {
        match self {
            Self::Samples(n) => Some(n),
            Self::Time(_) => None,
        }
    }

    /// The span, for an event-time window.
    pub fn time(self) -> Option<HumanDuration> {
        match self {
            Self::Samples(_) => None,
            Self::Time(d) => Some(d),
        }
    }

    /// The number of samples, or `otherwise` for an event-time window.
    pub(crate) fn samples_or(self, otherwise: usize) -> usize {
        self.samples().unwrap_or(otherwise)
    }
}

impl From<usize> for WindowSize {
    fn from(n: usize) -> Self {
        Self::Samples(n)
    }
}

impl From<HumanDuration> for WindowSize {
    fn from(d: HumanDuration) -> Self {
        Self::Time(d)
    }
}

impl fmt::Display for WindowSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Samples(n) => write!(f, "{n} samples"),
            Self::Time(d) => write!(f, "{d} of event time"),
        }
    }
}

impl Serialize for WindowSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Samples(n) => s.serialize_u64(*n as u64),
            Self::Time(d) => s.collect_str(d),
        }
    }
}

impl<'de> Deserialize<'de> for WindowSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WindowSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of samples (1000) or a span of event time (\"1h\")")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WindowSize, E> {
                usize::try_from(v).map(WindowSize::Samples).map_err(|_| E::custom(format!("{v} samples is too many")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WindowSize, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("must be a positive number of samples (got {v})")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WindowSize, E> {
                v.parse::<HumanDuration>().map(WindowSize::Time).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Checks a `window` and its `step`: a count between 1 and
/// [`MAX_WINDOW`](super::MAX_WINDOW), or a span between 1 ms and
/// [`MAX_TIME_WINDOW`]; event-time windows are tumbling, so they take no
/// `step`.
pub(crate) fn validate_window(window: WindowSize, step: Option<usize>) -> Result<(), Error> {
    match window {
        WindowSize::Samples(n) => super::cadence::validate_window(n, step),
        WindowSize::Time(d) => {
            if d.as_std() < Duration::from_millis(1) || d.as_std() > MAX_TIME_WINDOW {
                return Err(Error::config("window", format!("must be between 1ms and 366d of event time (got {d})")));
            }
            if step.is_some() {
                return Err(Error::config("step", "event-time windows are tumbling: remove `step`"));
            }
            Ok(())
        }
    }
}

/// The clock of tumbling event-time windows: which window is open, and
/// what closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWindows {
    span_ms: i64,
    /// The index (ms since the epoch / span) of the open window.
    open: Option<i64>,
    /// Samples in the open window.
    held: u64,
    /// Closed since last asked.
    closed: ClosedWindows,
}

impl TimeWindows {
    /// Windows of `span` (at least 1 ms).
    pub fn new(span: HumanDuration) -> Self {
        let span_ms = i64::try_from(span.as_std().as_millis()).unwrap_or(i64::MAX).max(1);
        Self { span_ms, open: None, held: 0, closed: ClosedWindows::default() }
    }

    fn index(&self, ts: DateTime<Utc>) -> i64 {
        ts.timestamp_millis().div_euclid(self.span_ms)
    }

    /// Moves the open window to `k`, counting what closes.
    fn close_until(&mut self, k: i64) -> bool {
        let Some(open) = self.open else {
            self.open = Some(k);
            return false;
        };
        if k <= open {
            return false;
        }
        let had_data = self.held > 0;
        if had_data {
            self.closed.with_data += 1;
        } else {
            self.closed.empty += 1;
        }
        // The windows strictly between were empty.
        self.closed.empty = self.closed.empty.saturating_add(k.saturating_sub(open).saturating_sub(1) as u64);
        self.open = Some(k);
        self.held = 0;
        had_data
    }

    /// A sample at `ts` arrives. `None`: it is late (its window has closed)
    /// and must be dropped. `Some(true)`: a window with samples closed
    /// before it, so the caller evaluates what it holds, then starts afresh
    /// with this sample. `Some(false)`: the sample joins the open window.
    pub fn arrive(&mut self, ts: DateTime<Utc>) -> Option<bool> {
        let k = self.index(ts);
        if self.open.is_some_and(|open| k < open) {
            self.closed.late += 1;
            return None;
        }
        let closed = self.close_until(k);
        self.held += 1;
        Some(closed)
    }

    /// Event time reached `now`: closes the windows that ended by then.
    /// True when the open window held samples and closed.
    pub fn advance(&mut self, now: DateTime<Utc>) -> bool {
        if self.open.is_none() {
            return false;
        }
        let k = self.index(now);
        self.close_until(k)
    }

    /// The windows closed, and the late samples dropped, since the last call.
    pub fn take_closed(&mut self) -> ClosedWindows {
        std::mem::take(&mut self.closed)
    }

    /// Forgets the open window.
    pub fn reset(&mut self) {
        *self = Self { span_ms: self.span_ms, open: None, held: 0, closed: ClosedWindows::default() };
    }
}

/// The samples of an event-time window, summarised as they come: count,
/// moments and extremes exactly, quantiles from a sketch (1% relative
/// error) when the statistic needs them. Bounded whatever the traffic.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TimeBuffer {
    moments: Moments,
    min: Option<f64>,
    max: Option<f64>,
    sketch: Option<QuantileSketch>,
}

impl TimeBuffer {
    fn new(stat: Statistic) -> Self {
        Self { sketch: stat.quantile().map(|_| QuantileSketch::default()), ..Self::default() }
    }

    fn add(&mut self, x: f64) {
        self.moments.add(x);
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
        if let Some(s) = &mut self.sketch {
            s.add(x);
        }
    }

    fn statistic(&self, stat: Statistic) -> Option<f64> {
        match stat {
            Statistic::Mean => self.moments.mean(),
            Statistic::Min => self.min,
            Statistic::Max => self.max,
            Statistic::StdDev => self.moments.std_dev(),
            Statistic::Count => Some(self.moments.count() as f64),
            Statistic::Ewma => None,
            q => q.quantile().and_then(|q| self.sketch.as_ref()?.quantile(q)),
        }
    }

    fn clear(&mut self) {
        self.moments = Moments::new();
        self.min = None;
        self.max = None;
        if let Some(s) = &mut self.sketch {
            s.clear();
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Inner {
    Count { window: SlidingWindow, cadence: Cadence },
    Time { clock: TimeWindows, buffer: TimeBuffer },
}

/// One statistic of a window of numbers, evaluated once per window (or
/// every `step` samples): over the last N samples, or over each event-time
/// window. Also keeps the EWMA, for `statistic = "ewma"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Windowed {
    stat: Statistic,
    ewma: Option<Ewma>,
    inner: Inner,
}

impl Windowed {
    /// A window of `size` evaluating `stat`; a count window slides by
    /// `step` (tumbling when absent); `sketch` keeps a quantile sketch in a
    /// count window; `ewma` is the average for `Statistic::Ewma`.
    pub(crate) fn new(
        size: WindowSize,
        step: Option<usize>,
        stat: Statistic,
        sketch: bool,
        ewma: Option<Ewma>,
    ) -> Self {
        let inner = match size {
            WindowSize::Samples(n) => {
                let mut window = SlidingWindow::new(n);
                if sketch {
                    window = window.with_sketch();
                }
                Inner::Count { window, cadence: Cadence::new(n, step) }
            }
            WindowSize::Time(span) => Inner::Time { clock: TimeWindows::new(span), buffer: TimeBuffer::new(stat) },
        };
        let ewma = if stat == Statistic::Ewma { ewma } else { None };
        Self { stat, ewma, inner }
    }

    fn value(&self) -> Option<f64> {
        if self.stat == Statistic::Ewma {
            return self.ewma.as_ref().and_then(Ewma::value);
        }
        match &self.inner {
            Inner::Count { window, .. } => window.statistic(self.stat),
            Inner::Time { buffer, .. } => buffer.statistic(self.stat),
        }
    }

    fn add_ewma(&mut self, x: f64) {
        if let Some(e) = &mut self.ewma {
            e.add(x);
        }
    }

    /// Adds `x` at `ts`. Returns the statistic when a window is evaluated:
    /// a count window once full and every `step` samples after, with `x`
    /// in it; an event-time window when `x` is the first sample after it,
    /// without `x`. `None` otherwise, for a late sample, and when the
    /// statistic is undefined.
    pub(crate) fn push(&mut self, ts: DateTime<Utc>, x: f64) -> Option<f64> {
        if let Inner::Count { window, cadence } = &mut self.inner {
            window.push(x);
            let evaluate = cadence.tick(window.is_full());
            self.add_ewma(x);
            return if evaluate { self.value() } else { None };
        }
        let closed = match &mut self.inner {
            Inner::Time { clock, .. } => clock.arrive(ts)?,
            Inner::Count { .. } => false,
        };
        let value = if closed { self.value() } else { None };
        if let Inner::Time { buffer, .. } = &mut self.inner {
            if closed {
                buffer.clear();
            }
            buffer.add(x);
        }
        self.add_ewma(x);
        value
    }

    /// Event time reached `now`: an event-time window that held samples and
    /// ended by then is evaluated and closed.
    pub(crate) fn advance(&mut self, now: DateTime<Utc>) -> Option<f64> {
        let Inner::Time { clock, .. } = &mut self.inner else { return None };
        if !clock.advance(now) {
            return None;
        }
        let value = self.value();
        if let Inner::Time { buffer, .. } = &mut self.inner {
            buffer.clear();
        }
        value
    }

    /// The event-time windows closed since last asked.
    pub(crate) fn take_closed(&mut self) -> ClosedWindows {
        match &mut self.inner {
            Inner::Count { .. } => ClosedWindows::default(),
            Inner::Time { clock, .. } => clock.take_closed(),
        }
    }

    /// Forgets every sample (and the EWMA).
    pub(crate) fn clear(&mut self) {
        match &mut self.inner {
            Inner::Count { window, cadence } => {
                window.clear();
                cadence.reset();
            }
            Inner::Time { clock, buffer } => {
                clock.reset();
                buffer.clear();
            }
        }
        if let Some(e) = &mut self.ewma {
            e.clear();
        }
    }

    /// Moves the EWMA of `other` into this window (a detector that moves on
    /// from its reference phase keeps one average).
    pub(crate) fn take_ewma_from(&mut self, other: &mut Self) {
        if let (Some(mine), Some(theirs)) = (&mut self.ewma, &mut other.ewma) {
            *mine = *theirs;
        }
    }
}

/// `statistic = "ewma"` keys: `alpha` (the newest sample's weight) or
/// `half_life` (in samples); default alpha = 2 / (window + 1), pandas'
/// `span` convention, with 2 / 101 for an event-time window.
pub(crate) fn ewma_of(stat: Statistic, alpha: Option<f64>, half_life: Option<f64>, window: WindowSize) -> Option<Ewma> {
    if stat != Statistic::Ewma {
        return None;
    }
    Some(match (alpha, half_life) {
        (Some(a), _) => Ewma::new(a),
        (None, Some(h)) => Ewma::from_half_life(h),
        (None, None) => Ewma::new(2.0 / (window.samples_or(100) as f64 + 1.0)),
    })
}

/// Checks `alpha` and `half_life` of a windowed statistic: only with
/// `statistic = "ewma"`, not both, alpha in (0, 1], half-life between 0
/// and [`MAX_WINDOW`](super::MAX_WINDOW) samples.
pub(crate) fn validate_ewma(stat: Statistic, alpha: Option<f64>, half_life: Option<f64>) -> Result<(), Error> {
    if stat != Statistic::Ewma {
        for (key, v) in [("alpha", alpha), ("half_life", half_life)] {
            if v.is_some() {
                return Err(Error::config(key, "only applies to `statistic = \"ewma\"`"));
            }
        }
        return Ok(());
    }
    match (alpha, half_life) {
        (Some(_), Some(_)) => Err(Error::config("half_life", "give `alpha` or `half_life`, not both")),
        (Some(a), None) => super::check_open_unit_closed("alpha", a),
        (None, Some(h)) if !(h.is_finite() && h > 0.0 && h <= super::MAX_WINDOW as f64) => Err(Error::config(
            "half_life",
            format!("must be a number of samples above 0 and at most {} (got {h})", super::MAX_WINDOW),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn windows_close_on_the_next_window_and_count_gaps_and_late_samples() {
        let mut w = TimeWindows::new(HumanDuration::from_secs(10));
        assert_eq!(w.arrive(at(1)), Some(false));
        assert_eq!(w.arrive(at(9)), Some(false));
        assert_eq!(w.arrive(at(12)), Some(true), "window [0, 10) closes");
        assert_eq!(w.arrive(at(5)), None, "late");
        assert_eq!(w.arrive(at(47)), Some(true), "[10, 20) closes; [20, 40) were empty");
        assert_eq!(w.take_closed(), ClosedWindows { with_data: 2, empty: 2, late: 1 });
        assert!(w.advance(at(55)), "[40, 50) held a sample");
        assert!(!w.advance(at(75)), "[50, 60) and [60, 70) were empty");
        assert_eq!(w.take_closed(), ClosedWindows { with_data: 1, empty: 2, late: 0 });
        assert_eq!(w.arrive(at(71)), Some(false), "joins the open window [70, 80)");
    }

    #[test]
    fn window_sizes_parse_from_numbers_and_durations() {
        let parse = |v: serde_json::Value| serde_json::from_value::<WindowSize>(v).map_err(|e| e.to_string());
        assert_eq!(parse(serde_json::json!(100)), Ok(WindowSize::Samples(100)));
        assert_eq!(parse(serde_json::json!("90m")), Ok(WindowSize::Time(HumanDuration::from_secs(5400))));
        assert!(parse(serde_json::json!("often")).unwrap_err().contains("invalid duration"));
        assert!(parse(serde_json::json!(-3)).unwrap_err().contains("positive"));
        assert_eq!(serde_json::to_value(WindowSize::Time(HumanDuration::from_secs(3600))).ok(), Some("1h".into()));
        let e = validate_window(WindowSize::Time(HumanDuration::from_secs(60)), Some(5)).unwrap_err();
        assert_eq!(e.to_string(), "config error at `step`: event-time windows are tumbling: remove `step`");
        let e = validate_window(WindowSize::Time(HumanDuration::from_secs(400 * 86_400)), None).unwrap_err();
        assert!(e.to_string().starts_with("config error at `window`: must be between 1ms and 366d"), "{e}");
    }

    #[test]
    fn a_time_window_evaluates_without_the_sample_that_closes_it() {
        let mut w = Windowed::new(WindowSize::Time(HumanDuration::from_secs(10)), None, Statistic::Mean, false, None);
        assert_eq!(w.push(at(0), 1.0), None);
        assert_eq!(w.push(at(5), 3.0), None);
        assert_eq!(w.push(at(10), 100.0), Some(2.0));
        assert_eq!(w.advance(at(19)), None, "[10, 20) is still open");
        assert_eq!(w.advance(at(20)), Some(100.0));
        let mut c = Windowed::new(WindowSize::Time(HumanDuration::from_secs(10)), None, Statistic::Count, false, None);
        for s in [0, 1, 2, 30] {
            c.push(at(s), 0.0);
        }
        assert_eq!(c.advance(at(40)), Some(1.0));
    }
}
