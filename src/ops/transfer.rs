//! Moving tar streams between the engine and archives, the plumbing of the operations: the async
//! side (the engine's archive endpoints) and the blocking side (compression, tar walking) joined by
//! bounded pipes, so memory stays constant whatever the volume's size.

use std::io::{self, Read, Write};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bollard::Docker;
use tokio_util::sync::CancellationToken;

use crate::archive::{
    self, index, landed, ArchiveError, Counters, EncodeOptions, EncryptTo, ManifestHead,
    ManifestTrailer, RewriteOptions, RewriteReport, TarReader,
};
use crate::docker::stream;
use crate::docker::Helper;
use crate::error::{Kind, UserError};
use crate::pipe::{self, ChannelReader, ChannelWriter, DynRead};

/// How `save_volume_fanout` writes an archive.
#[derive(Clone)]
pub struct ArchiveOptions {
    pub encode: EncodeOptions,
    /// Encrypt (after compressing) to these recipients or this passphrase.
    pub encrypt: Option<Arc<EncryptTo>>,
}

/// A blocking consumer of a volume's raw tar stream (a restic snapshot being written).
pub type RawConsumer<T> = Box<dyn FnOnce(DynRead) -> Result<T> + Send>;

/// Streams the volume behind `helper` once, to an archive in `sink` (when given) and to each
/// of `raw`, every one on its own blocking thread behind its own bounded pipe: the slowest sets
/// the pace, memory stays constant. A consumer that stops ends the others' input early (which
/// each reports as a cut stream: an archive is not committed, a snapshot not kept).
pub async fn save_volume_fanout<W: Write + Send + 'static, T: Send + 'static>(
    docker: &Docker,
    helper: &Helper,
    sink: Option<(W, ArchiveOptions, ManifestHead)>,
    raw: Vec<RawConsumer<T>>,
    counters: Arc<Counters>,
    cancel: &CancellationToken,
) -> Result<(Option<(W, ManifestTrailer)>, Vec<T>)> {
    let mut txs = Vec::new();
    let writer = sink.map(|(sink, opts, head)| {
        let (tx, rx) = pipe::channel();
        txs.push(tx);
        let counters = Arc::clone(&counters);
        tokio::task::spawn_blocking(move || {
            let reader = ChannelReader::new(rx);
            let encrypt = opts.encrypt.as_deref();
            archive::write_archive(reader, sink, opts.encode, encrypt, &head, counters)
        })
    });
    let mut consumers = Vec::new();
    for consume in raw {
        let (tx, rx) = pipe::channel();
        txs.push(tx);
        consumers.push(tokio::task::spawn_blocking(move || {
            consume(Box::new(ChannelReader::new(rx)))
        }));
    }
    let (tx, mut rx) = pipe::channel();
    let forward = async move {
        while let Some(chunk) = rx.recv().await {
            for t in &txs {
                let copy = match &chunk {
                    Ok(b) => Ok(b.clone()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                if t.send(copy).await.is_err() {
                    // That consumer stopped (and says why); the others see their input end.
                    return;
                }
            }
        }
    };
    let download = async {
        let (downloaded, ()) = tokio::join!(stream::download(docker, helper, tx), forward);
        downloaded
    };
    let downloaded = tokio::select! {
        r = download => r,
        _ = cancel.cancelled() => Err(UserError::interrupted().into()),
    };
    let written = match writer {
        Some(w) => Some(w.await.expect("the archive writer panicked")),
        None => None,
    };
    let mut results = Vec::new();
    for c in consumers {
        results.push(c.await.expect("a stream consumer panicked"));
    }
    downloaded?;
    let archive = match written {
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(done)) => Some(done),
        None => None,
    };
    let mut done = Vec::new();
    for r in results {
        done.push(r?);
    }
    Ok((archive, done))
}

/// How a restore confirms, once the engine has taken the upload, that the volume holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    /// From the headers read back: counts, the root, the first and last entries and a
    /// fingerprint of every entry (`archive::landed`); constant memory.
    #[default]
    Quick,
    /// Every entry described and compared, content and mtimes included, as `migrate` does.
    Full,
    /// Not here: the caller reads the result back and compares every entry itself (`migrate`
    /// and `clone`, against what the source sent).
    ByCaller,
}

