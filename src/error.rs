//! Errors users see, and the exit codes: documented here, in `--help` and in the README.
//!
//! | code | meaning |
//! | ---- | ------- |
//! | 0    | success |
//! | 1    | any other failure |
//! | 2    | usage error (bad arguments) |
//! | 3    | the Docker daemon cannot be reached (or the context cannot be resolved) |
//! | 4    | not found: a volume or an archive file |
//! | 5    | refused: it would overwrite or lose data (`--force` exists for some) |
//! | 6    | the archive is damaged, truncated, foreign or does not match its manifest |
//! | 7    | `verify`: the archive is sound but differs from the volume |
//! | 8    | `status`: a volume's newest backup is older than the RPO, or it has none |
//! | 9    | the archive is encrypted and no key was given, or none of the keys given opens it |
//! | 130  | interrupted (Ctrl-C, or the docker CLI cancelled the plugin) |

use std::fmt;

use crate::archive::{ArchiveError, KeyNeed};
use crate::docker::connect::ConnectError;
use crate::docker::context::ContextError;

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
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failure => 1,
            Kind::Usage => 2,
            Kind::Daemon => 3,
            Kind::NotFound => 4,
            Kind::Refused => 5,
            Kind::Damaged => 6,
            Kind::Differs => 7,
            Kind::Stale => 8,
            Kind::Key => 9,
            Kind::Interrupted => 130,
        }
    }
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

/// The class and hint of an error, found anywhere in its chain.
pub fn classify(err: &anyhow::Error) -> (Kind, Option<String>) {
    for cause in err.chain() {
        if let Some(u) = cause.downcast_ref::<UserError>() {
            return (u.kind, u.hint.clone());
        }
        if let Some(c) = cause.downcast_ref::<ConnectError>() {
            return (Kind::Daemon, c.hint());
        }
        if let Some(c) = cause.downcast_ref::<ContextError>() {
            return (Kind::Daemon, c.hint());
        }
        if let Some(a) = cause.downcast_ref::<ArchiveError>() {
            if let ArchiveError::NeedKey { need, .. } = a {
                return (Kind::Key, Some(key_flags(*need).into()));
            }
            if a.is_key_problem() {
                return (Kind::Key, None);
            }
            if a.is_damage() {
                return (Kind::Damaged, None);
            }
        }
    }
    (Kind::Failure, None)
}

/// The flags that give the key an encrypted archive needs (the archive layer names no flag).
fn key_flags(need: KeyNeed) -> &'static str {
    match need {
        KeyNeed::Any => "give --identity or --passphrase-file",
        KeyNeed::Identity => "give --identity",
        KeyNeed::Passphrase => "give --passphrase-file or --passphrase",
    }
}
