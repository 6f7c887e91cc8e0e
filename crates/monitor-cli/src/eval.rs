//! `eval`: detector configs compared on the user's own history. Each config
//! replays the log through a monitor of its own (no observer runs: no
//! alert is sent, no job started); the alarms it raises are scored against
//! the stretches the user marks as stable and the change points they name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use model_monitor::event::{EventKind, Severity};
use model_monitor::record::Record;
use model_monitor::strategies::Monitor;
use monitor_report::{Collector, Limits, PageMeta};
use serde::Serialize;

use tokio_util::sync::CancellationToken;

use crate::output::Stdout;
use crate::{Format, exit_for, load_config};

/// Alarms listed per config; the rest are counted.
const LISTED_ALARMS: usize = 1_000;
/// The longest line read; longer ones are skipped as malformed.
const MAX_LINE_BYTES: usize = 1 << 20;
/// The most configs, stable stretches and change points one run takes.
const MAX_ARGS: usize = 64;

/// `model-monitor eval`.
#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// The NDJSON log to replay.
    file: PathBuf,
    /// A config to evaluate; give several to compare them (at most 64).
    #[arg(long, short, required = true)]
    config: Vec<PathBuf>,
    /// A stretch of the log known to be stable, as `FROM..TO` (0-based
    /// input line indices, `seq` in events, TO excluded): every drift alarm
    /// in it is a false alarm. Repeatable.
    #[arg(long, value_parser = parse_range)]
    stable: Vec<(u64, u64)>,
    /// A known change point (the 0-based input line index where the change
    /// begins): the delay to the first drift alarm after it is reported.
    /// Repeatable.
    #[arg(long)]
    change: Vec<u64>,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also write the results and every config's charts as one HTML file.
    #[arg(long)]
    report: Option<PathBuf>,
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (from, to) = text.split_once("..").ok_or_else(|| format!("expected FROM..TO, got `{text}`"))?;
    let from: u64 = from.trim().parse().map_err(|_| format!("FROM is not a line index in `{text}`"))?;
    let to: u64 = to.trim().parse().map_err(|_| format!("TO is not a line index in `{text}`"))?;
    if to <= from {
        return Err(format!("TO must be greater than FROM in `{text}`"));
    }
    Ok((from, to))
}

/// One alarm a config raised.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Alarm {
    pub(crate) model: String,
    pub(crate) version: String,
    pub(crate) signal: String,
    pub(crate) detector: String,
    pub(crate) severity: Severity,
    pub(crate) seq: u64,
    pub(crate) ts: DateTime<Utc>,
}

/// The delay from a change point to the first drift alarm after it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Delay {
    pub(crate) change: u64,
    /// `None`: no drift alarm before the next change point or the end.
    pub(crate) detected_at: Option<u64>,
    pub(crate) delay_records: Option<u64>,
    pub(crate) delay_seconds: Option<f64>,
    pub(crate) signal: Option<String>,
    pub(crate) detector: Option<String>,
}

/// A signal's alarms under one config.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SignalScore {
    pub(crate) signal: String,
    pub(crate) detector: String,
    pub(crate) alarms: u64,
    pub(crate) false_alarms: u64,
    pub(crate) first_alarm: Option<u64>,
}

/// One config's results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigScore {
    pub(crate) config: String,
    pub(crate) alarms: Vec<Alarm>,
    pub(crate) alarms_total: u64,
    pub(crate) drift_alarms: u64,
    pub(crate) false_alarms: u64,
    pub(crate) false_alarms_per_100k: Option<f64>,
    pub(crate) delays: Vec<Delay>,
    pub(crate) signals: Vec<SignalScore>,
}

/// Everything `eval` found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Results {
    pub(crate) file: String,
    pub(crate) records: u64,
    pub(crate) malformed: u64,
    pub(crate) stable: Vec<(u64, u64)>,
    pub(crate) stable_records: u64,
    pub(crate) changes: Vec<u64>,
    pub(crate) configs: Vec<ConfigScore>,
}

pub(crate) fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if args.config.len() > MAX_ARGS || args.stable.len() > MAX_ARGS || args.change.len() > MAX_ARGS {
        bail!("at most {MAX_ARGS} of each of --config, --stable and --change");
    }
    let mut changes = args.change.clone();
    changes.sort_unstable();
    changes.dedup();
    let mut results = Results {
        file: args.file.display().to_string(),
        records: 0,
        malformed: 0,
        stable: args.stable.clone(),
        stable_records: 0,
        changes: changes.clone(),
        configs: Vec::new(),
    };
    let mut reports = Vec::new();
    for path in &args.config {
        let (score, report, counts) = evaluate(&args.file, path, &args.stable, &changes, args.report.is_some())?;
        (results.records, results.malformed, results.stable_records) = counts;
        results.configs.push(score);
        reports.extend(report.map(|r| (path.display().to_string(), r)));
    }
    let stdout = Stdout::new(CancellationToken::new());
    match args.format {
        Format::Json => stdout.print(&format!("{}\n", serde_json::to_string_pretty(&results)?)),
        Format::Text => stdout.print(&crate::eval_text::render(&results)),
    }
    if let Some(path) = &args.report {
        let meta = PageMeta {
            title: format!("model-monitor eval: {}", results.file),
            lines: vec![format!("{} records; {} configs compared.", results.records, results.configs.len())],
            ..PageMeta::default()
        };
        let page = monitor_report::html::multi_page(&meta, &crate::eval_text::html_table(&results), &reports);
        std::fs::write(path, page).with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    Ok(exit_for(&stdout))
}

