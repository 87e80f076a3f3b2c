//! `rest:` repositories: restic's REST protocol (version 2), as a rustic_core backend of our own
//! over reqwest (rustic_backend's carries a C crypto build). What a `rest:URL` says (the server,
//! and credentials from the URL or `RESTIC_REST_USERNAME`/`RESTIC_REST_PASSWORD`), the requests
//! (`HEAD`/`GET`/`POST`/`DELETE /{type}/{name}`, `/config`, `POST /?create=true`), bounded retries
//! of what may pass, and errors that name the server without its password.
//!
//! rustic calls backends synchronously, from the caller's thread and its own workers; the
//! tool's runtime is single-threaded and may be the caller. So the requests run on the small
//! storage runtime of `backend` (`backend::wait`, shared with the S3 and SFTP repositories), and
//! the caller waits on a channel: no runtime is entered or blocked on from inside another,
//! whichever thread calls.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use age::secrecy::{ExposeSecret, SecretString};
use bytes::{Bytes, BytesMut};
use percent_encoding::percent_decode_str;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode, Url};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

use crate::error::{Kind, UserError};

/// The media type of version 2 listings (names with sizes).
const V2: &str = "application/vnd.x.restic.rest.v2";
/// Attempts per request: transient failures (no connection, a timeout, 5xx, 429) are tried again
/// after 0.25 s, 0.5 s, 1 s.
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// No progress on a connection for this long fails the attempt (a pack may take long in all).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a `rest:` repository is: the server's URL (no credentials in it; always ending in `/`)
/// and the user and password the URL carried. `Debug` shows no password.
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    url: Url,
    user: Option<String>,
    password: Option<String>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Location")
            .field("url", &self.url.as_str())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Location {
    /// The server's URL, without credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url.as_str())
    }
}

impl Location {
    /// Parses what follows `rest:`: `http[s]://[user[:password]@]host[:port][/path]`. The user
    /// and password may be percent-encoded, as in any URL.
    pub fn parse(text: &str) -> Result<Location, UserError> {
        // No password in the message, whether the text is a URL or not.
        let shown = match crate::url::strip_credentials(text) {
            (shown, true) => shown.into_owned(),
            (_, false) => match text.rsplit_once('@') {
                Some((_, host)) => format!("<redacted>@{host}"),
                None => text.to_string(),
            },
        };
        let bad = |why: String| {
            UserError::new(Kind::Usage, format!("restic:rest:{shown}: {why}")).hint(
                "write restic:rest:http://host:8000/repo/ (or https://user:password@host/repo/)",
            )
        };
        let mut url = Url::parse(text).map_err(|e| bad(format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("{}: is not http or https", url.scheme())));
        }
        if url.host_str().unwrap_or_default().is_empty() {
            return Err(bad("names no server".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "a REST repository's URL has no query or fragment".into()
            ));
        }
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let user = Some(decode(url.username())).filter(|u| !u.is_empty());
        let password = url.password().map(decode);
        // Neither can fail on an http(s) URL with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Location {
            url,
            user,
            password,
        })
    }

    /// Whether the URL carried a user or a password.
    pub fn has_credentials(&self) -> bool {
        self.user.is_some() || self.password.is_some()
    }

    /// The credentials to send: the URL's, else `RESTIC_REST_USERNAME` and
    /// `RESTIC_REST_PASSWORD` (as restic 0.17 does: the environment only when the URL has
    /// neither).
    fn credentials(&self, env: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        if self.has_credentials() {
            return Some(Credentials {
                user: self.user.clone().unwrap_or_default(),
                password: SecretString::from(self.password.clone().unwrap_or_default()),
            });
        }
        let user = env("RESTIC_REST_USERNAME").filter(|v| !v.is_empty());
        let password = env("RESTIC_REST_PASSWORD").filter(|v| !v.is_empty());
        if user.is_none() && password.is_none() {
            return None;
        }
        Some(Credentials {
            user: user.unwrap_or_default(),
            password: SecretString::from(password.unwrap_or_default()),
        })
    }
}

/// HTTP basic credentials.
#[derive(Clone)]
struct Credentials {
    user: String,
    password: SecretString,
}

