//! The journal of a run: before each step that must be undone if the process dies (containers
//! stopped or paused, a volume being restored, the scratch volume that holds the only copy of
//! restored data, helper containers, partial files), the step is written down in the tool's state
//! directory, and it is cleared once undone. A run that is killed (`kill -9`, the OOM killer, a
//! power cut) leaves its file behind; the next run of any command finds it and says what was
//! left, and `recover` finishes or undoes it.
//!
//! One file per run, `<state>/runs/<id>.json` (mode 0600, replaced atomically), beside
//! `<id>.lock`, which the live run holds an exclusive `flock` on for its whole life: a journal
//! whose lock can be taken belongs to a dead run, whatever became of its pid. The journal is the
//! process's (its pid, its lock), so it is kept process-wide like the signal handlers; each step
//! names the engine it happened on, so `recover` talks to the right one.
//!
//! This module also knows the window in which the only copy of restored data is a scratch
//! volume ([`only_copy`]): the signal handler asks it before it gives up on a run.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::archive::VolumeInfo;

/// The engine a step happened on, as `recover` finds it again: the context's name and where its
/// daemon listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRef {
    pub context: String,
    pub host: String,
}

impl std::fmt::Display for EngineRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "context `{}` ({})", self.context, self.host)
    }
}

/// Where a restore stands, which says what undoing or finishing it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The target did not exist: this run created it and is filling it. Undo: remove it.
    Created,
    /// The target was empty and is being filled. Undo: empty it again.
    Filling,
    /// The scratch volume is being filled; the target is untouched. Undo: remove the scratch.
    Scratch,
    /// The scratch volume holds the complete, verified data and the target is being emptied and
    /// filled from it. Finish: empty the target, copy the scratch in, remove the scratch.
    Swap,
}

/// A step to undo (or finish) if the run dies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// A running container this run stopped.
    Stopped {
        engine: EngineRef,
        id: String,
        name: String,
    },
    /// A running container this run paused.
    Paused {
        engine: EngineRef,
        id: String,
        name: String,
    },
    /// A helper container, by the unique name it is created with (recorded before it exists).
    /// Helpers do not know their engine: `recover` asks each engine of the run.
    Helper { name: String },
    /// A file being written under a temporary name.
    Partial { path: PathBuf },
    /// A scratch volume of the run's own (a test restore): nothing but a leftover.
    Scratch { engine: EngineRef, volume: String },
    /// A restore into `target` (through `scratch` with `--force`).
    Restore {
        engine: EngineRef,
        target: String,
        /// The target's driver, options and labels, to create it again if the run died between
        /// removing and creating it.
        like: VolumeInfo,
        scratch: Option<String>,
        phase: Phase,
        /// The verified stream kept in a file for the copy into the target, on an engine that
        /// cannot read owners back (Podman): a copy out of the scratch volume would lose them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spool: Option<Spooled>,
    },
}

/// A restore's stream kept in a file of the journal directory ([`spool_file`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spooled {
    pub path: PathBuf,
    /// Its length once whole and synced (recorded with [`Phase::Swap`]); a file of another
    /// length is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
}

impl Spooled {
    /// The file, if it is there, whole: the length recorded when it was complete.
    pub fn open_whole(&self) -> Result<File> {
        let file = File::open(&self.path)
            .with_context(|| format!("opening the kept stream {}", self.path.display()))?;
        let len = file.metadata()?.len();
        match self.len {
            Some(whole) if whole == len => Ok(file),
            Some(whole) => anyhow::bail!(
                "the kept stream {} holds {len} bytes, not {whole}",
                self.path.display()
            ),
            None => anyhow::bail!(
                "the kept stream {} was never completed",
                self.path.display()
            ),
        }
    }

