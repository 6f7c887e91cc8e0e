//! Records, signals, windows, events and the extension traits of model-monitor.
//!
//! `monitor-core` is the bottom layer of model-monitor, a tool that watches
//! machine-learning models in production. It knows what a record is, how a
//! record becomes signals (`latency_ms`, `prediction`, `error`,
//! `features.<name>`, `metrics.<name>`, and the derived `quality.<name>`),
//! how windows of those signals are kept
//! in bounded memory, and what events come out. It has no async runtime and
//! no network code.
//!
//! **Extending model-monitor?** Depend on this crate, not on the facade: the
//! [`Detector`](detector::Detector), [`DetectorSpec`](detector_spec::DetectorSpec),
//! [`Observer`](observer::Observer) and [`Dispatcher`](dispatch::Dispatcher)
//! traits and their registries live here, so a new detector, observer or
//! dispatcher crate needs nothing else.
//!
//! # Example
//!
//! ```
//! use monitor_core::record::Record;
//! use monitor_core::window::{SlidingWindow, Statistic};
//!
//! let now = chrono::Utc::now();
//! let mut latency = SlidingWindow::new(100).with_sketch();
//! for line in [
//!     r#"{"model": "fraud", "latency_ms": 12.5}"#,
//!     r#"{"model": "fraud", "latency_ms": 30.0}"#,
//! ] {
//!     let record = Record::parse(line, now)?;
//!     if let Some(ms) = record.latency_ms {
//!         latency.push(ms);
//!     }
//! }
//! assert_eq!(latency.mean(), Some(21.25));
//! assert!(latency.statistic(Statistic::P99).is_some());
//!
//! // Bad input gets an error that names the field and the value.
//! let err = Record::parse(r#"{"model": "fraud", "latency_ms": -1}"#, now).unwrap_err();
//! assert_eq!(err.to_string(), "field `latency_ms`: must not be negative (got -1)");
//! # Ok::<(), monitor_core::RecordError>(())
//! ```
//!
//! # Feature flags
//!
//! This crate has no optional features.

#![deny(missing_docs)]

pub mod columnar;
pub mod comparison;
pub mod correction;
pub mod detector;
pub mod detector_spec;
pub mod dispatch;
pub mod duration;
pub mod error;
pub mod event;
pub mod fs;
pub mod labels;
pub mod observer;
pub mod outbox;
pub mod record;
pub mod registry;
pub mod shard;
pub mod signal;
pub mod sketch;
pub mod source;
pub mod stats;
pub mod testing;
pub mod window;

pub use async_trait::async_trait;
pub use error::{Error, RecordError, Result};
