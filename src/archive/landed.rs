//! Whether a volume holds what a restore sent it, from tar headers alone and in constant memory:
//! the stream sent to the engine and the volume read back afterwards are each summed up (entry
//! count, bytes of file content, the root's owner and mode, the first and last entries sent, an
//! order-independent fingerprint of every entry's path, type, owner and mode), and [`check`]
//! compares the two. A volume that received nothing never passes.

use std::cmp::Ordering;
use std::io::Read;

use super::index::{self, describe};
use super::tar_stream::{Entry, Item, TarReader};
use super::ArchiveError;

/// What is compared of one entry (no mtime, no content: those need `restore --verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    /// The tar type, with a hard link counted as the file it links to: which of the two names
    /// the engine calls the link depends on the order it walks the directory.
    pub kind: char,
    /// Permission bits; zero for symlinks, whose mode the engine does not keep.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Bytes of content (regular files; a hard link carries none).
    pub size: u64,
    pub hard_link: bool,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
}

impl Brief {
    fn of(entry: &Entry) -> Result<Brief, ArchiveError> {
        let info = describe(entry, None)?;
        let hard_link = info.kind == '1';
        let kind = match info.kind {
            '1' | '7' | '\0' => '0',
            k => k,
        };
        let symlink = kind == '2';
        Ok(Brief {
            kind,
            mode: if symlink { 0 } else { info.mode },
            uid: info.uid,
            gid: info.gid,
            size: if kind == '0' && !hard_link {
                entry.size
            } else {
                0
            },
            hard_link,
            link: info.link.filter(|_| symlink),
        })
    }

    /// `file 1000:1000 0644, 12 bytes`.
    fn describe(&self) -> String {
        let kind = match self.kind {
            '0' => "file",
            '2' => "symlink",
            '3' => "character device",
            '4' => "block device",
            '5' => "directory",
            '6' => "fifo",
            _ => "entry",
        };
        let mut text = format!("{kind} {}:{} {:04o}", self.uid, self.gid, self.mode);
        if self.kind == '0' && !self.hard_link {
            text.push_str(&format!(", {} bytes", self.size));
        }
        text
    }

    /// What differs between an entry sent (`self`) and the one found under its path.
    fn differences(&self, found: &Brief) -> Vec<&'static str> {
        let mut what = Vec::new();
        if self.kind != found.kind {
            what.push("type");
        }
        if self.mode != found.mode {
            what.push("mode");
        }
        if (self.uid, self.gid) != (found.uid, found.gid) {
            what.push("owner");
        }
        let sized = |b: &Brief| b.kind == '0' && !b.hard_link;
        if sized(self) && sized(found) && self.size != found.size {
            what.push("size");
        }
        if self.link != found.link {
            what.push("link target");
        }
        what
    }
}

/// A tar stream summed up; paths are the volume's (`a/b`, the root is the empty path).
#[derive(Debug, Default)]
pub struct Summary {
    /// Entries other than the root.
    pub entries: u64,
    /// Bytes of regular-file content.
    pub file_bytes: u64,
    pub root: Option<Brief>,
    pub first: Option<(Vec<u8>, Brief)>,
    pub last: Option<(Vec<u8>, Brief)>,
    /// Every path came after the one before in the engine's walk order (names compared part by
    /// part): then no path came twice, and every parent came before its children.
    pub ordered: bool,
    /// Parent directories that the stream lacks, which extracting it creates (counted while
    /// `ordered`).
    pub implicit: u64,
    /// Sum of a hash of every entry's path and `Brief` but its size, so order does not matter.
    fingerprint: u128,
    /// Owners are left out (zero): the volume is read through an engine that does not report
    /// them (Podman's archive endpoint answers every entry as root's).
    no_owners: bool,
    previous: Option<Vec<u8>>,
    /// The directories above the previous path, outermost first.
    open: Vec<Vec<u8>>,
    /// Paths looked for, and what was found under them.
    watched: Vec<(Vec<u8>, Option<Brief>)>,
}