    /// Removes the file (gone already is fine).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Step {
    /// What was left, for people: one line.
    pub fn describe(&self) -> String {
        match self {
            Step::Stopped { engine, name, .. } => {
                format!("container `{name}` was stopped (on {engine})")
            }
            Step::Paused { engine, name, .. } => {
                format!("container `{name}` was paused (on {engine})")
            }
            Step::Helper { name } => format!("helper container `{name}` may be left"),
            Step::Partial { path } => format!("partial file {} may be left", path.display()),
            Step::Scratch { engine, volume } => {
                format!("scratch volume `{volume}` may be left (on {engine})")
            }
            Step::Restore {
                engine,
                target,
                scratch,
                phase,
                ..
            } => match (phase, scratch) {
                (Phase::Created, _) => format!(
                    "volume `{target}` was created by the restore and holds an INCOMPLETE copy \
                     (on {engine})"
                ),
                (Phase::Filling, _) => format!(
                    "volume `{target}` was empty and may hold an INCOMPLETE copy (on {engine})"
                ),
                (Phase::Scratch, Some(s)) => format!(
                    "scratch volume `{s}` of an unfinished restore into `{target}` is left; \
                     `{target}` is untouched (on {engine})"
                ),
                (Phase::Swap, Some(s)) => format!(
                    "volume `{target}` was being replaced: the restored, verified data is in \
                     volume `{s}` (on {engine})"
                ),
                (_, None) => format!("a restore into `{target}` was cut short (on {engine})"),
            },
        }
    }
}

/// One journal file: the run and the steps it has not undone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Doc {
    pub pid: u32,
    /// The run's id (`docker::owner`): what it created carries it, and `recover` removes only
    /// volumes that do.
    #[serde(default)]
    pub run: String,
    pub started: DateTime<Utc>,
    /// The command line of the run, for messages.
    pub command: String,
    /// Every engine the run connected to (helpers are looked for on each).
    #[serde(default)]
    pub engines: Vec<EngineRef>,
    /// Step id to step.
    #[serde(default)]
    pub steps: BTreeMap<u64, Step>,
}

/// The journal directory: `$XDG_STATE_HOME/docker-volume-backup/runs`, beside the schedules'
/// logs.
pub fn dir() -> Result<PathBuf> {
    Ok(crate::schedule::Dirs::of_user()?.state.join("runs"))
}

// ---- the live run's journal ----

struct Live {
    doc: Doc,
    next: u64,
    /// The open lock file (held while the process lives) and the paths, once a step was
    /// written.
    files: Option<Files>,
    /// The journal could not be written: said once, then the run goes on unprotected.
    broken: bool,
}

struct Files {
    _lock: File,
    lock_path: PathBuf,
    json_path: PathBuf,
}

static LIVE: Mutex<Option<Live>> = Mutex::new(None);
static ONLY_COPY: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Option<Live>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the journal of this run; `command` is its command line, for messages, and `run` the
/// run's id (what the run creates is labelled with it). Nothing is written until a step is.
pub fn begin(command: &str, run: &str) {
    *live() = Some(Live {
        doc: Doc {
            pid: std::process::id(),
            run: run.to_string(),
            started: Utc::now(),
            command: command.to_string(),
            engines: Vec::new(),
            steps: BTreeMap::new(),
        },
        next: 1,
        files: None,
        broken: false,
    });
}

/// Notes an engine the run talks to.
pub fn engine(engine: EngineRef) {
    let mut guard = live();
    let Some(live) = guard.as_mut() else { return };
    if !live.doc.engines.contains(&engine) {
        live.doc.engines.push(engine);
        if !live.doc.steps.is_empty() {
            write(live);
        }
    }
}

/// A recorded step: cleared when the mark is dropped (the step was undone, or it never needs
/// undoing), kept for `recover` with [`Mark::keep`] (undoing it failed).
#[must_use]
#[derive(Debug)]
pub struct Mark {
    id: Option<u64>,
}

impl Mark {
    /// Leaves the step in the journal: it still needs undoing.
    pub fn keep(mut self) {
        self.id = None;
    }

    /// Replaces the recorded step (a restore moving to its next phase).
    pub fn update(&self, step: Step) {
        let Some(id) = self.id else { return };
        let mut guard = live();
        if let Some(live) = guard.as_mut() {
            live.doc.steps.insert(id, step);
            write(live);
        }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut guard = live();
        if let Some(live) = guard.as_mut() {
            if live.doc.steps.remove(&id).is_some() {
                write(live);
            }
        }
    }
}

