//! Which Docker daemon to talk to, chosen exactly as the `docker` CLI chooses it: the types
//! ([`ContextOptions`] in, [`Endpoint`] out, [`ContextError`] with its hints) and the entry point
//! [`resolve`].
//!
//! This mirrors docker/cli: the context name comes from `resolveContextName` (`cli/command/cli.go`),
//! the default context's endpoint from `resolveDefaultDockerEndpoint` and the TLS flags of
//! `cli/flags/options.go` (in `resolve.rs`), host strings are normalised like `opts.ParseHost`
//! (`opts/hosts.go`) and `ssh://` URLs are checked like `cli/connhelper/ssh` (in `host.rs`), and
//! named contexts are read from the on-disk store (`cli/context/store`, in `store.rs`).
//! Nothing here touches the network: the only I/O is reading `config.json`, a context's
//! `meta.json`, and checking that TLS files exist.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[cfg(test)]
mod fixture;
mod host;
mod resolve;
mod store;

pub use resolve::resolve;

use host::bracketed;

/// The name of the implicit context built from `-H`, `DOCKER_HOST` and the TLS flags.
pub const DEFAULT_CONTEXT: &str = "default";

/// Docker's global connection flags, as given before the plugin name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextOptions {
    /// `--config`: the client configuration directory.
    pub config_dir: Option<PathBuf>,
    /// `-c/--context`: the context to use.
    pub context: Option<String>,
    /// `-H/--host`, once per occurrence of the flag; more than one is an error, as in the CLI.
    pub hosts: Vec<String>,
    /// `--tls`: use TLS (without verifying the daemon unless `--tlsverify` says so).
    pub tls: bool,
    /// `--tlsverify[=bool]`: `None` when the flag was not given at all.
    pub tlsverify: Option<bool>,
    /// `--tlscacert`: trust only daemons signed by this CA.
    pub tlscacert: Option<PathBuf>,
    /// `--tlscert`: the client certificate.
    pub tlscert: Option<PathBuf>,
    /// `--tlskey`: the client key.
    pub tlskey: Option<PathBuf>,
}

/// The daemon endpoint the user's Docker CLI would talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The context name: [`DEFAULT_CONTEXT`] or the name of a stored context.
    pub context: String,
    /// What selected the context, for messages.
    pub origin: Origin,
    /// Where the daemon listens.
    pub host: Host,
    /// TLS settings; only ever set for [`Host::Tcp`], since the CLI ignores TLS on sockets and ssh.
    pub tls: Option<Tls>,
}

impl Endpoint {
    /// How the journal names this engine, for `recover` to find it again.
    pub fn journal_ref(&self) -> crate::journal::EngineRef {
        crate::journal::EngineRef {
            context: self.context.clone(),
            host: self.host.to_string(),
        }
    }
}

/// What chose the context, in the CLI's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `-c/--context`.
    ContextFlag,
    /// `-H/--host` (implies the default context).
    HostFlag,
    /// A non-empty `DOCKER_HOST` (implies the default context).
    DockerHostEnv,
    /// A non-empty `DOCKER_CONTEXT`.
    DockerContextEnv,
    /// `currentContext` in `config.json` (set by `docker context use`).
    ConfigFile,
    /// Nothing was set.
    Default,
}

/// A daemon address, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// `unix:///path/to/docker.sock`.
    Unix(PathBuf),
    /// `tcp://host:port`; `host` carries no brackets, even for IPv6.
    Tcp {
        /// Name or IP address.
        host: String,
        /// Port, always explicit.
        port: u16,
    },
    /// `ssh://[user@]host[:port][/socket]`, reached through `ssh ... docker system dial-stdio`.
    Ssh {
        /// The `-l` user, if the URL names one.
        user: Option<String>,
        /// Name or IP address, without brackets.
        host: String,
        /// The `-p` port, if the URL names one.
        port: Option<u16>,
        /// The daemon socket on the remote machine, when not its default.
        socket_path: Option<String>,
    },
}

/// TLS material for a TCP endpoint. Paths point at files that existed when the context was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// CA certificate the daemon's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// Client certificate.
    pub cert: Option<PathBuf>,
    /// Client private key.
    pub key: Option<PathBuf>,
    /// Whether the daemon's certificate is verified (`--tlsverify`, or no `SkipTLSVerify`).
    pub verify: bool,
}

