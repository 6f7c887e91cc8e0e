//! Output events: findings, recoveries, retrain requests and job status changes.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::ModelKey;
use crate::signal::Signal;

/// One output event.
///
/// Serialised flat, as one JSON object with `type`, `model`, `version`, `ts`,
/// `seq` and the fields of its kind:
///
/// ```
/// # use monitor_core::event::*;
/// # use monitor_core::record::ModelKey;
/// # use monitor_core::signal::Signal;
/// let finding = Finding {
///     signal: Signal::Metric("accuracy".into()),
///     detector: "threshold".into(),
///     severity: Severity::Drift,
///     statistic: 0.81,
///     threshold: 0.9,
///     p_value: None,
///     realised: None,
///     message: "mean of metrics.accuracy 0.81 < min 0.9".into(),
/// };
/// let event = Event::new(ModelKey::new("fraud", "v3"), chrono::Utc::now(), 41, EventKind::Finding(finding));
/// let json = serde_json::to_value(&event).unwrap();
/// assert_eq!(json["type"], "finding");
/// assert_eq!(json["model"], "fraud");
/// assert_eq!(json["seq"], 41);
/// assert_eq!(json["severity"], "drift");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// A unique id for this event (uuid v4).
    pub id: Uuid,
    /// The model and version it concerns.
    #[serde(flatten)]
    pub key: ModelKey,
    /// Event time, always: the `ts` of the record that caused it. A
    /// `job_status` event carries the event time of the retrain request
    /// its job answers; the wall-clock time of the change is its
    /// [`JobUpdate::at`].
    pub ts: DateTime<Utc>,
    /// The 0-based index of the input record that caused it.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(key: ModelKey, ts: DateTime<Utc>, seq: u64, kind: EventKind) -> Self {
        Self { id: Uuid::new_v4(), key, ts, seq, kind }
    }

    /// The `type` of this event as it appears in JSON.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            EventKind::Finding(_) => "finding",
            EventKind::Recovered(_) => "recovered",
            EventKind::RetrainRequested(_) => "retrain_requested",
            EventKind::JobStatus(_) => "job_status",
        }
    }
}

/// What an [`Event`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A detector entered warning or drift.
    Finding(Finding),
    /// A detector that was in warning or drift is stable again. The finding
    /// is the one that ended, with the statistic at recovery.
    Recovered(Finding),
    /// The retrain policy asked for a retraining job.
    RetrainRequested(RetrainRequest),
    /// A retraining job changed state.
    JobStatus(JobUpdate),
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The detector's early warning zone.
    Warning,
    /// The detector's alarm; a threshold's violation included.
    Drift,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Drift => "drift",
        })
    }
}

/// What a detector found on one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The signal watched.
    pub signal: Signal,
    /// The detector's kind (`threshold`, `adwin`, ...).
    pub detector: String,
    /// Warning or drift.
    pub severity: Severity,
    /// The detector's test statistic at the time.
    pub statistic: f64,
    /// The value the statistic was compared with.
    pub threshold: f64,
    /// The p-value, for detectors that compute one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// For a finding on an estimate (`estimated.<metric>`): the realised
    /// value of the metric (`perf.<metric>`) over the same window, when
    /// enough of its labels had come by then. Absent from JSON otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realised: Option<f64>,
    /// A one-line human explanation.
    pub message: String,
}

