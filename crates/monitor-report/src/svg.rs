//! The drawing primitives of the charts: scales, ticks, number and time
//! labels, escaping, and the Okabe–Ito palette (safe for the common forms
//! of colour blindness).
//!
//! Every chart is a `<figure class="chart">` holding one inline `<svg>`;
//! its plot area is a `<rect class="plot-area">` whose `data-x0`/`data-x1`
//! and `data-y0`/`data-y1` attributes give the axis ranges, so that tests
//! (and readers of the source) can check where things sit.

use std::fmt::Write;

use chrono::{DateTime, Utc};

/// Okabe–Ito: the statistic.
pub(crate) const BLUE: &str = "#0072B2";
/// Okabe–Ito: the statistic's spread, the reference.
pub(crate) const SKY: &str = "#56B4E9";
/// Okabe–Ito: drift, the current window.
pub(crate) const VERMILLION: &str = "#D55E00";
/// Okabe–Ito: warning.
pub(crate) const ORANGE: &str = "#E69F00";
/// Okabe–Ito: recovery.
pub(crate) const GREEN: &str = "#009E73";
/// Okabe–Ito: retrain jobs.
pub(crate) const PURPLE: &str = "#CC79A7";
/// Axes, thresholds and text.
pub(crate) const INK: &str = "#222222";

/// Chart width in SVG units.
pub(crate) const WIDTH: f64 = 600.0;
/// Left margin: room for the y tick labels and the y axis title.
pub(crate) const LEFT: f64 = 70.0;
/// Right margin.
pub(crate) const RIGHT: f64 = 16.0;
/// Top margin: room for the title and the markers' symbols.
pub(crate) const TOP: f64 = 50.0;
/// Bottom margin: room for the x tick labels and the x axis title.
pub(crate) const BOTTOM: f64 = 46.0;

/// Escapes text for HTML and SVG content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A number in at most four significant digits, without noise.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return "–".to_owned();
    }
    let a = x.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{x:.2e}");
    }
    let decimals = if a >= 1000.0 {
        0
    } else if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else if a >= 1.0 {
        3
    } else {
        4
    };
    let s = format!("{x:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// A coordinate, rounded to a tenth of a unit (plenty on screen, and short).
pub(crate) fn c(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r == r.trunc() { format!("{r:.0}") } else { format!("{r:.1}") }
}

/// A linear map from data to SVG units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    pub(crate) d0: f64,
    pub(crate) d1: f64,
    pub(crate) r0: f64,
    pub(crate) r1: f64,
    /// Maps log10 of the value (for p-values).
    pub(crate) log: bool,
}

impl Scale {
    pub(crate) fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        let (d0, d1) = if d1 > d0 { (d0, d1) } else { (d0 - 0.5, d0 + 0.5) };
        Self { d0, d1, r0, r1, log: false }
    }

    /// A log10 scale over `[lo, hi]` (both positive).
    pub(crate) fn log(lo: f64, hi: f64, r0: f64, r1: f64) -> Self {
        Self { log: true, ..Self::new(lo.log10(), hi.log10(), r0, r1) }
    }

    pub(crate) fn map(&self, x: f64) -> f64 {
        let x = if self.log { x.max(1e-300).log10() } else { x };
        let t = ((x - self.d0) / (self.d1 - self.d0)).clamp(-0.05, 1.05);
        self.r0 + t * (self.r1 - self.r0)
    }

    /// The domain's ends, in data units.
    pub(crate) fn domain(&self) -> (f64, f64) {
        if self.log { (10f64.powf(self.d0), 10f64.powf(self.d1)) } else { (self.d0, self.d1) }
    }
}

/// A "nice" range and step covering `[lo, hi]` with about `count` ticks.
pub(crate) fn nice(lo: f64, hi: f64, count: usize) -> (f64, f64, f64) {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0)) };
    let raw = (hi - lo) / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

/// The ticks from `lo` to `hi` by `step`.
pub(crate) fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let n = ((hi - lo) / step).round() as i64;
    (0..=n.clamp(0, 50)).map(|i| lo + i as f64 * step).collect()
}

/// Time ticks over `[lo, hi]` milliseconds at a round step, with labels.
pub(crate) fn time_ticks(lo: i64, hi: i64, count: i64) -> Vec<(i64, String)> {
    const STEPS: [i64; 17] = [
        1_000,
        5_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        1_200_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        604_800_000,
    ];
    let span = (hi - lo).max(1);
    let step = STEPS.iter().copied().find(|s| span / s <= count).unwrap_or(span / count.max(1)).max(1);
    let fmt = if step >= 86_400_000 {
        "%m-%d"
    } else if span > 86_400_000 {
        "%m-%d %H:%M"
    } else if step >= 60_000 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    let first = lo.div_euclid(step) * step + if lo.rem_euclid(step) == 0 { 0 } else { step };
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= hi)
        .take(40)
        .map(|t| (t, DateTime::<Utc>::from_timestamp_millis(t).map_or_else(String::new, |d| d.format(fmt).to_string())))
        .collect()
}

