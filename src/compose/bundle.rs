//! The compose bundle: one plain tar stream holding a project's bundle manifest and every
//! volume's archive, written and read in one pass with constant memory.
//!
//! Layout (`<project>_<YYYYmmdd_HHMMSS>.compose.tar`):
//!
//! ```text
//! bundle.json                          the bundle manifest (project, volumes, services)
//! dumps/<service>.sql.zst.000001       with --with-dumps: each database service's dump, in parts
//! volumes/<key>.tar.zst.000001         the volume's archive, in parts of at most 4 MiB
//! volumes/<key>.tar.zst.000002
//! ...                                  the next volume, and so on
//! ```
//!
//! Why parts: a tar entry states its size before its data, and a volume's archive size is known
//! only at its end. Cutting the archive into bounded parts lets the bundle stream (`-o -`) with
//! no temporary copy. Each volume's parts, joined, are an ordinary archive of this tool
//! (manifest head and trailer, checksum): `tar xf` the bundle and
//! `cat volumes/db.tar.zst.* > db.tar.zst` gives a file that `restore`, `verify` and `inspect`
//! take.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::volumes::ProjectVolume;
use crate::archive::{ArchiveError, SourceInfo};

/// The bundle manifest's entry name (always first).
pub const MANIFEST_NAME: &str = "bundle.json";
/// What `kind` says in a bundle manifest.
pub const KIND: &str = "docker-volume-backup.compose-bundle";
/// Largest part of a volume's archive: the memory a bundle costs.
pub const PART_BYTES: usize = 4 << 20;
/// The largest bundle manifest accepted when reading.
const MANIFEST_LIMIT: u64 = 16 << 20;

/// What a bundle (or a `--split` directory, as `<project>.compose.json`) says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub kind: String,
    pub format: u32,
    pub tool_version: String,
    pub created: String,
    pub project: String,
    pub source: SourceInfo,
    pub volumes: Vec<BundleVolume>,
    /// Logical dumps of the database services (`--with-dumps`); they come before the volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dumps: Vec<super::dumps::BundleDump>,
}

/// One volume of the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleVolume {
    #[serde(flatten)]
    pub volume: ProjectVolume,
    /// The archive: the parts' common name in a bundle, the file name in a split directory.
    pub file: String,
}

/// Writes the outer tar: small files, then each volume's archive as parts.
pub struct BundleWriter<W: Write> {
    out: W,
    mtime: u64,
}

impl<W: Write> BundleWriter<W> {
    pub fn new(out: W) -> Self {
        BundleWriter {
            out,
            mtime: chrono::Utc::now().timestamp().max(0) as u64,
        }
    }

    /// Adds a regular file.
    pub fn add_file(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(data)?;
        let pad = data.len().next_multiple_of(512) - data.len();
        self.out.write_all(&[0u8; 512][..pad])
    }

    /// A writer for one volume's archive; its parts are named `<name>.000001`, ...
    pub fn parts(self, name: &str) -> PartWriter<W> {
        PartWriter {
            bundle: self,
            name: name.to_string(),
            buf: Vec::with_capacity(PART_BYTES),
            index: 0,
        }
    }

