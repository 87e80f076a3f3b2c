//! A local repository writes each file whole. rustic's local backend creates a file under its
//! final name, sizes it and then fills it: a run killed in between leaves a zero-filled index,
//! snapshot or pack under a real ID, which every later listing then trips on (restic's and this
//! tool's). Here each write goes to `ID.tmp-<random>` beside its place, is synced, and renamed
//! over it, as restic's own local backend does; listings pass over such names (they hold no
//! ID). Everything else is rustic's local backend.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};

use super::backend::OpendalBackend;

/// rustic's local backend with whole writes.
pub struct Whole {
    inner: Arc<dyn WriteBackend>,
    root: PathBuf,
}

impl Whole {
    pub fn new(inner: Arc<dyn WriteBackend>, root: impl Into<PathBuf>) -> Whole {
        Whole {
            inner,
            root: root.into(),
        }
    }
}

/// Writes `chunks` to `path` through a synced temporary file beside it, renamed over it; the
/// temporary file is removed when anything fails.
fn write_whole(path: &Path, chunks: &[Bytes]) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(
        "{name}.tmp-{}",
        &Id::random().to_hex().as_str()[..16]
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        for chunk in chunks {
            file.write_all(chunk)?;
        }
        file.sync_all()?;
        drop(file);
        // The fault tests kill the run here: the file whole, not yet in its place.
        fail::fail_point!("restic-local-renaming");
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
        return written;
    }
    // The rename itself survives a power loss once its directory is synced.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl ReadBackend for Whole {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        self.inner.list_with_size(tpe)
    }

    fn list(&self, tpe: FileType) -> RusticResult<Vec<Id>> {
        self.inner.list(tpe)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }

    fn needs_warm_up(&self) -> bool {
        self.inner.needs_warm_up()
    }

    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.inner.warm_up(tpe, id)
    }
}

impl WriteBackend for Whole {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.root.join(OpendalBackend::name(tpe, id));
        write_whole(&path, &content.into_vec()).map_err(|e| {
            RusticError::with_source(
                ErrorKind::InputOutput,
                "Failed to write the file `{path}`.",
                e,
            )
            .attach_context("path", path.display().to_string())
        })
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        self.inner.remove(tpe, id, cacheable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Through rustic's own local backend: what is written reads back, lists under its ID,
    /// replaces a file of the same name whole, and leaves no temporary file; a temporary file
    /// a killed run left is passed over by listings.
    #[test]
    fn writes_land_whole_and_listings_pass_over_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let local = rustic_backend::LocalBackend::new(root.to_str().unwrap(), []).unwrap();
        let be = Whole::new(Arc::new(local), &root);
        be.create().unwrap();
        let id = Id::random();
        let bytes = |s: &'static [u8]| BytesList::from(Bytes::from_static(s));
        be.write_bytes(FileType::Snapshot, &id, false, bytes(b"first"))
            .unwrap();
        be.write_bytes(FileType::Snapshot, &id, false, bytes(b"second, longer"))
            .unwrap();
        assert_eq!(
            &be.read_full(FileType::Snapshot, &id).unwrap()[..],
            b"second, longer"
        );
        let pack = Id::random();
        be.write_bytes(FileType::Pack, &pack, false, bytes(b"pack"))
            .unwrap();
        let hex = pack.to_hex();
        assert!(root
            .join("data")
            .join(&hex[..2])
            .join(hex.as_str())
            .is_file());
        // As a run killed before its rename leaves it.
        let left = root
            .join("snapshots")
            .join(format!("{}.tmp-0123456789abcdef", id.to_hex().as_str()));
        std::fs::write(&left, b"half").unwrap();
        assert_eq!(be.list(FileType::Snapshot).unwrap(), vec![id]);
        std::fs::remove_file(&left).unwrap();
        let names = |d: &str| -> Vec<String> {
            std::fs::read_dir(root.join(d))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names("snapshots"), vec![id.to_hex().to_string()]);
        assert_eq!(names(&format!("data/{}", &hex[..2])), vec![hex.to_string()]);
    }
}
