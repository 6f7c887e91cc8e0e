//! References for the two-sample detectors: the first samples of a model
//! version, or a file of records (for example the training data), summarised
//! once into a sorted sample, bins or category counts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use monitor_core::Error;
use monitor_core::record::Record;
use monitor_core::signal::SignalValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::stats::{Bins, SortedSample};

/// The samples of one signal in a reference file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferenceSignal {
    /// Numeric samples, in file order.
    pub values: Vec<f64>,
    /// The numeric samples sorted, computed once at load.
    pub sorted: Arc<SortedSample>,
    /// Counts of categorical samples.
    pub categories: BTreeMap<String, u64>,
}

/// A reference file, loaded: every signal of every record in it.
///
/// All records count, whatever their `model` and `version`: narrow the
/// monitor with `models = [..]` when a file belongs to one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReferenceData {
    signals: HashMap<String, ReferenceSignal>,
    records: u64,
}

impl ReferenceData {
    /// Parses NDJSON records; blank lines are skipped. A bad line is an
    /// error naming the line.
    pub fn from_ndjson(text: &str) -> Result<Self, monitor_core::RecordError> {
        let now = chrono::DateTime::UNIX_EPOCH;
        let mut builder = Builder::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            builder.add(&Record::parse_line(line, i as u64 + 1, now)?);
        }
        Ok(builder.finish())
    }

    /// Reads a Parquet file of records (its columns named as the record's
    /// fields: `features.<name>`, `prediction`, ...). A bad row is an error
    /// naming the row and the column.
    #[cfg(feature = "parquet")]
    pub fn from_parquet(path: &Path) -> Result<Self, Error> {
        use monitor_core::columnar::{InputColumns, ParquetFile};
        // A reference needs no model: every record counts.
        let columns = InputColumns { default_model: Some("reference".into()), ..InputColumns::default() };
        let file = ParquetFile::open(path, &columns)?;
        let mut builder = Builder::default();
        let mut bad = None;
        file.read(&path.display().to_string(), 0, |batch| {
            if let Some((_, e)) = batch.rejected.into_iter().next() {
                bad = Some(e);
                return false;
            }
            for (_, record) in &batch.records {
                builder.add(record);
            }
            true
        })?;
        match bad {
            // Rows are numbered from 1, as lines are.
            Some(e) => Err(Error::config("reference_file", format!("{} (Parquet rows as lines): {e}", path.display()))),
            None => Ok(builder.finish()),
        }
    }
}

/// Gathers the samples of records, signal by signal.
#[derive(Default)]
struct Builder {
    numeric: HashMap<String, Vec<f64>>,
    categories: HashMap<String, BTreeMap<String, u64>>,
    records: u64,
}

impl Builder {
    fn add(&mut self, record: &Record) {
        self.records += 1;
        record.for_each_signal(|sig, value| match value {
            SignalValue::Numeric(x) => self.numeric.entry(sig.to_string()).or_default().push(x),
            SignalValue::Categorical(c) => {
                *self.categories.entry(sig.to_string()).or_default().entry(c.to_owned()).or_default() += 1;
            }
        });
    }

    fn finish(self) -> ReferenceData {
        let Self { numeric, categories, records } = self;
        let mut signals: HashMap<String, ReferenceSignal> = HashMap::new();
        for (name, values) in numeric {
            let sorted = Arc::new(SortedSample::new(values.clone()));
            signals.insert(name, ReferenceSignal { values, sorted, categories: BTreeMap::new() });
        }
        for (name, counts) in categories {
            signals.entry(name).or_default().categories = counts;
        }
        ReferenceData { signals, records }
    }
}

impl ReferenceData {
    /// The samples of `signal` (`features.amount`), if the file has any.
    pub fn signal(&self, signal: &str) -> Option<&ReferenceSignal> {
        self.signals.get(signal)
    }

