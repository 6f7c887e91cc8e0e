//! Reading and writing files named in config, safely: only regular files,
//! and never more than a stated size.
//!
//! A config file, a reference file or an observer's output path can name
//! anything: `/dev/zero` would be read forever, a FIFO would block forever.
//! These helpers refuse what is not a regular file, before opening it, and
//! read at most a bounded number of bytes.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads the regular file at `path` as UTF-8, refusing anything else (a
/// device, a FIFO, a directory) and anything longer than `max_bytes`.
/// `what` names the file in errors ("config", "reference file").
pub fn read_regular_file(path: &Path, max_bytes: u64, what: &str) -> Result<String> {
    let context = || format!("reading {what} {}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| Error::io(context(), e))?;
    check_regular(path, &meta, what)?;
    if meta.len() > max_bytes {
        return Err(too_long(path, what, max_bytes));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow after the check: read one byte past the limit to tell.
    file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(|e| Error::io(context(), e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_long(path, what, max_bytes));
    }
    String::from_utf8(bytes).map_err(|e| {
        Error::io(
            context(),
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (bad byte at offset {})", e.utf8_error().valid_up_to()),
            ),
        )
    })
}

/// Checks that `path`, when it exists, is a regular file: where an output
/// file is to be created or appended to, a FIFO would block and a device
/// would swallow the output.
pub fn check_regular_or_absent(path: &Path, what: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) => check_regular(path, &meta, what),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("checking {what} {}", path.display()), e)),
    }
}

fn check_regular(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    let kind = if meta.is_dir() { "a directory" } else { "not a regular file (a device, a FIFO or a socket)" };
    Err(Error::io(
        format!("{what} {}", path.display()),
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("is {kind}; a regular file is needed")),
    ))
}

fn too_long(path: &Path, what: &str, max_bytes: u64) -> Error {
    Error::io(
        format!("reading {what} {}", path.display()),
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("longer than the limit of {max_bytes} bytes")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_before_reading() {
        let e = read_regular_file(Path::new("/dev/zero"), 1 << 20, "config").unwrap_err().to_string();
        assert_eq!(
            e,
            "config /dev/zero: is not a regular file (a device, a FIFO or a socket); a regular file is needed"
        );
        let e = read_regular_file(Path::new("/"), 1 << 20, "config").unwrap_err().to_string();
        assert!(e.ends_with("is a directory; a regular file is needed"), "{e}");
        let e = check_regular_or_absent(Path::new("/dev/null"), "output file").unwrap_err().to_string();
        assert!(e.starts_with("output file /dev/null: is not a regular file"), "{e}");
        assert!(check_regular_or_absent(Path::new("/nonexistent/x"), "output file").is_ok());
    }

    #[test]
    fn files_past_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        std::fs::write(&path, "x".repeat(100)).unwrap();
        assert_eq!(read_regular_file(&path, 100, "config").unwrap().len(), 100);
        let e = read_regular_file(&path, 99, "config").unwrap_err().to_string();
        assert!(e.ends_with("longer than the limit of 99 bytes"), "{e}");
    }
}
