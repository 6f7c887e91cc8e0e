//! The `model-monitor` binary, run as a user runs it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_model-monitor"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("model-monitor-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
    let out = bin().args(["demo", "--dir"]).arg(&dir).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("drift     metrics.accuracy by threshold"), "{stdout}");
    assert!(stdout.contains("drift     latency_ms by threshold: p99"), "{stdout}");
    assert!(stdout.contains("recsys (600 records)\n  healthy: no findings"), "{stdout}");
    let jobs = std::fs::read_to_string(dir.join("retrain-jobs.log")).unwrap();
    let mut models: Vec<&str> = jobs.lines().map(|l| l.split(' ').nth(1).unwrap()).collect();
    models.sort_unstable();
    assert_eq!(models, ["fraud", "search"]);
    assert!(dir.join("events.ndjson").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_replay_prints_one_event_a_line_with_its_seq() {
    let dir = scratch("json");
    std::fs::write(dir.join("monitor.toml"), CONFIG).unwrap();
    let input = "{\"model\":\"m\",\"ts\":\"2026-11-23T10:00:00Z\",\"latency_ms\":10}\n\
                 {\"model\":\"m\",\"ts\":\"2026-11-23T10:00:01Z\",\"latency_ms\":20}\n\
                 {\"model\":\"m\",\"ts\":\"2026-11-23T10:00:02Z\",\"latency_ms\":300}\n\
                 {\"model\":\"m\",\"ts\":\"2026-11-23T10:00:03Z\",\"latency_ms\":400}\n";
    let mut cmd = bin();
    cmd.args(["replay", "-", "--format", "json", "--config"]).arg(dir.join("monitor.toml"));
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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_lines_are_reported_skipped_and_counted_or_stop_a_strict_replay() {
    let dir = scratch("bad");
    std::fs::write(dir.join("monitor.toml"), CONFIG).unwrap();
    let log = dir.join("log.ndjson");
    std::fs::write(&log, "{\"model\":\"m\",\"latency_ms\":10}\n{\"model\":\"m\",\"latency_ms\":\n{\"latency_ms\":3}\n{\"model\":\"m\",\"latency_ms\":12}\n").unwrap();
    let out = bin().arg("replay").arg(&log).arg("--config").arg(dir.join("monitor.toml")).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped: line 2: malformed JSON"), "{stderr}");
    assert!(stderr.contains("skipped: line 3: field `model`: is required"), "{stderr}");
    assert!(stdout.contains("2 records in") && stdout.contains("(2 malformed lines skipped"), "{stdout}");

    let out =
        bin().arg("replay").arg(&log).arg("--strict").arg("--config").arg(dir.join("monitor.toml")).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("stopped at the first malformed line (--strict): line 2: malformed JSON"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_accepts_the_demo_and_names_the_key_of_a_mistake() {
    let dir = scratch("check");
    let good = dir.join("good.toml");
    std::fs::write(&good, include_str!("../../demo/monitor.toml")).unwrap();
    let out = bin().arg("check-config").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("threshold on metrics.accuracy (every model)"), "{stdout}");
    assert!(stdout.contains("policy: trigger any, cooldown 30m, min_samples 100"), "{stdout}");

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
    ] {
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, config).unwrap();
        let out = bin().arg("check-config").arg(&bad).output().unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{config}");
        assert!(stderr.contains(expected), "{config}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
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
    std::fs::write(dir.join("train.ndjson"), &train).unwrap();
    std::fs::write(
        dir.join("monitor.toml"),
        "[[monitors]]\nsignal = \"features.*\"\ndetector = { kind = \"ks\", reference_file = \"train.ndjson\", window = 20 }\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(dir.join("monitor.toml")).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Bonferroni, as in Alibi Detect: 0.05 shared by 4 features.
    assert!(stdout.contains("ks on features.*: alpha 0.05, correction bonferroni"), "{stdout}");
    for f in ["a", "b", "c", "d"] {
        assert!(stdout.contains(&format!("features.{f}: 0.012500 (4 tests")), "{stdout}");
    }
    // A reference file that does not exist is caught here, not at the first record.
    std::fs::remove_file(dir.join("train.ndjson")).unwrap();
    let out = bin().arg("check-config").arg(dir.join("monitor.toml")).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("monitors[0].detector.reference_file"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
