//! Reading entries out of an archive with no engine: their metadata for `inspect --list`, and
//! writing them into a host directory for `extract`.
//!
//! Extraction never follows a symlink: every parent directory is checked with `lstat` (a
//! symlink, from the archive or already there, makes the entry refused), files are opened with
//! `O_NOFOLLOW | O_EXCL`, and paths with `..` or that resolve to the directory itself are
//! refused. Symlinks from the archive are created as they are (their targets are data) but
//! nothing is ever written through them.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::restore::{normalize, under};
use super::tar_stream::{Entry, Item, TarReader, Verdict};
use super::ArchiveError;

/// One entry's metadata, as `inspect --list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryMeta {
    /// The path inside the volume (`.` for its root).
    pub path: String,
    /// `file`, `dir`, `symlink`, `hardlink`, `fifo`, `char`, `block` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: u64,
    pub uid: u64,
    pub gid: u64,
    /// Owner and group names when the archive records them.
    pub user: Option<String>,
    pub group: Option<String>,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// The target of a symlink or hard link.
    pub link: Option<String>,
}

/// The metadata of `entry`, PAX records (ids, names, times) over the header's fields.
pub fn entry_meta(entry: &Entry) -> EntryMeta {
    use tar::EntryType as T;
    let h = &entry.header;
    let kind = match h.entry_type() {
        T::Regular | T::Continuous => "file",
        T::Directory => "dir",
        T::Symlink => "symlink",
        T::Link => "hardlink",
        T::Fifo => "fifo",
        T::Char => "char",
        T::Block => "block",
        _ => "other",
    };
    let pax = |key: &str| {
        entry
            .pax
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let number = |key: &str| pax(key).and_then(|v| v.split('.').next()?.parse::<i64>().ok());
    let name = |v: Option<String>| v.filter(|s| !s.is_empty());
    let path = normalize(&entry.path)
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .unwrap_or_else(|| entry.display_path());
    EntryMeta {
        path: if path.is_empty() { ".".into() } else { path },
        kind,
        size: if kind == "file" { entry.size } else { 0 },
        uid: number("uid").map_or_else(|| h.uid().unwrap_or(0), |v| v.max(0) as u64),
        gid: number("gid").map_or_else(|| h.gid().unwrap_or(0), |v| v.max(0) as u64),
        user: name(pax("uname").or_else(|| h.username().ok().flatten().map(String::from))),
        group: name(pax("gname").or_else(|| h.groupname().ok().flatten().map(String::from))),
        mode: h.mode().unwrap_or(0) & 0o7777,
        mtime: number("mtime").unwrap_or_else(|| h.mtime().unwrap_or(0) as i64),
        link: entry
            .link
            .as_ref()
            .map(|l| String::from_utf8_lossy(l).into_owned()),
    }
}

/// What an extraction did.
#[derive(Debug)]
pub struct ExtractReport {
    pub verdict: Verdict,
    /// Entries written.
    pub written: u64,
    /// Entries refused or not extractable, with the reason.
    pub skipped: Vec<String>,
    /// Requested paths that matched no entry.
    pub missing: Vec<String>,
}

/// Writes the entries of `reader` at or under one of `paths` (every entry when empty; each
/// from `restore::subtree`) into `dir`, which must exist. An existing file is replaced only
/// with `overwrite` (a directory is merged into). Modes are applied (setuid and setgid bits
/// dropped), and modification times; owners are not (the files belong to whoever runs this).
/// Fifos and device nodes are skipped. The whole archive is read and checked.
pub fn extract<R: Read>(
    reader: &mut TarReader<R>,
    dir: &Path,
    paths: &[Vec<u8>],
    overwrite: bool,
) -> Result<ExtractReport, ArchiveError> {
    use tar::EntryType as T;
    let mut written = 0;
    let mut skipped = Vec::new();
    let mut matched: BTreeSet<usize> = BTreeSet::new();
    // Directories get their mode and time at the end, so that read-only ones can be filled.
    let mut dirs: Vec<(PathBuf, u32, i64)> = Vec::new();
    while let Item::Entry(entry) = reader.next_item()? {
        let absolute = entry.path.starts_with(b"/");
        let Some(rel) = normalize(&entry.path).filter(|_| !absolute) else {
            skipped.push(format!(
                "{}: its path leaves the directory",
                entry.display_path()
            ));
            continue;
        };
        if !paths.is_empty() {
            let Some(i) = paths.iter().position(|p| under(&rel, p)) else {
                continue;
            };
            matched.insert(i);
        }
        let meta = entry_meta(&entry);
        if rel.is_empty() {
            // The volume's root is `dir` itself: only its mode and time would apply; leave them.
            continue;
        }
        let dest = dir.join(std::ffi::OsStr::from_bytes(&rel));
        if let Err(why) = parents(dir, &rel) {
            skipped.push(format!("{}: {why}", meta.path));
            continue;
        }
        let kind = entry.header.entry_type();
        let result = match kind {
            T::Directory => make_dir(&dest).map(|()| {
                dirs.push((dest.clone(), meta.mode, meta.mtime));
            }),
            T::Regular | T::Continuous => {
                write_file(&dest, &mut reader.data(), &meta, overwrite).map_err(|e| match e {
                    // Reading the archive failed (the reader wraps its errors), not writing.
                    Failure::Io(e) if e.get_ref().is_some_and(|i| i.is::<ArchiveError>()) => {
                        Failure::Archive(ArchiveError::from_io(e))
                    }
                    other => other,
                })
            }
            T::Symlink => make_symlink(&dest, entry.link.as_deref().unwrap_or_default(), overwrite),
            T::Link => hard_link(
                dir,
                &dest,
                entry.link.as_deref().unwrap_or_default(),
                overwrite,
            ),
            _ => Err(Failure::Refused(format!(
                "a {} is not extracted",
                meta.kind
            ))),
        };
        match result {
            Ok(()) => written += 1,
            Err(Failure::Refused(why)) => skipped.push(format!("{}: {why}", meta.path)),
            Err(Failure::Archive(e)) => return Err(e),
            Err(Failure::Io(e)) => {
                return Err(ArchiveError::Output(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dest.display()),
                )))
            }
        }
    }
    reader.drain()?;
    let verdict = reader.verify()?;
    for (path, mode, mtime) in dirs.iter().rev() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o1777));
        if let Ok(f) = File::open(path) {
            let _ = f.set_modified(time(*mtime));
        }
    }
    let missing = paths
        .iter()
        .enumerate()
        .filter(|(i, _)| !matched.contains(i))
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect();
    Ok(ExtractReport {
        verdict,
        written,
        skipped,
        missing,
    })
}

