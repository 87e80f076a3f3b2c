//! Locks: one per engine and volume, so that two runs never read or write a volume at once (two
//! `save --stop` would otherwise restart the application under each other's reads).
//!
//! A lock is a never-started container from the empty helper image, named after the volume
//! (`dvb-lock-<volume>`) and labelled with its owner (`docker::owner`). Container names are
//! unique on an engine and creating one is atomic, so the lock holds across every host that uses
//! the engine: a second run's create fails with 409 (Podman: 500, "already in use"), and it waits
//! (bounded by [`Wait`]) or refuses. The holder writes a heartbeat into its lock container every
//! few seconds.
//!
//! A lock whose run is gone is taken over, with a message: on the same machine, its process is
//! dead (or its pid belongs to another process now); from another machine, its heartbeat has
//! not changed for [`STALE_AFTER`] as the waiter saw it (clocks of other hosts are not trusted).
//! Locks are taken in order of name, so that two runs over the same volumes cannot deadlock.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions,
    RemoveContainerOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::owner::{Liveness, Owner};
use super::{helper, is_not_found, labels, Engine};
use crate::error::{Kind, UserError};
use crate::output;

/// How often the holder writes its heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A lock of another machine whose heartbeat did not change for this long is taken over.
pub const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a waiting run tries again.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// The heartbeat file in the lock container.
const HEARTBEAT_FILE: &str = "heartbeat";

/// What to do when another run holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait until it is released (the default).
    Forever,
    /// Wait at most this long, then fail.
    AtMost(Duration),
    /// Refuse at once (`--no-wait`).
    No,
}

/// The locks a run holds; [`Held::around`] (or the caller, with [`Held::release`]) releases them
/// when the work ends, on every path.
#[must_use = "locks are released by Held::around or Held::release"]
pub struct Held {
    locks: Vec<Lock>,
}

struct Lock {
    docker: Docker,
    id: String,
    name: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// The lock container's name for `volume`: `dvb-lock-<volume>`, or a hash of a very long name.
/// Volume names and container names share their alphabet, so every volume name fits.
pub fn lock_name(volume: &str) -> String {
    if volume.len() <= 200 {
        return format!("dvb-lock-{volume}");
    }
    let hash = blake3::hash(volume.as_bytes()).to_hex();
    let short: String = volume.chars().take(100).collect();
    format!("dvb-lock-{short}-{}", &hash[..32])
}

impl Held {
    /// No locks (yet).
    pub fn none() -> Held {
        Held { locks: Vec::new() }
    }

    /// Takes the locks of `volumes` on `engine` for `command`, in order of name, waiting for
    /// other runs as `wait` says. Ctrl-C while waiting ends the wait; locks taken so far are
    /// released on every failure.
    pub async fn acquire(
        engine: &Engine,
        volumes: &[String],
        command: &str,
        wait: Wait,
        cancel: &CancellationToken,
    ) -> Result<Held> {
        let mut held = Held::none();
        if let Err(e) = held.add(engine, volumes, command, wait, cancel).await {
            held.release().await;
            return Err(e);
        }
        Ok(held)
    }

    /// Takes the locks of `volumes` on `engine` too (in order of name); on failure the caller
    /// releases what is held.
    pub async fn add(
        &mut self,
        engine: &Engine,
        volumes: &[String],
        command: &str,
        wait: Wait,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let sorted: BTreeSet<&String> = volumes.iter().collect();
        if sorted.is_empty() {
            return Ok(());
        }
        helper::ensure_image(&engine.docker).await?;
        for volume in sorted {
            if let Some(lock) = take(engine, volume, command, wait, cancel).await? {
                self.locks.push(lock);
            }
        }
        // Where the fault tests hold a lock with a live (or killed) run.
        fail::fail_point!("locked");
        Ok(())
    }

    /// Runs `work`, then releases the locks, whatever the work's outcome.
    pub async fn around<T>(self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let result = work.await;
        self.release().await;
        result
    }

    /// Releases every lock (in the reverse order); a failure is reported, not fatal.
    pub async fn release(self) {
        for lock in self.locks.into_iter().rev() {
            lock.heartbeat.abort();
            let options = RemoveContainerOptions {
                force: true,
                ..Default::default()
            };
            match lock.docker.remove_container(&lock.id, Some(options)).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => output::warn(&format!(
                    "could not release lock {}: {e}; remove it with `docker rm -f {}`",
                    lock.name, lock.name
                )),
            }
        }
    }
}

/// What a waiting run knows about the holder's heartbeat: its last value and when (on this
/// run's clock) it last changed.
struct Watch {
    id: String,
    beat: Option<String>,
    since: Instant,
}

