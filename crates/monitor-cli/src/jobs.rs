//! `jobs list|show|retry|cancel` and `outbox list|retry`: the retrain jobs
//! and the deliveries of a daemon's journal. With `--url`, through the API
//! of a running daemon (which sees every change at once); with
//! `--state-dir` or `--config`, in the journal file of a stopped daemon.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use model_monitor::runtime::journal::Journal;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::api::Api;
use crate::output::Stdout;
use crate::{Format, exit_for, load_config};

/// Where the journal is: a running daemon's API, or a stopped one's file.
#[derive(clap::Args)]
pub(crate) struct Target {
    /// A running daemon's address (`http://127.0.0.1:9400`): act through its API.
    #[arg(long, global = true, conflicts_with_all = ["state_dir", "config"])]
    url: Option<String>,
    /// With `--url`: the environment variable that holds the daemon's token.
    #[arg(long, global = true, requires = "url")]
    token_env: Option<String>,
    /// A stopped daemon's state directory (`engine.state_dir`).
    #[arg(long, global = true, conflicts_with = "config")]
    state_dir: Option<PathBuf>,
    /// A stopped daemon's config file, to read its `engine.state_dir`.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
}

/// The journal behind a [`Target`].
enum Journaled {
    Api(Api),
    File(Journal),
}

impl Target {
    fn open(self) -> anyhow::Result<Journaled> {
        if let Some(url) = self.url {
            return Ok(Journaled::Api(Api::new(&url, self.token_env.as_deref())?));
        }
        let state_dir = match (self.state_dir, self.config) {
            (Some(dir), _) => dir,
            (None, Some(file)) => {
                let (config, _) = load_config(Some(&file))?;
                config.engine.state_dir.with_context(|| {
                    format!("{} sets no engine.state_dir: the daemon keeps no journal", file.display())
                })?
            }
            (None, None) => anyhow::bail!("say where the journal is: --url URL, --state-dir DIR or --config FILE"),
        };
        Ok(Journaled::File(Journal::open_existing(&state_dir)?))
    }
}

