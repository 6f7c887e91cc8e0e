//! The promise that nothing the user or the input does takes the process
//! down or grows it without bound, checked as an attacker would: generated
//! configs at and past every bound, and hostile inputs (long lines, bad
//! bytes, name floods, special files), run through the real binary under an
//! address-space limit. A run that aborts, panics (exit 101) or dies of a
//! signal fails the suite; so does one that outgrows the limit, since its
//! allocations then fail and abort it.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, unreachable_pub)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The address space a run may use, in KiB: the memory budget of
/// docs/RELIABILITY.md for these configs (their state budgets are small),
/// plus the runtime's thread stacks and allocator arenas.
const ADDRESS_SPACE_KIB: u64 = 1024 * 1024;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_model-monitor")
}

/// The binary with `args`, under the address-space limit.
fn limited(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\"")).arg(bin()).args(args);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Fails on an abort, a panic or a signal; returns the output otherwise.
fn survived(what: &str, out: Output) -> Output {
    let stderr = text(&out.stderr);
    assert!(out.status.signal().is_none(), "{what}: killed by signal {:?}\n{stderr}", out.status.signal());
    assert_ne!(out.status.code(), Some(101), "{what}: panicked\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: a panic was reported\n{stderr}");
    assert!(!stderr.contains("memory allocation"), "{what}: an allocation failed\n{stderr}");
    out
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A small valid log: `n` records of one model.
fn log(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"model\": \"m\", \"latency_ms\": {}, \"features\": {{\"x\": {i}}}}}\n", i % 17))
        .collect::<String>()
        .into_bytes()
}

/// Every size and duration key, at its bound and one step past it.
fn bounded_keys() -> Vec<(&'static str, String, String)> {
    let detector = |table: &str| format!("[[monitors]]\nsignal = \"latency_ms\"\ndetector = {{ {table} }}\n");
    // Observers that nothing sets off in the replay: no monitor, no finding.
    let retrain = |key: &str| {
        format!("[[observers]]\nkind = \"retrain\"\n{key}\ndispatch = {{ kind = \"command\", program = \"sh\" }}\n")
    };
    let webhook = |key: &str| format!("[[observers]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n{key}\n");
    vec![
        ("engine.shards", "[engine]\nshards = 1024\n".into(), "[engine]\nshards = 1025\n".into()),
        (
            "engine.queue_capacity",
            "[engine]\nqueue_capacity = 1000000\n".into(),
            "[engine]\nqueue_capacity = 1000000000000\n".into(),
        ),
        (
            "engine.observer_queue",
            "[engine]\nobserver_queue = 1000000\n".into(),
            "[engine]\nobserver_queue = 1000001\n".into(),
        ),
        (
            "engine.shutdown_timeout",
            "[engine]\nshutdown_timeout = \"1h\"\n".into(),
            "[engine]\nshutdown_timeout = \"99999999d\"\n".into(),
        ),
        (
            "limits.max_model_versions",
            "[limits]\nmax_model_versions = 1000000\n".into(),
            "[limits]\nmax_model_versions = 1000000000000\n".into(),
        ),
        (
            "limits.max_signals_per_model",
            "[limits]\nmax_signals_per_model = 100000\n".into(),
            "[limits]\nmax_signals_per_model = 100001\n".into(),
        ),
        (
            "limits.pending_labels",
            "[limits]\npending_labels = 10000000\n".into(),
            "[limits]\npending_labels = 1000000000000\n".into(),
        ),
        (
            "limits.label_max_age",
            "[limits]\nlabel_max_age = \"30d\"\n".into(),
            "[limits]\nlabel_max_age = \"99999999d\"\n".into(),
        ),
        (
            "limits.max_future_skew",
            "[limits]\nmax_future_skew = \"3650d\"\n".into(),
            "[limits]\nmax_future_skew = \"99999999d\"\n".into(),
        ),
        (
            "limits.max_state_mib",
            "[limits]\nmax_state_mib = 1048576\n".into(),
            "[limits]\nmax_state_mib = 1048577\n".into(),
        ),
        ("policy.cooldown", "[policy]\ncooldown = \"365d\"\n".into(), "[policy]\ncooldown = \"99999999d\"\n".into()),
        (
            "policy.min_samples",
            "[policy]\nmin_samples = 1000000000\n".into(),
            "[policy]\nmin_samples = 1000000000000\n".into(),
        ),
        (
            "monitors[0].detector.window",
            detector("kind = \"threshold\", max = 1.0, window = 1000000"),
            detector("kind = \"threshold\", max = 1.0, window = 1000000000000"),
        ),
        (
            "monitors[0].detector.window",
            detector("kind = \"kswin\", window = 1000000"),
            detector("kind = \"kswin\", window = 1000000000000"),
        ),
        (
            "monitors[0].detector.window",
            detector("kind = \"mean_shift\", threshold = 1.0, window = 1000000"),
            detector("kind = \"mean_shift\", threshold = 1.0, window = 4611686018427387904"),
        ),
        (
            "monitors[0].detector.window",
            detector("kind = \"adaptive_threshold\", window = 1000000"),
            detector("kind = \"adaptive_threshold\", window = 1000000000000"),
        ),
        (
            "monitors[0].detector.max_buckets",
            detector("kind = \"adwin\", max_buckets = 1000"),
            detector("kind = \"adwin\", max_buckets = 1000000000000"),
        ),
        (
            "monitors[0].detector.bins",
            detector("kind = \"psi\", bins = 10000"),
            detector("kind = \"psi\", bins = 1000000000000"),
        ),
        (
            "monitors[0].detector.bins",
            detector("kind = \"chi_square\", bins = 10000"),
            detector("kind = \"chi_square\", bins = 1000000000000"),
        ),
        (
            "monitors[0].detector.bins",
            detector("kind = \"jensen_shannon\", bins = 10000"),
            detector("kind = \"jensen_shannon\", bins = 1000000000000"),
        ),
        (
            "monitors[0].detector.reference",
            detector("kind = \"ks\", reference = 1000000"),
            detector("kind = \"ks\", reference = 1000000000000"),
        ),
        ("observers[0].queue", retrain("queue = 100000"), retrain("queue = 1000000000000")),
        ("observers[0].max_concurrent", retrain("max_concurrent = 1024"), retrain("max_concurrent = 1000000000")),
        (
            "observers[0].shutdown_timeout",
            retrain("shutdown_timeout = \"1h\""),
            retrain("shutdown_timeout = \"99999999d\""),
        ),
        ("observers[0].queue", webhook("queue = 100000"), webhook("queue = 1000000000000")),
        (
            "observers[0].retry.max_attempts",
            webhook("retry = { max_attempts = 20 }"),
            webhook("retry = { max_attempts = 1000 }"),
        ),
        (
            "observers[0].retry.backoff",
            webhook("retry = { backoff = \"10m\" }"),
            webhook("retry = { backoff = \"99999999d\" }"),
        ),
        ("observers[0].timeout", webhook("timeout = \"5m\""), webhook("timeout = \"99999999d\"")),
    ]
}