    /// Ends the tar stream; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Cuts what is written into parts of `PART_BYTES`; `finish` writes the last one.
pub struct PartWriter<W: Write> {
    bundle: BundleWriter<W>,
    name: String,
    buf: Vec<u8>,
    index: u32,
}

impl<W: Write> PartWriter<W> {
    fn flush_part(&mut self) -> io::Result<()> {
        self.index += 1;
        let name = part_name(&self.name, self.index);
        self.bundle.add_file(&name, &self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the last part; returns the bundle for the next volume.
    pub fn finish(mut self) -> io::Result<BundleWriter<W>> {
        if !self.buf.is_empty() || self.index == 0 {
            self.flush_part()?;
        }
        Ok(self.bundle)
    }
}

impl<W: Write> Write for PartWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PART_BYTES - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PART_BYTES {
            self.flush_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Parts are written whole; the bundle's writer is flushed at the end.
        Ok(())
    }
}

fn is_part_number(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

fn part_name(name: &str, index: u32) -> String {
    format!("{name}.{index:06}")
}

/// The bundle manifest's name in a `--split` directory.
pub fn split_manifest_name(project: &str) -> String {
    format!("{project}.compose.json")
}

/// Checks a file name that a split directory's bundle manifest gives: a plain name of a file in
/// that directory, never a path (no `/`, no `..`, not absolute). Says why not.
pub fn split_file_name(file: &str) -> Result<&str, &'static str> {
    if file.is_empty() {
        Err("an empty name")
    } else if file.starts_with('/') {
        Err("an absolute path, not a plain file name of the directory")
    } else if file.contains('/') || file.contains('\\') {
        Err("a path, not a plain file name of the directory")
    } else if file == "." || file == ".." {
        Err("not a file name")
    } else if file.contains('\0') {
        Err("a name with a NUL byte")
    } else {
        Ok(file)
    }
}

/// The name of a volume's parts inside a bundle: `volumes/<key>.<extension>`.
pub fn parts_name(key: &str, extension: &str) -> String {
    format!("volumes/{key}.{extension}")
}

/// Reads the outer tar one entry at a time. Shared (behind a mutex) between the bundle-level
/// reading and the reader of the current volume's parts.
pub struct BundleReader<R: Read> {
    inner: R,
    /// A header read ahead but not consumed: (name, size).
    pending: Option<(String, u64)>,
    /// Data bytes left in the current entry, and its padding.
    left: u64,
    pad: u64,
    /// The end-of-archive block was read: nothing follows.
    ended: bool,
}

/// A damaged bundle, as an `io::Error` that carries an `ArchiveError` (so it is reported, and
/// exits, as a damaged archive).
fn damaged(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        ArchiveError::Corrupt(msg.into()),
    )
}

fn foreign(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        ArchiveError::Foreign(msg.into()),
    )
}

impl<R: Read> BundleReader<R> {
    pub fn new(inner: R) -> Self {
        BundleReader {
            inner,
            pending: None,
            left: 0,
            pad: 0,
            ended: false,
        }
    }

    /// The next entry's name and size without consuming it; `None` at the end of the bundle.
    pub fn peek(&mut self) -> io::Result<Option<(String, u64)>> {
        if self.pending.is_none() && !self.ended {
            self.skip_rest()?;
            self.pending = self.read_header()?;
            self.ended = self.pending.is_none();
        }
        Ok(self.pending.clone())
    }

    /// Consumes the next entry's header: its data is read next.
    fn take_entry(&mut self) -> io::Result<Option<(String, u64)>> {
        let next = self.peek()?;
        self.pending = None;
        if let Some((_, size)) = &next {
            self.left = *size;
            self.pad = size.next_multiple_of(512) - size;
        }
        Ok(next)
    }

    /// Reads the bundle manifest, which must come first.
    pub fn read_manifest(&mut self) -> io::Result<BundleManifest> {
        let first = self.take_entry().map_err(|_| {
            foreign(
                "not a compose bundle: it does not start with a tar header (a single volume's \
                 archive goes to `restore`)",
            )
        })?;
        match first {
            Some((name, size)) if name == MANIFEST_NAME && size <= MANIFEST_LIMIT => {
                let mut data = vec![0u8; size as usize];
                self.read_exact(&mut data)?;
                let manifest: BundleManifest = serde_json::from_slice(&data)
                    .map_err(|e| foreign(format!("the bundle manifest is unreadable: {e}")))?;
                if manifest.kind != KIND {
                    return Err(foreign(format!(
                        "not a compose bundle (kind {:?})",
                        manifest.kind
                    )));
                }
                Ok(manifest)
            }
            Some((name, _)) => Err(foreign(format!(
                "not a compose bundle: its first entry is `{name}`, not `{MANIFEST_NAME}`"
            ))),
            None => Err(foreign("not a compose bundle: it is empty")),
        }
    }

    /// Skips whatever is left of the parts named `<name>.NNNNNN` (what the archive reader did
    /// not need: padding after the archive's end), so the next volume's parts come next.
    pub fn skip_parts(&mut self, name: &str) -> io::Result<()> {
        let prefix = format!("{name}.");
        while let Some((entry, _)) = self.peek()? {
            if !entry.strip_prefix(&prefix).is_some_and(is_part_number) {
                break;
            }
            self.take_entry()?;
        }
        Ok(())
    }

