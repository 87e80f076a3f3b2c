//! The engine's tar stream as a rustic `ReadSource`: one pass over the stream, each entry a
//! node under `/<volume>`, each file's content buffered so that the archiver's worker threads can
//! open it whenever they like (in memory up to a shared budget, above it in an unlinked temp
//! file; blocking on the stream instead would deadlock, as the archiver looks ahead). rustic only
//! logs a source's errors, so they are kept here (`Tracker`) for the save to act on.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustic_core::jiff::Timestamp;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{ReadSource, ReadSourceEntry, RusticResult};

use super::mode::go_mode;
use crate::archive::extract::entry_meta;
use crate::archive::{Counters, Item, TarReader};
use crate::pipe::DynRead;

/// Content held in memory, summed over the entries in flight; above it, files go to temp files.
pub const MEMORY_BUDGET: u64 = 64 << 20;
/// One file at most this large is held in memory.
pub const MEMORY_FILE_MAX: u64 = 8 << 20;

/// What the pass saw: the first error, counts, and the hard links to fix up.
#[derive(Default)]
pub struct Tracker {
    error: Mutex<Option<String>>,
    pub entries: AtomicU64,
    pub content_bytes: AtomicU64,
    /// Bytes in memory now, and files spilled to disk so far.
    in_memory: AtomicU64,
    pub spilled: AtomicU64,
    /// (link, target) snapshot paths of the hard links seen, in stream order.
    pub hard_links: Mutex<Vec<(PathBuf, PathBuf)>>,
    /// The stream ended with its end-of-archive marker.
    pub complete: AtomicBool,
    pub cancelled: AtomicBool,
    /// A link numbered from the parent's manifest was not matched in the parent (its target
    /// changed): its node's content is wrong until the link pass sets it.
    pub link_missed: AtomicBool,
}

impl Tracker {
    pub fn fail(&self, e: impl Into<String>) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e.into());
        }
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Hard-link groups as the link pass numbers them (`save::link_groups`).
#[derive(Debug, Clone, Default)]
pub struct LinkGroups {
    /// Snapshot path -> (inode, link count) for every member of a group.
    pub inodes: HashMap<PathBuf, (u64, u64)>,
    /// Link -> its target.
    pub link_of: HashMap<PathBuf, PathBuf>,
}

/// The engine's tar stream, read once by `entries()`.
pub struct TarSource {
    stream: Mutex<Option<DynRead>>,
    root: PathBuf,
    tracker: Arc<Tracker>,
    counters: Arc<Counters>,
    /// The link groups the parent snapshot recorded, given to the nodes in this one pass.
    predicted: Option<Arc<LinkGroups>>,
}

impl TarSource {
    pub fn new(
        stream: DynRead,
        root: PathBuf,
        tracker: Arc<Tracker>,
        counters: Arc<Counters>,
    ) -> Self {
        TarSource {
            stream: Mutex::new(Some(stream)),
            root,
            tracker,
            counters,
            predicted: None,
        }
    }

    /// Numbers the hard links as `groups` says (the parent's, expected to hold again): each
    /// member's node gets its inode and link count, each link its target's size and mtime, so
    /// that unchanged links match the parent and keep its content.
    pub fn predicting(mut self, groups: Arc<LinkGroups>) -> Self {
        self.predicted = Some(groups);
        self
    }
}

impl ReadSource for TarSource {
    type Open = Content;
    type Iter = Entries;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Entries {
        let stream = self.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
        if stream.is_none() {
            self.tracker.fail("the volume's stream was read twice");
        }
        Entries {
            reader: stream.map(|s| TarReader::unchecksummed(s, Arc::clone(&self.counters))),
            root: self.root.clone(),
            tracker: Arc::clone(&self.tracker),
            predicted: self.predicted.clone(),
            targets: HashMap::new(),
        }
    }
}

/// The entries of the stream, in its order (the engine's: sorted, depth first).
pub struct Entries {
    reader: Option<TarReader<DynRead>>,
    root: PathBuf,
    tracker: Arc<Tracker>,
    predicted: Option<Arc<LinkGroups>>,
    /// Size and mtime of the predicted groups' targets seen so far (their links follow them).
    targets: HashMap<PathBuf, (u64, Option<Timestamp>)>,
}

impl Iterator for Entries {
    type Item = RusticResult<ReadSourceEntry<Content>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.tracker.cancelled.load(Ordering::Relaxed) {
            self.tracker.fail("interrupted");
        }
        if self.tracker.error().is_some() {
            // Stop at the first problem: the save will not keep this snapshot.
            self.reader = None;
            return None;
        }
        let mut reader = self.reader.take()?;
        match self.entry(&mut reader) {
            Ok(Some(e)) => {
                self.reader = Some(reader);
                Some(Ok(e))
            }
            Ok(None) => None,
            Err(e) => {
                self.tracker.fail(e);
                None
            }
        }
    }
}

