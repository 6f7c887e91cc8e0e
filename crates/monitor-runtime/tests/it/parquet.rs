//! Parquet files as a source: columns onto the record contract, bad rows
//! rejected with their row number, bad files named with the column or the
//! row group. The files are written by the arrow-rs writer.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use monitor_core::record::Value;
use monitor_core::source::{Source, SourceBatch};
use monitor_runtime::source::{InputColumns, ParquetSource};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Writes `columns` as a Parquet file of row groups of `group_rows` rows.
fn write(path: &Path, columns: Vec<(&str, ArrayRef)>, group_rows: usize) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let props =
        WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_size(group_rows).build();
    let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

async fn read_all(mut source: ParquetSource) -> (Vec<SourceBatch>, Option<monitor_core::Error>) {
    let mut batches = Vec::new();
    loop {
        match source.next_batch().await {
            Ok(Some(b)) => batches.push(b),
            Ok(None) => return (batches, None),
            Err(e) => return (batches, Some(e)),
        }
    }
}

fn countries(values: &[Option<&str>]) -> ArrayRef {
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    for v in values {
        match v {
            Some(v) => b.append_value(v),
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}

#[tokio::test]
async fn columns_become_records_with_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write(
        &path,
        vec![
            ("model", Arc::new(StringArray::from(vec!["fraud", "fraud", "churn"])) as ArrayRef),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![
                    1_700_000_000_000,
                    1_700_000_001_000,
                    1_700_000_002_000,
                ])),
            ),
            ("id", Arc::new(Int64Array::from(vec![7, 8, 9]))),
            ("latency_ms", Arc::new(Float64Array::from(vec![12.5, 40.0, 3.0]))),
            ("prediction", Arc::new(StringArray::from(vec!["yes", "no", "no"]))),
            ("label", Arc::new(StringArray::from(vec![Some("yes"), None, Some("yes")]))),
            ("features.amount", Arc::new(Float32Array::from(vec![Some(1.5), None, Some(2.0)]))),
            ("features.country", countries(&[Some("DE"), Some("FR"), None])),
            ("features.is_new", Arc::new(BooleanArray::from(vec![true, false, true]))),
            ("metrics.accuracy", Arc::new(Float64Array::from(vec![0.9, 0.8, 0.7]))),
            ("comment", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
        ],
        2,
    );
    let source = ParquetSource::open(&path, &InputColumns::default()).unwrap();
    assert_eq!(source.unread_columns(), ["comment"]);
    assert_eq!(source.rows(), 3);
    let (batches, failed) = read_all(source).await;
    assert!(failed.is_none(), "{failed:?}");
    // One batch per row group, positioned at its last row.
    assert_eq!(batches.iter().map(|b| b.position.as_ref().unwrap().offset).collect::<Vec<_>>(), [2, 3]);
    let records: Vec<_> = batches.into_iter().flat_map(|b| b.records).collect();
    assert_eq!(records.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [0, 1, 2]);
    let first = &records[0].1;
    assert_eq!(first.model, "fraud");
    assert_eq!(first.version, "default");
    assert_eq!(first.ts.timestamp_millis(), 1_700_000_000_000);
    assert_eq!(first.id.as_deref(), Some("7"));
    assert_eq!(first.latency_ms, Some(12.5));
    assert_eq!(first.prediction, Some(Value::Category("yes".into())));
    assert_eq!(first.label, Some(Value::Category("yes".into())));
    assert_eq!(first.features["amount"], Value::Number(1.5));
    assert_eq!(first.features["country"], Value::Category("DE".into()));
    assert_eq!(first.features["is_new"], Value::Category("true".into()));
    assert_eq!(first.metrics["accuracy"], 0.9);
    // Nulls: a null label is absent, a null feature is a named missing value.
    assert_eq!(records[1].1.label, None);
    assert!(records[1].1.null_features.contains("amount"));
    assert!(records[2].1.null_features.contains("country"));
}

