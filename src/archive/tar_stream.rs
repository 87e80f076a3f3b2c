//! A block-level tar reader that keeps the raw bytes: it lets a save pass the engine's stream
//! through untouched while counting and hashing it, and lets a restore rename entries and check
//! the manifest's checksum over exactly the bytes the save hashed.
//!
//! The tar crate parses each header block (numeric fields, base-256 sizes, ustar prefixes, PAX
//! records); this module only walks the blocks, which `tar::Archive` does not expose with their
//! raw bytes and offsets.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::checksum::{self, Segment, StreamHasher};
use super::manifest::{self, ManifestHead, ManifestPart, ManifestTrailer};
use super::{ArchiveError, Counters};

const BLOCK: usize = 512;
/// Metadata of one entry (its PAX extended headers and GNU long names and link names, summed):
/// the engine's own tar reader (Go's archive/tar) refuses any one of them over 1 MiB too.
pub const MAX_ENTRY_META: u64 = 1 << 20;
/// Metadata headers before one entry (a PAX header, a long name and a long link name make three).
pub const MAX_ENTRY_META_HEADERS: usize = 8;
/// One of our manifest headers (its segment checksums take 67 bytes per 64 MiB of data).
pub const MAX_MANIFEST: u64 = 16 << 20;
/// Other tools' PAX global headers, summed over the archive (they are skipped, not kept).
pub const MAX_FOREIGN_GLOBAL: u64 = 1 << 20;
/// Chunk size for passing entry data through.
const COPY_CHUNK: usize = 256 * 1024;

/// One entry of the archive, with its header blocks as they were read.
#[derive(Debug, Clone)]
pub struct Entry {
    /// All header blocks of this entry (PAX `x`, GNU `L`/`K`, then the main header), raw.
    pub raw: Vec<u8>,
    /// The main header.
    pub header: tar::Header,
    /// The entry's full path, from PAX `path`, a GNU long name, or the header.
    pub path: Vec<u8>,
    /// The link target of a symlink or hard link.
    pub link: Option<Vec<u8>>,
    /// Bytes of content that follow the header.
    pub size: u64,
    /// PAX records of this entry other than `path`, `linkpath` and `size` (xattrs, times, ids).
    pub pax: Vec<(String, Vec<u8>)>,
    /// Offset of the entry's first header block in the tar stream.
    pub offset: u64,
}

