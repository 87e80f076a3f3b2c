//! Which exit code and hint an error gets: its class, found anywhere in its cause chain. This
//! sits above the edges (it knows their error types) so that `error.rs` depends on nothing.

use crate::archive::{ArchiveError, KeyNeed};
use crate::docker::connect::ConnectError;
use crate::docker::context::ContextError;
use crate::error::{Kind, UserError};

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
        // The engine went away during the run (stopped, restarted, a dropped ssh session).
        if cause
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return (
                Kind::Daemon,
                Some(
                    "the engine stopped answering during the run; once it is back, the next run \
                     says what this one left and `recover` cleans it up"
                        .into(),
                ),
            );
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
