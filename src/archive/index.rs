//! Entry-by-entry descriptions of a tar stream (type, owner, mode, mtime, size, link, content
//! hash) and their comparison: what `verify --against` and `verify --restore-test` report.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};

use super::tar_stream::{Entry, Item, TarReader};
use super::ArchiveError;

/// What is compared of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub link: Option<Vec<u8>>,
    /// blake3 of the content, for regular files.
    pub content: Option<[u8; 32]>,
}

/// Entries by normalised path (`./a/b` and `a/b` are the same; the root is the empty path).
pub type Index = BTreeMap<Vec<u8>, EntryInfo>;

/// Reads every remaining entry of `reader`, hashing content, into an index.
pub fn index_entries<R: Read>(reader: &mut TarReader<R>) -> Result<Index, ArchiveError> {
    let mut index = Index::new();
    while let Item::Entry(entry) = reader.next_item()? {
        let kind = entry.header.entry_type();
        let content = if kind.is_file() || kind == tar::EntryType::Continuous {
            let mut hasher = blake3::Hasher::new();
            io::copy(&mut reader.data(), &mut hasher).map_err(ArchiveError::from_io)?;
            Some(*hasher.finalize().as_bytes())
        } else {
            None
        };
        index.insert(normalize(&entry.path), describe(&entry, content)?);
    }
    Ok(index)
}

/// What is compared of one entry, from its headers; `content` is the hash of its data when the
/// caller read it (regular files only), and the size counts only then.
pub fn describe(entry: &Entry, content: Option<[u8; 32]>) -> Result<EntryInfo, ArchiveError> {
    let header = &entry.header;
    let kind = header.entry_type();
    let old = header.as_old();
    // An empty numeric field reads as 0, as the engine's own tar reader (Go) takes it.
    let field = |r: io::Result<u64>, what: &str| {
        let raw: &[u8] = match what {
            "mode" => &old.mode,
            "uid" => &old.uid,
            "gid" => &old.gid,
            _ => &old.mtime,
        };
        if r.is_err() && raw.iter().all(|&b| b == 0 || b == b' ') {
            return Ok(0);
        }
        r.map_err(|e| {
            ArchiveError::Corrupt(format!("bad {what} in `{}`: {e}", entry.display_path()))
        })
    };
    let link = entry
        .link
        .clone()
        .filter(|_| kind.is_symlink() || kind.is_hard_link())
        .map(|l| {
            if kind.is_hard_link() {
                normalize(&l)
            } else {
                l
            }
        });
    Ok(EntryInfo {
        kind: char::from(kind.as_byte()),
        mode: field(header.mode().map(u64::from), "mode")? as u32 & 0o7777,
        uid: pax_number(&entry.pax, "uid").map_or_else(|| field(header.uid(), "uid"), Ok)?,
        gid: pax_number(&entry.pax, "gid").map_or_else(|| field(header.gid(), "gid"), Ok)?,
        mtime: pax_number(&entry.pax, "mtime")
            .map_or_else(|| field(header.mtime(), "mtime"), Ok)?,
        size: if content.is_some() { entry.size } else { 0 },
        link,
        content,
    })
}

/// An index of a stream whose paths (and hard-link targets) sit under `mount` (`volume/a`), as
/// the volume holds them (`a`).
pub fn rebase(index: Index, mount: &str) -> Index {
    index
        .into_iter()
        .map(|(path, mut info)| {
            if info.kind == '1' {
                info.link = info.link.map(|l| under(&l, mount));
            }
            (under(&path, mount), info)
        })
        .collect()
}

/// The index with every owner set to 0: for comparing with a volume read through an engine that
/// does not report owners (Podman's archive endpoint answers every entry as root's).
pub fn without_owners(index: Index) -> Index {
    index
        .into_iter()
        .map(|(path, mut info)| {
            (info.uid, info.gid) = (0, 0);
            (path, info)
        })
        .collect()
}

/// `volume/a` -> `a`, `volume` -> the root; other paths as they are.
pub(crate) fn under(path: &[u8], mount: &str) -> Vec<u8> {
    let mount = mount.as_bytes();
    match path.strip_prefix(mount) {
        Some([]) => Vec::new(),
        Some([b'/', rest @ ..]) => rest.to_vec(),
        _ => path.to_vec(),
    }
}