enum Failure {
    /// The entry is left out, for this reason.
    Refused(String),
    /// Writing failed.
    Io(io::Error),
    /// Reading the archive failed.
    Archive(ArchiveError),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

fn time(mtime: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64)
}

/// Makes sure every parent of `rel` inside `dir` is a real directory (creating missing ones),
/// never a symlink.
fn parents(dir: &Path, rel: &[u8]) -> Result<(), String> {
    let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    let mut at = dir.to_path_buf();
    for part in &parts[..parts.len() - 1] {
        at.push(std::ffi::OsStr::from_bytes(part));
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err("its path goes through a symlink".into())
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err("a parent of it is not a directory".into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    Ok(())
}

fn make_dir(dest: &Path) -> Result<(), Failure> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => Ok(()),
        Ok(_) => Err(Failure::Refused(
            "something that is not a directory is in its place".into(),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(fs::create_dir(dest)?),
        Err(e) => Err(e.into()),
    }
}

/// Removes what is at `dest` when `overwrite` (a file or a symlink, never following it);
/// refuses otherwise.
fn make_room(dest: &Path, overwrite: bool) -> Result<(), Failure> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
        Ok(m) if m.is_dir() => Err(Failure::Refused("a directory is in its place".into())),
        Ok(_) if overwrite => Ok(fs::remove_file(dest)?),
        Ok(_) => Err(Failure::Refused(
            "it exists (use --force to replace it)".into(),
        )),
    }
}

fn write_file(
    dest: &Path,
    data: &mut impl Read,
    meta: &EntryMeta,
    overwrite: bool,
) -> Result<(), Failure> {
    make_room(dest, overwrite)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(dest)?;
    let copied = io::copy(data, &mut file).and_then(|_| {
        file.set_permissions(fs::Permissions::from_mode(meta.mode & 0o1777))?;
        file.set_modified(time(meta.mtime))
    });
    if let Err(e) = copied {
        // A file cut short must not look like the archive's.
        drop(file);
        let _ = fs::remove_file(dest);
        return Err(e.into());
    }
    Ok(())
}