    fn skip_rest(&mut self) -> io::Result<()> {
        let n = self.left + self.pad;
        if n > 0 {
            let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
            if copied < n {
                return Err(truncated());
            }
        }
        self.left = 0;
        self.pad = 0;
        Ok(())
    }

    fn read_header(&mut self) -> io::Result<Option<(String, u64)>> {
        let mut block = [0u8; 512];
        if read_full(&mut self.inner, &mut block)? < 512 {
            return Err(truncated());
        }
        if block.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let header = tar::Header::from_byte_slice(&block);
        let sum = header
            .cksum()
            .map_err(|_| damaged("a bundle header is damaged"))?;
        let computed: u32 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        if sum != computed {
            return Err(damaged("a bundle header is damaged (checksum)"));
        }
        let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
        let size = header
            .entry_size()
            .map_err(|_| damaged(format!("bundle entry `{name}` has a damaged size")))?;
        Ok(Some((name, size)))
    }
}

impl<R: Read> Read for BundleReader<R> {
    /// Reads the current entry's data; 0 at its end.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(truncated());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        ArchiveError::Truncated("the bundle ends early".into()),
    )
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The parts of one volume's archive, read as one stream from a shared bundle reader.
pub struct PartReader<R: Read> {
    bundle: Arc<Mutex<BundleReader<R>>>,
    name: String,
    next: u32,
    in_part: bool,
}

impl<R: Read> PartReader<R> {
    pub fn new(bundle: Arc<Mutex<BundleReader<R>>>, name: &str) -> Self {
        PartReader {
            bundle,
            name: name.to_string(),
            next: 1,
            in_part: false,
        }
    }

    /// Whether the bundle's next entry is this volume's first part.
    pub fn starts_here(bundle: &mut BundleReader<R>, name: &str) -> io::Result<bool> {
        Ok(bundle
            .peek()?
            .is_some_and(|(entry, _)| entry == part_name(name, 1)))
    }
}