/// The client every `rest:` repository shares (one connection pool). Its requests run on the
/// storage runtime of `backend` (`backend::wait`), as the S3 and SFTP ones do.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // The TLS provider is the process's (ring, installed at start); unit tests may get
            // here first.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .user_agent(concat!("docker-volume-backup/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("cannot make an HTTP client: {}", e.without_url()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// An answer: its status, `Content-Type`, `Content-Length` and body.
struct Answer {
    status: StatusCode,
    content_type: String,
    length: Option<u64>,
    body: Bytes,
}

/// Why a request failed, in words without a secret.
#[derive(Debug)]
enum Failure {
    /// The server answered with an error status (and this much of its body).
    Status(StatusCode, String),
    /// No answer: connection refused, a timeout, a broken connection.
    Network(String),
}

impl Failure {
    fn is_transient(&self) -> bool {
        match self {
            Failure::Status(s, _) => {
                (s.is_server_error() && *s != StatusCode::NOT_IMPLEMENTED)
                    || *s == StatusCode::TOO_MANY_REQUESTS
            }
            // A certificate that is not trusted stays so.
            Failure::Network(e) => !e.contains("certificate"),
        }
    }

    fn status(&self) -> Option<StatusCode> {
        match self {
            Failure::Status(s, _) => Some(*s),
            Failure::Network(_) => None,
        }
    }

    /// What went wrong and, for the common causes, what to do.
    fn explain(&self, server: &Location) -> (String, Option<String>) {
        match self {
            Failure::Status(s, body) => {
                let said = if body.is_empty() {
                    s.to_string()
                } else {
                    format!("{s}: {body}")
                };
                let hint = match *s {
                    StatusCode::UNAUTHORIZED => Some(
                        "check the user and password: in the URL (rest:https://user:password@host/repo/) \
                         or in RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD"
                            .to_string(),
                    ),
                    StatusCode::FORBIDDEN => Some(
                        "the server does not let this user do that: a server in append-only mode \
                         refuses deletions (prune, forget), and a private one other users' paths"
                            .to_string(),
                    ),
                    _ => None,
                };
                (format!("the REST server answered {said}"), hint)
            }
            Failure::Network(e) if e.contains("certificate") => (
                format!("cannot reach the REST server ({e})"),
                Some(
                    "the server's TLS certificate is not trusted: add its CA to the system's \
                     certificates, or name a file of them in SSL_CERT_FILE"
                        .to_string(),
                ),
            ),
            Failure::Network(e) => (
                format!("cannot reach the REST server ({e})"),
                Some(format!(
                    "is the server running at {}? check the host, the port and http/https",
                    origin(&server.url)
                )),
            ),
        }
    }
}

/// `scheme://host:port/`.
fn origin(url: &Url) -> String {
    format!("{}/", url.origin().ascii_serialization())
}

/// A reqwest error as text: its chain of causes, no URL (ours is shown beside it, without a
/// password).
fn network_error(e: reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    // The innermost cause says it best ("Connection refused (os error 111)"); the layers
    // above it are the client's own ("client error (Connect)").
    let mut innermost = None;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    let text = match innermost {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_string(),
    };
    // Belt and braces: no URL, and none of its user information, gets through.
    Failure::Network(crate::url::strip_in_text(&text))
}

/// A `rest:` repository as rustic's backend.
#[derive(Debug)]
pub struct RestBackend {
    location: Location,
    credentials: Option<Credentials>,
    client: reqwest::Client,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ..)", self.user)
    }
}

impl RestBackend {
    /// The backend for `location`, with its credentials from the URL or the environment.
    pub fn new(location: &Location) -> Result<RestBackend, UserError> {
        let client = client().map_err(|e| UserError::new(Kind::Failure, e))?;
        Ok(RestBackend {
            credentials: location.credentials(|k| std::env::var(k).ok()),
            location: location.clone(),
            client: client.clone(),
        })
    }

    fn url_of(&self, tpe: FileType, id: &Id) -> Url {
        let path = match tpe {
            FileType::Config => "config".to_string(),
            _ => format!("{}/{}", tpe.dirname(), id.to_hex().as_str()),
        };
        self.join(&path)
    }