/// `model-monitor jobs`.
#[derive(clap::Args)]
pub(crate) struct JobsArgs {
    #[command(subcommand)]
    command: JobsCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum JobsCommand {
    /// The newest jobs first: id, status, attempts, model, version, last change.
    List {
        /// Only jobs in this status (`requested`, `queued`, `dispatched`,
        /// `succeeded`, `failed`, `merged`, `cancelled`).
        #[arg(long)]
        status: Option<String>,
        /// At most this many jobs (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
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
    /// Asks for a job again under the same idempotency key: at once on a
    /// running daemon (`--url`), at its next start on a stopped one.
    Retry {
        /// The job id.
        id: String,
    },
    /// Marks a job not finished (requested, queued, dispatched) cancelled,
    /// so that the daemon does not ask for it again at its next start.
    Cancel {
        /// The job id.
        id: String,
    },
}

/// `model-monitor outbox`.
#[derive(clap::Args)]
pub(crate) struct OutboxArgs {
    #[command(subcommand)]
    command: OutboxCommand,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum OutboxCommand {
    /// The newest deliveries first: id, receiver, status, attempts, event, key.
    List {
        /// Only the rows of this receiver (an observer's name).
        #[arg(long)]
        receiver: Option<String>,
        /// Only rows in this status (`pending`, `delivered`, `skipped`, `failed`).
        #[arg(long)]
        status: Option<String>,
        /// At most this many rows (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// `text`: a table. `json`: one row per line.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Makes a pending or failed delivery due now, its attempts counted
    /// from zero.
    Retry {
        /// The row id.
        id: u64,
    },
}

/// A query string of the pairs that are set.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v)))).collect();
    if set.is_empty() { String::new() } else { format!("?{}", set.join("&")) }
}

/// Percent-encodes what is not unreserved in a query value.
fn encode(value: &str) -> String {
    value.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

pub(crate) fn run(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let journal = args.target.open()?;
    let stdout = Stdout::new(CancellationToken::new());
    match args.command {
        JobsCommand::List { status, limit, format } => {
            let jobs = match &journal {
                Journaled::Api(api) => {
                    let path = format!("/v1/jobs{}", query(&[("status", status), ("limit", Some(limit.to_string()))]));
                    api.call("GET", &path)?["jobs"].as_array().cloned().unwrap_or_default()
                }
                Journaled::File(j) => array(serde_json::to_value(j.jobs(status.as_deref(), limit.into())?)?),
            };
            stdout.print(&match format {
                Format::Json => json_lines(&jobs)?,
                Format::Text => job_table(&jobs),
            });
        }
        JobsCommand::Show { id, format } => {
            let job = match &journal {
                Journaled::Api(api) => api.call("GET", &format!("/v1/jobs/{}", encode(&id)))?,
                Journaled::File(j) => serde_json::to_value(
                    j.job(&id)?.with_context(|| format!("no job {id} in {}", j.path().display()))?,
                )?,
            };
            stdout.print(&match format {
                Format::Json => format!("{job}\n"),
                Format::Text => job_detail(&job),
            });
        }
        JobsCommand::Retry { id } => {
            let (job, when) = match &journal {
                Journaled::Api(api) => (api.call("POST", &format!("/v1/jobs/{}/retry", encode(&id)))?, "now"),
                Journaled::File(j) => (serde_json::to_value(j.requeue_job(&id)?)?, "at the daemon's next start"),
            };
            stdout.print(&format!(
                "job {} asked for again {when} ({} {})\n",
                str_of(&job["id"]),
                str_of(&job["model"]),
                str_of(&job["version"])
            ));
        }
        JobsCommand::Cancel { id } => {
            let job = match &journal {
                Journaled::Api(api) => api.call("POST", &format!("/v1/jobs/{}/cancel", encode(&id)))?,
                Journaled::File(j) => serde_json::to_value(j.cancel_job(&id)?)?,
            };
            stdout.print(&format!(
                "job {} cancelled ({} {})\n",
                str_of(&job["id"]),
                str_of(&job["model"]),
                str_of(&job["version"])
            ));
        }
    }
    Ok(exit_for(&stdout))
}

pub(crate) fn run_outbox(args: OutboxArgs) -> anyhow::Result<ExitCode> {
    let journal = args.target.open()?;
    let stdout = Stdout::new(CancellationToken::new());
    match args.command {
        OutboxCommand::List { receiver, status, limit, format } => {
            let rows = match &journal {
                Journaled::Api(api) => {
                    let q = query(&[("receiver", receiver), ("status", status), ("limit", Some(limit.to_string()))]);
                    api.call("GET", &format!("/v1/outbox{q}"))?["rows"].as_array().cloned().unwrap_or_default()
                }
                Journaled::File(j) => {
                    array(serde_json::to_value(j.outbox_rows(receiver.as_deref(), status.as_deref(), limit.into())?)?)
                }
            };
            stdout.print(&match format {
                Format::Json => json_lines(&rows)?,
                Format::Text => outbox_table(&rows),
            });
        }
        OutboxCommand::Retry { id } => {
            let row = match &journal {
                Journaled::Api(api) => api.call("POST", &format!("/v1/outbox/{id}/retry"))?,
                Journaled::File(j) => serde_json::to_value(j.retry_outbox(id)?)?,
            };
            stdout.print(&format!("outbox row {} to {} is due now\n", row["id"], str_of(&row["receiver"])));
        }
    }
    Ok(exit_for(&stdout))
}

/// The rows of a JSON array (none for anything else).
fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(rows) => rows,
        _ => Vec::new(),
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn json_lines(rows: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row)?);
        out.push('\n');
    }
    Ok(out)
}

/// A time as the journal gives it, to the second.
fn time(v: &Value) -> String {
    str_of(v)
        .parse::<chrono::DateTime<chrono::Utc>>()
        .map_or_else(|_| str_of(v).to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

fn job_table(jobs: &[Value]) -> String {
    let mut out = format!(
        "{:<36}  {:<10}  {:>8}  {:<20}  {:<12}  {}\n",
        "ID", "STATUS", "ATTEMPTS", "MODEL", "VERSION", "UPDATED"
    );
    for job in jobs {
        let _ = writeln!(
            out,
            "{:<36}  {:<10}  {:>8}  {:<20}  {:<12}  {}",
            str_of(&job["id"]),
            str_of(&job["status"]),
            job["attempts"],
            str_of(&job["model"]),
            str_of(&job["version"]),
            time(&job["updated_at"])
        );
    }
    if jobs.is_empty() {
        out.push_str("(no jobs)\n");
    }
    out
}

fn job_detail(job: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "id:         {}", str_of(&job["id"]));
    let _ = writeln!(out, "model:      {} {}", str_of(&job["model"]), str_of(&job["version"]));
    let _ = writeln!(out, "status:     {}", str_of(&job["status"]));
    let _ = writeln!(out, "attempts:   {}", job["attempts"]);
    let _ = writeln!(out, "created:    {}", time(&job["created_at"]));
    let _ = writeln!(out, "updated:    {}", time(&job["updated_at"]));
    let _ = writeln!(out, "dispatcher: {}", str_of(&job["dispatcher"]));
    let _ = writeln!(out, "answer:     {}", str_of(&job["answer"]));
    let _ = writeln!(out, "reasons:");
    for reason in job["reasons"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  - {} {}: {}",
            str_of(&reason["signal"]),
            str_of(&reason["detector"]),
            str_of(&reason["message"])
        );
    }
    out
}

fn outbox_table(rows: &[Value]) -> String {
    let mut out = format!(
        "{:>8}  {:<16}  {:<9}  {:>8}  {:<17}  {:<20}  {}\n",
        "ID", "RECEIVER", "STATUS", "ATTEMPTS", "EVENT", "NEXT ATTEMPT", "KEY"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:>8}  {:<16}  {:<9}  {:>8}  {:<17}  {:<20}  {}",
            row["id"],
            str_of(&row["receiver"]),
            str_of(&row["status"]),
            row["attempts"],
            str_of(&row["event_type"]),
            time(&row["next_attempt_at"]),
            str_of(&row["key"])
        );
    }
    if rows.is_empty() {
        out.push_str("(no deliveries)\n");
    }
    out
}