/// The identity of an alert: one model version's one signal, as one detector
/// watches it.
///
/// Severity is not part of it: a warning that becomes a drift, and the
/// recovery that ends it, are the same alert. Webhooks key their open alerts
/// and repeats by it, the PagerDuty format's `dedup_key` and the Alertmanager
/// format's `fingerprint` come from it, and the retrain scheduler merges a
/// job's reasons by it.
///
/// ```
/// # use monitor_core::event::*;
/// # use monitor_core::record::ModelKey;
/// # use monitor_core::signal::Signal;
/// let finding = |severity| Finding {
///     signal: Signal::Metric("accuracy".into()),
///     detector: "threshold".into(),
///     severity,
///     statistic: 0.81,
///     threshold: 0.9,
///     p_value: None,
///     realised: None,
///     message: String::new(),
/// };
/// let model = ModelKey::new("fraud", "v3");
/// let warning = AlertKey::new(&model, &finding(Severity::Warning));
/// assert_eq!(warning, AlertKey::new(&model, &finding(Severity::Drift)));
/// assert_eq!(warning.dedup_key(), "model-monitor/fraud/v3/metrics.accuracy/threshold");
/// assert_eq!(warning.fingerprint(), "aabbf285b8a3ea7e");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    /// The model.
    pub model: String,
    /// The model version.
    pub version: String,
    /// The signal watched, as it appears in config (`metrics.accuracy`).
    pub signal: String,
    /// The detector's kind (`threshold`, `ks`, ...).
    pub detector: String,
}

impl AlertKey {
    /// The alert of `finding` on the model version `key`.
    pub fn new(key: &ModelKey, finding: &Finding) -> Self {
        Self {
            model: key.model.clone(),
            version: key.version.clone(),
            signal: finding.signal.to_string(),
            detector: finding.detector.clone(),
        }
    }

    /// The alert of a `finding` or `recovered` event; `None` for other events.
    pub fn of(event: &Event) -> Option<Self> {
        match &event.kind {
            EventKind::Finding(f) | EventKind::Recovered(f) => Some(Self::new(&event.key, f)),
            EventKind::RetrainRequested(_) | EventKind::JobStatus(_) => None,
        }
    }

    /// A readable key, stable across releases and processes:
    /// `model-monitor/<model>/<version>/<signal>/<detector>`. In each part,
    /// `%` becomes `%25` and `/` becomes `%2F`, so two alerts never share a
    /// key (names without those characters read as they are).
    pub fn dedup_key(&self) -> String {
        let mut key = String::from("model-monitor");
        for part in [&self.model, &self.version, &self.signal, &self.detector] {
            key.push('/');
            for c in part.chars() {
                match c {
                    '%' => key.push_str("%25"),
                    '/' => key.push_str("%2F"),
                    c => key.push(c),
                }
            }
        }
        key
    }

    /// A short key, stable across releases and processes: 16 lowercase hex
    /// digits of the 64-bit FNV-1a hash that Prometheus and Alertmanager
    /// use for the fingerprint of a label set, here of the labels
    /// `detector`, `model`, `signal` and `version`.
    pub fn fingerprint(&self) -> String {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        /// Cannot occur in UTF-8, so it separates names and values unambiguously.
        const SEPARATOR: u8 = 0xff;
        let labels = [
            ("detector", &self.detector),
            ("model", &self.model),
            ("signal", &self.signal),
            ("version", &self.version),
        ];
        let mut hash = OFFSET;
        for (name, value) in labels {
            for &byte in
                name.as_bytes().iter().chain([SEPARATOR].iter()).chain(value.as_bytes()).chain([SEPARATOR].iter())
            {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(PRIME);
            }
        }
        format!("{hash:016x}")
    }
}

impl fmt::Display for AlertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {} ({})", self.model, self.version, self.signal, self.detector)
    }
}

/// The payload of a retrain request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainRequest {
    /// The id the job will carry through its whole lifecycle.
    pub job_id: Uuid,
    /// The findings that made the policy fire.
    pub reasons: Vec<Finding>,
}

impl RetrainRequest {
    /// The id of the job that the record `seq` of `key`, at event time
    /// `ts`, asks for. The same record gives the same id in every process:
    /// a record read again after a crash asks for the job already known,
    /// under the same idempotency key, never for a second one.
    pub fn job_id_for(key: &ModelKey, ts: DateTime<Utc>, seq: u64) -> Uuid {
        let mut input = Vec::with_capacity(key.model.len() + key.version.len() + 40);
        for part in [key.model.as_bytes(), b"\0", key.version.as_bytes(), b"\0"] {
            input.extend_from_slice(part);
        }
        input.extend_from_slice(&seq.to_le_bytes());
        input.extend_from_slice(&ts.timestamp_micros().to_le_bytes());
        let hash = xxhash_rust::xxh3::xxh3_128(&input);
        uuid::Builder::from_custom_bytes(hash.to_le_bytes()).into_uuid()
    }
}

