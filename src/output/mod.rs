//! Everything the tool writes to stdout and stderr: data on stdout (`data_*`, tables), what
//! people see on stderr (messages, warnings, progress, summaries); and atomic output files.
//! stdout is data only: `save -o -` streams the archive there, listings print there.
//! The crate denies `print!`/`eprint!` everywhere: writes go through the functions here.

mod progress;
mod stdout;
pub mod table;

pub use progress::{Measure, Progress};
pub use stdout::{data, data_json, data_line, is_stdout_closed, StdoutClosed};
pub use table::{Column, Table};

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use indicatif::DecimalBytes;

use crate::error::{Kind, UserError};

static QUIET: AtomicBool = AtomicBool::new(false);
static DEBUG: AtomicBool = AtomicBool::new(false);

/// Sets how chatty stderr is; called once from the settings.
pub fn configure(quiet: bool, debug: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    DEBUG.store(debug, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A line on stderr, always shown: errors, the interruption notice, what `--dry-run` shows.
pub fn message(msg: &str) {
    // One write per line, so lines from several threads never mix. A stderr nobody reads any
    // more has no one left to tell: the error is dropped rather than panicking.
    let _ = io::stderr().lock().write_all(format!("{msg}\n").as_bytes());
}

/// A summary line (silenced by `-q`).
pub fn info(msg: &str) {
    if !quiet() {
        message(msg);
    }
}

/// A warning (always shown).
pub fn warn(msg: &str) {
    message(&format!("warning: {msg}"));
}

/// A debug line (shown with `-D` or `--log-level debug`).
pub fn debug(msg: &str) {
    if DEBUG.load(Ordering::Relaxed) {
        message(&format!("debug: {msg}"));
    }
}

/// `54261` as `54,261`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes for people: `431 MB`.
pub fn bytes(n: u64) -> String {
    DecimalBytes(n).to_string()
}

/// Where a save writes: a file written under a temporary name and renamed into place once
/// complete and synced, or stdout.
pub enum Sink {
    File {
        tmp: BufWriter<tempfile::NamedTempFile>,
        path: PathBuf,
        force: bool,
    },
    Stdout(BufWriter<io::Stdout>),
}

impl Sink {
    /// Opens `path` for an atomic write; refuses an existing file unless `force`.
    pub fn file(path: &Path, force: bool) -> Result<Sink> {
        if path.exists() && !force {
            return Err(UserError::new(
                Kind::Refused,
                format!("{} already exists", path.display()),
            )
            .hint("use --force to overwrite it, or -o to choose another name")
            .into());
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A dot-name and a `.partial` suffix: an interrupted save never looks like a backup.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        Ok(Sink::File {
            tmp: BufWriter::with_capacity(1 << 20, tmp),
            path: path.to_path_buf(),
            force,
        })
    }

    /// Standard output, unless it is a terminal.
    pub fn stdout() -> Result<Sink> {
        if io::stdout().is_terminal() {
            return Err(
                UserError::new(Kind::Usage, "refusing to write an archive to a terminal")
                    .hint("redirect stdout to a file or a pipe, or drop `-o -`")
                    .into(),
            );
        }
        Ok(Sink::Stdout(BufWriter::with_capacity(
            1 << 20,
            io::stdout(),
        )))
    }

    /// Flushes, syncs and moves the file into place. Returns the final size.
    pub fn commit(self) -> Result<Option<u64>> {
        match self {
            Sink::Stdout(mut w) => {
                w.flush().context("writing to stdout")?;
                Ok(None)
            }
            Sink::File { tmp, path, force } => {
                let tmp = tmp.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all().context("syncing the archive")?;
                let size = tmp.as_file().metadata()?.len();
                if force {
                    tmp.persist(&path)
                } else {
                    tmp.persist_noclobber(&path)
                }
                .map_err(|e| e.error)
                .with_context(|| format!("moving the archive into place at {}", path.display()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Make the rename itself durable.
                    if let Ok(d) = File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                Ok(Some(size))
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File { tmp, .. } => tmp.write(buf),
            Sink::Stdout(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::File { tmp, .. } => tmp.write_all(buf),
            Sink::Stdout(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File { tmp, .. } => tmp.flush(),
            Sink::Stdout(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(54261), "54,261");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn sink_is_atomic_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.zst");
        let mut sink = Sink::file(&path, false).unwrap();
        sink.write_all(b"data").unwrap();
        assert!(!path.exists(), "nothing at the final name before commit");
        drop(sink);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "dropped = removed"
        );
        let mut sink = Sink::file(&path, false).unwrap();
        sink.write_all(b"data").unwrap();
        assert_eq!(sink.commit().unwrap(), Some(4));
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert!(Sink::file(&path, false).is_err());
        let mut sink = Sink::file(&path, true).unwrap();
        sink.write_all(b"new").unwrap();
        sink.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