#[tokio::test]
async fn input_maps_other_column_names_and_a_default_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("car_loan.parquet");
    write(
        &path,
        vec![
            (
                "timestamp",
                Arc::new(StringArray::from(vec!["2018-10-30T18:00:00Z", "2018-10-30T18:08:43Z"])) as ArrayRef,
            ),
            ("y_pred_proba", Arc::new(Float64Array::from(vec![0.99, 0.07]))),
            ("repaid", Arc::new(Float64Array::from(vec![1.0, 0.0]))),
            ("car_value", Arc::new(Int64Array::from(vec![39811, 12679]))),
            ("period", Arc::new(StringArray::from(vec!["reference", "reference"]))),
        ],
        1024,
    );
    let columns = InputColumns {
        default_model: Some("car-loan".into()),
        ts: Some("timestamp".into()),
        prediction: Some("y_pred_proba".into()),
        label: Some("repaid".into()),
        features: vec!["car_value".into()],
        ..InputColumns::default()
    };
    let source = ParquetSource::open(&path, &columns).unwrap();
    assert_eq!(source.unread_columns(), ["period"]);
    let (batches, failed) = read_all(source).await;
    assert!(failed.is_none());
    let r = &batches[0].records[1].1;
    assert_eq!(r.model, "car-loan");
    assert_eq!(r.ts.to_rfc3339(), "2018-10-30T18:08:43+00:00");
    assert_eq!(r.prediction, Some(Value::Number(0.07)));
    assert_eq!(r.label, Some(Value::Number(0.0)));
    assert_eq!(r.features["car_value"], Value::Number(12679.0));
}

#[tokio::test]
async fn a_bad_row_is_rejected_with_its_row_number_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write(
        &path,
        vec![
            ("model", Arc::new(StringArray::from(vec![Some("m"), Some("m"), None, Some("m")])) as ArrayRef),
            ("latency_ms", Arc::new(Float64Array::from(vec![1.0, -5.0, 2.0, f64::NAN]))),
            (
                "ts",
                Arc::new(StringArray::from(vec![
                    "2024-01-01T00:00:00Z",
                    "2024-01-01T00:00:01Z",
                    "2024-01-01T00:00:02Z",
                    "yesterday",
                ])),
            ),
        ],
        1024,
    );
    let (batches, failed) = read_all(ParquetSource::open(&path, &InputColumns::default()).unwrap()).await;
    assert!(failed.is_none());
    let batch = &batches[0];
    assert_eq!(batch.records.len(), 1);
    let rejected: Vec<_> = batch.rejected.iter().map(|(seq, e)| (*seq, e.line, e.field.clone())).collect();
    assert_eq!(
        rejected,
        [
            (1, Some(2), Some("latency_ms".to_owned())),
            (2, Some(3), Some("model".to_owned())),
            (3, Some(4), Some("ts".to_owned())),
        ]
    );
    assert!(batch.rejected[2].1.to_string().contains("yesterday"), "{}", batch.rejected[2].1);
}

#[tokio::test]
async fn a_column_of_the_wrong_type_is_named_before_any_row_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let list = ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    write(
        &path,
        vec![("model", Arc::new(StringArray::from(vec!["m"])) as ArrayRef), ("features.tags", Arc::new(list))],
        1024,
    );
    let e = ParquetSource::open(&path, &InputColumns::default()).unwrap_err().to_string();
    assert!(e.contains("features.tags") && e.contains("feature `tags`") && e.contains("List"), "{e}");

    write(&path, vec![("latency_ms", Arc::new(StringArray::from(vec!["3"])) as ArrayRef)], 1024);
    let e = ParquetSource::open(&path, &InputColumns::default()).unwrap_err().to_string();
    assert!(e.contains("latency_ms") && e.contains("must hold a number"), "{e}");

    // Without a model column or a default model.
    write(&path, vec![("features.x", Arc::new(Float64Array::from(vec![1.0])) as ArrayRef)], 1024);
    let e = ParquetSource::open(&path, &InputColumns::default()).unwrap_err().to_string();
    assert!(e.contains("no `model` column") && e.contains("default_model"), "{e}");

    // A mapped column the file lacks.
    let columns =
        InputColumns { default_model: Some("m".into()), prediction: Some("score".into()), ..Default::default() };
    let e = ParquetSource::open(&path, &columns).unwrap_err().to_string();
    assert!(e.contains("no column `score`") && e.contains("features.x"), "{e}");
}

