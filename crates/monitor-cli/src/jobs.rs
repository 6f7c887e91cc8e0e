//! `jobs list|show|cancel`: the retrain jobs in the journal of a stopped
//! daemon, read (and cancelled) in the file directly.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use model_monitor::runtime::journal::{JobRow, Journal};
use tokio_util::sync::CancellationToken;

use crate::output::Stdout;
use crate::{Format, exit_for, load_config};

/// `model-monitor jobs`.
#[derive(clap::Args)]
pub(crate) struct JobsArgs {
    #[command(subcommand)]
    command: JobsCommand,
    /// The daemon's state directory (`engine.state_dir`).
    #[arg(long, global = true, conflicts_with = "config")]
    state_dir: Option<PathBuf>,
    /// The daemon's config file, to read its `engine.state_dir`.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum JobsCommand {
    /// The newest jobs first: id, status, attempts, model, version, last change.
    List {
        /// Only jobs in this status (`requested`, `queued`, `dispatched`,
        /// `succeeded`, `failed`, `merged`, `cancelled`).
        #[arg(long)]
        status: Option<String>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// `text`: a table. `json`: one job per line.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One job, its reasons and the dispatcher's answer included.
    Show {
        /// The job id.
        id: String,
        /// `text`: one field per line. `json`: the job as one object.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Marks a job not finished (requested, queued, dispatched) cancelled,
    /// so that the daemon does not ask for it again at its next start.
    Cancel {
        /// The job id.
        id: String,
    },
}

pub(crate) fn run(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let state_dir = match (args.state_dir, args.config) {
        (Some(dir), _) => dir,
        (None, Some(file)) => {
            let (config, _) = load_config(Some(&file))?;
            config
                .engine
                .state_dir
                .with_context(|| format!("{} sets no engine.state_dir: the daemon keeps no journal", file.display()))?
        }
        (None, None) => anyhow::bail!("say where the journal is: --state-dir DIR or --config FILE"),
    };
    let journal = Journal::open_existing(&state_dir)?;
    let stdout = Stdout::new(CancellationToken::new());
    match args.command {
        JobsCommand::List { status, limit, format } => {
            let jobs = journal.jobs(status.as_deref(), limit)?;
            stdout.print(&match format {
                Format::Json => json_lines(&jobs)?,
                Format::Text => table(&jobs),
            });
        }
        JobsCommand::Show { id, format } => {
            let job = journal.job(&id)?.with_context(|| format!("no job {id} in {}", journal.path().display()))?;
            stdout.print(&match format {
                Format::Json => format!("{}\n", serde_json::to_string(&job)?),
                Format::Text => detail(&job),
            });
        }
        JobsCommand::Cancel { id } => {
            let job = journal.cancel_job(&id)?;
            stdout.print(&format!("job {} cancelled ({} {})\n", job.id, job.model, job.version));
        }
    }
    Ok(exit_for(&stdout))
}

fn json_lines(jobs: &[JobRow]) -> anyhow::Result<String> {
    let mut out = String::new();
    for job in jobs {
        out.push_str(&serde_json::to_string(job)?);
        out.push('\n');
    }
    Ok(out)
}

fn table(jobs: &[JobRow]) -> String {
    let mut out = format!(
        "{:<36}  {:<10}  {:>8}  {:<20}  {:<12}  {}\n",
        "ID", "STATUS", "ATTEMPTS", "MODEL", "VERSION", "UPDATED"
    );
    for job in jobs {
        let _ = writeln!(
            out,
            "{:<36}  {:<10}  {:>8}  {:<20}  {:<12}  {}",
            job.id,
            job.status,
            job.attempts,
            job.model,
            job.version,
            job.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    if jobs.is_empty() {
        out.push_str("(no jobs)\n");
    }
    out
}

fn detail(job: &JobRow) -> String {
    let mut out = String::new();
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let _ = writeln!(out, "id:         {}", job.id);
    let _ = writeln!(out, "model:      {} {}", job.model, job.version);
    let _ = writeln!(out, "status:     {}", job.status);
    let _ = writeln!(out, "attempts:   {}", job.attempts);
    let _ = writeln!(out, "created:    {}", time(&job.created_at));
    let _ = writeln!(out, "updated:    {}", time(&job.updated_at));
    let _ = writeln!(out, "dispatcher: {}", job.dispatcher.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "answer:     {}", job.answer.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "reasons:");
    for reason in &job.reasons {
        let _ = writeln!(out, "  - {} {}: {}", reason.signal, reason.detector, reason.message);
    }
    out
}
