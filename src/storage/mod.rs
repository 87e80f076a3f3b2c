//! Where archives are kept: local directories and S3-compatible object storage, through Apache
//! OpenDAL. Parsing destinations, building operators (S3 settings from the standard AWS
//! environment and files, overridden by the `S3Options` given), reading one archive as a
//! blocking stream, and listing what a destination holds.

pub mod catalog;
mod input;
pub mod restic;
pub mod restore_times;
pub mod save_times;
mod sink;
pub mod upload;
mod volume_records;

pub use input::{open_input, open_remote};
pub use sink::Sink;

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Result;
use bytes::Bytes;
use futures_util::StreamExt;
use opendal::Operator;

use crate::error::{Kind, UserError};
use crate::pipe;

/// Part size of multipart uploads when nothing else is said: S3 allows 10,000 parts, so 16 MiB
/// parts take archives up to 160 GB, and two in flight keep memory near 32 MiB.
pub const DEFAULT_PART_SIZE: usize = 16 << 20;
/// S3 refuses parts below 5 MiB (except the last).
pub const MIN_PART_SIZE: usize = 5 << 20;

/// S3 settings given to this run (from the command line); the environment fills in the rest.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// `Some(true)`: path-style URLs; `Some(false)`: virtual-hosted; `None`: path-style with a
    /// custom endpoint (MinIO, moto, Ceph...), virtual-hosted on AWS.
    pub path_style: Option<bool>,
    pub part_size: Option<usize>,
}

/// A place that holds archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
    /// `restic:REPO`: a restic repository (snapshots, not archives; see `storage::restic`).
    Restic(restic::ResticTarget),
}

impl Location {
    /// `s3://bucket/prefix`, `file:///dir`, or a local directory path.
    pub fn parse(s: &str) -> Result<Location, UserError> {
        if restic::ResticTarget::is_restic(s) {
            return Ok(Location::Restic(restic::ResticTarget::parse(s)?));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(UserError::new(Kind::Usage, format!("{s}: no bucket name"))
                    .hint("write s3://BUCKET or s3://BUCKET/PREFIX"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Location::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(UserError::new(
                Kind::Usage,
                format!("{s}: `{scheme}://` destinations are not supported"),
            )
            .hint("use a local directory or s3://BUCKET/PREFIX"));
        }
        Ok(Location::Local(PathBuf::from(s)))
    }

    /// Whether `s` names a destination (a place holding archives) rather than one archive: an
    /// existing local directory, or an `s3://` URL that is a bare bucket, ends in `/`, or whose
    /// last part is not an archive's name (`.tar`, `.tar.zst`, `.tar.gz`, `.tgz`, `+.age`).
    pub fn is_destination(s: &str) -> bool {
        if restic::ResticTarget::is_restic(s) {
            return true;
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            return match rest.split_once('/') {
                None => true,
                Some((_, key)) => {
                    let last = key.rsplit('/').next().unwrap_or_default();
                    !catalog::is_archive_name(last)
                }
            };
        }
        if s == "-" || Location::is_remote(s) {
            return false;
        }
        Path::new(s.strip_prefix("file://").unwrap_or(s)).is_dir()
    }

    /// Whether `s` names a remote location (a URL other than `file://`).
    pub fn is_remote(s: &str) -> bool {
        s.contains("://") && !s.starts_with("file://")
    }

    /// The location `name` lives in, and `name`'s last component: `s3://b/p/x.tar` gives
    /// (`s3://b/p`, `x.tar`).
    pub fn split_object(s: &str) -> Result<(Location, String), UserError> {
        let (dir, name) = s.rsplit_once('/').unwrap_or((".", s));
        if name.is_empty() || dir.ends_with(':') || dir.ends_with(":/") {
            return Err(UserError::new(
                Kind::Usage,
                format!("{s}: not the address of an archive"),
            ));
        }
        Ok((Location::parse(dir)?, name.to_string()))
    }
}

/// An opened destination: the operator, and how to name it in messages.
#[derive(Clone)]
pub struct Store {
    pub op: Operator,
    /// `./backups`, `s3://bucket/prefix`: shown to people, never with a secret.
    pub url: String,
    pub location: Location,
    /// Part size of multipart uploads.
    part_size: usize,
}

impl Store {
    /// Opens `location` (with `s3`'s settings if it is a bucket). A local directory must exist
    /// unless `create`.
    pub fn open(location: &Location, create: bool, s3: &S3Options) -> Result<Store> {
        let (op, url) = match location {
            Location::Local(dir) => {
                if !create && !dir.is_dir() {
                    return Err(UserError::new(
                        Kind::NotFound,
                        format!("{} is not a directory", dir.display()),
                    )
                    .into());
                }
                let root = absolute(dir)?;
                let op = Operator::new(opendal::services::Fs::default().root(&root))
                    .map_err(|e| storage_error(&dir.display().to_string(), e))?
                    .finish();
                (op, dir.display().to_string())
            }
            Location::S3 { bucket, prefix } => {
                let url = if prefix.is_empty() {
                    format!("s3://{bucket}")
                } else {
                    format!("s3://{bucket}/{prefix}")
                };
                let op = s3_operator(bucket, prefix, s3).map_err(|e| storage_error(&url, e))?;
                (op, url)
            }
            Location::Restic(target) => {
                return Err(UserError::new(
                    Kind::Usage,
                    format!("{target} is a restic repository: this command does not take one"),
                )
                .into())
            }
        };
        Ok(Store {
            op,
            url,
            location: location.clone(),
            part_size: s3.part_size.unwrap_or(DEFAULT_PART_SIZE).max(MIN_PART_SIZE),
        })
    }

    /// `url/name`, for messages.
    pub fn show(&self, name: &str) -> String {
        format!("{}/{name}", self.url.trim_end_matches('/'))
    }

    pub fn is_local(&self) -> bool {
        matches!(self.location, Location::Local(_))
    }

    /// Part size of multipart uploads (`S3Options::part_size`, at least `MIN_PART_SIZE`).
    pub fn part_size(&self) -> usize {
        self.part_size
    }
}

/// Opens every destination of `--to` (local ones are created when `create`); argument mistakes
/// fail here, before anything is read. restic repositories are not among them: see
/// `split_restic`.
pub fn open_all(destinations: &[String], create: bool, s3: &S3Options) -> Result<Vec<Store>> {
    destinations
        .iter()
        .map(|d| Store::open(&Location::parse(d)?, create, s3))
        .collect()
}

/// Splits `--to` destinations into restic repositories and the others (as given).
pub fn split_restic(destinations: &[String]) -> Result<(Vec<restic::ResticTarget>, Vec<String>)> {
    let mut restic = Vec::new();
    let mut others = Vec::new();
    for d in destinations {
        match Location::parse(d)? {
            Location::Restic(t) => restic.push(t),
            _ => others.push(d.clone()),
        }
    }
    Ok((restic, others))
}

fn absolute(dir: &Path) -> Result<String> {
    let abs = std::path::absolute(dir)?;
    Ok(abs.to_string_lossy().into_owned())
}

pub(crate) fn s3_operator(
    bucket: &str,
    prefix: &str,
    opts: &S3Options,
) -> opendal::Result<Operator> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let endpoint = opts
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    let region = opts
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| profile_region(opts.profile.as_deref()))
        .unwrap_or_else(|| "us-east-1".into());
    let mut builder = opendal::services::S3::default()
        .bucket(bucket)
        .root(&format!("/{prefix}"))
        .region(&region)
        // Instance metadata is a 1-second network wait on every machine that is not in EC2.
        .disable_ec2_metadata();
    if let Some(profile) = &opts.profile {
        builder = builder.credential_provider_chain(credentials_of_profile(profile));
    }
    let path_style = opts.path_style.unwrap_or(endpoint.is_some());
    if let Some(endpoint) = &endpoint {
        builder = builder.endpoint(endpoint);
    }
    if !path_style {
        builder = builder.enable_virtual_host_style();
    }
    Ok(Operator::new(builder)?.finish())
}