    fn join(&self, path: &str) -> Url {
        // The base ends in `/` and `path` is relative: the join cannot fail.
        self.location
            .url
            .join(path)
            .unwrap_or_else(|_| self.location.url.clone())
    }

    /// One request, tried again while it fails in a way that may pass. Error statuses are
    /// failures, except those in `fine`.
    fn request(
        &self,
        method: Method,
        url: &Url,
        headers: &[(reqwest::header::HeaderName, HeaderValue)],
        body: Option<Bytes>,
        fine: &[StatusCode],
    ) -> Result<Answer, Failure> {
        let mut pause = FIRST_PAUSE;
        let mut attempt = 1;
        loop {
            let mut req = self.client.request(method.clone(), url.clone());
            for (name, value) in headers {
                req = req.header(name, value.clone());
            }
            if let Some(c) = &self.credentials {
                req = req.basic_auth(&c.user, Some(c.password.expose_secret()));
            }
            if let Some(body) = &body {
                req = req
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone());
            }
            let head = method == Method::HEAD;
            let outcome = super::backend::wait(async move {
                let resp = req.send().await.map_err(network_error)?;
                let status = resp.status();
                let header = |name| {
                    resp.headers()
                        .get(name)
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                        .map(str::to_string)
                };
                let content_type = header(CONTENT_TYPE).unwrap_or_default();
                let length = header(CONTENT_LENGTH).and_then(|v| v.parse().ok());
                let body = if head {
                    Bytes::new()
                } else {
                    resp.bytes().await.map_err(network_error)?
                };
                Ok(Answer {
                    status,
                    content_type,
                    length,
                    body,
                })
            });
            let failure = match outcome {
                Ok(a) if a.status.is_success() || fine.contains(&a.status) => return Ok(a),
                Ok(a) => {
                    let text = String::from_utf8_lossy(&a.body);
                    let first = text.lines().next().unwrap_or_default().trim();
                    let first: String = first.chars().take(200).collect();
                    Failure::Status(a.status, crate::url::strip_in_text(&first))
                }
                Err(f) => f,
            };
            if attempt >= ATTEMPTS || !failure.is_transient() {
                return Err(failure);
            }
            std::thread::sleep(pause);
            pause *= 2;
            attempt += 1;
        }
    }

    /// A failure as rustic's error: which request on which server, and why.
    fn error(&self, doing: &str, url: &Url, failure: &Failure) -> Box<RusticError> {
        let (what, hint) = failure.explain(&self.location);
        let path = url
            .as_str()
            .strip_prefix(self.location.url.as_str())
            .unwrap_or(url.as_str());
        let mut text = format!("{doing} {path} at {}: {what}", self.location);
        if let Some(hint) = hint {
            text.push_str(&format!(" ({hint})"));
        }
        let kind = match failure.status() {
            Some(StatusCode::UNAUTHORIZED) => ErrorKind::Credentials,
            Some(StatusCode::FORBIDDEN) => ErrorKind::AppendOnly,
            _ => ErrorKind::Backend,
        };
        // The text goes in as a context value, so that braces in it are never placeholders.
        RusticError::new(kind, "{what}").attach_context("what", text)
    }

    /// Whether the repository has a `config`: `Ok(None)` when it has not, its size when it has.
    fn config_size(&self) -> Result<Option<u64>, (Url, Failure)> {
        let url = self.join("config");
        let answer = self
            .request(Method::HEAD, &url, &[], None, &[StatusCode::NOT_FOUND])
            .map_err(|f| (url, f))?;
        Ok((answer.status != StatusCode::NOT_FOUND).then_some(answer.length.unwrap_or(0)))
    }
}

/// Whether a repository is at `location` (its `config` is there). An unreachable server or
/// refused credentials are errors that say so, naming `shown` (the repository, no password).
pub fn exists(location: &Location, shown: &str) -> anyhow::Result<bool> {
    let be = RestBackend::new(location)?;
    match be.config_size() {
        Ok(size) => Ok(size.is_some()),
        Err((_, failure)) => {
            let (what, hint) = failure.explain(location);
            let mut err = UserError::new(Kind::Failure, format!("{shown}: {what}"));
            if let Some(hint) = hint {
                err = err.hint(hint);
            }
            Err(err.into())
        }
    }
}

