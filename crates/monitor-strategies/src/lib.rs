//! Detectors, retrain policies and the synchronous monitor of model-monitor.
//!
//! This crate turns records into findings. It holds the detectors
//! ([`detectors`]; the streaming ones also at the crate root: [`Adwin`],
//! [`PageHinkley`], [`Ddm`], [`Eddm`], [`HddmA`], [`HddmW`], [`Kswin`],
//! [`Cusum`], [`Ewma`]), each with a config type that implements
//! `monitor_core`'s `DetectorSpec`; [`builtin_detectors`], the registry
//! through which config names them by kind (put it in
//! `BuildContext::detectors`, next to kinds of your own); the two-sample
//! statistics and effect sizes behind them ([`stats`], SciPy-compatible);
//! generators of test streams ([`synth`]); the retrain policies
//! ([`policy`]); and [`Monitor`], which keeps one detector per (model,
//! version, signal), derives the data-quality signals (`quality.*`), decides
//! the p-values of a model version as one family, turns verdicts into
//! `finding` and `recovered` events (with flap damping), and asks for
//! retraining when a model's policy says so. [`performance`] computes the
//! signals of each window: performance from labels (`perf.*`), estimated
//! without them (`estimated.*`, CBPE) and multivariate drift
//! (`multivariate.reconstruction_error`). It is synchronous and has no async
//! runtime, so a Rust inference service can embed it directly with
//! `monitor-core`.
//!
//! # Example
//!
//! ```
//! use monitor_core::event::EventKind;
//! use monitor_core::record::Record;
//! use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec};
//! use monitor_strategies::detectors::ThresholdConfig;
//! use monitor_core::window::Statistic;
//!
//! // "p99 latency above 250 ms over tumbling windows of 50 requests"
//! let sla = ThresholdConfig { statistic: Statistic::P99, window: 50.into(), max: Some(250.0), ..Default::default() };
//! let plan = MonitorPlan {
//!     monitors: vec![MonitorSpec::new("latency_ms", sla)?],
//!     ..Default::default()
//! };
//! let mut monitor = Monitor::new(plan)?;
//! let mut events = Vec::new();
//! for seq in 0..100 {
//!     let ms = if seq < 50 { 20.0 } else { 400.0 };
//!     let record = Record::parse(&format!(r#"{{"model": "search", "latency_ms": {ms}}}"#), chrono::Utc::now())?;
//!     monitor.process(seq, &record, &mut events)?;
//! }
//! let EventKind::Finding(finding) = &events[0].kind else { panic!() };
//! assert_eq!((finding.signal.to_string(), events[0].seq), ("latency_ms".to_string(), 99));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! This crate has no optional features.

#![deny(missing_docs)]

pub mod detectors;
pub mod monitor;
pub mod pattern;
pub mod performance;
pub mod policy;
pub mod snapshot;
pub mod stats;
pub mod synth;

pub use detectors::{
    Adwin, Cusum, Ddm, Eddm, Ewma, HddmA, HddmW, Kswin, PageHinkley, builtin_detectors, register_builtin_detectors,
};
pub use monitor::{
    DetectorState, EffectiveAlpha, Limits, Monitor, MonitorPlan, MonitorSpec, MonitorStats, VersionDetail,
    VersionOverview, WindowFeed, WindowPoint,
};
pub use monitor_core::detector::DriftStatus;
pub use pattern::SignalPattern;
pub use policy::{PolicyConfig, Trigger};
pub use snapshot::MonitorSnapshot;