/// Streams every entry of `reader` into the volume behind `helper`, renamed under the mount, and
/// checks the archive against its manifest before the engine sees the stream's end. Then reads
/// the volume back and checks (as `check` says) that it holds what was sent: an engine may answer
/// an upload it did not store. The volume must have been empty.
pub async fn restore_into(
    docker: &Docker,
    helper: &Helper,
    reader: TarReader<DynRead>,
    options: RewriteOptions,
    check: Check,
    cancel: &CancellationToken,
) -> Result<RewriteReport> {
    restore_into_spooled(docker, helper, reader, options, check, None, cancel).await
}

/// As [`restore_into`]; with `spool`, the stream sent to the engine is also written into that
/// file, to be sent again into another volume of the same engine ([`upload_spool`]).
pub async fn restore_into_spooled(
    docker: &Docker,
    helper: &Helper,
    mut reader: TarReader<DynRead>,
    options: RewriteOptions,
    check: Check,
    spool: Option<std::fs::File>,
    cancel: &CancellationToken,
) -> Result<RewriteReport> {
    let root = helper.upload_root();
    send(docker, helper, check, spool, cancel, move |writer| {
        let (writer, report) = archive::rewrite_for_upload(&mut reader, writer, root, options)?;
        Ok((writer, report))
    })
    .await
}

/// Sends a stream that [`restore_into_spooled`] wrote into `spool` (rewound here) into the empty
/// volume behind `helper`, checked as `check` says.
pub async fn upload_spool(
    docker: &Docker,
    helper: &Helper,
    mut spool: std::fs::File,
    check: Check,
    cancel: &CancellationToken,
) -> Result<()> {
    use std::io::Seek;
    spool
        .seek(io::SeekFrom::Start(0))
        .context("rewinding the spooled restore")?;
    send(docker, helper, check, None, cancel, move |mut writer| {
        io::copy(&mut spool, &mut writer).map_err(ArchiveError::Io)?;
        Ok((writer, ()))
    })
    .await
}

/// Uploads what `produce` writes into the volume behind `helper` (with a copy to `spool`), then
/// reads the volume back and checks (as `check` says) that it holds what was sent.
async fn send<T: Send + 'static>(
    docker: &Docker,
    helper: &Helper,
    check: Check,
    spool: Option<std::fs::File>,
    cancel: &CancellationToken,
    produce: impl FnOnce(TeeWriter) -> Result<(TeeWriter, T), ArchiveError> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = pipe::channel();
    let (seen_tx, seen_rx) = pipe::channel();
    let (root, owners) = (helper.upload_root(), helper.reports_owners());
    let observer = (check != Check::ByCaller)
        .then(|| tokio::task::spawn_blocking(move || describe_sent(seen_rx, check, root, owners)));
    let copy = observer.is_some().then(|| ChannelWriter::new(seen_tx));
    let producer = tokio::task::spawn_blocking(move || {
        let writer = TeeWriter {
            upload: ChannelWriter::new(tx),
            copy,
            spool: spool.map(io::BufWriter::new),
        };
        let (writer, report) = produce(writer)?;
        writer.finish().map_err(ArchiveError::Output)?;
        Ok::<_, ArchiveError>(report)
    });
    let upload = stream::upload(docker, helper, rx);
    let uploaded = tokio::select! {
        r = upload => r,
        _ = cancel.cancelled() => Err(UserError::interrupted().into()),
    };
    let produced = producer.await.expect("the archive reader panicked");
    let sent = match observer {
        Some(task) => Some(task.await.expect("the upload observer panicked")),
        None => None,
    };
    let interrupted = uploaded
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<UserError>())
        .is_some();
    let report = match (produced, uploaded) {
        (_, Err(e)) if interrupted => return Err(e),
        // A damaged archive explains a failed upload, not the other way round.
        (Err(e), _) if e.is_damage() => return Err(e.into()),
        (_, Err(e)) => return Err(e),
        (Err(e), Ok(())) => return Err(e.into()),
        (Ok(report), Ok(())) => report,
    };
    let Some(sent) = sent
        .transpose()
        .context("describing the data sent to the engine")?
    else {
        return Ok(report);
    };
    tokio::select! {
        r = confirm(docker, helper, sent) => r?,
        _ = cancel.cancelled() => return Err(UserError::interrupted().into()),
    }
    Ok(report)
}

/// What was sent, described from a copy of the upload's bytes.
enum Sent {
    Summary(Box<landed::Summary>),
    Index(index::Index),
}

