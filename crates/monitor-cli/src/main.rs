//! `model-monitor`: replay inference logs, check config, run the demo.
//!
//! ```text
//! model-monitor demo                                  # the whole loop on shipped data
//! model-monitor replay log.ndjson --config monitor.toml [--format json] [--strict] [--report report.html]
//! model-monitor check-config monitor.toml
//! model-monitor eval log.ndjson --config a.toml [--config b.toml] [--stable FROM..TO] [--change SEQ] [--format json] [--report eval.html]
//! model-monitor serve --config monitor.toml [--listen ADDR] [--insecure]
//! model-monitor jobs list|show ID|retry ID|cancel ID (--url URL | --state-dir DIR | --config monitor.toml)
//! model-monitor outbox list|retry ID (--url URL | --state-dir DIR | --config monitor.toml)
//! ```

// A command-line program talks to its user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api;
mod check;
mod demo;
mod eval;
mod eval_text;
mod html_report;
mod interrupt;
mod jobs;
mod output;
mod progress;
mod replay;
mod report;
mod serve;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use model_monitor::observers::builtin_dispatchers;
use model_monitor::registry::BuildContext;
use model_monitor::runtime::Config;
use model_monitor::strategies::builtin_detectors;
use output::{Outcome, Stdout};

/// mimalloc, not glibc's malloc: a replay parses on one thread and frees
/// on another, and glibc then serialises every free on the parser's arena
/// lock (see docs/PERFORMANCE.md for the measured difference). The
/// libraries stay allocator-neutral.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Compare detector configs on a recorded log: the alarms each would
    /// raise, false alarms on stretches marked stable, delays to change points.
    Eval(eval::EvalArgs),
    /// Run the HTTP daemon: records in over HTTP, state, events and metrics out.
    Serve(serve::ServeArgs),
    /// The retrain jobs in a daemon's journal, through its API (`--url`) or
    /// in the file of a stopped one: list them, show, retry or cancel one.
    Jobs(jobs::JobsArgs),
    /// The deliveries in a daemon's outbox, through its API (`--url`) or in
    /// the file of a stopped one: list them, make one due again.
    Outbox(jobs::OutboxArgs),
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
    /// The log to replay: NDJSON, or Parquet (by a `.parquet` extension);
    /// standard input (NDJSON) when absent or `-`.
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
    /// The longest line accepted, in bytes (at most 64 MiB); longer lines
    /// are rejected with their number, without being held in memory.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    max_line_bytes: u64,
    /// Shard tasks, 1 to 1024 (default: the number of cores). Each model's
    /// events keep their order; with one shard, all events do.
    #[arg(long, default_value_t = cores(), value_parser = clap::value_parser!(u16).range(1..=1024))]
    shards: u16,
    /// Also write a self-contained HTML report (charts of every detector's
    /// windows, findings and jobs) to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// No progress bar (it is only shown when standard error is a terminal).
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The number of cores, the default shard count.
fn cores() -> u16 {
    std::thread::available_parallelism().map_or(1, |n| u16::try_from(n.get()).unwrap_or(1024).min(1024))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A daemon says what it does; a batch command only what goes wrong.
    let default_filter = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        // Colour codes only for a terminal, never into a log file.
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Replay(args) => replay::replay(args).await,
            Command::CheckConfig { file, records } => check::run(&file, records.as_deref()).await,
            Command::Demo { dir, format } => demo::demo(dir, format).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Jobs(args) => jobs::run(args),
            Command::Outbox(args) => jobs::run_outbox(args),
            Command::Eval(args) => eval::run(args),
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
    let mut ctx = BuildContext {
        base_dir,
        detectors: builtin_detectors(),
        dispatchers: builtin_dispatchers(),
        ..BuildContext::default()
    };
    ctx.state_dir.clone_from(&config.engine.state_dir);
    Ok((config, ctx))
}

/// The exit code once output is done: a closed stdout is a quiet end, any
/// other write error a failure, said once.
fn exit_for(stdout: &Stdout) -> ExitCode {
    match stdout.outcome() {
        Outcome::Ok | Outcome::Closed => ExitCode::SUCCESS,
        Outcome::Failed(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
