//! Turning an archive into the tar stream the engine extracts: entries renamed from `./x` (or
//! `x`) to `<mount>/x`, where `mount` is the directory (relative to `/`) at which the caller's
//! container mounts the volume, so that a PUT at `/` of that container lands them in the volume,
//! the volume root's own entry included (a PUT at the mount path would skip it and lose the root's
//! owner and mode), and relative symlinks that climb out of the volume stay legal for the engine.
//! Entries that would leave the volume are dropped here.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::tar_stream::{Entry, Item, TarReader, Verdict};
use super::ArchiveError;

/// What a rewrite did.
#[derive(Debug)]
pub struct RewriteReport {
    pub verdict: Verdict,
    /// Entries dropped because they would land outside the volume, with the reason.
    pub skipped: Vec<String>,
}

/// Reads every entry from `reader` and writes the stream renamed under `mount` (a directory
/// relative to `/`, e.g. `volume`) to `dst`. The end-of-archive marker is written only after the
/// archive has been checked against its manifest, so a damaged archive never reaches the engine
/// as a complete tar stream.
pub fn rewrite_for_upload<R: Read, W: Write>(
    reader: &mut TarReader<R>,
    dst: W,
    mount: &str,
) -> Result<(W, RewriteReport), ArchiveError> {
    let mut out = tar::Builder::new(dst);
    let mut symlinks: HashSet<Vec<u8>> = HashSet::new();
    let mut skipped = Vec::new();
    while let Item::Entry(entry) = reader.next_item()? {
        match plan(&entry, &mut symlinks, mount) {
            Ok(plan) => write_entry(&mut out, reader, &entry, plan)?,
            Err(why) => skipped.push(format!("{}: {why}", entry.display_path())),
        }
    }
    reader.drain()?;
    let verdict = reader.verify()?;
    out.finish().map_err(ArchiveError::Output)?;
    let dst = out.into_inner().map_err(ArchiveError::Output)?;
    Ok((dst, RewriteReport { verdict, skipped }))
}

/// `--path P` as a path inside the volume (`uploads/2024`); `None` for the root or a path that
/// climbs out.
pub fn subtree(p: &str) -> Option<Vec<u8>> {
    normalize(p.as_bytes()).filter(|rel| !rel.is_empty())
}

/// Whether `rel` (normalized) is `subtree` or lies under it.
pub(crate) fn under(rel: &[u8], subtree: &[u8]) -> bool {
    rel.starts_with(subtree) && (rel.len() == subtree.len() || rel[subtree.len()] == b'/')
}

/// As `rewrite_for_upload`, but only the entries at or under `subtree` (from `subtree()`) are
/// written; the rest is read (the whole archive is still checked) and left out. Their parent
/// directories are not written, so the volume's own stay as they are. A hard link to a file
/// outside the subtree is skipped: its target in the volume may hold other content.
pub fn rewrite_subtree_for_upload<R: Read, W: Write>(
    reader: &mut TarReader<R>,
    dst: W,
    mount: &str,
    subtree: &[u8],
) -> Result<(W, RewriteReport), ArchiveError> {
    let mut out = tar::Builder::new(dst);
    let mut symlinks: HashSet<Vec<u8>> = HashSet::new();
    let mut skipped = Vec::new();
    while let Item::Entry(entry) = reader.next_item()? {
        let inside = normalize(&entry.path).is_some_and(|rel| under(&rel, subtree));
        // Every entry is planned, so that symlinks outside the subtree are known.
        let planned = plan(&entry, &mut symlinks, mount);
        if !inside {
            continue;
        }
        let outside_link = entry.header.entry_type() == tar::EntryType::Link
            && !normalize(entry.link.as_deref().unwrap_or_default())
                .is_some_and(|t| under(&t, subtree));
        match planned {
            Ok(_) if outside_link => skipped.push(format!(
                "{}: its hard-link target is outside --path",
                entry.display_path()
            )),
            Ok(plan) => write_entry(&mut out, reader, &entry, plan)?,
            Err(why) => skipped.push(format!("{}: {why}", entry.display_path())),
        }
    }
    reader.drain()?;
    let verdict = reader.verify()?;
    out.finish().map_err(ArchiveError::Output)?;
    let dst = out.into_inner().map_err(ArchiveError::Output)?;
    Ok((dst, RewriteReport { verdict, skipped }))
}

/// Where an entry goes, decided before any of it is written.
struct Plan {
    dest: PathBuf,
    /// Hard-link target, renamed like the paths.
    hard_target: Option<PathBuf>,
}

fn plan(entry: &Entry, symlinks: &mut HashSet<Vec<u8>>, mount: &str) -> Result<Plan, &'static str> {
    use tar::EntryType as T;
    let kind = entry.header.entry_type();
    let rel = normalize(&entry.path).ok_or("its path leaves the volume")?;
    if through_symlink(&rel, symlinks) {
        return Err("its path goes through a symlink");
    }
    if rel.is_empty() && kind != T::Directory {
        return Err("the volume root can only be a directory");
    }
    let hard_target = if kind == T::Link {
        let target = entry.link.as_deref().unwrap_or_default();
        let target = normalize(target).ok_or("its hard-link target leaves the volume")?;
        if target.is_empty() || through_symlink(&target, symlinks) {
            return Err("its hard-link target is not a file in the volume");
        }
        Some(mounted(mount, &target))
    } else {
        None
    };
    if kind == T::Symlink {
        symlinks.insert(rel.clone());
    } else {
        symlinks.remove(&rel);
    }
    Ok(Plan {
        dest: mounted(mount, &rel),
        hard_target,
    })
}