/// `root` is what the entries are named under (`Helper::upload_root`); without `owners` (the
/// engine cannot report them back) owners are left out of what is compared.
fn describe_sent(
    rx: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    check: Check,
    root: &str,
    owners: bool,
) -> Result<Sent, ArchiveError> {
    let mut reader = TarReader::unchecksummed(ChannelReader::new(rx), Arc::default());
    let sent = match check {
        Check::Quick => Sent::Summary(Box::new(landed::summarize(
            &mut reader,
            Some(root),
            landed::Summary::watching(Vec::new()).owners(owners),
        )?)),
        Check::Full | Check::ByCaller => {
            let index = index::rebase(index::index_entries(&mut reader)?, root);
            Sent::Index(if owners {
                index
            } else {
                index::without_owners(index)
            })
        }
    };
    // Whatever follows the end-of-archive marker: read it so the upload never waits.
    let _ = io::copy(&mut reader.into_inner(), &mut io::sink());
    Ok(sent)
}

/// Reads the volume behind `helper` back and compares it with what was sent.
async fn confirm(docker: &Docker, helper: &Helper, sent: Sent) -> Result<()> {
    let problem = match sent {
        Sent::Summary(sent) => {
            let (tx, rx) = pipe::channel();
            let watch = sent.samples();
            let owners = helper.reports_owners();
            let reading = tokio::task::spawn_blocking(move || {
                let mut reader = TarReader::unchecksummed(ChannelReader::new(rx), Arc::default());
                let summary = landed::Summary::watching(watch).owners(owners);
                landed::summarize(&mut reader, None, summary)
            });
            let downloaded = stream::download(docker, helper, tx).await;
            let landed = reading.await.expect("the volume reader panicked");
            downloaded.context("reading the volume back")?;
            let landed = landed.context("reading the volume back")?;
            match landed::check(&sent, &landed) {
                Ok(()) => return Ok(()),
                Err(problem) => problem,
            }
        }
        Sent::Index(sent) => {
            let landed = index_volume(docker, helper)
                .await
                .context("reading the volume back")?;
            let landed = if helper.reports_owners() {
                landed
            } else {
                index::without_owners(landed)
            };
            let diff = index::compare_restored(&sent, &landed);
            if diff.is_empty() {
                return Ok(());
            }
            let listed: String = diff
                .to_string()
                .lines()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n  ");
            format!(
                "{} entries differ from the archive:\n  {listed}",
                diff.len()
            )
        }
    };
    Err(UserError::new(
        Kind::Unconfirmed,
        format!(
            "the engine accepted the data, but the volume read back does not hold it: {problem}"
        ),
    )
    .hint(
        "the engine, or something between it and this tool, answered success without storing \
         the data (Podman's Docker-compatible API does so for uploads at `/`)",
    )
    .into())
}

/// The upload's writer, handing a copy of every byte to an observer thread (bounded channel).
/// An observer that gave up is dropped; the upload goes on. A spool must take every byte.
struct TeeWriter {
    upload: ChannelWriter,
    copy: Option<ChannelWriter>,
    spool: Option<io::BufWriter<std::fs::File>>,
}

impl TeeWriter {
    fn finish(self) -> io::Result<()> {
        if let Some(mut spool) = self.spool {
            spool.flush()?;
        }
        self.upload.finish()?;
        if let Some(copy) = self.copy {
            let _ = copy.finish();
        }
        Ok(())
    }
}

impl Write for TeeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.upload.write(data)?;
        if let Some(spool) = &mut self.spool {
            spool.write_all(&data[..n])?;
        }
        if let Some(copy) = &mut self.copy {
            if copy.write_all(&data[..n]).is_err() {
                self.copy = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// As `restore_into`, but only the entries at or under `subtree` are written, merged into what
/// the volume holds.
pub async fn restore_subtree_into(
    docker: &Docker,
    helper: &Helper,
    mut reader: TarReader<DynRead>,
    subtree: Vec<u8>,
    options: RewriteOptions,
    cancel: &CancellationToken,
) -> Result<RewriteReport> {
    let (tx, rx) = pipe::channel();
    let root = helper.upload_root();
    let producer = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter::new(tx);
        let (writer, report) =
            archive::rewrite_subtree_for_upload(&mut reader, writer, root, options, &subtree)?;
        writer.finish().map_err(ArchiveError::Output)?;
        Ok::<_, ArchiveError>(report)
    });
    let uploaded = tokio::select! {
        r = stream::upload(docker, helper, rx) => r,
        _ = cancel.cancelled() => Err(UserError::interrupted().into()),
    };
    let produced = producer.await.expect("the archive reader panicked");
    match (produced, uploaded) {
        (Err(e), _) if e.is_damage() => Err(e.into()),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(())) => Err(e.into()),
        (Ok(report), Ok(())) => Ok(report),
    }
}

