//! `model-monitor`: replay inference logs, check config, run the demo.
//!
//! ```text
//! model-monitor demo                                  # the whole loop on shipped data
//! model-monitor replay log.ndjson --config monitor.toml [--format json] [--strict]
//! model-monitor check-config monitor.toml
//! ```

// A command-line program talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod interrupt;
mod output;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use interrupt::Interrupt;
use model_monitor::observers::{NdjsonObserver, builtin_registry};
use model_monitor::record::Record;
use model_monitor::registry::BuildContext;
use model_monitor::runtime::source::DEFAULT_MAX_LINE_BYTES;
use model_monitor::runtime::{Config, EngineBuilder, LineSource, Overflow, PumpOptions, pump};
use model_monitor::signal::{Signal, missing_quality_name};
use model_monitor::strategies::{MonitorPlan, builtin_detectors};
use output::{Outcome, Stdout};
use report::ReportObserver;
use tokio_util::sync::CancellationToken;

/// Rejected lines reported one by one before `replay` only counts them.
const SHOWN_REJECTIONS: u64 = 20;

const DEMO_CONFIG: &str = include_str!("../demo/monitor.toml");
const DEMO_RECORDS: &str = include_str!("../demo/records.ndjson");
const DEFAULT_CONFIG: &str = include_str!("../demo/default.toml");

#[derive(Parser)]
#[command(name = "model-monitor", version, about = "Watch ML models in production: detect drift, alert, retrain.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a recorded NDJSON inference log and show when, and why, detectors fire.
    Replay(ReplayArgs),
    /// Validate a config file, observers and reference files included, and
    /// print what it sets up, with the alpha each feature is tested at.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
        /// A sample of records (NDJSON; the first 10000 lines are read) to
        /// learn which signals each model sends, for the per-feature alphas.
        #[arg(long)]
        records: Option<PathBuf>,
    },
    /// Run the whole loop on shipped example data: three models, one whose
    /// accuracy falls, one whose latency rises; findings and retraining jobs.
    Demo {
        /// Where to write the demo's files (default: a new temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The NDJSON file to replay; standard input when absent or `-`.
    file: Option<PathBuf>,
    /// The TOML config; the built-in default monitors when absent.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// `text`: a report per model. `json`: one event per line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Stop at the first malformed line, with a non-zero exit.
    #[arg(long)]
    strict: bool,
    /// Shard tasks. One keeps the output in input order.
    #[arg(long, default_value_t = 1)]
    shards: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        // Colour codes only for a terminal, never into a log file.
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Replay(args) => replay(args).await,
            Command::CheckConfig { file, records } => check_config(&file, records.as_deref()),
            Command::Demo { dir, format } => demo(dir, format).await,
        }
    });
    // A reader still blocked on standard input must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report::clean(&chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once (an error's message often
/// includes its source's already).
fn chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

/// The config, and what building it needs: its directory, its state
/// directory and the built-in detector kinds.
fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, BuildContext)> {
    let (config, base_dir) = match path {
        Some(p) => (Config::load(p)?, Config::base_dir(p)),
        None => (Config::from_toml(DEFAULT_CONFIG)?, PathBuf::from(".")),
    };
    let mut ctx = BuildContext { base_dir, detectors: builtin_detectors(), ..BuildContext::default() };
    ctx.state_dir.clone_from(&config.engine.state_dir);
    Ok((config, ctx))
}

