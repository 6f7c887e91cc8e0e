//! `model-monitor serve`: the HTTP daemon.
//!
//! Starts the engine with the server's observer, listens, prints
//! `listening on http://ADDR` on stdout, and serves until SIGTERM or SIGINT.
//! Then: new requests get 503 and no connection is taken; the requests in
//! flight are answered; every record accepted is processed; observers get
//! until `engine.shutdown_timeout` to finish; what was left is logged, the
//! summary is printed on stdout as one JSON line, and the exit code is 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use model_monitor::observers::builtin_registry;
use model_monitor::runtime::EngineBuilder;
use model_monitor::runtime::server::Server;
use tokio_util::sync::CancellationToken;

use crate::interrupt::Interrupt;
use crate::{load_config, report};

/// Rejected records logged one by one before they are only counted.
const LOGGED_REJECTIONS: u64 = 20;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// The TOML config; the built-in default monitors when absent.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The address to listen on (default: `[server] listen`, else 127.0.0.1:9400).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve on an address that is not loopback without a token.
    #[arg(long)]
    insecure: bool,
}

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (mut config, ctx) = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if args.insecure && config.server.token_env.is_none() && !config.server.listen.ip().is_loopback() {
        tracing::warn!(listen = %config.server.listen, "serving without a token on an address that is not loopback (--insecure)");
    }
    let server = Server::new(config.server.clone(), args.insecure)?.with_plan(&config.plan(&ctx)?);
    let rejected = Arc::new(AtomicU64::new(0));
    let engine = EngineBuilder::from_config(&config, &builtin_registry(), &ctx)?
        .metrics_max_models(config.server.metrics_max_models)
        .observer(server.observer())
        .observer(server.dashboard_observer())
        .window_feed(server.window_feed())
        .on_reject(move |seq, e| {
            // Answers tell each client its rejections; the log gets a sample.
            let n = rejected.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= LOGGED_REJECTIONS {
                tracing::warn!(seq, error = %report::clean(&e.to_string()), "record rejected");
            } else if n % 10_000 == 0 {
                tracing::warn!(rejected = n, "records rejected so far (only the first {LOGGED_REJECTIONS} are logged)");
            }
        })
        .spawn()?;
    let stop = CancellationToken::new();
    let interrupt = Interrupt::listen(stop.clone()).context("cannot listen for signals")?;
    let (handle, serving) = match server.bind(engine.engine()).await {
        Ok(bound) => bound,
        Err(e) => {
            engine.shutdown().await;
            return Err(e.into());
        }
    };
    tracing::info!(address = %handle.local_addr(), shards = config.engine.shards, "serving");
    say(&format!("listening on http://{}", handle.local_addr()));
    let mut serving = tokio::spawn(serving);
    tokio::select! {
        () = stop.cancelled() => {}
        result = &mut serving => {
            // The server ended on its own: an accept loop that failed.
            if let Err(e) = result {
                tracing::error!(error = %e, "the HTTP server task failed");
            }
        }
    }
    // 1. No new request: 503; no new connection.
    handle.shutdown();
    let deadline = config.engine.shutdown_timeout.as_std();
    // 2. Requests in flight are answered, within the engine's deadline.
    if !serving.is_finished() && tokio::time::timeout(deadline, &mut serving).await.is_err() {
        serving.abort();
        tracing::warn!(
            "requests still in flight after {} (engine.shutdown_timeout) were cut off; their records were not acknowledged",
            config.engine.shutdown_timeout
        );
    }
    // 3. Every acknowledged record is processed; observers flush.
    let summary = engine.shutdown().await;
    // 4. What could not be finished, and the counts.
    for what in &summary.unfinished {
        tracing::warn!("left unfinished: {what}");
    }
    for o in summary.observers.iter().filter(|o| o.lost_anything()) {
        tracing::warn!(
            observer = %o.name,
            events_dropped = o.events_dropped,
            given_up = o.losses.given_up,
            dropped = o.losses.dropped,
            "observer lost work"
        );
    }
    let signal = interrupt.received().map(|(name, _)| name);
    tracing::info!(
        stopped_by = signal.unwrap_or("the server"),
        records = summary.monitor.records,
        rejected = summary.monitor.rejected,
        overloaded = summary.overloaded,
        findings = summary.monitor.findings,
        "stopped"
    );
    let line = serde_json::json!({ "stopped_by": signal, "summary": summary });
    say(&line.to_string());
    Ok(ExitCode::SUCCESS)
}

/// A line on stdout; a closed stdout must not stop a daemon.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
