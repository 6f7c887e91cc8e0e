//! Parity with NannyML 0.13.1 on its car-loan dataset (chunks of 5,000; the
//! expected values come from `scripts/nannyml_parity.py`, in
//! `nannyml_cases.rs`): CBPE's estimates within 0.01, the reconstruction
//! error within 2%, and the same chunks flagged.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, Duration, Utc};
use monitor_core::event::EventKind;
use monitor_core::record::{Record, Value};
use monitor_core::signal::Signal;
use monitor_strategies::detectors::AdaptiveThresholdConfig;
use monitor_strategies::performance::{EstimateSpec, PerformanceSpec, Problem, ReconstructionSpec};
use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec};

use crate::nannyml_cases as nml;

const SALARY: [&str; 4] = ["0 - 20K €", "20K - 40K €", "40K - 60K €", "60K+ €"];
const DOWNPAYMENT: [&str; 5] = ["0%", "10%", "20%", "30%", "40%"];
const FEATURES: [&str; 7] = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
];
const CHUNK: usize = 5000;

/// The 100,000 rows of the fixture as records, in order: reference, then analysis.
pub(crate) fn car_loan() -> Vec<Record> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/car_loan.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()).read_to_string(&mut text).unwrap();
    let start = DateTime::<Utc>::UNIX_EPOCH + Duration::days(365 * 50);
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            let mut r = Record::new("car_loan", start + Duration::seconds(i as i64));
            let mut features = BTreeMap::new();
            features.insert("car_value".to_owned(), Value::Number(v[0]));
            features.insert("salary_range".to_owned(), Value::Category(SALARY[v[1] as usize].to_owned()));
            features.insert("debt_to_income_ratio".to_owned(), Value::Number(v[2]));
            features.insert("loan_length".to_owned(), Value::Number(v[3]));
            let prev = if v[4] == 1.0 { "true" } else { "false" };
            features.insert("repaid_loan_on_prev_car".to_owned(), Value::Category(prev.to_owned()));
            features.insert("size_of_downpayment".to_owned(), Value::Category(DOWNPAYMENT[v[5] as usize].to_owned()));
            features.insert("driver_tenure".to_owned(), Value::Number(v[6]));
            r.features = features;
            r.metrics.insert("y_pred_proba".to_owned(), v[7] / 100.0);
            r.prediction = Some(Value::Number(v[8]));
            r.label = Some(Value::Number(v[9]));
            r
        })
        .collect()
}

/// The plan NannyML's defaults correspond to: CBPE and reconstruction
/// fitted on the first 50,000 records, windows of 5,000, thresholds at the
/// reference windows' mean ± 3σ.
pub(crate) fn plan() -> MonitorPlan {
    let band = || AdaptiveThresholdConfig { window: 1.into(), reference_windows: Some(10), ..Default::default() };
    let signals = ["estimated.roc_auc", "estimated.f1", "estimated.accuracy", "multivariate.reconstruction_error"];
    MonitorPlan {
        monitors: signals.iter().map(|s| MonitorSpec::new(s, band()).unwrap()).collect(),
        performance: vec![PerformanceSpec {
            models: None,
            problem: Problem::Binary,
            window: CHUNK,
            positive: Value::Number(1.0),
            score: Some("metrics.y_pred_proba".parse().unwrap()),
            threshold: 0.5,
            min_labels: 1.0,
            open_windows: 4,
            estimate: Some(EstimateSpec { reference: 50_000, calibration: Default::default() }),
        }],
        reconstruction: vec![ReconstructionSpec {
            models: None,
            features: Some(FEATURES.iter().map(|f| (*f).to_owned()).collect()),
            window: CHUNK,
            reference: Some(50_000),
            variance: 0.65,
            max_categories: 100,
        }],
        ..Default::default()
    }
}

/// NannyML's `StandardDeviationThreshold`: mean ± 3 population σ.
fn band(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    (mean - 3.0 * sd, mean + 3.0 * sd)
}

/// Every value per (signal, window), and the events, of the records.
fn run(monitor: &mut Monitor, records: &[Record]) -> (BTreeMap<(Signal, u64), f64>, Vec<monitor_core::event::Event>) {
    let mut values = BTreeMap::new();
    let mut events = Vec::new();
    for (seq, r) in records.iter().enumerate() {
        monitor.process(seq as u64, r, &mut events).unwrap();
        if seq % CHUNK == CHUNK - 1 {
            for e in monitor.windows("car_loan", "default").unwrap().recent() {
                values.insert((e.signal.clone(), e.window), e.value);
            }
        }
    }
    (values, events)
}

