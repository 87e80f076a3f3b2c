//! The precedence of the docker CLI: which context the flags, the environment and `config.json`
//! choose, and the default context's endpoint with its TLS material.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::host::{parse_host, Syntax};
use super::store::{go_field, stored_endpoint};
use super::{ContextError, ContextOptions, Endpoint, Host, Origin, Tls, DEFAULT_CONTEXT};

const ENV_HOST: &str = "DOCKER_HOST";
const ENV_CONTEXT: &str = "DOCKER_CONTEXT";
const ENV_CONFIG: &str = "DOCKER_CONFIG";
const ENV_CERT_PATH: &str = "DOCKER_CERT_PATH";
const ENV_TLS_VERIFY: &str = "DOCKER_TLS_VERIFY";
const ENV_TLS: &str = "DOCKER_TLS";

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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::fixture::{cert_dir, tcp, unix, Fixture};
    use super::super::host::DEFAULT_SOCKET;
    use super::*;

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
}