/// An RFC 3339 time of `ms`, to the second.
pub(crate) fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The frame of a chart: the plot area within the SVG.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub(crate) height: f64,
}

impl Frame {
    pub(crate) fn left(&self) -> f64 {
        LEFT
    }
    pub(crate) fn right(&self) -> f64 {
        WIDTH - RIGHT
    }
    pub(crate) fn top(&self) -> f64 {
        TOP
    }
    pub(crate) fn bottom(&self) -> f64 {
        self.height - BOTTOM
    }

    /// Opens the SVG with its title, and the plot area with its ranges.
    pub(crate) fn open(&self, out: &mut String, title: &str, x: (f64, f64), y: (f64, f64)) {
        let _ = write!(
            out,
            r##"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" xmlns="http://www.w3.org/2000/svg"><title>{t}</title><text class="title" x="{l}" y="18">{t}</text><rect class="plot-area" x="{l}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc" data-x0="{x0}" data-x1="{x1}" data-y0="{y0}" data-y1="{y1}"/>"##,
            w = WIDTH,
            h = self.height,
            t = escape(title),
            l = c(self.left()),
            top = c(self.top()),
            pw = c(self.right() - self.left()),
            ph = c(self.bottom() - self.top()),
            x0 = x.0,
            x1 = x.1,
            y0 = y.0,
            y1 = y.1,
        );
    }

    /// The y axis: grid lines, tick labels and its title.
    pub(crate) fn y_axis(&self, out: &mut String, scale: &Scale, ticks: &[(f64, String)], label: &str) {
        out.push_str(r#"<g class="axis y">"#);
        for (v, text) in ticks {
            let y = c(scale.map(*v));
            let _ = write!(
                out,
                r##"<line x1="{l}" x2="{r}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{tx}" y="{y}" dy="4" text-anchor="end">{text}</text>"##,
                l = c(self.left()),
                r = c(self.right()),
                tx = c(self.left() - 6.0),
                text = escape(text),
            );
        }
        let mid = c((self.top() + self.bottom()) / 2.0);
        let _ = write!(
            out,
            r#"<text class="axis-title" transform="translate(14 {mid}) rotate(-90)" text-anchor="middle">{}</text></g>"#,
            escape(label)
        );
    }

    /// The x axis: tick marks, labels and its title.
    pub(crate) fn x_axis(&self, out: &mut String, scale: &Scale, ticks: &[(f64, String)], label: &str) {
        out.push_str(r#"<g class="axis x">"#);
        let b = self.bottom();
        for (v, text) in ticks {
            let x = c(scale.map(*v));
            let _ = write!(
                out,
                r##"<line x1="{x}" x2="{x}" y1="{b0}" y2="{b1}" stroke="{INK}"/><text x="{x}" y="{ty}" text-anchor="middle">{text}</text>"##,
                b0 = c(b),
                b1 = c(b + 4.0),
                ty = c(b + 16.0),
                text = escape(text),
            );
        }
        let _ = write!(
            out,
            r#"<text class="axis-title" x="{}" y="{}" text-anchor="middle">{}</text></g>"#,
            c((self.left() + self.right()) / 2.0),
            c(self.height - 8.0),
            escape(label)
        );
    }
}

/// The y ticks of a linear scale, labelled.
pub(crate) fn labelled(ticks: &[f64]) -> Vec<(f64, String)> {
    ticks.iter().map(|&t| (t, num(t))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ranges_cover_the_data_at_round_steps() {
        assert_eq!(nice(0.83, 0.97, 5), (0.8, 1.0, 0.05));
        assert_eq!(nice(12.0, 480.0, 5), (0.0, 500.0, 100.0));
        let (lo, hi, _) = nice(3.0, 3.0, 5);
        assert!(lo < 3.0 && hi > 3.0, "a flat series still gets a range");
    }

    #[test]
    fn time_ticks_are_round_and_within_range() {
        let lo = chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:07Z")
            .map(|d| d.timestamp_millis())
            .unwrap_or_else(|e| panic!("{e}"));
        // Ten minutes in at most six ticks: every two minutes.
        let ticks = time_ticks(lo, lo + 600_000, 6);
        assert_eq!(
            ticks.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
            ["08:02", "08:04", "08:06", "08:08", "08:10"]
        );
        assert!(ticks.iter().all(|(t, _)| *t >= lo && *t <= lo + 600_000 && t % 120_000 == 0));
    }

    #[test]
    fn escaping_and_numbers() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(num(0.9), "0.9");
        assert_eq!(num(250.0), "250");
        assert_eq!(num(1.0e-7), "1.00e-7");
        assert_eq!(c(12.345), "12.3");
    }
}
