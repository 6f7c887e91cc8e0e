//! The evaluation suite: every detector, with its published defaults, over
//! generated streams with known change points. Prints false alarms per
//! 100 000 stable samples, missed changes and mean detection delay.
//!
//! ```text
//! cargo run --release -p monitor-strategies --example eval
//! ```
//!
//! Every stream comes from `monitor_strategies::synth` with fixed seeds, so
//! the tables are reproducible to the sample. A change counts as detected
//! when the first drift alarm at or after the change point comes within the
//! rest of the stream (3000 samples); alarms before it, and on the no-change
//! streams, are false alarms. Condition detectors (windows against a
//! reference) count an alarm when their verdict turns to drift; change
//! detectors count every drift they flag.

#![allow(clippy::print_stdout, missing_docs)]

use std::f64::consts::PI;

use monitor_core::detector::{AlarmMode, DriftStatus, Sample};
use monitor_core::detector_spec::DetectorSpec;
use monitor_core::registry::BuildContext;
use monitor_core::signal::SignalValue;
use monitor_strategies::synth::{Segment, SplitMix64, bernoulli_stream, gaussian_stream};

/// Streams per change scenario; each has one change point.
const REPS: u64 = 20;
/// Stable samples before the change.
const BEFORE: usize = 5000;
/// Samples after the change: the detection horizon.
const AFTER: usize = 3000;
/// Length of each no-change stream.
const QUIET: usize = 25_000;
/// No-change streams per no-change scenario.
const QUIET_REPS: u64 = 8;

struct Scenario {
    name: &'static str,
    what: &'static str,
    binary: bool,
    change: bool,
    make: fn(u64) -> Vec<f64>,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "abrupt",
            what: "N(0,1) then N(1,1)",
            binary: false,
            change: true,
            make: |s| gaussian_stream(s, &[Segment::new(BEFORE, 0.0, 1.0), Segment::new(AFTER, 1.0, 1.0)]),
        },
        Scenario {
            name: "small",
            what: "N(0,1) then N(0.3,1)",
            binary: false,
            change: true,
            make: |s| gaussian_stream(s, &[Segment::new(BEFORE, 0.0, 1.0), Segment::new(AFTER, 0.3, 1.0)]),
        },
        Scenario {
            name: "variance",
            what: "N(0,1) then N(0,2)",
            binary: false,
            change: true,
            make: |s| gaussian_stream(s, &[Segment::new(BEFORE, 0.0, 1.0), Segment::new(AFTER, 0.0, 2.0)]),
        },
        Scenario {
            name: "gradual",
            what: "N(0,1), mean ramps to 1 over 1000 samples",
            binary: false,
            change: true,
            make: |s| {
                let mut xs = gaussian_stream(s, &[Segment::new(BEFORE + AFTER, 0.0, 1.0)]);
                for (t, x) in xs.iter_mut().enumerate().skip(BEFORE) {
                    *x += ((t - BEFORE) as f64 / 1000.0).min(1.0);
                }
                xs
            },
        },
        Scenario {
            name: "error_rate",
            what: "Bernoulli(0.1) then Bernoulli(0.3)",
            binary: true,
            change: true,
            make: |s| bernoulli_stream(s, &[Segment::bernoulli(BEFORE, 0.1), Segment::bernoulli(AFTER, 0.3)]),
        },
        Scenario {
            name: "no_change",
            what: "N(0,1)",
            binary: false,
            change: false,
            make: |s| gaussian_stream(s, &[Segment::new(QUIET, 0.0, 1.0)]),
        },
        Scenario {
            name: "seasonal",
            what: "sin(2πt/200) + N(0,0.5): a daily cycle, no change",
            binary: false,
            change: false,
            make: |s| {
                let mut rng = SplitMix64::new(s);
                (0..QUIET).map(|t| (2.0 * PI * t as f64 / 200.0).sin() + 0.5 * rng.normal()).collect()
            },
        },
    ]
}

/// The detectors, at their defaults; `threshold` and `mean_shift` have no
/// default bound, so they get one suited to standardised data.
fn detectors() -> Vec<(&'static str, &'static str, bool)> {
    vec![
        ("threshold", "kind = \"threshold\"\nwindow = 100\nmin = -0.5\nmax = 0.5", false),
        ("mean_shift", "kind = \"mean_shift\"\nreference = 1000\nwindow = 100\nthreshold = 0.5", false),
        ("adaptive_threshold", "kind = \"adaptive_threshold\"", false),
        ("adwin", "kind = \"adwin\"", false),
        ("page_hinkley", "kind = \"page_hinkley\"", false),
        ("ddm", "kind = \"ddm\"", true),
        ("eddm", "kind = \"eddm\"", true),
        ("hddm_a", "kind = \"hddm_a\"", true),
        ("hddm_w", "kind = \"hddm_w\"", true),
        ("kswin", "kind = \"kswin\"", false),
        ("cusum", "kind = \"cusum\"", false),
        ("ewma", "kind = \"ewma\"", false),
        ("ks", "kind = \"ks\"", false),
        ("psi", "kind = \"psi\"", false),
        ("chi_square", "kind = \"chi_square\"", false),
        ("jensen_shannon", "kind = \"jensen_shannon\"", false),
        ("wasserstein", "kind = \"wasserstein\"", false),
    ]
}