/// Why the context could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// `--context` and `-H` together (the CLI's own wording).
    #[error("conflicting options: cannot specify both --host and --context")]
    ConflictingOptions,
    /// `-H` given more than once.
    #[error("specify only one -H (got {count})")]
    MultipleHosts {
        /// How many were given.
        count: usize,
    },
    /// The config directory is needed but neither `--config`, `DOCKER_CONFIG` nor a home directory is known.
    #[error("cannot locate the Docker config directory: no home directory is known")]
    NoConfigDir,
    /// `config.json` exists but cannot be read.
    #[error("cannot read the Docker config file {}: {source}", path.display())]
    UnreadableConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `config.json` is not valid JSON, or `currentContext` is not a string.
    #[error("invalid Docker config file {}: {reason}", path.display())]
    InvalidConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No `meta.json` for the context name.
    #[error("unknown context `{name}` (chosen by {origin}): {} does not exist", path.display())]
    UnknownContext {
        /// The context name.
        name: String,
        /// What chose it.
        origin: Origin,
        /// The `meta.json` it would live in.
        path: PathBuf,
    },
    /// The context's `meta.json` exists but cannot be read.
    #[error("cannot read context `{name}` from {}: {source}", path.display())]
    UnreadableMeta {
        /// The context name.
        name: String,
        /// Its `meta.json`.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The context's `meta.json` is not what the CLI writes.
    #[error("invalid context `{name}` in {}: {reason}", path.display())]
    InvalidMeta {
        /// The context name.
        name: String,
        /// Its `meta.json`.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A host whose transport this tool cannot use.
    #[error("unsupported Docker host `{host}` (from {from}): {reason}")]
    UnsupportedScheme {
        /// The host as written.
        host: String,
        /// Where it was written: `-H`, `DOCKER_HOST`, or a context and its file.
        from: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// A host that does not parse.
    #[error("invalid Docker host `{host}` (from {from}): {reason}")]
    BadHost {
        /// The host as written.
        host: String,
        /// Where it was written: `-H`, `DOCKER_HOST`, or a context and its file.
        from: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file named by a flag, or the CA the CLI always loads, cannot be read.
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    TlsFile {
        /// "CA certificate", "client certificate" or "client key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl ContextError {
    /// A suggestion for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::ConflictingOptions => Some("drop either --context or -H/--host".into()),
            Self::MultipleHosts { .. } => Some("pass -H/--host once".into()),
            Self::NoConfigDir => Some("set DOCKER_CONFIG or pass --config".into()),
            Self::UnknownContext { .. } => {
                Some("`docker context ls` lists the contexts that exist".into())
            }
            Self::UnsupportedScheme { .. } | Self::BadHost { .. } => Some(
                "hosts look like unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host"
                    .into(),
            ),
            Self::TlsFile { .. } => Some(
                "TLS files come from --tlscacert/--tlscert/--tlskey, else DOCKER_CERT_PATH, \
                 else the Docker config directory"
                    .into(),
            ),
            Self::UnreadableConfig { .. }
            | Self::InvalidConfig { .. }
            | Self::UnreadableMeta { .. }
            | Self::InvalidMeta { .. } => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ContextFlag => "--context",
            Self::HostFlag => "-H/--host",
            Self::DockerHostEnv => "DOCKER_HOST",
            Self::DockerContextEnv => "DOCKER_CONTEXT",
            Self::ConfigFile => "currentContext in config.json",
            Self::Default => "default",
        })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp { host, port } => write!(f, "tcp://{}:{port}", bracketed(host)),
            Self::Ssh {
                user,
                host,
                port,
                socket_path,
            } => {
                f.write_str("ssh://")?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                f.write_str(&bracketed(host))?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                if let Some(path) = socket_path {
                    f.write_str(path)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "context `{}` ({}", self.context, self.host)?;
        match &self.tls {
            Some(tls) if tls.verify => f.write_str(", TLS")?,
            Some(_) => f.write_str(", TLS without verification")?,
            None => {}
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{tcp, unix};

    #[test]
    fn host_display() {
        assert_eq!(
            unix("/var/run/docker.sock").to_string(),
            "unix:///var/run/docker.sock"
        );
        assert_eq!(tcp("h", 2376).to_string(), "tcp://h:2376");
        assert_eq!(tcp("::1", 2375).to_string(), "tcp://[::1]:2375");
    }
}