/// OpenDAL's default credential chain (environment, shared files, SSO, web identity, process,
/// container; no instance metadata, as `disable_ec2_metadata` says), with `profile` chosen for
/// every slot that reads a profile: what `AWS_PROFILE=profile` gives, without changing the
/// process's environment.
fn credentials_of_profile(
    profile: &str,
) -> reqsign_core::ProvideCredentialChain<reqsign_aws_v4::Credential> {
    let chain = reqsign_aws_v4::DefaultCredentialProvider::builder()
        .no_imds()
        .with_profile(profile)
        .build();
    reqsign_core::ProvideCredentialChain::new().push(chain)
}

/// The region of the AWS profile in use (`profile`, else `AWS_PROFILE`, else `default`) in
/// `~/.aws/config` (or `AWS_CONFIG_FILE`), as the AWS CLI reads it.
fn profile_region(profile: Option<&str>) -> Option<String> {
    let path = std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".aws/config")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let profile = match profile {
        Some(p) => p.to_string(),
        None => std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into()),
    };
    region_in_config(&text, &profile)
}

fn region_in_config(text: &str, profile: &str) -> Option<String> {
    let wanted = [format!("profile {profile}"), profile.to_string()];
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_section = wanted[0] == name || (profile == "default" && wanted[1] == name);
            continue;
        }
        if in_section {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "region" {
                    return Some(value.trim().to_string());
                }
            }
        }
    }
    None
}

