//! Which Docker daemon to talk to, chosen exactly as the `docker` CLI chooses it.
//!
//! This mirrors docker/cli: the context name comes from `resolveContextName` (`cli/command/cli.go`),
//! the default context's endpoint from `resolveDefaultDockerEndpoint` and the TLS flags of
//! `cli/flags/options.go`, host strings are normalised like `opts.ParseHost` (`opts/hosts.go`), named
//! contexts are read from the on-disk store (`cli/context/store`), and `ssh://` URLs are checked like
//! `cli/connhelper/ssh`. Nothing here touches the network: the only I/O is reading `config.json`,
//! a context's `meta.json`, and checking that TLS files exist.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The name of the implicit context built from `-H`, `DOCKER_HOST` and the TLS flags.
pub const DEFAULT_CONTEXT: &str = "default";

/// Where the daemon listens when nothing says otherwise (`opts.defaultUnixSocket`).
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The host `opts.ParseHost` fills in when a TCP address has none.
const DEFAULT_TCP_HOST: &str = "localhost";
/// IANA ports for the Docker API, plain and TLS (`opts.defaultHTTPPort`, `defaultTLSHTTPPort`).
const DEFAULT_HTTP_PORT: u16 = 2375;
const DEFAULT_TLS_PORT: u16 = 2376;

const ENV_HOST: &str = "DOCKER_HOST";
const ENV_CONTEXT: &str = "DOCKER_CONTEXT";
const ENV_CONFIG: &str = "DOCKER_CONFIG";
const ENV_CERT_PATH: &str = "DOCKER_CERT_PATH";
const ENV_TLS_VERIFY: &str = "DOCKER_TLS_VERIFY";
const ENV_TLS: &str = "DOCKER_TLS";

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

/// Resolves the endpoint the `docker` CLI would use with these flags and this environment.
///
/// `env` reads an environment variable (empty counts as unset, as in the CLI); `home` is the user's
/// home directory, used for `~/.docker` when neither `--config` nor `DOCKER_CONFIG` is set.
///
/// # Errors
///
/// Conflicting or repeated flags, an unknown context, an unreadable or malformed `config.json` or
/// `meta.json`, a host that does not parse or uses an unsupported scheme, and TLS files that
/// cannot be read; see [`ContextError`].
pub fn resolve(
    opts: &ContextOptions,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Endpoint, ContextError> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let flag_context = opts.context.as_deref().filter(|name| !name.is_empty());
    if flag_context.is_some() && !opts.hosts.is_empty() {
        return Err(ContextError::ConflictingOptions);
    }

    // `--config` overrides DOCKER_CONFIG for config.json and the context store.
    let config_dir = opts
        .config_dir
        .clone()
        .or_else(|| env(ENV_CONFIG).map(PathBuf::from))
        .or_else(|| home.map(|home| home.join(".docker")));

    let (name, origin) = if let Some(name) = flag_context {
        (name.to_owned(), Origin::ContextFlag)
    } else if !opts.hosts.is_empty() {
        (DEFAULT_CONTEXT.to_owned(), Origin::HostFlag)
    } else if env(ENV_HOST).is_some() {
        (DEFAULT_CONTEXT.to_owned(), Origin::DockerHostEnv)
    } else if let Some(name) = env(ENV_CONTEXT) {
        (name, Origin::DockerContextEnv)
    } else if let Some(name) = config_dir
        .as_deref()
        .map(current_context)
        .transpose()?
        .flatten()
    {
        (name, Origin::ConfigFile)
    } else {
        (DEFAULT_CONTEXT.to_owned(), Origin::Default)
    };

    if name == DEFAULT_CONTEXT {
        default_endpoint(opts, &env, home, origin)
    } else {
        let config_dir = config_dir.ok_or(ContextError::NoConfigDir)?;
        stored_endpoint(name, origin, &config_dir)
    }
}

/// Reads `currentContext` from `<config>/config.json`; a missing file means none.
///
/// The CLI only warns about an unreadable or invalid config.json and falls back to the default
/// context; this is an error here instead, so that a backup never silently goes to another daemon.
fn current_context(config_dir: &Path) -> Result<Option<String>, ContextError> {
    let path = config_dir.join("config.json");
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ContextError::UnreadableConfig { path, source }),
    };
    let invalid = |reason: String| ContextError::InvalidConfig {
        path: path.clone(),
        reason,
    };
    let config: Value = serde_json::from_slice(&bytes).map_err(|err| invalid(err.to_string()))?;
    if !config.is_object() {
        return Err(invalid("expected a JSON object".into()));
    }
    match go_field(&config, "currentContext") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(name)) if name.is_empty() => Ok(None),
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(_) => Err(invalid("`currentContext` is not a string".into())),
    }
}