/// One config's score, its collected report if asked, and the record
/// counts (records, malformed lines, records in stable stretches).
type Evaluated = (ConfigScore, Option<monitor_report::Report>, (u64, u64, u64));

/// Replays `file` through a monitor of the config at `path`; returns its
/// score, its collected report if asked, and the record counts (records,
/// malformed lines, records in stable stretches).
fn evaluate(
    file: &Path,
    path: &Path,
    stable: &[(u64, u64)],
    changes: &[u64],
    report: bool,
) -> anyhow::Result<Evaluated> {
    let (config, ctx) = load_config(Some(path))?;
    let plan = config.plan(&ctx)?;
    let collector = report.then(|| Collector::new(&plan, Limits::REPLAY));
    let mut monitor = Monitor::new(plan)?;
    if let Some(c) = &collector {
        monitor.set_window_feed(c.feed());
    }
    let input = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::new();
    let mut events = Vec::new();
    let (mut records, mut malformed, mut stable_records) = (0u64, 0u64, 0u64);
    let mut alarms: Vec<Alarm> = Vec::new();
    let (mut alarms_total, mut drift_alarms, mut false_alarms) = (0u64, 0u64, 0u64);
    let mut signals: Vec<SignalScore> = Vec::new();
    let mut change_ts: Vec<Option<DateTime<Utc>>> = vec![None; changes.len()];
    let mut delays: Vec<Delay> = changes
        .iter()
        .map(|&change| Delay {
            change,
            detected_at: None,
            delay_records: None,
            delay_seconds: None,
            signal: None,
            detector: None,
        })
        .collect();
    let now = Utc::now();
    for seq in 0u64.. {
        line.clear();
        let n = (&mut reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            // Skip the rest of an overlong line without holding it.
            let mut rest = Vec::new();
            while (&mut reader).take(64 * 1024).read_until(b'\n', &mut rest)? > 0 && rest.last() != Some(&b'\n') {
                rest.clear();
            }
            malformed += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let Ok(record) = Record::parse(text.trim_end(), now) else {
            malformed += 1;
            continue;
        };
        if monitor.process(seq, &record, &mut events).is_err() {
            malformed += 1;
            continue;
        }
        records += 1;
        if stable.iter().any(|(from, to)| (*from..*to).contains(&seq)) {
            stable_records += 1;
        }
        for (i, c) in changes.iter().enumerate() {
            if seq >= *c && change_ts[i].is_none() {
                change_ts[i] = Some(record.ts);
            }
        }
        for e in events.drain(..) {
            if let Some(c) = &collector {
                c.on_event(&e);
            }
            let EventKind::Finding(f) = &e.kind else { continue };
            let drift = f.severity == Severity::Drift;
            let false_alarm = drift && stable.iter().any(|(from, to)| (*from..*to).contains(&e.seq));
            alarms_total += 1;
            drift_alarms += u64::from(drift);
            false_alarms += u64::from(false_alarm);
            let (signal, detector) = (f.signal.to_string(), f.detector.clone());
            match signals.iter_mut().find(|s| s.signal == signal && s.detector == detector) {
                Some(s) => {
                    s.alarms += 1;
                    s.false_alarms += u64::from(false_alarm);
                }
                // Bounded by the signals a config can watch.
                None => signals.push(SignalScore {
                    signal: signal.clone(),
                    detector: detector.clone(),
                    alarms: 1,
                    false_alarms: u64::from(false_alarm),
                    first_alarm: Some(e.seq),
                }),
            }
            if drift {
                // The first drift alarm after a change point and before the next one.
                let i = changes.partition_point(|&c| c <= e.seq);
                if let Some(d) = i.checked_sub(1).and_then(|i| delays.get_mut(i)).filter(|d| d.detected_at.is_none()) {
                    d.detected_at = Some(e.seq);
                    d.delay_records = Some(e.seq - d.change);
                    d.delay_seconds = change_ts[i - 1].map(|t| (e.ts - t).num_milliseconds() as f64 / 1000.0);
                    d.signal = Some(signal.clone());
                    d.detector = Some(detector.clone());
                }
            }
            if alarms.len() < LISTED_ALARMS {
                alarms.push(Alarm {
                    model: e.key.model.clone(),
                    version: e.key.version.clone(),
                    signal,
                    detector,
                    severity: f.severity,
                    seq: e.seq,
                    ts: e.ts,
                });
            }
        }
    }
    signals.sort_by(|a, b| (&a.signal, &a.detector).cmp(&(&b.signal, &b.detector)));
    let score = ConfigScore {
        config: path.display().to_string(),
        alarms,
        alarms_total,
        drift_alarms,
        false_alarms,
        false_alarms_per_100k: (stable_records > 0).then(|| false_alarms as f64 * 100_000.0 / stable_records as f64),
        delays,
        signals,
    };
    Ok((score, collector.map(|c| c.report()), (records, malformed, stable_records)))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_checked() {
        assert_eq!(parse_range("0..300"), Ok((0, 300)));
        assert!(parse_range("300..300").is_err());
        assert!(parse_range("a..3").unwrap_err().contains("FROM"));
        assert!(parse_range("3").is_err());
    }
}
