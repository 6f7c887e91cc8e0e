//! Joining labels that arrive after their predictions.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::record::{ModelKey, Record, Value, prediction_error};

/// A label joined to its prediction: the `error` signal of that prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinedLabel {
    /// The model version that made the prediction.
    pub key: ModelKey,
    /// The `error` signal value.
    pub error: f64,
}

#[derive(Debug, Clone)]
struct Pending {
    version: String,
    prediction: Value,
    ts: DateTime<Utc>,
}

/// Predictions waiting for their labels, bounded in number and in age.
///
/// A prediction with an `id` and no label is remembered; a later record with
/// the same model and `id` and a label is joined to it. The oldest pending
/// predictions are forgotten when there are more than `capacity`, or when they
/// are older than `max_age` in event time.
#[derive(Debug, Clone)]
pub struct LabelJoiner {
    capacity: usize,
    max_age: Duration,
    pending: HashMap<(String, String), Pending>,
    order: VecDeque<(DateTime<Utc>, String, String)>,
    expired: u64,
}

impl Default for LabelJoiner {
    fn default() -> Self {
        Self::new(100_000, Duration::hours(24))
    }
}

impl LabelJoiner {
    /// At most `capacity` pending predictions, none older than `max_age`.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self { capacity: capacity.max(1), max_age, pending: HashMap::new(), order: VecDeque::new(), expired: 0 }
    }

    /// Number of predictions waiting for a label.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no prediction is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// How many pending predictions were forgotten unlabelled, by age or capacity.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Remembers `record`'s prediction if it has an id and no label yet.
    pub fn remember(&mut self, record: &Record) {
        let (Some(id), Some(prediction), None) = (&record.id, &record.prediction, &record.label) else {
            return;
        };
        self.evict_older_than(record.ts - self.max_age);
        let key = (record.model.clone(), id.clone());
        let entry = Pending { version: record.version.clone(), prediction: prediction.clone(), ts: record.ts };
        self.pending.insert(key.clone(), entry);
        self.order.push_back((record.ts, key.0, key.1));
        while self.pending.len() > self.capacity {
            self.pop_oldest();
        }
        if self.order.len() > 2 * self.capacity {
            // Entries already joined linger in `order`; drop them.
            let pending = &self.pending;
            self.order.retain(|(ts, m, i)| pending.get(&(m.clone(), i.clone())).is_some_and(|p| p.ts == *ts));
        }
    }

    /// Joins a late label (see [`Record::is_late_label`]) to its prediction.
    pub fn join(&mut self, record: &Record) -> Result<JoinedLabel, RecordError> {
        let (Some(id), Some(label)) = (&record.id, &record.label) else {
            return Err(RecordError::record("not a late label: it needs an `id` and a `label`"));
        };
        self.evict_older_than(record.ts - self.max_age);
        let key = (record.model.clone(), id.clone());
        let Some(pending) = self.pending.get(&key) else {
            return Err(RecordError::field(
                "id",
                format!("{id:?}"),
                format!(
                    "no pending prediction of model `{}` has this id (never seen, already labelled, or expired)",
                    record.model
                ),
            ));
        };
        let Some(error) = prediction_error(&pending.prediction, label) else {
            let expected = match pending.prediction {
                Value::Number(_) => "a number",
                Value::Category(_) => "a string",
            };
            let shown = match label {
                Value::Number(x) => x.to_string(),
                Value::Category(c) => format!("{c:?}"),
            };
            return Err(RecordError::field(
                "label",
                shown,
                format!("must be {expected} like the prediction it labels"),
            ));
        };
        let version = pending.version.clone();
        self.pending.remove(&key);
        Ok(JoinedLabel { key: ModelKey::new(record.model.clone(), version), error })
    }

    fn evict_older_than(&mut self, horizon: DateTime<Utc>) {
        while self.order.front().is_some_and(|(ts, _, _)| *ts < horizon) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((ts, model, id)) = self.order.pop_front() {
            let key = (model, id);
            if self.pending.get(&key).is_some_and(|p| p.ts == ts) {
                self.pending.remove(&key);
                self.expired += 1;
            }
        }
    }
}