impl Entry {
    /// The path for messages.
    pub fn display_path(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// What `TarReader::next_item` found.
#[derive(Debug)]
pub enum Item {
    Entry(Box<Entry>),
    /// The end-of-archive marker.
    End,
}

/// Totals of the entries read, excluding our manifest headers.
#[derive(Debug, Clone)]
pub struct Totals {
    pub entries: u64,
    pub content_bytes: u64,
    pub tar_bytes: u64,
    pub hash: blake3::Hash,
    /// Checksums of 64 MiB segments, to locate damage.
    pub segments: Vec<Segment>,
}

/// Walks a tar stream block by block; see the module docs.
pub struct TarReader<R: Read> {
    inner: R,
    counters: Arc<Counters>,
    /// An item read ahead by `peek`.
    peeked: Option<Item>,
    offset: u64,
    hasher: StreamHasher,
    /// Off for streams only walked for their headers (a volume read back): no checksum.
    checksummed: bool,
    hashed: u64,
    entries: u64,
    content_bytes: u64,
    /// Content bytes left in the current entry.
    pending: u64,
    /// Padding bytes after the current entry's content.
    padding: u64,
    current: String,
    head: Option<ManifestHead>,
    /// Digest of the head's header data, which a format 2 trailer's checksum covers.
    head_digest: Option<blake3::Hash>,
    trailer: Option<ManifestTrailer>,
    /// Bytes of other tools' global headers read so far.
    foreign_global: u64,
    /// Entries read when the trailer was found (a trailer must be the last thing).
    seen_at_trailer: Option<u64>,
    buf: Vec<u8>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R, counters: Arc<Counters>) -> Self {
        TarReader {
            inner,
            counters,
            peeked: None,
            offset: 0,
            hasher: StreamHasher::default(),
            checksummed: true,
            hashed: 0,
            entries: 0,
            content_bytes: 0,
            pending: 0,
            padding: 0,
            current: String::new(),
            head: None,
            head_digest: None,
            trailer: None,
            foreign_global: 0,
            seen_at_trailer: None,
            buf: Vec::new(),
        }
    }

    /// A reader that skips the checksum of the stream (its `totals` carry no hash), for streams
    /// only walked for their headers.
    pub fn unchecksummed(inner: R, counters: Arc<Counters>) -> Self {
        TarReader {
            checksummed: false,
            ..TarReader::new(inner, counters)
        }
    }

    /// The manifest head, once it has been read (it comes first).
    pub fn head(&self) -> Option<&ManifestHead> {
        self.head.as_ref()
    }

    /// The manifest trailer, once it has been read (it comes last).
    pub fn trailer(&self) -> Option<&ManifestTrailer> {
        self.trailer.as_ref()
    }

    /// Counts and checksum of what was read so far.
    pub fn totals(&self) -> Totals {
        let (hash, segments) = self.hasher.finish();
        Totals {
            entries: self.entries,
            content_bytes: self.content_bytes,
            tar_bytes: self.hashed,
            hash,
            segments,
        }
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads the first item without consuming it, so that the manifest head (which precedes
    /// it) is known before anything is done with the data. Checks that the input is a tar.
    pub fn peek(&mut self) -> Result<(), ArchiveError> {
        if self.peeked.is_none() {
            let item = self.next_item()?;
            self.peeked = Some(item);
        }
        Ok(())
    }

    /// Reads up to the next entry, skipping what is left of the current one.
    pub fn next_item(&mut self) -> Result<Item, ArchiveError> {
        if let Some(item) = self.peeked.take() {
            return Ok(item);
        }
        self.skip_rest()?;
        let start = self.offset;
        let mut raw = Vec::with_capacity(BLOCK);
        let mut pax: Option<Vec<u8>> = None;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        // Metadata bytes and headers of this entry so far.
        let (mut meta, mut meta_headers) = (0u64, 0usize);
        loop {
            let mut block = [0u8; BLOCK];
            let at = self.offset;
            if let Err(e) = self.read_exact(&mut block, || {
                "the tar stream ends without its end-of-archive marker".to_string()
            }) {
                return Err(match e {
                    ArchiveError::Truncated(_) if at == 0 => {
                        ArchiveError::Foreign("it holds no tar data".into())
                    }
                    e => e,
                });
            }
            if block.iter().all(|&b| b == 0) {
                if !raw.is_empty() {
                    return Err(ArchiveError::Corrupt(format!(
                        "metadata header at byte {start} is not followed by an entry"
                    )));
                }
                return Ok(Item::End);
            }
            if !checksum_ok(&block) {
                return Err(if at == 0 {
                    ArchiveError::Foreign("it does not start with a tar header".into())
                } else {
                    ArchiveError::Corrupt(format!(
                        "bad tar header checksum at byte {at} (after `{}`)",
                        self.current
                    ))
                });
            }
            let header = tar::Header::from_byte_slice(&block).clone();
            let size = header
                .entry_size()
                .map_err(|e| ArchiveError::Corrupt(format!("header at byte {at}: {e}")))?;
            let kind = header.entry_type();
            use tar::EntryType as T;
            match kind {
                T::XGlobalHeader => {
                    if size > MAX_MANIFEST {
                        return Err(ArchiveError::Corrupt(format!(
                            "global header at byte {at} claims {size} bytes (the limit is {})",
                            mib(MAX_MANIFEST)
                        )));
                    }
                    let data = self.read_meta(size, at)?;
                    match manifest::parse_global_header(&data) {
                        Some(part) => {
                            let digest = manifest::head_digest(&data);
                            self.take_manifest(part, digest, at)?
                        }
                        None => {
                            // Someone else's global header: part of the data, not kept.
                            self.foreign_global += size;
                            if self.foreign_global > MAX_FOREIGN_GLOBAL {
                                return Err(ArchiveError::Corrupt(format!(
                                    "more than {} of PAX global headers (at byte {at})",
                                    mib(MAX_FOREIGN_GLOBAL)
                                )));
                            }
                            self.hash(&block);
                            self.hash_padded(&data);
                        }
                    }
                }
                T::XHeader | T::GNULongName | T::GNULongLink => {
                    meta += size;
                    meta_headers += 1;
                    if meta > MAX_ENTRY_META || meta_headers > MAX_ENTRY_META_HEADERS {
                        return Err(ArchiveError::Corrupt(format!(
                            "the entry at byte {start} carries more metadata (PAX records, GNU \
                             long names) than the limit of {} in {MAX_ENTRY_META_HEADERS} headers",
                            mib(MAX_ENTRY_META)
                        )));
                    }
                    let data = self.read_meta(size, at)?;
                    raw.extend_from_slice(&block);
                    raw.extend_from_slice(&data);
                    raw.resize(raw.len() + (padded(size) - size) as usize, 0);
                    let text = trim_nul(data);
                    // A later header of the same kind replaces an earlier one, as in Go's reader.
                    match kind {
                        T::XHeader => pax = Some(text),
                        T::GNULongName => long_name = Some(text),
                        _ => long_link = Some(text),
                    }
                }
                T::GNUSparse => {
                    return Err(ArchiveError::Unsupported(format!(
                        "GNU sparse entry `{}` at byte {at}; make the archive without --sparse",
                        String::from_utf8_lossy(&header.path_bytes())
                    )))
                }
                _ => {
                    raw.extend_from_slice(&block);
                    return Ok(Item::Entry(Box::new(self.start_entry(
                        raw, header, size, start, pax, long_name, long_link,
                    )?)));
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_entry(
        &mut self,
        raw: Vec<u8>,
        header: tar::Header,
        header_size: u64,
        start: u64,
        pax: Option<Vec<u8>>,
        long_name: Option<Vec<u8>>,
        long_link: Option<Vec<u8>>,
    ) -> Result<Entry, ArchiveError> {
        let mut path = long_name.unwrap_or_else(|| header.path_bytes().into_owned());
        let mut link = long_link.or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let mut size = header_size;
        let mut records = Vec::new();
        if let Some(data) = &pax {
            for ext in tar::PaxExtensions::new(data) {
                let ext = ext.map_err(|e| {
                    ArchiveError::Corrupt(format!("bad PAX record at byte {start}: {e}"))
                })?;
                match ext.key_bytes() {
                    b"path" => path = ext.value_bytes().to_vec(),
                    b"linkpath" => link = Some(ext.value_bytes().to_vec()),
                    b"size" => {
                        size = ext
                            .value()
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| {
                                ArchiveError::Corrupt(format!("bad PAX size at byte {start}"))
                            })?
                    }
                    key => records.push((
                        String::from_utf8_lossy(key).into_owned(),
                        ext.value_bytes().to_vec(),
                    )),
                }
            }
        }
        if self.seen_at_trailer.is_some() {
            // Data after the trailer is not covered by it: the totals will not match.
            self.seen_at_trailer = None;
            self.trailer = None;
        }
        if self.checksummed {
            self.hasher.entry(&String::from_utf8_lossy(&path));
        }
        self.hash(&raw);
        self.entries += 1;
        self.counters.add_entry();
        self.pending = size;
        self.padding = padded(size) - size;
        self.current = String::from_utf8_lossy(&path).into_owned();
        Ok(Entry {
            raw,
            header,
            path,
            link,
            size,
            pax: records,
            offset: start,
        })
    }

    /// Reads the data of a metadata header of `size` bytes (checked against its limit).
    fn read_meta(&mut self, size: u64, at: u64) -> Result<Vec<u8>, ArchiveError> {
        let mut data = vec![0u8; padded(size) as usize];
        self.read_exact(&mut data, || {
            format!("the archive ends inside a metadata header at byte {at}")
        })?;
        data.truncate(size as usize);
        Ok(data)
    }

    fn take_manifest(
        &mut self,
        part: ManifestPart,
        digest: blake3::Hash,
        at: u64,
    ) -> Result<(), ArchiveError> {
        match part {
            ManifestPart::Head(h) => {
                if self.entries > 0 || self.head.is_some() {
                    return Err(ArchiveError::Corrupt(format!(
                        "a second manifest head at byte {at}"
                    )));
                }
                self.head = Some(*h);
                self.head_digest = Some(digest);
            }
            ManifestPart::Trailer(t) => {
                if self.seen_at_trailer.is_some() {
                    return Err(ArchiveError::Corrupt(format!(
                        "a second manifest trailer at byte {at}"
                    )));
                }
                self.trailer = Some(t);
                self.seen_at_trailer = Some(self.entries);
            }
        }
        Ok(())
    }

    /// Copies the rest of the current entry's content and padding to `out`, raw.
    pub fn copy_data_raw<W: Write>(&mut self, out: &mut W) -> Result<(), ArchiveError> {
        let mut left = self.pending + self.padding;
        let content = self.pending;
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_CHUNK, 0);
        while left > 0 {
            let n = left.min(COPY_CHUNK as u64) as usize;
            self.read_exact(&mut buf[..n], String::new)?;
            self.hash(&buf[..n]);
            out.write_all(&buf[..n]).map_err(ArchiveError::Output)?;
            left -= n as u64;
        }
        self.buf = buf;
        self.content_bytes += content;
        self.pending = 0;
        self.padding = 0;
        Ok(())
    }

    /// A reader over the current entry's content (without padding).
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { reader: self }
    }

    /// Reads and drops what is left of the current entry.
    fn skip_rest(&mut self) -> Result<(), ArchiveError> {
        if self.pending + self.padding > 0 {
            self.copy_data_raw(&mut io::sink())?;
        }
        Ok(())
    }

    /// Reads to the end of the underlying stream, so that decoders check their own trailers
    /// (zstd and gzip checksums) and trailing garbage is noticed.
    pub fn drain(&mut self) -> Result<(), ArchiveError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_CHUNK, 0);
        loop {
            match self.inner.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.offset += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.locate(ArchiveError::from_io(e))),
            }
        }
        self.buf = buf;
        Ok(())
    }