impl Summary {
    /// An empty summary that also keeps what it sees under the paths in `watch`.
    pub fn watching(watch: Vec<Vec<u8>>) -> Summary {
        Summary {
            ordered: true,
            watched: watch.into_iter().map(|p| (p, None)).collect(),
            ..Default::default()
        }
    }

    /// With `false`, owners are not summed up (both sides of a check must agree).
    pub fn owners(mut self, owners: bool) -> Summary {
        self.no_owners = !owners;
        self
    }

    /// The paths a volume read back should be searched for: the first and last entries sent.
    pub fn samples(&self) -> Vec<Vec<u8>> {
        self.first
            .iter()
            .chain(self.last.iter())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Counts one entry at volume path `path`.
    pub fn add(&mut self, path: Vec<u8>, mut brief: Brief) {
        if self.no_owners {
            (brief.uid, brief.gid) = (0, 0);
        }
        for (watched, found) in &mut self.watched {
            if *watched == path {
                *found = Some(brief.clone());
            }
        }
        if path.is_empty() {
            self.root = Some(brief);
            return;
        }
        self.entries += 1;
        self.file_bytes += brief.size;
        self.fingerprint = self.fingerprint.wrapping_add(fingerprint(&path, &brief));
        if self.ordered {
            self.follow(&path, &brief);
        }
        if self.first.is_none() {
            self.first = Some((path.clone(), brief.clone()));
        }
        self.last = Some((path, brief));
    }

    /// Keeps `ordered`, `implicit` and the open directories up to date.
    fn follow(&mut self, path: &[u8], brief: &Brief) {
        if let Some(previous) = &self.previous {
            if walk_order(previous, path) != Ordering::Less {
                self.ordered = false;
                self.open.clear();
                return;
            }
        }
        self.previous = Some(path.to_vec());
        while let Some(top) = self.open.last() {
            if path.len() > top.len() && path.starts_with(top) && path[top.len()] == b'/' {
                break;
            }
            self.open.pop();
        }
        // The open directories are a chain from the top: the missing rest of the chain is made
        // by the extraction.
        let parents: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .collect();
        for &end in &parents[self.open.len().min(parents.len())..] {
            self.implicit += 1;
            self.open.push(path[..end].to_vec());
        }
        if brief.kind == '5' {
            self.open.push(path.to_vec());
        }
    }

    fn found(&self, path: &[u8]) -> Option<&Brief> {
        self.watched
            .iter()
            .find(|(p, _)| p == path)
            .and_then(|(_, b)| b.as_ref())
    }
}

/// The engine's walk order: path names compared part by part (`a/b` before `a.txt`).
fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

fn fingerprint(path: &[u8], brief: &Brief) -> u128 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(path.len() as u64).to_le_bytes());
    hasher.update(path);
    hasher.update(&[brief.kind as u8]);
    hasher.update(&brief.mode.to_le_bytes());
    hasher.update(&brief.uid.to_le_bytes());
    hasher.update(&brief.gid.to_le_bytes());
    if let Some(link) = &brief.link {
        hasher.update(link);
    }
    let hash = hasher.finalize();
    u128::from_le_bytes(hash.as_bytes()[..16].try_into().expect("16 bytes"))
}

/// Sums up the remaining entries of `reader` into `summary`. With `mount`, paths are those of a
/// stream made for upload (`volume/a`) and are taken relative to it. An input without a single
/// byte is an empty volume (the engine may send nothing for one).
pub fn summarize<R: Read>(
    reader: &mut TarReader<R>,
    mount: Option<&str>,
    mut summary: Summary,
) -> Result<Summary, ArchiveError> {
    let mut seen = false;
    loop {
        let entry = match reader.next_item() {
            Ok(Item::Entry(entry)) => entry,
            Ok(Item::End) => break,
            Err(ArchiveError::Foreign(_)) if !seen => break,
            Err(e) => return Err(e),
        };
        seen = true;
        let path = index::normalize(&entry.path);
        let path = match mount {
            Some(mount) => index::under(&path, mount),
            None => path,
        };
        summary.add(path, Brief::of(&entry)?);
    }
    Ok(summary)
}