/// The implicit `default` context: `-H` or `DOCKER_HOST`, plus TLS from flags and environment.
fn default_endpoint(
    opts: &ContextOptions,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    origin: Origin,
) -> Result<Endpoint, ContextError> {
    let (raw, from) = match opts.hosts.as_slice() {
        [] => (env(ENV_HOST).unwrap_or_default(), ENV_HOST),
        [host] => (host.clone(), "-H/--host"),
        hosts => return Err(ContextError::MultipleHosts { count: hosts.len() }),
    };
    let tls = default_tls(opts, env, home)?;
    let host = parse_host(&raw, Syntax::Flag { tls: tls.is_some() })
        .map_err(|err| err.into_context_error(&raw, from.to_owned()))?;
    Ok(Endpoint {
        context: DEFAULT_CONTEXT.to_owned(),
        origin,
        // The CLI loads the TLS files whatever the host, but only uses them over TCP.
        tls: tls.filter(|_| matches!(host, Host::Tcp { .. })),
        host,
    })
}

/// TLS for the default context, following `ClientOptions.InstallFlags`/`SetDefaultOptions`.
fn default_tls(
    opts: &ContextOptions,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Option<Tls>, ContextError> {
    // Any --tlsverify, even `=false`, turns TLS on; `--tls` alone connects without verifying.
    let verify = opts
        .tlsverify
        .unwrap_or_else(|| env(ENV_TLS_VERIFY).is_some());
    let enabled = opts.tls || env(ENV_TLS).is_some() || opts.tlsverify.is_some() || verify;
    if !enabled {
        return Ok(None);
    }

    // The CLI computes this default before parsing flags, so `--config` does not move it: only
    // DOCKER_CERT_PATH, then DOCKER_CONFIG, then ~/.docker.
    let cert_dir = || {
        env(ENV_CERT_PATH)
            .or_else(|| env(ENV_CONFIG))
            .map(PathBuf::from)
            .or_else(|| home.map(|home| home.join(".docker")))
            .ok_or(ContextError::NoConfigDir)
    };

    // The CLI always reads the CA file, even without --tlsverify (docker/cli#2468), so a missing
    // default ca.pem is an error there too.
    let ca = match &opts.tlscacert {
        Some(path) => path.clone(),
        None => cert_dir()?.join("ca.pem"),
    };
    check_readable(&ca, "CA certificate")?;

    // Client certificate and key default to files that are skipped when absent.
    let optional = |flag: &Option<PathBuf>, file: &str, what| -> Result<_, ContextError> {
        let path = match flag {
            Some(path) => path.clone(),
            None => {
                let path = cert_dir()?.join(file);
                if !path.exists() {
                    return Ok(None);
                }
                path
            }
        };
        check_readable(&path, what)?;
        Ok(Some(path))
    };
    let cert = optional(&opts.tlscert, "cert.pem", "client certificate")?;
    let key = optional(&opts.tlskey, "key.pem", "client key")?;
    Ok(Some(Tls {
        ca: Some(ca),
        cert,
        key,
        verify,
    }))
}

fn check_readable(path: &Path, what: &'static str) -> Result<(), ContextError> {
    fs::File::open(path)
        .map(drop)
        .map_err(|source| ContextError::TlsFile {
            what,
            path: path.to_owned(),
            source,
        })
}

/// A context from the store: `<config>/contexts/meta/<sha256(name)>/meta.json`, with TLS files in
/// `<config>/contexts/tls/<sha256(name)>/docker/`.
fn stored_endpoint(
    name: String,
    origin: Origin,
    config_dir: &Path,
) -> Result<Endpoint, ContextError> {
    let id = context_id(&name);
    let path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(ContextError::UnknownContext { name, origin, path })
        }
        Err(source) => return Err(ContextError::UnreadableMeta { name, path, source }),
    };
    let invalid = |reason: &str| ContextError::InvalidMeta {
        name: name.clone(),
        path: path.clone(),
        reason: reason.to_owned(),
    };
    let meta: Value = serde_json::from_slice(&bytes).map_err(|err| invalid(&err.to_string()))?;
    // Endpoint names are map keys, matched exactly; struct fields match case-insensitively (Go).
    let docker = go_field(&meta, "Endpoints")
        .and_then(|endpoints| endpoints.get("docker"))
        .filter(|docker| docker.is_object())
        .ok_or_else(|| invalid("it has no docker endpoint"))?;
    let raw = match go_field(docker, "Host") {
        None | Some(Value::Null) => "",
        Some(Value::String(host)) => host.as_str(),
        Some(_) => return Err(invalid("`Host` is not a string")),
    };
    let skip_verify = match go_field(docker, "SkipTLSVerify") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(skip)) => *skip,
        Some(_) => return Err(invalid("`SkipTLSVerify` is not a boolean")),
    };

    // The CLI uses TLS when the context has a TLS directory for its docker endpoint (even an
    // empty one) or asks to skip verification.
    let tls_dir = config_dir
        .join("contexts")
        .join("tls")
        .join(&id)
        .join("docker");
    let use_tls = skip_verify || tls_dir.is_dir();

    let host = if raw.is_empty() {
        // An endpoint without a host leaves the API client on its built-in default.
        Host::Unix(PathBuf::from(DEFAULT_SOCKET))
    } else {
        parse_host(raw, Syntax::Stored { tls: use_tls }).map_err(|err| {
            err.into_context_error(raw, format!("context `{name}`, {}", path.display()))
        })?
    };
    let tls = (use_tls && matches!(host, Host::Tcp { .. })).then(|| {
        let file = |file: &str| Some(tls_dir.join(file)).filter(|path| path.is_file());
        Tls {
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
            verify: !skip_verify,
        }
    });
    Ok(Endpoint {
        context: name,
        origin,
        host,
        tls,
    })
}