    /// Checks the totals against the manifest trailer, if the archive has a manifest: the
    /// entries' counts and checksum, and (format 2) the seal over the head and the trailer.
    pub fn verify(&self) -> Result<Verdict, ArchiveError> {
        let totals = self.totals();
        let (head, t) = match (&self.head, &self.trailer) {
            (None, None) => return Ok(Verdict::NoManifest(totals)),
            (Some(_), None) => {
                return Err(ArchiveError::Truncated(
                    "the manifest trailer is missing: the archive was cut short or altered".into(),
                ))
            }
            (head, Some(t)) => (head.as_ref(), t),
        };
        if t.format > manifest::FORMAT_VERSION {
            return Err(ArchiveError::Unsupported(format!(
                "manifest format {} (this version reads up to {}): made by a newer version",
                t.format,
                manifest::FORMAT_VERSION
            )));
        }
        let sealed = t.format >= manifest::SEALED_FORMAT;
        if head.is_some_and(|h| h.format >= manifest::SEALED_FORMAT && !sealed) {
            return Err(ArchiveError::Mismatch(format!(
                "the manifest head says format {}, the trailer {}: the manifest was edited",
                head.map_or(0, |h| h.format),
                t.format
            )));
        }
        let sum = manifest::checksum_string(&totals.hash);
        let recorded = if sealed {
            t.entries_checksum.as_deref().unwrap_or_default()
        } else {
            t.checksum.as_str()
        };
        if t.entries != totals.entries || t.tar_bytes != totals.tar_bytes {
            Err(ArchiveError::Mismatch(format!(
                "the manifest records {} entries in {} bytes, the archive holds {} in {}",
                t.entries, t.tar_bytes, totals.entries, totals.tar_bytes
            )))
        } else if recorded != sum {
            let place = checksum::first_damaged(&totals.segments, &t.segments)
                .map(|s| format!("; {}", describe_segment(s)))
                .unwrap_or_default();
            Err(ArchiveError::Mismatch(format!(
                "checksum {sum} differs from the manifest's {recorded}{place}"
            )))
        } else if !sealed {
            Ok(Verdict::VerifiedEntries(totals))
        } else if manifest::sealed_checksum(self.head_digest.as_ref(), t) != t.checksum {
            Err(ArchiveError::Mismatch(
                "the manifest was changed after the save: its checksum does not match its \
                 head and trailer (the data itself matches)"
                    .into(),
            ))
        } else {
            Ok(Verdict::Verified(totals))
        }
    }

