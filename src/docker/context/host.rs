//! Host strings (`unix://`, `tcp://`, `ssh://`, and the bare forms `-H` accepts), parsed and
//! normalised as the docker CLI does.

use std::path::PathBuf;

use super::{ContextError, Host};

/// Where the daemon listens when nothing says otherwise (`opts.defaultUnixSocket`).
pub(super) const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The host `opts.ParseHost` fills in when a TCP address has none.
const DEFAULT_TCP_HOST: &str = "localhost";
/// IANA ports for the Docker API, plain and TLS (`opts.defaultHTTPPort`, `defaultTLSHTTPPort`).
const DEFAULT_HTTP_PORT: u16 = 2375;
const DEFAULT_TLS_PORT: u16 = 2376;

/// How a host string is read.
#[derive(Clone, Copy)]
pub(super) enum Syntax {
    /// `-H` and `DOCKER_HOST`: normalised by `opts.ParseHost`, which fills in defaults.
    Flag { tls: bool },
    /// A stored context's host: handed to the API client as written, so a TCP address without a
    /// port gets the URL scheme's port (80, or 443 with TLS), as Go's HTTP client does.
    Stored { tls: bool },
}

/// A host parse failure, before it knows which context or variable it came from.
pub(super) enum HostError {
    Unsupported(String),
    Bad(String),
}

impl HostError {
    pub(super) fn into_context_error(self, host: &str, from: String) -> ContextError {
        // The host as written, less a password someone put in it: errors are shown and logged.
        let host = crate::url::strip_credentials(host).0.into_owned();
        match self {
            Self::Unsupported(reason) => ContextError::UnsupportedScheme { host, from, reason },
            Self::Bad(reason) => ContextError::BadHost { host, from, reason },
        }
    }
}

pub(super) fn parse_host(raw: &str, syntax: Syntax) -> Result<Host, HostError> {
    let (scheme, rest) = match syntax {
        Syntax::Flag { tls } => {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(if tls {
                    Host::Tcp {
                        host: DEFAULT_TCP_HOST.to_owned(),
                        port: DEFAULT_TLS_PORT,
                    }
                } else {
                    Host::Unix(PathBuf::from(DEFAULT_SOCKET))
                });
            }
            match raw.split_once("://") {
                Some(parts) => parts,
                // Without a scheme, a path means a socket (newer CLIs) and anything else TCP.
                None if raw.starts_with('/') || raw.starts_with("./") => ("unix", raw),
                None => ("tcp", raw),
            }
        }
        Syntax::Stored { .. } => raw.split_once("://").ok_or_else(|| {
            HostError::Bad("no scheme; expected unix://, tcp:// or ssh://".into())
        })?,
    };

    match scheme {
        "unix" => {
            // parseSimpleProtoAddr strips the scheme a second time, so unix://unix:///x is /x.
            let rest = match syntax {
                Syntax::Flag { .. } => rest.strip_prefix("unix://").unwrap_or(rest),
                Syntax::Stored { .. } => rest,
            };
            if rest.contains("://") {
                return Err(HostError::Bad("invalid proto, expected unix".into()));
            }
            match (rest.is_empty(), syntax) {
                (true, Syntax::Flag { .. }) => Ok(Host::Unix(PathBuf::from(DEFAULT_SOCKET))),
                (true, Syntax::Stored { .. }) => Err(HostError::Bad("no socket path".into())),
                (false, _) => Ok(Host::Unix(PathBuf::from(rest))),
            }
        }
        "tcp" => {
            // ParseTCPAddr fills in 2375 for any address without a port, TLS or not; only a
            // completely empty host becomes tcp://localhost:2376 under TLS (handled above).
            let default_port = match syntax {
                Syntax::Flag { .. } => DEFAULT_HTTP_PORT,
                Syntax::Stored { tls: false } => 80,
                Syntax::Stored { tls: true } => 443,
            };
            parse_tcp(rest, default_port)
        }
        "ssh" => parse_ssh(rest),
        "npipe" => Err(HostError::Unsupported(
            "named pipes (npipe://) exist only on Windows".into(),
        )),
        "fd" => Err(HostError::Unsupported(
            "fd:// is a daemon listener; clients connect with unix://, tcp:// or ssh://".into(),
        )),
        "http" | "https" => Err(HostError::Unsupported(
            "write tcp://host:port instead (with --tlsverify for TLS)".into(),
        )),
        other => Err(HostError::Unsupported(format!(
            "unknown scheme `{other}`; expected unix://, tcp:// or ssh://"
        ))),
    }
}

