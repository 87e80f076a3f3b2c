//! Opening a bollard client on a resolved [`Endpoint`] and checking that a Docker daemon answers.
//!
//! Every transport ends in one `match` on the endpoint's host: a unix socket, TCP, TCP + TLS
//! (verified by bollard, or unverified through [`super::insecure_tls`]), and ssh through
//! `docker system dial-stdio` ([`super::ssh`]).

use std::io;
use std::path::Path;
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use super::context::{Endpoint, Host, Tls};
use super::ssh::{FailureLog, SshError, SshTarget};
use crate::output::Printer;

/// Bollard's per-request timeout. It covers the wait for response headers, and the daemon answers
/// an archive upload or an image import only after it has read the whole body, so multi-GB
/// restores need far more than bollard's 2 minutes. Reachability is bounded by
/// [`HANDSHAKE_TIMEOUT`] instead.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How long the first exchange with the daemon may take before it counts as unreachable.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The same for ssh endpoints: longer than ssh's own connect timeout, so that its message wins.
const SSH_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(40);

const CHOOSE_ANOTHER: &str = "choose another with --context or DOCKER_HOST";

/// Why no working client could be made for an endpoint. Every message names the context and the
/// endpoint; [`ConnectError::hint`] suggests what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing answered: no socket, connection refused, TLS handshake failed, and so on.
    #[error("cannot reach the Docker daemon of context `{context}` at {endpoint}: {cause}")]
    Unreachable {
        /// The context name.
        context: String,
        /// The daemon address, as [`Host`] displays it.
        endpoint: String,
        /// The innermost error, e.g. `No such file or directory (os error 2)`.
        cause: String,
        /// The kind of the innermost I/O error, if the failure was one.
        kind: Option<io::ErrorKind>,
    },
    /// The connection opened but no answer came within the handshake timeout.
    #[error(
        "the Docker daemon of context `{context}` at {endpoint} did not answer within {}s",
        after.as_secs_f32()
    )]
    Timeout {
        /// The context name.
        context: String,
        /// The daemon address.
        endpoint: String,
        /// How long it waited.
        after: Duration,
    },
    /// Something answered, but not as a Docker daemon would (an HTTP error, a proxy, ...).
    #[error("the endpoint of context `{context}` at {endpoint} did not answer as a Docker daemon: {cause}")]
    NotDocker {
        /// The context name.
        context: String,
        /// The daemon address.
        endpoint: String,
        /// What came back.
        cause: String,
    },
    /// An ssh:// endpoint failed on the ssh side: no connection, refused keys, no docker there...
    #[error("cannot reach the Docker daemon of context `{context}` at {endpoint}: {cause}")]
    Ssh {
        /// The context name.
        context: String,
        /// The daemon address.
        endpoint: String,
        /// What ssh (or the remote docker CLI) said.
        cause: Box<SshError>,
    },
    /// TLS is on but the CA certificate, client certificate or client key is missing.
    #[error(
        "cannot connect to context `{context}` at {endpoint}: TLS needs a CA certificate, a client \
         certificate and a client key, and the {} missing",
        missing_list(missing)
    )]
    MissingTlsFiles {
        /// The context name.
        context: String,
        /// The daemon address.
        endpoint: String,
        /// `ca.pem`, `cert.pem`, `key.pem`: the roles that have no file.
        missing: Vec<&'static str>,
    },
    /// The client could not be set up (unreadable TLS files, system certificates, ...).
    #[error("cannot set up a Docker client for context `{context}` at {endpoint}: {cause}")]
    Client {
        /// The context name.
        context: String,
        /// The daemon address.
        endpoint: String,
        /// What went wrong.
        cause: String,
    },
}

impl ConnectError {
    /// The context the failed endpoint belongs to.
    pub fn context(&self) -> &str {
        match self {
            Self::Unreachable { context, .. }
            | Self::Timeout { context, .. }
            | Self::NotDocker { context, .. }
            | Self::Ssh { context, .. }
            | Self::MissingTlsFiles { context, .. }
            | Self::Client { context, .. } => context,
        }
    }

