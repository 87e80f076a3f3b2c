//! Which exit code and hint an error gets: its class, found anywhere in its cause chain. This
//! sits above the edges (it knows their error types) so that `error.rs` depends on nothing.

use crate::archive::{ArchiveError, KeyNeed};
use crate::docker::connect::ConnectError;
use crate::docker::context::ContextError;
use crate::error::{Kind, UserError};

/// The class and hint of an error, found anywhere in its chain.
pub fn classify(err: &anyhow::Error) -> (Kind, Option<String>) {
    // Below an engine API error: HTTP errors further down are the engine's connection, not
    // those of a storage (S3's client is HTTP too).
    let mut from_engine = false;
    let mut went_away = false;
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
        if cause.downcast_ref::<bollard::errors::Error>().is_some() {
            from_engine = true;
        }
        went_away |= from_engine && engine_went_away(cause);
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
    // Last: what the chain says more precisely (a damaged archive fed to the engine) wins.
    if went_away {
        return (
            Kind::Daemon,
            Some(
                "the engine stopped answering during the run; once it is back, the next run \
                 says what this one left and `recover` cleans it up"
                    .into(),
            ),
        );
    }
    (Kind::Failure, None)
}

/// Whether an error under an engine API error says the engine went away during the run
/// (stopped, restarted, a dropped ssh session): no connection to it, or one that closed with a
/// request unanswered or half sent.
fn engine_went_away(cause: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind as Io;
    if let Some(e) = cause.downcast_ref::<hyper_util::client::legacy::Error>() {
        return e.is_connect();
    }
    if let Some(e) = cause.downcast_ref::<hyper::Error>() {
        return e.is_incomplete_message() || e.is_canceled() || e.is_closed();
    }
    cause.downcast_ref::<std::io::Error>().is_some_and(|e| {
        matches!(
            e.kind(),
            Io::ConnectionRefused | Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe
        )
    })
}

/// The flags that give the key an encrypted archive needs (the archive layer names no flag).
fn key_flags(need: KeyNeed) -> &'static str {
    match need {
        KeyNeed::Any => "give --identity or --passphrase-file",
        KeyNeed::Identity => "give --identity",
        KeyNeed::Passphrase => "give --passphrase-file or --passphrase",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::Docker;
    use tokio::io::AsyncReadExt;

    /// A client of an engine at `socket`, made while something listens there (bollard looks
    /// for the socket); the listener is gone when this returns, its socket file stays.
    fn engine_at_listening(socket: &std::path::Path) -> Docker {
        let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
        let engine =
            Docker::connect_with_unix(socket.to_str().unwrap(), 5, bollard::API_DEFAULT_VERSION)
                .unwrap();
        drop(listener);
        engine
    }

    /// Real engine API errors, from bollard on a unix socket: none listening (the engine
    /// stopped before the request), and one that reads the request and closes unanswered (the
    /// engine stopped during it). Both say the engine went away; an HTTP error with no engine
    /// API error above it (a storage's) does not.
    #[tokio::test]
    async fn an_engine_that_goes_away_during_the_run_is_exit_3() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        // Connected while the engine listened; it is gone by the request (its socket stays).
        let engine = engine_at_listening(&socket);
        let refused = engine.version().await.unwrap_err();
        let (kind, hint) = classify(&anyhow::Error::new(refused).context("inspecting a volume"));
        assert_eq!(kind, Kind::Daemon);
        assert!(hint.unwrap().contains("recover"));

        std::fs::remove_file(&socket).unwrap();
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = s.read(&mut request).await;
            }
        });
        let cut = engine.version().await.unwrap_err();
        let err = anyhow::Error::new(cut).context("creating a helper container");
        assert!(
            format!("{err:#}").contains("connection closed before message completed"),
            "{err:#}"
        );
        assert_eq!(classify(&err).0, Kind::Daemon);

        let storage =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build::<_, http_body_util::Empty<bytes::Bytes>>(hyperlocal::UnixConnector);
        let uri: hyper::Uri = hyperlocal::Uri::new(dir.path().join("none.sock"), "/").into();
        let other = storage.get(uri).await.unwrap_err();
        assert!(other.is_connect());
        let err = anyhow::Error::new(other).context("writing to the bucket");
        assert_eq!(classify(&err).0, Kind::Failure);
    }
}
