//! restic repositories, through `rustic_core` (pinned, 0.x): every use of its API lives under
//! this module. What a `restic:REPO` destination is, where its password comes from, opening and
//! creating repositories, and the conventions a snapshot of a volume follows (paths, host, tags,
//! the manifest in `description`), which the writer (`save`) and the readers (`restore`,
//! `backups`, `prune`, `verify`) share.

mod backend;
pub mod export;
mod fault;
mod gate;
pub mod list;
mod local;
pub mod maintain;
mod mode;
pub mod read;
pub mod remote;
mod rest;
pub mod save;
mod source;
mod ssh_masters;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::Result;
use rustic_backend::BackendOptions;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{
    ConfigOptions, Credentials, IndexedFullStatus, IndexedIdsStatus, KeyOptions, OpenStatus,
    Repository, RepositoryBackends, RepositoryOptions, RusticError,
};
use serde::{Deserialize, Serialize};

use crate::archive::{SourceInfo, VolumeInfo};
use crate::docker::identity::EngineIdentity;
use crate::error::{Kind, UserError};
use remote::{S3Repo, SftpRepo};

pub use fault::{brief, failed};
pub use mode::{go_mode, unix_mode};

/// Waits (a few seconds at most) for remote repositories' connections to close: called once
/// the command is done, before the process exits.
pub fn settle() {
    backend::settle(std::time::Duration::from_secs(5));
    // Then whatever ssh master of this run is still up (one whose connection attempt was
    // dropped part way) is ended: none outlives the run.
    ssh_masters::end_own();
}

/// The prefix of a restic destination: `restic:/srv/repo`, `restic:s3:host/bucket`.
pub const PREFIX: &str = "restic:";

/// An opened repository (key read, config loaded; no index yet). It derefs to rustic's
/// `Repository<OpenStatus>` (`get_all_snapshots()`, `delete_snapshots()`...); `indexed()` gives
/// the fully indexed one for `ls` and reading files. rustic's type is not `Clone` and its
/// indexing consumes it: `reopen()` opens another handle with the key already unlocked.
pub struct Repo {
    target: ResticTarget,
    open: Repository<OpenStatus>,
}

impl std::ops::Deref for Repo {
    type Target = Repository<OpenStatus>;
    fn deref(&self) -> &Repository<OpenStatus> {
        &self.open
    }
}

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Repo({})", self.target)
    }
}

impl Repo {
    pub fn target(&self) -> &ResticTarget {
        &self.target
    }

    /// Another handle on the same repository (no password derivation again).
    pub fn reopen(&self) -> Result<Repo> {
        let key = Credentials::Masterkey(self.open.key());
        let open = repository(&self.target)?
            .open(&key)
            .map_err(|e| rustic_error(&self.target, "cannot open the repository", &e))?;
        Ok(Repo {
            target: self.target.clone(),
            open,
        })
    }

    /// The repository with its whole index read (as it is now): for `ls`, reading files, and
    /// writing (it is also `IndexedIds`).
    pub fn indexed(&self) -> Result<Repository<IndexedFullStatus>> {
        self.reopen()?
            .open
            .to_indexed()
            .map_err(|e| rustic_error(&self.target, "cannot read the index", &e))
    }

    /// The repository with the ids of its index read: enough for writing snapshots.
    pub fn indexed_ids(&self) -> Result<Repository<IndexedIdsStatus>> {
        self.reopen()?
            .open
            .to_indexed_ids()
            .map_err(|e| rustic_error(&self.target, "cannot read the index", &e))
    }
}

/// A restic repository, written the way restic writes it (after `restic:`). `Debug` shows it
/// as `Display` does, without a password.
#[derive(Clone, PartialEq, Eq)]
pub struct ResticTarget {
    /// What follows `restic:`, as given: handed to the backend crate.
    pub repo: String,
    pub kind: Backend,
}

/// Which backend a repository string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Local(PathBuf),
    /// `s3:...`, through the tool's own OpenDAL S3 service (`backend::OpendalBackend`).
    S3(S3Repo),
    /// `sftp:...`, through OpenDAL's SFTP service and the system ssh.
    Sftp(SftpRepo),
    /// `rest:http[s]://[user:password@]host:port/path/`: restic's REST server (`rest.rs`).
    Rest(rest::Location),
}

