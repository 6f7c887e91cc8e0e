//! The charts: a detector's timeline (its window statistic, threshold,
//! findings, recoveries and retrain jobs on event time), and the reference
//! against the current window at a finding (ECDF, histogram or bars).

use std::fmt::Write;

use monitor_core::comparison::{Comparison, QUANTILES};
use monitor_core::event::JobStatus;

use crate::collect::MonitorInfo;
use crate::labels;
use crate::model::{ComparisonAt, JobMark, MarkerKind, SeriesData};
use crate::svg::{
    BLUE, Frame, GREEN, INK, ORANGE, PURPLE, SKY, Scale, VERMILLION, c, escape, labelled, nice, num, ticks, time,
    time_ticks,
};

/// Height of a timeline.
const TIMELINE_HEIGHT: f64 = 230.0;
/// Height of a comparison chart.
const COMPARISON_HEIGHT: f64 = 230.0;
/// Markers drawn per chart; the rest are counted in the caption.
pub(crate) const MAX_DRAWN_MARKERS: usize = 60;

/// The colour and the SVG path of a marker's symbol centred on (x, y).
fn symbol(kind: MarkerKind, x: f64, y: f64) -> (&'static str, String) {
    match kind {
        // A downward triangle: drift.
        MarkerKind::Drift => (
            VERMILLION,
            format!("M{} {}L{} {}L{} {}Z", c(x - 6.0), c(y - 5.0), c(x + 6.0), c(y - 5.0), c(x), c(y + 6.0)),
        ),
        // A diamond: warning.
        MarkerKind::Warning => (
            ORANGE,
            format!(
                "M{} {}L{} {}L{} {}L{} {}Z",
                c(x),
                c(y - 6.0),
                c(x + 6.0),
                c(y),
                c(x),
                c(y + 6.0),
                c(x - 6.0),
                c(y)
            ),
        ),
        // A circle: recovered.
        MarkerKind::Recovered => (GREEN, format!("M{} {}a5 5 0 1 0 10 0a5 5 0 1 0 -10 0Z", c(x - 5.0), c(y))),
    }
}

