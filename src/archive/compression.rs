//! Compression: choosing it (flag, file extension), detecting it by content, and the streaming
//! encoders and decoders behind one `Write`/`Read` each.

use std::io::{self, BufReader, Read, Write};

use serde::{Deserialize, Serialize};

use super::encryption::{self, AgeReader, Encryption, Keys};
use super::ArchiveError;

/// How an archive's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd, multi-threaded (`.tar.zst`)
    Zstd,
    /// gzip (`.tar.gz`, `.tgz`): what the seed's `tar czf` recipes make and read
    Gzip,
    /// a plain tar stream (`.tar`)
    None,
}

impl Compression {
    /// The conventional file extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "tar.zst",
            Compression::Gzip => "tar.gz",
            Compression::None => "tar",
        }
    }

    /// The compression a file name asks for by its extension, if it names one.
    pub fn from_file_name(name: &str) -> Option<Compression> {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".tar.zst") || name.ends_with(".tzst") || name.ends_with(".zst") {
            Some(Compression::Zstd)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".gz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// Recognises the compression from the first bytes of a stream; `None` means "not a
    /// compression we read", which the caller then checks for a tar header.
    pub fn sniff(head: &[u8]) -> Result<Compression, ArchiveError> {
        const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
        if head.len() >= 4 && head[..4] == ZSTD {
            return Ok(Compression::Zstd);
        }
        // A zstd skippable frame (magic 0x184D2A50..=0x184D2A5F, little endian).
        if head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18] {
            return Ok(Compression::Zstd);
        }
        if head.len() >= 2 && head[..2] == [0x1f, 0x8b] {
            return Ok(Compression::Gzip);
        }
        let other = if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some("xz")
        } else if head.starts_with(b"BZh") {
            Some("bzip2")
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Some("lz4")
        } else if head.starts_with(b"PK\x03\x04") {
            Some("zip")
        } else {
            None
        };
        match other {
            Some(kind) => Err(ArchiveError::Unsupported(format!(
                "{kind} data; this tool reads zstd, gzip and plain tar archives"
            ))),
            None => Ok(Compression::None),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::None => "none",
        })
    }
}

/// Settings for an encoder.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub compression: Compression,
    pub level: Option<i32>,
    pub threads: u32,
}

impl EncodeOptions {
    /// Checks the level against what the algorithm accepts.
    pub fn validate(&self) -> Result<(), String> {
        match (self.compression, self.level) {
            (Compression::Zstd, Some(l)) if !(1..=19).contains(&l) => {
                Err(format!("zstd level must be between 1 and 19, not {l}"))
            }
            (Compression::Gzip, Some(l)) if !(1..=9).contains(&l) => {
                Err(format!("gzip level must be between 1 and 9, not {l}"))
            }
            (Compression::None, Some(_)) => {
                Err("a compression level needs a compression (zstd or gzip)".into())
            }
            _ => Ok(()),
        }
    }
}

/// A compressing writer; `finish` must be called to complete the stream.
pub enum Encoder<W: Write> {
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
    None(W),
}

/// zstd job size for multi-threaded compression. zstd's default for level 3 (8 MiB, four windows)
/// put the peak RSS near 70 MiB with two workers; 2 MiB jobs measured as fast at about 41 MiB.
const ZSTD_JOB_SIZE: u32 = 2 << 20;

impl<W: Write> Encoder<W> {
    pub fn new(inner: W, opts: EncodeOptions) -> io::Result<Self> {
        Ok(match opts.compression {
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(inner, opts.level.unwrap_or(3))?;
                enc.include_checksum(true)?;
                if opts.threads > 1 {
                    enc.multithread(opts.threads)?;
                    enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                }
                Encoder::Zstd(enc)
            }
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(opts.level.unwrap_or(6) as u32),
            )),
            Compression::None => Encoder::None(inner),
        })
    }

    /// Completes the compressed stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Zstd(e) => e.finish(),
            Encoder::Gzip(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Zstd(e) => e.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::None(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Zstd(e) => e.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// A decompressing (and, for age archives, decrypting) reader chosen by sniffing the stream's
/// first bytes.
pub struct Decoder<R: Read> {
    kind: Compression,
    encryption: Option<Encryption>,
    inner: DecoderInner<R>,
}

type Raw<R> = io::Chain<io::Cursor<Vec<u8>>, R>;
type Buffered<R> = BufReader<io::Chain<io::Cursor<Vec<u8>>, Source<R>>>;

/// The compressed stream: the input itself, or what age decrypts from it.
pub enum Source<R: Read> {
    Plain(Raw<R>),
    Age(Box<AgeReader<Raw<R>>>),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(out),
            Source::Age(r) => r.read(out).map_err(encryption::payload_error),
        }
    }
}

enum DecoderInner<R: Read> {
    Zstd(Box<zstd::stream::read::Decoder<'static, Buffered<R>>>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<Buffered<R>>>),
    None(Buffered<R>),
}

/// Buffer for reading archives: large reads keep syscalls and decoder calls few.
const READ_BUFFER: usize = 1 << 20;

/// Reads the first bytes of a stream up front: a pipe may deliver them a byte at a time.
fn read_head<R: Read>(inner: &mut R, n: usize) -> Result<Vec<u8>, ArchiveError> {
    let mut head = Vec::with_capacity(n);
    inner
        .take(n as u64)
        .read_to_end(&mut head)
        .map_err(|e| ArchiveError::from_io(encryption::payload_error(e)))?;
    Ok(head)
}

impl<R: Read> Decoder<R> {
    /// Sniffs the compression and wraps `inner` in the matching decoder; an encrypted archive
    /// is refused (see `with_keys`).
    pub fn new(inner: R) -> Result<Self, ArchiveError> {
        Self::with_keys(inner, &Keys::none())
    }