/// Copies the content of one volume into another inside the engine (used to move a verified
/// restore from a scratch volume into its target), checked as `restore_into` checks.
pub async fn copy_volume(
    docker: &Docker,
    from: &Helper,
    to: &Helper,
    counters: Arc<Counters>,
    check: Check,
    cancel: &CancellationToken,
) -> Result<RewriteReport> {
    let (report, _) = stream_volume(docker, from, counters, false, |reader| {
        restore_into(docker, to, reader, RewriteOptions::default(), check, cancel)
    })
    .await?;
    Ok(report)
}

/// Streams the volume behind `from` (on any engine) into `consume` as a `TarReader` over the
/// engine's tar (`./`, `./a`, ...), with constant memory. With `index`, every entry that passes
/// is also described (content hashed) from the same bytes on a thread of its own, so what was
/// sent can be compared with what arrived without reading the source twice.
pub async fn stream_volume<T, F, Fut>(
    docker: &Docker,
    from: &Helper,
    counters: Arc<Counters>,
    index: bool,
    consume: F,
) -> Result<(T, Option<index::Index>)>
where
    F: FnOnce(TarReader<DynRead>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let (tx, rx) = pipe::channel();
    let source: DynRead = Box::new(ChannelReader::new(rx));
    let (source, indexer) = if index {
        let (tee, indexer) = tee_index(source);
        (tee, Some(indexer))
    } else {
        (source, None)
    };
    let reader = TarReader::new(source, counters);
    let (downloaded, consumed) = tokio::join!(stream::download(docker, from, tx), consume(reader));
    let indexed = match indexer {
        Some(task) => Some(task.await.expect("the indexer panicked")),
        None => None,
    };
    let value = consumed?;
    downloaded?;
    let index = indexed.transpose()?;
    Ok((value, index))
}

/// A reader that hands a copy of every byte read through it to an indexer thread (bounded
/// channel). The indexer reads to the end of its input, so the tee never blocks on it.
fn tee_index(
    input: DynRead,
) -> (
    DynRead,
    tokio::task::JoinHandle<Result<index::Index, ArchiveError>>,
) {
    let (tx, rx) = pipe::channel();
    let indexer = tokio::task::spawn_blocking(move || {
        let mut reader = TarReader::new(ChannelReader::new(rx), Arc::default());
        let index = index::index_entries(&mut reader);
        // Whatever follows the end-of-archive marker: read it so the tee never waits.
        let _ = io::copy(&mut reader.into_inner(), &mut io::sink());
        index
    });
    (
        Box::new(Tee {
            input,
            tx: Some(tx),
        }),
        indexer,
    )
}

struct Tee {
    input: DynRead,
    tx: Option<tokio::sync::mpsc::Sender<io::Result<bytes::Bytes>>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.input.read(buf) {
            Ok(n) => n,
            Err(e) => {
                if let Some(tx) = self.tx.take() {
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                return Err(e);
            }
        };
        if n == 0 {
            // The end: the indexer sees it as the end of its input too.
            self.tx = None;
        } else if let Some(tx) = &self.tx {
            if tx
                .blocking_send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                .is_err()
            {
                // The indexer gave up (and says why); the transfer goes on.
                self.tx = None;
            }
        }
        Ok(n)
    }
}

/// Reads the volume behind `helper` through the engine and describes every entry.
pub async fn index_volume(docker: &Docker, helper: &Helper) -> Result<index::Index> {
    index_volume_counted(docker, helper, Arc::default()).await
}

/// `index_volume`, counting what it reads into `counters` (for a progress bar).
pub async fn index_volume_counted(
    docker: &Docker,
    helper: &Helper,
    counters: Arc<Counters>,
) -> Result<index::Index> {
    let (tx, rx) = pipe::channel();
    let indexer = tokio::task::spawn_blocking(move || {
        let mut reader = TarReader::new(ChannelReader::new(rx), counters);
        index::index_entries(&mut reader)
    });
    let downloaded = stream::download(docker, helper, tx).await;
    let indexed = indexer.await.expect("the volume reader panicked");
    downloaded?;
    Ok(indexed?)
}