/// A prediction waiting for its label, as saved in a [`LabelJoinerState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingLabel {
    /// The model.
    pub model: String,
    /// The prediction's `id`.
    pub id: String,
    /// The version that made the prediction.
    pub version: String,
    /// The prediction.
    pub prediction: Value,
    /// Its event time.
    pub ts: DateTime<Utc>,
}

/// Everything a [`LabelJoiner`] has learned, for snapshots: restored, it
/// joins and expires exactly as the joiner it was taken from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelJoinerState {
    /// The pending predictions, sorted by model and id.
    pub pending: Vec<PendingLabel>,
    /// Arrival order, oldest first: event time, model and id (entries
    /// already joined may linger; they are skipped on expiry).
    pub order: Vec<(DateTime<Utc>, String, String)>,
    /// Predictions forgotten unlabelled so far.
    pub expired: u64,
}

impl LabelJoiner {
    /// The joiner's state, for a snapshot.
    pub fn state(&self) -> LabelJoinerState {
        let mut pending: Vec<PendingLabel> = self
            .pending
            .iter()
            .map(|((model, id), p)| PendingLabel {
                model: model.clone(),
                id: id.clone(),
                version: p.version.clone(),
                prediction: p.prediction.clone(),
                ts: p.ts,
            })
            .collect();
        pending.sort_by(|a, b| (&a.model, &a.id).cmp(&(&b.model, &b.id)));
        LabelJoinerState { pending, order: self.order.iter().cloned().collect(), expired: self.expired }
    }

    /// A joiner with `capacity` and `max_age` (as in [`LabelJoiner::new`])
    /// and the learned `state`. More pending predictions than `capacity`
    /// is an error naming both numbers.
    pub fn restore(capacity: usize, max_age: Duration, state: LabelJoinerState) -> Result<Self, String> {
        let mut joiner = Self::new(capacity, max_age);
        if state.pending.len() > joiner.capacity {
            return Err(format!(
                "{} pending labels saved, more than limits.pending_labels = {}",
                state.pending.len(),
                joiner.capacity
            ));
        }
        for p in state.pending {
            joiner.pending.insert((p.model, p.id), Pending { version: p.version, prediction: p.prediction, ts: p.ts });
        }
        joiner.order = state.order.into();
        joiner.expired = state.expired;
        Ok(joiner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(secs)
    }

    fn prediction(id: &str, class: &str, secs: i64) -> Record {
        let mut r = Record::new("fraud", at(secs));
        r.version = "v3".into();
        r.id = Some(id.into());
        r.prediction = Some(Value::Category(class.into()));
        r
    }

    fn label(id: &str, class: &str, secs: i64) -> Record {
        let mut r = Record::new("fraud", at(secs));
        r.id = Some(id.into());
        r.label = Some(Value::Category(class.into()));
        r
    }

    #[test]
    fn joins_a_late_label_to_its_version() {
        let mut j = LabelJoiner::default();
        j.remember(&prediction("a", "fraud", 0));
        let joined = j.join(&label("a", "legit", 5)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(joined, JoinedLabel { key: ModelKey::new("fraud", "v3"), error: 1.0 });
        assert!(j.join(&label("a", "legit", 6)).is_err(), "joined once only");
    }

    #[test]
    fn bounded_in_number_and_age() {
        let mut j = LabelJoiner::new(2, Duration::seconds(60));
        j.remember(&prediction("a", "x", 0));
        j.remember(&prediction("b", "x", 1));
        j.remember(&prediction("c", "x", 2));
        assert_eq!(j.len(), 2);
        assert!(j.join(&label("a", "x", 3)).is_err());
        let e = j.join(&label("b", "x", 100)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("expired"), "{e}");
        assert_eq!(j.expired(), 3);
    }

    #[test]
    fn a_label_of_the_wrong_type_is_named() {
        let mut j = LabelJoiner::default();
        j.remember(&prediction("a", "fraud", 0));
        let mut r = label("a", "x", 1);
        r.label = Some(Value::Number(1.0));
        let e = j.join(&r).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "field `label`: must be a string like the prediction it labels (got 1)");
    }
}
