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

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::DecimalBytes;

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