impl ReadBackend for RestBackend {
    fn location(&self) -> String {
        format!("rest:{}", self.location)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            return match self.config_size() {
                Ok(None) => Ok(Vec::new()),
                Ok(Some(size)) => Ok(vec![(Id::default(), u32::try_from(size).unwrap_or(0))]),
                Err((url, f)) => Err(self.error("looking for", &url, &f)),
            };
        }
        let url = self.join(&format!("{}/", tpe.dirname()));
        let accept = [(ACCEPT, HeaderValue::from_static(V2))];
        let answer = self
            .request(Method::GET, &url, &accept, None, &[StatusCode::NOT_FOUND])
            .map_err(|f| self.error("listing", &url, &f))?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let bad = |e: String| {
            RusticError::new(ErrorKind::Backend, "{what}").attach_context(
                "what",
                format!(
                    "listing {} at {}: not a REST listing ({e})",
                    tpe.dirname(),
                    self.location
                ),
            )
        };
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&answer.body).map_err(|e| bad(e.to_string()))?;
        let v2 = answer.content_type.starts_with(V2);
        let mut found = Vec::with_capacity(entries.len());
        for entry in entries {
            // Version 2: {"name": ..., "size": ...}; version 1: names only.
            let (name, size) = match &entry {
                serde_json::Value::String(name) if !v2 => (name.as_str(), None),
                _ => (
                    entry["name"].as_str().unwrap_or_default(),
                    entry["size"].as_u64(),
                ),
            };
            // Names that are no id (temporary files a server may show) are not the repository's.
            let Ok(id) = name.parse::<Id>() else {
                continue;
            };
            let size = match size {
                Some(size) => size,
                None => {
                    let file = self.url_of(tpe, &id);
                    let head = self
                        .request(Method::HEAD, &file, &[], None, &[])
                        .map_err(|f| self.error("reading the size of", &file, &f))?;
                    head.length.unwrap_or(0)
                }
            };
            let size = u32::try_from(size).map_err(|_| bad(format!("{name} is over 4 GiB")))?;
            found.push((id, size));
        }
        Ok(found)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let url = self.url_of(tpe, id);
        self.request(Method::GET, &url, &[], None, &[])
            .map(|a| a.body)
            .map_err(|f| self.error("reading", &url, &f))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let url = self.url_of(tpe, id);
        let (start, end) = (u64::from(offset), u64::from(offset) + u64::from(length) - 1);
        let range = HeaderValue::from_str(&format!("bytes={start}-{end}"))
            .expect("a range is a valid header value");
        let answer = self
            .request(Method::GET, &url, &[(RANGE, range)], None, &[])
            .map_err(|f| self.error("reading", &url, &f))?;
        let body = if answer.status == StatusCode::PARTIAL_CONTENT {
            answer.body
        } else {
            // A server that ignores ranges sends the whole file.
            let (from, to) = (offset as usize, offset as usize + length as usize);
            if answer.body.len() < to {
                Bytes::new()
            } else {
                answer.body.slice(from..to)
            }
        };
        if body.len() != length as usize {
            return Err(
                RusticError::new(ErrorKind::Backend, "{what}").attach_context(
                    "what",
                    format!(
                        "reading {} at {}: {} bytes at {offset} asked, {} came",
                        url.as_str()
                            .strip_prefix(self.location.url.as_str())
                            .unwrap_or_default(),
                        self.location,
                        length,
                        body.len()
                    ),
                ),
            );
        }
        Ok(body)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.url_of(tpe, id).to_string()
    }
}