    /// A suggestion for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Unreachable {
                kind: Some(io::ErrorKind::PermissionDenied),
                endpoint,
                ..
            } if endpoint.starts_with("unix://") => format!(
                "your user may not use the Docker socket: add it to the `docker` group \
                 (`sudo usermod -aG docker $USER`, then log in again), or {CHOOSE_ANOTHER}"
            ),
            Self::Unreachable {
                kind: Some(io::ErrorKind::InvalidData),
                context,
                ..
            } => format!(
                "the TLS handshake failed: check the certificates of context `{context}` \
                 (`docker --context {context} version` shows whether the CLI can connect)"
            ),
            Self::Unreachable { .. } => {
                format!("is the Docker daemon running? ({CHOOSE_ANOTHER})")
            }
            Self::Timeout { .. } => format!(
                "is the host reachable, and the Docker daemon listening there? ({CHOOSE_ANOTHER})"
            ),
            Self::NotDocker { .. } => {
                format!("is this the address of a Docker daemon? ({CHOOSE_ANOTHER})")
            }
            Self::Ssh { cause, .. } => format!("{} (or {CHOOSE_ANOTHER})", cause.hint()),
            Self::MissingTlsFiles { context, .. } if context == "default" => {
                "pass --tlscacert, --tlscert and --tlskey, or put ca.pem, cert.pem and key.pem \
                 in DOCKER_CERT_PATH"
                    .to_owned()
            }
            Self::MissingTlsFiles { context, .. } => format!(
                "add them with `docker context update {context} --docker \
                 \"host=...,ca=CA,cert=CERT,key=KEY\"`"
            ),
            Self::Client { .. } => return None,
        })
    }
}

fn missing_list(missing: &[&str]) -> String {
    let names = missing.join(" and ");
    if missing.len() == 1 {
        format!("{names} is")
    } else {
        format!("{names} are")
    }
}

/// Connects to the daemon of `ep` and negotiates the API version (the engine may be older than
/// bollard's default, e.g. API 1.41 for Docker 20.10).
///
/// The returned client waits up to 24 hours for a response, so it suits long uploads; this call
/// itself gives up after 10 seconds (40 over ssh) when the daemon does not answer. It comes with
/// the log in which an ssh transport records why its processes ended badly (empty for the
/// other transports): it belongs to this client alone.
///
/// # Errors
///
/// The daemon cannot be reached or does not answer in time, something other than a Docker daemon
/// answers, or the endpoint needs a transport this version lacks; see [`ConnectError`].
pub async fn connect(ep: &Endpoint, out: Printer) -> Result<(Docker, FailureLog), ConnectError> {
    let handshake = match ep.host {
        // ssh gives up by itself after its ConnectTimeout (30 s, as the docker CLI sets it) and
        // then says why; the remote docker CLI's start adds a little.
        Host::Ssh { .. } => SSH_HANDSHAKE_TIMEOUT,
        _ => HANDSHAKE_TIMEOUT,
    };
    connect_within(ep, handshake, out).await
}

async fn connect_within(
    ep: &Endpoint,
    handshake: Duration,
    out: Printer,
) -> Result<(Docker, FailureLog), ConnectError> {
    let failures = FailureLog::default();
    let docker = client(ep, &failures, out)?;
    match tokio::time::timeout(handshake, docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok((docker, failures)),
        Ok(Err(err)) => Err(failure(ep, &err)),
        Err(_) => Err(ConnectError::Timeout {
            context: ep.context.clone(),
            endpoint: ep.host.to_string(),
            after: handshake,
        }),
    }
}

/// Builds the client for the endpoint's transport; nothing is sent yet.
fn client(ep: &Endpoint, failures: &FailureLog, out: Printer) -> Result<Docker, ConnectError> {
    let timeout = CLIENT_TIMEOUT.as_secs();
    let built = match (&ep.host, &ep.tls) {
        (Host::Unix(path), _) => {
            let Some(path) = path.to_str() else {
                return Err(client_error(
                    ep,
                    "the socket path is not valid UTF-8".into(),
                ));
            };
            Docker::connect_with_unix(path, timeout, API_DEFAULT_VERSION)
        }
        (Host::Tcp { .. }, None) => {
            Docker::connect_with_http(&ep.host.to_string(), timeout, API_DEFAULT_VERSION)
        }
        (Host::Tcp { host, port }, Some(tls)) if !tls.verify => {
            let pair = match (&tls.cert, &tls.key) {
                (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
                _ => None,
            };
            return super::insecure_tls::client(host, *port, pair, timeout)
                .map_err(|cause| client_error(ep, cause));
        }
        (Host::Tcp { .. }, Some(tls)) => {
            let (ca, cert, key) = tls_files(ep, tls)?;
            Docker::connect_with_ssl(
                &ep.host.to_string(),
                key,
                cert,
                ca,
                timeout,
                API_DEFAULT_VERSION,
            )
        }
        (Host::Ssh { .. }, _) => {
            let target = SshTarget::of(&ep.host).expect("an ssh host");
            super::ssh::client(&target, timeout, failures, out)
        }
    };
    built.map_err(|err| failure(ep, &err))
}

/// The three files bollard's TLS client needs, checked up front: bollard reads the client
/// certificate and key only during the handshake and silently sends none when they are unreadable,
/// which the daemon reports as an unhelpful "bad certificate".
fn tls_files<'a>(
    ep: &Endpoint,
    tls: &'a Tls,
) -> Result<(&'a Path, &'a Path, &'a Path), ConnectError> {
    let (Some(ca), Some(cert), Some(key)) = (&tls.ca, &tls.cert, &tls.key) else {
        let missing = [
            ("ca.pem", &tls.ca),
            ("cert.pem", &tls.cert),
            ("key.pem", &tls.key),
        ]
        .into_iter()
        .filter_map(|(name, path)| path.is_none().then_some(name))
        .collect();
        return Err(ConnectError::MissingTlsFiles {
            context: ep.context.clone(),
            endpoint: ep.host.to_string(),
            missing,
        });
    };
    for path in [ca, cert, key] {
        if let Err(err) = std::fs::File::open(path) {
            return Err(client_error(
                ep,
                format!("cannot read {}: {err}", path.display()),
            ));
        }
    }
    Ok((ca, cert, key))
}

