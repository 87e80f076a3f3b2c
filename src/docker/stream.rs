//! Bridges between the engine's archive endpoints and synchronous `Read`/`Write` code that runs
//! on a blocking thread: bounded channels, so memory stays constant whatever the volume's size.

use std::io::{self, Read, Write};

use anyhow::{Context as _, Result};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bollard::Docker;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::helper::MOUNT_DIR;

/// Chunks in flight between the engine and the archive code.
const CHANNEL_DEPTH: usize = 8;
/// Size of the chunks handed from the engine's download to the archive code.
const DOWNLOAD_BATCH: usize = 256 * 1024;
/// Size of the chunks sent to the engine.
const UPLOAD_CHUNK: usize = 256 * 1024;

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

/// Blocking `Read` over chunks from the engine.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Blocking `Write` into an upload. Dropping it without `finish` aborts the upload with an
/// error, so that the engine never sees a cut stream as a complete one.
pub struct ChannelWriter {
    tx: Option<mpsc::Sender<io::Result<Bytes>>>,
    buf: BytesMut,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx: Some(tx),
            buf: BytesMut::with_capacity(UPLOAD_CHUNK),
        }
    }

    /// Sends what is buffered and ends the upload's body normally.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffer()?;
        self.tx = None;
        Ok(())
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.buf.reserve(UPLOAD_CHUNK);
        let tx = self.tx.as_ref().expect("not finished");
        tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped receiving the upload",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = UPLOAD_CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= UPLOAD_CHUNK {
            self.send_buffer()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.blocking_send(Err(io::Error::other("the restore was aborted")));
        }
    }
}

/// A channel sized for archive streaming.
pub fn channel() -> (
    mpsc::Sender<io::Result<Bytes>>,
    mpsc::Receiver<io::Result<Bytes>>,
) {
    mpsc::channel(CHANNEL_DEPTH)
}