impl ResticTarget {
    /// Whether `s` is a restic destination (`restic:...`).
    pub fn is_restic(s: &str) -> bool {
        s.starts_with(PREFIX)
    }

    /// Parses `restic:REPO`.
    pub fn parse(s: &str) -> Result<ResticTarget, UserError> {
        let repo = s.strip_prefix(PREFIX).ok_or_else(|| {
            UserError::new(Kind::Usage, format!("{s}: not a restic repository"))
                .hint("write restic:/path/to/repo")
        })?;
        if repo.is_empty() {
            return Err(UserError::new(Kind::Usage, "restic: names no repository")
                .hint("write restic:/path/to/repo"));
        }
        let kind = match repo.split_once(':') {
            Some(("local", path)) => Backend::Local(PathBuf::from(path)),
            Some(("s3", rest)) => Backend::S3(remote::parse_s3(rest)?),
            Some(("sftp", rest)) => Backend::Sftp(remote::parse_sftp(rest)?),
            Some(("rest", url)) => Backend::Rest(rest::Location::parse(url)?),
            Some((scheme, _)) if !scheme.contains('/') && scheme.len() > 1 => {
                return Err(UserError::new(
                    Kind::Usage,
                    format!("restic:{scheme}: repositories are not supported"),
                )
                .hint("use a local path (restic:/srv/repo), s3:... or sftp:..."))
            }
            _ => Backend::Local(PathBuf::from(repo)),
        };
        Ok(ResticTarget {
            repo: repo.to_string(),
            kind,
        })
    }
}

impl fmt::Debug for ResticTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResticTarget")
            .field("repo", &self.to_string())
            .field("kind", &self.kind)
            .finish()
    }
}

impl fmt::Display for ResticTarget {
    /// `restic:REPO`, without a password a `rest:` URL may carry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `rest:https://user:pass@host/`, `s3:https://...`: the URL after the backend's name.
        let (backend, url) = match self.repo.split_once(':') {
            // sftp: the user says whom ssh logs in as; a password is refused when parsing.
            Some(("sftp", _)) if matches!(self.kind, Backend::Sftp(_)) => {
                return write!(f, "{PREFIX}{}", self.repo)
            }
            Some((b, url)) if url.contains("://") => (format!("{b}:"), url),
            _ => (String::new(), self.repo.as_str()),
        };
        let (shown, _) = crate::url::strip_credentials(url);
        write!(f, "{PREFIX}{backend}{shown}")
    }
}

/// Where a repository's password comes from, in restic's order: the `--restic-password-file`
/// flag, `RESTIC_PASSWORD_FILE`, `RESTIC_PASSWORD`, then a prompt on the terminal. Never a flag
/// value; never shown.
pub fn password(flag_file: Option<&Path>, confirm_prompt: bool) -> Result<Password, UserError> {
    password_from(
        flag_file,
        |k| std::env::var(k).ok(),
        || prompt(confirm_prompt),
    )
}

