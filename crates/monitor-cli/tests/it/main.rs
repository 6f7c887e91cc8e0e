//! The `model-monitor` binary, run as a user runs it.
#![allow(clippy::unwrap_used)]

mod browser;
mod docs;
mod eval;
mod parquet;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_model-monitor"))
}

/// A fresh directory, removed when the test ends.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("model-monitor-cli-{name}-")).tempdir().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

const CONFIG: &str = r#"
[[monitors]]
signal = "latency_ms"
detector = { kind = "threshold", statistic = "mean", window = 2, max = 100.0 }
[policy]
min_samples = 2
"#;

#[test]
fn demo_runs_the_whole_loop_with_nothing_installed() {
    let dir = scratch("demo");
    let out = bin().args(["demo", "--dir"]).arg(dir.path()).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("drift     metrics.accuracy by threshold"), "{stdout}");
    assert!(stdout.contains("drift     latency_ms by threshold: p99"), "{stdout}");
    assert!(stdout.contains("recsys (600 records read)\n  healthy: no findings"), "{stdout}");
    let jobs = std::fs::read_to_string(dir.path().join("retrain-jobs.log")).unwrap();
    let mut models: Vec<&str> = jobs.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    models.sort_unstable();
    assert_eq!(models, ["fraud", "search"]);
    assert!(dir.path().join("events.ndjson").exists());
}

#[test]
fn json_replay_prints_one_event_a_line_with_its_seq() {
    let dir = scratch("json");
    std::fs::write(dir.path().join("monitor.toml"), CONFIG).unwrap();
    let input = "{\"model\":\"m\",\"ts\":\"2026-11-23T10:00:00Z\",\"latency_ms\":10}\n\
                 {\"model\":\"m\",\"ts\":\"2026-11-23T10:00:01Z\",\"latency_ms\":20}\n\
                 {\"model\":\"m\",\"ts\":\"2026-11-23T10:00:02Z\",\"latency_ms\":300}\n\
                 {\"model\":\"m\",\"ts\":\"2026-11-23T10:00:03Z\",\"latency_ms\":400}\n";
    let mut cmd = bin();
    cmd.args(["replay", "-", "--format", "json", "--config"]).arg(dir.path().join("monitor.toml"));
    let out = run_with_stdin(cmd, input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let summary: Vec<(String, u64)> =
        events.iter().map(|e| (e["type"].as_str().unwrap().to_owned(), e["seq"].as_u64().unwrap())).collect();
    assert_eq!(summary, [("finding".to_owned(), 3), ("retrain_requested".to_owned(), 3)]);
    let finding = &events[0];
    assert_eq!((finding["model"].as_str(), finding["version"].as_str()), (Some("m"), Some("default")));
    assert_eq!(finding["ts"], "2026-11-23T10:00:03Z");
    assert_eq!((finding["statistic"].as_f64(), finding["threshold"].as_f64()), (Some(350.0), Some(100.0)));
    assert_eq!(finding["severity"], "drift");
}

#[test]
fn malformed_lines_are_reported_skipped_and_counted_or_stop_a_strict_replay() {
    let dir = scratch("bad");
    std::fs::write(dir.path().join("monitor.toml"), CONFIG).unwrap();
    let log = dir.path().join("log.ndjson");
    std::fs::write(&log, "{\"model\":\"m\",\"latency_ms\":10}\n{\"model\":\"m\",\"latency_ms\":\n{\"latency_ms\":3}\n{\"model\":\"m\",\"latency_ms\":12}\n").unwrap();
    let out = bin().arg("replay").arg(&log).arg("--config").arg(dir.path().join("monitor.toml")).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped: line 2: malformed JSON"), "{stderr}");
    assert!(stderr.contains("skipped: line 3: field `model`: is required"), "{stderr}");
    assert!(stdout.contains("2 records in") && stdout.contains("(2 malformed lines skipped"), "{stdout}");

    let out = bin()
        .arg("replay")
        .arg(&log)
        .arg("--strict")
        .arg("--config")
        .arg(dir.path().join("monitor.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stopped at the first malformed line (--strict): line 2: malformed JSON"));
}

#[test]
fn check_config_accepts_the_demo_and_names_the_key_of_a_mistake() {
    let dir = scratch("check");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, include_str!("../../demo/monitor.toml")).unwrap();
    let out = bin().arg("check-config").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("threshold on metrics.accuracy (every model)"), "{stdout}");
    assert!(stdout.contains("policy: trigger any, cooldown 30m, min_samples 100"), "{stdout}");
    assert!(stdout.contains("server (model-monitor serve): listen 127.0.0.1:9400, no token"), "{stdout}");

    for (config, expected) in [
        (
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"magic\" }\n",
            "config error at `monitors[0].detector.kind`: unknown detector kind `magic`; known kinds: adaptive_threshold,",
        ),
        (
            "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", max = 1.0, windw = 5 }\n",
            "config error at `monitors[0].detector.windw`: unknown field `windw`",
        ),
        ("[polcy]\ntrigger = \"any\"\n", "config error at `polcy`: unknown field `polcy`"),
        ("[[observers]]\nkind = \"webhook\"\nurl = \"not a url\"\n", "observers[0]"),
        ("[[observers]]\nkind = \"pigeon\"\n", "unknown observer kind `pigeon`; known kinds:"),
        ("[server]\nmax_body_bytes = 0\n", "config error at `server.max_body_bytes`: must be between 1 and"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, config).unwrap();
        let out = bin().arg("check-config").arg(&bad).output().unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{config}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = bin().args(["replay", "/nonexistent/log.ndjson"]).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot open /nonexistent/log.ndjson"));
}

