//! Writing one volume's tar stream into a repository as one snapshot: the parent (the newest
//! snapshot of the same volume and engine), the archiver over `source::TarSource`, the checks
//! rustic does not make (its snapshot write is held back by `gate`, and this module writes the
//! snapshot only once the stream is known whole), the hard-link fix-up, and the manifest in
//! `description`.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use anyhow::Result;
use rustic_core::repofile::{Node, SnapshotFile, SnapshotId};
use rustic_core::{
    BackupOptions, IndexedFullStatus, IndexedIdsStatus, LsOptions, ParentOptions, ReadSource,
    ReadSourceEntry, ReadSourceOpen, Repository, RusticResult, StringList,
};

use super::source::{LinkGroups, TarSource, Tracker};
use super::{rustic_error, tagged, Repo, ResticTarget, SnapshotManifest};
use crate::archive::Counters;
use crate::error::UserError;
use crate::pipe::DynRead;

/// What a snapshot records about the volume and where it came from.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The volume's name is `manifest.volume.name`; counts are filled in at the end.
    pub manifest: SnapshotManifest,
    /// `hostname(engine)`, `tags(volume, engine)`.
    pub hostname: String,
    pub tags: Vec<String>,
    /// No parent: every file is read and chunked again.
    pub rehash: bool,
}

/// What a save wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub id: String,
    pub parent: Option<String>,
    pub entries: u64,
    pub content_bytes: u64,
    /// Bytes added to the repository (packed, after compression and deduplication).
    pub added_bytes: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    /// Files that went through a temp file (over the memory budget).
    pub spilled: u64,
    /// How the hard links were set.
    pub links: LinkPass,
}

/// How a save set the hard links' nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPass {
    /// The volume has none.
    None,
    /// In the one pass, numbered from the parent's manifest, which held.
    FromParent,
    /// A second pass over the first one's tree.
    Second,
}

impl std::fmt::Display for LinkPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkPass::None => "none",
            LinkPass::FromParent => "numbered from the parent's",
            LinkPass::Second => "set in a second pass",
        })
    }
}

/// Hard links recorded in a snapshot's manifest at most (about 100 bytes each), so that the next
/// save can number them in its one pass; a volume with more always takes the link pass.
pub const MAX_RECORDED_LINKS: usize = 10_000;

/// What a save needs before the stream: the parent snapshot, the index's ids, and what killed
/// runs left of their link passes for this volume.
pub struct Prepared {
    parent: Option<SnapshotFile>,
    indexed: Repository<IndexedIdsStatus>,
    partials: Vec<SnapshotFile>,
}

/// Finds the parent and reads the index; blocking. Done while the engine prepares the stream,
/// so that the stream does not wait for it.
pub fn prepare(repo: &Repo, target: &ResticTarget, spec: &Spec) -> Result<Prepared> {
    let all = repo
        .get_all_snapshots()
        .map_err(|e| rustic_error(target, "cannot list the snapshots", &e))?;
    let want = super::parse_tags(&spec.tags);
    let path = super::snapshot_path(&spec.manifest.volume.name);
    let partials = all
        .iter()
        .filter(|s| {
            s.tags.iter().eq([PARTIAL_TAG].iter().copied())
                && s.hostname == spec.hostname
                && s.paths.iter().eq([path.to_string_lossy().as_ref()])
        })
        .cloned()
        .collect();
    // The newest of the tool's snapshots of the same volume and engine.
    let parent = (!spec.rehash)
        .then(|| {
            all.into_iter()
                .filter(|s| want.is_some() && tagged(s) == want)
                .max_by(|a, b| a.time.cmp(&b.time))
        })
        .flatten();
    let indexed = repo.indexed_ids()?;
    Ok(Prepared {
        parent,
        indexed,
        partials,
    })
}