#[test]
fn every_bound_holds_and_the_step_past_it_is_a_named_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let records = write(dir.path(), "log.ndjson", &log(300));
    for (key, at, past) in bounded_keys() {
        // At the bound: accepted, and a replay runs within the address space.
        let config = write(dir.path(), "at.toml", at.as_bytes());
        let out = survived(key, limited(&["check-config", config.to_str().unwrap()]).output().unwrap());
        assert!(out.status.success(), "{key} at its bound refused:\n{at}\n{}", text(&out.stderr));
        let out = survived(
            key,
            limited(&["replay", records.to_str().unwrap(), "--config", config.to_str().unwrap(), "--format", "json"])
                .output()
                .unwrap(),
        );
        assert!(out.status.success(), "{key} at its bound: replay failed:\n{at}\n{}", text(&out.stderr));
        // Past it: a config error naming the key, from check-config and replay alike.
        let config = write(dir.path(), "past.toml", past.as_bytes());
        for args in [
            vec!["check-config", config.to_str().unwrap()],
            vec!["replay", records.to_str().unwrap(), "--config", config.to_str().unwrap()],
        ] {
            let out = survived(key, limited(&args).output().unwrap());
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{key} past its bound accepted by {}:\n{past}\n{stderr}", args[0]);
            assert!(stderr.contains(key), "{key} past its bound: the error does not name it:\n{stderr}");
        }
    }
}