/// `password` with the environment and the terminal passed in (tests).
pub fn password_from(
    flag_file: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
    ask: impl FnOnce() -> Result<SecretString, String>,
) -> Result<Password, UserError> {
    let bad = |m: String| UserError::new(Kind::Usage, m);
    let file = flag_file.map(Path::to_path_buf).or_else(|| {
        env("RESTIC_PASSWORD_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(file) = file {
        return crate::keys::read_passphrase_file(&file)
            .map(Password)
            .map_err(bad);
    }
    if let Some(p) = env("RESTIC_PASSWORD").filter(|v| !v.is_empty()) {
        return Ok(Password(SecretString::from(p)));
    }
    ask().map(Password).map_err(|e| {
        bad(e).hint("give the repository password in RESTIC_PASSWORD_FILE, RESTIC_PASSWORD or --restic-password-file FILE")
    })
}

fn prompt(confirm: bool) -> Result<SecretString, String> {
    let no_tty =
        |e: std::io::Error| format!("cannot ask for the repository password: no terminal ({e})");
    let first = rpassword::prompt_password("restic repository password: ").map_err(no_tty)?;
    if first.is_empty() {
        return Err("the password is empty".into());
    }
    if confirm {
        let again =
            rpassword::prompt_password("restic repository password (again): ").map_err(no_tty)?;
        if again != first {
            return Err("the passwords do not match".into());
        }
    }
    Ok(SecretString::from(first))
}

/// A repository password; `Debug` shows nothing.
#[derive(Clone)]
pub struct Password(SecretString);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    fn credentials(&self) -> Credentials {
        Credentials::password(self.0.expose_secret())
    }
}

impl ResticTarget {
    /// Whether this binary can reach the repository: local paths, `s3:`, `rest:` and `sftp:`
    /// (with an absolute path). Checked before a password is asked for.
    pub fn check_supported(&self) -> Result<(), UserError> {
        match &self.kind {
            Backend::Local(_) | Backend::S3(_) | Backend::Rest(_) => Ok(()),
            // OpenDAL's SFTP service roots every path at `/`: the login directory is unknown.
            Backend::Sftp(sftp) if !sftp.path.starts_with('/') => Err(UserError::new(
                Kind::Usage,
                format!("{self}: the path is relative to the login directory"),
            )
            .hint("write it absolute: restic:sftp:HOST:/home/USER/repo")),
            Backend::Sftp(_) => Ok(()),
        }
    }
}

/// The OpenDAL-backed storage of a remote repository (None for a local one).
fn remote_backend(target: &ResticTarget) -> Result<Option<backend::OpendalBackend>> {
    let location = target.to_string();
    let location = location
        .strip_prefix(PREFIX)
        .unwrap_or(&location)
        .to_string();
    let failed = |e| remote_error(target, e);
    Ok(Some(match &target.kind {
        Backend::S3(s3) => backend::OpendalBackend::new(s3.operator().map_err(failed)?, location),
        Backend::Sftp(sftp) => {
            backend::OpendalBackend::in_dir(sftp.operator().map_err(failed)?, &sftp.path, location)
        }
        _ => return Ok(None),
    }))
}

fn repository(target: &ResticTarget) -> Result<Repository<()>> {
    target.check_supported()?;
    let (backends, opts) = match remote_backend(target)? {
        // A cache (rustic's, in ~/.cache/rustic/<repository id>) for a repository on S3 or
        // SFTP: every save reads the whole index and every listing all snapshots, which would
        // otherwise come over the network on each run. It holds only those (and tree packs),
        // never a secret beyond what the repository holds encrypted; without a writable home,
        // rustic goes on without it.
        Some(remote) => (
            RepositoryBackends::new(Arc::new(remote), None),
            RepositoryOptions::default(),
        ),
        // Our own REST client: rustic_backend's would bring a C crypto build.
        None if matches!(target.kind, Backend::Rest(_)) => {
            let Backend::Rest(loc) = &target.kind else {
                unreachable!("matched above")
            };
            (
                RepositoryBackends::new(Arc::new(rest::RestBackend::new(loc)?), None),
                RepositoryOptions::default().no_cache(true),
            )
        }
        None => {
            let location = match &target.kind {
                Backend::Local(dir) => dir.to_string_lossy().into_owned(),
                _ => target.repo.clone(),
            };
            let backends = BackendOptions::default()
                .repository(location.as_str())
                .to_backends()
                .map_err(|e| rustic_error(target, "cannot use the repository", &e))?;
            let backends = match &target.kind {
                // Each file written whole (rustic's local backend fills it in place).
                Backend::Local(dir) => RepositoryBackends::new(
                    Arc::new(local::Whole::new(backends.repository(), dir)),
                    backends.repo_hot(),
                ),
                _ => backends,
            };
            // No cache: a local repository is its own cache, and nothing is left in ~/.cache.
            (backends, RepositoryOptions::default().no_cache(true))
        }
    };
    // Behind the snapshot gate: a save's snapshot is written by this tool, once complete.
    let gated = |be| -> Arc<dyn rustic_core::WriteBackend> { Arc::new(gate::Gate(be)) };
    let backends =
        RepositoryBackends::new(gated(backends.repository()), backends.repo_hot().map(gated));
    Repository::new(&opts, &backends)
        .map_err(|e| rustic_error(target, "cannot use the repository", &e))
}

/// A storage error of a remote repository, with the hint its kind of storage calls for.
fn remote_error(target: &ResticTarget, e: opendal::Error) -> anyhow::Error {
    if !matches!(target.kind, Backend::Sftp(_)) {
        return crate::storage::storage_error(&target.to_string(), e);
    }
    let (_, detail) = crate::storage::describe(&e);
    let (kind, hint) = if detail.contains("Host key verification failed") {
        (
            Kind::Failure,
            "the server's host key is not known: connect once with ssh, or add it to \
             ~/.ssh/known_hosts",
        )
    } else if detail.contains("Permission denied") {
        (
            Kind::Failure,
            "check the key the system ssh logs in with (ssh-agent, ~/.ssh/config) and the \
             directory's permissions",
        )
    } else if e.kind() == opendal::ErrorKind::NotFound {
        (Kind::NotFound, "check the path")
    } else {
        (
            Kind::Failure,
            "is the SSH server reachable? try `ssh [USER@]HOST` with the same host and port",
        )
    };
    UserError::new(kind, format!("{target}: {detail}"))
        .hint(hint)
        .into()
}

/// Whether a repository exists at `target` (it has a `config` file). For a remote one this is
/// the first request, and its failures (no bucket, wrong credentials, no answer) are errors
/// that say so, not "no repository".
pub fn exists(target: &ResticTarget) -> Result<bool> {
    target.check_supported()?;
    if let Some(remote) = remote_backend(target)? {
        return remote.has_config().map_err(|e| remote_error(target, e));
    }
    match &target.kind {
        Backend::Local(dir) if !dir.join("config").is_file() => return Ok(false),
        // An unreachable server or refused credentials are no missing repository.
        Backend::Rest(loc) => return rest::exists(loc, &target.to_string()),
        _ => {}
    }
    let repo = repository(target)?;
    match repo.config_id() {
        Ok(id) => Ok(id.is_some()),
        Err(_) => Ok(false),
    }
}

/// Opens the repository at `target` with `password`. A missing repository is `NotFound` (with
/// `--init` as the hint), a wrong password `Key`.
pub fn open(target: &ResticTarget, password: &Password) -> Result<Repo> {
    if !exists(target)? {
        return Err(UserError::new(
            Kind::NotFound,
            format!("{target}: no restic repository there"),
        )
        .hint("give --init to create one (format 2, compressed)")
        .into());
    }
    let open = repository(target)?
        .open(&password.credentials())
        .map_err(|e| {
            if e.is_incorrect_password() {
                UserError::new(
                    Kind::Key,
                    format!("{target}: the password does not open the repository"),
                )
                .into()
            } else {
                rustic_error(target, "cannot open the repository", &e)
            }
        })?;
    Ok(Repo {
        target: target.clone(),
        open,
    })
}

/// Creates a repository at `target` (format 2, compressed) and opens it. An existing one is
/// refused.
pub fn init(target: &ResticTarget, password: &Password) -> Result<Repo> {
    if exists(target)? {
        return Err(UserError::new(
            Kind::Refused,
            format!("{target}: a restic repository exists there already"),
        )
        .into());
    }
    let config = ConfigOptions::default().set_version(2u32);
    let open = repository(target)?
        .init(&password.credentials(), &KeyOptions::default(), &config)
        .map_err(|e| rustic_error(target, "cannot create the repository", &e))?;
    Ok(Repo {
        target: target.clone(),
        open,
    })
}

/// Opens the repository, creating it first when it is missing and `create` (`--init`).
pub fn open_or_init(target: &ResticTarget, password: &Password, create: bool) -> Result<Repo> {
    if create && !exists(target)? {
        return init(target, password);
    }
    open(target, password)
}

/// A rustic error as one of ours: what failed on which repository, and rustic's own words.
pub(crate) fn rustic_error(target: &ResticTarget, what: &str, e: &RusticError) -> anyhow::Error {
    anyhow::anyhow!("{target}: {what}: {}", e.display_log().trim())
}

// ---- The snapshot conventions: what the writer does and the readers rely on. ----

/// Every snapshot the tool writes carries this tag.
pub const TAG: &str = "docker-volume-backup";
/// The tag naming the volume: `volume=<name>`.
pub const VOLUME_TAG: &str = "volume=";
/// The tag naming the source engine: `engine=<EngineIdentity::key()>`.
pub const ENGINE_TAG: &str = "engine=";
/// Snapshots keep the tool's manifest as JSON in the snapshot's `description` field (rustic's;
/// restic 0.14 ignores it when reading, and `restic cat snapshot ID` shows it; `restic tag`
/// rewrites the snapshot without it).
pub const MANIFEST_FIELD: &str = "description";
/// `program_version` of the snapshots the tool writes.
pub fn program_version() -> String {
    format!("docker-volume-backup {}", env!("CARGO_PKG_VERSION"))
}

/// The snapshot's only path, and the root of its tree: `/<volume>`. The volume root's owner,
/// mode and mtime are on that node; the volume's entries are under it.
pub fn snapshot_path(volume: &str) -> PathBuf {
    PathBuf::from(format!("/{volume}"))
}

/// The snapshot's host name: the source engine's label (`laptop-3f9a1c0b`).
pub fn hostname(engine: &EngineIdentity) -> String {
    engine.label()
}

/// The snapshot's tags: `docker-volume-backup`, `volume=<name>`, `engine=<key>`.
pub fn tags(volume: &str, engine: &EngineIdentity) -> Vec<String> {
    vec![
        TAG.to_string(),
        format!("{VOLUME_TAG}{volume}"),
        format!("{ENGINE_TAG}{}", engine.key()),
    ]
}

/// What a snapshot's tags say: the volume and the engine key, if it is one of the tool's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub volume: String,
    pub engine: String,
}