impl Entries {
    /// The next entry as a node; `None` at the end of the stream.
    fn entry(
        &mut self,
        reader: &mut TarReader<DynRead>,
    ) -> Result<Option<ReadSourceEntry<Content>>, String> {
        // The fault tests slow every entry down, or end the stream early (a cut connection).
        fail::fail_point!("restic-entry");
        fail::fail_point!("restic-stream-cut", |_| Ok(None));
        let entry = match reader.next_item().map_err(|e| e.to_string())? {
            Item::End => {
                self.tracker.complete.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            Item::Entry(e) => e,
        };
        let Some(rel) = normalize(&entry.path) else {
            return Err(format!(
                "{}: a path that leaves the volume",
                entry.display_path()
            ));
        };
        let path = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(OsStr::from_bytes(&rel))
        };
        let meta = entry_meta(&entry);
        let kind = entry.header.entry_type();
        let dev = || {
            let major = entry.header.device_major().ok().flatten().unwrap_or(0);
            let minor = entry.header.device_minor().ok().flatten().unwrap_or(0);
            libc::makedev(major, minor)
        };
        use tar::EntryType as T;
        let (node_type, type_bits) = match kind {
            T::Directory => (NodeType::Dir, 0o040_000),
            T::Regular | T::Continuous => (NodeType::File, 0o100_000),
            T::Symlink => {
                let target = entry.link.clone().unwrap_or_default();
                (
                    NodeType::from_link(Path::new(OsStr::from_bytes(&target))),
                    0o120_000,
                )
            }
            T::Link => {
                let target = links_to(&entry, &self.root);
                let mut links = self
                    .tracker
                    .hard_links
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                links.push((path.clone(), target));
                (NodeType::File, 0o100_000)
            }
            T::Fifo => (NodeType::Fifo, 0o010_000),
            T::Char => (NodeType::Chardev { device: dev() }, 0o020_000),
            T::Block => (NodeType::Dev { device: dev() }, 0o060_000),
            other => {
                return Err(format!(
                    "{}: an entry of type {other:?} that a restic snapshot cannot hold",
                    entry.display_path()
                ))
            }
        };
        let size = if matches!(kind, T::Regular | T::Continuous) {
            entry.size
        } else {
            0
        };
        let mut mtime = Timestamp::from_second(meta.mtime).ok();
        let mut node_size = size;
        let mut inode = (0, 0);
        let mut links = if node_type.is_dir() { 2 } else { 1 };
        let mut guessed_link = false;
        if let Some(groups) = &self.predicted {
            if let Some(&(ino, count)) = groups.inodes.get(&path) {
                (inode, links) = ((ino, 1), count);
                match groups.link_of.get(&path) {
                    None => {
                        self.targets.insert(path.clone(), (size, mtime));
                    }
                    Some(to) if matches!(kind, T::Link) && links_to(&entry, &self.root) == *to => {
                        if let Some(&(s, m)) = self.targets.get(to) {
                            (node_size, mtime, guessed_link) = (s, m, true);
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        let metadata = Metadata {
            mode: Some(go_mode(type_bits | meta.mode)),
            mtime,
            atime: mtime,
            ctime: mtime,
            uid: u32::try_from(meta.uid).ok(),
            gid: u32::try_from(meta.gid).ok(),
            user: meta.user.clone(),
            group: meta.group.clone(),
            inode: inode.0,
            device_id: inode.1,
            size: node_size,
            links,
            extended_attributes: Vec::new(),
        };
        let mut metadata = metadata;
        metadata.extended_attributes = xattrs(&entry.pax);
        let name = path.file_name().unwrap_or(OsStr::new("/")).to_os_string();
        let node = Node::new_node(&name, node_type, metadata);
        self.tracker.entries.fetch_add(1, Ordering::Relaxed);
        let open = if matches!(kind, T::Regular | T::Continuous) {
            self.tracker
                .content_bytes
                .fetch_add(size, Ordering::Relaxed);
            Some(
                Content::buffer(reader, size, &self.tracker)
                    .map_err(|e| format!("{}: buffering the content: {e}", entry.display_path()))?,
            )
        } else if guessed_link {
            Some(Content::LinkGuess(Arc::clone(&self.tracker)))
        } else if matches!(kind, T::Link) {
            Some(Content::empty())
        } else {
            None
        };
        Ok(Some(ReadSourceEntry { path, node, open }))
    }
}

/// The snapshot path a hard link's entry points at.
fn links_to(entry: &crate::archive::tar_stream::Entry, root: &Path) -> PathBuf {
    let target = entry
        .link
        .as_deref()
        .and_then(normalize)
        .unwrap_or_default();
    root.join(OsStr::from_bytes(&target))
}

/// The extended attributes among an entry's PAX records (`SCHILY.xattr.NAME`: the engine gives
/// `security.capability`), as restic nodes carry them. rustic_core 0.13 does not export the
/// attribute's type, only the field: it is built from its serde form (name, base64 value).
fn xattrs<T: serde::de::DeserializeOwned + Default>(pax: &[(String, Vec<u8>)]) -> T {
    use base64::Engine as _;
    let list: Vec<serde_json::Value> = pax
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix("SCHILY.xattr.")?;
            Some(serde_json::json!({
                "name": name,
                "value": base64::engine::general_purpose::STANDARD.encode(value),
            }))
        })
        .collect();
    if list.is_empty() {
        return T::default();
    }
    serde_json::from_value(serde_json::Value::Array(list)).unwrap_or_default()
}

/// Whether `node_type` is a directory (a helper on `NodeType`).
trait IsDir {
    fn is_dir(&self) -> bool;
}
impl IsDir for NodeType {
    fn is_dir(&self) -> bool {
        matches!(self, NodeType::Dir)
    }
}

/// `./a//b/` as `a/b`; `None` for a path with `..`.
pub fn normalize(path: &[u8]) -> Option<Vec<u8>> {
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

/// A file's content, read off the stream before the archiver asks for it.
pub enum Content {
    Memory(Cursor<Vec<u8>>, Option<(Arc<Tracker>, u64)>),
    Spilled(File, Arc<Tracker>),
    /// A link given its target's size and mtime from the parent's groups: rustic opens it only
    /// when the parent does not match (the target changed), which sends the save through the
    /// link pass.
    LinkGuess(Arc<Tracker>),
}

impl Content {
    fn empty() -> Content {
        Content::Memory(Cursor::new(Vec::new()), None)
    }

    /// Reads the current entry's `size` bytes: into memory while the budget allows, otherwise
    /// into an unlinked temp file.
    fn buffer(
        reader: &mut TarReader<DynRead>,
        size: u64,
        tracker: &Arc<Tracker>,
    ) -> io::Result<Content> {
        let mut data = reader.data();
        if size <= MEMORY_FILE_MAX {
            let now = tracker.in_memory.fetch_add(size, Ordering::AcqRel);
            if now + size <= MEMORY_BUDGET {
                let mut buf = Vec::with_capacity(size as usize);
                let got = data.read_to_end(&mut buf);
                let content = Content::Memory(Cursor::new(buf), Some((Arc::clone(tracker), size)));
                got?;
                return Ok(content);
            }
            tracker.in_memory.fetch_sub(size, Ordering::AcqRel);
        }
        let mut file = tempfile::tempfile()?;
        let copied = io::copy(&mut data, &mut file)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended inside the file",
            ));
        }
        file.flush()?;
        file.rewind()?;
        tracker.spilled.fetch_add(1, Ordering::Relaxed);
        Ok(Content::Spilled(file, Arc::clone(tracker)))
    }
}

impl Drop for Content {
    fn drop(&mut self) {
        if let Content::Memory(_, Some((tracker, size))) = self {
            tracker.in_memory.fetch_sub(*size, Ordering::AcqRel);
        }
    }
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Content::Memory(c, _) => c.read(buf),
            Content::Spilled(f, tracker) => f.read(buf).inspect_err(|e| {
                // rustic only logs a reader's errors (and leaves the file out).
                tracker.fail(format!("reading a buffered file back: {e}"));
            }),
            Content::LinkGuess(tracker) => {
                tracker.link_missed.store(true, Ordering::Relaxed);
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rustic_core::repofile::Metadata;

    #[test]
    fn xattr_records_become_node_attributes() {
        let pax = vec![
            ("mtime".to_string(), b"1.5".to_vec()),
            (
                "SCHILY.xattr.security.capability".to_string(),
                b"\x01\x00\x00\x02\xff".to_vec(),
            ),
        ];
        let mut meta = Metadata {
            extended_attributes: super::xattrs(&pax),
            ..Metadata::default()
        };
        assert_eq!(meta.extended_attributes.len(), 1);
        assert_eq!(meta.extended_attributes[0].name, "security.capability");
        assert_eq!(
            meta.extended_attributes[0].value.as_deref(),
            Some(&b"\x01\x00\x00\x02\xff"[..])
        );
        meta.extended_attributes = super::xattrs(&pax[..1]);
        assert!(meta.extended_attributes.is_empty());
    }
}