    /// The signals present, sorted by name.
    pub fn signals(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.signals.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of records read.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// `reference_file = "train.ndjson"`: a file of records whose signals are the
/// reference. Loaded at most once, however many detectors, shards and clones
/// of the plan use it; relative paths resolve against the working directory
/// unless [`ReferenceFile::resolve`] gave a base (a detector registry does,
/// with `BuildContext::base_dir`).
#[derive(Clone)]
pub struct ReferenceFile {
    path: PathBuf,
    data: Arc<OnceLock<Result<Arc<ReferenceData>, String>>>,
}

/// The largest reference file read, in bytes (1 GiB).
pub const MAX_REFERENCE_BYTES: u64 = 1 << 30;

impl ReferenceFile {
    /// A reference file at `path`, not yet read.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), data: Arc::new(OnceLock::new()) }
    }

    /// A reference already in memory (for tests and embedding).
    pub fn from_data(path: impl Into<PathBuf>, data: ReferenceData) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(Arc::new(data)));
        Self { path: path.into(), data: Arc::new(cell) }
    }

    /// The path as configured (or resolved).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes a relative path relative to `base` (the config file's directory).
    pub fn resolve(&mut self, base: &Path) {
        if self.path.is_relative() {
            *self = Self::new(base.join(&self.path));
        }
    }

    /// The loaded data: read and parsed on first call, shared afterwards.
    /// Errors are config errors at `reference_file`.
    pub fn load(&self) -> Result<Arc<ReferenceData>, Error> {
        let loaded = self.data.get_or_init(|| {
            let parquet = self
                .path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("parq"));
            let data = if parquet {
                load_parquet(&self.path)?
            } else {
                // Only a regular file, and only so much of it: `/dev/zero` or a
                // FIFO named here must fail at start, not hang or fill memory.
                let text = monitor_core::fs::read_regular_file(&self.path, MAX_REFERENCE_BYTES, "reference file")
                    .map_err(|e| e.to_string())?;
                ReferenceData::from_ndjson(&text).map_err(|e| format!("{}: {e}", self.path.display()))?
            };
            tracing::info!(path = %self.path.display(), records = data.records, "reference file loaded");
            Ok(Arc::new(data))
        });
        loaded.clone().map_err(|message| Error::config("reference_file", message))
    }

    /// The data if already loaded successfully.
    pub(crate) fn loaded(&self) -> Option<Arc<ReferenceData>> {
        self.data.get().and_then(|r| r.as_ref().ok().cloned())
    }
}

/// A reference file in Parquet, bounded like an NDJSON one.
fn load_parquet(path: &Path) -> Result<ReferenceData, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    if size > MAX_REFERENCE_BYTES {
        return Err(format!(
            "{} is {size} bytes, more than the {MAX_REFERENCE_BYTES} a reference file may be",
            path.display()
        ));
    }
    #[cfg(feature = "parquet")]
    return ReferenceData::from_parquet(path).map_err(|e| e.to_string());
    #[cfg(not(feature = "parquet"))]
    Err(format!(
        "{} is Parquet, and this build reads no Parquet (feature `parquet` of monitor-strategies)",
        path.display()
    ))
}

impl fmt::Debug for ReferenceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReferenceFile").field(&self.path).finish()
    }
}

impl PartialEq for ReferenceFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Serialize for ReferenceFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.path.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReferenceFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PathBuf::deserialize(d).map(Self::new)
    }
}

/// What every spec with an optional `reference_file` does with it: resolve
/// it against the config's directory, load it at start, list its signals.
pub(crate) mod file_spec {
    use monitor_core::Error;
    use monitor_core::registry::BuildContext;

    use super::ReferenceFile;

    /// Makes a relative path relative to `ctx.base_dir`.
    pub(crate) fn resolve(file: &mut Option<ReferenceFile>, ctx: &BuildContext) {
        if let Some(f) = file {
            f.resolve(&ctx.base_dir);
        }
    }

    /// Reads the file, if there is one; errors are at `reference_file`.
    pub(crate) fn load(file: Option<&ReferenceFile>) -> Result<(), Error> {
        file.map_or(Ok(()), |f| f.load().map(drop))
    }

    /// The signals of the file, sorted; `None` without a file.
    pub(crate) fn signals(file: Option<&ReferenceFile>) -> Result<Option<Vec<String>>, Error> {
        file.map(|f| f.load().map(|data| data.signals().into_iter().map(str::to_owned).collect())).transpose()
    }
}

