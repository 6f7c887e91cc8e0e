//! `cargo xtask fuzz`: every cargo-fuzz target for a bounded time.
//!
//! The targets live in `fuzz/`, a workspace of their own that needs a
//! nightly toolchain and cargo-fuzz; stable builds never see it. Each target
//! starts from its committed seeds in `fuzz/corpus/<target>` (read only) and
//! keeps what it finds in `fuzz/target/corpus/<target>`, so that the
//! committed corpus changes only by hand. A crash fails the task, naming the
//! input libFuzzer saved under `fuzz/artifacts/<target>/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Runner, Workspace, rel};

/// The targets, in the order they run: see `fuzz/harness/<target>.rs`.
pub(crate) const TARGETS: &[&str] = &["record", "ndjson", "config", "snapshot"];

/// How long each target runs unless `--seconds` says otherwise.
const DEFAULT_SECONDS: u64 = 60;
/// libFuzzer's bound on one input's run, and on the fuzzer's memory: a
/// slow or greedy input is a finding too.
const INPUT_TIMEOUT_SECS: u64 = 10;
const RSS_LIMIT_MB: u64 = 2048;

/// What `cargo xtask fuzz` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// Seconds per target.
    pub(crate) seconds: u64,
    /// The targets to run; every one when none is named.
    pub(crate) targets: Vec<String>,
}

/// Reads `[--seconds N] [TARGET...]`.
pub(crate) fn parse_options(flags: &[String]) -> Result<Options> {
    let mut options = Options { seconds: DEFAULT_SECONDS, targets: Vec::new() };
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--seconds" => {
                let value = flags.next().context("`--seconds` needs a number of seconds")?;
                options.seconds = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=86_400).contains(s))
                    .with_context(|| format!("`--seconds {value}`: give a whole number from 1 to 86400"))?;
            }
            target if TARGETS.contains(&target) => options.targets.push(target.to_owned()),
            other => bail!("unknown argument `{other}` for `fuzz`; the targets are {}", TARGETS.join(", ")),
        }
    }
    if options.targets.is_empty() {
        options.targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(options)
}

/// A cargo command on the nightly toolchain, through rustup's `cargo`
/// (not `$CARGO`, which is the stable cargo that runs xtask).
fn nightly_cargo(ctx: &Workspace, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly").args(args).current_dir(&ctx.root).env_remove("CARGO").env_remove("RUSTUP_TOOLCHAIN");
    if ctx.ci {
        cmd.env("CARGO_TERM_COLOR", "never");
    }
    cmd
}

/// Runs the targets of `options`, each for its time; fails at the end if any crashed.
pub(crate) fn run(ctx: &Workspace, options: &Options) -> Result<()> {
    let usable = nightly_cargo(ctx, &["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        bail!(
            "`cargo +nightly fuzz` does not run here: install a nightly toolchain \
             (`rustup toolchain install nightly`) and cargo-fuzz (`cargo install cargo-fuzz`)"
        );
    }
    let status = nightly_cargo(ctx, &["fuzz", "build"]).status().context("could not start `cargo fuzz build`")?;
    if !status.success() {
        bail!("`cargo +nightly fuzz build` failed ({status})");
    }
    // Every target runs, whatever an earlier one found.
    let mut runner = Runner::new(options.targets.len(), true);
    for target in &options.targets {
        runner.step(target, || run_target(ctx, target, options.seconds))?;
    }
    runner.finish()
}

/// Runs one target for `seconds`; the log goes to `fuzz/target/logs/<target>.log`.
fn run_target(ctx: &Workspace, target: &str, seconds: u64) -> Result<()> {
    let fuzz = ctx.root.join("fuzz");
    let seeds = fuzz.join("corpus").join(target);
    let scratch = fuzz.join("target").join("corpus").join(target);
    let logs = fuzz.join("target").join("logs");
    let artifacts = fuzz.join("artifacts").join(target);
    for dir in [&scratch, &logs] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let before = files(&artifacts);
    let log_path = logs.join(format!("{target}.log"));
    let log = fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let started = Instant::now();
    let status = nightly_cargo(ctx, &["fuzz", "run", target])
        .arg(&scratch)
        .arg(&seeds)
        .args([
            "--".to_owned(),
            format!("-max_total_time={seconds}"),
            format!("-timeout={INPUT_TIMEOUT_SECS}"),
            format!("-rss_limit_mb={RSS_LIMIT_MB}"),
        ])
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("could not start `cargo fuzz run {target}`"))?;
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() {
        // libFuzzer ends with "Done N runs in S second(s)".
        let done = text.lines().rev().find(|l| l.starts_with("Done ")).unwrap_or("done");
        println!("xtask: fuzz {target}: {done}; no crash (log: {})", rel(&ctx.root, &log_path));
        return Ok(());
    }
    let found: Vec<PathBuf> = files(&artifacts).into_iter().filter(|f| !before.contains(f)).collect();
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    let took = Duration::from_secs(started.elapsed().as_secs());
    match found.first() {
        Some(input) => bail!(
            "`{target}` crashed after {took:?} ({status}) on {}: reproduce it with `cargo +nightly fuzz run {target} {}`, \
             fix it, and add the input to fuzz/corpus/{target}/ with a regression test in the owning crate (log: {})",
            rel(&ctx.root, input),
            rel(&ctx.root, input),
            rel(&ctx.root, &log_path)
        ),
        None => bail!("`{target}` failed after {took:?} ({status}) (log: {})", rel(&ctx.root, &log_path)),
    }
}

/// The files in `dir`, or none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir).map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_default_to_every_target_for_a_minute() {
        let all = parse_options(&[]).expect("no flags are fine");
        assert_eq!(all.seconds, 60);
        assert_eq!(all.targets, TARGETS);
        let some = parse_options(&args(&["--seconds", "5", "snapshot"])).expect("valid flags");
        assert_eq!(some, Options { seconds: 5, targets: vec!["snapshot".to_owned()] });
    }

    #[test]
    fn bad_options_are_named() {
        let err = |a: &[&str]| parse_options(&args(a)).expect_err("refused").to_string();
        assert!(err(&["--seconds", "0"]).contains("--seconds 0"));
        assert!(err(&["--seconds"]).contains("needs a number"));
        assert!(err(&["parser"]).contains("`parser`"));
    }

    #[test]
    fn every_target_has_a_harness_and_seeds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace");
        let manifest = fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
        for target in TARGETS {
            assert!(manifest.contains(&format!("name = \"{target}\"")), "fuzz/Cargo.toml lacks `{target}`");
            assert!(root.join(format!("fuzz/harness/{target}.rs")).is_file(), "no harness for `{target}`");
            assert!(!files(&root.join("fuzz/corpus").join(target)).is_empty(), "no seeds for `{target}`");
        }
    }
}