#[test]
fn cbpe_and_reconstruction_match_nannyml_on_car_loan() {
    let records = car_loan();
    assert_eq!(records.len(), 100_000);
    let mut monitor = Monitor::new(plan()).unwrap();
    let (values, events) = run(&mut monitor, &records);
    let value = |signal: &str, w: u64| values.get(&(signal.parse().unwrap(), w)).copied();

    // CBPE: the analysis chunks' estimates within 0.01 of NannyML's
    // (NannyML 0.13.1, car-loan, chunks 10 to 19); the reference chunks
    // give their realised values, which NannyML's thresholds are set on.
    for (metric, expected, realised) in [
        ("roc_auc", nml::ESTIMATED_ROC_AUC, nml::REALISED_ROC_AUC),
        ("f1", nml::ESTIMATED_F1, nml::REALISED_F1),
        ("accuracy", nml::ESTIMATED_ACCURACY, nml::REALISED_ACCURACY),
    ] {
        for w in 0..20 {
            let got = value(&format!("estimated.{metric}"), w).unwrap();
            let want = if w < 10 { realised[w as usize] } else { expected[w as usize] };
            let tolerance = if w < 10 { 1e-9 } else { 0.01 };
            assert!((got - want).abs() < tolerance, "estimated.{metric} chunk {w}: {got} vs NannyML {want}");
            let perf = value(&format!("perf.{metric}"), w).unwrap();
            assert!(
                (perf - realised[w as usize]).abs() < 1e-9,
                "perf.{metric} chunk {w}: {perf} vs {}",
                realised[w as usize]
            );
        }
    }
    // The thresholds, mean ± 3σ (population) of the reference chunks, are
    // NannyML's; the sampling error (the confidence band's half-width / 3)
    // within 5% of its.
    let fitted = monitor.windows("car_loan", "default").unwrap().estimation().unwrap().clone();
    assert_eq!(!fitted.calibration.is_empty(), nml::CALIBRATED);
    for (metric, index, thresholds, sampling) in [
        ("roc_auc", 5, nml::THRESHOLDS_ROC_AUC, nml::SAMPLING_ERROR_ROC_AUC[0]),
        ("f1", 3, nml::THRESHOLDS_F1, nml::SAMPLING_ERROR_F1[0]),
        ("accuracy", 0, nml::THRESHOLDS_ACCURACY, nml::SAMPLING_ERROR_ACCURACY[0]),
    ] {
        let (lo, hi) = band(&(0..10).map(|w| value(&format!("estimated.{metric}"), w).unwrap()).collect::<Vec<_>>());
        assert!((lo - thresholds.0).abs() < 1e-9 && (hi - thresholds.1).abs() < 1e-9, "{metric}: {lo}..{hi}");
        let se = fitted.sampling_error(index, CHUNK);
        assert!(((se - sampling) / sampling).abs() < 0.05, "{metric} sampling error {se} vs NannyML {sampling}");
    }
    let (lo, hi) = band(&(0..10).map(|w| value("multivariate.reconstruction_error", w).unwrap()).collect::<Vec<_>>());
    let (want_lo, want_hi) = nml::RECONSTRUCTION_THRESHOLDS;
    assert!(((lo - want_lo) / want_lo).abs() < 0.02 && ((hi - want_hi) / want_hi).abs() < 0.02, "{lo}..{hi}");

    // Reconstruction error within 2% of NannyML's, every chunk.
    for w in 0..20 {
        let got = value("multivariate.reconstruction_error", w).unwrap();
        let want = nml::RECONSTRUCTION_ERROR[w as usize];
        assert!(((got - want) / want).abs() < 0.02, "reconstruction error chunk {w}: {got} vs NannyML {want}");
    }
    let fit = monitor.windows("car_loan", "default").unwrap().reconstruction().unwrap().0;
    assert_eq!(fit.components, nml::COMPONENTS);
    assert!((fit.explained - nml::EXPLAINED_VARIANCE).abs() < 1e-3, "{}", fit.explained);

    // The same chunks flagged: NannyML alerts on chunks 15 to 19 and no
    // other, for each metric and for the reconstruction error. Ours opens
    // one finding per signal at chunk 15's last record, and none resolves.
    for (signal, alerts) in [
        ("estimated.roc_auc", nml::ALERTS_ROC_AUC),
        ("estimated.f1", nml::ALERTS_F1),
        ("estimated.accuracy", nml::ALERTS_ACCURACY),
        ("multivariate.reconstruction_error", nml::RECONSTRUCTION_ALERTS),
    ] {
        let first = alerts.iter().position(|a| *a).unwrap();
        assert!(alerts[first..].iter().all(|a| *a), "{signal}: NannyML's alerts are one run to the end");
        let mine: Vec<u64> = events
            .iter()
            .filter(|e| match &e.kind {
                EventKind::Finding(f) => f.signal.to_string() == signal,
                EventKind::Recovered(r) => r.signal.to_string() == signal,
                _ => false,
            })
            .map(|e| e.seq)
            .collect();
        assert_eq!(mine, vec![((first + 1) * CHUNK - 1) as u64], "{signal}");
    }

    // The labels are in the records: each estimate's finding carries the
    // realised value of its chunk (NannyML's realised performance, chunk 15).
    for (metric, realised) in
        [("roc_auc", nml::REALISED_ROC_AUC), ("f1", nml::REALISED_F1), ("accuracy", nml::REALISED_ACCURACY)]
    {
        let finding = findings_on(&events, &format!("estimated.{metric}"));
        let got = finding[0].realised.unwrap();
        assert!((got - realised[15]).abs() < 1e-9, "{metric}: realised {got} vs NannyML {}", realised[15]);
        assert!(finding[0].message.contains(&format!("; realised perf.{metric} ")), "{}", finding[0].message);
    }
    assert_eq!(findings_on(&events, "multivariate.reconstruction_error")[0].realised, None);

    // The retrain request those findings make names them as its reasons.
    let reasons: Vec<String> = events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RetrainRequested(r) => Some(r.reasons.iter().map(|f| f.signal.to_string()).collect()),
            _ => None,
        })
        .unwrap();
    for signal in ["estimated.roc_auc", "estimated.f1", "estimated.accuracy", "multivariate.reconstruction_error"] {
        assert!(reasons.iter().any(|r| r == signal), "{signal} not in {reasons:?}");
    }
}

