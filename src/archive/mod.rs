//! The archive format: compression, encryption, the manifest, opening an archive for reading,
//! and streaming tar in (save) and out (restore).
//! Synchronous code over `Read`/`Write`; progress goes to shared counters that a reporter renders.

pub mod checksum;
mod compression;
pub mod encryption;
pub mod extract;
pub mod index;
pub mod landed;
pub mod manifest;
mod open;
mod restore;
mod save;
pub mod tar_stream;

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use compression::{Compression, Decoder, EncodeOptions, Encoder};
pub use encryption::{EncryptTo, Encryption, Keys, Passphrase, RecipientKey};
pub use manifest::{EngineInfo, ManifestHead, ManifestTrailer, SourceInfo, VolumeInfo};
pub use open::{open_archive, open_archive_with_kind, ArchiveFormat};
pub use restore::{
    rewrite_for_upload, rewrite_subtree_for_upload, subtree, RewriteOptions, RewriteReport,
    SkipReason, Skipped,
};
pub use save::write_archive;
pub use tar_stream::{Item, TarReader, Totals, Verdict};

/// What can be wrong with an archive, or with writing one.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a volume archive: {0}")]
    Foreign(String),
    #[error("unsupported archive: {0}")]
    Unsupported(String),
    #[error("the archive is truncated: {0}")]
    Truncated(String),
    #[error("the archive is damaged: {0}")]
    Corrupt(String),
    #[error("the archive does not match its manifest: {0}")]
    Mismatch(String),
    /// Encrypted, and no key of the kind needed was given.
    #[error("{why}")]
    NeedKey { need: KeyNeed, why: String },
    #[error("cannot decrypt the archive: {0}")]
    WrongKey(String),
    /// The passphrase was to be asked for and could not be (the caller's message says why).
    #[error("{0}")]
    KeyUnavailable(String),
    #[error("reading the archive failed: {0}")]
    Io(#[source] io::Error),
    #[error("writing failed: {0}")]
    Output(#[source] io::Error),
}

impl ArchiveError {
    /// Recovers an `ArchiveError` that travelled inside an `io::Error` (through a decoder or a
    /// `Read` adapter); anything else is an input error.
    pub fn from_io(e: io::Error) -> ArchiveError {
        if e.get_ref().is_some_and(|inner| inner.is::<ArchiveError>()) {
            let inner = e.into_inner().expect("checked above");
            return *inner.downcast::<ArchiveError>().expect("checked above");
        }
        ArchiveError::Io(e)
    }

    /// Whether the archive itself is at fault (as opposed to the disk or the pipe).
    pub fn is_damage(&self) -> bool {
        !matches!(
            self,
            ArchiveError::Io(_)
                | ArchiveError::Output(_)
                | ArchiveError::NeedKey { .. }
                | ArchiveError::WrongKey(_)
                | ArchiveError::KeyUnavailable(_)
        )
    }

    /// Whether the archive is encrypted and the keys given (if any) do not open it.
    pub fn is_key_problem(&self) -> bool {
        matches!(
            self,
            ArchiveError::NeedKey { .. }
                | ArchiveError::WrongKey(_)
                | ArchiveError::KeyUnavailable(_)
        )
    }
}

/// The kind of key an encrypted archive needs and was not given: the archive layer says what,
/// the top level says how (which flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyNeed {
    /// An identity: the archive is encrypted to recipients.
    Identity,
    /// A passphrase: the archive is encrypted with one.
    Passphrase,
    /// Any key: none at all was given.
    Any,
}

/// Progress counters, updated by the archive code and read by the progress reporter.
#[derive(Debug, Default)]
pub struct Counters {
    tar_bytes: AtomicU64,
    entries: AtomicU64,
    input_bytes: AtomicU64,
}

impl Counters {
    pub fn add_entry(&self) {
        self.entries.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add_tar_bytes(&self, n: u64) {
        self.tar_bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_input_bytes(&self, n: u64) {
        self.input_bytes.fetch_add(n, Ordering::Relaxed);
    }
    /// Uncompressed tar bytes processed.
    pub fn tar_bytes(&self) -> u64 {
        self.tar_bytes.load(Ordering::Relaxed)
    }
    pub fn entries(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }
    /// Bytes read from the archive file (compressed).
    pub fn input_bytes(&self) -> u64 {
        self.input_bytes.load(Ordering::Relaxed)
    }
}

/// Counts the bytes read through it (for progress on compressed input).
pub struct CountingReader<R> {
    inner: R,
    counters: Arc<Counters>,
}

impl<R: Read> CountingReader<R> {
    pub fn new(inner: R, counters: Arc<Counters>) -> Self {
        CountingReader { inner, counters }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.add_input_bytes(n as u64);
        Ok(n)
    }
}