/// Indices where a detector raises a drift alarm (a change detector's
/// drift, a condition detector's turn to drift), and every index with a
/// drift verdict (for detection: a condition that already holds when the
/// change comes is still a detection at its first verdict after it).
fn alarms(config: &dyn DetectorSpec, xs: &[f64]) -> (Vec<usize>, Vec<usize>) {
    let mut d = config.build("x");
    let change_mode = d.alarm_mode() == AlarmMode::Change;
    let (mut raised, mut verdicts) = (Vec::new(), Vec::new());
    let mut drifting = false;
    for (i, &x) in xs.iter().enumerate() {
        let Some(a) = d.observe(Sample { value: SignalValue::Numeric(x), ts: chrono::DateTime::UNIX_EPOCH }) else {
            continue;
        };
        let drift = a.status == DriftStatus::Drift;
        if drift && (change_mode || !drifting) {
            raised.push(i);
        }
        if drift {
            verdicts.push(i);
        }
        drifting = drift;
    }
    (raised, verdicts)
}

#[derive(Default, Clone, Copy)]
struct Score {
    false_alarms: usize,
    stable_samples: usize,
    changes: usize,
    missed: usize,
    delay_sum: usize,
}

impl Score {
    fn fa_per_100k(&self) -> f64 {
        self.false_alarms as f64 * 100_000.0 / self.stable_samples.max(1) as f64
    }
}

fn main() {
    let scenarios = scenarios();
    let detectors = detectors();
    let registry = monitor_strategies::builtin_detectors();
    let mut table: Vec<Vec<Option<Score>>> = Vec::new();
    for (_, text, binary_only) in &detectors {
        let spec: serde_json::Value = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => panic!("{text}: {e}"),
        };
        let config = match registry.build("detector", &spec, &BuildContext::default()) {
            Ok(c) => c,
            Err(e) => panic!("{text}: {e}"),
        };
        let mut row = Vec::new();
        for (si, s) in scenarios.iter().enumerate() {
            if *binary_only && !s.binary {
                row.push(None);
                continue;
            }
            let mut score = Score::default();
            let reps = if s.change { REPS } else { QUIET_REPS };
            for rep in 0..reps {
                let xs = (s.make)(1000 * si as u64 + rep + 1);
                let (hits, verdicts) = alarms(config.as_ref(), &xs);
                if s.change {
                    score.stable_samples += BEFORE;
                    score.false_alarms += hits.iter().filter(|&&i| i < BEFORE).count();
                    score.changes += 1;
                    match verdicts.iter().find(|&&i| i >= BEFORE) {
                        Some(&i) => score.delay_sum += i - BEFORE,
                        None => score.missed += 1,
                    }
                } else {
                    score.stable_samples += xs.len();
                    score.false_alarms += hits.len();
                }
            }
            row.push(Some(score));
        }
        table.push(row);
    }

    println!(
        "Streams ({REPS} per change scenario, change after {BEFORE} samples, {AFTER} after it; {QUIET_REPS} no-change streams of {QUIET}):\n"
    );
    for s in &scenarios {
        println!("- `{}`: {}", s.name, s.what);
    }
    let header = |title: &str| {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
        println!("\n{title}\n\n| detector | {} |", names.join(" | "));
        println!("| --- |{}", " ---: |".repeat(names.len()));
    };
    header("False alarms per 100 000 stable samples (before the change, and on the no-change streams):");
    for ((name, _, _), row) in detectors.iter().zip(&table) {
        let cells: Vec<String> =
            row.iter().map(|c| c.map_or("—".to_owned(), |s| format!("{:.0}", s.fa_per_100k()))).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    header(&format!("Missed changes, of {REPS} (no alarm within {AFTER} samples of the change):"));
    for ((name, _, _), row) in detectors.iter().zip(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(&scenarios)
            .map(|(c, s)| match c {
                Some(sc) if s.change => format!("{}", sc.missed),
                _ => "—".to_owned(),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    header("Mean detection delay in samples (detected changes only):");
    for ((name, _, _), row) in detectors.iter().zip(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(&scenarios)
            .map(|(c, s)| match c {
                Some(sc) if s.change && sc.missed < sc.changes => {
                    format!("{:.0}", sc.delay_sum as f64 / (sc.changes - sc.missed) as f64)
                }
                _ => "—".to_owned(),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