fn client_error(ep: &Endpoint, cause: String) -> ConnectError {
    ConnectError::Client {
        context: ep.context.clone(),
        endpoint: ep.host.to_string(),
        cause,
    }
}

/// Sorts a bollard error into what the user needs to hear.
fn failure(ep: &Endpoint, err: &bollard::errors::Error) -> ConnectError {
    use bollard::errors::Error as E;
    let context = ep.context.clone();
    let endpoint = ep.host.to_string();
    if let Some(cause) = ssh_cause(err) {
        return ConnectError::Ssh {
            context,
            endpoint,
            cause: Box::new(cause),
        };
    }
    match err {
        // bollard checks that the socket exists before connecting; ask the file system why not,
        // so that a permission problem is not reported as a missing file.
        E::SocketNotFoundError(path) => {
            let io = std::fs::metadata(path)
                .err()
                .unwrap_or_else(|| io::ErrorKind::NotFound.into());
            ConnectError::Unreachable {
                context,
                endpoint,
                kind: Some(io.kind()),
                cause: io.to_string(),
            }
        }
        E::DockerResponseServerError { .. }
        | E::JsonDataError { .. }
        | E::APIVersionParseError {} => ConnectError::NotDocker {
            context,
            endpoint,
            cause: err.to_string(),
        },
        E::HyperLegacyError { .. } | E::HyperResponseError { .. } | E::IOError { .. } => {
            let (cause, kind) = root_cause(err);
            ConnectError::Unreachable {
                context,
                endpoint,
                cause,
                kind,
            }
        }
        _ => ConnectError::Client {
            context,
            endpoint,
            cause: root_cause(err).0,
        },
    }
}

/// What ssh said, when the failure came from an ssh connection.
fn ssh_cause(err: &bollard::errors::Error) -> Option<SshError> {
    match err {
        bollard::errors::Error::IOError { err } => err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<SshError>())
            .cloned(),
        _ => None,
    }
}

/// The innermost error of a chain (hyper's "client error (Connect)" says little; the OS or TLS
/// error at the bottom says what happened), with the kind of the innermost I/O error.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> (String, Option<io::ErrorKind>) {
    let mut innermost = err;
    let mut kind = None;
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            kind = Some(innermost_io_kind(io));
        }
        innermost = current;
        next = current.source();
    }
    (innermost.to_string(), kind)
}