/// Reads the tool's tags on a snapshot (None for snapshots someone else made).
pub fn tagged(snap: &SnapshotFile) -> Option<Tagged> {
    let tags: Vec<String> = snap.tags.iter().cloned().collect();
    parse_tags(&tags)
}

/// `tagged` over plain tag strings.
pub fn parse_tags<S: AsRef<str>>(tags: &[S]) -> Option<Tagged> {
    let find = |prefix: &str| {
        tags.iter()
            .find_map(|t| t.as_ref().strip_prefix(prefix).map(str::to_string))
    };
    if !tags.iter().any(|t| t.as_ref() == TAG) {
        return None;
    }
    Some(Tagged {
        volume: find(VOLUME_TAG)?,
        engine: find(ENGINE_TAG)?,
    })
}

/// The tool's manifest, kept as JSON in the snapshot's `description`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    /// Always "docker-volume-backup".
    pub tool: String,
    pub tool_version: String,
    /// The volume as the engine described it (secret-looking option values redacted).
    pub volume: VolumeInfo,
    /// Where it was read from.
    pub source: SourceInfo,
    /// The source engine: `EngineIdentity::key()`, `label()`, and its flavour.
    pub engine_key: String,
    pub engine_label: String,
    pub engine_flavour: String,
    /// Entries in the volume's tar stream, the root included.
    pub entries: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// The volume's hard links as (link, target) snapshot paths, in stream order, when there
    /// are at most `save::MAX_RECORDED_LINKS` (and all are UTF-8): the next save of the volume
    /// numbers its link groups from them in its one pass, and needs no link pass if they hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hard_links: Vec<(String, String)>,
}

