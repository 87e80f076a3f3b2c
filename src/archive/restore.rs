//! Turning an archive into the tar stream the engine extracts: entries renamed from `./x` (or
//! `x`) to `<mount>/x`, where `mount` is the directory (relative to `/`) at which the caller's
//! container mounts the volume, so that a PUT at `/` of that container lands them in the volume,
//! the volume root's own entry included (a PUT at the mount path would skip it and lose the root's
//! owner and mode), and relative symlinks that climb out of the volume stay legal for the engine.
//! Entries that would leave the volume are dropped here.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::tar_stream::{Entry, Item, TarReader, Verdict};
use super::ArchiveError;

/// Skipped entries whose names a report keeps (the rest are counted).
pub const MAX_SKIPPED_NAMES: usize = 100;
/// Bytes of symlink and skipped-entry bookkeeping a rewrite keeps (about a million symlinks):
/// an archive that needs more is refused rather than let memory grow with its input.
pub const MAX_TRACKED_BYTES: usize = 64 << 20;
/// Longest name kept in a report.
const MAX_REPORTED_NAME: usize = 512;

/// What a rewrite may leave out, at the user's request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteOptions {
    /// Skip character and block devices (`--no-devices`).
    pub no_devices: bool,
    /// Skip setuid and setgid files (`--no-setuid`).
    pub no_setuid: bool,
}

/// Why an entry was not passed on to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    LeavesVolume,
    ThroughSymlink,
    RootNotDirectory,
    LinkLeavesVolume,
    LinkTargetNotInVolume,
    LinkTargetSkipped,
    /// `--path`: a hard link to a file outside the subtree (that path in the volume may hold
    /// other content).
    LinkOutsidePath,
    Device,
    Setuid,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::LeavesVolume => "its path leaves the volume",
            SkipReason::ThroughSymlink => "its path goes through a symlink",
            SkipReason::RootNotDirectory => "the volume root can only be a directory",
            SkipReason::LinkLeavesVolume => "its hard-link target leaves the volume",
            SkipReason::LinkTargetNotInVolume => "its hard-link target is not a file in the volume",
            SkipReason::LinkTargetSkipped => "its hard-link target was skipped",
            SkipReason::LinkOutsidePath => "its hard-link target is outside --path",
            SkipReason::Device => "a device node (--no-devices)",
            SkipReason::Setuid => "a setuid/setgid file (--no-setuid)",
        }
    }
}

/// One skipped entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's path as the archive gives it (cut at 512 bytes).
    pub path: String,
    pub reason: SkipReason,
}

/// What a rewrite did.
#[derive(Debug)]
pub struct RewriteReport {
    pub verdict: Verdict,
    pub options: RewriteOptions,
    /// Entries passed on to the engine (the volume root included).
    pub emitted: u64,
    /// The first and last of them, as paths inside the volume (`a/b`; the root is empty).
    pub first_emitted: Option<String>,
    pub last_emitted: Option<String>,
    /// Entries left out, counted.
    pub skipped: u64,
    /// The first `MAX_SKIPPED_NAMES` of them, with the reason.
    pub skipped_names: Vec<Skipped>,
    /// All of them by reason.
    skipped_reasons: HashMap<SkipReason, u64>,
    /// Character and block devices in the archive (skipped ones included).
    pub devices: u64,
    /// Setuid or setgid regular files in the archive (skipped ones included).
    pub setuid: u64,
    /// `GNU.sparse.*` PAX records dropped (the engine would rename or reshape entries by them).
    pub sparse_records: u64,
}

impl RewriteReport {
    /// The report of a rewrite that has not read anything yet.
    pub fn new(options: RewriteOptions) -> Self {
        RewriteReport {
            verdict: Verdict::NoManifest(super::Totals {
                entries: 0,
                content_bytes: 0,
                tar_bytes: 0,
                hash: blake3::hash(b""),
                segments: Vec::new(),
            }),
            options,
            emitted: 0,
            first_emitted: None,
            last_emitted: None,
            skipped: 0,
            skipped_names: Vec::new(),
            skipped_reasons: HashMap::new(),
            devices: 0,
            setuid: 0,
            sparse_records: 0,
        }
    }