fn write_entry<R: Read, W: Write>(
    out: &mut tar::Builder<W>,
    reader: &mut TarReader<R>,
    entry: &Entry,
    plan: Plan,
) -> Result<(), ArchiveError> {
    use tar::EntryType as T;
    let mut header = entry.header.clone();
    if !entry.pax.is_empty() {
        out.append_pax_extensions(entry.pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(ArchiveError::Output)?;
    }
    let kind = header.entry_type();
    let written = match (kind, &plan.hard_target) {
        (T::Link, Some(target)) => {
            header.set_size(0);
            out.append_link(&mut header, &plan.dest, target)
        }
        (T::Symlink, _) => {
            header.set_size(0);
            let target = Path::new(OsStr::from_bytes(entry.link.as_deref().unwrap_or_default()));
            out.append_link(&mut header, &plan.dest, target)
        }
        _ => {
            // The header's own size field may be zero when a PAX record carried the size.
            header.set_size(entry.size);
            out.append_data(&mut header, &plan.dest, reader.data())
        }
    };
    written.map_err(|e| match ArchiveError::from_io(e) {
        ArchiveError::Io(e) => ArchiveError::Output(e),
        damage => damage,
    })
}

/// The path inside the volume as components joined by `/`, without `.` parts or leading
/// slashes; `None` when a `..` part could leave the volume. The root is the empty path.
pub(crate) fn normalize(path: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Some(out)
}

/// Whether any ancestor of `rel` was created as a symlink earlier in the archive.
fn through_symlink(rel: &[u8], symlinks: &HashSet<Vec<u8>>) -> bool {
    if symlinks.is_empty() {
        return false;
    }
    rel.iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'/')
        .any(|(i, _)| symlinks.contains(&rel[..i]))
}

fn mounted(mount: &str, rel: &[u8]) -> PathBuf {
    let mut p = PathBuf::from(mount);
    if rel.is_empty() {
        // A trailing slash keeps the directory entry a directory entry.
        return PathBuf::from(format!("{mount}/"));
    }
    p.push(OsStr::from_bytes(rel));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::TarReader;

    #[test]
    fn normalize_keeps_paths_inside() {
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b".").unwrap(), b"");
        assert_eq!(normalize(b"./a/b").unwrap(), b"a/b");
        assert_eq!(normalize(b"a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize(b"/etc/passwd").unwrap(), b"etc/passwd");
        assert_eq!(normalize(b"../x"), None);
        assert_eq!(normalize(b"a/../../x"), None);
        assert_eq!(normalize(b"a/.."), None);
    }

    /// A file over 8 GiB: its size does not fit the octal field, so it travels as base-256 (or a
    /// PAX `size` record) and must come out of the rewrite with the same size and content.
    #[test]
    fn entries_over_8_gib_pass_through() {
        use std::io::Read as _;
        use std::sync::Arc;
        const SIZE: u64 = 9 << 30;
        let mut header = tar::Header::new_gnu();
        header.set_path("./big.bin").unwrap();
        header.set_size(SIZE);
        header.set_mode(0o600);
        header.set_cksum();
        let input = std::io::Cursor::new(header.as_bytes().to_vec())
            .chain(std::io::repeat(0).take(SIZE))
            .chain(std::io::Cursor::new(vec![0u8; 1024]));
        let mut reader = TarReader::new(input, Arc::default());
        let (out, report) = rewrite_for_upload(&mut reader, Recorder::default(), "volume").unwrap();
        assert_eq!(report.verdict.totals().content_bytes, SIZE);
        assert_eq!(out.headers.len(), 1);
        let h = tar::Header::from_byte_slice(&out.headers[0]);
        assert_eq!(h.entry_size().unwrap(), SIZE);
        assert_eq!(&*h.path_bytes(), b"volume/big.bin");
        assert_eq!(out.total, 512 + SIZE + 1024);
    }

    /// Keeps the first bytes of every 512-byte header the rewrite writes; counts the rest.
    #[derive(Default)]
    struct Recorder {
        headers: Vec<Vec<u8>>,
        total: u64,
    }

    impl std::io::Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.total == 0 && buf.len() >= 512 {
                self.headers.push(buf[..512].to_vec());
            }
            self.total += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn subtrees() {
        assert_eq!(subtree("./uploads/2024/").unwrap(), b"uploads/2024");
        assert_eq!(subtree("/a"), Some(b"a".to_vec()));
        assert_eq!(subtree("."), None);
        assert_eq!(subtree("a/../b"), None);
        assert!(under(b"a/b", b"a/b"));
        assert!(under(b"a/b/c", b"a/b"));
        assert!(!under(b"a/bc", b"a/b"));
        assert!(!under(b"a", b"a/b"));
    }

    #[test]
    fn symlink_ancestors_are_found() {
        let links: HashSet<Vec<u8>> = [b"a/l".to_vec()].into();
        assert!(through_symlink(b"a/l/x", &links));
        assert!(through_symlink(b"a/l/x/y", &links));
        assert!(!through_symlink(b"a/l", &links));
        assert!(!through_symlink(b"a/lx/y", &links));
    }
}
