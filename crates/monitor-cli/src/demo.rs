//! `demo`: the whole loop on shipped data, in a fresh private directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use crate::output::Stdout;
use crate::replay::replay;
use crate::{Format, ReplayArgs, exit_for};

const DEMO_CONFIG: &str = include_str!("../demo/monitor.toml");
const DEMO_RECORDS: &str = include_str!("../demo/records.ndjson");

pub(crate) async fn demo(dir: Option<PathBuf>, format: Format) -> anyhow::Result<ExitCode> {
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
    let report = dir.join("report.html");
    std::fs::write(&config, DEMO_CONFIG).with_context(|| format!("cannot write {}", config.display()))?;
    std::fs::write(&records, DEMO_RECORDS).with_context(|| format!("cannot write {}", records.display()))?;
    for stale in [&jobs_log, &events, &report] {
        if stale.exists() {
            std::fs::remove_file(stale).with_context(|| format!("cannot remove {}", stale.display()))?;
        }
    }
    let stdout = Stdout::new(CancellationToken::new());
    if format == Format::Text {
        stdout.print(&format!(
            "model-monitor demo: three models, ten minutes of traffic, in {}\n  \
             fraud v3: its accuracy falls after request 300\n  \
             search v1: its latency rises after request 350\n  \
             recsys v2: healthy\n\n",
            dir.display()
        ));
    }
    let args = ReplayArgs {
        file: Some(records.clone()),
        config: Some(config.clone()),
        format,
        strict: true,
        shards: 1,
        max_line_bytes: 1 << 20,
        report: Some(report.clone()),
        quiet: true,
    };
    let code = replay(args).await?;
    if format == Format::Text {
        let jobs = std::fs::read_to_string(&jobs_log).unwrap_or_default();
        if jobs.is_empty() {
            bail!("the retrain command wrote nothing to {}", jobs_log.display());
        }
        let mut text = format!("\nThe retrain command really ran; it wrote {}:\n", jobs_log.display());
        for line in jobs.lines() {
            text.push_str(&format!("  {line}\n"));
        }
        text.push_str(&format!(
            "\nEvery event is in {} (one JSON object a line).\nThe charts are in {} (open it in a browser).\nTry it on your own log:\n  \
             model-monitor replay {} --config {} --format json\n",
            events.display(),
            report.display(),
            records.display(),
            config.display()
        ));
        stdout.print(&text);
    }
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    Ok(exit_for(&stdout))
}