    fn skip(&mut self, path: &[u8], reason: SkipReason) {
        self.skipped += 1;
        *self.skipped_reasons.entry(reason).or_default() += 1;
        if self.skipped_names.len() < MAX_SKIPPED_NAMES {
            let cut = &path[..path.len().min(MAX_REPORTED_NAME)];
            self.skipped_names.push(Skipped {
                path: String::from_utf8_lossy(cut).into_owned(),
                reason,
            });
        }
    }

    fn emit(&mut self, rel: &[u8]) {
        let name = String::from_utf8_lossy(rel).into_owned();
        if self.first_emitted.is_none() {
            self.first_emitted = Some(name.clone());
        }
        self.last_emitted = Some(name);
        self.emitted += 1;
    }

    /// Skipped entries by reason, most frequent first (for a one-line summary).
    pub fn skipped_by_reason(&self) -> Vec<(SkipReason, u64)> {
        let mut v: Vec<_> = self.skipped_reasons.iter().map(|(r, n)| (*r, *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
        v
    }
}

/// Reads every entry from `reader` and writes the stream renamed under `mount` (a directory
/// relative to `/`, e.g. `volume`) to `dst`. Each entry's header is built anew from what the
/// archive says (no field of the original header is carried over unread), `GNU.sparse.*` PAX
/// records are dropped, and a hard link to a symlink becomes that symlink. The end-of-archive
/// marker is written only after the archive has been checked against its manifest, so a
/// damaged archive never reaches the engine as a complete tar stream.
pub fn rewrite_for_upload<R: Read, W: Write>(
    reader: &mut TarReader<R>,
    dst: W,
    mount: &str,
    options: RewriteOptions,
) -> Result<(W, RewriteReport), ArchiveError> {
    rewrite(reader, dst, mount, options, None)
}

/// As [`rewrite_for_upload`], but only the entries at or under `subtree` (from [`subtree`]) are
/// written (`restore --path`); the rest is read, planned (so that symlinks outside the subtree
/// are known) and checked, but left out. Their parent directories are not written, so the
/// volume's own stay as they are. A hard link to a file outside the subtree is skipped: that path
/// in the volume may hold other content.
pub fn rewrite_subtree_for_upload<R: Read, W: Write>(
    reader: &mut TarReader<R>,
    dst: W,
    mount: &str,
    options: RewriteOptions,
    subtree: &[u8],
) -> Result<(W, RewriteReport), ArchiveError> {
    rewrite(reader, dst, mount, options, Some(subtree))
}

fn rewrite<R: Read, W: Write>(
    reader: &mut TarReader<R>,
    dst: W,
    mount: &str,
    options: RewriteOptions,
    subtree: Option<&[u8]>,
) -> Result<(W, RewriteReport), ArchiveError> {
    let mut out = tar::Builder::new(dst);
    let mut seen = Tracked::default();
    let mut report = RewriteReport::new(options);
    while let Item::Entry(entry) = reader.next_item()? {
        let inside =
            subtree.is_none_or(|s| normalize(&entry.path).is_some_and(|rel| under(&rel, s)));
        let counted = (report.devices, report.setuid);
        let planned = plan(&entry, &mut seen, mount, &mut report)?;
        if !inside {
            // Planned only to know its symlinks: neither written nor counted.
            (report.devices, report.setuid) = counted;
            continue;
        }
        let planned = match (planned, subtree) {
            (Ok(plan), Some(s))
                if plan.kind == tar::EntryType::Link
                    && !normalize(entry.link.as_deref().unwrap_or_default())
                        .is_some_and(|t| under(&t, s)) =>
            {
                Err(SkipReason::LinkOutsidePath)
            }
            (planned, _) => planned,
        };
        match planned {
            Ok(plan) => {
                write_entry(&mut out, reader, &entry, &plan, &mut report)?;
                report.emit(&plan.rel);
            }
            Err(why) => {
                report.skip(&entry.path, why);
                // What was at that path stays there for the engine: a symlink remains one.
                match normalize(&entry.path) {
                    Some(rel) if !matches!(seen.get(&rel), Some(Mark::Symlink(_))) => {
                        seen.set(&rel, Mark::Skipped)?
                    }
                    _ => {}
                }
            }
        }
    }
    reader.drain()?;
    report.verdict = reader.verify()?;
    out.finish().map_err(ArchiveError::Output)?;
    let dst = out.into_inner().map_err(ArchiveError::Output)?;
    Ok((dst, report))
}

/// What an earlier entry left at a path that later entries may refer to.
enum Mark {
    Symlink(Box<[u8]>),
    Skipped,
}

/// Symlinks and skipped entries by path, within `MAX_TRACKED_BYTES`. Paths are kept as 128-bit
/// blake3 digests, so names of any length cost the same.
#[derive(Default)]
struct Tracked {
    marks: HashMap<u128, Mark>,
    bytes: usize,
    symlinks: usize,
}

/// Bytes one mark costs beyond its symlink target (digest, map slot, box).
const MARK_COST: usize = 64;

impl Tracked {
    fn key(rel: &[u8]) -> u128 {
        let digest = blake3::hash(rel);
        u128::from_le_bytes(digest.as_bytes()[..16].try_into().expect("16 bytes"))
    }

    fn cost(mark: &Mark) -> usize {
        MARK_COST
            + match mark {
                Mark::Symlink(t) => t.len(),
                Mark::Skipped => 0,
            }
    }

    fn set(&mut self, rel: &[u8], mark: Mark) -> Result<(), ArchiveError> {
        self.bytes += Self::cost(&mark);
        self.symlinks += usize::from(matches!(mark, Mark::Symlink(_)));
        if let Some(old) = self.marks.insert(Self::key(rel), mark) {
            self.forget(&old);
        }
        if self.bytes > MAX_TRACKED_BYTES {
            return Err(ArchiveError::Unsupported(format!(
                "the archive holds more symlinks and skipped entries than a restore keeps track \
                 of ({} MiB)",
                MAX_TRACKED_BYTES >> 20
            )));
        }
        Ok(())
    }

    fn clear(&mut self, rel: &[u8]) {
        if self.marks.is_empty() {
            return;
        }
        if let Some(old) = self.marks.remove(&Self::key(rel)) {
            self.forget(&old);
        }
    }

    fn forget(&mut self, old: &Mark) {
        self.bytes -= Self::cost(old);
        self.symlinks -= usize::from(matches!(old, Mark::Symlink(_)));
    }

    fn get(&self, rel: &[u8]) -> Option<&Mark> {
        if self.marks.is_empty() {
            return None;
        }
        self.marks.get(&Self::key(rel))
    }

    /// Whether any ancestor of `rel` was created as a symlink earlier in the archive.
    fn through_symlink(&self, rel: &[u8]) -> bool {
        if self.symlinks == 0 {
            return false;
        }
        rel.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .any(|(i, _)| matches!(self.get(&rel[..i]), Some(Mark::Symlink(_))))
    }
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

/// Where an entry goes and as what, decided before any of it is written.
struct Plan {
    /// The path inside the volume.
    rel: Vec<u8>,
    dest: PathBuf,
    kind: tar::EntryType,
    /// Hard-link target (renamed like the paths) or symlink target (as it was).
    link: Option<PathBuf>,
}

/// The plan for one entry, or why it is skipped; an error only when the bookkeeping is full.
fn plan(
    entry: &Entry,
    seen: &mut Tracked,
    mount: &str,
    report: &mut RewriteReport,
) -> Result<Result<Plan, SkipReason>, ArchiveError> {
    use tar::EntryType as T;
    let mut kind = entry.header.entry_type();
    let Some(rel) = normalize(&entry.path) else {
        return Ok(Err(SkipReason::LeavesVolume));
    };
    if seen.through_symlink(&rel) {
        return Ok(Err(SkipReason::ThroughSymlink));
    }
    if rel.is_empty() && kind != T::Directory {
        return Ok(Err(SkipReason::RootNotDirectory));
    }
    if matches!(kind, T::Char | T::Block) {
        report.devices += 1;
        if report.options.no_devices {
            return Ok(Err(SkipReason::Device));
        }
    }
    if is_file(kind) && entry.header.mode().unwrap_or(0) & 0o6000 != 0 {
        report.setuid += 1;
        if report.options.no_setuid {
            return Ok(Err(SkipReason::Setuid));
        }
    }
    let link = match kind {
        T::Link => {
            let target = entry.link.as_deref().unwrap_or_default();
            let Some(target) = normalize(target) else {
                return Ok(Err(SkipReason::LinkLeavesVolume));
            };
            if target.is_empty() || seen.through_symlink(&target) {
                return Ok(Err(SkipReason::LinkTargetNotInVolume));
            }
            match seen.get(&target) {
                Some(Mark::Skipped) => return Ok(Err(SkipReason::LinkTargetSkipped)),
                // The engine would hard-link the symlink itself, which then acts as one.
                Some(Mark::Symlink(to)) => {
                    kind = T::Symlink;
                    Some(PathBuf::from(OsStr::from_bytes(to)))
                }
                None => Some(mounted(mount, &target)),
            }
        }
        T::Symlink => Some(PathBuf::from(OsStr::from_bytes(
            entry.link.as_deref().unwrap_or_default(),
        ))),
        _ => None,
    };
    if kind == T::Symlink {
        let to = link.as_deref().map(Path::as_os_str).unwrap_or_default();
        seen.set(&rel, Mark::Symlink(to.as_bytes().into()))?;
    } else {
        seen.clear(&rel);
    }
    Ok(Ok(Plan {
        dest: mounted(mount, &rel),
        rel,
        kind,
        link,
    }))
}

/// The size of a ustar header's link name field.
const LINK_FIELD: usize = 100;

/// Regular files, as tar spells them.
fn is_file(kind: tar::EntryType) -> bool {
    use tar::EntryType as T;
    matches!(kind, T::Regular | T::Continuous) || kind.as_byte() == 0
}

fn write_entry<R: Read, W: Write>(
    out: &mut tar::Builder<W>,
    reader: &mut TarReader<R>,
    entry: &Entry,
    plan: &Plan,
    report: &mut RewriteReport,
) -> Result<(), ArchiveError> {
    use tar::EntryType as T;
    let mut records: Vec<(&str, &[u8])> = entry
        .pax
        .iter()
        .filter(|(k, _)| {
            let sparse = k.starts_with("GNU.sparse.");
            report.sparse_records += u64::from(sparse);
            !sparse
        })
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    // A symlink's target goes byte for byte: the tar crate's `append_link` rebuilds it from path
    // components (`a//b` becomes `a/b`, `/` becomes `//`). One that does not fit the header goes
    // in a PAX `linkpath` record, in the one extended header the entry gets (readers take only
    // the last of several).
    let symlink_to = match (plan.kind, &plan.link) {
        (T::Symlink, Some(target)) => Some(target.as_os_str().as_bytes()),
        _ => None,
    };
    if let Some(target) = symlink_to.filter(|t| t.len() > LINK_FIELD) {
        records.retain(|(k, _)| *k != "linkpath");
        records.push(("linkpath", target));
    }
    if !records.is_empty() {
        out.append_pax_extensions(records)
            .map_err(ArchiveError::Output)?;
    }
    let mut header = fresh_header(entry, plan.kind)?;
    let written = match (plan.kind, &plan.link, symlink_to) {
        (T::Symlink, _, Some(target)) => {
            let short = if target.len() > LINK_FIELD {
                &[][..]
            } else {
                target
            };
            header.set_link_name_literal(short).and_then(|()| {
                header.set_size(0);
                out.append_data(&mut header, &plan.dest, std::io::empty())
            })
        }
        (T::Link, Some(target), _) => out.append_link(&mut header, &plan.dest, target),
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

/// A GNU header built from scratch with the entry's type, mode, owners, mtime, owner names and
/// device numbers: nothing else of the original (a ustar `prefix`, stray fields) reaches the
/// engine. The path and size are set by the caller.
fn fresh_header(entry: &Entry, kind: tar::EntryType) -> Result<tar::Header, ArchiveError> {
    let src = &entry.header;
    let old = src.as_old();
    // An empty numeric field reads as 0, as the engine's own tar reader (Go) takes it; so does
    // one that a PAX record of the same name overrides (a negative mtime, say).
    let number = |r: std::io::Result<u64>, raw: &[u8], what: &str| {
        let overridden = entry.pax.iter().any(|(k, _)| k == what);
        if r.is_err() && (overridden || raw.iter().all(|&b| b == 0 || b == b' ')) {
            return Ok(0);
        }
        r.map_err(|e| {
            ArchiveError::Corrupt(format!("bad {what} in `{}`: {e}", entry.display_path()))
        })
    };
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(number(src.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777);
    h.set_uid(number(src.uid(), &old.uid, "uid")?);
    h.set_gid(number(src.gid(), &old.gid, "gid")?);
    h.set_mtime(number(src.mtime(), &old.mtime, "mtime")?);
    h.set_size(0);
    if let (Some(ustar), Some(gnu)) = (src_names(src), h.as_gnu_mut()) {
        gnu.uname = ustar.0;
        gnu.gname = ustar.1;
    }
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        let major = src.device_major().ok().flatten().unwrap_or(0);
        let minor = src.device_minor().ok().flatten().unwrap_or(0);
        h.set_device_major(major).map_err(ArchiveError::Output)?;
        h.set_device_minor(minor).map_err(ArchiveError::Output)?;
    }
    Ok(h)
}

/// The owner and group name fields of a ustar or GNU header (same place in both).
fn src_names(h: &tar::Header) -> Option<([u8; 32], [u8; 32])> {
    if let Some(u) = h.as_ustar() {
        return Some((u.uname, u.gname));
    }
    h.as_gnu().map(|g| (g.uname, g.gname))
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
        let (out, report) = rewrite_for_upload(
            &mut reader,
            Recorder::default(),
            "volume",
            Default::default(),
        )
        .unwrap();
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
        let mut seen = Tracked::default();
        seen.set(b"a/l", Mark::Symlink(b"/etc".as_slice().into()))
            .unwrap();
        seen.set(b"a/s", Mark::Skipped).unwrap();
        assert!(seen.through_symlink(b"a/l/x"));
        assert!(seen.through_symlink(b"a/l/x/y"));
        assert!(!seen.through_symlink(b"a/l"));
        assert!(!seen.through_symlink(b"a/lx/y"));
        assert!(!seen.through_symlink(b"a/s/x"));
        seen.clear(b"a/l");
        assert!(!seen.through_symlink(b"a/l/x"));
        assert_eq!((seen.symlinks, seen.bytes), (0, MARK_COST));
    }

    /// Rewrites `tar` under `volume` and lists what came out: (path, type, link, mode, PAX keys).
    fn rewrite(tar: Vec<u8>, options: RewriteOptions) -> (Vec<Out>, RewriteReport) {
        use std::sync::Arc;
        let mut reader = TarReader::new(std::io::Cursor::new(tar), Arc::default());
        let (bytes, report) =
            rewrite_for_upload(&mut reader, Vec::new(), "volume", options).unwrap();
        let mut out = Vec::new();
        let mut archive = tar::Archive::new(std::io::Cursor::new(bytes));
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let pax: Vec<String> = e
                .pax_extensions()
                .unwrap()
                .into_iter()
                .flatten()
                .map(|p| p.unwrap().key().unwrap().to_string())
                .collect();
            let h = e.header();
            let prefix_empty = h
                .as_ustar()
                .is_none_or(|u| u.prefix.iter().all(|&b| b == 0));
            out.push(Out {
                path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                kind: h.entry_type(),
                link: e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned()),
                mode: h.mode().unwrap(),
                pax,
                gnu: h.as_gnu().is_some() && prefix_empty,
            });
        }
        (out, report)
    }

    #[derive(Debug)]
    struct Out {
        path: String,
        kind: tar::EntryType,
        link: Option<String>,
        mode: u32,
        pax: Vec<String>,
        gnu: bool,
    }

    fn entry(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, mode: u32) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(0);
        h.set_path(path).unwrap();
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, to: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        b.append_link(&mut h, path, to).unwrap();
    }

    #[test]
    fn a_hard_link_to_a_symlink_becomes_that_symlink() {
        use tar::EntryType as T;
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "./", T::Directory, 0o755);
        link(&mut b, "./sym", T::Symlink, "/etc");
        link(&mut b, "./hard", T::Link, "./sym");
        entry(&mut b, "./hard/passwd", T::Regular, 0o644);
        entry(&mut b, "./sym/shadow", T::Regular, 0o644);
        let (out, report) = rewrite(b.into_inner().unwrap(), Default::default());
        let hard = out.iter().find(|o| o.path == "volume/hard").unwrap();
        assert_eq!(
            (hard.kind, hard.link.as_deref()),
            (T::Symlink, Some("/etc"))
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(report.skipped, 2);
        assert!(report
            .skipped_names
            .iter()
            .all(|s| s.reason == SkipReason::ThroughSymlink));
        assert_eq!(report.emitted, 3);
        assert_eq!(report.first_emitted.as_deref(), Some(""));
        assert_eq!(report.last_emitted.as_deref(), Some("hard"));
    }

    /// Symlink targets are sent byte for byte, however they are spelled (the tar crate's
    /// `append_link` would rewrite `a//b` as `a/b` and `/` as `//`), long ones through PAX.
    #[test]
    fn symlink_targets_pass_through_byte_for_byte() {
        use tar::EntryType as T;
        let long = format!("{}//end/", "x/".repeat(80));
        let targets = ["/", "a//b", "./x/./y", "dir/", "..//..", long.as_str()];
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "./", T::Directory, 0o755);
        for (i, to) in targets.iter().enumerate() {
            if to.len() > 100 {
                b.append_pax_extensions([("linkpath", to.as_bytes())])
                    .unwrap();
            }
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(T::Symlink);
            h.set_size(0);
            h.set_path(format!("./s{i}")).unwrap();
            if to.len() <= 100 {
                h.set_link_name_literal(to.as_bytes()).unwrap();
            }
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        }
        let (out, report) = rewrite(b.into_inner().unwrap(), Default::default());
        assert_eq!(report.skipped, 0, "{:?}", report.skipped_names);
        for (i, to) in targets.iter().enumerate() {
            let got = out
                .iter()
                .find(|o| o.path == format!("volume/s{i}"))
                .unwrap();
            assert_eq!((got.kind, got.link.as_deref()), (T::Symlink, Some(*to)));
        }
    }