/// Writes `step` down before it is taken; the mark clears it.
pub fn record(step: Step) -> Mark {
    let mut guard = live();
    let Some(live) = guard.as_mut() else {
        return Mark { id: None };
    };
    let id = live.next;
    live.next += 1;
    live.doc.steps.insert(id, step);
    write(live);
    Mark { id: Some(id) }
}

/// A file for a restore's stream in the journal directory (mode 0600), named after this run's
/// journal (`<id>~XXXXXX.spool`) so that a run killed before its journal names the file leaves
/// nothing that [`leftovers_in`] does not remove. Removed when dropped; `NamedTempFile::keep`
/// leaves it for `recover`. Without a journal (no run begun) it goes to the temporary directory.
pub fn spool_file() -> Result<tempfile::NamedTempFile> {
    let mut guard = live();
    let Some(live) = guard.as_mut().filter(|l| !l.broken) else {
        return tempfile::Builder::new()
            .suffix(".spool")
            .tempfile()
            .context("creating a temporary file");
    };
    if live.files.is_none() {
        live.files = Some(open_files(&live.doc)?);
    }
    let files = live.files.as_ref().expect("opened above");
    let dir = files.json_path.parent().expect("in the journal directory");
    let id = files
        .json_path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("named by the tool");
    tempfile::Builder::new()
        .prefix(&format!("{id}~"))
        .suffix(".spool")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))
}

/// At the end of the run: a journal with nothing left is removed; one with steps left (an undo
/// failed and was reported) stays for the next run to show and `recover` to finish.
pub fn end() {
    let mut guard = live();
    if let Some(live) = guard.take() {
        if live.doc.steps.is_empty() {
            if let Some(files) = &live.files {
                let _ = std::fs::remove_file(&files.json_path);
                let _ = std::fs::remove_file(&files.lock_path);
            }
        }
    }
}

fn write(live: &mut Live) {
    if live.broken {
        return;
    }
    if let Err(e) = try_write(live) {
        live.broken = true;
        crate::output::warn(&format!(
            "cannot write the run's journal: {e:#}; if this run is killed, what it leaves \
             will not be reported"
        ));
    }
}

fn try_write(live: &mut Live) -> Result<()> {
    if live.files.is_none() {
        if live.doc.steps.is_empty() {
            return Ok(());
        }
        live.files = Some(open_files(&live.doc)?);
    }
    let files = live.files.as_ref().expect("opened above");
    if live.doc.steps.is_empty() {
        // Nothing to undo: no journal (the lock file stays until the end of the run).
        return match std::fs::remove_file(&files.json_path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        };
    }
    write_atomic(&files.json_path, &serde_json::to_vec_pretty(&live.doc)?)
}

fn open_files(doc: &Doc) -> Result<Files> {
    let dir = dir()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let id = format!("{}-{}", doc.started.format("%Y%m%dT%H%M%S%.6fZ"), doc.pid);
    let lock_path = dir.join(format!("{id}.lock"));
    let lock = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    if !try_lock(&lock) {
        anyhow::bail!("cannot lock {}", lock_path.display());
    }
    Ok(Files {
        _lock: lock,
        lock_path,
        json_path: dir.join(format!("{id}.json")),
    })
}

/// Writes `bytes` to `path` through a temporary file beside it (mode 0600), synced and renamed:
/// a reader sees the old journal or the new one, never half of one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Takes an exclusive `flock` without waiting; false if another process holds it.
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a valid open descriptor; no memory is passed.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

// ---- the window where the only copy is a scratch volume ----

/// Marks the window in which the only copy of restored data is a scratch volume: a second
/// Ctrl-C does not end the run then. `where_` says where the data is, for the message.
pub struct OnlyCopy {
    text: String,
}

pub fn only_copy(where_: String) -> OnlyCopy {
    ONLY_COPY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(where_.clone());
    OnlyCopy { text: where_ }
}

impl Drop for OnlyCopy {
    fn drop(&mut self) {
        let mut list = ONLY_COPY.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.iter().position(|t| *t == self.text) {
            list.remove(i);
        }
    }
}

/// Where the data is, if the run is in such a window now.
pub fn only_copy_now() -> Option<String> {
    let list = ONLY_COPY.lock().unwrap_or_else(|e| e.into_inner());
    (!list.is_empty()).then(|| list.join("; "))
}

