//! The docker CLI's on-disk context store: `meta.json` under the SHA-256 of the context's name,
//! and the TLS files beside it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::host::{parse_host, Syntax, DEFAULT_SOCKET};
use super::{ContextError, Endpoint, Host, Origin, Tls};

/// A context from the store: `<config>/contexts/meta/<sha256(name)>/meta.json`, with TLS files in
/// `<config>/contexts/tls/<sha256(name)>/docker/`.
pub(super) fn stored_endpoint(
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
pub(super) fn context_id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// Looks a struct field up the way Go's `encoding/json` does: exact name first, then ignoring case.
pub(super) fn go_field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let object = object.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{tcp, unix, Fixture};
    use super::*;

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
    fn stored_contexts_ignore_the_tls_flags() {
        let mut f = Fixture::new().context("plain", "tcp://h:2375", false, &[]);
        f.opts.context = Some("plain".into());
        f.opts.tlsverify = Some(true);
        assert_eq!(f.ok().tls, None);
    }
}