    #[test]
    fn gnu_sparse_records_are_dropped_and_headers_rebuilt() {
        use tar::EntryType as T;
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("GNU.sparse.name", b"../../etc/cron.d/x".as_slice()),
            ("GNU.sparse.major", b"1"),
            ("SCHILY.xattr.security.capability", b"\x01"),
        ])
        .unwrap();
        entry(&mut b, "./file", T::Regular, 0o644);
        // A ustar header whose prefix field says one thing and whose PAX path another.
        b.append_pax_extensions([("path", b"./named".as_slice())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(T::Regular);
        h.set_size(0);
        h.set_mode(0o600);
        h.as_ustar_mut().unwrap().prefix[..6].copy_from_slice(b"../etc");
        h.as_ustar_mut().unwrap().name[..5].copy_from_slice(b"other");
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let (out, report) = rewrite(b.into_inner().unwrap(), Default::default());
        assert_eq!(report.sparse_records, 2);
        assert_eq!(out[0].path, "volume/file");
        assert_eq!(out[0].pax, vec!["SCHILY.xattr.security.capability"]);
        assert_eq!(out[1].path, "volume/named");
        assert_eq!(out[1].mode, 0o600);
        assert!(out.iter().all(|o| o.gnu), "{out:?}");
    }

    #[test]
    fn devices_and_setuid_files_are_counted_and_skipped_on_request() {
        use tar::EntryType as T;
        let tar = || {
            let mut b = tar::Builder::new(Vec::new());
            entry(&mut b, "./", T::Directory, 0o755);
            entry(&mut b, "./null", T::Char, 0o666);
            entry(&mut b, "./sda", T::Block, 0o660);
            entry(&mut b, "./suid", T::Regular, 0o4755);
            entry(&mut b, "./sgid", T::Regular, 0o2755);
            entry(&mut b, "./sgid-dir", T::Directory, 0o2775);
            link(&mut b, "./suid-link", T::Link, "./suid");
            b.into_inner().unwrap()
        };
        let (out, report) = rewrite(tar(), Default::default());
        assert_eq!((report.devices, report.setuid, report.skipped), (2, 2, 0));
        assert_eq!(out.len(), 7);
        let options = RewriteOptions {
            no_devices: true,
            no_setuid: true,
        };
        let (out, report) = rewrite(tar(), options);
        let names: Vec<&str> = out.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(names, vec!["volume/", "volume/sgid-dir"]);
        assert_eq!((report.devices, report.setuid, report.skipped), (2, 2, 5));
        assert_eq!(
            report.skipped_by_reason(),
            vec![
                (SkipReason::Device, 2),
                (SkipReason::Setuid, 2),
                (SkipReason::LinkTargetSkipped, 1)
            ]
        );
    }

    #[test]
    fn skipped_names_are_counted_beyond_the_kept_ones() {
        let mut report = RewriteReport::new(Default::default());
        for i in 0..(MAX_SKIPPED_NAMES + 50) {
            report.skip(&vec![b'x'; 10_000 + i], SkipReason::LeavesVolume);
        }
        assert_eq!(report.skipped, MAX_SKIPPED_NAMES as u64 + 50);
        assert_eq!(report.skipped_names.len(), MAX_SKIPPED_NAMES);
        assert!(report
            .skipped_names
            .iter()
            .all(|s| s.path.len() == MAX_REPORTED_NAME));
    }
}