async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
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
        .shards(args.shards.max(1))
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
    let input = args.file.filter(|f| f.as_os_str() != "-");
    let started = Instant::now();
    let interrupt = Interrupt::listen(stop.clone()).context("cannot listen for signals")?;
    let engine = builder.spawn()?;
    let mut source = match &input {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            LineSource::spawn("file", path.display().to_string(), file, DEFAULT_MAX_LINE_BYTES)
        }
        None => LineSource::spawn("stdin", "stdin", io::stdin(), DEFAULT_MAX_LINE_BYTES),
    };
    let sink = engine.sink();
    let options = PumpOptions { strict: args.strict };
    let read = pump(&mut source, &sink, options, &stop).await;
    drop(sink);
    let summary = engine.shutdown().await;
    let read = read?;
    if args.format == Format::Text {
        let source = input.as_ref().map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
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

fn check_config(file: &Path, records: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (config, ctx) = load_config(Some(file))?;
    let plan = config.plan(&ctx)?;
    plan.load_references()?;
    let observers = config.build_observers(&builtin_registry(), &ctx)?;
    println!("{}: OK", file.display());
    println!("monitors:");
    if plan.monitors.is_empty() {
        println!("  (none: records are accepted and counted, nothing is detected)");
    }
    for (i, m) in plan.monitors.iter().enumerate() {
        let scope = m.models.as_ref().map_or_else(|| "every model".to_owned(), |ms| ms.join(", "));
        let mut detector = m.detector.params();
        if let Some(table) = detector.as_object_mut() {
            table.retain(|_, v| !v.is_null());
        }
        let damping = if (m.fire_after, m.resolve_after) == (1, 1) {
            String::new()
        } else {
            format!(", fire_after {}, resolve_after {}", m.fire_after, m.resolve_after)
        };
        println!("  [{i}] {} on {} ({scope}): {detector}{damping}", m.detector.kind(), m.signal);
    }
    let p = &config.policy;
    println!("policy: trigger {}, cooldown {}, min_samples {}", p.trigger, p.cooldown, p.min_samples);
    for (model, m) in &config.models {
        if let Some(p) = &m.policy {
            println!(
                "policy for {model}: trigger {}, cooldown {}, min_samples {}",
                p.trigger, p.cooldown, p.min_samples
            );
        }
    }
    print_alphas(&plan, records)?;
    println!("observers:");
    if observers.is_empty() {
        println!("  (none)");
    }
    for o in &observers {
        println!("  {}", o.name());
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the gates of each monitor's alarms: for the p-value tests, the
/// alpha each signal is tested at (one family per model version, across
/// monitors) and the effect size it must also reach; for the others, their
/// effect size. Signals come from a sample of records, else from the
/// reference files.
fn print_alphas(plan: &MonitorPlan, records: Option<&Path>) -> anyhow::Result<()> {
    let gated: Vec<_> = plan
        .monitors
        .iter()
        .enumerate()
        .filter(|(_, m)| m.detector.p_value_family().is_some() || m.detector.min_effect().is_some())
        .collect();
    if gated.is_empty() {
        return Ok(());
    }
    println!(
        "alarm gates (a p-value test's alpha is shared by every p-value test of a model version, across monitors):"
    );
    for (i, m) in &gated {
        let effect = m.detector.min_effect().map(|e| format!(", min_effect {e}")).unwrap_or_default();
        match m.detector.p_value_family() {
            Some((correction, alpha)) => {
                let correction = format!("{correction:?}").to_lowercase();
                println!(
                    "  [{i}] {} on {}: alpha {alpha}, correction {correction}{effect}",
                    m.detector.kind(),
                    m.signal
                );
            }
            None => println!("  [{i}] {} on {}: no p-value{effect}", m.detector.kind(), m.signal),
        }
    }
    // The signals of each model: from the records, else from the files.
    let mut models: BTreeMap<String, (BTreeSet<Signal>, BTreeSet<Signal>)> = BTreeMap::new();
    let from_files = records.is_none();
    if let Some(path) = records {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        for line in BufReader::new(file).lines().take(10_000) {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if let Ok(record) = Record::parse(&line, chrono::Utc::now()) {
                let (signals, categorical) = models.entry(record.model.clone()).or_default();
                record.for_each_signal(|s, v| {
                    if signals.insert(s.to_owned()) && v.as_category().is_some() {
                        categorical.insert(s.to_owned());
                    }
                });
                for name in record.features.keys().chain(&record.null_features) {
                    signals.insert(Signal::Quality(missing_quality_name(name)));
                }
            }
        }
    } else {
        for (_, m) in &gated {
            let Some(names) = m.detector.reference_signals()? else { continue };
            let model = m.models.as_ref().and_then(|ms| ms.first()).cloned().unwrap_or_default();
            let (signals, _) = models.entry(model).or_default();
            for signal in names.iter().filter_map(|s| s.parse::<Signal>().ok()) {
                if let Signal::Feature(f) = &signal {
                    signals.insert(Signal::Quality(missing_quality_name(f)));
                }
                signals.insert(signal);
            }
        }
    }
    let mut listed = false;
    for (model, (signals, categorical)) in &models {
        let signals: Vec<Signal> = signals.iter().cloned().collect();
        let categorical: Vec<Signal> = categorical.iter().cloned().collect();
        let alphas = plan.effective_alphas(model, &signals, &categorical);
        if alphas.is_empty() {
            continue;
        }
        let whose = if model.is_empty() { "every model".to_owned() } else { format!("model {model}") };
        let source = if from_files { ", signals of the reference files" } else { "" };
        println!("  {whose}{source}:");
        for e in &alphas {
            let effect = e.min_effect.map(|x| format!(", min_effect {x}")).unwrap_or_default();
            println!("      [{}] {}: {:.6} ({} tests{source}){effect}", e.monitor, e.signal, e.per_test, e.tests);
            listed = true;
        }
    }
    if !listed && gated.iter().any(|(_, m)| m.detector.p_value_family().is_some()) {
        let example = model_monitor::correction::Correction::Bonferroni.per_test_alpha(0.05, 10);
        println!(
            "      each p-value test gets a share of its alpha set by how many p-value tests its model \
             version has (with 10 and alpha 0.05: {example:.6}); give --records FILE to list them"
        );
    }
    Ok(())
}

async fn demo(dir: Option<PathBuf>, format: Format) -> anyhow::Result<ExitCode> {
    let dir = match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            dir
        }
        // A fresh directory of our own (0700, unpredictable name), kept so
        // that its files can be looked at afterwards.
        None => {
            let dir = tempfile::Builder::new()
                .prefix("model-monitor-demo-")
                .tempdir()
                .context("cannot create a temporary directory for the demo")?
                .keep();
            // Private before anything is written into it.
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .with_context(|| format!("cannot make {} private", dir.display()))?;
            dir
        }
    };
    let config = dir.join("monitor.toml");
    let records = dir.join("records.ndjson");
    let jobs_log = dir.join("retrain-jobs.log");
    let events = dir.join("events.ndjson");
    std::fs::write(&config, DEMO_CONFIG).with_context(|| format!("cannot write {}", config.display()))?;
    std::fs::write(&records, DEMO_RECORDS).with_context(|| format!("cannot write {}", records.display()))?;
    for stale in [&jobs_log, &events] {
        if stale.exists() {
            std::fs::remove_file(stale).with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    if format == Format::Text {
        println!("model-monitor demo: three models, ten minutes of traffic, in {}", dir.display());
        println!("  fraud v3: its accuracy falls after request 300");
        println!("  search v1: its latency rises after request 350");
        println!("  recsys v2: healthy\n");
    }
    let args =
        ReplayArgs { file: Some(records.clone()), config: Some(config.clone()), format, strict: true, shards: 1 };
    let code = replay(args).await?;
    if format == Format::Text {
        let jobs = std::fs::read_to_string(&jobs_log).unwrap_or_default();
        if jobs.is_empty() {
            bail!("the retrain command wrote nothing to {}", jobs_log.display());
        }
        println!("\nThe retrain command really ran; it wrote {}:", jobs_log.display());
        for line in jobs.lines() {
            println!("  {line}");
        }
        println!("\nEvery event is in {} (one JSON object a line).", events.display());
        println!("Try it on your own log:");
        println!("  model-monitor replay {} --config {} --format json", records.display(), config.display());
    }
    Ok(code)
}