/// `opts.ParseTCPAddr`, without the scheme.
fn parse_tcp(addr: &str, default_port: u16) -> Result<Host, HostError> {
    let bad = |reason: &str| HostError::Bad(reason.to_owned());
    if addr.is_empty() {
        return Ok(Host::Tcp {
            host: DEFAULT_TCP_HOST.to_owned(),
            port: default_port,
        });
    }
    if addr.contains("://") {
        return Err(bad("invalid proto, expected tcp"));
    }
    // What Go's url.Parse would treat as path, query or fragment. The CLI would send every API
    // call under that path; nobody runs a daemon that way, so refuse it rather than ignore it.
    let end = addr.find(['/', '?', '#']).unwrap_or(addr.len());
    let (authority, tail) = addr.split_at(end);
    if !tail.is_empty() && tail != "/" {
        return Err(bad("a path after the address is not supported"));
    }
    if authority.contains('@') {
        return Err(bad("a user name is not allowed in a tcp:// address"));
    }
    let with_port;
    let (host, port) = match split_host_port(authority) {
        Some(parts) => parts,
        // Like the CLI: try once more with the default port added.
        None => {
            with_port = join_host_port(authority, default_port);
            split_host_port(&with_port).ok_or_else(|| bad("invalid address"))?
        }
    };
    let port = if port.is_empty() {
        default_port
    } else {
        port.parse()
            .map_err(|_| HostError::Bad(format!("invalid port `{port}`")))?
    };
    let host = if host.is_empty() {
        DEFAULT_TCP_HOST
    } else {
        host
    };
    Ok(Host::Tcp {
        host: host.to_owned(),
        port,
    })
}

/// `cli/connhelper/ssh.ParseURL`, without the scheme.
fn parse_ssh(rest: &str) -> Result<Host, HostError> {
    let bad = |reason: String| HostError::Bad(reason);
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    if !fragment.is_empty() {
        return Err(bad(format!("fragments are not allowed: {fragment:?}")));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() {
        return Err(bad(format!("query parameters are not allowed: {query:?}")));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user), host_port),
        None => (None, authority),
    };
    if user.is_some_and(|user| user.contains(':')) {
        return Err(bad("plain-text password is not supported".into()));
    }
    let (host, port) = if host_port.starts_with('[') {
        split_host_port(host_port)
            .or_else(|| Some((host_port.strip_prefix('[')?.strip_suffix(']')?, "")))
            .ok_or_else(|| bad(format!("invalid address `{host_port}`")))?
    } else {
        match host_port.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(bad("IPv6 addresses need brackets: ssh://[::1]:22".into()))
            }
            Some(parts) => parts,
            None => (host_port, ""),
        }
    };
    if host.is_empty() {
        return Err(bad("hostname is empty".into()));
    }
    let port = if port.is_empty() {
        None
    } else {
        Some(
            port.parse()
                .map_err(|_| bad(format!("invalid port `{port}`")))?,
        )
    };
    Ok(Host::Ssh {
        user: user.filter(|user| !user.is_empty()).map(str::to_owned),
        host: host.to_owned(),
        port,
        // The CLI only passes a socket to the remote `docker` when the path is more than slashes.
        socket_path: (!path.trim_matches('/').is_empty()).then(|| path.to_owned()),
    })
}

/// Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; the port may be empty.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(bracketed) = s.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = s.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let stray = |part: &str| part.contains(['[', ']']);
    (!stray(host) && !stray(port)).then_some((host, port))
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: u16) -> String {
    format!("{}:{port}", bracketed(host))
}