impl WriteBackend for RestBackend {
    fn create(&self) -> RusticResult<()> {
        let url = self.join("?create=true");
        self.request(Method::POST, &url, &[], Some(Bytes::new()), &[])
            .map(drop)
            .map_err(|f| self.error("creating the repository", &url, &f))
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let parts = content.into_vec();
        let body = if parts.len() == 1 {
            parts.into_iter().next().unwrap_or_default()
        } else {
            let mut all = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for part in parts {
                all.extend_from_slice(&part);
            }
            all.freeze()
        };
        let url = self.url_of(tpe, id);
        self.request(Method::POST, &url, &[], Some(body), &[])
            .map(drop)
            .map_err(|f| self.error("writing", &url, &f))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let url = self.url_of(tpe, id);
        // Gone already (an earlier attempt that went through) is removed.
        self.request(Method::DELETE, &url, &[], None, &[StatusCode::NOT_FOUND])
            .map(drop)
            .map_err(|f| self.error("removing", &url, &f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(l: &Location, env: &[(&str, &str)]) -> Option<(String, String)> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.credentials(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .map(|c| (c.user, c.password.expose_secret().to_string()))
    }

    #[test]
    fn locations() {
        let l = Location::parse("http://127.0.0.1:8000/repo").unwrap();
        assert_eq!(l.to_string(), "http://127.0.0.1:8000/repo/");
        assert_eq!(creds(&l, &[]), None);
        let l = Location::parse("https://u:s%40cret@host:8000/a/b/").unwrap();
        assert_eq!(l.to_string(), "https://host:8000/a/b/");
        assert_eq!(creds(&l, &[]), Some(("u".into(), "s@cret".into())));
        assert!(!format!("{l:?}").contains("cret"), "{l:?}");
        let l = Location::parse("http://host/").unwrap();
        assert_eq!(l.to_string(), "http://host/");
        for bad in [
            "host:8000/repo",
            "ftp://host/",
            "http://u:secret@/x",
            "http://h/?a=b",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{bad}");
            assert!(!e.message.contains("secret"), "{}", e.message);
        }
    }

    #[test]
    fn credentials_from_the_environment_only_when_the_url_has_none() {
        let env = [
            ("RESTIC_REST_USERNAME", "envuser"),
            ("RESTIC_REST_PASSWORD", "envpass"),
        ];
        let bare = Location::parse("http://host:8000/").unwrap();
        assert_eq!(
            creds(&bare, &env),
            Some(("envuser".into(), "envpass".into()))
        );
        let given = Location::parse("http://me:mine@host:8000/").unwrap();
        assert_eq!(creds(&given, &env), Some(("me".into(), "mine".into())));
        let user_only = Location::parse("http://me@host:8000/").unwrap();
        assert_eq!(creds(&user_only, &env), Some(("me".into(), String::new())));
    }

    #[test]
    fn failures_say_what_to_do_and_only_some_are_tried_again() {
        let server = Location::parse("http://u:secret@h:8000/r/").unwrap();
        let status =
            |code: u16| Failure::Status(StatusCode::from_u16(code).unwrap(), String::new());
        let (what, hint) = status(401).explain(&server);
        assert_eq!(what, "the REST server answered 401 Unauthorized");
        assert!(hint.unwrap().contains("RESTIC_REST_PASSWORD"));
        assert!(status(403)
            .explain(&server)
            .1
            .unwrap()
            .contains("append-only"));
        let refused = Failure::Network("cannot connect: Connection refused".into());
        let (what, hint) = refused.explain(&server);
        assert!(what.contains("Connection refused"), "{what}");
        assert_eq!(
            hint.unwrap(),
            "is the server running at http://h:8000/? check the host, the port and http/https"
        );
        let untrusted = Failure::Network("cannot connect: invalid peer certificate".into());
        assert!(untrusted
            .explain(&server)
            .1
            .unwrap()
            .contains("SSL_CERT_FILE"));
        assert!(refused.is_transient());
        assert!(!untrusted.is_transient());
        for (code, again) in [
            (500, true),
            (503, true),
            (429, true),
            (501, false),
            (404, false),
        ] {
            assert_eq!(status(code).is_transient(), again, "{code}");
        }
    }

    #[test]
    fn paths() {
        let be = RestBackend::new(&Location::parse("http://h:1/r/").unwrap()).unwrap();
        let id: Id = "ab".repeat(32).parse().unwrap();
        assert_eq!(
            be.url_of(FileType::Pack, &id).as_str(),
            format!("http://h:1/r/data/{}", "ab".repeat(32))
        );
        assert_eq!(
            be.url_of(FileType::Config, &Id::default()).as_str(),
            "http://h:1/r/config"
        );
        assert_eq!(
            be.join("?create=true").as_str(),
            "http://h:1/r/?create=true"
        );
        assert_eq!(be.join("keys/").as_str(), "http://h:1/r/keys/");
    }
}