// ---- journals of dead runs ----

/// The journal of a dead run, locked by this process while it is held.
pub struct Leftover {
    pub doc: Doc,
    json_path: PathBuf,
    lock_path: PathBuf,
    _lock: Option<File>,
}

impl Leftover {
    /// Saves what is still left, or removes the journal when nothing is.
    pub fn save(&self) -> Result<()> {
        if self.doc.steps.is_empty() {
            self.remove();
            return Ok(());
        }
        write_atomic(&self.json_path, &serde_json::to_vec_pretty(&self.doc)?)
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.json_path);
        let _ = std::fs::remove_file(&self.lock_path);
    }

    pub fn path(&self) -> &Path {
        &self.json_path
    }
}

/// The journals of dead runs in `dir`, oldest first, each locked while the value lives. Runs
/// that are alive (their lock is held) are skipped; empty leftovers are removed.
pub fn leftovers_in(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // A run killed with nothing to undo leaves only its lock file: removed once no one holds it
    // (and not in the moment between a new run creating it and locking it).
    let old = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() >= 60))
    };
    for lock_path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "lock"))
    {
        if !lock_path.with_extension("json").exists()
            && old(lock_path)
            && File::open(lock_path).is_ok_and(|f| try_lock(&f))
        {
            let _ = std::fs::remove_file(lock_path);
        }
    }
    // A kept stream whose run left no journal (killed before naming it, or its journal is done)
    // and holds no lock any more.
    for spool in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "spool"))
    {
        let Some(id) = spool
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('~'))
            .map(|(id, _)| id)
        else {
            continue;
        };
        let lock_path = dir.join(format!("{id}.lock"));
        let held = File::open(&lock_path).is_ok_and(|f| !try_lock(&f));
        if !dir.join(format!("{id}.json")).exists() && !held && old(spool) {
            let _ = std::fs::remove_file(spool);
        }
    }
    let mut names: Vec<PathBuf> = paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let mut found = Vec::new();
    for json_path in names {
        let lock_path = json_path.with_extension("lock");
        let lock = match File::open(&lock_path) {
            Ok(f) if try_lock(&f) => Some(f),
            // The live run holds it.
            Ok(_) => continue,
            // Killed between the two files, or an older journal: no one holds it.
            Err(_) => None,
        };
        let Ok(bytes) = std::fs::read(&json_path) else {
            continue;
        };
        let doc: Doc = match serde_json::from_slice(&bytes) {
            Ok(doc) => doc,
            Err(e) => {
                crate::output::warn(&format!(
                    "cannot read the journal {}: {e}; remove it if it is not needed",
                    json_path.display()
                ));
                continue;
            }
        };
        let left = Leftover {
            doc,
            json_path,
            lock_path,
            _lock: lock,
        };
        if left.doc.steps.is_empty() {
            left.remove();
            continue;
        }
        found.push(left);
    }
    found
}

/// The journals of dead runs in the user's state directory.
pub fn leftovers() -> Vec<Leftover> {
    match dir() {
        Ok(dir) => leftovers_in(&dir),
        Err(_) => Vec::new(),
    }
}