impl SnapshotManifest {
    pub fn from_description(snap: &SnapshotFile) -> Option<SnapshotManifest> {
        serde_json::from_str(snap.description.as_deref()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = ResticTarget::parse("restic:/srv/repo").unwrap();
        assert_eq!(t.kind, Backend::Local("/srv/repo".into()));
        let t = ResticTarget::parse("restic:relative/repo").unwrap();
        assert_eq!(t.kind, Backend::Local("relative/repo".into()));
        let t = ResticTarget::parse("restic:local:/srv/r").unwrap();
        assert_eq!(t.kind, Backend::Local("/srv/r".into()));
        let t = ResticTarget::parse("restic:s3:s3.amazonaws.com/bucket").unwrap();
        assert!(
            matches!(&t.kind, Backend::S3(s) if s.bucket == "bucket"),
            "{t:?}"
        );
        assert!(t.check_supported().is_ok());
        let t = ResticTarget::parse("restic:s3:http://127.0.0.1:9000/b/p").unwrap();
        assert_eq!(t.to_string(), "restic:s3:http://127.0.0.1:9000/b/p");
        assert!(ResticTarget::parse("restic:s3:host").is_err());
        let t = ResticTarget::parse("restic:rest:https://u:secret@host:8000/").unwrap();
        assert!(matches!(&t.kind, Backend::Rest(l) if l.to_string() == "https://host:8000/"));
        assert!(!t.to_string().contains("secret"), "{t}");
        assert!(!format!("{t:?}").contains("secret"), "{t:?}");
        assert!(t.check_supported().is_ok());
        let e = ResticTarget::parse("restic:rest:u:secret@host:8000/").unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
        assert!(!e.message.contains("secret"), "{}", e.message);
        let t = ResticTarget::parse("restic:sftp:u@h:/r").unwrap();
        assert!(matches!(&t.kind, Backend::Sftp(s) if s.host == "h" && s.path == "/r"));
        assert!(t.check_supported().is_ok());
        assert_eq!(t.to_string(), "restic:sftp:u@h:/r");
        let t = ResticTarget::parse("restic:sftp://u@h:2222//srv/r").unwrap();
        assert_eq!(t.to_string(), "restic:sftp://u@h:2222//srv/r");
        assert!(t.check_supported().is_ok());
        // Relative to the login directory: OpenDAL's SFTP roots every path at `/`.
        let t = ResticTarget::parse("restic:sftp:u@h:repo").unwrap();
        assert!(t.check_supported().is_err());
        assert!(ResticTarget::parse("restic:").is_err());
        assert!(ResticTarget::parse("restic:azure:x").is_err());
        assert!(ResticTarget::parse("/srv/repo").is_err());
    }

    #[test]
    fn password_sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let env_file = dir.path().join("pw2");
        std::fs::write(&env_file, "from-env-file\n").unwrap();
        let show = |p: Password| p.0.expose_secret().to_string();
        let env = |k: &str| match k {
            "RESTIC_PASSWORD_FILE" => Some(env_file.display().to_string()),
            "RESTIC_PASSWORD" => Some("from-env".into()),
            _ => None,
        };
        let never = || -> Result<SecretString, String> { panic!("asked") };
        assert_eq!(
            show(password_from(Some(&file), env, never).unwrap()),
            "from-file"
        );
        assert_eq!(
            show(password_from(None, env, never).unwrap()),
            "from-env-file"
        );
        let env2 = |k: &str| (k == "RESTIC_PASSWORD").then(|| "from-env".to_string());
        assert_eq!(show(password_from(None, env2, never).unwrap()), "from-env");
        let asked = password_from(None, |_| None, || Ok(SecretString::from("typed"))).unwrap();
        assert_eq!(show(asked), "typed");
        let err = password_from(None, |_| None, || Err("no terminal".into())).unwrap_err();
        assert!(err.to_string().contains("no terminal"));
        assert!(
            format!("{:?}", password_from(Some(&file), |_| None, never).unwrap()) == "Password(..)"
        );
    }

    #[test]
    fn tags_round_trip() {
        let tags = ["docker-volume-backup", "volume=db", "engine=3f9a1c0b"];
        assert_eq!(
            parse_tags(&tags),
            Some(Tagged {
                volume: "db".into(),
                engine: "3f9a1c0b".into()
            })
        );
        assert_eq!(parse_tags(&["volume=db", "engine=x"]), None);
        assert_eq!(snapshot_path("db"), PathBuf::from("/db"));
    }
}