/// Takes one lock; `None` when this run holds it already (two contexts that reach one engine).
async fn take(
    engine: &Engine,
    volume: &str,
    command: &str,
    wait: Wait,
    cancel: &CancellationToken,
) -> Result<Option<Lock>> {
    let docker = &engine.docker;
    let name = lock_name(volume);
    let started = Instant::now();
    let mut announced = false;
    let mut watch: Option<Watch> = None;
    loop {
        match create(docker, &name, volume, command).await {
            Ok(id) => {
                if announced {
                    output::message(&format!(
                        "locked volume `{volume}` after waiting {:.1} s",
                        started.elapsed().as_secs_f64()
                    ));
                }
                let heartbeat = tokio::spawn(beat(docker.clone(), id.clone()));
                return Ok(Some(Lock {
                    docker: docker.clone(),
                    id,
                    name,
                    heartbeat,
                }));
            }
            Err(CreateError::Exists) => {}
            Err(CreateError::Other(e)) => {
                return Err(e.context(format!("locking volume `{volume}`")));
            }
        }
        let Some(holder) = inspect(docker, &name).await? else {
            // Released between our create and our look: try again at once.
            continue;
        };
        let owner = Owner::from_labels(&holder.labels);
        let what = describe_holder(&holder.labels, owner.as_ref());
        let gone = match &owner {
            Some(o) if o.is_this_run() => return Ok(None),
            Some(o) => match o.liveness() {
                Liveness::Gone => Some(format!("its process {} is gone", o.pid)),
                Liveness::Alive => None,
                Liveness::Unknown => heartbeat_stopped(docker, &holder.id, &mut watch).await,
            },
            // Not one of ours (or made by hand): only its heartbeat can tell.
            None => heartbeat_stopped(docker, &holder.id, &mut watch).await,
        };
        if let Some(why) = gone {
            output::warn(&format!(
                "taking over the lock of volume `{volume}` left by {what}: {why}"
            ));
            remove_by_id(docker, &holder.id).await?;
            continue;
        }
        let refuse = |why: String| -> anyhow::Error {
            UserError::new(
                Kind::Locked,
                format!("volume `{volume}` is locked by {what}{why}"),
            )
            .hint(format!(
                "wait for that run to end (--wait DURATION waits up to DURATION); if it is \
                 gone without a trace, `docker rm {name}` releases the lock"
            ))
            .into()
        };
        let limit = match wait {
            Wait::No => return Err(refuse(String::new())),
            Wait::AtMost(limit) => {
                if started.elapsed() >= limit {
                    return Err(refuse(format!(
                        ", still after waiting {}",
                        humantime::format_duration(limit)
                    )));
                }
                Some(limit)
            }
            Wait::Forever => None,
        };
        if !announced {
            let bound = match limit {
                Some(limit) => format!("up to {}", humantime::format_duration(limit)),
                None => "until it ends (--wait DURATION bounds this, --no-wait refuses)".into(),
            };
            output::message(&format!(
                "volume `{volume}` is locked by {what}; waiting {bound}"
            ));
            announced = true;
        }
        let pause = match limit {
            Some(limit) => RETRY_EVERY.min(limit.saturating_sub(started.elapsed())),
            None => RETRY_EVERY,
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = cancel.cancelled() => return Err(UserError::interrupted().into()),
        }
    }
}

enum CreateError {
    Exists,
    Other(anyhow::Error),
}

/// Removes the locks that the run `run` (known to be dead: `recover` holds its journal) left on
/// this engine; returns the volumes they were for. Without this they stay until the next run that
/// locks the volume takes them over.
pub async fn remove_left_by(docker: &Docker, run: &str) -> Result<Vec<String>> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}=lock", labels::HELPER),
                format!("{}={run}", labels::RUN),
            ],
        )])),
        ..Default::default()
    };
    let list = docker
        .list_containers(Some(options))
        .await
        .context("listing the locks of the run")?;
    let mut volumes = Vec::new();
    for c in list {
        let labels = c.labels.unwrap_or_default();
        // The engine filtered; a lock of another run is never touched whatever it answered.
        if labels.get(labels::RUN).map(String::as_str) != Some(run)
            || labels.get(labels::HELPER).map(String::as_str) != Some("lock")
        {
            continue;
        }
        let Some(id) = c.id else { continue };
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match docker.remove_container(&id, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(e).context("removing a lock the run left"),
        }
        volumes.push(labels.get(labels::LOCK_VOLUME).cloned().unwrap_or(id));
    }
    Ok(volumes)
}