    fn hash(&mut self, bytes: &[u8]) {
        if self.checksummed {
            self.hasher.update(bytes);
        }
        self.hashed += bytes.len() as u64;
        self.counters.add_tar_bytes(bytes.len() as u64);
    }

    fn hash_padded(&mut self, data: &[u8]) {
        self.hash(data);
        let pad = (padded(data.len() as u64) - data.len() as u64) as usize;
        self.hash(&[0u8; BLOCK][..pad]);
    }

    fn read_exact(
        &mut self,
        buf: &mut [u8],
        on_eof: impl FnOnce() -> String,
    ) -> Result<(), ArchiveError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let msg = on_eof();
                Err(ArchiveError::Truncated(if msg.is_empty() {
                    format!("the archive ends inside `{}`", self.current)
                } else {
                    msg
                }))
            }
            Err(e) => Err(self.locate(ArchiveError::from_io(e))),
        }
    }

    /// Adds where in the tar stream a decoder's error struck: which entry, which byte. A zstd
    /// or gzip checksum only fails at the end of the stream; the manifest's segment checksums
    /// then tell where the damage is.
    fn locate(&self, e: ArchiveError) -> ArchiveError {
        let damaged = self.trailer.as_ref().and_then(|t| {
            let (_, segments) = self.hasher.finish();
            checksum::first_damaged(&segments, &t.segments).map(describe_segment)
        });
        let at = if let Some(place) = damaged {
            place
        } else if self.current.is_empty() {
            format!("at tar byte {}", self.offset)
        } else {
            format!(
                "in or just after `{}`, at tar byte {}",
                self.current, self.offset
            )
        };
        match e {
            ArchiveError::Corrupt(m) => ArchiveError::Corrupt(format!("{m} ({at})")),
            ArchiveError::Truncated(m) => ArchiveError::Truncated(format!("{m} ({at})")),
            other => other,
        }
    }
}