/// Writes the tar `stream` of one volume into `repo` as one snapshot; blocking. On any error
/// (the stream's, rustic's, `cancel`) no snapshot is left behind.
pub fn save_stream(
    repo: &Repo,
    target: &ResticTarget,
    spec: &Spec,
    prepared: Prepared,
    stream: DynRead,
    counters: Arc<Counters>,
    cancel: Arc<AtomicBool>,
) -> Result<Written> {
    let volume = spec.manifest.volume.name.clone();
    let fail = |what: &str, e: &rustic_core::RusticError| rustic_error(target, what, e);
    let Prepared {
        parent,
        indexed,
        partials,
    } = prepared;
    let tracker = Arc::new(Tracker::default());
    let watch = watch_cancel(&cancel, &tracker);
    let root = super::snapshot_path(&volume);
    let mut source = TarSource::new(stream, root.clone(), Arc::clone(&tracker), counters);
    // The parent's hard links, numbered as the link pass numbered them: when this stream has the
    // same links and their targets did not change, this one pass makes the final snapshot.
    let predicted = parent.as_ref().and_then(recorded_links);
    if let Some(links) = &predicted {
        source = source.predicting(Arc::new(link_groups(links)));
    }
    let snap = template(spec, &spec.manifest);
    let opts = backup_options(parent.as_ref().map(|p| p.id));
    // Held: rustic's own snapshot write is not made; the one below is, once the stream is whole.
    let result =
        super::gate::held(|| indexed.archive(&opts, &source, snap, std::slice::from_ref(&root)));
    drop(watch);
    fail::fail_point!("restic-archived");
    let first = result.map_err(|e| fail("cannot write the snapshot", &e));
    // rustic only logs a source's errors: a cut stream must not become a snapshot.
    let problem = tracker.error().or_else(|| {
        (!tracker.complete.load(Ordering::Relaxed))
            .then(|| "the volume's stream ended early".to_string())
    });
    let first = match (first, problem) {
        (Ok(snap), None) => snap,
        (Ok(_), Some(problem)) => return Err(stream_error(&volume, &problem, &cancel)),
        (Err(e), problem) => {
            return Err(match problem {
                Some(p) => stream_error(&volume, &p, &cancel),
                None => e,
            })
        }
    };
    let mut manifest = spec.manifest.clone();
    manifest.entries = tracker.entries.load(Ordering::Relaxed);
    manifest.content_bytes = tracker.content_bytes.load(Ordering::Relaxed);
    let links = std::mem::take(&mut *tracker.hard_links.lock().unwrap_or_else(|p| p.into_inner()));
    manifest.hard_links = record_links(&links);
    let predicted_held = predicted.as_ref().is_some_and(|p| *p == links)
        && !tracker.link_missed.load(Ordering::Relaxed);
    let how = if links.is_empty() && predicted.is_none() {
        LinkPass::None
    } else if predicted_held {
        LinkPass::FromParent
    } else {
        LinkPass::Second
    };
    // The snapshot as written: the archiver's, with the counts in its manifest and its parent.
    let mut whole = first.clone();
    whole.description = Some(serde_json::to_string(&manifest)?);
    whole.parent = parent.as_ref().map(|p| p.id);
    if how == LinkPass::Second {
        // Only the link pass's parent: its links may be numbered from the parent's, which no
        // longer hold, so nothing may take it for a backup (a run killed during the link pass
        // leaves it; the next save of the volume removes it).
        whole.tags = StringList::default();
        whole.tags.add(PARTIAL_TAG.to_string());
    }
    fail::fail_point!("restic-before-snapshot");
    let whole = save_one(repo, whole).map_err(|e| fail("cannot write the snapshot", &e))?;
    // Links other than the parent's (or whose targets changed): one more pass over that
    // snapshot's tree (as its parent) links them; its snapshot is the backup.
    let last = if how != LinkPass::Second {
        whole
    } else {
        let guessed: HashSet<PathBuf> = predicted
            .iter()
            .flatten()
            .flat_map(|(l, t)| [l.clone(), t.clone()])
            .collect();
        fail::fail_point!("restic-link-pass");
        match link_pass(repo, spec, &manifest, &whole, &links, &guessed, &cancel) {
            Ok(mut snap) => {
                snap.parent = parent.as_ref().map(|p| p.id);
                snap.parents = parent.iter().map(|p| p.id).collect();
                let snap = save_one(repo, snap).map_err(|e| fail("cannot write the snapshot", &e));
                delete(repo, &whole, false);
                snap?
            }
            Err(e) => {
                delete(repo, &whole, false);
                return Err(e);
            }
        }
    };
    // What killed runs left of their link passes for this volume: a backup of it is there now.
    for partial in &partials {
        delete(repo, partial, true);
    }
    let summary = first.summary.clone().unwrap_or_default();
    Ok(Written {
        id: last.id.to_string(),
        parent: parent.map(|p| p.id.to_string()),
        entries: manifest.entries,
        content_bytes: manifest.content_bytes,
        added_bytes: summary.data_added_packed,
        files_new: summary.files_new,
        files_changed: summary.files_changed,
        files_unmodified: summary.files_unmodified,
        spilled: tracker.spilled.load(Ordering::Relaxed),
        links: how,
    })
}

