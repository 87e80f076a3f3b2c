//! rustic's storage traits (`ReadBackend`, `WriteBackend`) over an OpenDAL operator: how a
//! remote restic repository is read and written. The layout is restic's: `config`, `keys/ID`,
//! `snapshots/ID`, `index/ID`, `locks/ID`, and packs in `data/XX/ID` (XX: the ID's first two
//! hex digits).
//!
//! rustic calls the traits synchronously, from its own threads (and from the tool's blocking
//! tasks); OpenDAL is async. Every call runs on a small runtime of this module's own and the
//! calling thread waits for its answer: that works from any thread, whatever runtime (if any)
//! it belongs to, and never blocks the tool's single-threaded main runtime.
//!
//! On S3 each object is written with one PUT, so a write is whole or absent; on a file system
//! (SFTP) a file is written under a temporary name and renamed, to the same effect. An
//! interrupted save leaves at most unreferenced packs, never a half object (and rustic writes
//! the snapshot file last).

use std::future::{Future, IntoFuture};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use opendal::{Buffer, ErrorKind as OpenDalKind, Operator};
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

/// Attempts of an operation that failed with an error OpenDAL calls temporary (a dropped
/// connection, a 5xx, a throttle): the first and three more, 0.2, 0.4 and 0.8 s apart.
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(200);

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The runtime the storage calls run on: two worker threads, made on first use.
fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("restic-io")
            .enable_all()
            .build()
            .expect("cannot start the threads of the restic storage runtime")
    })
}

/// Runs `fut` on the storage runtime and waits for it on this thread.
pub(super) fn wait<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .expect("a storage call of the restic repository panicked")
}

/// Gives the storage runtime's tasks up to `limit` to end, once every repository is dropped:
/// a dropped SFTP connection closes its ssh master process in a task, and one left running when
/// the process exits would outlive it.
pub fn settle(limit: Duration) {
    let Some(runtime) = RUNTIME.get() else {
        return;
    };
    let started = std::time::Instant::now();
    while runtime.metrics().num_alive_tasks() > 0 && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `op` retried while its error is temporary.
async fn retried<T, F, Fut>(mut op: F) -> opendal::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = opendal::Result<T>>,
{
    let mut pause = FIRST_PAUSE;
    for _ in 1..ATTEMPTS {
        match op().await {
            Err(e) if e.is_temporary() => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            done => return done,
        }
    }
    op().await
}

/// A restic repository on an OpenDAL operator.
#[derive(Debug)]
pub struct OpendalBackend {
    op: Operator,
    /// The repository's directory on the operator (`srv/repo/`), or empty when the operator
    /// is rooted at it.
    dir: String,
    /// Write under a temporary name, then rename (file systems, where a write is not atomic).
    rename: bool,
    /// How the repository is named in messages (`s3:http://host/bucket/prefix`), no secret.
    location: String,
}

impl OpendalBackend {
    /// The repository at the root of `op` (S3: the operator's root is the prefix).
    pub fn new(op: Operator, location: String) -> OpendalBackend {
        OpendalBackend {
            op,
            dir: String::new(),
            rename: false,
            location,
        }
    }

    /// The repository in directory `dir` of a file system `op`: files are written under a
    /// temporary name and renamed.
    pub fn in_dir(op: Operator, dir: &str, location: String) -> OpendalBackend {
        let dir = dir.trim_matches('/');
        OpendalBackend {
            op,
            dir: if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            },
            rename: true,
            location,
        }
    }

    /// Where a file lives: `config`, `keys/ID`, `data/ab/ab...` (under `dir`).
    fn path(&self, tpe: FileType, id: &Id) -> String {
        format!("{}{}", self.dir, Self::name(tpe, id))
    }

    /// A file's name in the repository: `config`, `keys/ID`, `data/ab/ab...`.
    pub(super) fn name(tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        let hex = hex.as_str();
        match tpe {
            FileType::Config => "config".to_string(),
            FileType::Pack => format!("data/{}/{hex}", &hex[..2]),
            _ => format!("{}/{hex}", tpe.dirname()),
        }
    }

    fn failed(&self, what: &str, path: &str, e: &opendal::Error) -> Box<RusticError> {
        let (_, detail) = crate::storage::describe(e);
        RusticError::new(
            ErrorKind::Backend,
            format!("cannot {what} {path} in {}: {detail}", self.location),
        )
    }

    /// Whether the repository has its `config`; the first request a command makes, so the
    /// errors of a wrong address or credentials come from here, as the storage reports them.
    pub fn has_config(&self) -> opendal::Result<bool> {
        let op = self.op.clone();
        let config = format!("{}config", self.dir);
        let dir = if self.dir.is_empty() {
            "/".to_string()
        } else {
            self.dir.clone()
        };
        wait(async move {
            match retried(|| op.stat(&config)).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == OpenDalKind::NotFound => {
                    // A missing object, or a missing bucket: listing tells them apart (and
                    // checks the credentials, which a HEAD's empty answer does not name).
                    retried(|| op.list(&dir)).await.map(|_| false)
                }
                Err(e) => Err(e),
            }
        })
    }
}