    /// Sniffs encryption and compression and wraps `inner` in the matching decoders. An age
    /// archive is opened with `keys`: a missing or wrong key fails here, before any data.
    pub fn with_keys(mut inner: R, keys: &Keys) -> Result<Self, ArchiveError> {
        let head = read_head(&mut inner, encryption::SNIFF_LEN)?;
        if head.is_empty() {
            return Err(ArchiveError::Foreign("the input is empty".into()));
        }
        let raw = io::Cursor::new(head).chain(inner);
        let encrypted = encryption::is_age(&raw.get_ref().0.get_ref()[..]);
        // The compression is sniffed on what lies under the encryption, if any.
        let (mut source, encryption) = if encrypted {
            let (reader, kind) = encryption::decrypt(raw, keys)?;
            (Source::Age(Box::new(reader)), Some(kind))
        } else {
            (Source::Plain(raw), None)
        };
        let head = match &mut source {
            // Plain input: the head read above is still at the front of the chain.
            Source::Plain(raw) => {
                let head = raw.get_ref().0.get_ref().clone();
                (head, Vec::new())
            }
            Source::Age(_) => {
                let head = read_head(&mut source, encryption::SNIFF_LEN)?;
                if head.is_empty() {
                    return Err(ArchiveError::Foreign("the encrypted input is empty".into()));
                }
                (head.clone(), head)
            }
        };
        let (sniffed, unread) = head;
        let kind = Compression::sniff(&sniffed)?;
        let buf = BufReader::with_capacity(READ_BUFFER, io::Cursor::new(unread).chain(source));
        let inner = match kind {
            Compression::Zstd => DecoderInner::Zstd(Box::new(
                zstd::stream::read::Decoder::with_buffer(buf).map_err(ArchiveError::Io)?,
            )),
            Compression::Gzip => {
                DecoderInner::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(buf)))
            }
            Compression::None => DecoderInner::None(buf),
        };
        Ok(Decoder {
            kind,
            encryption,
            inner,
        })
    }

    /// The compression found.
    pub fn compression(&self) -> Compression {
        self.kind
    }

    /// The encryption found, if any.
    pub fn encryption(&self) -> Option<Encryption> {
        self.encryption
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let r = match &mut self.inner {
            DecoderInner::Zstd(d) => d.read(out),
            DecoderInner::Gzip(d) => d.read(out),
            DecoderInner::None(r) => r.read(out),
        };
        // Decoder errors on damaged input surface as plain io errors; name them.
        r.map_err(|e| match e.kind() {
            // Already named (by the decryption layer).
            _ if e.get_ref().is_some_and(|i| i.is::<ArchiveError>()) => e,
            io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => e,
            io::ErrorKind::UnexpectedEof => io::Error::other(ArchiveError::Truncated(format!(
                "the {} stream ends early",
                self.kind
            ))),
            _ if matches!(self.inner, DecoderInner::None(_)) => e,
            _ => io::Error::other(ArchiveError::Corrupt(format!(
                "{} data is damaged: {e}",
                self.kind
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::encryption::{EncryptTo, Encrypting, RecipientKey};

    fn zstd_then_age(plain: &[u8], to: &EncryptTo, armor: bool) -> Vec<u8> {
        let opts = EncodeOptions {
            compression: Compression::Zstd,
            level: None,
            threads: 1,
        };
        let mut enc = Encoder::new(Encrypting::new(Vec::new(), Some(to)).unwrap(), opts).unwrap();
        enc.write_all(plain).unwrap();
        let bin = enc.finish().unwrap().finish().unwrap();
        if !armor {
            return bin;
        }
        let mut w =
            age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
                .unwrap();
        w.write_all(&bin).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn decoder_finds_encryption_then_compression() {
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let plain = b"tar bytes, pretend".repeat(1000);
        for armor in [false, true] {
            let data = zstd_then_age(&plain, &to, armor);
            assert!(!data.windows(8).any(|w| w == b"tar byte"));
            let err = Decoder::new(&data[..]).err().unwrap();
            assert!(matches!(err, ArchiveError::NeedKey { .. }), "{err}");
            let mut keys = Keys::none();
            keys.add_identity_for_tests(Box::new(id.clone()));
            let mut d = Decoder::with_keys(&data[..], &keys).unwrap();
            assert_eq!(d.compression(), Compression::Zstd);
            assert_eq!(d.encryption(), Some(Encryption::Recipients));
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain, "armor {armor}");
        }
        // A plain archive needs no key, and keys do not hurt it.
        let mut d = Decoder::new(&[0x1f, 0x8b, 8, 0][..]).unwrap();
        assert_eq!(d.encryption(), None);
        assert_eq!(d.compression(), Compression::Gzip);
        assert!(d.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn damaged_ciphertext_is_corrupt_not_a_key_problem() {
        let id = age::x25519::Identity::generate();
        let to = EncryptTo::Recipients(vec![RecipientKey::X25519(id.to_public())]);
        let plain: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut data = zstd_then_age(&plain, &to, false);
        let mid = data.len() / 2;
        data[mid] ^= 0x40;
        let mut keys = Keys::none();
        keys.add_identity_for_tests(Box::new(id));
        let mut d = Decoder::with_keys(&data[..], &keys).unwrap();
        let err = d.read_to_end(&mut Vec::new()).unwrap_err();
        let err = ArchiveError::from_io(err);
        assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
        assert!(err.is_damage() && !err.is_key_problem());
    }
}
