//! Moving tar streams between the engine and archives: the async side (engine endpoints) and the
//! blocking side (compression, tar walking) joined by bounded channels. Commands build on these;
//! later ones (compose, migrate) reuse them.

use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::Result;
use bollard::Docker;
use tokio_util::sync::CancellationToken;

use crate::archive::{
    self, index, ArchiveError, Counters, EncodeOptions, EncryptTo, Keys, ManifestHead,
    ManifestTrailer, RewriteReport, TarReader,
};
use crate::docker::stream::{self, ChannelReader, ChannelWriter};
use crate::docker::Helper;
use crate::error::UserError;

/// Any blocking byte source (a file, stdin, the engine through a channel).
pub type DynRead = Box<dyn Read + Send>;

/// How `save_volume` writes an archive.
#[derive(Clone)]
pub struct ArchiveOptions {
    pub encode: EncodeOptions,
    /// Encrypt (after compressing) to these recipients or this passphrase.
    pub encrypt: Option<Arc<EncryptTo>>,
}

/// Streams the volume behind `helper` into `sink` as an archive. On error or cancellation the
/// sink is dropped (a file sink deletes its temporary file, an upload is aborted). Any writer will
/// do: a compose bundle passes the writer of its parts.
pub async fn save_volume<W: Write + Send + 'static>(
    docker: &Docker,
    helper: &Helper,
    sink: W,
    opts: ArchiveOptions,
    head: ManifestHead,
    counters: Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<(W, ManifestTrailer)> {
    let (tx, rx) = stream::channel();
    let writer = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader::new(rx);
        let encrypt = opts.encrypt.as_deref();
        archive::write_archive(reader, sink, opts.encode, encrypt, &head, counters)
    });
    let download = stream::download(docker, &helper.id, tx);
    let downloaded = tokio::select! {
        r = download => r,
        _ = cancel.cancelled() => Err(UserError::interrupted().into()),
    };
    // The download is over (or dropped): the writer sees the end of its input and stops.
    let written = writer.await.expect("the archive writer panicked");
    match (downloaded, written) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(done)) => Ok(done),
    }
}

/// What an archive is wrapped in, as found by content.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveFormat {
    pub compression: archive::Compression,
    pub encryption: Option<archive::Encryption>,
}

/// Opens an archive for reading (restore, inspect, verify): detects encryption and compression
/// by content, decrypts with `keys` (a missing or wrong key fails here, before anything else
/// happens), checks that it holds tar data and reads the manifest head if there is one.
/// Blocking; run it on a blocking thread (it may ask for a passphrase on the terminal).
pub fn open_archive(
    input: DynRead,
    counters: Arc<Counters>,
    keys: &Keys,
) -> Result<TarReader<DynRead>, ArchiveError> {
    open_archive_with_kind(input, counters, keys).map(|(reader, _)| reader)
}

/// `open_archive`, also telling which encryption and compression were found.
pub fn open_archive_with_kind(
    input: DynRead,
    counters: Arc<Counters>,
    keys: &Keys,
) -> Result<(TarReader<DynRead>, ArchiveFormat), ArchiveError> {
    let counted = archive::CountingReader::new(input, counters.clone());
    let decoder = archive::Decoder::with_keys(counted, keys)?;
    let format = ArchiveFormat {
        compression: decoder.compression(),
        encryption: decoder.encryption(),
    };
    let mut reader = TarReader::new(Box::new(decoder) as DynRead, counters);
    reader.peek()?;
    Ok((reader, format))
}

/// Streams every entry of `reader` into the volume behind `helper`, renamed under the mount, and
/// checks the archive against its manifest before the engine sees the stream's end.
pub async fn restore_into(
    docker: &Docker,
    helper: &Helper,
    mut reader: TarReader<DynRead>,
    cancel: &CancellationToken,
) -> Result<RewriteReport> {
    let (tx, rx) = stream::channel();
    let producer = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter::new(tx);
        let (writer, report) = archive::rewrite_for_upload(&mut reader, writer)?;
        writer.finish().map_err(ArchiveError::Output)?;
        Ok::<_, ArchiveError>(report)
    });
    let upload = stream::upload(docker, &helper.id, rx);
    let uploaded = tokio::select! {
        r = upload => r,
        _ = cancel.cancelled() => Err(UserError::interrupted().into()),
    };
    let produced = producer.await.expect("the archive reader panicked");
    let interrupted = uploaded
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<UserError>())
        .is_some();
    match (produced, uploaded) {
        (_, Err(e)) if interrupted => Err(e),
        // A damaged archive explains a failed upload, not the other way round.
        (Err(e), _) if e.is_damage() => Err(e.into()),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e.into()),
        (Ok(report), Ok(())) => Ok(report),
    }
}

/// Copies the content of one volume into another inside the engine (used to move a verified
/// restore from a scratch volume into its target).
pub async fn copy_volume(
    docker: &Docker,
    from: &Helper,
    to: &Helper,
    counters: Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<RewriteReport> {
    let (tx, rx) = stream::channel();
    let reader = TarReader::new(Box::new(ChannelReader::new(rx)) as DynRead, counters);
    let (downloaded, restored) = tokio::join!(
        stream::download(docker, &from.id, tx),
        restore_into(docker, to, reader, cancel)
    );
    let report = restored?;
    downloaded?;
    Ok(report)
}

/// Opens an archive for reading: `-` (stdin), a file, or a URL (`s3://bucket/key`, streamed
/// through a bounded channel). Returns the reader and the size when known.
pub async fn open_input(path: &str) -> Result<(DynRead, Option<u64>)> {
    use std::io::IsTerminal;
    if crate::storage::Location::is_remote(path) {
        return crate::storage::open_remote(path).await;
    }
    if path == "-" {
        if io::stdin().is_terminal() {
            return Err(UserError::new(
                crate::error::Kind::Usage,
                "refusing to read an archive from a terminal",
            )
            .hint("pipe the archive in, e.g. `cat backup.tar.zst | ... restore - VOLUME`")
            .into());
        }
        return Ok((Box::new(io::stdin()), None));
    }
    let file = std::fs::File::open(path).map_err(|e| {
        let kind = if e.kind() == io::ErrorKind::NotFound {
            crate::error::Kind::NotFound
        } else {
            crate::error::Kind::Failure
        };
        UserError::new(kind, format!("cannot open {path}: {e}"))
    })?;
    let len = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), len))
}

/// Reads the volume behind `helper` through the engine and describes every entry.
pub async fn index_volume(docker: &Docker, helper: &Helper) -> Result<index::Index> {
    let (tx, rx) = stream::channel();
    let indexer = tokio::task::spawn_blocking(move || {
        let mut reader = TarReader::new(ChannelReader::new(rx), Arc::default());
        index::index_entries(&mut reader)
    });
    let downloaded = stream::download(docker, &helper.id, tx).await;
    let indexed = indexer.await.expect("the volume reader panicked");
    downloaded?;
    Ok(indexed?)
}