fn make_symlink(dest: &Path, target: &[u8], overwrite: bool) -> Result<(), Failure> {
    make_room(dest, overwrite)?;
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), dest)?;
    Ok(())
}

fn hard_link(dir: &Path, dest: &Path, target: &[u8], overwrite: bool) -> Result<(), Failure> {
    let Some(rel) = normalize(target).filter(|t| !t.is_empty()) else {
        return Err(Failure::Refused(
            "its hard-link target leaves the directory".into(),
        ));
    };
    parents(dir, &rel).map_err(|why| Failure::Refused(format!("hard-link target: {why}")))?;
    let source = dir.join(std::ffi::OsStr::from_bytes(&rel));
    match fs::symlink_metadata(&source) {
        Ok(m) if m.is_file() => {}
        _ => {
            return Err(Failure::Refused(
                "its hard-link target is not a file extracted here".into(),
            ))
        }
    }
    make_room(dest, overwrite)?;
    fs::hard_link(&source, dest)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            // Written raw, so that hostile names (`../x`, `/etc/x`) reach the reader unchanged.
            let name = h.as_old_mut();
            name.name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(l) = link {
                name.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn run(archive: Vec<u8>, dir: &Path, paths: &[&str]) -> ExtractReport {
        let mut reader = TarReader::new(io::Cursor::new(archive), Arc::default());
        let paths: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| super::super::restore::subtree(p).unwrap())
            .collect();
        extract(&mut reader, dir, &paths, false).unwrap()
    }

    #[test]
    fn hostile_entries_stay_inside() {
        use tar::EntryType as T;
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("out");
        fs::create_dir(&dir).unwrap();
        let archive = tar_of(&[
            ("./", T::Directory, b"", None),
            ("../x", T::Regular, b"escaped", None),
            ("./etc", T::Symlink, b"", Some("/etc")),
            ("./etc/evil", T::Regular, b"evil", None),
            ("./up", T::Symlink, b"", Some("..")),
            ("./up/x2", T::Regular, b"escaped", None),
            ("/abs", T::Regular, b"abs", None),
            ("./a/b.txt", T::Regular, b"hello", None),
            ("./h", T::Link, b"", Some("../x")),
        ]);
        let report = run(archive, &dir, &[]);
        assert!(!outer.path().join("x").exists());
        assert!(!outer.path().join("x2").exists());
        assert!(!Path::new("/etc/evil").exists());
        assert_eq!(fs::read(dir.join("a/b.txt")).unwrap(), b"hello");
        assert!(!dir.join("abs").exists());
        assert_eq!(fs::read_link(dir.join("etc")).unwrap(), Path::new("/etc"));
        assert!(!dir.join("h").exists());
        let reasons = report.skipped.join("\n");
        assert!(
            reasons.contains("../x: its path leaves the directory"),
            "{reasons}"
        );
        assert!(
            reasons.contains("etc/evil: its path goes through a symlink"),
            "{reasons}"
        );
        assert!(
            reasons.contains("up/x2: its path goes through a symlink"),
            "{reasons}"
        );
        assert!(
            reasons.contains("/abs: its path leaves the directory"),
            "{reasons}"
        );
        assert!(
            reasons.contains("h: its hard-link target leaves"),
            "{reasons}"
        );
        assert_eq!(report.skipped.len(), 5, "{reasons}");
    }

    #[test]
    fn only_the_asked_paths() {
        use tar::EntryType as T;
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(&[
            ("./a/", T::Directory, b"", None),
            ("./a/1", T::Regular, b"1", None),
            ("./ab", T::Regular, b"ab", None),
            ("./b/2", T::Regular, b"2", None),
        ]);
        let report = run(archive.clone(), dir.path(), &["a", "nope"]);
        assert_eq!(fs::read(dir.path().join("a/1")).unwrap(), b"1");
        assert!(!dir.path().join("ab").exists());
        assert!(!dir.path().join("b").exists());
        assert_eq!(report.missing, vec!["nope".to_string()]);
        // A second run refuses to replace what is there.
        let again = run(archive, dir.path(), &["a/1"]);
        assert_eq!(again.written, 0);
        assert!(
            again.skipped[0].contains("it exists"),
            "{:?}",
            again.skipped
        );
    }
}
