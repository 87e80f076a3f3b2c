//! The remote repository forms restic writes (`s3:...`, `sftp:...`) as values, and the OpenDAL
//! operator each one is reached through. The operator is handed to `backend::OpendalBackend`,
//! which lays the repository out on it.

use opendal::Operator;

use crate::error::{Kind, UserError};
use crate::storage::S3Options;

/// `s3:https://host[:port]/bucket[/prefix]`, `s3:http://...`, `s3:host/bucket[/prefix]` (https).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Repo {
    /// `https://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

/// `sftp:[user@]host:path` or `sftp://[user@]host[:port]/path` (`//path` absolute, `/path`
/// relative to the login directory), as restic writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpRepo {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// As given: absolute (`/srv/repo`) or relative to the login directory (`repo`).
    pub path: String,
}

fn usage(msg: String, hint: &str) -> UserError {
    UserError::new(Kind::Usage, msg).hint(hint)
}

const S3_FORM: &str =
    "write restic:s3:https://HOST[:PORT]/BUCKET[/PREFIX] or restic:s3:HOST/BUCKET[/PREFIX]";
const SFTP_FORM: &str =
    "write restic:sftp:[USER@]HOST:/PATH or restic:sftp://[USER@]HOST[:PORT]//PATH";

/// Parses what follows `s3:`. Credentials never travel in the address: they come from the
/// AWS variables and files, so an address holding `user@` is refused without being echoed.
pub fn parse_s3(rest: &str) -> Result<S3Repo, UserError> {
    let (scheme, rest) = if let Some(r) = rest.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = rest.strip_prefix("http://") {
        ("http", r)
    } else if rest.starts_with("//") || rest.contains("://") {
        return Err(usage(
            "restic:s3: the address is not one restic takes".into(),
            S3_FORM,
        ));
    } else {
        ("https", rest)
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.contains('@') {
        return Err(usage(
            "restic:s3: credentials do not go in the repository's address".into(),
            "give them in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        ));
    }
    if host.is_empty() {
        return Err(usage("restic:s3: names no host".into(), S3_FORM));
    }
    let path = path.trim_matches('/');
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(usage(
            format!("restic:s3:{scheme}://{host}: names no bucket"),
            S3_FORM,
        ));
    }
    Ok(S3Repo {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
    })
}

/// Parses what follows `sftp:`.
pub fn parse_sftp(rest: &str) -> Result<SftpRepo, UserError> {
    let bad = |what: &str| usage(format!("restic:sftp: {what}"), SFTP_FORM);
    let (user_host, port, path) = if let Some(url) = rest.strip_prefix("//") {
        // sftp://[user@]host[:port]/path: `//path` is absolute, `/path` relative.
        let (authority, path) = url.split_once('/').ok_or_else(|| bad("names no path"))?;
        let (user_host, port) = split_port(authority).map_err(|m| bad(&m))?;
        (user_host, port, path.to_string())
    } else {
        // [user@]host:path, host possibly `[v6]`.
        let after_user = rest.rfind('@').map_or(0, |at| at + 1);
        let colon = if rest[after_user..].starts_with('[') {
            rest[after_user..]
                .find("]:")
                .map(|i| after_user + i + 1)
                .ok_or_else(|| bad("names no path"))?
        } else {
            rest[after_user..]
                .find(':')
                .map(|i| after_user + i)
                .ok_or_else(|| bad("names no path (HOST:PATH)"))?
        };
        (&rest[..colon], None, rest[colon + 1..].to_string())
    };
    let (user, host) = match user_host.rsplit_once('@') {
        Some((u, h)) => {
            if u.contains(':') {
                return Err(usage(
                    "restic:sftp: a password does not go in the repository's address".into(),
                    "log in with an SSH key (ssh-agent, ~/.ssh/config)",
                ));
            }
            (Some(u.to_string()).filter(|u| !u.is_empty()), h)
        }
        None => (None, user_host),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("names no host"));
    }
    if path.is_empty() {
        return Err(bad("names no path"));
    }
    Ok(SftpRepo {
        user,
        host: host.to_string(),
        port,
        path,
    })
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host = &authority[host_start..];
    let colon = if host.starts_with('[') {
        host.find("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    match colon {
        Some(c) => {
            let port = host[c + 1..]
                .parse()
                .map_err(|_| format!("{:?} is not a port", &host[c + 1..]))?;
            Ok((&authority[..host_start + c], Some(port)))
        }
        None => Ok((authority, None)),
    }
}

impl S3Repo {
    /// Whether the endpoint is AWS's own (virtual-hosted buckets, a region to find out).
    fn on_aws(&self) -> bool {
        let host = self.endpoint.split("://").nth(1).unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default();
        host == "amazonaws.com" || host.ends_with(".amazonaws.com")
    }

    /// The operator on the bucket, with the prefix as its root. Credentials as restic takes
    /// them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and the
    /// shared files); the region from AWS_DEFAULT_REGION / AWS_REGION, else AWS's answer for
    /// the bucket, else the profile's, else us-east-1. The endpoint is the address's own: the
    /// `AWS_ENDPOINT_URL*` variables and the `--s3-*` flags of `s3://` destinations play no part.
    pub fn operator(&self) -> opendal::Result<Operator> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut region = env("AWS_DEFAULT_REGION").or_else(|| env("AWS_REGION"));
        if region.is_none() && self.on_aws() {
            let (endpoint, bucket) = (self.endpoint.clone(), self.bucket.clone());
            region = super::backend::wait(async move {
                opendal::services::S3::detect_region(&endpoint, &bucket).await
            });
        }
        let opts = S3Options {
            endpoint: Some(self.endpoint.clone()),
            region,
            profile: None,
            path_style: Some(!self.on_aws()),
            part_size: None,
        };
        crate::storage::s3_operator(&self.bucket, &self.prefix, &opts)
    }
}

impl SftpRepo {
    /// `ssh://[user@]host[:port]`, as the openssh crate takes it.
    fn endpoint(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("ssh://{user}{host}{port}")
    }

    /// The operator on the server's file system, rooted at `/` (the repository's directory is
    /// the backend's: OpenDAL makes its root's directories on every connection, and a missing
    /// repository must stay missing). The system `ssh` logs in, with the user's config, keys
    /// and agent; the host's key must be known (`StrictHostKeyChecking=yes`).
    pub fn operator(&self) -> opendal::Result<Operator> {
        // What killed runs left connected goes first.
        super::ssh_masters::end_stale_once();
        let builder = opendal::services::Sftp::default()
            .endpoint(&self.endpoint())
            .root("/")
            .known_hosts_strategy("strict");
        Ok(Operator::new(builder)?.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(s: &str) -> (String, String, String) {
        let r = parse_s3(s).unwrap();
        (r.endpoint, r.bucket, r.prefix)
    }

    #[test]
    fn s3_forms() {
        let t = |e: &str, b: &str, p: &str| (e.to_string(), b.to_string(), p.to_string());
        assert_eq!(
            s3("s3.amazonaws.com/bucket"),
            t("https://s3.amazonaws.com", "bucket", "")
        );
        assert_eq!(
            s3("s3.amazonaws.com/bucket/a/b/"),
            t("https://s3.amazonaws.com", "bucket", "a/b")
        );
        assert_eq!(
            s3("http://127.0.0.1:9000/bucket/prefix"),
            t("http://127.0.0.1:9000", "bucket", "prefix")
        );
        assert_eq!(
            s3("https://minio.example:9000/b"),
            t("https://minio.example:9000", "b", "")
        );
        for bad in [
            "",
            "host",
            "host/",
            "http://host",
            "https:///bucket",
            "//bucket/x",
            "ftp://host/b",
        ] {
            assert!(parse_s3(bad).is_err(), "{bad}");
        }
        let err = parse_s3("https://AKIA:s3cr3t@host/b")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(parse_s3("AKIA:s3cr3t@host/b").is_err());
        assert!(!S3Repo {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "b".into(),
            prefix: "".into()
        }
        .on_aws());
        assert!(parse_s3("s3.eu-west-1.amazonaws.com/b").unwrap().on_aws());
    }

    #[test]
    fn sftp_forms() {
        let r = parse_sftp("user@host:/srv/repo").unwrap();
        assert_eq!(
            r,
            SftpRepo {
                user: Some("user".into()),
                host: "host".into(),
                port: None,
                path: "/srv/repo".into()
            }
        );
        let r = parse_sftp("host:repo").unwrap();
        assert_eq!(
            (r.user, r.host.as_str(), r.path.as_str()),
            (None, "host", "repo")
        );
        let r = parse_sftp("//user@host:2222//srv/repo").unwrap();
        assert_eq!(r.port, Some(2222));
        assert_eq!(r.path, "/srv/repo");
        assert_eq!(r.user.as_deref(), Some("user"));
        let r = parse_sftp("//host/repo").unwrap();
        assert_eq!((r.port, r.path.as_str()), (None, "repo"));
        let r = parse_sftp("//u@[::1]:22//r").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", Some(22)));
        let r = parse_sftp("u@[::1]:/r").unwrap();
        assert_eq!((r.host.as_str(), r.path.as_str()), ("::1", "/r"));
        for bad in [
            "host",
            "host:",
            ":/x",
            "//host",
            "//host:x/r",
            "//u@h:99999//r",
        ] {
            assert!(parse_sftp(bad).is_err(), "{bad}");
        }
        let err = parse_sftp("u:pw@host:/r").unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
    }
}
