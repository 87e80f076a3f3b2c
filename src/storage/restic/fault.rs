//! rustic_core's errors in this tool's words: one line (its own `Display` is a multi-line
//! report that asks for bug reports), with what was being done in front.

use rustic_core::RusticError;

/// The error's message on one line.
pub fn brief(e: &RusticError) -> String {
    let line = e.display_log();
    let line = line.strip_prefix("Error: ").unwrap_or(&line);
    line.to_string()
}

/// `doing: message` as an `anyhow::Error`.
pub fn failed(doing: &str, e: Box<RusticError>) -> anyhow::Error {
    anyhow::anyhow!("{doing}: {}", brief(&e))
}
