//! The engine's archive endpoints: a volume downloaded as a tar stream into the pipe
//! (`crate::pipe`), and a tar stream uploaded from the pipe into a helper container.

use std::io;

use anyhow::{Context as _, Result};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bollard::Docker;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::helper::MOUNT_DIR;

/// Size of the chunks handed from the engine's download to the archive code.
const DOWNLOAD_BATCH: usize = 256 * 1024;

/// Streams the volume of `helper` as a tar into `tx`, as the engine's GET archive endpoint
/// produces it (`./`, `./a`, ...). Returns when the engine's stream ends or the reader hung up.
pub async fn download(
    docker: &Docker,
    helper_id: &str,
    tx: mpsc::Sender<io::Result<Bytes>>,
) -> Result<()> {
    let options = DownloadFromContainerOptions {
        path: format!("/{MOUNT_DIR}/."),
    };
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

/// Uploads the tar stream arriving on `rx` into the helper's container at `/`, so that
/// `volume/...` entries land in the volume. The engine answers only after the whole body.
pub async fn upload(
    docker: &Docker,
    helper_id: &str,
    rx: mpsc::Receiver<io::Result<Bytes>>,
) -> Result<()> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let options = UploadToContainerOptions {
        path: "/".into(),
        ..Default::default()
    };
    docker
        .upload_to_container(helper_id, Some(options), bollard::body_try_stream(stream))
        .await
        .context("the engine did not accept the restored data")
}