#[test]
fn check_config_prints_the_alpha_of_each_feature() {
    let dir = scratch("alpha");
    let train: String = (0..50)
        .map(|i| format!("{{\"model\":\"m\",\"features\":{{\"a\":{i},\"b\":{i},\"c\":{i},\"d\":{i}}}}}\n"))
        .collect();
    std::fs::write(dir.path().join("train.ndjson"), &train).unwrap();
    std::fs::write(
        dir.path().join("monitor.toml"),
        "[[monitors]]\nsignal = \"features.*\"\ndetector = { kind = \"ks\", reference_file = \"train.ndjson\", window = 20 }\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(dir.path().join("monitor.toml")).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Bonferroni, as in Alibi Detect: 0.05 shared by 4 features.
    assert!(stdout.contains("ks on features.*: alpha 0.05, correction bonferroni"), "{stdout}");
    for f in ["a", "b", "c", "d"] {
        assert!(stdout.contains(&format!("features.{f}: 0.012500 (4 tests")), "{stdout}");
    }
    // A reference file that does not exist is caught here, not at the first record.
    std::fs::remove_file(dir.path().join("train.ndjson")).unwrap();
    let out = bin().arg("check-config").arg(dir.path().join("monitor.toml")).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("monitors[0].detector.reference_file"), "{}", text(&out.stderr));
}

/// The default monitors report data-quality findings like any other: a
/// feature that goes missing in a fifth of the records, and one that turns
/// from numbers to strings.
#[test]
fn replay_defaults_report_data_quality_findings() {
    let mut log = String::new();
    for i in 0..13_000u32 {
        let ts = format!("2026-11-23T{:02}:{:02}:{:02}Z", i / 3600, (i / 60) % 60, i % 60);
        let amount = if i >= 12_000 && i % 5 == 0 { "null".to_owned() } else { format!("{}", i % 97) };
        let code = if i >= 12_000 && i % 2 == 0 { format!("\"{}\"", i % 7) } else { format!("{}", i % 7) };
        log += &format!(
            "{{\"model\":\"m\",\"ts\":\"{ts}\",\"latency_ms\":{},\"features\":{{\"amount\":{amount},\"code\":{code}}}}}\n",
            10 + i % 13
        );
    }
    let out = run_with_stdin(
        {
            let mut cmd = bin();
            cmd.arg("replay");
            cmd
        },
        &log,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("line  13000  drift     quality.missing.amount by missing: 20%"), "{stdout}");
    assert!(stdout.contains("drift     features.code by type_change: 50%"), "{stdout}");
}