/// Creates the lock container; `Exists` when another holds the name.
async fn create(
    docker: &Docker,
    name: &str,
    volume: &str,
    command: &str,
) -> Result<String, CreateError> {
    let mut labels = Owner::this_run().labels();
    labels.insert(labels::HELPER.into(), "lock".into());
    labels.insert(labels::LOCK_VOLUME.into(), volume.into());
    labels.insert(labels::LOCK_COMMAND.into(), command.into());
    let body = ContainerCreateBody {
        image: Some(helper::helper_image()),
        cmd: Some(vec!["/never-started".into()]),
        labels: Some(labels),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.to_string()),
        ..Default::default()
    };
    match docker.create_container(Some(options), body).await {
        Ok(created) => Ok(created.id),
        Err(e) if super::is_name_conflict(&e) => Err(CreateError::Exists),
        Err(e) => Err(CreateError::Other(e.into())),
    }
}

struct Holder {
    id: String,
    labels: HashMap<String, String>,
}

async fn inspect(docker: &Docker, name: &str) -> Result<Option<Holder>> {
    match docker.inspect_container(name, None).await {
        Ok(c) => Ok(Some(Holder {
            id: c.id.unwrap_or_default(),
            labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
        })),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("inspecting lock {name}")),
    }
}

/// `save run 0f3c... (pid 4121 on host build-1, started ...)`.
fn describe_holder(labels: &HashMap<String, String>, owner: Option<&Owner>) -> String {
    let command = labels
        .get(labels::LOCK_COMMAND)
        .map(|c| format!("`{c}` "))
        .unwrap_or_default();
    match owner {
        Some(o) => format!("{command}{}", o.describe()),
        None => "a container without an owner".into(),
    }
}

/// Removes a stale lock by its id (never by name: another run may have taken the name since).
async fn remove_by_id(docker: &Docker, id: &str) -> Result<()> {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e).context("removing a stale lock"),
    }
}

/// Whether the holder's heartbeat has stood still for [`STALE_AFTER`] on this run's clock; the
/// reason if so.
async fn heartbeat_stopped(docker: &Docker, id: &str, watch: &mut Option<Watch>) -> Option<String> {
    let beat = read_beat(docker, id).await;
    let now = Instant::now();
    match watch {
        Some(w) if w.id == id && w.beat == beat => {
            let still = now.duration_since(w.since);
            (still >= stale_after())
                .then(|| format!("its heartbeat has not changed for {} s", still.as_secs()))
        }
        _ => {
            *watch = Some(Watch {
                id: id.to_string(),
                beat,
                since: now,
            });
            None
        }
    }
}

/// [`STALE_AFTER`]; the fault tests shorten it (`lock-stale-after=return(MILLISECONDS)`).
fn stale_after() -> Duration {
    fail::fail_point!("lock-stale-after", |ms: Option<String>| {
        Duration::from_millis(ms.and_then(|m| m.parse().ok()).unwrap_or(1000))
    });
    STALE_AFTER
}

/// The holder's heartbeat (a counter and its clock), if it wrote one.
async fn read_beat(docker: &Docker, id: &str) -> Option<String> {
    let options = DownloadFromContainerOptions {
        path: format!("/{HEARTBEAT_FILE}"),
    };
    let mut body = docker.download_from_container(id, Some(options));
    let mut tar = Vec::new();
    while let Some(chunk) = body.next().await {
        tar.extend_from_slice(&chunk.ok()?);
        if tar.len() > 64 * 1024 {
            return None;
        }
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).ok()?;
    Some(text)
}

/// Writes the heartbeat into the lock container every [`HEARTBEAT_EVERY`] until aborted.
async fn beat(docker: Docker, id: String) {
    let mut n: u64 = 0;
    loop {
        n += 1;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if let Some(tar) = beat_tar(&format!("{n} {secs}\n"), secs) {
            let options = UploadToContainerOptions {
                path: "/".into(),
                ..Default::default()
            };
            // A missed beat is not fatal: the next one comes soon, and the waiters allow many.
            let _ = docker
                .upload_to_container(&id, Some(options), bollard::body_full(tar.into()))
                .await;
        }
        tokio::time::sleep(HEARTBEAT_EVERY).await;
    }
}

fn beat_tar(text: &str, mtime: u64) -> Option<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    builder
        .append_data(&mut header, HEARTBEAT_FILE, text.as_bytes())
        .ok()?;
    builder.into_inner().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_named_after_its_volume() {
        assert_eq!(lock_name("mydata"), "dvb-lock-mydata");
        let long = "v".repeat(300);
        let name = lock_name(&long);
        assert!(name.len() < 150, "{name}");
        assert_ne!(name, lock_name(&"v".repeat(301)));
    }

    #[test]
    fn the_heartbeat_is_a_one_file_tar() {
        let tar = beat_tar("3 1700000000\n", 1_700_000_000).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some(HEARTBEAT_FILE));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        assert_eq!(text, "3 1700000000\n");
    }
}
