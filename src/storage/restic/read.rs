//! The read side for the commands: the snapshots of a repository, one snapshot's directory as
//! a tar stream (read on a thread of its own, handed over through the byte pipe), the tool's
//! manifest kept with a snapshot. All blocking: call from a blocking thread.

use std::io;
use std::path::PathBuf;
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};
use rustic_core::{Open, Repository};

use super::export::{self, Exported};
use super::failed;
use super::list::{self, Snapshot};
use super::{Repo, SnapshotManifest};
use crate::archive::VolumeInfo;
use crate::pipe::{self, ChannelReader, ChannelWriter, DynRead};

/// Every snapshot in the repository, newest first.
pub fn snapshots<S: Open>(repo: &Repository<S>) -> Result<Vec<Snapshot>> {
    let files = repo
        .get_all_snapshots()
        .map_err(|e| failed("reading the snapshots", e))?;
    let mut all: Vec<Snapshot> = files.iter().map(Snapshot::from_file).collect();
    list::sort(&mut all);
    Ok(all)
}

/// The volume record in a snapshot's manifest (the tool's JSON in its description), if any.
pub fn recorded_volume(snapshot: &Snapshot) -> Option<VolumeInfo> {
    let text = snapshot.manifest.as_deref()?;
    serde_json::from_str::<SnapshotManifest>(text)
        .ok()
        .map(|m| m.volume)
}

/// The thread reading a snapshot out: what it wrote, once it ends.
pub type Running = JoinHandle<Result<Exported>>;

/// A snapshot's directory being read out as tar.
pub struct Export {
    /// The tar stream (`./`, `./a`, ...): a read error if the repository could not be read.
    pub reader: DynRead,
    /// Ends when the stream has been written (or given up); says what was written.
    pub done: Running,
}

/// Starts streaming the directory `root` of snapshot `id` (a path inside the snapshot, such
/// as `/db`) as tar; with `only`, just that relative path inside it. The directory is looked
/// up first, so a wrong path fails here, before anything is restored.
pub fn export(repo: &Repo, id: &str, root: &str, only: Option<PathBuf>) -> Result<Export> {
    let repo = repo.indexed()?;
    let snap = repo
        .get_snapshots(&[id])
        .map_err(|e| failed(&format!("reading snapshot {id}"), e))?
        .pop()
        .ok_or_else(|| anyhow!("no snapshot {id}"))?;
    let node = repo.node_from_snapshot_and_path(&snap, root).map_err(|_| {
        anyhow!(
            "snapshot {} has no directory {root}",
            &id[..8.min(id.len())]
        )
    })?;
    if !node.is_dir() {
        return Err(anyhow!(
            "{root} in snapshot {} is not a directory",
            &id[..8.min(id.len())]
        ));
    }
    let (tx, rx) = pipe::channel();
    let on_error = tx.clone();
    let done = std::thread::Builder::new()
        .name("restic-export".into())
        .spawn(move || {
            let mut out = ChannelWriter::new(tx);
            match export::write_tar(&repo, &node, only.as_deref(), &mut out) {
                Ok(done) => {
                    out.finish()?;
                    Ok(done)
                }
                Err(e) => {
                    // The reader sees why, rather than a bare "aborted".
                    let _ = on_error.blocking_send(Err(io::Error::other(format!("{e:#}"))));
                    drop(out);
                    Err(e)
                }
            }
        })?;
    Ok(Export {
        reader: Box::new(ChannelReader::new(rx)),
        done,
    })
}
