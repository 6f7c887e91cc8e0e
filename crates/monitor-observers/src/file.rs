//! The `file` observer: events as NDJSON, one JSON object a line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use monitor_core::event::Event;
use monitor_core::fs;
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
/// config's directory, created with its parents and appended to. It must be
/// a regular file (or not exist yet): a FIFO would block the observer for
/// ever and a device would swallow the events, so both are refused.
pub struct NdjsonObserver {
    out: Box<dyn Write + Send>,
    target: String,
}

impl std::fmt::Debug for NdjsonObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonObserver").field("target", &self.target).finish_non_exhaustive()
    }
}

/// The file in errors.
const WHAT: &str = "event file";

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
    ///
    /// Anything but a regular file is refused: checked before opening, and
    /// again on what was opened (without blocking: a FIFO is opened with
    /// `O_NONBLOCK`, so that one created in between cannot hang it).
    pub fn append(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        fs::check_regular_or_absent(path, WHAT)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
        }
        let file = options.open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        // What was opened is what is checked: a FIFO or a device swapped in
        // after the first check is refused here.
        let meta = file.metadata().map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(Error::io(
                format!("{WHAT} {}", path.display()),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "is not a regular file; a regular file is needed",
                ),
            ));
        }
        Ok(Self { out: Box::new(file), target: path.display().to_string() })
    }

    /// Builds it from its config table (`path`, required). A `path` that is
    /// not a regular file (a FIFO, a device, a directory) is a config error
    /// at `path`.
    pub fn from_config(config: Json, ctx: &BuildContext) -> Result<Self> {
        let FileConfig { path } = parse_config(config)?;
        if path.trim().is_empty() {
            return Err(Error::config("path", "must not be empty"));
        }
        let path: PathBuf = ctx.resolve(&path);
        fs::check_regular_or_absent(&path, WHAT).map_err(|e| Error::config("path", e.to_string()))?;
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
