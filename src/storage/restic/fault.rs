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

/// A message that may hold rustic_core's multi-line report (a check finding wraps one) cut to
/// what it says: the report's `Message:` line, else the first line.
pub fn one_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim);
    let first = lines.next().unwrap_or_default().to_string();
    let mut rest = text.lines().map(str::trim);
    if rest.any(|l| l == "Message:") {
        if let Some(message) = rest.find(|l| !l.is_empty()) {
            let lead = first
                .split("`rustic_core` experienced an error")
                .next()
                .unwrap_or_default()
                .trim_end_matches([':', ' ']);
            return if lead.is_empty() {
                message.to_string()
            } else {
                format!("{lead}: {message}")
            };
        }
    }
    first
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_become_one_line() {
        let report = "pack 1234: `rustic_core` experienced an error related to `cryptographic operations`.\n\nMessage:\nData decryption failed, MAC check failed.\n\nFor more information...";
        assert_eq!(
            super::one_line(report),
            "pack 1234: Data decryption failed, MAC check failed."
        );
        assert_eq!(super::one_line("plain\nsecond"), "plain");
    }
}