impl ReadBackend for OpendalBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let op = self.op.clone();
        if tpe == FileType::Config {
            let config = format!("{}config", self.dir);
            let found = wait(async move { retried(|| op.stat(&config)).await });
            return match found {
                Ok(meta) => Ok(vec![(Id::default(), size(meta.content_length()))]),
                Err(e) if e.kind() == OpenDalKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(self.failed("look for", "config", &e)),
            };
        }
        let dir = format!("{}{}/", self.dir, tpe.dirname());
        let listed = {
            let dir = dir.clone();
            // Packs are one level further down (`data/XX/`).
            let deep = tpe == FileType::Pack;
            wait(async move { retried(|| op.list_with(&dir).recursive(deep).into_future()).await })
        };
        let entries = listed.map_err(|e| self.failed("list", &dir, &e))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .filter_map(|e| {
                let id = Id::parse_some(e.name(), tpe)?;
                Some((id, size(e.metadata().content_length())))
            })
            .collect())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        let op = self.op.clone();
        let p = path.clone();
        wait(async move { retried(|| op.read(&p)).await })
            .map(|b| b.to_bytes())
            .map_err(|e| self.failed("read", &path, &e))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        let op = self.op.clone();
        let p = path.clone();
        let range = u64::from(offset)..u64::from(offset) + u64::from(length);
        wait(async move { retried(|| op.read_with(&p).range(range.clone()).into_future()).await })
            .map(|b| b.to_bytes())
            .map_err(|e| self.failed("read", &path, &e))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id)
    }
}

impl WriteBackend for OpendalBackend {
    /// Nothing to make: object stores have no directories, and the bucket must exist already
    /// (the tool does not create buckets).
    fn create(&self) -> RusticResult<()> {
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let op = self.op.clone();
        let p = path.clone();
        let body = Buffer::from(content.into_vec());
        let rename = self.rename;
        wait(async move {
            if !rename {
                return retried(|| op.write(&p, body.clone())).await.map(|_| ());
            }
            // `ID.tmp-<random>`: no ID, so listings pass over what a killed run leaves.
            let temp = format!("{p}.tmp-{}", &Id::random().to_hex().as_str()[..16]);
            retried(|| op.write(&temp, body.clone())).await?;
            let renamed = retried(|| op.rename(&temp, &p)).await;
            if renamed.is_err() {
                let _ = op.delete(&temp).await;
            }
            renamed
        })
        .map_err(|e| self.failed("write", &path, &e))
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let op = self.op.clone();
        let p = path.clone();
        wait(async move { retried(|| op.delete(&p)).await })
            .map_err(|e| self.failed("remove", &path, &e))
    }
}

/// A file's size as rustic counts it (u32: restic's files are far smaller).
fn size(len: u64) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_restics() {
        let id: Id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .parse()
            .unwrap();
        let hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(OpendalBackend::name(FileType::Config, &id), "config");
        assert_eq!(
            OpendalBackend::name(FileType::Pack, &id),
            format!("data/01/{hex}")
        );
        assert_eq!(
            OpendalBackend::name(FileType::Snapshot, &id),
            format!("snapshots/{hex}")
        );
        assert_eq!(
            OpendalBackend::name(FileType::Key, &id),
            format!("keys/{hex}")
        );
        assert_eq!(
            OpendalBackend::name(FileType::Index, &id),
            format!("index/{hex}")
        );
    }

    /// The whole trait round trip on a local OpenDAL operator (the remote tests run it on S3).
    #[test]
    fn writes_lists_reads_and_removes() {
        // OpenDAL's HTTP client wants the process's TLS provider (the binary installs it).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let op = Operator::new(opendal::services::Fs::default().root(dir.path().to_str().unwrap()))
            .unwrap()
            .finish();
        let be = OpendalBackend::new(op, "test".into());
        assert!(!be.has_config().unwrap());
        assert!(be.list(FileType::Config).unwrap().is_empty());
        let id = Id::random();
        let mut body = BytesList::default();
        body.add(Bytes::from_static(b"hello "));
        body.add(Bytes::from_static(b"world"));
        be.write_bytes(FileType::Pack, &id, false, body).unwrap();
        be.write_bytes(
            FileType::Config,
            &Id::default(),
            false,
            b"cfg".to_vec().into(),
        )
        .unwrap();
        assert!(be.has_config().unwrap());
        assert_eq!(be.list(FileType::Config).unwrap(), vec![Id::default()]);
        assert_eq!(be.list_with_size(FileType::Pack).unwrap(), vec![(id, 11)]);
        assert_eq!(
            &be.read_full(FileType::Pack, &id).unwrap()[..],
            b"hello world"
        );
        assert_eq!(
            &be.read_partial(FileType::Pack, &id, false, 6, 5).unwrap()[..],
            b"world"
        );
        // Called from inside an async runtime thread too.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let listed = rt.block_on(async { be.list(FileType::Pack).unwrap() });
        assert_eq!(listed, vec![id]);
        be.remove(FileType::Pack, &id, false).unwrap();
        assert!(be.list(FileType::Pack).unwrap().is_empty());
        let err = be.read_full(FileType::Pack, &id).unwrap_err();
        assert!(err.to_string().contains("data/"), "{err}");
    }

    /// In a directory of a file system: written under a temporary name and renamed, nothing
    /// made before the first write, and no temporary file left.
    #[test]
    fn a_directory_of_a_file_system_is_written_by_rename() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let op = Operator::new(opendal::services::Fs::default().root(dir.path().to_str().unwrap()))
            .unwrap()
            .finish();
        let be = OpendalBackend::in_dir(op, "/srv/repo/", "test".into());
        assert!(!be.has_config().unwrap());
        assert!(!dir.path().join("srv").exists());
        let id = Id::random();
        be.write_bytes(FileType::Snapshot, &id, false, b"snap".to_vec().into())
            .unwrap();
        let snapshots = dir.path().join("srv/repo/snapshots");
        let names: Vec<_> = std::fs::read_dir(&snapshots)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![id.to_hex().as_str().to_string()]);
        std::fs::write(
            snapshots.join(format!("{}.tmp-1", id.to_hex().as_str())),
            b"x",
        )
        .unwrap();
        assert_eq!(be.list(FileType::Snapshot).unwrap(), vec![id]);
        assert_eq!(&be.read_full(FileType::Snapshot, &id).unwrap()[..], b"snap");
    }
}