/// A retraining job, as schedulers and dispatchers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainJob {
    /// The job id, the same as in the request event (see [`RetrainRequest::job_id_for`]).
    pub job_id: Uuid,
    /// The model to retrain.
    pub model: String,
    /// The version that degraded.
    pub version: String,
    /// Why it is retrained.
    pub reasons: Vec<Finding>,
    /// When the policy asked for it.
    pub created_at: DateTime<Utc>,
    /// The input index that caused the request.
    pub seq: u64,
}

impl RetrainJob {
    /// The job that a `retrain_requested` event asks for; `None` for other events.
    pub fn from_event(event: &Event) -> Option<Self> {
        match &event.kind {
            EventKind::RetrainRequested(r) => Some(Self {
                job_id: r.job_id,
                model: event.key.model.clone(),
                version: event.key.version.clone(),
                reasons: r.reasons.clone(),
                created_at: event.ts,
                seq: event.seq,
            }),
            _ => None,
        }
    }

    /// The model key of the job.
    pub fn key(&self) -> ModelKey {
        ModelKey::new(self.model.clone(), self.version.clone())
    }

    /// The reasons in one line: `metrics.accuracy threshold drift; latency_ms ...`.
    pub fn reason_summary(&self) -> String {
        self.reasons
            .iter()
            .map(|f| format!("{} {} {}", f.signal, f.detector, f.severity))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Where a retraining job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted by the scheduler, waiting for a dispatcher.
    Queued,
    /// Handed to the engine that runs it.
    Dispatched,
    /// The engine reported success.
    Succeeded,
    /// The engine reported failure, or it could not be reached.
    Failed,
    /// Folded into a job already queued or in flight for the same model.
    Merged,
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued",
            Self::Dispatched => "dispatched",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Merged => "merged",
        })
    }
}