/// One family per model version: a KS on every feature and a missing-value
/// test of each, six tests, each held to alpha / 6, with its effect size.
#[test]
fn check_config_shares_alpha_across_monitors_and_prints_min_effect() {
    let dir = scratch("family");
    std::fs::write(
        dir.path().join("records.ndjson"),
        "{\"model\":\"m\",\"features\":{\"a\":1,\"b\":2,\"c\":\"x\"}}\n{\"model\":\"m\",\"latency_ms\":3}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("monitor.toml"),
        "[[monitors]]\nsignal = \"features.*\"\ndetector = { kind = \"ks\", min_effect = 0.15 }\n\n\
         [[monitors]]\nsignal = \"quality.missing.*\"\nfire_after = 2\ndetector = { kind = \"missing\" }\n",
    )
    .unwrap();
    let out = bin()
        .arg("check-config")
        .arg(dir.path().join("monitor.toml"))
        .arg("--records")
        .arg(dir.path().join("records.ndjson"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("[0] ks on features.*: alpha 0.05, correction bonferroni, min_effect 0.15"), "{stdout}");
    assert!(stdout.contains("fire_after 2, resolve_after 1"), "{stdout}");
    // KS on a and b (c is categorical), and the missing values of a, b, c.
    for line in [
        "[0] features.a: 0.010000 (5 tests), min_effect 0.15",
        "[0] features.b: 0.010000 (5 tests), min_effect 0.15",
        "[1] quality.missing.c: 0.010000 (5 tests), min_effect 0.2",
    ] {
        assert!(stdout.contains(line), "{line} not in {stdout}");
    }
    assert!(!stdout.contains("[0] features.c"), "{stdout}");
}

/// `tail -f log | model-monitor replay --format json`: the finding of a
/// line is printed while the input is still open, before any more arrives.
#[test]
fn live_stdin_prints_a_finding_before_the_input_ends() {
    use std::io::{BufRead, BufReader};
    let dir = scratch("live");
    let config =
        "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", window = 1, max = 100.0 }\n";
    std::fs::write(dir.path().join("monitor.toml"), config).unwrap();
    let mut child = bin()
        .args(["replay", "--format", "json", "--config"])
        .arg(dir.path().join("monitor.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    stdin.write_all(b"{\"model\":\"m\",\"latency_ms\":10}\n{\"model\":\"m\",\"latency_ms\":500}\n").unwrap();
    stdin.flush().unwrap();
    // stdin stays open: the finding must come out now, not at the end.
    // The bound only keeps a broken build from hanging the suite.
    let first = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("no finding while the input was open");
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!((event["type"].as_str(), event["seq"].as_u64()), (Some("finding"), Some(1)), "{first}");
    stdin.write_all(b"{\"model\":\"m\",\"latency_ms\":5}\n").unwrap();
    let second = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("no recovery while the input was open");
    assert!(second.contains("\"type\":\"recovered\""), "{second}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

fn demo_files(name: &str) -> tempfile::TempDir {
    let dir = scratch(name);
    let out = bin().args(["demo", "--format", "json", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

/// `replay --format json | head -1`: the closed pipe ends the run quietly.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let dir = demo_files("pipe");
    for format in ["json", "text"] {
        let mut child = bin()
            .args(["replay", "--format", format, "--config"])
            .arg(dir.path().join("monitor.toml"))
            .arg(dir.path().join("records.ndjson"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close our end of the pipe before the child writes.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{format}: {:?}", out.status);
        assert_eq!(text(&out.stderr), "", "{format}: nothing on stderr");
    }
}

/// `/dev/full`: the write error is reported and the exit is non-zero.
#[test]
fn a_full_disk_on_stdout_is_an_error() {
    let dir = demo_files("full");
    for format in ["json", "text"] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let out = bin()
            .args(["replay", "--format", format, "--config"])
            .arg(dir.path().join("monitor.toml"))
            .arg(dir.path().join("records.ndjson"))
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{format}: one line, not a flood: {stderr}");
        assert!(stderr.starts_with("error: writing to standard output: No space left on device"), "{stderr}");
    }
}

/// SIGINT: stop reading, process what was read, print the report, exit 130.
#[test]
fn sigint_drains_reports_and_exits_130() {
    use std::io::{BufRead, BufReader};
    let dir = scratch("sigint");
    let config =
        "[[monitors]]\nsignal = \"latency_ms\"\ndetector = { kind = \"threshold\", window = 1, max = 100.0 }\n";
    std::fs::write(dir.path().join("monitor.toml"), config).unwrap();
    let mut child = bin()
        .args(["replay", "--format", "json", "--config"])
        .arg(dir.path().join("monitor.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"model\":\"m\",\"latency_ms\":500}\n").unwrap();
    stdin.flush().unwrap();
    // Once the first event is out, the engine is running: interrupt it.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"type\":\"finding\""), "{first}");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(130));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("interrupted by SIGINT: stopped reading after line 1; everything read was processed"),
        "{stderr}"
    );
}

#[test]
fn the_demo_directory_is_fresh_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let out = bin().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap();
    let dir = PathBuf::from(first.rsplit(" in ").next().unwrap());
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("model-monitor-demo-"), "{first}");
    let suffix = &name["model-monitor-demo-".len()..];
    assert!(!suffix.chars().all(|c| c.is_ascii_digit()), "a random name, not a process id: {name}");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", dir.display());
    assert!(std::fs::symlink_metadata(&dir).unwrap().is_dir());
}

/// `check-config --records`: a bad byte or a bad line is skipped and
/// counted; a numeric test on a categorical feature is a warning, and the
/// feature leaves the Bonferroni family.
#[test]
fn check_config_samples_records_safely_and_warns_of_unusable_monitors() {
    let dir = scratch("check");
    let config = "[[monitors]]\nsignal = \"features.*\"\ndetector = { kind = \"ks\", alpha = 0.05 }\n";
    std::fs::write(dir.path().join("monitor.toml"), config).unwrap();
    let mut records = Vec::new();
    records
        .extend_from_slice(b"{\"model\": \"m\", \"features\": {\"amount\": 1.5, \"country\": \"DE\", \"age\": 30}}\n");
    records.extend_from_slice(b"{\"model\": \"m\", \"features\": {\"amount\": \"\xff\"}}\n");
    records.extend_from_slice(b"not json\n");
    records
        .extend_from_slice(b"{\"model\": \"m\", \"features\": {\"amount\": 2.5, \"country\": \"FR\", \"age\": 31}}\n");
    std::fs::write(dir.path().join("records.ndjson"), records).unwrap();
    let out = bin()
        .arg("check-config")
        .arg(dir.path().join("monitor.toml"))
        .arg("--records")
        .arg(dir.path().join("records.ndjson"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("records: 2 lines of the sample were not records and were skipped"), "{stdout}");
    assert!(stdout.contains("warning: [0] ks takes numbers, but features.country of m is categorical"), "{stdout}");
    // Two numeric features share alpha 0.05: 0.025 each, not 0.05 / 3.
    assert!(stdout.contains("[0] features.amount: 0.025000 (2 tests), min_effect 0.1"), "{stdout}");
    assert!(!stdout.contains("features.country: 0."), "{stdout}");
}

/// `check-config … | head -1` ends quietly.
#[test]
fn check_config_into_a_closed_pipe_ends_quietly() {
    let dir = demo_files("check-pipe");
    let mut child = bin()
        .arg("check-config")
        .arg(dir.path().join("monitor.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(text(&out.stderr), "");
}

mod serve;

mod crash;

#[test]
fn jobs_lists_and_shows_the_journal_of_a_stopped_daemon() {
    let dir = scratch("jobs");
    let state = dir.path().join("state");
    let config = dir.path().join("monitor.toml");
    std::fs::write(&config, format!("[engine]\nstate_dir = {:?}\n{CONFIG}", state.display().to_string())).unwrap();
    let mut log = String::new();
    for i in 0..6 {
        log.push_str(&format!("{{\"model\": \"search\", \"latency_ms\": {}}}\n", if i < 3 { 10 } else { 500 }));
    }
    let mut replay = bin();
    replay.args(["replay", "--shards", "1", "--format", "json", "--config"]).arg(&config);
    let out = run_with_stdin(replay, &log);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requested: serde_json::Value = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "retrain_requested")
        .unwrap();
    let job_id = requested["job_id"].as_str().unwrap();

    let out = bin().args(["jobs", "list", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(listing.starts_with("ID") && listing.contains(job_id) && listing.contains("requested"), "{listing}");

    let out = bin().args(["jobs", "show", job_id, "--format", "json", "--state-dir"]).arg(&state).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (job["id"].as_str(), job["model"].as_str(), job["attempts"].as_u64()),
        (Some(job_id), Some("search"), Some(0))
    );
    assert!(!job["reasons"].as_array().unwrap().is_empty());

    let out = bin().args(["jobs", "cancel", job_id, "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("cancelled"), "{}", text(&out.stdout));
    let out = bin().args(["jobs", "list", "--status", "cancelled", "--state-dir"]).arg(&state).output().unwrap();
    assert!(text(&out.stdout).contains(job_id), "{}", text(&out.stdout));
    let out = bin().args(["jobs", "cancel", job_id, "--state-dir"]).arg(&state).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is cancelled"), "{}", text(&out.stderr));

    let out = bin().args(["jobs", "show", "nope", "--state-dir"]).arg(&state).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no job nope"), "{}", text(&out.stderr));
    let out = bin().args(["jobs", "list", "--state-dir"]).arg(dir.path().join("elsewhere")).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no journal at"), "{}", text(&out.stderr));
}

/// The events of a `--format json` replay, without their fresh ids.
fn events_of(stdout: &[u8]) -> Vec<serde_json::Value> {
    text(stdout)
        .lines()
        .map(|l| {
            let mut e: serde_json::Value = serde_json::from_str(l).unwrap();
            e.as_object_mut().unwrap().remove("id");
            e.as_object_mut().unwrap().remove("job_id");
            e
        })
        .collect()
}

#[test]
fn replay_with_a_journal_resumes_a_file_where_its_checkpoint_stands() {
    let dir = scratch("resume");
    let config =
        |state: &str| format!("{CONFIG}\n[engine]\nshards = 2\nstate_dir = \"{}\"\n", dir.path().join(state).display());
    std::fs::write(dir.path().join("whole.toml"), config("whole")).unwrap();
    std::fs::write(dir.path().join("parts.toml"), config("parts")).unwrap();
    // Two models whose latency crosses the threshold now and then.
    let lines: Vec<String> = (0..600)
        .map(|i| {
            let model = ["a", "b"][i % 2];
            let latency = if (i / 50) % 3 == 2 { 300 } else { 20 };
            format!(
                "{{\"model\":\"{model}\",\"ts\":\"2026-11-23T10:{:02}:{:02}Z\",\"latency_ms\":{latency}}}\n",
                i / 60,
                i % 60
            )
        })
        .collect();
    let replay = |config: &str, file: &Path| {
        let out = bin()
            .args(["replay", "--format", "json", "--config"])
            .arg(dir.path().join(config))
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        (events_of(&out.stdout), text(&out.stderr))
    };
    let whole = dir.path().join("whole.ndjson");
    std::fs::write(&whole, lines.concat()).unwrap();
    let (all, _) = replay("whole.toml", &whole);
    assert!(all.len() >= 6, "{all:?}");

    // The same log in two parts: the file grows between two replays.
    let log = dir.path().join("log.ndjson");
    std::fs::write(&log, lines[..333].concat()).unwrap();
    let (first, _) = replay("parts.toml", &log);
    std::fs::write(&log, lines.concat()).unwrap();
    let (second, stderr) = replay("parts.toml", &log);
    assert!(stderr.contains("resuming") && stderr.contains("after record 333"), "{stderr}");
    let mut joined = first;
    joined.extend(second);
    let key = |e: &serde_json::Value| {
        (e["seq"].as_u64(), e["model"].as_str().map(str::to_owned), e["type"].as_str().map(str::to_owned))
    };
    let (mut want, mut got) = (all.clone(), joined);
    want.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, want, "the two parts give the events of the whole, at the same seq");

    // Once more: everything is in the checkpoint, nothing is processed twice.
    let (again, stderr) = replay("parts.toml", &log);
    assert!(again.is_empty(), "{again:?}");
    assert!(stderr.contains("after record 600"), "{stderr}");
}

#[test]
fn replay_killed_after_a_checkpoint_resumes_and_loses_nothing() {
    use model_monitor::runtime::journal::Journal;
    let dir = scratch("resume-kill");
    let state = dir.path().join("state");
    let config =
        format!("{CONFIG}\n[engine]\nshards = 2\nstate_dir = \"{}\"\ncheckpoint_interval = \"1s\"\n", state.display());
    std::fs::write(dir.path().join("monitor.toml"), &config).unwrap();
    std::fs::write(
        dir.path().join("whole.toml"),
        config.replace(&state.display().to_string(), &dir.path().join("whole").display().to_string()),
    )
    .unwrap();
    // Long enough that the first checkpoint comes before the end.
    let mut log = String::new();
    for i in 0..1_500_000u64 {
        let model = ["a", "b", "c"][(i % 3) as usize];
        let latency = if (i / 997) % 5 == 4 { 300 } else { 20 };
        log.push_str(&format!("{{\"model\":\"{model}\",\"ts\":\"2026-11-23T10:00:00Z\",\"latency_ms\":{latency}}}\n"));
    }
    let file = dir.path().join("log.ndjson");
    std::fs::write(&file, log).unwrap();
    let run = |config: &str| {
        let mut cmd = bin();
        cmd.args(["replay", "--format", "json", "--config"]).arg(dir.path().join(config)).arg(&file);
        cmd
    };
    let whole = run("whole.toml").output().unwrap();
    assert!(whole.status.success());
    let want = events_of(&whole.stdout);
    assert!(want.len() > 100, "{}", want.len());

    let out = std::fs::File::create(dir.path().join("first.ndjson")).unwrap();
    let mut child = run("monitor.toml").stdout(out).stderr(Stdio::null()).spawn().unwrap();
    let mut checkpointed = false;
    for _ in 0..600 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let latest = Journal::open_existing(&state).ok().and_then(|j| j.latest_checkpoint().ok().flatten());
        // A periodic checkpoint, taken while the replay still runs.
        if latest.is_some_and(|c| c.positions.iter().any(|p| p.offset > 0)) && child.try_wait().unwrap().is_none() {
            checkpointed = true;
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(checkpointed, "no checkpoint with a position before the end");
    assert!(!status.success(), "killed before the end of the file: {status:?}");
    let at = Journal::open_existing(&state).unwrap().latest_checkpoint().unwrap().unwrap().positions[0].offset;
    assert!(at < 1_500_000, "{at}");
    let first = events_of(&std::fs::read(dir.path().join("first.ndjson")).unwrap());

    let second = run("monitor.toml").output().unwrap();
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stderr).contains("resuming"), "{}", text(&second.stderr));
    // At least once: events after the checkpoint may come twice, none is
    // missing, and none comes that an uninterrupted run does not give.
    let key = |e: &serde_json::Value| e.to_string();
    let mut got: Vec<String> = first.iter().chain(&events_of(&second.stdout)).map(key).collect();
    got.sort();
    got.dedup();
    let mut want: Vec<String> = want.iter().map(key).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn another_file_replayed_between_does_not_move_a_files_resume_point() {
    let dir = scratch("resume-other");
    let config = format!("{CONFIG}\n[engine]\nshards = 2\nstate_dir = \"{}\"\n", dir.path().join("state").display());
    std::fs::write(dir.path().join("monitor.toml"), config).unwrap();
    let line = |i: usize| format!("{{\"model\":\"m{}\",\"ts\":\"2026-11-23T10:00:00Z\",\"latency_ms\":20}}\n", i % 4);
    let long: String = (0..1000).map(line).collect();
    std::fs::write(dir.path().join("long.ndjson"), long).unwrap();
    let short = dir.path().join("short.ndjson");
    std::fs::write(&short, (0..100).map(line).collect::<String>()).unwrap();
    let replay = |file: &str| {
        let out = bin()
            .args(["replay", "--config"])
            .arg(dir.path().join("monitor.toml"))
            .arg(dir.path().join(file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    replay("long.ndjson");
    let (out, _) = replay("short.ndjson");
    assert!(out.contains("m0 (25 records read)"), "{out}");
    // The short file grows: its new lines are read, none of them skipped
    // for what the long file's run had reached.
    std::fs::write(&short, (0..300).map(line).collect::<String>()).unwrap();
    let (out, stderr) = replay("short.ndjson");
    assert!(stderr.contains("after record 100"), "{stderr}");
    // 200 new lines, 50 of each model.
    assert!(out.contains("m0 (50 records read)") && out.contains("m3 (50 records read)"), "{out}");
    assert!(out.contains("short.ndjson: 200 records"), "{out}");
}