#[tokio::test]
async fn a_file_that_is_not_parquet_or_is_damaged_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    std::fs::write(&path, "{\"model\": \"m\", \"latency_ms\": 1}\n").unwrap();
    let e = ParquetSource::open(&path, &InputColumns::default()).unwrap_err().to_string();
    assert!(e.contains("log.parquet") && e.contains("not a readable Parquet file"), "{e}");

    let e = ParquetSource::open(dir.path(), &InputColumns::default()).unwrap_err().to_string();
    assert!(e.contains("not a regular file") || e.contains("cannot open"), "{e}");

    // Damage the data of the second row group: the rows of the first are
    // read, then the error names the row group.
    let n = 4096;
    write(
        &path,
        vec![
            ("model", Arc::new(StringArray::from(vec!["m"; n])) as ArrayRef),
            ("latency_ms", Arc::new(Float64Array::from((0..n).map(|i| i as f64).collect::<Vec<_>>()))),
        ],
        n / 2,
    );
    let meta = parquet::file::reader::SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let chunk = parquet::file::reader::FileReader::metadata(&meta).row_group(1).column(1).clone();
    let (start, len) = chunk.byte_range();
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[usize::try_from(start).unwrap() + 8..usize::try_from(start + len).unwrap()] {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let (batches, failed) = read_all(ParquetSource::open(&path, &InputColumns::default()).unwrap()).await;
    assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), n / 2);
    let e = failed.expect("an error for the damaged row group").to_string();
    assert!(e.contains("row group 1") && e.contains("log.parquet"), "{e}");
}

#[test]
fn input_names_are_bounded() {
    let columns = InputColumns { features: vec!["x".repeat(300)], ..Default::default() };
    let e = columns.validate().unwrap_err().to_string();
    assert!(e.contains("input.features") && e.contains("256"), "{e}");
    let columns = InputColumns { model: Some("m".into()), default_model: Some("n".into()), ..Default::default() };
    assert!(columns.validate().unwrap_err().to_string().contains("input.default_model"));
}

#[test]
fn a_reference_file_may_be_parquet() {
    use monitor_strategies::detectors::ReferenceFile;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.parquet");
    write(
        &path,
        vec![
            ("features.amount", Arc::new(Float64Array::from(vec![3.0, 1.0, 2.0])) as ArrayRef),
            ("features.country", countries(&[Some("DE"), Some("DE"), Some("FR")])),
        ],
        2,
    );
    let data = ReferenceFile::new(&path).load().unwrap();
    assert_eq!(data.records(), 3);
    let amount = data.signal("features.amount").unwrap();
    assert_eq!(amount.values, [3.0, 1.0, 2.0]);
    assert_eq!(amount.sorted.as_slice(), [1.0, 2.0, 3.0]);
    let country = data.signal("features.country").unwrap();
    assert_eq!(country.categories.get("DE"), Some(&2));

    // A bad row names the file and the row.
    write(&path, vec![("latency_ms", Arc::new(Float64Array::from(vec![1.0, -1.0])) as ArrayRef)], 2);
    let e = ReferenceFile::new(&path).load().unwrap_err().to_string();
    assert!(e.contains("train.parquet") && e.contains("line 2") && e.contains("latency_ms"), "{e}");
}