/// The only tag of a snapshot written as the link pass's parent, never a backup.
pub const PARTIAL_TAG: &str = "docker-volume-backup-partial";

/// The hard links `snap`'s manifest recorded, as snapshot paths.
fn recorded_links(snap: &SnapshotFile) -> Option<Vec<(PathBuf, PathBuf)>> {
    let manifest = SnapshotManifest::from_description(snap)?;
    let links = manifest.hard_links;
    (!links.is_empty() && links.len() <= MAX_RECORDED_LINKS).then(|| {
        links
            .into_iter()
            .map(|(l, t)| (PathBuf::from(l), PathBuf::from(t)))
            .collect()
    })
}

/// `links` for the manifest: none when there are too many or one is not UTF-8.
fn record_links(links: &[(PathBuf, PathBuf)]) -> Vec<(String, String)> {
    if links.len() > MAX_RECORDED_LINKS {
        return Vec::new();
    }
    let text = |p: &PathBuf| p.to_str().map(str::to_string);
    links
        .iter()
        .map(|(l, t)| Some((text(l)?, text(t)?)))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// Groups every link with its target: one inode number per group (from 1, in stream order),
/// the group's size as link count.
fn link_groups(links: &[(PathBuf, PathBuf)]) -> LinkGroups {
    let mut groups: HashMap<PathBuf, (u64, u64)> = Default::default();
    let mut link_of: HashMap<PathBuf, PathBuf> = Default::default();
    let mut next = 1u64;
    for (link, to) in links {
        let to = link_of.get(to).cloned().unwrap_or_else(|| to.clone());
        let group = groups.entry(to.clone()).or_insert_with(|| {
            next += 1;
            (next - 1, 1)
        });
        group.1 += 1;
        let g = *group;
        groups.insert(link.clone(), g);
        link_of.insert(link.clone(), to);
    }
    let counts: HashMap<u64, u64> = groups
        .iter()
        .filter(|(p, _)| !link_of.contains_key(*p))
        .map(|(_, (ino, n))| (*ino, *n))
        .collect();
    LinkGroups {
        inodes: groups
            .into_iter()
            .map(|(p, (ino, _))| (p, (ino, counts.get(&ino).copied().unwrap_or(2))))
            .collect(),
        link_of,
    }
}

fn template(spec: &Spec, manifest: &SnapshotManifest) -> SnapshotFile {
    let mut tags = StringList::default();
    for t in &spec.tags {
        tags.add(t.clone());
    }
    SnapshotFile {
        hostname: spec.hostname.clone(),
        tags,
        program_version: super::program_version(),
        description: serde_json::to_string(manifest).ok(),
        username: std::env::var("USER").unwrap_or_default(),
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        uid: unsafe { libc::getuid() },
        gid: unsafe { libc::getgid() },
        ..SnapshotFile::default()
    }
}

fn backup_options(parent: Option<SnapshotId>) -> BackupOptions {
    // tar carries no ctime and no inode: size and mtime decide whether a file changed.
    let parent_opts = ParentOptions::default()
        .ignore_ctime(true)
        .ignore_inode(true);
    let parent_opts = match parent {
        Some(id) => parent_opts.parents(vec![id.to_string()]),
        // Without a parent of its own, never rustic's guess (any snapshot with this host/path).
        None => parent_opts.force(true),
    };
    BackupOptions::default()
        .no_scan(true)
        .parent_opts(parent_opts)
}

fn save_one(repo: &Repo, snap: SnapshotFile) -> RusticResult<SnapshotFile> {
    repo.save_snapshots(vec![snap.clone()])?;
    // save_snapshots does not say the new id: find it by its tree and time.
    let found = repo
        .get_all_snapshots()?
        .into_iter()
        .find(|s| s.tree == snap.tree && s.time == snap.time && s.description == snap.description);
    Ok(found.unwrap_or(snap))
}

/// Removes the link pass's partial snapshot `snap`; says so when it cannot (an append-only
/// server keeps it), unless `quiet`.
fn delete(repo: &Repo, snap: &SnapshotFile, quiet: bool) {
    if !snap.id.is_null() {
        if let Err(e) = repo.delete_snapshots(&[snap.id]) {
            if !quiet {
                crate::output::warn(&format!(
                    "the link pass's snapshot {} (tagged only {PARTIAL_TAG}, which no restore \
                     takes for a backup) could not be removed: {}",
                    &snap.id.to_string()[..8],
                    super::brief(&e)
                ));
            }
        }
    }
}

fn stream_error(volume: &str, problem: &str, cancel: &AtomicBool) -> anyhow::Error {
    if cancel.load(Ordering::Relaxed) {
        return UserError::interrupted().into();
    }
    anyhow::anyhow!("reading volume `{volume}`: {problem}")
}

/// Tells the source to stop when `cancel` is set (checked between entries).
fn watch_cancel(cancel: &Arc<AtomicBool>, tracker: &Arc<Tracker>) -> CancelWatch {
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (cancel, tracker) = (Arc::clone(cancel), Arc::clone(tracker));
    std::thread::spawn(move || loop {
        if cancel.load(Ordering::Relaxed) {
            tracker.cancelled.store(true, Ordering::Relaxed);
            tracker.fail("interrupted");
            return;
        }
        match stop_rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    });
    CancelWatch(stop_tx)
}

struct CancelWatch(#[allow(dead_code)] mpsc::Sender<()>);

// ---- Hard links: tar says "link to X" after X went by; restic wants both nodes to carry the
// same inode and a link count. A second pass over the first snapshot's tree (its parent, so
// nothing is chunked again) sets them and gives each link its target's content.

type Full = Repository<IndexedFullStatus>;

fn link_pass(
    repo: &Repo,
    spec: &Spec,
    manifest: &SnapshotManifest,
    first: &SnapshotFile,
    links: &[(PathBuf, PathBuf)],
    guessed: &HashSet<PathBuf>,
    cancel: &Arc<AtomicBool>,
) -> Result<SnapshotFile> {
    let fail = |what: &str, e: &rustic_core::RusticError| rustic_error(repo.target(), what, e);
    let full: Arc<Full> = Arc::new(repo.indexed()?);
    let LinkGroups { inodes, link_of } = link_groups(links);
    let root = full
        .node_from_snapshot_and_path(first, "")
        .map_err(|e| fail("cannot read the snapshot back", &e))?;
    // Target nodes, for the links' content (found in the same ls; targets come first).
    let tracker = Arc::new(Tracker::default());
    let source = TreeSource {
        full: Arc::clone(&full),
        root,
        inodes,
        link_of,
        guessed: guessed.clone(),
        tracker: Arc::clone(&tracker),
    };
    let watch = watch_cancel(cancel, &tracker);
    let indexed = repo.indexed_ids()?;
    let mut snap = template(spec, manifest);
    snap.time = first.time.clone();
    let opts = backup_options(Some(first.id));
    let path = super::snapshot_path(&manifest.volume.name);
    let result =
        super::gate::held(|| indexed.archive(&opts, &source, snap, std::slice::from_ref(&path)));
    drop(watch);
    let snap = result.map_err(|e| fail("cannot write the snapshot", &e))?;
    if let Some(problem) = tracker.error() {
        return Err(stream_error(&manifest.volume.name, &problem, cancel));
    }
    // Not written yet (held): the caller writes it.
    Ok(snap)
}

/// The first pass's tree, with the hard links' nodes set.
struct TreeSource {
    full: Arc<Full>,
    root: Node,
    /// Snapshot path -> (inode, link count) for every member of a hard-link group.
    inodes: HashMap<PathBuf, (u64, u64)>,
    /// Link -> its target.
    link_of: HashMap<PathBuf, PathBuf>,
    /// Paths the first pass numbered from the parent's links: those no longer linked are reset.
    guessed: HashSet<PathBuf>,
    tracker: Arc<Tracker>,
}

impl ReadSource for TreeSource {
    type Open = FromRepo;
    type Iter = mpsc::IntoIter<RusticResult<ReadSourceEntry<FromRepo>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        // The tree is listed on a thread of its own into a short queue: constant memory
        // whatever the volume's size.
        let (tx, rx) = mpsc::sync_channel(256);
        let (full, root, tracker) = (
            Arc::clone(&self.full),
            self.root.clone(),
            Arc::clone(&self.tracker),
        );
        let (inodes, link_of) = (self.inodes.clone(), self.link_of.clone());
        let guessed = self.guessed.clone();
        std::thread::spawn(move || list_linked(full, root, inodes, link_of, guessed, tracker, tx));
        rx.into_iter()
    }
}

/// Sends every node of the first pass's tree to `tx`, hard-link groups given one inode and
/// their link count, and each link its target's content.
fn list_linked(
    full: Arc<Full>,
    root: Node,
    inodes: HashMap<PathBuf, (u64, u64)>,
    link_of: HashMap<PathBuf, PathBuf>,
    guessed: HashSet<PathBuf>,
    tracker: Arc<Tracker>,
    tx: mpsc::SyncSender<RusticResult<ReadSourceEntry<FromRepo>>>,
) {
    // Hard-link targets only (a few), for their links' content.
    let mut targets: HashMap<PathBuf, Node> = HashMap::new();
    let listing = match full.ls(&root, &LsOptions::default().recursive(true)) {
        Ok(l) => l,
        Err(e) => return tracker.fail(e.display_log()),
    };
    for item in listing {
        let (path, mut node) = match item {
            Ok(x) => x,
            Err(e) => return tracker.fail(e.display_log()),
        };
        let path = PathBuf::from("/").join(path);
        let mut open = None;
        if let Some(&(ino, links)) = inodes.get(&path) {
            node.meta.inode = ino;
            node.meta.device_id = 1;
            node.meta.links = links;
            if let Some(to) = link_of.get(&path) {
                match targets.get(to) {
                    Some(t) => {
                        node.meta.size = t.meta.size;
                        node.meta.mtime = t.meta.mtime;
                        node.content = t.content.clone();
                        open = Some(FromRepo {
                            full: Arc::clone(&full),
                            node: t.clone(),
                            tracker: Arc::clone(&tracker),
                        });
                    }
                    None => {
                        return tracker.fail(format!(
                            "{}: a hard link to {}, which is not in the volume",
                            String::from_utf8_lossy(path.as_os_str().as_bytes()),
                            String::from_utf8_lossy(to.as_os_str().as_bytes())
                        ))
                    }
                }
            } else {
                targets.insert(path.clone(), node.clone());
            }
        } else if guessed.contains(&path) && !node.is_dir() {
            // Numbered from the parent's links in the first pass, no longer linked.
            node.meta.inode = 0;
            node.meta.device_id = 0;
            node.meta.links = 1;
        }
        if open.is_none() && node.is_file() {
            // Unchanged: the parent (the first pass) has it, so this is never opened.
            open = Some(FromRepo {
                full: Arc::clone(&full),
                node: node.clone(),
                tracker: Arc::clone(&tracker),
            });
        }
        if tx.send(Ok(ReadSourceEntry { path, node, open })).is_err() {
            return;
        }
    }
}

/// A file's content read back from the repository.
struct FromRepo {
    full: Arc<Full>,
    node: Node,
    tracker: Arc<Tracker>,
}

impl ReadSourceOpen for FromRepo {
    type Reader = RepoReader;

    fn open(self) -> RusticResult<RepoReader> {
        let file = self.full.open_file(&self.node)?;
        Ok(RepoReader {
            full: self.full,
            file,
            offset: 0,
            size: self.node.meta.size as usize,
            tracker: self.tracker,
        })
    }
}

struct RepoReader {
    full: Arc<Full>,
    file: rustic_core::vfs::OpenFile,
    offset: usize,
    size: usize,
    tracker: Arc<Tracker>,
}

impl Read for RepoReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.size - self.offset).min(1 << 20);
        if want == 0 {
            return Ok(0);
        }
        let bytes = self
            .full
            .read_file_at(&self.file, self.offset, want)
            .map_err(|e| {
                self.tracker.fail(e.display_log());
                io::Error::other(e.display_log())
            })?;
        let n = bytes.len().min(want);
        if n == 0 {
            self.tracker
                .fail("a linked file is shorter in the repository");
            return Ok(0);
        }
        buf[..n].copy_from_slice(&bytes[..n]);
        self.offset += n;
        Ok(n)
    }
}
