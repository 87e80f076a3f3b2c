//! The atomic file writer: an archive (or dump, or bundle) is written under a temporary name
//! beside its final one and renamed into place only once complete and synced; or to stdout.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::error::{Kind, UserError};

/// Where a save writes: a file written under a temporary name and renamed into place once
/// complete and synced, or stdout.
pub enum Sink {
    File {
        tmp: BufWriter<tempfile::NamedTempFile>,
        path: PathBuf,
        force: bool,
        /// The partial file's line in the run's journal, cleared when it is moved into place or
        /// removed.
        mark: crate::journal::Mark,
    },
    Stdout(BufWriter<io::Stdout>),
}

impl Sink {
    /// Opens `path` for an atomic write; refuses an existing file unless `force`.
    pub fn file(path: &Path, force: bool) -> Result<Sink> {
        if path.exists() && !force {
            return Err(UserError::new(
                Kind::Refused,
                format!("{} already exists", path.display()),
            )
            .hint("use --force to overwrite it, or -o to choose another name")
            .into());
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A dot-name and a `.partial` suffix: an interrupted save never looks like a backup.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".partial")
            .tempfile_in(&dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        let mark = crate::journal::record(crate::journal::Step::Partial {
            path: std::path::absolute(tmp.path()).unwrap_or_else(|_| tmp.path().to_path_buf()),
        });
        Ok(Sink::File {
            tmp: BufWriter::with_capacity(1 << 20, tmp),
            path: path.to_path_buf(),
            force,
            mark,
        })
    }

    /// Standard output, unless it is a terminal.
    pub fn stdout() -> Result<Sink> {
        if io::stdout().is_terminal() {
            return Err(
                UserError::new(Kind::Usage, "refusing to write an archive to a terminal")
                    .hint("redirect stdout to a file or a pipe, or drop `-o -`")
                    .into(),
            );
        }
        Ok(Sink::Stdout(BufWriter::with_capacity(
            1 << 20,
            io::stdout(),
        )))
    }

    /// Flushes, syncs and moves the file into place. Returns the final size.
    pub fn commit(self) -> Result<Option<u64>> {
        match self {
            Sink::Stdout(mut w) => {
                w.flush().context("writing to stdout")?;
                Ok(None)
            }
            Sink::File {
                tmp,
                path,
                force,
                mark: _mark,
            } => {
                let tmp = tmp.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all().context("syncing the archive")?;
                let size = tmp.as_file().metadata()?.len();
                if force {
                    tmp.persist(&path)
                } else {
                    tmp.persist_noclobber(&path)
                }
                .map_err(|e| e.error)
                .with_context(|| format!("moving the archive into place at {}", path.display()))?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // Make the rename itself durable.
                    if let Ok(d) = File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                Ok(Some(size))
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File { tmp, .. } => tmp.write(buf),
            Sink::Stdout(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::File { tmp, .. } => tmp.write_all(buf),
            Sink::Stdout(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File { tmp, .. } => tmp.flush(),
            Sink::Stdout(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_is_atomic_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.zst");
        let mut sink = Sink::file(&path, false).unwrap();
        sink.write_all(b"data").unwrap();
        assert!(!path.exists(), "nothing at the final name before commit");
        drop(sink);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "dropped = removed"
        );
        let mut sink = Sink::file(&path, false).unwrap();
        sink.write_all(b"data").unwrap();
        assert_eq!(sink.commit().unwrap(), Some(4));
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert!(Sink::file(&path, false).is_err());
        let mut sink = Sink::file(&path, true).unwrap();
        sink.write_all(b"new").unwrap();
        sink.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
