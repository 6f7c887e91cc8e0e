//! Project automation for model-monitor, run as `cargo xtask <task>`.
//!
//! - `cargo xtask ci` runs every check CI runs, in order, and stops at the
//!   first failure: rustfmt, clippy, each library crate built alone without
//!   default features, the tests (cargo-nextest when installed, else
//!   `cargo test`), the doctests, a chaos run of 5 kills, rustdoc with
//!   warnings denied, and the architecture invariants.
//!   With `--keep-going` it runs every step and reports all failures at the end.
//! - `cargo xtask tidy` runs only the architecture invariants (see [`tidy`]).
//! - `cargo xtask eval` runs every detector over generated streams with known
//!   change points and prints false alarms, missed changes and detection
//!   delay, then the effect-size gates, the alarm budget of the replay
//!   defaults and the fixed-reference experiment: the tables of
//!   docs/DETECTORS.md. It builds in release; it takes a few minutes.
//! - `cargo xtask chaos [--kills N] [--seed S]` SIGKILLs the daemon at
//!   random moments while records stream in and its receivers fail, then
//!   checks that nothing was lost or done twice (see [`chaos`]); CI runs 5
//!   kills.
//! - `cargo xtask fuzz [--seconds N] [TARGET...]` runs each cargo-fuzz
//!   target of `fuzz/` for N seconds (60 by default) and fails on a crash
//!   (see [`fuzz`]); it needs a nightly toolchain and cargo-fuzz.
//! - `cargo xtask loadgen [OPTIONS]` posts NDJSON batches to `model-monitor
//!   serve` over loopback and prints records/s, request latency and RSS (the
//!   `serve_load` bench of monitor-cli; its options pass through).
//!
//! Cargo is taken from `$CARGO` (set by `cargo run`), else `cargo` on the
//! `PATH`. Commands run from the workspace root. When `CI` is set (as CI
//! services do), cargo's colours are turned off so that logs stay readable.
//!
//! The crate depends on std and anyhow only, so that it builds in seconds on
//! a fresh machine.

