//! Errors users see, and the exit codes. `EXIT_CODES` below is the one place the codes are
//! defined: `Kind::exit_code` reads it, `--help` is generated from it, and a test checks the
//! README's table against it.

use std::fmt;

/// Classes of failure, each with its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failure,
    Usage,
    Daemon,
    NotFound,
    Refused,
    Damaged,
    Differs,
    Stale,
    /// An encrypted archive without a key, or with keys that do not open it.
    Key,
    /// Another run holds the lock of a volume (`--no-wait`, or `--wait` ran out).
    Locked,
    /// The engine took a restore, and the volume read back does not hold it.
    Unconfirmed,
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        EXIT_CODES
            .iter()
            .find(|e| e.kind == Some(self))
            .map(|e| e.code)
            .expect("every kind is in EXIT_CODES")
    }
}

/// One exit code: the kind of failure it reports (none for success), and what it means, said
/// briefly (the help) and fully (the README).
#[derive(Debug)]
pub struct ExitCode {
    pub kind: Option<Kind>,
    pub code: i32,
    pub brief: &'static str,
    pub meaning: &'static str,
}

const fn code(
    kind: Option<Kind>,
    code: i32,
    brief: &'static str,
    meaning: &'static str,
) -> ExitCode {
    ExitCode {
        kind,
        code,
        brief,
        meaning,
    }
}

/// Every exit code, in order.
pub const EXIT_CODES: &[ExitCode] = &[
    code(None, 0, "ok", "success"),
    code(Some(Kind::Failure), 1, "error", "any other failure"),
    code(Some(Kind::Usage), 2, "usage", "usage error"),
    code(
        Some(Kind::Daemon),
        3,
        "docker daemon unreachable",
        "the Docker daemon cannot be reached (or stopped answering during the run), or the context \
         cannot be resolved",
    ),
    code(
        Some(Kind::NotFound),
        4,
        "not found",
        "not found: a volume, an archive file or object, a bucket, a schedule",
    ),
    code(
        Some(Kind::Refused),
        5,
        "refused (would overwrite or lose data)",
        "refused: it would overwrite or lose data (an existing file, a non-empty volume, a \
         running container)",
    ),
    code(
        Some(Kind::Damaged),
        6,
        "damaged archive",
        "the archive is damaged, truncated, foreign, or does not match its manifest",
    ),
    code(
        Some(Kind::Differs),
        7,
        "archive differs from the volume (verify)",
        "`verify`: the archive is sound but differs from the volume (or from its test restore)",
    ),
    code(
        Some(Kind::Stale),
        8,
        "backup older than the RPO or restore over the RTO (status)",
        "`status`: a volume's newest backup is older than the RPO, or it has none; with --rto, its last measured test restore took longer, or it has none",
    ),
    code(
        Some(Kind::Key),
        9,
        "encrypted archive without a key or with a wrong key",
        "the archive is encrypted and no key was given, or none of the keys given opens it",
    ),
    code(
        Some(Kind::Locked),
        10,
        "volume locked by another run",
        "another run holds the lock of a volume (`--no-wait`, or the `--wait` time ran out)",
    ),
    code(
        Some(Kind::Unconfirmed),
        11,
        "restore not found in the volume",
        "the engine accepted a restore, but the volume read back does not hold it (or differs \
         from the archive, with `restore --verify`); the target is left as it was where possible",
    ),
    code(
        Some(Kind::Interrupted),
        130,
        "interrupted",
        "interrupted (Ctrl-C, SIGTERM, SIGHUP, or the docker CLI cancelled the plugin)",
    ),
];

/// The exit codes for `--help`: `Exit codes: 0 ok, 1 error, ..., 130 interrupted.`
pub fn exit_codes_help() -> String {
    let list: Vec<String> = EXIT_CODES
        .iter()
        .map(|e| format!("{} {}", e.code, e.brief))
        .collect();
    format!("Exit codes: {}.", list.join(", "))
}

/// An error with a class and an optional hint for the user.
#[derive(Debug)]
pub struct UserError {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl UserError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        UserError {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The run was interrupted by the user.
    pub fn interrupted() -> Self {
        UserError::new(Kind::Interrupted, "interrupted")
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_code() {
        let kinds = [
            Kind::Failure,
            Kind::Usage,
            Kind::Daemon,
            Kind::NotFound,
            Kind::Refused,
            Kind::Damaged,
            Kind::Differs,
            Kind::Stale,
            Kind::Key,
            Kind::Locked,
            Kind::Unconfirmed,
            Kind::Interrupted,
        ];
        for kind in kinds {
            let rows = EXIT_CODES.iter().filter(|e| e.kind == Some(kind)).count();
            assert_eq!(rows, 1, "{kind:?}");
        }
        assert_eq!(EXIT_CODES.len(), kinds.len() + 1, "and success");
        assert_eq!(Kind::Usage.exit_code(), 2);
        assert_eq!(Kind::Interrupted.exit_code(), 130);
        let codes: Vec<i32> = EXIT_CODES.iter().map(|e| e.code).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "in order: {codes:?}");
    }

    #[test]
    fn help_lists_the_codes() {
        assert_eq!(
            exit_codes_help(),
            "Exit codes: 0 ok, 1 error, 2 usage, 3 docker daemon unreachable, 4 not found, \
             5 refused (would overwrite or lose data), 6 damaged archive, 7 archive differs \
             from the volume (verify), 8 backup older than the RPO or restore over the RTO (status), 9 \
             encrypted archive without a key or with a wrong key, 10 volume locked by another run, \
             11 restore not found in the volume, 130 interrupted."
        );
    }

    /// The README's table is documentation: the same rows as `EXIT_CODES`, in the same order.
    #[test]
    fn readme_lists_the_codes() {
        let readme = include_str!("../README.md");
        let section = readme
            .split_once("\n## Exit codes\n")
            .expect("the README has an exit-code section")
            .1;
        let section = section.split("\n## ").next().unwrap_or_default();
        let rows: Vec<String> = section
            .lines()
            .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
            .map(String::from)
            .collect();
        let expected: Vec<String> = EXIT_CODES
            .iter()
            .map(|e| format!("| {} | {} |", e.code, e.meaning))
            .collect();
        assert_eq!(rows, expected);
    }
}
