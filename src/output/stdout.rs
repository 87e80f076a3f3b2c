//! Data on stdout (listings, JSON, ids), and what happens when nobody reads it any more.

use std::fmt;
use std::io::{self, Write};

use anyhow::{Context as _, Result};
use serde::Serialize;

/// Whoever read stdout has gone (`ls | head -1`): the command stops, quietly and successfully,
/// since everything that was wanted has been read.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether `err` is, or was caused by, a closed stdout.
pub fn is_stdout_closed(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<StdoutClosed>())
}

/// Writes `text` to stdout as it is.
pub fn data(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    // Flushed at once: a failure belongs to this write, not to the process's exit.
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                anyhow::Error::new(StdoutClosed)
            } else {
                anyhow::Error::new(e).context("writing to stdout")
            }
        })
}

/// Writes `text` and a newline to stdout.
pub fn data_line(text: &str) -> Result<()> {
    data(&format!("{text}\n"))
}

/// Writes `value` to stdout as pretty-printed JSON and a newline.
pub fn data_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    data_line(&serde_json::to_string_pretty(value).context("encoding JSON")?)
}