/// Whether `landed` (a volume read back, watching `sent.samples()`) can hold what `sent` (the
/// stream the engine accepted) put into the empty volume; if not, what is wrong.
pub fn check(sent: &Summary, landed: &Summary) -> Result<(), String> {
    if sent.entries > 0 && landed.entries == 0 {
        return Err(format!(
            "the volume is empty, and {} entries were sent",
            sent.entries
        ));
    }
    if let (Some(want), Some(got)) = (&sent.root, &landed.root) {
        let what = want.differences(got);
        if !what.is_empty() {
            return Err(format!(
                "its root differs in {} (sent {}, found {})",
                what.join(", "),
                want.describe(),
                got.describe()
            ));
        }
    }
    if sent.ordered {
        let expected = sent.entries + sent.implicit;
        if landed.entries != expected {
            return Err(format!(
                "it holds {} entries, and {expected} were sent",
                landed.entries
            ));
        }
        if landed.file_bytes != sent.file_bytes {
            return Err(format!(
                "its files hold {} bytes, and {} were sent",
                landed.file_bytes, sent.file_bytes
            ));
        }
    }
    // Out of order, a later entry may replace an earlier one of the same path: the last stands.
    let samples = if sent.ordered {
        vec![&sent.first, &sent.last]
    } else {
        vec![&sent.last]
    };
    for (path, want) in samples.into_iter().flatten() {
        let shown = String::from_utf8_lossy(path);
        match landed.found(path) {
            None => return Err(format!("`{shown}` is missing")),
            Some(got) => {
                let what = want.differences(got);
                if !what.is_empty() {
                    return Err(format!(
                        "`{shown}` differs in {} (sent {}, found {})",
                        what.join(", "),
                        want.describe(),
                        got.describe()
                    ));
                }
            }
        }
    }
    if sent.ordered && sent.implicit == 0 && landed.fingerprint != sent.fingerprint {
        return Err("some entries differ in name, type, owner or mode".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// `(path, type, mode, uid, size)`; content is zeros.
    type Spec<'a> = (&'a str, tar::EntryType, u32, u64, usize);

    /// Names are written as they are (the tar crate would drop a `./`).
    fn tar_of(entries: &[Spec]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &(path, kind, mode, uid, size) in entries {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(uid);
            h.set_mtime(1);
            let size = if kind == L || kind == S { 0 } else { size };
            if kind == L || kind == S {
                let target = b"volume/target";
                h.as_old_mut().linkname[..target.len()].copy_from_slice(target);
            }
            h.set_size(size as u64);
            h.set_cksum();
            b.append(&h, &vec![0u8; size][..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn sent(entries: &[Spec]) -> Summary {
        let bytes = tar_of(entries);
        let mut reader = TarReader::new(&bytes[..], Arc::default());
        summarize(&mut reader, Some("volume"), Summary::watching(Vec::new())).unwrap()
    }

    fn landed(entries: &[Spec], sent: &Summary) -> Summary {
        let bytes = tar_of(entries);
        let mut reader = TarReader::new(&bytes[..], Arc::default());
        summarize(&mut reader, None, Summary::watching(sent.samples())).unwrap()
    }

    use tar::EntryType::{Directory as D, Link as L, Regular as F, Symlink as S};

    const SENT: &[Spec] = &[
        ("volume/", D, 0o700, 999, 0),
        ("volume/a", D, 0o755, 1, 0),
        ("volume/a/b.txt", F, 0o644, 1, 10),
        ("volume/a.txt", F, 0o600, 2, 3),
        ("volume/l", L, 0o600, 2, 0),
        ("volume/s", S, 0o777, 0, 0),
    ];

    const LANDED: &[Spec] = &[
        ("./", D, 0o700, 999, 0),
        ("./a", D, 0o755, 1, 0),
        ("./a/b.txt", F, 0o644, 1, 10),
        // The engine may call the other name of a hard link the link.
        ("./a.txt", L, 0o600, 2, 0),
        ("./l", F, 0o600, 2, 3),
        ("./s", S, 0o777, 0, 0),
    ];

    #[test]
    fn what_was_sent_passes() {
        let s = sent(SENT);
        assert!(s.ordered);
        assert_eq!((s.entries, s.implicit, s.file_bytes), (5, 0, 13));
        assert_eq!(check(&s, &landed(LANDED, &s)), Ok(()));
    }

    #[test]
    fn an_empty_volume_never_passes() {
        let s = sent(SENT);
        let empty = landed(&[("./", D, 0o700, 999, 0)], &s);
        let err = check(&s, &empty).unwrap_err();
        assert!(err.contains("the volume is empty, and 5 entries"), "{err}");
        // Nothing at all (an engine that sends no root entry for an empty volume).
        let mut reader = TarReader::new(&[][..], Arc::default());
        let nothing = summarize(&mut reader, None, Summary::watching(s.samples())).unwrap();
        assert!(check(&s, &nothing).is_err());
    }

    #[test]
    fn a_missing_entry_a_wrong_owner_or_root_fails() {
        let s = sent(SENT);
        let fewer = landed(&LANDED[..5], &s);
        assert_eq!(
            check(&s, &fewer).unwrap_err(),
            "it holds 4 entries, and 5 were sent"
        );
        let mut owner = LANDED.to_vec();
        owner[1].3 = 0;
        let err = check(&s, &landed(&owner, &s)).unwrap_err();
        assert!(err.contains("`a` differs in owner"), "{err}");
        let mut root = LANDED.to_vec();
        root[0].2 = 0o755;
        let err = check(&s, &landed(&root, &s)).unwrap_err();
        assert!(err.contains("its root differs in mode"), "{err}");
        // Only the fingerprint sees an entry between the first and the last.
        let mut middle = LANDED.to_vec();
        middle[3].2 = 0o644;
        middle[4].2 = 0o644;
        assert_eq!(
            check(&s, &landed(&middle, &s)).unwrap_err(),
            "some entries differ in name, type, owner or mode"
        );
    }

    #[test]
    fn parents_the_stream_lacks_are_counted() {
        let s = sent(&[
            ("volume/x/y/f", F, 0o644, 0, 1),
            ("volume/x/y/g", F, 0o644, 0, 1),
            ("volume/z/h", F, 0o644, 0, 1),
        ]);
        assert!(s.ordered);
        assert_eq!((s.entries, s.implicit), (3, 3));
        let l = landed(
            &[
                ("./", D, 0o755, 0, 0),
                ("./x", D, 0o755, 0, 0),
                ("./x/y", D, 0o755, 0, 0),
                ("./x/y/f", F, 0o644, 0, 1),
                ("./x/y/g", F, 0o644, 0, 1),
                ("./z", D, 0o755, 0, 0),
                ("./z/h", F, 0o644, 0, 1),
            ],
            &s,
        );
        assert_eq!(check(&s, &l), Ok(()));
    }

    #[test]
    fn out_of_order_streams_check_the_last_entry() {
        // A path twice: the second one stands.
        let s = sent(&[
            ("volume/b", F, 0o644, 0, 1),
            ("volume/a", F, 0o644, 0, 1),
            ("volume/b", F, 0o600, 0, 2),
        ]);
        assert!(!s.ordered);
        let l = landed(&[("./a", F, 0o644, 0, 1), ("./b", F, 0o600, 0, 2)], &s);
        assert_eq!(check(&s, &l), Ok(()));
        let l = landed(&[("./a", F, 0o644, 0, 1)], &s);
        assert_eq!(check(&s, &l).unwrap_err(), "`b` is missing");
    }

    #[test]
    fn walk_order_compares_names_part_by_part() {
        assert_eq!(walk_order(b"a/b", b"a.txt"), Ordering::Less);
        assert_eq!(walk_order(b"a", b"a/b"), Ordering::Less);
        assert_eq!(walk_order(b"a/b", b"a/b"), Ordering::Equal);
        assert_eq!(walk_order(b"b", b"a/z"), Ordering::Greater);
    }
}