/// The store's directory name for a context: the hex SHA-256 of its name (`contextdirOf`).
fn context_id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// Looks a struct field up the way Go's `encoding/json` does: exact name first, then ignoring case.
fn go_field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let object = object.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// How a host string is read.
#[derive(Clone, Copy)]
enum Syntax {
    /// `-H` and `DOCKER_HOST`: normalised by `opts.ParseHost`, which fills in defaults.
    Flag { tls: bool },
    /// A stored context's host: handed to the API client as written, so a TCP address without a
    /// port gets the URL scheme's port (80, or 443 with TLS), as Go's HTTP client does.
    Stored { tls: bool },
}

/// A host parse failure, before it knows which context or variable it came from.
enum HostError {
    Unsupported(String),
    Bad(String),
}

impl HostError {
    fn into_context_error(self, host: &str, from: String) -> ContextError {
        let host = host.to_owned();
        match self {
            Self::Unsupported(reason) => ContextError::UnsupportedScheme { host, from, reason },
            Self::Bad(reason) => ContextError::BadHost { host, from, reason },
        }
    }
}

fn parse_host(raw: &str, syntax: Syntax) -> Result<Host, HostError> {
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

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A config dir and a fake environment, so tests never see the real ones.
    struct Fixture {
        dir: tempfile::TempDir,
        env: HashMap<String, String>,
        opts: ContextOptions,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                dir: tempfile::tempdir().unwrap(),
                env: HashMap::new(),
                opts: ContextOptions::default(),
            }
        }

        /// The home directory; its `.docker` is the config dir unless a test says otherwise.
        fn home(&self) -> PathBuf {
            self.dir.path().join("home")
        }

        fn config(&self) -> PathBuf {
            self.home().join(".docker")
        }

        fn env(mut self, name: &str, value: &str) -> Self {
            self.env.insert(name.into(), value.into());
            self
        }

        fn write(&self, path: &Path, content: &str) {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }

        fn config_json(self, content: &str) -> Self {
            self.write(&self.config().join("config.json"), content);
            self
        }

        /// Stores a context the way `docker context create` does (meta.json as the CLI writes it).
        fn context(self, name: &str, host: &str, skip_verify: bool, tls_files: &[&str]) -> Self {
            self.context_in(&self.config(), name, host, skip_verify, tls_files);
            self
        }

        fn context_in(
            &self,
            config: &Path,
            name: &str,
            host: &str,
            skip: bool,
            tls_files: &[&str],
        ) {
            let meta = serde_json::json!({
                "Name": name,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}},
            });
            let id = context_id(name);
            self.write(
                &config.join("contexts/meta").join(&id).join("meta.json"),
                &meta.to_string(),
            );
            for file in tls_files {
                self.write(
                    &config
                        .join("contexts/tls")
                        .join(&id)
                        .join("docker")
                        .join(file),
                    "pem",
                );
            }
        }

        fn resolve(&self) -> Result<Endpoint, ContextError> {
            let env = |name: &str| self.env.get(name).cloned();
            resolve(&self.opts, &env, Some(&self.home()))
        }

        fn ok(&self) -> Endpoint {
            self.resolve().unwrap()
        }

        fn err(&self) -> ContextError {
            self.resolve().unwrap_err()
        }
    }

    fn unix(path: &str) -> Host {
        Host::Unix(PathBuf::from(path))
    }

    fn tcp(host: &str, port: u16) -> Host {
        Host::Tcp {
            host: host.into(),
            port,
        }
    }

    fn flag(raw: &str) -> Result<Host, String> {
        parse_host(raw, Syntax::Flag { tls: false }).map_err(|err| match err {
            HostError::Unsupported(reason) | HostError::Bad(reason) => reason,
        })
    }

    #[test]
    fn nothing_set_is_the_default_socket() {
        let ep = Fixture::new().ok();
        assert_eq!(ep.context, "default");
        assert_eq!(ep.origin, Origin::Default);
        assert_eq!(ep.host, unix("/var/run/docker.sock"));
        assert_eq!(ep.tls, None);
        assert_eq!(
            ep.to_string(),
            "context `default` (unix:///var/run/docker.sock)"
        );
    }

    #[test]
    fn precedence_follows_the_cli() {
        let f = Fixture::new()
            .context("flag", "tcp://10.0.0.1:2375", false, &[])
            .context("envctx", "tcp://10.0.0.2:2375", false, &[])
            .context("current", "tcp://10.0.0.3:2375", false, &[])
            .config_json(r#"{"auths": {}, "currentContext": "current"}"#);
        assert_eq!(f.ok().context, "current");
        assert_eq!(f.ok().origin, Origin::ConfigFile);
        assert_eq!(f.ok().host, tcp("10.0.0.3", 2375));

        let mut f = f.env("DOCKER_CONTEXT", "envctx");
        assert_eq!(
            (f.ok().context, f.ok().origin),
            ("envctx".into(), Origin::DockerContextEnv)
        );

        f = f.env("DOCKER_HOST", "tcp://10.9.9.9:1234");
        let ep = f.ok();
        assert_eq!(
            (ep.context.as_str(), ep.origin),
            ("default", Origin::DockerHostEnv)
        );
        assert_eq!(ep.host, tcp("10.9.9.9", 1234));

        f.opts.hosts = vec!["unix:///run/other.sock".into()];
        let ep = f.ok();
        assert_eq!(
            (ep.context.as_str(), ep.origin),
            ("default", Origin::HostFlag)
        );
        assert_eq!(ep.host, unix("/run/other.sock"));

        f.opts.hosts.clear();
        f.opts.context = Some("flag".into());
        let ep = f.ok();
        assert_eq!(
            (ep.context.as_str(), ep.origin),
            ("flag", Origin::ContextFlag)
        );
        assert_eq!(ep.host, tcp("10.0.0.1", 2375));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let mut f = Fixture::new()
            .env("DOCKER_HOST", "")
            .env("DOCKER_CONTEXT", "")
            .config_json(r#"{"currentContext": ""}"#);
        f.opts.context = Some(String::new());
        let ep = f.ok();
        assert_eq!(
            (ep.origin, ep.host),
            (Origin::Default, unix(DEFAULT_SOCKET))
        );
    }

    #[test]
    fn context_and_host_conflict() {
        let mut f = Fixture::new();
        f.opts.context = Some("prod".into());
        f.opts.hosts = vec!["tcp://h:1".into()];
        let err = f.err();
        assert!(matches!(err, ContextError::ConflictingOptions));
        assert_eq!(
            err.to_string(),
            "conflicting options: cannot specify both --host and --context"
        );
    }

    #[test]
    fn more_than_one_host_flag_is_an_error() {
        let mut f = Fixture::new();
        f.opts.hosts = vec!["tcp://a:1".into(), "tcp://b:1".into()];
        assert!(matches!(f.err(), ContextError::MultipleHosts { count: 2 }));
    }

    #[test]
    fn host_flag_beats_docker_context_and_config() {
        let mut f = Fixture::new()
            .env("DOCKER_CONTEXT", "missing")
            .config_json(r#"{"currentContext": "missing"}"#);
        f.opts.hosts = vec!["tcp://h:1".into()];
        assert_eq!(f.ok().host, tcp("h", 1));
    }

    #[test]
    fn the_name_default_is_the_implicit_context() {
        let mut f = Fixture::new().env("DOCKER_HOST", "tcp://h:9");
        f.opts.context = Some("default".into());
        let ep = f.ok();
        // --context default still reads DOCKER_HOST, as the CLI's default context does.
        assert_eq!((ep.origin, ep.host), (Origin::ContextFlag, tcp("h", 9)));

        let f = Fixture::new().config_json(r#"{"currentContext": "default"}"#);
        assert_eq!(f.ok().host, unix(DEFAULT_SOCKET));
    }

    #[test]
    fn stored_context_path_is_the_sha256_of_its_name() {
        // Checked against `docker context create`: the store directory of "plain" is this hash.
        assert_eq!(
            context_id("plain"),
            "a116c9ed46d6207734a43317d30fd88f52ac8634c37d904bbf4e41d865f90475"
        );
    }

    #[test]
    fn unknown_context_names_it_and_its_file() {
        let f = Fixture::new().env("DOCKER_CONTEXT", "nope");
        let err = f.err();
        let ContextError::UnknownContext { name, origin, path } = &err else {
            panic!("{err:?}")
        };
        assert_eq!((name.as_str(), *origin), ("nope", Origin::DockerContextEnv));
        assert!(path.ends_with(format!("contexts/meta/{}/meta.json", context_id("nope"))));
        let message = err.to_string();
        assert!(message.starts_with("unknown context `nope` (chosen by DOCKER_CONTEXT): "));
        assert!(message.contains(&path.display().to_string()));
        assert!(err.hint().unwrap().contains("docker context ls"));
    }

    #[test]
    fn config_dir_precedence() {
        let alt = tempfile::tempdir().unwrap();
        let flag = tempfile::tempdir().unwrap();
        let mut f = Fixture::new()
            .context("home", "tcp://home:1", false, &[])
            .env("DOCKER_CONTEXT", "c")
            .env("DOCKER_CONFIG", alt.path().to_str().unwrap());
        f.context_in(alt.path(), "c", "tcp://from-env:1", false, &[]);
        f.context_in(flag.path(), "c", "tcp://from-flag:1", false, &[]);
        assert_eq!(f.ok().host, tcp("from-env", 1));
        f.opts.config_dir = Some(flag.path().to_owned());
        assert_eq!(f.ok().host, tcp("from-flag", 1));
    }

    #[test]
    fn config_json_is_read_from_the_config_dir() {
        let alt = tempfile::tempdir().unwrap();
        fs::write(alt.path().join("config.json"), r#"{"currentContext": "x"}"#).unwrap();
        let mut f = Fixture::new();
        f.opts.config_dir = Some(alt.path().to_owned());
        let err = f.err();
        assert!(matches!(
            err,
            ContextError::UnknownContext {
                origin: Origin::ConfigFile,
                ..
            }
        ));
    }

    #[test]
    fn invalid_config_json_is_an_error_naming_the_file() {
        let f = Fixture::new().config_json("{not json");
        let err = f.err();
        assert!(matches!(err, ContextError::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains("config.json"));

        let f = Fixture::new().config_json(r#"{"currentContext": 3}"#);
        assert!(f
            .err()
            .to_string()
            .contains("`currentContext` is not a string"));
    }

    #[test]
    fn config_json_is_not_read_when_something_else_decides() {
        let f = Fixture::new()
            .config_json("{not json")
            .env("DOCKER_HOST", "unix:///x.sock");
        assert_eq!(f.ok().host, unix("/x.sock"));
    }

    #[test]
    fn config_json_fields_match_case_insensitively_like_go() {
        let f = Fixture::new()
            .context("c", "tcp://h:1", false, &[])
            .config_json(r#"{"CurrentContext": "c"}"#);
        assert_eq!(f.ok().context, "c");
    }

    #[test]
    fn missing_home_only_matters_when_the_config_dir_is_needed() {
        let env = |_: &str| None;
        let ep = resolve(&ContextOptions::default(), &env, None).unwrap();
        assert_eq!(ep.host, unix(DEFAULT_SOCKET));

        let opts = ContextOptions {
            context: Some("prod".into()),
            ..ContextOptions::default()
        };
        assert!(matches!(
            resolve(&opts, &env, None),
            Err(ContextError::NoConfigDir)
        ));
    }

    #[test]
    fn stored_context_with_tls_files() {
        let mut f = Fixture::new().context(
            "prod",
            "tcp://10.0.0.2:2376",
            false,
            &["ca.pem", "cert.pem", "key.pem"],
        );
        f.opts.context = Some("prod".into());
        let ep = f.ok();
        let tls_dir = f
            .config()
            .join("contexts/tls")
            .join(context_id("prod"))
            .join("docker");
        assert_eq!(ep.host, tcp("10.0.0.2", 2376));
        assert_eq!(
            ep.tls,
            Some(Tls {
                ca: Some(tls_dir.join("ca.pem")),
                cert: Some(tls_dir.join("cert.pem")),
                key: Some(tls_dir.join("key.pem")),
                verify: true,
            })
        );
        assert_eq!(ep.to_string(), "context `prod` (tcp://10.0.0.2:2376, TLS)");
    }

    #[test]
    fn stored_context_tls_lists_present_files_only() {
        let mut f = Fixture::new().context("ca-only", "tcp://h:2376", false, &["ca.pem"]);
        f.opts.context = Some("ca-only".into());
        let tls = f.ok().tls.unwrap();
        assert!(tls.ca.is_some());
        assert_eq!((tls.cert, tls.key), (None, None));
    }

    #[test]
    fn stored_context_without_tls_dir_is_plain_tcp() {
        let mut f = Fixture::new().context("plain", "tcp://h:2375", false, &[]);
        f.opts.context = Some("plain".into());
        assert_eq!(f.ok().tls, None);
    }

    #[test]
    fn skip_tls_verify_means_tls_without_verification() {
        let mut f = Fixture::new().context("skip", "tcp://h:2376", true, &[]);
        f.opts.context = Some("skip".into());
        let ep = f.ok();
        assert_eq!(
            ep.tls,
            Some(Tls {
                ca: None,
                cert: None,
                key: None,
                verify: false,
            })
        );
        assert_eq!(
            ep.to_string(),
            "context `skip` (tcp://h:2376, TLS without verification)"
        );
    }

    #[test]
    fn stored_tcp_host_without_port_uses_the_url_scheme_port() {
        // The CLI hands a stored host to Go's HTTP client unchanged: http → 80, https → 443.
        let mut f = Fixture::new()
            .context("plain", "tcp://h", false, &[])
            .context("secure", "tcp://h", false, &["ca.pem"]);
        f.opts.context = Some("plain".into());
        assert_eq!(f.ok().host, tcp("h", 80));
        f.opts.context = Some("secure".into());
        assert_eq!(f.ok().host, tcp("h", 443));
    }

    #[test]
    fn stored_context_ignores_tls_for_sockets_and_ssh() {
        let mut f = Fixture::new()
            .context("sock", "unix:///run/d.sock", true, &["ca.pem"])
            .context("remote", "ssh://me@box:2222/run/d.sock", false, &["ca.pem"]);
        f.opts.context = Some("sock".into());
        assert_eq!((f.ok().host, f.ok().tls), (unix("/run/d.sock"), None));
        f.opts.context = Some("remote".into());
        let ep = f.ok();
        assert_eq!(ep.tls, None);
        assert_eq!(
            ep.host,
            Host::Ssh {
                user: Some("me".into()),
                host: "box".into(),
                port: Some(2222),
                socket_path: Some("/run/d.sock".into()),
            }
        );
        assert_eq!(ep.host.to_string(), "ssh://me@box:2222/run/d.sock");
    }

    #[test]
    fn stored_context_without_host_uses_the_default_socket() {
        let mut f = Fixture::new().context("empty", "", false, &[]);
        f.opts.context = Some("empty".into());
        assert_eq!(f.ok().host, unix(DEFAULT_SOCKET));
    }

    #[test]
    fn meta_json_problems_name_the_context_and_file() {
        let mut f = Fixture::new();
        f.opts.context = Some("broken".into());
        let meta = f
            .config()
            .join("contexts/meta")
            .join(context_id("broken"))
            .join("meta.json");
        for (content, reason) in [
            ("{", "EOF"),
            (r#"{"Name":"broken","Endpoints":{}}"#, "no docker endpoint"),
            (
                r#"{"Endpoints":{"docker":{"Host":5}}}"#,
                "`Host` is not a string",
            ),
            (
                r#"{"Endpoints":{"docker":{"Host":"tcp://h:1","SkipTLSVerify":"yes"}}}"#,
                "`SkipTLSVerify` is not a boolean",
            ),
        ] {
            f.write(&meta, content);
            let err = f.err();
            assert!(matches!(err, ContextError::InvalidMeta { .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.starts_with("invalid context `broken` in "),
                "{message}"
            );
            assert!(message.contains(&meta.display().to_string()), "{message}");
            assert!(message.contains(reason), "{message}");
        }
    }

    #[test]
    fn meta_json_keys_match_case_insensitively_like_go() {
        let mut f = Fixture::new();
        f.opts.context = Some("lower".into());
        f.write(
            &f.config()
                .join("contexts/meta")
                .join(context_id("lower"))
                .join("meta.json"),
            r#"{"endpoints":{"docker":{"host":"tcp://h:1","skipTLSVerify":false}}}"#,
        );
        assert_eq!(f.ok().host, tcp("h", 1));
    }

    #[test]
    fn stored_host_errors_name_the_context_and_file() {
        let mut f = Fixture::new()
            .context("pipe", "npipe:////./pipe/docker_engine", false, &[])
            .context("noscheme", "/tmp/x.sock", false, &[]);
        f.opts.context = Some("pipe".into());
        let err = f.err();
        assert!(matches!(err, ContextError::UnsupportedScheme { .. }));
        let message = err.to_string();
        assert!(message.contains("context `pipe`"), "{message}");
        assert!(message.contains("meta.json"), "{message}");
        assert!(message.contains("only on Windows"), "{message}");

        f.opts.context = Some("noscheme".into());
        assert!(matches!(f.err(), ContextError::BadHost { .. }));
    }

    #[test]
    fn docker_host_errors_name_the_variable() {
        let f = Fixture::new().env("DOCKER_HOST", "fd://");
        let message = f.err().to_string();
        assert_eq!(
            message,
            "unsupported Docker host `fd://` (from DOCKER_HOST): fd:// is a daemon listener; \
             clients connect with unix://, tcp:// or ssh://"
        );
        let mut f = Fixture::new();
        f.opts.hosts = vec!["tcp://h:abc".into()];
        assert_eq!(
            f.err().to_string(),
            "invalid Docker host `tcp://h:abc` (from -H/--host): invalid port `abc`"
        );
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

    #[test]
    fn host_display() {
        assert_eq!(
            unix("/var/run/docker.sock").to_string(),
            "unix:///var/run/docker.sock"
        );
        assert_eq!(tcp("h", 2376).to_string(), "tcp://h:2376");
        assert_eq!(tcp("::1", 2375).to_string(), "tcp://[::1]:2375");
    }

    /// A cert dir holding the three files the CLI looks for.
    fn cert_dir(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            fs::write(dir.path().join(file), "pem").unwrap();
        }
        dir
    }

    #[test]
    fn tlsverify_from_env_uses_cert_path_and_the_tls_default_host() {
        let certs = cert_dir(&["ca.pem", "cert.pem", "key.pem"]);
        let f = Fixture::new()
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        let ep = f.ok();
        // With TLS on and no host at all, the CLI defaults to tcp://localhost:2376.
        assert_eq!(ep.host, tcp("localhost", 2376));
        assert_eq!(
            ep.tls,
            Some(Tls {
                ca: Some(certs.path().join("ca.pem")),
                cert: Some(certs.path().join("cert.pem")),
                key: Some(certs.path().join("key.pem")),
                verify: true,
            })
        );
    }

    #[test]
    fn any_non_empty_tls_verify_value_verifies() {
        let certs = cert_dir(&["ca.pem"]);
        let f = Fixture::new()
            .env("DOCKER_TLS_VERIFY", "0")
            .env("DOCKER_CERT_PATH", certs.path().to_str().unwrap())
            .env("DOCKER_HOST", "tcp://h:2376");
        assert!(f.ok().tls.unwrap().verify);
    }

    #[test]
    fn tls_flag_alone_does_not_verify_and_keeps_port_2375() {
        let certs = cert_dir(&["ca.pem"]);
        let mut f = Fixture::new().env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        f.opts.tls = true;
        f.opts.hosts = vec!["tcp://h".into()];
        let ep = f.ok();
        // ParseTCPAddr always fills in 2375, TLS or not.
        assert_eq!(ep.host, tcp("h", 2375));
        let tls = ep.tls.unwrap();
        assert!(!tls.verify);
        // Absent default cert.pem/key.pem are dropped, as SetDefaultOptions does.
        assert_eq!((tls.cert, tls.key), (None, None));
    }

    #[test]
    fn tlsverify_false_still_enables_tls() {
        let certs = cert_dir(&["ca.pem"]);
        let mut f = Fixture::new()
            .env("DOCKER_CERT_PATH", certs.path().to_str().unwrap())
            .env("DOCKER_TLS_VERIFY", "1");
        f.opts.tlsverify = Some(false);
        f.opts.hosts = vec!["tcp://h:2376".into()];
        assert!(!f.ok().tls.unwrap().verify);
    }

    #[test]
    fn docker_tls_env_enables_tls() {
        let certs = cert_dir(&["ca.pem"]);
        let f = Fixture::new()
            .env("DOCKER_TLS", "1")
            .env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        let ep = f.ok();
        assert_eq!(ep.host, tcp("localhost", 2376));
        assert!(!ep.tls.unwrap().verify);
    }

    #[test]
    fn tls_file_flags_override_cert_path() {
        let certs = cert_dir(&["ca.pem", "cert.pem", "key.pem"]);
        let other = cert_dir(&["myca.pem", "mycert.pem", "mykey.pem"]);
        let mut f = Fixture::new().env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        f.opts.tlsverify = Some(true);
        f.opts.hosts = vec!["tcp://h:2376".into()];
        f.opts.tlscacert = Some(other.path().join("myca.pem"));
        f.opts.tlscert = Some(other.path().join("mycert.pem"));
        f.opts.tlskey = Some(other.path().join("mykey.pem"));
        let tls = f.ok().tls.unwrap();
        assert_eq!(tls.ca, Some(other.path().join("myca.pem")));
        assert_eq!(tls.cert, Some(other.path().join("mycert.pem")));
        assert_eq!(tls.key, Some(other.path().join("mykey.pem")));
    }

    #[test]
    fn default_cert_dir_ignores_the_config_flag() {
        // The CLI computes the default before it parses --config: DOCKER_CONFIG, else ~/.docker.
        let flag_dir = cert_dir(&["ca.pem"]);
        let mut f = Fixture::new();
        f.write(&f.config().join("ca.pem"), "pem");
        f.opts.config_dir = Some(flag_dir.path().to_owned());
        f.opts.tlsverify = Some(true);
        f.opts.hosts = vec!["tcp://h:2376".into()];
        assert_eq!(f.ok().tls.unwrap().ca, Some(f.config().join("ca.pem")));

        let env_dir = cert_dir(&["ca.pem"]);
        let f = Fixture {
            opts: f.opts.clone(),
            ..Fixture::new()
        }
        .env("DOCKER_CONFIG", env_dir.path().to_str().unwrap());
        assert_eq!(f.ok().tls.unwrap().ca, Some(env_dir.path().join("ca.pem")));
    }

    #[test]
    fn missing_ca_is_an_error_even_without_verify() {
        let empty = cert_dir(&[]);
        let mut f = Fixture::new().env("DOCKER_CERT_PATH", empty.path().to_str().unwrap());
        f.opts.tls = true;
        let err = f.err();
        assert!(
            matches!(
                err,
                ContextError::TlsFile {
                    what: "CA certificate",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .contains(&empty.path().join("ca.pem").display().to_string()));
        assert!(err.hint().unwrap().contains("--tlscacert"));
    }

    #[test]
    fn missing_flagged_client_cert_is_an_error() {
        let certs = cert_dir(&["ca.pem"]);
        let mut f = Fixture::new().env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        f.opts.tlsverify = Some(true);
        f.opts.tlscert = Some(certs.path().join("nope.pem"));
        assert!(matches!(
            f.err(),
            ContextError::TlsFile {
                what: "client certificate",
                ..
            }
        ));
    }

    #[test]
    fn tls_settings_are_dropped_for_sockets() {
        let certs = cert_dir(&["ca.pem"]);
        let mut f = Fixture::new().env("DOCKER_CERT_PATH", certs.path().to_str().unwrap());
        f.opts.tls = true;
        f.opts.hosts = vec!["unix:///var/run/docker.sock".into()];
        let ep = f.ok();
        assert_eq!((ep.host, ep.tls), (unix(DEFAULT_SOCKET), None));
    }

    #[test]
    fn stored_contexts_ignore_the_tls_flags() {
        let mut f = Fixture::new().context("plain", "tcp://h:2375", false, &[]);
        f.opts.context = Some("plain".into());
        f.opts.tlsverify = Some(true);
        assert_eq!(f.ok().tls, None);
    }
}