#[test]
fn hostile_lines_are_rejected_counted_and_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(b"\xEF\xBB\xBF{\"model\": \"m\", \"latency_ms\": 1}\n"); // a BOM
    input.extend_from_slice(&vec![b'x'; 3 << 20]); // a 3 MiB line
    input.push(b'\n');
    input.extend_from_slice(b"{\"model\": \"m\xff\", \"latency_ms\": 1}\n"); // a bad byte
    input.extend_from_slice(b"{\"model\": \"a\", \"model\": \"b\", \"latency_ms\": 1}\n"); // a duplicate key
    input.extend_from_slice(format!("{{\"model\": \"{}\", \"latency_ms\": 1}}\n", "n".repeat(100_000)).as_bytes());
    input.extend_from_slice(b"{\"model\": \"m\", \"latency_ms\": 1e400}\n");
    input.extend_from_slice(format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000)).as_bytes());
    input.extend_from_slice(&log(10));
    let path = write(dir.path(), "hostile.ndjson", &input);
    let out = survived("hostile lines", limited(&["replay", path.to_str().unwrap()]).output().unwrap());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // Eleven good records (the BOM line and ten), six bad lines counted.
    assert!(stdout.contains(": 11 records in"), "{stdout}");
    assert!(stdout.contains("(6 malformed lines skipped, 0 records rejected)"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 2: line is 3145728 bytes, longer than the limit of 1048576 bytes"), "{stderr}");
    assert!(stderr.contains("line 3: line is not valid UTF-8"), "{stderr}");
    assert!(stderr.contains("line 4: field `model`: appears twice"), "{stderr}");
    assert!(stderr.contains("line 5: field `model`: is 100000 bytes, longer than the limit of 256"), "{stderr}");
    assert!(stderr.len() < 10_000, "a long name is not echoed whole: {} bytes of stderr", stderr.len());
}

#[test]
fn a_flood_of_names_stays_within_memory_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "c.toml", b"[[monitors]]\nsignal = \"features.*\"\ndetector = { kind = \"ks\", reference = 100, window = 100 }\n[limits]\nmax_model_versions = 1000\nmax_signals_per_model = 50\n");
    // 100,000 models and, for one model, 100,000 feature names.
    let mut input = String::new();
    for i in 0..100_000 {
        input.push_str(&format!("{{\"model\": \"model-{i}\", \"id\": \"{i}\", \"features\": {{\"f\": {i}}}}}\n"));
    }
    for i in 0..100_000 {
        input.push_str(&format!("{{\"model\": \"wide\", \"features\": {{\"feature-{i}\": 1}}}}\n"));
    }
    let path = write(dir.path(), "flood.ndjson", input.as_bytes());
    let out = survived(
        "name flood",
        limited(&["replay", path.to_str().unwrap(), "--config", config.to_str().unwrap()]).output().unwrap(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains(": 200000 records in"), "{}", &stdout[..stdout.len().min(500)]);
    assert!(
        stdout.contains("Signals: 99950 values ignored past limits"),
        "{}",
        &stdout[stdout.len().saturating_sub(800)..]
    );
    assert!(stdout.len() < 200_000, "the report is bounded: {} bytes", stdout.len());
}

#[test]
fn special_files_are_refused_or_read_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    // As the config: refused before reading.
    let out = survived("config /dev/zero", limited(&["check-config", "/dev/zero"]).output().unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not a regular file"), "{}", text(&out.stderr));
    // As a reference file, a device and a FIFO: refused at start, no hang.
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for reference in ["/dev/zero", fifo.to_str().unwrap()] {
        let config = format!(
            "[[monitors]]\nsignal = \"features.*\"\ndetector = {{ kind = \"ks\", reference_file = \"{reference}\" }}\n"
        );
        let config = write(dir.path(), "ref.toml", config.as_bytes());
        let out = survived(reference, limited(&["check-config", config.to_str().unwrap()]).output().unwrap());
        assert_eq!(out.status.code(), Some(1), "{reference}");
        assert!(text(&out.stderr).contains("is not a regular file"), "{}", text(&out.stderr));
    }
    // As the input: an endless line is skipped in bounded memory until stopped.
    let mut child = limited(&["replay", "/dev/zero"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    assert!(still_running, "replay of /dev/zero ended by itself: {:?}\n{}", out.status, text(&out.stderr));
    assert!(out.status.signal().is_none(), "{:?}", out.status);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
}

#[test]
fn stdin_that_never_ends_a_line_does_not_grow() {
    // 64 MiB without a newline through a pipe: skipped as one long line.
    let mut child =
        limited(&["replay"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..64 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.write_all(b"\n{\"model\": \"m\", \"latency_ms\": 3}\n").unwrap();
    drop(stdin);
    let out = survived("endless line", child.wait_with_output().unwrap());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains(": 1 records in") && stdout.contains("(1 malformed lines skipped"), "{stdout}");
}