fn findings_on<'a>(events: &'a [monitor_core::event::Event], signal: &str) -> Vec<&'a monitor_core::event::Finding> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Finding(f) if f.signal.to_string() == signal => Some(f),
            _ => None,
        })
        .collect()
}

/// Without the analysis' labels, the same chunks are flagged on the
/// estimates alone, and their findings carry no realised value.
#[test]
fn estimates_without_labels_flag_the_same_chunks_without_a_realised_value() {
    let mut records = car_loan();
    for r in &mut records[50_000..] {
        r.label = None;
    }
    let mut monitor = Monitor::new(plan()).unwrap();
    let (_, events) = run(&mut monitor, &records);
    for metric in ["roc_auc", "f1", "accuracy"] {
        let findings = findings_on(&events, &format!("estimated.{metric}"));
        assert_eq!(findings.len(), 1, "{metric}");
        assert_eq!(findings[0].realised, None, "{metric}");
        assert!(!findings[0].message.contains("realised"), "{}", findings[0].message);
    }
    let seqs: Vec<u64> = events.iter().filter(|e| matches!(e.kind, EventKind::Finding(_))).map(|e| e.seq).collect();
    assert!(seqs.iter().all(|s| *s == (16 * CHUNK - 1) as u64), "{seqs:?}");
}

/// The fits (calibration map, PCA basis) are part of the snapshot: a
/// monitor restored after the reference gives the same values and events
/// for the rest of the stream as the one it was taken from; under other
/// `[[performance]]` settings it is refused by name.
#[test]
fn fitted_state_survives_a_snapshot() {
    let records = car_loan();
    let (head, tail) = records.split_at(60_000);
    let mut monitor = Monitor::new(plan()).unwrap();
    run(&mut monitor, head);
    let saved = monitor.snapshot().unwrap().to_json().unwrap();
    let mut restored = Monitor::restore(plan(), &saved).unwrap();
    assert!(restored.windows("car_loan", "default").unwrap().estimation().is_some());
    let (a, events_a) = run(&mut monitor, tail);
    let (b, events_b) = run(&mut restored, tail);
    assert_eq!(a, b);
    assert_eq!(events_a.len(), events_b.len());

    let mut other = plan();
    other.performance[0].window = 1000;
    let e = Monitor::restore(other, &saved).err().unwrap().to_string();
    assert!(e.starts_with("snapshot error at `windows`: the config's [[performance]]"), "{e}");
}