/// A numeric reference, summarised once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NumericReference {
    /// The samples in arrival order (kept only where a detector needs them).
    pub values: Vec<f64>,
    pub sorted: Arc<SortedSample>,
    pub mean: f64,
    /// numpy's `std` (ddof = 0).
    pub std: f64,
    pub bins: Option<Bins>,
}

impl NumericReference {
    pub(crate) fn new(values: Vec<f64>, sorted: Arc<SortedSample>, bins: Option<usize>) -> Self {
        let (mean, std) = sorted.mean_std();
        let bins = bins.map(|b| Bins::from_sorted(&sorted, b));
        Self { values, sorted, mean, std, bins }
    }
}

/// A categorical reference: counts per category, at most `max_categories`
/// of them (the rest under `__other__`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CategoricalReference {
    pub counts: BTreeMap<String, u64>,
}

/// Where a reference stands: filling from the first samples, or done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ReferenceState {
    /// Taking the first `target` samples (of either type; the first sample
    /// decides which).
    Collecting { target: usize, values: Vec<f64>, categories: BTreeMap<String, u64>, seen: usize },
    /// Numeric and frozen.
    Numeric(Arc<NumericReference>),
    /// Categorical and frozen.
    Categorical(Arc<CategoricalReference>),
}

/// Category name for everything past the cap, as in `monitor_core::window::CategoryCounts`.
pub(crate) const OTHER: &str = monitor_core::window::CategoryCounts::OTHER;

/// Adds one category to counts capped at `max` distinct names.
pub(crate) fn count_category(counts: &mut BTreeMap<String, u64>, name: &str, max: usize) {
    if let Some(c) = counts.get_mut(name) {
        *c += 1;
    } else if counts.len() < max {
        counts.insert(name.to_owned(), 1);
    } else {
        *counts.entry(OTHER.to_owned()).or_default() += 1;
    }
}

impl ReferenceState {
    pub(crate) fn collecting(target: usize) -> Self {
        Self::Collecting { target, values: Vec::new(), categories: BTreeMap::new(), seen: 0 }
    }

    /// The reference for `signal` from a loaded file, if it has the signal.
    pub(crate) fn from_file(
        data: &ReferenceData,
        signal: &str,
        bins: Option<usize>,
        keep_values: bool,
        max_categories: usize,
    ) -> Option<Self> {
        let s = data.signal(signal)?;
        if !s.values.is_empty() {
            let values = if keep_values { s.values.clone() } else { Vec::new() };
            return Some(Self::Numeric(Arc::new(NumericReference::new(values, Arc::clone(&s.sorted), bins))));
        }
        if s.categories.is_empty() {
            return None;
        }
        let mut counts = BTreeMap::new();
        for (name, &n) in &s.categories {
            if counts.len() < max_categories || counts.contains_key(name) {
                *counts.entry(name.clone()).or_default() += n;
            } else {
                *counts.entry(OTHER.to_owned()).or_default() += n;
            }
        }
        Some(Self::Categorical(Arc::new(CategoricalReference { counts })))
    }

    /// Offers a sample to a collecting reference. Returns true when the
    /// sample was taken (the reference is not complete yet, or this sample
    /// completed it).
    pub(crate) fn offer(
        &mut self,
        value: SignalValue<'_>,
        bins: Option<usize>,
        keep_values: bool,
        max_categories: usize,
    ) -> bool {
        let Self::Collecting { target, values, categories, seen } = self else {
            return false;
        };
        match value {
            SignalValue::Numeric(x) if categories.is_empty() => values.push(x),
            SignalValue::Categorical(c) if values.is_empty() => {
                count_category(categories, c, max_categories);
            }
            // A sample of the other type than the reference's is ignored.
            _ => return true,
        }
        *seen += 1;
        if *seen >= *target {
            let frozen = if values.is_empty() {
                Self::Categorical(Arc::new(CategoricalReference { counts: std::mem::take(categories) }))
            } else {
                let values = std::mem::take(values);
                let sorted = Arc::new(SortedSample::new(values.clone()));
                let kept = if keep_values { values } else { Vec::new() };
                Self::Numeric(Arc::new(NumericReference::new(kept, sorted, bins)))
            };
            *self = frozen;
        }
        true
    }
}