pub(super) fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{tcp, unix};
    use super::*;

    fn flag(raw: &str) -> Result<Host, String> {
        parse_host(raw, Syntax::Flag { tls: false }).map_err(|err| match err {
            HostError::Unsupported(reason) | HostError::Bad(reason) => reason,
        })
    }

    #[test]
    fn parse_host_matches_opts_parse_host() {
        // Expected values checked against docker CLI 28.2.2 and docker/cli's opts/hosts.go.
        let cases = [
            ("unix:///run/docker.sock", unix("/run/docker.sock")),
            ("unix://", unix(DEFAULT_SOCKET)),
            ("  ", unix(DEFAULT_SOCKET)),
            ("tcp://127.0.0.1", tcp("127.0.0.1", 2375)),
            ("tcp://", tcp("localhost", 2375)),
            ("tcp://:7", tcp("localhost", 7)),
            ("tcp://h:", tcp("h", 2375)),
            ("tcp://h:1/", tcp("h", 1)),
            ("127.0.0.1:1", tcp("127.0.0.1", 1)),
            ("example.com", tcp("example.com", 2375)),
            ("tcp://[::1]:2376", tcp("::1", 2376)),
            ("tcp://[::1]:", tcp("::1", 2375)),
            ("tcp://::1", tcp("::1", 2375)),
            ("/tmp/d.sock", unix("/tmp/d.sock")),
            ("./d.sock", unix("./d.sock")),
            ("unix://unix:///x", unix("/x")),
        ];
        for (raw, want) in cases {
            assert_eq!(flag(raw).as_ref(), Ok(&want), "{raw}");
        }
    }

    #[test]
    fn parse_host_rejects_what_the_cli_rejects() {
        for (raw, reason) in [
            ("tcp://[::1]", "invalid address"),
            ("tcp://h:abc", "invalid port `abc`"),
            ("tcp://h:70000", "invalid port `70000`"),
            ("tcp://h:1/base", "path"),
            ("tcp://tcp://h", "invalid proto"),
            ("unix://npipe:///x", "invalid proto"),
            ("http://h:1", "write tcp://"),
            ("npipe:////./pipe/docker_engine", "only on Windows"),
            ("fd://", "daemon listener"),
            ("foo://bar", "unknown scheme `foo`"),
            ("ssh://a:b@h", "plain-text password"),
            ("ssh://h?x=1", "query parameters are not allowed"),
            ("ssh://h#frag", "fragments are not allowed"),
            ("ssh://me@", "hostname is empty"),
            ("ssh://h:port", "invalid port"),
        ] {
            let err = flag(raw).unwrap_err();
            assert!(err.contains(reason), "{raw}: {err}");
        }
    }

    #[test]
    fn parse_ssh_urls() {
        let ssh =
            |user: Option<&str>, host: &str, port: Option<u16>, path: Option<&str>| Host::Ssh {
                user: user.map(Into::into),
                host: host.into(),
                port,
                socket_path: path.map(Into::into),
            };
        for (raw, want, display) in [
            ("ssh://box", ssh(None, "box", None, None), "ssh://box"),
            (
                "ssh://me@box:2222",
                ssh(Some("me"), "box", Some(2222), None),
                "ssh://me@box:2222",
            ),
            (
                "ssh://me@box/",
                ssh(Some("me"), "box", None, None),
                "ssh://me@box",
            ),
            (
                "ssh://[fe80::1]:22/var/run/docker.sock",
                ssh(None, "fe80::1", Some(22), Some("/var/run/docker.sock")),
                "ssh://[fe80::1]:22/var/run/docker.sock",
            ),
            ("ssh://[::1]", ssh(None, "::1", None, None), "ssh://[::1]"),
        ] {
            let host = flag(raw).unwrap();
            assert_eq!(host, want, "{raw}");
            assert_eq!(host.to_string(), display);
        }
    }
}
