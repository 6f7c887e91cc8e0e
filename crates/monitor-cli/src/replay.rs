//! `replay`: a recorded NDJSON log (a file or standard input) through the
//! engine, as a source with positions; a bounded text report or one JSON
//! event a line; SIGINT and SIGTERM drain and report.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use model_monitor::observers::{NdjsonObserver, builtin_registry};
use model_monitor::runtime::source::DEFAULT_MAX_LINE_BYTES;
use model_monitor::runtime::source::ParquetSource;
use model_monitor::runtime::{EngineBuilder, LineSource, Overflow, PumpOptions, pump};
use model_monitor::source::Source;
use tokio_util::sync::CancellationToken;

use crate::interrupt::Interrupt;
use crate::output::{Outcome, Stdout};
use crate::progress::{Counting, Progress};
use crate::report::{self, ReportObserver};
use crate::{Format, ReplayArgs, html_report, load_config};

/// Rejected lines reported one by one before `replay` only counts them.
const SHOWN_REJECTIONS: u64 = 20;

/// The partition a file's positions are kept under: its canonical path, so
/// that the same file named another way resumes too.
fn partition_of(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// Whether `path` names a Parquet file (by its extension), read column-wise
/// instead of as NDJSON.
fn is_parquet(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("parq"))
}

pub(crate) async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    if args.config.is_none() && args.format == Format::Text {
        eprintln!(
            "note: no --config given; using the built-in default monitors (each model version against its own first records)"
        );
    }
    let (config, ctx) = load_config(args.config.as_deref())?;
    let rejected = Arc::new(AtomicU64::new(0));
    let shown = Arc::clone(&rejected);
    let mut builder = EngineBuilder::from_config(&config, &builtin_registry(), &ctx)?
        .overflow(Overflow::Block)
        .shards(usize::from(args.shards))
        // Replay sends batches of up to 256 records: 16 of them bound what waits in memory.
        .queue_capacity(16)
        .on_reject(move |seq, e| {
            // The first rejections one by one, then a count now and then.
            let n = shown.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= SHOWN_REJECTIONS {
                let e = if e.line.is_none() { e.clone().at_line(seq + 1) } else { e.clone() };
                eprintln!("skipped: {}", report::clean(&e.to_string()));
            } else if n % 10_000 == 0 {
                eprintln!("skipped: {n} lines so far (only the first {SHOWN_REJECTIONS} are shown)");
            }
        });
    let stop = CancellationToken::new();
    let stdout = Stdout::new(stop.clone());
    let report_observer = ReportObserver::default();
    builder = match args.format {
        Format::Json => builder.observer(Box::new(NdjsonObserver::new(Box::new(stdout.clone())))),
        Format::Text => builder.observer(Box::new(report_observer.clone())),
    };
    let collector = match &args.report {
        Some(_) => {
            let (b, collector) = html_report::attach(builder, &config, &ctx)?;
            builder = b;
            Some(collector)
        }
        None => None,
    };
    let input = args.file.filter(|f| f.as_os_str() != "-");
    let started = Instant::now();
    let interrupt = Interrupt::listen(stop.clone()).context("cannot listen for signals")?;
    let engine = builder.spawn()?;
    let max_line = usize::try_from(args.max_line_bytes).unwrap_or(DEFAULT_MAX_LINE_BYTES);
    let bytes = Arc::new(AtomicU64::new(0));
    // With a journal, a file read before resumes after the position of the
    // latest checkpoint; its records past that position that a shard had
    // already processed are skipped there.
    let resume = |path: &Path| {
        let partition = partition_of(path);
        let skip = engine.sink().resume(&partition).unwrap_or(0);
        if skip > 0 {
            eprintln!(
                "note: resuming {} after record {skip}, where the latest checkpoint of the journal stands",
                report::clean(&path.display().to_string())
            );
        }
        (partition, skip)
    };
    let (mut source, total): (Box<dyn Source>, Option<u64>) = match &input {
        Some(path) if is_parquet(path) => {
            let (partition, skip) = resume(path);
            let source = ParquetSource::open_after(path, &partition, &config.input, skip)?;
            if !source.unread_columns().is_empty() && args.format == Format::Text {
                eprintln!("note: columns not read: {}", report::clean(&source.unread_columns().join(", ")));
            }
            // Read column-wise by the decoder: progress counts records, not bytes.
            (Box::new(source), None)
        }
        Some(path) => {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let total = file.metadata().ok().map(|m| m.len());
            let file = Counting::new(file, Arc::clone(&bytes));
            let (partition, skip) = resume(path);
            (Box::new(LineSource::spawn_after("file", partition, file, max_line, skip)), total)
        }
        None => {
            let stdin = Counting::new(io::stdin(), Arc::clone(&bytes));
            (Box::new(LineSource::spawn("stdin", "stdin", stdin, max_line)), None)
        }
    };
    let progress = Progress::start(args.quiet, total, bytes, engine.engine().clone());
    let sink = engine.sink();
    let options = PumpOptions { strict: args.strict };
    let read = pump(source.as_mut(), &sink, options, &stop).await;
    drop(sink);
    if let Some(progress) = progress {
        progress.finish();
    }
    let summary = engine.shutdown().await;
    let read = read?;
    let source = input.as_ref().map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
    if let (Some(path), Some(collector)) = (&args.report, &collector) {
        html_report::write(path, collector, &source, &read, &summary, started.elapsed())?;
    }
    if args.format == Format::Text {
        stdout.print(&report::render(&source, &read, &summary, &report_observer, started.elapsed()));
    }
    let shown = rejected.load(Ordering::Relaxed);
    if shown > SHOWN_REJECTIONS {
        eprintln!("skipped: {shown} lines in all (only the first {SHOWN_REJECTIONS} were shown)");
    }
    match stdout.outcome() {
        Outcome::Ok => {}
        // The reader of our output went away: nothing more to say.
        Outcome::Closed => return Ok(ExitCode::SUCCESS),
        Outcome::Failed(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some((name, code)) = interrupt.received() {
        let at = read
            .acked
            .as_ref()
            .map_or_else(|| "before the first line".to_owned(), |p| format!("after line {}", p.offset));
        eprintln!("interrupted by {name}: stopped reading {at}; everything read was processed");
        if !summary.unfinished.is_empty() {
            eprintln!("left unfinished: {}", summary.unfinished.join("; "));
        }
        return Ok(ExitCode::from(code));
    }
    if !summary.unfinished.is_empty() {
        eprintln!("error: left unfinished: {}", summary.unfinished.join("; "));
        return Ok(ExitCode::FAILURE);
    }
    if summary.lost_anything() {
        for o in summary.observers.iter().filter(|o| o.lost_anything()) {
            eprintln!(
                "error: observer `{}` lost work: {} events dropped, {} deliveries or jobs given up, {} dropped inside",
                report::clean(&o.name),
                o.events_dropped,
                o.losses.given_up,
                o.losses.dropped
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    if let Some(e) = &read.failed {
        eprintln!("error: reading the input failed: {e}");
        return Ok(ExitCode::FAILURE);
    }
    if let Some(e) = read.stopped_by {
        eprintln!("error: stopped at the first malformed line (--strict): {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