// A command-line tool reports on stdout and stderr by design.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod chaos;
mod fuzz;
mod tidy;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci [--keep-going]   fmt, clippy, per-crate builds, tests, doctests, a short
                      chaos run, docs, invariants; stops at the first failure unless --keep-going
  tidy                the architecture invariants only
  eval                every detector over streams with known change points,
                      the effect-size gates and the alarm budget: the tables
                      of docs/DETECTORS.md
  chaos [--kills N] [--seed S]
                      SIGKILL the daemon N times (default 100) while records
                      stream in and receivers fail; check nothing is lost or
                      done twice
  fuzz [--seconds N] [TARGET...]
                      each fuzz target (record, ndjson, config, snapshot) for
                      N seconds (default 60); fails on a crash. Needs nightly
                      and cargo-fuzz
  loadgen [OPTIONS]   post NDJSON batches to `model-monitor serve` over loopback:
                      records/s, p99 request latency, RSS (--seconds, --clients,
                      --batch, --models, --max-requests, --replay-records, --config)
  help                this message";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, flags) = match args.split_first() {
        Some((task, flags)) => (task.as_str(), flags),
        None => bail!("no task given\n\n{USAGE}"),
    };
    if task == "loadgen" {
        let ctx = Workspace::new()?;
        let mut args = vec!["bench", "--quiet", "-p", "monitor-cli", "--bench", "serve_load", "--"];
        args.extend(flags.iter().map(String::as_str));
        return ctx.run_cargo(&args, &[]);
    }
    if task == "chaos" {
        let (kills, seed) = chaos_flags(flags)?;
        let ctx = Workspace::new()?;
        return chaos::run(&ctx.daemon()?, kills, seed);
    }
    if task == "fuzz" {
        let options = fuzz::parse_options(flags)?;
        return fuzz::run(&Workspace::new()?, &options);
    }
    let keep_going = match (task, flags) {
        (_, []) => false,
        ("ci", [flag]) if flag == "--keep-going" => true,
        (_, [flag, ..]) => bail!("unknown argument `{flag}` for `{task}`\n\n{USAGE}"),
    };
    let ctx = Workspace::new()?;
    match task {
        "ci" => ci(&ctx, keep_going),
        "tidy" => {
            let mut runner = Runner::new(1, false);
            runner.step("invariants", || tidy::check_all(&ctx.root, &|args| ctx.cargo_output(args)))?;
            runner.finish()
        }
        "eval" => ctx.run_cargo(&["run", "--release", "--quiet", "-p", "monitor-strategies", "--example", "eval"], &[]),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// Where and how cargo is run.
struct Workspace {
    cargo: OsString,
    root: PathBuf,
    ci: bool,
}

impl Workspace {
    fn new() -> Result<Self> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let root = manifest_dir
            .parent()
            .with_context(|| format!("xtask's manifest dir {} has no parent", manifest_dir.display()))?
            .to_path_buf();
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        Ok(Self { cargo, root, ci })
    }

    /// A cargo command in the workspace root.
    fn cargo(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.args(args).current_dir(&self.root);
        if self.ci {
            cmd.env("CARGO_TERM_COLOR", "never");
        }
        cmd
    }

    /// Runs cargo with inherited output; fails when it exits non-zero.
    fn run_cargo(&self, args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
        let mut cmd = self.cargo(args);
        cmd.envs(envs.iter().copied());
        let shown = show(args, envs);
        let status = cmd.status().with_context(|| format!("could not start `{shown}`"))?;
        if !status.success() {
            bail!("`{shown}` failed ({status})");
        }
        Ok(())
    }

    /// Runs cargo and returns its stdout; fails with its stderr when it exits non-zero.
    fn cargo_output(&self, args: &[&str]) -> Result<String> {
        let shown = show(args, &[]);
        let out = self.cargo(args).output().with_context(|| format!("could not start `{shown}`"))?;
        if !out.status.success() {
            bail!("`{shown}` failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr).trim_end());
        }
        String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed invalid UTF-8"))
    }

    /// Builds `model-monitor` and returns its path.
    fn daemon(&self) -> Result<PathBuf> {
        self.run_cargo(&["build", "--quiet", "-p", "monitor-cli", "--bin", "model-monitor"], &[])?;
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| self.root.join("target"), PathBuf::from);
        let bin = target.join("debug").join("model-monitor");
        if !bin.is_file() {
            bail!("built model-monitor, but found no {}", bin.display());
        }
        Ok(bin)
    }

    /// Whether `cargo nextest` is installed and runs.
    fn has_nextest(&self) -> bool {
        self.cargo(&["nextest", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

fn show(args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in envs {
        s.push_str(&format!("{k}={v} "));
    }
    s.push_str("cargo ");
    s.push_str(&args.join(" "));
    s
}

/// Runs named steps in order, each reported on one line with its time.
struct Runner {
    total: usize,
    done: usize,
    started: Instant,
    /// Run the remaining steps after a failure, and report every failure at the end.
    keep_going: bool,
    failed: Vec<String>,
}

impl Runner {
    fn new(total: usize, keep_going: bool) -> Self {
        Self { total, done: 0, started: Instant::now(), keep_going, failed: Vec::new() }
    }

    /// Runs one step. Its error is returned at once, or, with `keep_going`,
    /// reported and kept for [`Runner::finish`].
    fn step(&mut self, name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
        self.done += 1;
        let (i, n) = (self.done, self.total);
        eprintln!("xtask: [{i}/{n}] {name} ...");
        let start = Instant::now();
        let result = f();
        let took = secs(start.elapsed());
        match result {
            Ok(()) => {
                println!("xtask: [{i}/{n}] {name:<12} ok      {took}");
                Ok(())
            }
            Err(err) => {
                println!("xtask: [{i}/{n}] {name:<12} FAILED  {took}");
                let err = err.context(format!("step {i}/{n} `{name}` failed"));
                if !self.keep_going {
                    return Err(err);
                }
                eprintln!("xtask: error: {err:#}");
                self.failed.push(name.to_owned());
                Ok(())
            }
        }
    }

    fn skip(&mut self, name: &str, why: &str) {
        self.done += 1;
        println!("xtask: [{}/{}] {name:<12} skipped ({why})", self.done, self.total);
    }

    fn finish(self) -> Result<()> {
        let took = secs(self.started.elapsed());
        if !self.failed.is_empty() {
            bail!("{} of {} steps failed in {took}: {}", self.failed.len(), self.total, self.failed.join(", "));
        }
        println!("xtask: all {} steps passed in {took}", self.total);
        Ok(())
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The kills CI runs: a short run, under a minute.
const CI_KILLS: usize = 5;

/// `--kills N` (default 100, at most 10000) and `--seed S` (default: the clock).
fn chaos_flags(flags: &[String]) -> Result<(usize, u64)> {
    let mut kills = 100;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs());
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("`{flag}` needs a value"))?;
        match flag.as_str() {
            "--kills" => {
                kills = value.parse().with_context(|| format!("--kills {value}: not a number"))?;
                if !(1..=10_000).contains(&kills) {
                    bail!("--kills {value}: give 1 to 10000");
                }
            }
            "--seed" => seed = value.parse().with_context(|| format!("--seed {value}: not a number"))?,
            other => bail!("unknown argument `{other}` for `chaos`\n\n{USAGE}"),
        }
    }
    Ok((kills, seed))
}

fn ci(ctx: &Workspace, keep_going: bool) -> Result<()> {
    let mut r = Runner::new(8, keep_going);
    r.step("fmt", || {
        // rustfmt colours its diff on its own terms.
        let args: &[&str] =
            if ctx.ci { &["fmt", "--all", "--check", "--", "--color", "never"] } else { &["fmt", "--all", "--check"] };
        ctx.run_cargo(args, &[]).map_err(|e| anyhow!("{e:#}; run `cargo fmt --all` to fix it"))
    })?;
    r.step("clippy", || {
        ctx.run_cargo(&["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"], &[])
    })?;
    r.step("no-default", || {
        let crates = tidy::library_crates(&ctx.root)?;
        if crates.is_empty() {
            bail!("found no library crate under {}", ctx.root.join("crates").display());
        }
        let mut broken = Vec::new();
        for krate in &crates {
            if let Err(err) = ctx.run_cargo(&["check", "-p", &krate.name, "--no-default-features"], &[]) {
                if !keep_going {
                    return Err(err.context(format!("`{}` does not build alone without default features", krate.name)));
                }
                broken.push(krate.name.as_str());
            }
        }
        if !broken.is_empty() {
            bail!("these crates do not build alone without default features: {}", broken.join(", "));
        }
        Ok(())
    })?;
    if ctx.has_nextest() {
        r.step("test", || ctx.run_cargo(&["nextest", "run", "--workspace", "--all-features"], &[]))?;
        r.step("doctest", || ctx.run_cargo(&["test", "--workspace", "--all-features", "--doc"], &[]))?;
    } else {
        r.step("test", || ctx.run_cargo(&["test", "--workspace", "--all-features"], &[]))?;
        r.skip("doctest", "cargo test ran them; cargo-nextest is not installed");
    }
    r.step("chaos", || chaos::run(&ctx.daemon()?, CI_KILLS, 1))?;
    r.step("doc", || {
        ctx.run_cargo(&["doc", "--workspace", "--no-deps", "--all-features"], &[("RUSTDOCFLAGS", "-Dwarnings")])
    })?;
    r.step("invariants", || tidy::check_all(&ctx.root, &|args| ctx.cargo_output(args)))?;
    r.finish()
}

/// `path` relative to `root`, for messages.
fn rel<'a>(root: &Path, path: &'a Path) -> std::path::Display<'a> {
    path.strip_prefix(root).unwrap_or(path).display()
}
