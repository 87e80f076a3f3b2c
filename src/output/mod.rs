//! Everything the tool writes to stdout and stderr: data on stdout (`data_*`, tables), what
//! people see on stderr (messages, warnings, progress, summaries).
//! stdout is data only: `save -o -` streams the archive there, listings print there.
//! The crate denies `print!`/`eprint!` everywhere: writes go through the functions here.

mod progress;
mod stdout;
pub mod table;

pub use progress::{Measure, Progress};
pub use stdout::{data, data_json, data_line, is_stdout_closed, StdoutClosed};
pub use table::{Column, Table};

use std::io::{self, Write};

use indicatif::DecimalBytes;

/// How chatty stderr is in this run (`-q`, `-D`): a value handed to whatever reports, not a
/// process-wide setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Printer {
    quiet: bool,
    debug: bool,
}

impl Printer {
    pub fn new(quiet: bool, debug: bool) -> Printer {
        Printer { quiet, debug }
    }

    /// `-q`: no summaries, no progress bars.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A summary line (silenced by `-q`).
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            message(msg);
        }
    }

    /// Whether debug lines are shown.
    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// A debug line (shown with `-D` or `--log-level debug`).
    pub fn debug(&self, msg: &str) {
        if self.debug {
            message(&format!("debug: {msg}"));
        }
    }

    /// A progress bar over `counters`, drawn only on a terminal and without `-q`.
    pub fn progress(
        &self,
        label: &str,
        counters: std::sync::Arc<crate::archive::Counters>,
        total: Option<u64>,
        measure: Measure,
    ) -> Progress {
        Progress::start(!self.quiet, label, counters, total, measure)
    }
}

/// A line on stderr, always shown: errors, the interruption notice, what `--dry-run` shows.
/// Secret-looking values are hidden first (`password=<redacted>`), whoever wrote the text: the
/// engine's error messages echo a share's mount options.
pub fn message(msg: &str) {
    let msg = crate::redact::text(msg);
    // One write per line, so lines from several threads never mix. A stderr nobody reads any
    // more has no one left to tell: the error is dropped rather than panicking.
    let _ = io::stderr().lock().write_all(format!("{msg}\n").as_bytes());
}

/// A warning (always shown).
pub fn warn(msg: &str) {
    message(&format!("warning: {msg}"));
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

/// An age for people: `0m`, `3h 12m`, `2d 4h` (minutes are enough for backups).
pub fn age(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
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
}
