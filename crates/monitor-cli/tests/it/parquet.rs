//! `replay` of a Parquet file: the same findings as the same records in
//! NDJSON, and a clear error for a file that is not Parquet.

use std::fs::File;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use parquet::arrow::ArrowWriter;

use super::{bin, events_of, scratch, text};

#[test]
fn parquet_and_ndjson_of_the_same_records_give_the_same_events() {
    let dir = scratch("parquet");
    // The default monitors take the first 10,000 samples as the reference.
    let n: usize = 13_000;
    let start = 1_790_000_000_000_i64;
    let ts: Vec<i64> = (0..n as i64).map(|i| start + i * 1000).collect();
    // A feature that shifts after 11,000 records, and a categorical one that
    // gains a new value.
    let amount: Vec<f64> =
        (0..n).map(|i| ((i * 7919) % 1000) as f64 / 10.0 + if i >= 11_000 { 40.0 } else { 0.0 }).collect();
    let country: Vec<&str> =
        (0..n).map(|i| if i >= 11_000 && i % 3 == 0 { "XX" } else { ["DE", "FR", "IT"][i % 3] }).collect();
    let latency: Vec<f64> = (0..n).map(|i| 10.0 + (i % 13) as f64).collect();

    let mut ndjson = String::new();
    for i in 0..n {
        let t = chrono::DateTime::from_timestamp_millis(ts[i])
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        ndjson.push_str(&format!(
            "{{\"model\":\"loans\",\"ts\":\"{t}\",\"latency_ms\":{},\"features\":{{\"amount\":{},\"country\":\"{}\"}}}}\n",
            latency[i], amount[i], country[i]
        ));
    }
    std::fs::write(dir.path().join("log.ndjson"), ndjson).unwrap();

    let columns: Vec<(&str, ArrayRef)> = vec![
        ("model", Arc::new(StringArray::from(vec!["loans"; n]))),
        ("ts", Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC"))),
        ("latency_ms", Arc::new(Float64Array::from(latency))),
        ("features.amount", Arc::new(Float64Array::from(amount))),
        ("features.country", Arc::new(StringArray::from(country))),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = File::create(dir.path().join("log.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let run = |name: &str| {
        let out = bin().args(["replay", "--format", "json"]).arg(dir.path().join(name)).output().unwrap();
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        // Event and job ids are fresh UUIDs in each run; the rest must agree.
        let events = events_of(&out.stdout);
        serde_json::to_string_pretty(&events).unwrap()
    };
    let from_ndjson = run("log.ndjson");
    let from_parquet = run("log.parquet");
    assert!(from_ndjson.contains("\"signal\": \"features.amount\""), "{from_ndjson}");
    assert!(from_ndjson.contains("\"signal\": \"features.country\""), "{from_ndjson}");
    assert_eq!(from_parquet, from_ndjson);
}

/// Writes a small Parquet log (two models, latency and one feature) to
/// `path`, for the docs' commands.
pub(crate) fn write_sample_log(path: &std::path::Path) {
    let n = 200;
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "model",
            Arc::new(StringArray::from(
                (0..n).map(|i| if i % 2 == 0 { "fraud" } else { "search" }).collect::<Vec<_>>(),
            )),
        ),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from((0..n).map(|i| 1_795_000_000_000 + i * 1000).collect::<Vec<_>>())),
        ),
        ("latency_ms", Arc::new(Float64Array::from((0..n).map(|i| 10.0 + (i % 17) as f64).collect::<Vec<_>>()))),
        ("features.amount", Arc::new(Float64Array::from((0..n).map(|i| (i % 50) as f64).collect::<Vec<_>>()))),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_file_named_parquet_that_is_not_is_an_error_naming_it() {
    let dir = scratch("not-parquet");
    let path = dir.path().join("log.parquet");
    std::fs::write(&path, "{\"model\":\"m\",\"latency_ms\":1}\n").unwrap();
    let out = bin().arg("replay").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("log.parquet") && stderr.contains("not a readable Parquet file"), "{stderr}");
}
