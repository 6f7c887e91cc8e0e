//! The tokio engine of model-monitor: sink, shards, event bus, config and replay.
//!
//! Records go into a cloneable [`Sink`]. Each model is owned by one shard task
//! (no locks on the hot path), which runs the synchronous
//! [`Monitor`](monitor_strategies::Monitor) and sends the events it produces
//! to a bus. The bus hands every event to each observer through that
//! observer's own bounded queue and task, so a slow webhook never delays
//! another observer or ingestion. [`Engine::shutdown`] drains everything
//! already accepted, lets observers finish their work (a running retraining
//! job, say) and returns a [`Summary`].
//!
//! # Example
//!
//! ```
//! use monitor_core::testing::RecordingObserver;
//! use monitor_runtime::{Config, EngineBuilder};
//! use monitor_core::observer::ObserverRegistry;
//! use monitor_core::registry::BuildContext;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_toml(r#"
//!     [[monitors]]
//!     signal = "latency_ms"
//!     detector = { kind = "threshold", statistic = "mean", window = 3, max = 100.0 }
//!     [policy]
//!     min_samples = 3
//! "#)?;
//! // The detector kinds config may name: the built-in ones.
//! let ctx = BuildContext { detectors: monitor_strategies::builtin_detectors(), ..Default::default() };
//! let recorder = RecordingObserver::new();
//! let engine = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &ctx)?
//!     .observer(Box::new(recorder.clone()))
//!     .spawn()?;
//! let sink = engine.sink();
//! for ms in [250.0, 300.0, 280.0] {
//!     let record = monitor_core::record::Record::parse(
//!         &format!(r#"{{"model": "search", "latency_ms": {ms}}}"#), chrono::Utc::now())?;
//!     sink.submit(record).await?;
//! }
//! let summary = engine.shutdown().await;
//! assert_eq!((summary.monitor.records, summary.monitor.findings, summary.monitor.retrain_requests), (3, 1, 1));
//! assert_eq!(recorder.events().len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Feature flags
//!
//! - `server`: the HTTP server of `model-monitor serve` ([`server::Server`]),
//!   with axum and a Prometheus exporter. Off by default; `[server]` config
//!   parses and validates either way.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
pub mod engine;
pub mod journal;
pub mod server;
pub mod source;

pub use config::{Config, EngineConfig, ModelConfig, MonitorConfig, Overflow};
pub use engine::{
    Engine, EngineBuilder, Health, Inspector, ObserverHealth, ObserverSummary, Overview, Receipt, Refused,
    RefusedBatch, RejectReason, RunningEngine, Sink, Summary,
};
pub use server::ServerConfig;
pub use source::{LineSource, PumpOptions, SourceReport, pump};