/// Compares an archive with the volume it was restored into. Archives made from bare names
/// (`tar cf x.tar dir/sub`) lack entries for the volume root and for parent directories;
/// restoring creates them. Those are not differences.
pub fn compare_restored(archive: &Index, volume: &Index) -> Diff {
    let mut implicit = std::collections::HashSet::new();
    for path in archive.keys() {
        implicit.insert(Vec::new());
        for (i, _) in path.iter().enumerate().filter(|&(_, &b)| b == b'/') {
            implicit.insert(path[..i].to_vec());
        }
    }
    let volume: Index = volume
        .iter()
        .filter(|(path, info)| {
            archive.contains_key(*path) || !(info.kind == '5' && implicit.contains(*path))
        })
        .map(|(p, i)| (p.clone(), i.clone()))
        .collect();
    compare(archive, &volume)
}

/// A PAX record's integer value (`mtime` may carry a fraction: whole seconds are compared).
fn pax_number(records: &[(String, Vec<u8>)], key: &str) -> Option<u64> {
    let (_, value) = records.iter().find(|(k, _)| k == key)?;
    let text = std::str::from_utf8(value).ok()?;
    text.split('.').next()?.parse().ok()
}

/// `./a//b/` -> `a/b`, the root `./` -> empty, as a restore places entries; a path that climbs
/// out (`../x`, which a restore skips) is kept as it is, so it shows up as a difference.
pub fn normalize(path: &[u8]) -> Vec<u8> {
    super::restore::normalize(path).unwrap_or_else(|| path.to_vec())
}

/// How two indexes differ.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Diff {
    /// In the second index only (e.g. created in the volume since the backup).
    pub added: Vec<String>,
    /// In the first index only (e.g. deleted from the volume since the backup).
    pub removed: Vec<String>,
    /// In both, with what differs.
    pub changed: Vec<(String, Vec<&'static str>)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }
}

/// Compares `before` (the archive) with `after` (a volume).
pub fn compare(before: &Index, after: &Index) -> Diff {
    let mut diff = Diff::default();
    for (path, a) in before {
        match after.get(path) {
            None => diff.removed.push(display(path)),
            Some(b) => {
                let what = differences(a, b);
                if !what.is_empty() {
                    diff.changed.push((display(path), what));
                }
            }
        }
    }
    diff.added = after
        .keys()
        .filter(|p| !before.contains_key(*p))
        .map(|p| display(p))
        .collect();
    diff
}

fn differences(a: &EntryInfo, b: &EntryInfo) -> Vec<&'static str> {
    let mut what = Vec::new();
    if a.kind != b.kind {
        // A hard link and the file it links to are the same content: which one the tar calls
        // the link depends on the order the engine walked the directory.
        let links = |x: &EntryInfo| x.kind == '1' || x.kind == '0';
        if !(links(a) && links(b)) {
            what.push("type");
        }
    } else if a.content != b.content || a.size != b.size {
        what.push("content");
    }
    if a.kind == b.kind && a.link != b.link {
        what.push("link target");
    }
    if a.mode != b.mode {
        what.push("mode");
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        what.push("owner");
    }
    if a.mtime != b.mtime {
        what.push("mtime");
    }
    what
}

fn display(path: &[u8]) -> String {
    if path.is_empty() {
        "./ (the volume root)".to_string()
    } else {
        String::from_utf8_lossy(path).into_owned()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, what) in &self.changed {
            writeln!(f, "changed  {path} ({})", what.join(", "))?;
        }
        for path in &self.added {
            writeln!(f, "added    {path}")?;
        }
        for path in &self.removed {
            writeln!(f, "removed  {path}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tar_of(entries: &[(&str, &[u8], u32, u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, mode, mtime) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_mtime(*mtime);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn index(bytes: &[u8]) -> Index {
        index_entries(&mut TarReader::new(bytes, Arc::default())).unwrap()
    }

    #[test]
    fn finds_added_removed_and_changed_entries() {
        let before = index(&tar_of(&[
            ("./same", b"x", 0o644, 1),
            ("./edited", b"old", 0o644, 1),
            ("./chmodded", b"y", 0o644, 1),
            ("./gone", b"z", 0o644, 1),
        ]));
        let after = index(&tar_of(&[
            ("same", b"x", 0o644, 1),
            ("edited", b"new", 0o644, 2),
            ("chmodded", b"y", 0o600, 1),
            ("new", b"n", 0o644, 1),
        ]));
        let diff = compare(&before, &after);
        assert_eq!(diff.added, vec!["new"]);
        assert_eq!(diff.removed, vec!["gone"]);
        assert_eq!(
            diff.changed,
            vec![
                ("chmodded".to_string(), vec!["mode"]),
                ("edited".to_string(), vec!["content", "mtime"]),
            ]
        );
        assert_eq!(diff.len(), 4);
        assert!(compare(&before, &before).is_empty());
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalize(b"./a//b/"), b"a/b");
        assert_eq!(normalize(b"./"), b"");
        assert_eq!(normalize(b"a"), b"a");
        assert_eq!(normalize(b"../x"), b"../x");
    }
}