/// An OpenDAL error as the user should see it: what failed where, the service's own error code
/// and message (or the network error), and a hint for the common causes (credentials, missing
/// bucket, unreachable endpoint). Never carries a secret: OpenDAL errors hold the request's URL
/// and the service's answer, not its signature.
pub fn storage_error(what: &str, e: opendal::Error) -> anyhow::Error {
    use opendal::ErrorKind as K;
    let (code, detail) = describe(&e);
    let credentials = "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, \
                       AWS_PROFILE, ~/.aws/credentials) and what they may do";
    let (kind, hint) = match (code.as_deref(), e.kind()) {
        (Some("NoSuchBucket"), _) => (
            Kind::NotFound,
            Some("the bucket does not exist: create it first, or check its name and the endpoint"),
        ),
        (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied"), _)
        | (_, K::PermissionDenied) => (Kind::Failure, Some(credentials)),
        (_, K::NotFound) => (Kind::NotFound, None),
        (_, K::ConfigInvalid) => (
            Kind::Usage,
            Some("check --s3-endpoint, --s3-region and the AWS_* variables"),
        ),
        _ if detail.contains("error sending request") || detail.contains("onnect") => (
            Kind::Failure,
            Some("is the storage server reachable? check --s3-endpoint / AWS_ENDPOINT_URL"),
        ),
        _ => (Kind::Failure, None),
    };
    let mut err = UserError::new(kind, format!("{what}: {detail}"));
    if let Some(hint) = hint {
        err = err.hint(hint);
    }
    err.into()
}

/// The service's error code and a one-line description. OpenDAL's own message carries the
/// whole request context (URI, headers); the S3 error body's code and message, or the chain of
/// network errors, say more in less.
pub(crate) fn describe(e: &opendal::Error) -> (Option<String>, String) {
    let text = e.to_string();
    let field = |name: &str| -> Option<String> {
        let start = text.find(&format!("{name}: \""))? + name.len() + 3;
        let len = text[start..].find('"')?;
        Some(text[start..start + len].to_string())
    };
    if let Some(code) = field("code") {
        let message = field("message").unwrap_or_default();
        return (Some(code.clone()), format!("{code}: {message}"));
    }
    let mut detail = match e.kind() {
        opendal::ErrorKind::NotFound => "not found".to_string(),
        kind => kind.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !detail.contains(&line) {
            detail.push_str(": ");
            detail.push_str(&line);
        }
        source = cause.source();
    }
    (None, detail)
}

/// Streams `range` of object `name` into a channel; errors arrive in the stream.
pub async fn stream_object(
    store: &Store,
    name: &str,
    range: std::ops::Range<u64>,
) -> Result<tokio::sync::mpsc::Receiver<io::Result<Bytes>>> {
    let what = store.show(name);
    let reader = store
        .op
        .reader_with(name)
        .chunk(4 << 20)
        .await
        .map_err(|e| storage_error(&format!("cannot open {what}"), e))?;
    let mut body = reader
        .into_bytes_stream(range)
        .await
        .map_err(|e| storage_error(&format!("cannot read {what}"), e))?;
    let (tx, rx) = pipe::channel();
    tokio::spawn(async move {
        while let Some(item) = body.next().await {
            let failed = item.is_err();
            let item = item.map_err(|e| io::Error::other(format!("reading {what}: {e}")));
            // The reader hung up (it had what it needed): stop fetching.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_archives() {
        assert!(Location::is_destination("s3://b"));
        assert!(Location::is_destination("s3://b/"));
        assert!(Location::is_destination("s3://b/laptop"));
        assert!(Location::is_destination("s3://b/laptop/"));
        assert!(!Location::is_destination(
            "s3://b/laptop/v_20261125_103000.tar.zst"
        ));
        assert!(!Location::is_destination("s3://b/v.tar.gz.age"));
        assert!(!Location::is_destination("-"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.tar.zst");
        std::fs::write(&file, b"x").unwrap();
        assert!(Location::is_destination(dir.path().to_str().unwrap()));
        assert!(!Location::is_destination(file.to_str().unwrap()));
        assert!(!Location::is_destination("/nonexistent/dir"));
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("s3://team/laptop/").unwrap(),
            Location::S3 {
                bucket: "team".into(),
                prefix: "laptop".into()
            }
        );
        assert_eq!(
            Location::parse("s3://team").unwrap(),
            Location::S3 {
                bucket: "team".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            Location::parse("./backups").unwrap(),
            Location::Local("./backups".into())
        );
        assert_eq!(
            Location::parse("file:///srv/b").unwrap(),
            Location::Local("/srv/b".into())
        );
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("ftp://h/x").is_err());
        let (loc, name) = Location::split_object("s3://b/p/q/v_1.tar.zst").unwrap();
        assert_eq!(
            loc,
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(name, "v_1.tar.zst");
        let (loc, _) = Location::split_object("s3://b/v.tar").unwrap();
        assert_eq!(
            loc,
            Location::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert!(Location::split_object("s3://b/").is_err());
        assert!(Location::split_object("s3://b").is_err());
    }

    #[test]
    fn region_from_the_aws_config() {
        let text =
            "[default]\nregion = eu-west-1\n\n[profile work]\noutput=json\nregion=us-west-2\n";
        assert_eq!(region_in_config(text, "default").unwrap(), "eu-west-1");
        assert_eq!(region_in_config(text, "work").unwrap(), "us-west-2");
        assert!(region_in_config(text, "other").is_none());
    }
}
