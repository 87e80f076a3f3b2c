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

/// Streams the volume of `helper` as a tar into `tx`, starting with the root's own entry `./`
/// (Docker's `./`, `./a`, ...; from Podman `./`, `a`, ...).
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
    // Podman's `/`, `/a`: renamed to `./`, `a` on a blocking thread between two pipes (headers
    // built anew as a restore's rewrite does, with `.` as the directory to name entries under).
    let (raw_tx, raw_rx) = pipe::channel();
    let renamer = tokio::task::spawn_blocking(move || {
        let writer = rename_to_dot(ChannelReader::new(raw_rx), ChannelWriter::new(tx))?;
        writer.finish().map_err(archive::ArchiveError::Output)
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

/// Podman's `/`, `/a` as `./`, `a` (the tar crate writes `./a` as `a`): names relative to the
/// volume with the root's own entry, which every reader of an archive takes as Docker's `./a`.
fn rename_to_dot<R: io::Read, W: io::Write>(
    input: R,
    output: W,
) -> Result<W, archive::ArchiveError> {
    let mut reader = TarReader::unchecksummed(input, Default::default());
    let (output, _) =
        archive::rewrite_for_upload(&mut reader, output, ".", RewriteOptions::default())?;
    Ok(output)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: tar::EntryType, link: Option<&str>) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o750
        } else {
            0o4755
        });
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(1_000_000_000);
        let data: &[u8] = if kind == tar::EntryType::Regular {
            b"hello"
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        // Names written raw, as Podman sends them (the builder would strip a leading `/`).
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    #[test]
    fn podman_names_become_dot_names_with_everything_else_kept() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "/", tar::EntryType::Directory, None);
        entry(&mut b, "/d/", tar::EntryType::Directory, None);
        entry(&mut b, "/d/a", tar::EntryType::Regular, None);
        entry(&mut b, "/h", tar::EntryType::Link, Some("/d/a"));
        entry(&mut b, "/up", tar::EntryType::Symlink, Some("../../x"));
        let podman = b.into_inner().unwrap();
        let renamed = rename_to_dot(podman.as_slice(), Vec::new()).unwrap();
        let mut seen = Vec::new();
        for e in tar::Archive::new(renamed.as_slice()).entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            seen.push(format!(
                "{} {:?} {:o} {}:{} {} {}",
                String::from_utf8_lossy(&e.path_bytes()),
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                e.link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default(),
            ));
        }
        assert_eq!(
            seen,
            [
                "./ Directory 750 7:8 1000000000 ",
                "d Directory 750 7:8 1000000000 ",
                "d/a Regular 4755 7:8 1000000000 ",
                "h Link 4755 7:8 1000000000 ./d/a",
                "up Symlink 4755 7:8 1000000000 ../../x",
            ]
        );
    }
}
