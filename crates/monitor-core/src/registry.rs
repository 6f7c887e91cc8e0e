//! One registry for every extension point: a factory per `kind`, so that
//! `kind = "..."` in config can name an observer, a detector or a dispatcher
//! from any crate.
//!
//! A factory takes the component's config table (without `kind`) and a
//! [`BuildContext`], checks it, and returns the built component or a config
//! error that names the key at fault.
//!
//! ```
//! use monitor_core::registry::{BuildContext, Component, Registry, parse_config};
//!
//! /// What the registry builds.
//! #[derive(Debug)]
//! struct Greeter(String);
//! impl Component for Greeter {
//!     const WHAT: &'static str = "greeter";
//! }
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Greeting { name: String }
//!
//! let mut registry: Registry<Greeter> = Registry::new();
//! registry.register("hello", |config, _ctx| {
//!     let g: Greeting = parse_config(config)?;
//!     Ok(Greeter(format!("hello, {}", g.name)))
//! });
//! let spec = serde_json::json!({"kind": "hello", "name": "ops"});
//! assert_eq!(registry.build("greeters[0]", &spec, &BuildContext::default())?.0, "hello, ops");
//!
//! let bad = serde_json::json!({"kind": "hello", "nmae": "ops"});
//! let err = registry.build("greeters[0]", &bad, &BuildContext::default()).unwrap_err();
//! assert!(err.to_string().starts_with("config error at `greeters[0].nmae`: unknown field `nmae`"), "{err}");
//! # Ok::<(), monitor_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::detector_spec::DetectorRegistry;
use crate::dispatch::DispatcherRegistry;
use crate::error::{Error, Result};

/// What factories may need besides their own config table.
///
/// Build it with `..Default::default()` for the fields you do not set: more
/// may come.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// The directory that relative paths in config are resolved against
    /// (the config file's directory).
    pub base_dir: PathBuf,
    /// Where the engine keeps its state, when it has one.
    pub state_dir: Option<PathBuf>,
    /// The detector kinds `[[monitors]]` entries may name. Empty by default,
    /// since this crate has no detectors: fill it with
    /// `monitor_strategies::builtin_detectors()` and add your own kinds with
    /// [`DetectorRegistry::register_config`].
    pub detectors: DetectorRegistry,
    /// The dispatchers that a retrain observer's `dispatch = { kind = ... }`
    /// may name. Empty by default: fill it with the built-in ones
    /// (`monitor_observers::builtin_dispatchers()`) and any of your own,
    /// or a config with a retrain observer fails to build, naming
    /// `observers[N].dispatch.kind`.
    pub dispatchers: DispatcherRegistry,
}

impl BuildContext {
    /// Resolves a path from config against [`BuildContext::base_dir`].
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() { p } else { self.base_dir.join(p) }
    }
}

/// Something a [`Registry`] builds: an observer, a detector, a dispatcher.
pub trait Component {
    /// The word for it in error messages (`observer`, `detector`).
    const WHAT: &'static str;
}

/// Builds one component from its config table (without the `kind` key).
pub type Factory<T> = dyn Fn(Json, &BuildContext) -> Result<T> + Send + Sync;

/// Factories keyed by `kind`, for one extension point (`T` is what they
/// build: `Box<dyn Observer>`, say).
pub struct Registry<T> {
    factories: BTreeMap<String, Arc<Factory<T>>>,
}

impl<T> Clone for Registry<T> {
    fn clone(&self) -> Self {
        Self { factories: self.factories.clone() }
    }
}

impl<T: Component> Default for Registry<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Component> fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("of", &T::WHAT).field("kinds", &self.factories.keys()).finish()
    }
}

impl<T: Component> Registry<T> {
    /// An empty registry.
    pub fn new() -> Self {
        Self { factories: BTreeMap::new() }
    }

