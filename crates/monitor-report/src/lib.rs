//! Self-contained HTML reports and dashboards of model-monitor.
//!
//! A [`Collector`] takes every window verdict of the monitors (through a
//! [`WindowFeed`](monitor_strategies::WindowFeed) per shard) and every
//! retrain job (through an [`Observer`](monitor_core::observer::Observer)),
//! and keeps a bounded summary: per model version and detector, at most a
//! few hundred window summaries, its findings and recoveries, and the
//! reference against the current window at its first findings. The
//! [`html`] module draws it as one HTML page with inline SVG charts: no
//! script, no style sheet, font or image fetched from anywhere.
//!
//! `model-monitor replay --report` writes one; `model-monitor serve`
//! draws the same charts on its dashboard.
//!
//! # Example
//!
//! ```
//! use monitor_core::record::Record;
//! use monitor_report::{Collector, Limits, PageMeta, report_page};
//! use monitor_strategies::detectors::ThresholdConfig;
//! use monitor_strategies::{Monitor, MonitorPlan, MonitorSpec};
//!
//! let latency = ThresholdConfig { window: 2.into(), max: Some(100.0), ..Default::default() };
//! let plan = MonitorPlan { monitors: vec![MonitorSpec::new("latency_ms", latency)?], ..Default::default() };
//! let collector = Collector::new(&plan, Limits::REPLAY);
//! let mut monitor = Monitor::new(plan)?;
//! monitor.set_window_feed(collector.feed());
//! let mut events = Vec::new();
//! for (seq, ms) in [20, 30, 250, 300].into_iter().enumerate() {
//!     let line = format!(r#"{{"model": "search", "ts": "2026-11-23T08:00:0{seq}Z", "latency_ms": {ms}}}"#);
//!     monitor.process(seq as u64, &Record::parse(&line, chrono::Utc::now())?, &mut events)?;
//! }
//! let page = report_page(&collector.report(), &PageMeta { title: "latency".into(), ..Default::default() });
//! assert!(page.contains(r#"class="marker drift""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! This crate has no optional features.

#![deny(missing_docs)]

mod charts;
mod collect;
pub mod html;
mod labels;
pub mod model;
pub mod svg;

pub use collect::{Collector, MonitorInfo, Report};
pub use html::{PageMeta, index_page, model_page, report_page};
pub use model::{Health, Limits, Retention};