/// The warning the next run shows about what dead runs left, or `None`.
pub fn warning(left: &[Leftover], recover: &str) -> Option<String> {
    if left.is_empty() {
        return None;
    }
    let mut msg = String::new();
    for l in left {
        msg.push_str(&format!(
            "a run of `{}` (pid {}, started {}) ended without cleaning up:\n",
            l.doc.command,
            l.doc.pid,
            l.doc.started.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        for step in l.doc.steps.values() {
            msg.push_str(&format!("  - {}\n", step.describe()));
        }
    }
    msg.push_str(&format!(
        "  run `{recover}` to restart the containers, finish or undo the restore, and remove \
         the helpers and partial files"
    ));
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn doc() -> Doc {
        Doc {
            pid: 1,
            run: "0123456789abcdef".into(),
            started: Utc::now(),
            command: "save app --stop".into(),
            engines: vec![],
            steps: BTreeMap::from([(
                3,
                Step::Stopped {
                    engine: EngineRef {
                        context: "default".into(),
                        host: "unix:///var/run/docker.sock".into(),
                    },
                    id: "abc".into(),
                    name: "app".into(),
                },
            )]),
        }
    }

    #[test]
    fn a_written_journal_is_private_and_read_back_when_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        write_atomic(&json, &serde_json::to_vec(&doc()).unwrap()).unwrap();
        let mode = std::fs::metadata(&json).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A lock held by a live run hides the journal.
        let lock = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.path().join("r.lock"))
            .unwrap();
        assert!(try_lock(&lock));
        assert!(leftovers_in(dir.path()).is_empty());
        drop(lock);
        let left = leftovers_in(dir.path());
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].doc.steps.len(), 1);
        let text = warning(&left, "docker volumebackup recover").unwrap();
        assert!(text.contains("container `app` was stopped"), "{text}");
        assert!(text.contains("`docker volumebackup recover`"), "{text}");
        // While one holder has it, a second look skips it.
        assert!(leftovers_in(dir.path()).is_empty());
        drop(left);
        let mut left = leftovers_in(dir.path());
        left[0].doc.steps.clear();
        left[0].save().unwrap();
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        // A lone lock file: removed unless held.
        let lone = dir.path().join("s.lock");
        let held = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lone)
            .unwrap();
        assert!(try_lock(&held));
        leftovers_in(dir.path());
        assert!(lone.exists(), "a live run's lock stays");
        drop(held);
        leftovers_in(dir.path());
        assert!(lone.exists(), "a lock just made is left to its run");
        let f = File::options().write(true).open(&lone).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
            .unwrap();
        drop(f);
        leftovers_in(dir.path());
        assert!(!lone.exists(), "a dead run's lone lock is removed");
    }

    #[test]
    fn a_kept_stream_stays_while_its_journal_or_run_does() {
        let dir = tempfile::tempdir().unwrap();
        let aged = |p: &Path| {
            let f = File::options().write(true).open(p).unwrap();
            f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(120))
                .unwrap();
        };
        let spool = |id: &str| {
            let p = dir.path().join(format!("{id}~x1y2z3.spool"));
            std::fs::write(&p, b"stream").unwrap();
            aged(&p);
            p
        };
        // Named in a dead run's journal: kept for recover.
        write_atomic(
            &dir.path().join("a.json"),
            &serde_json::to_vec(&doc()).unwrap(),
        )
        .unwrap();
        let named = spool("a");
        // Of a live run that has not written its journal yet: kept.
        let live = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.path().join("b.lock"))
            .unwrap();
        assert!(try_lock(&live));
        let living = spool("b");
        // Of a run that is gone and left no journal: removed, once old.
        let orphan = spool("c");
        let fresh = dir.path().join("d~q.spool");
        std::fs::write(&fresh, b"").unwrap();
        drop(leftovers_in(dir.path()));
        assert!(named.exists() && living.exists() && fresh.exists());
        assert!(!orphan.exists());
        // Its length is checked before it is used.
        let whole = Spooled {
            path: named.clone(),
            len: Some(6),
        };
        assert!(whole.open_whole().is_ok());
        let cut = Spooled {
            path: named.clone(),
            len: Some(7),
        };
        assert!(format!("{:#}", cut.open_whole().unwrap_err()).contains("holds 6 bytes, not 7"));
        let unfinished = Spooled {
            path: named,
            len: None,
        };
        assert!(unfinished.open_whole().is_err());
    }

    #[test]
    fn steps_round_trip_through_json() {
        let step = Step::Restore {
            engine: EngineRef {
                context: "prod".into(),
                host: "ssh://h".into(),
            },
            target: "db".into(),
            like: VolumeInfo::default(),
            scratch: Some("dvb-scratch-db-1".into()),
            phase: Phase::Swap,
            spool: None,
        };
        let text = serde_json::to_string(&step).unwrap();
        assert!(text.contains("\"phase\":\"swap\""), "{text}");
        assert_eq!(serde_json::from_str::<Step>(&text).unwrap(), step);
        assert!(step.describe().contains("`dvb-scratch-db-1`"));
    }
}