/// The timeline of one detector of one model version, over `span` (event
/// time in ms, shared by the version's charts so they line up).
///
/// `realised` is the `perf.<metric>` series beside an `estimated.<metric>`
/// one: drawn over the estimate, on the same axis, once labels came in.
pub(crate) fn timeline(
    out: &mut String,
    series: &SeriesData,
    realised: Option<&SeriesData>,
    info: Option<&MonitorInfo>,
    jobs: &[&JobMark],
    span: (i64, i64),
) {
    let frame = Frame { height: TIMELINE_HEIGHT };
    let p_values = series.all_buckets().any(|b| b.p_min.is_some());
    let bounds = labels::bounds(info);
    let x = Scale::new(span.0 as f64, span.1 as f64, frame.left(), frame.right());
    let value = |b: &crate::model::Bucket| if p_values { b.p_min.unwrap_or(1.0) } else { b.mean() };
    let (y, y_ticks) = if p_values {
        let lo = series
            .all_buckets()
            .filter_map(|b| b.p_min)
            .chain(series.all_buckets().filter_map(|b| b.threshold))
            .fold(1.0f64, f64::min)
            .max(1e-300);
        let lo_exp = lo.log10().floor().min(-1.0);
        let scale = Scale::log(10f64.powf(lo_exp), 1.0, frame.bottom(), frame.top());
        let step = ((-lo_exp) / 5.0).ceil().max(1.0);
        let t: Vec<(f64, String)> = (0..=((-lo_exp) / step) as i64)
            .map(|i| 10f64.powf(-(i as f64) * step))
            .map(|p| (p, if p >= 0.01 { num(p) } else { format!("1e{}", p.log10().round()) }))
            .collect();
        (scale, t)
    } else {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for b in series.all_buckets().chain(realised.into_iter().flat_map(SeriesData::all_buckets)) {
            lo = lo.min(b.min);
            hi = hi.max(b.max);
            if let Some(t) = b.threshold.filter(|_| bounds.is_empty()) {
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
        for (_, v) in &bounds {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        let (lo, hi, step) = nice(lo, hi, 5);
        (Scale::new(lo, hi, frame.bottom(), frame.top()), labelled(&ticks(lo, hi, step)))
    };
    let (y0, y1) = y.domain();
    let _ = write!(
        out,
        r#"<figure class="chart timeline" data-signal="{}" data-detector="{}" data-monitor="{}" data-windows="{}">"#,
        escape(&series.signal),
        escape(&series.detector),
        series.monitor,
        series.windows
    );
    frame.open(out, &labels::title(series, info), (span.0 as f64, span.1 as f64), (y0, y1));
    frame.y_axis(out, &y, &y_ticks, &labels::y_label(series, info, p_values));
    let x_ticks: Vec<(f64, String)> =
        time_ticks(span.0, span.1, 7).into_iter().map(|(t, label)| (t as f64, label)).collect();
    frame.x_axis(out, &x, &x_ticks, "event time (UTC)");
    // The spread of merged windows, then the statistic.
    if !p_values && series.all_buckets().any(|b| b.n > 1 && b.max > b.min) {
        let mut d = String::new();
        let buckets: Vec<_> = series.all_buckets().collect();
        for (i, b) in buckets.iter().enumerate() {
            let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, c(x.map(b.mid_ms() as f64)), c(y.map(b.max)));
        }
        for b in buckets.iter().rev() {
            let _ = write!(d, "L{} {}", c(x.map(b.mid_ms() as f64)), c(y.map(b.min)));
        }
        let _ = write!(out, r#"<path class="band" d="{d}Z" fill="{SKY}" fill-opacity="0.35" stroke="none"/>"#);
    }
    let mut d = String::new();
    for (i, b) in series.all_buckets().enumerate() {
        let _ = write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, c(x.map(b.mid_ms() as f64)), c(y.map(value(b))));
    }
    let points = series.all_buckets().count();
    let _ = write!(
        out,
        r#"<path class="series statistic" data-points="{points}" d="{d}" fill="none" stroke="{BLUE}" stroke-width="1.8"/>"#
    );
    if points == 1 {
        if let Some(b) = series.all_buckets().next() {
            let _ = write!(
                out,
                r#"<circle class="point" cx="{}" cy="{}" r="3" fill="{BLUE}"/>"#,
                c(x.map(b.mid_ms() as f64)),
                c(y.map(value(b)))
            );
        }
    }
    let realised = realised.filter(|_| !p_values);
    if let Some(r) = realised {
        let mut d = String::new();
        for (i, b) in r.all_buckets().enumerate() {
            let _ =
                write!(d, "{}{} {}", if i == 0 { "M" } else { "L" }, c(x.map(b.mid_ms() as f64)), c(y.map(b.mean())));
        }
        let _ = write!(
            out,
            r#"<path class="series realised" data-points="{}" d="{d}" fill="none" stroke="{ORANGE}" stroke-width="1.8" stroke-dasharray="6 3"/>"#,
            r.all_buckets().count()
        );
    }
    threshold_lines(out, series, &bounds, &frame, &x, &y);
    for job in jobs {
        job_marker(out, job, &frame, &x);
    }
    let drawn: Vec<_> = series.markers.iter().take(MAX_DRAWN_MARKERS).collect();
    for m in &drawn {
        let mx = x.map(m.ms as f64);
        let (colour, path) = symbol(m.kind, mx, frame.top() - 7.0);
        let p = m.p_value.map(|p| format!(", p = {}", num(p))).unwrap_or_default();
        let _ = write!(
            out,
            r#"<g class="marker {k}" data-ms="{ms}" data-seq="{seq}"><line class="marker-line" x1="{x}" x2="{x}" y1="{t}" y2="{b}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/><path d="{path}" fill="{colour}"/><title>{k} at line {line}, {when}: statistic {s} vs {th}{p}</title></g>"#,
            k = m.kind.name(),
            ms = m.ms,
            seq = m.seq,
            x = c(mx),
            t = c(frame.top()),
            b = c(frame.bottom()),
            line = m.seq + 1,
            when = time(m.ms),
            s = num(m.statistic),
            th = num(m.threshold),
        );
    }
    let threshold = !bounds.is_empty() || series.all_buckets().any(|b| b.threshold.is_some());
    legend(out, series, realised.is_some(), threshold, !jobs.is_empty());
    out.push_str("</svg>");
    let more = series.markers.len() - drawn.len() + series.markers_dropped as usize;
    let stride = if series.stride > 1 {
        format!("; each point summarises up to {} windows", series.stride)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<figcaption>{} windows{stride}{}</figcaption></figure>",
        series.windows,
        if more > 0 { format!("; {more} more findings and recoveries not drawn") } else { String::new() }
    );
}

/// The threshold: the configured bounds of a threshold detector as
/// horizontal lines, else the threshold of each window as a step line.
fn threshold_lines(out: &mut String, series: &SeriesData, bounds: &[(&str, f64)], frame: &Frame, x: &Scale, y: &Scale) {
    if !bounds.is_empty() {
        for (name, v) in bounds {
            let warn = name.starts_with("warn");
            let _ = write!(
                out,
                r#"<line class="threshold {name}" x1="{l}" x2="{r}" y1="{yy}" y2="{yy}" stroke="{colour}" stroke-width="1.2" stroke-dasharray="{dash}"><title>{name} = {v}</title></line>"#,
                l = c(frame.left()),
                r = c(frame.right()),
                yy = c(y.map(*v)),
                colour = if warn { ORANGE } else { INK },
                dash = if warn { "2 3" } else { "6 4" },
                v = num(*v),
            );
        }
        return;
    }
    let mut d = String::new();
    let mut last: Option<f64> = None;
    for b in series.all_buckets() {
        let Some(t) = b.threshold else { continue };
        let (bx0, bx1) = (c(x.map(b.first_ms as f64)), c(x.map(b.last_ms as f64)));
        match last {
            None => {
                let _ = write!(d, "M{bx0} {}", c(y.map(t)));
            }
            Some(_) => {
                let _ = write!(d, "L{bx0} {}", c(y.map(t)));
            }
        }
        let _ = write!(d, "L{bx1} {}", c(y.map(t)));
        last = Some(t);
    }
    if !d.is_empty() {
        let _ = write!(
            out,
            r#"<path class="threshold" d="{d}" fill="none" stroke="{INK}" stroke-width="1.2" stroke-dasharray="6 4"/>"#
        );
    }
}

fn job_marker(out: &mut String, job: &JobMark, frame: &Frame, x: &Scale) {
    let status = job.status.map_or("requested", |s| match s {
        JobStatus::Queued => "queued",
        JobStatus::Dispatched => "dispatched",
        JobStatus::Succeeded => "succeeded",
        JobStatus::Failed => "failed",
        JobStatus::Merged => "merged",
    });
    let jx = x.map(job.ms as f64);
    let b = frame.bottom();
    // Filled when it succeeded, hollow otherwise.
    let fill = if job.status == Some(JobStatus::Succeeded) { PURPLE } else { "#fff" };
    let detail = job.detail.as_deref().map(|d| format!(" ({})", escape(d))).unwrap_or_default();
    let _ = write!(
        out,
        r#"<g class="job {status}" data-ms="{ms}" data-job="{id}"><line class="job-line" x1="{x}" x2="{x}" y1="{t}" y2="{b}" stroke="{PURPLE}" stroke-width="1.2"/><rect x="{rx}" y="{ry}" width="9" height="9" fill="{fill}" stroke="{PURPLE}" stroke-width="2"/><title>retrain job {id} at line {line}: {status}{detail}</title></g>"#,
        ms = job.ms,
        id = job.job_id,
        x = c(jx),
        t = c(frame.top()),
        b = c(b),
        rx = c(jx - 4.5),
        ry = c(b - 10.0),
        line = job.seq + 1,
    );
}

fn legend(out: &mut String, series: &SeriesData, realised: bool, threshold: bool, jobs: bool) {
    let mut items: Vec<(String, &str)> = vec![(
        format!(r#"<line x1="0" x2="14" y1="0" y2="0" stroke="{BLUE}" stroke-width="2"/>"#),
        if series.all_buckets().any(|b| b.p_min.is_some()) {
            "p-value"
        } else if realised {
            "estimated"
        } else {
            "statistic"
        },
    )];
    if realised {
        items.push((
            format!(
                r#"<line x1="0" x2="14" y1="0" y2="0" stroke="{ORANGE}" stroke-width="2" stroke-dasharray="6 3"/>"#
            ),
            "realised (labels)",
        ));
    }
    if threshold {
        items.push((
            format!(r#"<line x1="0" x2="14" y1="0" y2="0" stroke="{INK}" stroke-dasharray="4 2"/>"#),
            "threshold",
        ));
    }
    for kind in [MarkerKind::Drift, MarkerKind::Warning, MarkerKind::Recovered] {
        if series.markers.iter().any(|m| m.kind == kind) {
            let (colour, path) = symbol(kind, 7.0, 0.0);
            items.push((format!(r#"<path d="{path}" fill="{colour}"/>"#), kind.name()));
        }
    }
    if jobs {
        items.push((
            format!(r#"<rect x="2" y="-5" width="9" height="9" fill="{PURPLE}" stroke="{PURPLE}"/>"#),
            "retrain job",
        ));
    }
    let mut lx =
        crate::svg::WIDTH - crate::svg::RIGHT - items.iter().map(|(_, t)| 26.0 + 6.5 * t.len() as f64).sum::<f64>();
    out.push_str(r#"<g class="legend">"#);
    for (shape, text) in items {
        let _ = write!(out, r#"<g transform="translate({} 34)">{shape}<text x="18" y="4">{text}</text></g>"#, c(lx));
        lx += 26.0 + 6.5 * text.len() as f64;
    }
    out.push_str("</g>");
}

/// The reference against the current window at a finding.
pub(crate) fn comparison(out: &mut String, signal: &str, at: &ComparisonAt) {
    let m = &at.marker;
    let p = m.p_value.map(|p| format!(", p = {}", num(p))).unwrap_or_default();
    let title = format!("{signal} at line {} ({}): statistic {}{p}", m.seq + 1, time(m.ms), num(m.statistic));
    let frame = Frame { height: COMPARISON_HEIGHT };
    let unit = labels::unit(signal).map(|u| format!(" ({u})")).unwrap_or_default();
    match &at.comparison {
        Comparison::Numeric { reference, current, reference_n, current_n } => {
            let lo = reference[0].min(current[0]);
            let hi = reference[QUANTILES - 1].max(current[QUANTILES - 1]);
            let (lo, hi, step) = nice(lo, hi, 6);
            let x = Scale::new(lo, hi, frame.left(), frame.right());
            let y = Scale::new(0.0, 1.0, frame.bottom(), frame.top());
            let _ = write!(
                out,
                r#"<figure class="chart comparison" data-kind="ecdf" data-signal="{}" data-seq="{}">"#,
                escape(signal),
                m.seq
            );
            frame.open(out, &title, (lo, hi), (0.0, 1.0));
            frame.y_axis(out, &y, &labelled(&ticks(0.0, 1.0, 0.25)), "cumulative share of samples");
            frame.x_axis(out, &x, &labelled(&ticks(lo, hi, step)), &format!("{signal}{unit}"));
            for (class, q, colour, dash) in
                [("reference", reference, SKY, "6 3"), ("current", current, VERMILLION, "none")]
            {
                // A step up at each quantile: flat at the share below it, then up to its own.
                let mut d = format!("M{} {}", c(x.map(q[0])), c(y.map(0.0)));
                let mut below = 0.0;
                for (i, v) in q.iter().enumerate() {
                    let share = i as f64 / (QUANTILES - 1) as f64;
                    let vx = c(x.map(*v));
                    let _ = write!(d, "L{vx} {}L{vx} {}", c(y.map(below)), c(y.map(share)));
                    below = share;
                }
                let _ = write!(
                    out,
                    r#"<path class="series {class}" d="{d}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#
                );
            }
            two_legend(out, &format!("reference ({reference_n})"), &format!("current window ({current_n})"), true);
        }
        Comparison::Binned { edges, reference, current } => {
            let names: Vec<String> = edges.windows(2).map(|w| format!("{}–{}", num(w[0]), num(w[1]))).collect();
            let rows: Vec<(String, u64, u64)> =
                names.into_iter().zip(reference.iter().zip(current)).map(|(n, (r, c))| (n, *r, *c)).collect();
            bars(out, &frame, signal, m.seq, &title, &rows, "histogram", &format!("bins of {signal}{unit}"));
        }
        Comparison::Categorical { categories } => {
            bars(out, &frame, signal, m.seq, &title, categories, "bars", &format!("categories of {signal}"));
        }
    }
    out.push_str("</svg></figure>");
}

fn two_legend(out: &mut String, reference: &str, current: &str, lines: bool) {
    let shape = |colour: &str, dash: &str| {
        if lines {
            format!(
                r#"<line x1="0" x2="14" y1="0" y2="0" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>"#
            )
        } else {
            format!(r#"<rect x="2" y="-5" width="10" height="10" fill="{colour}"/>"#)
        }
    };
    let x = crate::svg::WIDTH - crate::svg::RIGHT - 26.0 * 2.0 - 6.5 * (reference.len() + current.len()) as f64;
    let _ = write!(
        out,
        r#"<g class="legend"><g transform="translate({} 34)">{}<text x="18" y="4">{}</text></g><g transform="translate({} 34)">{}<text x="18" y="4">{}</text></g></g>"#,
        c(x),
        shape(SKY, "6 3"),
        escape(reference),
        c(x + 26.0 + 6.5 * reference.len() as f64),
        shape(VERMILLION, "none"),
        escape(current),
    );
}

/// Grouped bars of the share of each side's samples per row.
#[allow(clippy::too_many_arguments)]
fn bars(
    out: &mut String,
    frame: &Frame,
    signal: &str,
    seq: u64,
    title: &str,
    rows: &[(String, u64, u64)],
    kind: &str,
    x_label: &str,
) {
    let (rt, ct) = rows.iter().fold((0u64, 0u64), |(r, c), x| (r + x.1, c + x.2));
    let share = |n: u64, t: u64| n as f64 / t.max(1) as f64;
    let top = rows.iter().map(|r| share(r.1, rt).max(share(r.2, ct))).fold(0.0f64, f64::max);
    let (_, hi, step) = nice(0.0, top.max(0.01), 5);
    let y = Scale::new(0.0, hi, frame.bottom(), frame.top());
    let slot = (frame.right() - frame.left()) / rows.len().max(1) as f64;
    let _ = write!(
        out,
        r#"<figure class="chart comparison" data-kind="{kind}" data-signal="{}" data-seq="{seq}">"#,
        escape(signal)
    );
    frame.open(out, title, (0.0, rows.len() as f64), (0.0, hi));
    frame.y_axis(out, &y, &labelled(&ticks(0.0, hi, step)), "share of samples");
    // Category names are long: label the slots when they fit, else in the tooltips.
    let label_every = ((rows.len() as f64 * 60.0) / (frame.right() - frame.left())).ceil().max(1.0) as usize;
    let x_ticks: Vec<(f64, String)> = rows
        .iter()
        .enumerate()
        .filter(|(i, _)| i % label_every == 0)
        .map(|(i, r)| (i as f64 + 0.5, r.0.chars().take(12).collect()))
        .collect();
    let x = Scale::new(0.0, rows.len().max(1) as f64, frame.left(), frame.right());
    frame.x_axis(out, &x, &x_ticks, x_label);
    let w = (slot * 0.4).max(1.0);
    for (i, (name, r, cur)) in rows.iter().enumerate() {
        let x0 = frame.left() + i as f64 * slot + slot * 0.1;
        for (j, (class, n, t, colour)) in
            [("reference", *r, rt, SKY), ("current", *cur, ct, VERMILLION)].into_iter().enumerate()
        {
            let v = share(n, t);
            let _ = write!(
                out,
                r#"<rect class="bar {class}" x="{}" y="{}" width="{}" height="{}" fill="{colour}"><title>{}: {class} {} of {t} ({}%)</title></rect>"#,
                c(x0 + j as f64 * w),
                c(y.map(v)),
                c(w),
                c(frame.bottom() - y.map(v)),
                escape(name),
                n,
                num(v * 100.0),
            );
        }
    }
    two_legend(out, &format!("reference ({rt})"), &format!("current window ({ct})"), false);
}