/// The result of checking an archive against its manifest.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// The counts and checksum match the manifest, and the checksum covers the manifest.
    Verified(Totals),
    /// The counts and checksum match a format 1 manifest, whose checksum covers the entries
    /// only: an edit of the manifest would go unnoticed.
    VerifiedEntries(Totals),
    /// The archive has no manifest (made by another tool): nothing to compare with.
    NoManifest(Totals),
}

impl Verdict {
    pub fn totals(&self) -> &Totals {
        match self {
            Verdict::Verified(t) | Verdict::VerifiedEntries(t) | Verdict::NoManifest(t) => t,
        }
    }

    /// Whether the archive matched a manifest (of either format).
    pub fn matched(&self) -> bool {
        !matches!(self, Verdict::NoManifest(_))
    }

    /// How it was checked, for summaries.
    pub fn describe(&self) -> &'static str {
        match self {
            Verdict::Verified(_) => "checksum verified",
            Verdict::VerifiedEntries(_) => {
                "checksum verified (entries only: a format 1 manifest is not covered)"
            }
            Verdict::NoManifest(_) => "no manifest to verify against",
        }
    }
}

/// `Read` over the current entry's content; hashes and counts as it goes.
pub struct EntryData<'a, R: Read> {
    reader: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let r = &mut *self.reader;
        if r.pending == 0 {
            return Ok(0);
        }
        let want = out.len().min(r.pending.min(usize::MAX as u64) as usize);
        let n = r
            .inner
            .read(&mut out[..want])
            .map_err(|e| io::Error::other(r.locate(ArchiveError::from_io(e))))?;
        if n == 0 {
            return Err(io::Error::other(ArchiveError::Truncated(format!(
                "the archive ends inside `{}`",
                r.current
            ))));
        }
        r.offset += n as u64;
        r.pending -= n as u64;
        r.content_bytes += n as u64;
        r.hash(&out[..n]);
        Ok(n)
    }
}

fn describe_segment(s: &Segment) -> String {
    let end = s.start + checksum::SEGMENT_BYTES;
    if s.first_entry == s.last_entry {
        format!(
            "the damage is in `{}` (tar bytes {}..{end})",
            s.first_entry, s.start
        )
    } else {
        format!(
            "the damage is between `{}` and `{}` (tar bytes {}..{end})",
            s.first_entry, s.last_entry, s.start
        )
    }
}

/// `1 MiB`, for limits in messages.
fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Size rounded up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

fn trim_nul(mut data: Vec<u8>) -> Vec<u8> {
    while data.last() == Some(&0) {
        data.pop();
    }
    data
}