/// hyper-rustls wraps rustls' `InvalidData` error in an `io::Error` of kind `Other`, and
/// `io::Error::source` skips the wrapped error itself, so look through `get_ref`.
fn innermost_io_kind(err: &io::Error) -> io::ErrorKind {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<io::Error>())
    {
        Some(inner) => innermost_io_kind(inner),
        None => err.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::Origin;
    use super::*;
    use bollard::query_parameters::ListVolumesOptions;
    use std::path::PathBuf;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn endpoint(host: Host, tls: Option<Tls>) -> Endpoint {
        Endpoint {
            context: "default".into(),
            origin: Origin::Default,
            host,
            tls,
        }
    }

    fn tcp(port: u16) -> Host {
        Host::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[tokio::test]
    async fn local_engine_answers_and_lists_volumes() {
        let ep = endpoint(Host::Unix(PathBuf::from("/var/run/docker.sock")), None);
        let (docker, _) = connect(&ep, Printer::default())
            .await
            .expect("the local engine should answer");
        let server = docker.version().await.unwrap();
        // Negotiation settles on the engine's version when it is older than bollard's default
        // (API 1.41 for the Docker 20.10 engine these tests run against).
        let server_api = server.api_version.unwrap();
        let (major, minor) = server_api.split_once('.').unwrap();
        let server_api = bollard::ClientVersion {
            major_version: major.parse().unwrap(),
            minor_version: minor.parse().unwrap(),
        };
        let expected = if server_api < *API_DEFAULT_VERSION {
            server_api
        } else {
            *API_DEFAULT_VERSION
        };
        assert_eq!(docker.client_version(), expected);
        docker
            .list_volumes(None::<ListVolumesOptions>)
            .await
            .expect("list volumes");
    }

    #[tokio::test]
    async fn missing_socket_fails_fast_naming_context_and_endpoint() {
        let ep = endpoint(Host::Unix(PathBuf::from("/nonexistent/docker.sock")), None);
        let started = Instant::now();
        let err = connect(&ep, Printer::default()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker daemon of context `default` at \
             unix:///nonexistent/docker.sock: No such file or directory (os error 2)"
        );
        assert_eq!(
            err.hint().unwrap(),
            "is the Docker daemon running? (choose another with --context or DOCKER_HOST)"
        );
        assert_eq!(err.context(), "default");
    }

    #[tokio::test]
    async fn refused_tcp_fails_fast_naming_context_and_endpoint() {
        let ep = Endpoint {
            context: "prod".into(),
            ..endpoint(tcp(1), None)
        };
        let started = Instant::now();
        let err = connect(&ep, Printer::default()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(
            err,
            ConnectError::Unreachable {
                kind: Some(io::ErrorKind::ConnectionRefused),
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker daemon of context `prod` at tcp://127.0.0.1:1: \
             Connection refused (os error 111)"
        );
    }

    #[tokio::test]
    async fn silent_endpoint_times_out() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let ep = endpoint(tcp(port), None);
        let err = connect_within(&ep, Duration::from_millis(300), Printer::default())
            .await
            .unwrap_err();
        held.abort();
        assert!(matches!(err, ConnectError::Timeout { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "the Docker daemon of context `default` at tcp://127.0.0.1:{port} did not \
                 answer within 0.3s"
            )
        );
        assert!(err.hint().unwrap().contains("reachable"));
    }

    #[tokio::test]
    async fn http_error_is_not_a_docker_daemon() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            let body = "page not found";
            let response = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        });
        let err = connect(&endpoint(tcp(port), None), Printer::default())
            .await
            .unwrap_err();
        server.await.unwrap();
        assert!(matches!(err, ConnectError::NotDocker { .. }), "{err:?}");
        assert!(err.to_string().contains("404"), "{err}");
    }

    #[tokio::test]
    async fn tls_needs_all_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let tls = Tls {
            ca: Some(ca),
            cert: None,
            key: None,
            verify: true,
        };
        let ep = Endpoint {
            context: "prod".into(),
            ..endpoint(tcp(2376), Some(tls))
        };
        let err = connect(&ep, Printer::default()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot connect to context `prod` at tcp://127.0.0.1:2376: TLS needs a CA \
             certificate, a client certificate and a client key, and the cert.pem and key.pem \
             are missing"
        );
        assert!(err.hint().unwrap().contains("docker context update prod"));
    }

    #[tokio::test]
    async fn unreadable_tls_file_is_reported_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let tls = Tls {
            ca: Some(dir.path().join("ca.pem")),
            cert: Some(dir.path().join("cert.pem")),
            key: Some(dir.path().join("key.pem")),
            verify: true,
        };
        let err = connect(&endpoint(tcp(2376), Some(tls)), Printer::default())
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Client { .. }), "{err:?}");
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }

    #[tokio::test]
    async fn failed_tls_handshake_points_at_the_certificates() {
        // A plain HTTP server where the client expects TLS: rustls rejects the first record.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "").unwrap();
            Some(path)
        };
        let tls = Tls {
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
            verify: true,
        };
        let err = connect(&endpoint(tcp(port), Some(tls)), Printer::default())
            .await
            .unwrap_err();
        server.await.unwrap();
        assert!(
            matches!(
                err,
                ConnectError::Unreachable {
                    kind: Some(io::ErrorKind::InvalidData),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.hint().unwrap().contains("TLS handshake failed"),
            "{err}"
        );
    }

    #[test]
    fn permission_denied_on_the_socket_points_at_the_docker_group() {
        let err = ConnectError::Unreachable {
            context: "default".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
            cause: "Permission denied (os error 13)".into(),
            kind: Some(io::ErrorKind::PermissionDenied),
        };
        assert!(err.hint().unwrap().contains("`docker` group"));
    }
}