    /// Registers `factory` under `kind`, replacing any earlier one.
    pub fn register<F>(&mut self, kind: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(Json, &BuildContext) -> Result<T> + Send + Sync + 'static,
    {
        self.factories.insert(kind.into(), Arc::new(factory));
        self
    }

    /// Whether `kind` is registered.
    pub fn contains(&self, kind: &str) -> bool {
        self.factories.contains_key(kind)
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds what `spec` describes. `spec` is a table with a `kind`; `key`
    /// (for example `observers[2]`) locates it in error messages, which
    /// carry the full dotted key (`observers[2].url`).
    pub fn build(&self, key: &str, spec: &Json, ctx: &BuildContext) -> Result<T> {
        let Json::Object(table) = spec else {
            return Err(Error::config(key, "expected a table with a `kind`"));
        };
        let mut table = table.clone();
        let kind = match table.remove("kind") {
            Some(Json::String(kind)) => kind,
            Some(other) => {
                return Err(Error::config(format!("{key}.kind"), format!("expected a string, got {other}")));
            }
            None => return Err(Error::config(format!("{key}.kind"), "is required")),
        };
        let factory = self.factories.get(&kind).ok_or_else(|| {
            let known = self.kinds().collect::<Vec<_>>().join(", ");
            let known =
                if known.is_empty() { "none are registered".to_owned() } else { format!("known kinds: {known}") };
            Error::config(format!("{key}.kind"), format!("unknown {} kind `{kind}`; {known}", T::WHAT))
        })?;
        factory(Json::Object(table), ctx).map_err(|e| prefix_key(key, e))
    }
}

/// Puts `key` in front of a config error's own key.
pub fn prefix_key(key: &str, e: Error) -> Error {
    match e {
        Error::Config { key: inner, message } if inner.is_empty() => Error::config(key, message),
        Error::Config { key: inner, message } if key.is_empty() => Error::config(inner, message),
        Error::Config { key: inner, message } if inner.starts_with('[') => {
            Error::config(format!("{key}{inner}"), message)
        }
        Error::Config { key: inner, message } => Error::config(format!("{key}.{inner}"), message),
        other => other,
    }
}

/// Deserialises a component's config table. The error names the dotted key
/// at fault (`dispatch.timeout`), relative to the table, and serde's message
/// (`unknown field `x`, expected one of ...`).
pub fn parse_config<T: serde::de::DeserializeOwned>(config: Json) -> Result<T> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        Error::config(key, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Num(u8);
    impl Component for Num {
        const WHAT: &'static str = "observer";
    }

    #[test]
    fn unknown_kinds_list_the_known_ones() {
        let mut registry: Registry<Num> = Registry::new();
        registry.register("nop", |_, _| Ok(Num(0)));
        registry.register("log", |_, _| Ok(Num(1)));
        let spec = serde_json::json!({"kind": "ticket"});
        let err = registry.build("observers[0]", &spec, &BuildContext::default()).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("config error at `observers[0].kind`: unknown observer kind `ticket`; known kinds: log, nop")
        );
        let spec = serde_json::json!({"kind": "log"});
        assert_eq!(registry.build("observers[0]", &spec, &BuildContext::default()).ok().map(|n| n.0), Some(1));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        retry: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        attempts: u32,
    }

    #[test]
    fn parse_errors_name_the_nested_key() {
        let e = parse_config::<Outer>(serde_json::json!({"retry": {"attempts": "x"}})).unwrap_err();
        assert!(e.to_string().starts_with("config error at `retry.attempts`: invalid type"), "{e}");
        let e = parse_config::<Outer>(serde_json::json!({"retry": {"attempts": 1, "tries": 2}})).unwrap_err();
        assert!(e.to_string().starts_with("config error at `retry.tries`: unknown field `tries`"), "{e}");
        let e = parse_config::<Outer>(serde_json::json!({"retyr": {}})).unwrap_err();
        assert!(e.to_string().starts_with("config error at `retyr`: unknown field `retyr`"), "{e}");
    }

    #[test]
    fn prefixes_join_keys_and_indices() {
        let e = prefix_key("monitors[0]", Error::config("detector.window", "bad"));
        assert_eq!(e.to_string(), "config error at `monitors[0].detector.window`: bad");
        let e = prefix_key("observers", Error::config("[2].url", "bad"));
        assert_eq!(e.to_string(), "config error at `observers[2].url`: bad");
    }
}
