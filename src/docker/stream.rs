//! The engine's archive endpoints: a volume downloaded as a tar stream into the pipe
//! (`crate::pipe`), and a tar stream uploaded from the pipe into a helper container. Where the
//! engines' endpoints differ, the helper says how ([`super::helper::Endpoints`]); what comes out
//! of [`download`] is the same tar layout on every engine.

use std::io;

use anyhow::{Context as _, Result};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bollard::Docker;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::helper::Helper;
use crate::archive::{self, RewriteOptions, TarReader};
use crate::pipe::{self, ChannelReader, ChannelWriter};

/// Size of the chunks handed from the engine's download to the archive code.
const DOWNLOAD_BATCH: usize = 256 * 1024;

/// Streams the volume of `helper` as a tar into `tx` in Docker's layout (`./`, `./a`, ...).
/// Returns when the engine's stream ends or the reader hung up.
pub async fn download(
    docker: &Docker,
    helper: &Helper,
    tx: mpsc::Sender<io::Result<Bytes>>,
) -> Result<()> {
    let endpoints = helper.endpoints();
    if !endpoints.renames_download() {
        return download_raw(docker, &helper.id, endpoints.download_path(), tx).await;
    }
    // Podman's `/`, `/a`: renamed to `./`, `./a` on a blocking thread between two pipes (headers
    // built anew as a restore's rewrite does, with `.` as the directory to name entries under).
    let (raw_tx, raw_rx) = pipe::channel();
    let renamer = tokio::task::spawn_blocking(move || {
        let mut reader = TarReader::unchecksummed(ChannelReader::new(raw_rx), Default::default());
        let writer = ChannelWriter::new(tx);
        let (writer, _) =
            archive::rewrite_for_upload(&mut reader, writer, ".", RewriteOptions::default())?;
        writer.finish().map_err(archive::ArchiveError::Output)?;
        Ok::<_, archive::ArchiveError>(())
    });
    let downloaded = download_raw(docker, &helper.id, endpoints.download_path(), raw_tx).await;
    let renamed = renamer.await.expect("the renamer panicked");
    downloaded?;
    match renamed {
        Ok(()) => Ok(()),
        // The reader downstream hung up (and says why).
        Err(archive::ArchiveError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("reading the volume from the engine")),
    }
}

async fn download_raw(
    docker: &Docker,
    helper_id: &str,
    path: String,
    tx: mpsc::Sender<io::Result<Bytes>>,
) -> Result<()> {
    let options = DownloadFromContainerOptions { path };
    let mut body = docker.download_from_container(helper_id, Some(options));
    // The engine's body arrives in small frames; gathering them into larger chunks saves the
    // archive thread a wake-up per frame.
    let mut batch = BytesMut::with_capacity(DOWNLOAD_BATCH);
    loop {
        match body.next().await {
            Some(Ok(bytes)) => {
                batch.extend_from_slice(&bytes);
                if batch.len() < DOWNLOAD_BATCH {
                    continue;
                }
            }
            Some(Err(e)) => {
                let msg = format!("reading the volume from the engine failed: {e}");
                let _ = tx.send(Err(io::Error::other(msg.clone()))).await;
                anyhow::bail!(msg);
            }
            None => {
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch.freeze())).await;
                }
                return Ok(());
            }
        }
        let chunk = batch.split().freeze();
        batch.reserve(DOWNLOAD_BATCH);
        if tx.send(Ok(chunk)).await.is_err() {
            // The archive writer stopped (and says why).
            return Ok(());
        }
    }
}

/// Uploads the tar stream arriving on `rx` into the helper's volume; its entries are named under
/// [`Helper::upload_root`]. The engine answers only after the whole body.
pub async fn upload(
    docker: &Docker,
    helper: &Helper,
    rx: mpsc::Receiver<io::Result<Bytes>>,
) -> Result<()> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let options = UploadToContainerOptions {
        path: helper.endpoints().upload_path(),
        ..Default::default()
    };
    docker
        .upload_to_container(&helper.id, Some(options), bollard::body_try_stream(stream))
        .await
        .context("the engine did not accept the restored data")
}
