//! The `file` observer: events as NDJSON, one JSON object a line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use monitor_core::event::Event;
use monitor_core::observer::Observer;
use monitor_core::registry::{BuildContext, parse_config};
use monitor_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value as Json;

/// Writes each event as one JSON line to any writer, flushing after each, so
/// that a reader sees events as they happen.
///
/// ```
/// # use monitor_observers::file::NdjsonObserver;
/// let stdout = NdjsonObserver::new(Box::new(std::io::stdout()));
/// # drop(stdout);
/// ```
///
/// Config (`kind = "file"`): `path = "events.ndjson"`, resolved against the
/// config's directory, created with its parents and appended to.
pub struct NdjsonObserver {
    out: Box<dyn Write + Send>,
    target: String,
}

impl std::fmt::Debug for NdjsonObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonObserver").field("target", &self.target).finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    path: String,
}

impl NdjsonObserver {
    /// Writes to `out` (stdout, a file, a buffer).
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out, target: "writer".to_owned() }
    }

    /// Appends to the file at `path`, creating it and its parent directories.
    pub fn append(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(Self { out: Box::new(file), target: path.display().to_string() })
    }

    /// Builds it from its config table (`path`, required).
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let FileConfig { path } = parse_config(config)?;
        if path.trim().is_empty() {
            return Err(Error::config("path", "must not be empty"));
        }
        let path: PathBuf = ctx.resolve(&path);
        Self::append(path)
    }
}

#[async_trait]
impl Observer for NdjsonObserver {
    fn name(&self) -> &str {
        "file"
    }

    async fn on_event(&mut self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event).map_err(|e| Error::observer("file", format!("event to JSON: {e}")))?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(format!("writing an event to {}", self.target), e))
    }

    async fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(format!("flushing {}", self.target), e))
    }
}