/// The payload of a job status change.
///
/// Its event's `ts` is event time, like every event's (that of the retrain
/// request the job answers), so that one field has one clock; `at` is when
/// the change happened, by the wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUpdate {
    /// The job.
    pub job_id: Uuid,
    /// When the status changed, by the wall clock (RFC 3339 in JSON).
    pub at: DateTime<Utc>,
    /// Its new status.
    pub status: JobStatus,
    /// The dispatcher that handles it (`command`, `channel`, ...).
    pub dispatcher: String,
    /// A human detail: an exit code, an HTTP status, the job merged into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(signal: &str, detector: &str, severity: Severity) -> Finding {
        Finding {
            signal: Signal::Metric(signal.into()),
            detector: detector.into(),
            severity,
            statistic: 0.5,
            threshold: 0.9,
            p_value: None,
            realised: None,
            message: String::new(),
        }
    }

    #[test]
    fn alert_keys_ignore_severity_and_tell_alerts_apart() {
        let v3 = ModelKey::new("fraud", "v3");
        let key = AlertKey::new(&v3, &finding("accuracy", "threshold", Severity::Drift));
        assert_eq!(key, AlertKey::new(&v3, &finding("accuracy", "threshold", Severity::Warning)));
        let others = [
            AlertKey::new(&ModelKey::new("fraud", "v4"), &finding("accuracy", "threshold", Severity::Drift)),
            AlertKey::new(&ModelKey::new("churn", "v3"), &finding("accuracy", "threshold", Severity::Drift)),
            AlertKey::new(&v3, &finding("f1", "threshold", Severity::Drift)),
            AlertKey::new(&v3, &finding("accuracy", "ks", Severity::Drift)),
        ];
        for other in &others {
            assert_ne!(&key, other);
            assert_ne!(key.dedup_key(), other.dedup_key());
            assert_ne!(key.fingerprint(), other.fingerprint());
        }
        let recovered = Event::new(
            v3.clone(),
            DateTime::<Utc>::UNIX_EPOCH,
            0,
            EventKind::Recovered(finding("accuracy", "threshold", Severity::Warning)),
        );
        assert_eq!(AlertKey::of(&recovered), Some(key));
    }

    #[test]
    fn a_jobs_id_is_the_same_for_the_same_record_and_only_for_it() {
        let key = ModelKey::new("fraud", "v4");
        let ts = "2026-01-01T00:00:00Z".parse().expect("a time");
        let id = RetrainRequest::job_id_for(&key, ts, 7);
        assert_eq!(id, RetrainRequest::job_id_for(&key, ts, 7));
        assert_ne!(id, RetrainRequest::job_id_for(&key, ts, 8));
        assert_ne!(id, RetrainRequest::job_id_for(&ModelKey::new("fraud", "v5"), ts, 7));
        assert_ne!(id, RetrainRequest::job_id_for(&ModelKey::new("fraudv", "4"), ts, 7));
        assert_ne!(id, RetrainRequest::job_id_for(&key, ts + chrono::Duration::seconds(1), 7));
        assert_eq!(id.get_version_num(), 8, "a custom (version 8) UUID");
    }

    #[test]
    fn dedup_keys_cannot_be_confused_by_slashes() {
        let f = finding("accuracy", "threshold", Severity::Drift);
        let a = AlertKey::new(&ModelKey::new("a/b", "c"), &f);
        let b = AlertKey::new(&ModelKey::new("a", "b/c"), &f);
        assert_eq!(a.dedup_key(), "model-monitor/a%2Fb/c/metrics.accuracy/threshold");
        assert_eq!(b.dedup_key(), "model-monitor/a/b%2Fc/metrics.accuracy/threshold");
        let c = AlertKey::new(&ModelKey::new("a%2Fb", "c"), &f);
        assert_eq!(c.dedup_key(), "model-monitor/a%252Fb/c/metrics.accuracy/threshold");
    }

    #[test]
    fn fingerprints_are_prometheus_label_set_fingerprints() {
        // FNV-1a 64 of "detector\xffthreshold\xffmodel\xfffraud\xff...", as
        // `labelSetToFingerprint` of prometheus/common computes it; the
        // empty input hashes to the FNV offset basis.
        let key = AlertKey {
            model: "fraud".into(),
            version: "v3".into(),
            signal: "metrics.accuracy".into(),
            detector: "threshold".into(),
        };
        assert_eq!(key.fingerprint(), "aabbf285b8a3ea7e");
        assert_eq!(key.fingerprint().len(), 16);
    }

    /// `realised` is left out of JSON when absent, so findings without it
    /// read as before; when present it sits beside the statistic.
    #[test]
    fn realised_appears_only_when_known() {
        let mut f = finding("accuracy", "threshold", Severity::Drift);
        let json = serde_json::to_value(&f).unwrap_or_default();
        let mut keys: Vec<&str> = json.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(keys, ["detector", "message", "severity", "signal", "statistic", "threshold"]);
        let old = r#"{"signal":"metrics.accuracy","detector":"threshold","severity":"drift","statistic":0.5,"threshold":0.9,"message":""}"#;
        assert_eq!(serde_json::from_str::<Finding>(old).ok(), Some(f.clone()));
        f.signal = Signal::Estimated("accuracy".into());
        f.realised = Some(0.912);
        let json = serde_json::to_string(&f).unwrap_or_default();
        assert!(json.contains(r#""realised":0.912"#), "{json}");
        assert_eq!(serde_json::from_str::<Finding>(&json).ok(), Some(f));
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = Event::new(
            ModelKey::new("m", "v1"),
            DateTime::<Utc>::UNIX_EPOCH,
            3,
            EventKind::JobStatus(JobUpdate {
                job_id: Uuid::nil(),
                at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(90),
                status: JobStatus::Dispatched,
                dispatcher: "command".into(),
                detail: None,
            }),
        );
        let json = serde_json::to_string(&event).unwrap_or_default();
        assert!(json.contains(r#""type":"job_status""#), "{json}");
        assert!(json.contains(r#""status":"dispatched""#), "{json}");
        assert!(json.contains(r#""at":"1970-01-01T00:01:30Z""#), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(back, event);
    }
}
