//! Watch machine-learning models in production: detect degradation and drift,
//! alert people, and start retraining on its own.
//!
//! This is the facade over the model-monitor crates; it holds re-exports
//! only. Depend on it for everything, or on the layer crates you need:
//!
//! | layer | crate | re-exported as |
//! | --- | --- | --- |
//! | records, windows, events, extension traits | `monitor-core` | the crate root |
//! | detectors, retrain policies, synchronous monitor | `monitor-strategies` | [`strategies`] |
//! | retrain scheduler, webhooks, log and file observers | `monitor-observers` | [`observers`] |
//! | tokio engine, config, replay | `monitor-runtime` | [`runtime`] |
//!
//! Writing a new detector, observer or dispatcher crate? Depend on
//! `monitor-core` alone (`crates/monitor-zscore-detector` and
//! `crates/monitor-audit-observer` are worked examples).
//!
//! # Example
//!
//! ```
//! use model_monitor::prelude::*;
//! use model_monitor::testing::RecordingObserver;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_toml(r#"
//!     [[monitors]]
//!     signal = "metrics.accuracy"
//!     detector = { kind = "threshold", window = 2, min = 0.9 }
//!     [policy]
//!     min_samples = 2
//! "#)?;
//! let registry = model_monitor::observers::builtin_registry();
//! let ctx = BuildContext {
//!     detectors: builtin_detectors(),
//!     dispatchers: model_monitor::observers::builtin_dispatchers(),
//!     ..Default::default()
//! };
//! let recorder = RecordingObserver::new();
//! let engine = EngineBuilder::from_config(&config, &registry, &ctx)?
//!     .observer(Box::new(recorder.clone()))
//!     .spawn()?;
//! for acc in [0.80, 0.82] {
//!     let line = format!(r#"{{"model": "fraud", "metrics": {{"accuracy": {acc}}}}}"#);
//!     engine.sink().submit(Record::parse(&line, chrono::Utc::now())?).await?;
//! }
//! let summary = engine.shutdown().await;
//! assert_eq!((summary.monitor.findings, summary.monitor.retrain_requests), (1, 1));
//! assert_eq!(recorder.events()[0].type_name(), "finding");
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `strategies` (default): detectors, retrain policies and the synchronous monitor.
//! - `observers` (default): retrain scheduler and dispatchers, webhook alerting, log and file observers.
//! - `runtime` (default; implies the other two): the tokio engine, config loading and replay.
//! - `server` (implies `runtime`): the HTTP server of `model-monitor serve`,
//!   as `runtime::server::Server`, with axum and a Prometheus exporter.
//! - `parquet` (implies `runtime`): Parquet files as a source,
//!   `runtime::source::ParquetSource`, with the arrow-rs `parquet` crate.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use monitor_core::{
    Error, RecordError, Result, async_trait, correction, detector, detector_spec, dispatch, duration, error, event, fs,
    labels, observer, record, registry, shard, signal, sketch, source, stats, testing, window,
};

#[cfg(feature = "strategies")]
#[cfg_attr(docsrs, doc(cfg(feature = "strategies")))]
#[doc(inline)]
pub use monitor_strategies as strategies;

#[cfg(feature = "observers")]
#[cfg_attr(docsrs, doc(cfg(feature = "observers")))]
#[doc(inline)]
pub use monitor_observers as observers;

#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
#[doc(inline)]
pub use monitor_runtime as runtime;

/// The names most programs need, in one import.
pub mod prelude {
    #[doc(inline)]
    pub use monitor_core::detector::{Assessment, Detector, DriftStatus, Sample};
    #[doc(inline)]
    pub use monitor_core::detector_spec::{DetectorRegistry, DetectorSpec};
    #[doc(inline)]
    pub use monitor_core::dispatch::{DispatchOutcome, Dispatcher, DispatcherRegistry};
    #[doc(inline)]
    pub use monitor_core::event::{AlertKey, Event, EventKind, Finding, JobStatus, RetrainJob, Severity};
    #[doc(inline)]
    pub use monitor_core::observer::{Observer, ObserverRegistry};
    #[doc(inline)]
    pub use monitor_core::record::{ModelKey, Record, Value};
    #[doc(inline)]
    pub use monitor_core::registry::BuildContext;
    #[doc(inline)]
    pub use monitor_core::signal::{Signal, SignalValue};
    #[doc(inline)]
    pub use monitor_core::{Error, Result};
    #[cfg(feature = "runtime")]
    #[doc(inline)]
    pub use monitor_runtime::{Config, Engine, EngineBuilder, Sink, Summary};
    #[cfg(feature = "strategies")]
    #[doc(inline)]
    pub use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec, PolicyConfig, builtin_detectors};
}

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
mod readme {}
