//! The pipe between async and blocking code: bounded channels of byte chunks, with a blocking
//! `Read` at one end or a blocking `Write` at the other, so that memory stays constant whatever
//! the size of the stream. The engine's archive endpoints, object storage and database execs
//! all stream through it to the archive code on a blocking thread.

use std::io::{self, Read, Write};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

/// Any blocking byte source (a file, stdin, the engine through a channel).
pub type DynRead = Box<dyn Read + Send>;

/// Chunks in flight between the async side and the blocking side.
const CHANNEL_DEPTH: usize = 8;
/// Size of the chunks a `ChannelWriter` sends.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// A channel sized for archive streaming.
pub fn channel() -> (
    mpsc::Sender<io::Result<Bytes>>,
    mpsc::Receiver<io::Result<Bytes>>,
) {
    mpsc::channel(CHANNEL_DEPTH)
}

/// Blocking `Read` over chunks arriving on a channel (from the engine, a bucket, an exec).
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

/// Blocking `Write` into an upload (to the engine, an exec's stdin). Dropping it without
/// `finish` aborts the upload with an error, so that the receiver never sees a cut stream as a
/// complete one.
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