/// Checks a header's checksum: the sum of its bytes with the checksum field read as spaces.
/// Historic tars summed signed bytes; accept either.
fn checksum_ok(block: &[u8; BLOCK]) -> bool {
    let header = tar::Header::from_byte_slice(block);
    let Ok(stored) = header.cksum() else {
        return false;
    };
    let field = 148..156;
    let mut unsigned: u32 = 0;
    let mut signed: i32 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if field.contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    stored == unsigned || stored as i32 == signed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<(Vec<String>, Totals), ArchiveError> {
        let mut r = TarReader::new(bytes, Arc::default());
        let mut names = Vec::new();
        while let Item::Entry(e) = r.next_item()? {
            names.push(e.display_path());
            r.copy_data_raw(&mut io::sink())?;
        }
        Ok((names, r.totals()))
    }

    #[test]
    fn walks_entries_and_long_names() {
        let long = format!("{}/file", "d".repeat(150));
        let bytes = archive(&[("a.txt", b"hello"), (&long, b"x")]);
        let (names, totals) = read_all(&bytes).unwrap();
        assert_eq!(names, vec!["a.txt".to_string(), long]);
        assert_eq!(totals.entries, 2);
        assert_eq!(totals.content_bytes, 6);
        // Everything before the end-of-archive marker is hashed.
        let end = bytes.len() - 1024;
        assert_eq!(totals.tar_bytes, end as u64);
        assert_eq!(totals.hash, blake3::hash(&bytes[..end]));
    }

    #[test]
    fn truncation_is_located() {
        let bytes = archive(&[("a.txt", &[7u8; 3000]), ("b.txt", b"x")]);
        let err = read_all(&bytes[..1500]).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Truncated(ref m) if m.contains("a.txt")),
            "{err}"
        );
        let err = read_all(&bytes[..bytes.len() - 1024]).unwrap_err();
        assert!(matches!(err, ArchiveError::Truncated(_)), "{err}");
    }

    #[test]
    fn foreign_and_corrupt_headers_are_told_apart() {
        let err = read_all(&[b'x'; 2048]).unwrap_err();
        assert!(matches!(err, ArchiveError::Foreign(_)), "{err}");
        let mut bytes = archive(&[("a.txt", b"hello"), ("b.txt", b"x")]);
        bytes[1024 + 10] ^= 1; // inside the second header
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Corrupt(ref m) if m.contains("a.txt")),
            "{err}"
        );
    }

    #[test]
    fn checksum_accepts_real_headers_only() {
        let bytes = archive(&[("a", b"")]);
        let mut block = [0u8; BLOCK];
        block.copy_from_slice(&bytes[..BLOCK]);
        assert!(checksum_ok(&block));
        block[0] = b'b';
        assert!(!checksum_ok(&block));
    }

    fn pax_header(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, value_len: usize) {
        let data = manifest::pax_record("comment", &vec![b'x'; value_len]);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path("pax").unwrap();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }

    #[test]
    fn metadata_per_entry_is_bounded() {
        // Nine small PAX headers for one entry: more headers than allowed.
        let mut b = tar::Builder::new(Vec::new());
        for _ in 0..=MAX_ENTRY_META_HEADERS {
            pax_header(&mut b, tar::EntryType::XHeader, 10);
        }
        let mut bytes = b.into_inner().unwrap();
        bytes.extend(archive(&[("a", b"x")]));
        let err = read_all(&bytes).unwrap_err();
        assert!(
            matches!(err, ArchiveError::Corrupt(ref m) if m.contains("metadata")),
            "{err}"
        );
        // Two headers of 600 KiB: more bytes than allowed.
        let mut b = tar::Builder::new(Vec::new());
        for _ in 0..2 {
            pax_header(&mut b, tar::EntryType::XHeader, 600 << 10);
        }
        let mut bytes = b.into_inner().unwrap();
        bytes.extend(archive(&[("a", b"x")]));
        let err = read_all(&bytes).unwrap_err();
        assert!(err.to_string().contains("1 MiB"), "{err}");
        // One of 1 MiB less its record's framing is fine, once per entry, for every entry.
        let mut b = tar::Builder::new(Vec::new());
        for _ in 0..3 {
            pax_header(&mut b, tar::EntryType::XHeader, (1 << 20) - 100);
            let mut h = tar::Header::new_ustar();
            h.set_size(0);
            b.append_data(&mut h, "f", std::io::empty()).unwrap();
        }
        let (names, _) = read_all(&b.into_inner().unwrap()).unwrap();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn foreign_global_headers_are_bounded_in_total() {
        let mut b = tar::Builder::new(Vec::new());
        for _ in 0..3 {
            pax_header(&mut b, tar::EntryType::XGlobalHeader, 400 << 10);
        }
        let mut bytes = b.into_inner().unwrap();
        bytes.extend(archive(&[("a", b"x")]));
        let err = read_all(&bytes).unwrap_err();
        assert!(err.to_string().contains("global headers"), "{err}");
    }
}