impl<R: Read> Read for PartReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut bundle = self.bundle.lock().expect("bundle reader poisoned");
        loop {
            if self.in_part {
                let n = bundle.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.in_part = false;
            }
            let expected = part_name(&self.name, self.next);
            match bundle.peek()? {
                Some((entry, _)) if entry == expected => {
                    bundle.take_entry()?;
                    self.next += 1;
                    self.in_part = true;
                }
                _ if self.next == 1 => {
                    return Err(damaged(format!(
                        "the bundle has no `{expected}` where it should be"
                    )))
                }
                // The next entry belongs to someone else: this archive ends here.
                _ => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_directories_name_plain_files_only() {
        assert_eq!(split_file_name("shop_db.tar.zst"), Ok("shop_db.tar.zst"));
        assert_eq!(split_file_name("..x.tar.zst"), Ok("..x.tar.zst"));
        for bad in [
            "",
            ".",
            "..",
            "../elsewhere/x.tar.zst",
            "/etc/x.tar.zst",
            "sub/x.tar.zst",
            "..\\x.tar.zst",
            "x\0y",
        ] {
            assert!(split_file_name(bad).is_err(), "{bad:?}");
        }
    }

    fn manifest() -> BundleManifest {
        BundleManifest {
            kind: KIND.into(),
            format: 1,
            tool_version: "0".into(),
            created: "now".into(),
            project: "shop".into(),
            source: SourceInfo::default(),
            volumes: vec![],
            dumps: vec![],
        }
    }

    #[test]
    fn parts_round_trip_and_stay_bounded() {
        let big: Vec<u8> = (0..(PART_BYTES * 2 + 1234))
            .map(|i| (i % 251) as u8)
            .collect();
        let small = b"tiny archive".to_vec();
        let mut w = BundleWriter::new(Vec::new());
        w.add_file(MANIFEST_NAME, &serde_json::to_vec(&manifest()).unwrap())
            .unwrap();
        let mut p = w.parts("volumes/a.tar.zst");
        p.write_all(&big).unwrap();
        let w = p.finish().unwrap();
        let mut p = w.parts("volumes/b.tar.zst");
        p.write_all(&small).unwrap();
        let w = p.finish().unwrap();
        let bytes = w.finish().unwrap();

        // A plain tar reader sees the manifest and three + one parts.
        let mut names = Vec::new();
        for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
            let e = e.unwrap();
            assert!(e.size() as usize <= PART_BYTES);
            names.push(e.path().unwrap().display().to_string());
        }
        assert_eq!(
            names,
            vec![
                "bundle.json",
                "volumes/a.tar.zst.000001",
                "volumes/a.tar.zst.000002",
                "volumes/a.tar.zst.000003",
                "volumes/b.tar.zst.000001"
            ]
        );

        let shared = Arc::new(Mutex::new(BundleReader::new(&bytes[..])));
        assert_eq!(shared.lock().unwrap().read_manifest().unwrap(), manifest());
        assert!(PartReader::starts_here(&mut shared.lock().unwrap(), "volumes/a.tar.zst").unwrap());
        // Read only part of the first archive, then drain it.
        let mut a = PartReader::new(shared.clone(), "volumes/a.tar.zst");
        let mut head = vec![0u8; 1000];
        a.read_exact(&mut head).unwrap();
        assert_eq!(head, big[..1000]);
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, big[1000..]);
        let mut b = PartReader::new(shared.clone(), "volumes/b.tar.zst");
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, small);
        // Reading on at the end stays at the end.
        assert_eq!(b.read(&mut [0u8; 10]).unwrap(), 0);
        assert_eq!(shared.lock().unwrap().peek().unwrap(), None);
        assert_eq!(shared.lock().unwrap().peek().unwrap(), None);
    }

    #[test]
    fn drained_parts_leave_the_reader_at_the_next_volume() {
        let mut w = BundleWriter::new(Vec::new());
        w.add_file(MANIFEST_NAME, &serde_json::to_vec(&manifest()).unwrap())
            .unwrap();
        let mut p = w.parts("volumes/a.tar");
        p.write_all(&vec![7u8; PART_BYTES + 10]).unwrap();
        let mut p = p.finish().unwrap().parts("volumes/b.tar");
        p.write_all(b"b").unwrap();
        let bytes = p.finish().unwrap().finish().unwrap();
        let shared = Arc::new(Mutex::new(BundleReader::new(&bytes[..])));
        shared.lock().unwrap().read_manifest().unwrap();
        let mut a = PartReader::new(shared.clone(), "volumes/a.tar");
        a.read_exact(&mut [0u8; 10]).unwrap();
        drop(a);
        shared.lock().unwrap().skip_parts("volumes/a.tar").unwrap();
        let mut got = Vec::new();
        PartReader::new(shared.clone(), "volumes/b.tar")
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, b"b");
    }

    #[test]
    fn foreign_truncated_and_misplaced_input_is_refused() {
        let mut w = BundleWriter::new(Vec::new());
        w.add_file("other.txt", b"x").unwrap();
        let bytes = w.finish().unwrap();
        let err = BundleReader::new(&bytes[..]).read_manifest().unwrap_err();
        assert!(err.to_string().contains("first entry is `other.txt`"));

        let mut w = BundleWriter::new(Vec::new());
        w.add_file(MANIFEST_NAME, &serde_json::to_vec(&manifest()).unwrap())
            .unwrap();
        let mut p = w.parts("volumes/a.tar");
        p.write_all(&[1u8; 5000]).unwrap();
        let bytes = p.finish().unwrap().finish().unwrap();
        let cut = &bytes[..bytes.len() - 3000];
        let shared = Arc::new(Mutex::new(BundleReader::new(cut)));
        shared.lock().unwrap().read_manifest().unwrap();
        let err = PartReader::new(shared.clone(), "volumes/a.tar")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");

        let shared = Arc::new(Mutex::new(BundleReader::new(&bytes[..])));
        shared.lock().unwrap().read_manifest().unwrap();
        let err = PartReader::new(shared, "volumes/zzz.tar")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(
            err.to_string().contains("no `volumes/zzz.tar.000001`"),
            "{err}"
        );
        assert!(BundleReader::new(&b"garbage"[..]).read_manifest().is_err());
    }
}
