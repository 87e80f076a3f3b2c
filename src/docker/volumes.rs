//! Volumes: listing and looking them up, who uses them, whether they are empty, creating and
//! emptying them. Every listing leaves the tool's own scratch volumes out. Every volume the tool
//! creates carries the run's label (`docker::owner`), and nothing is removed unless it does: the
//! engine's create answers "created" for a volume that already exists, so a name alone does not
//! say whose a volume is.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use bollard::models::{ContainerCreateBody, Volume, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, ListContainersOptions,
    ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions, StartContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::helper::{container_body, with_helper, Helper, MOUNT_DIR};
use super::owner::{Liveness, Owner};
use super::{containers, is_not_found, labels, Engine};
use crate::archive::VolumeInfo;
use crate::error::{Kind, UserError};

/// The volumes that match `filters` (the engine's `key=value` syntax; empty for all of them), in
/// the engine's order, without the tool's own scratch volumes.
pub async fn list(docker: &Docker, filters: HashMap<String, Vec<String>>) -> Result<Vec<Volume>> {
    let options = ListVolumesOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let listed = docker
        .list_volumes(Some(options))
        .await
        .context("listing volumes")?;
    Ok(listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !v.labels.contains_key(labels::HELPER))
        .collect())
}

/// The volume, or `None` when the engine has no volume by that name.
pub async fn inspect(docker: &Docker, name: &str) -> Result<Option<Volume>> {
    match docker.inspect_volume(name).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("inspecting volume `{name}`")),
    }
}

/// The volume, or a "not found" error that names the engine.
pub async fn require(docker: &Docker, name: &str, engine: &str) -> Result<Volume> {
    inspect(docker, name).await?.ok_or_else(|| {
        UserError::new(Kind::NotFound, format!("no volume `{name}` on {engine}"))
            .hint("`docker volume ls` lists the volumes; `docker volumebackup ls` shows more")
            .into()
    })
}

/// What the manifest records about a volume.
pub fn info(v: &Volume) -> VolumeInfo {
    VolumeInfo {
        name: v.name.clone(),
        driver: v.driver.clone(),
        options: v.options.clone(),
        // Which run created it is not the volume's to carry along.
        labels: v
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with(labels::RUN))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// Whether the current run created the volume (it carries this run's label).
pub fn is_ours(v: &Volume) -> bool {
    made_by(v, &Owner::this_run().run)
}

/// Whether run `run` created the volume (its run label; `recover` asks this about a killed run).
pub fn made_by(v: &Volume, run: &str) -> bool {
    v.labels.get(labels::RUN).is_some_and(|r| r == run)
}

/// A container (not one of ours) that mounts a volume.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub id: String,
    pub image: String,
    /// In use: running, paused or restarting ([`containers::State::in_use`]).
    pub running: bool,
}

/// Containers that mount `volume`, running or not, helpers excluded.
pub async fn users(docker: &Docker, volume: &str) -> Result<Vec<User>> {
    Ok(containers::mounting(docker, volume)
        .await?
        .into_iter()
        .map(|c| User {
            running: c.state.in_use(),
            name: c.name,
            id: c.id,
            image: c.image,
        })
        .collect())
}

/// Whether the volume holds anything besides its root directory. Reads only the first two tar
/// headers of the engine's stream, through a read-only helper that is removed again.
pub async fn is_empty(engine: &Engine, volume: &str) -> Result<bool> {
    let docker = &engine.docker;
    with_helper(engine, volume, true, async |helper| {
        first_entries_empty(docker, helper).await
    })
    .await
}

/// Whether `rel` (a path inside the volume, `a/b`) exists in it, through a read-only helper.
pub async fn path_exists(engine: &Engine, volume: &str, rel: &str) -> Result<bool> {
    let docker = &engine.docker;
    with_helper(engine, volume, true, async |helper| {
        let options = DownloadFromContainerOptions {
            path: format!("/{MOUNT_DIR}/{rel}"),
        };
        let mut body = docker.download_from_container(&helper.id, Some(options));
        match body.next().await {
            Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })) => Ok(false),
            Some(Err(e)) => {
                Err(anyhow::Error::new(e).context(format!("looking for {rel} in the volume")))
            }
            _ => Ok(true),
        }
    })
    .await
}

async fn first_entries_empty(docker: &Docker, helper: &Helper) -> Result<bool> {
    // On every engine that path's stream starts with the root's own entry.
    let options = DownloadFromContainerOptions {
        path: helper.endpoints().download_path(),
    };
    let mut body = docker.download_from_container(&helper.id, Some(options));
    let mut head = Vec::with_capacity(1024);
    while head.len() < 1024 {
        match body.next().await {
            Some(chunk) => head.extend_from_slice(&chunk.context("reading the volume")?),
            None => break,
        }
    }
    // The first entry is the root `./` (no content); an end-of-archive block follows it in an
    // empty volume.
    Ok(head.len() < 1024 || head[512..1024].iter().all(|&b| b == 0))
}

/// Creates a volume with the given driver, options and labels, and this run's label. The engine
/// answers a create of an existing volume with that volume: one without this run's label was
/// made by someone else in the meantime, and is refused (and left alone).
pub async fn create(docker: &Docker, name: &str, like: &VolumeInfo) -> Result<()> {
    let mut labels = like.labels.clone();
    labels.insert(labels::RUN.to_string(), Owner::this_run().run.clone());
    create_labelled(docker, name, like, labels).await
}

async fn create_labelled(
    docker: &Docker,
    name: &str,
    like: &VolumeInfo,
    labels: HashMap<String, String>,
) -> Result<()> {
    let request = VolumeCreateRequest {
        name: Some(name.to_string()),
        driver: Some(if like.driver.is_empty() {
            "local".to_string()
        } else {
            like.driver.clone()
        }),
        driver_opts: Some(like.options.clone()),
        labels: Some(labels),
        ..Default::default()
    };
    let created = docker
        .create_volume(request)
        .await
        .with_context(|| format!("creating volume `{name}` (driver {})", like.driver))?;
    if !is_ours(&created) {
        return Err(not_ours(
            name,
            "was created by someone else at the same moment",
        ));
    }
    Ok(())
}

/// The error for a volume this run wanted to own and does not.
fn not_ours(name: &str, what: &str) -> anyhow::Error {
    UserError::new(
        Kind::Refused,
        format!("volume `{name}` {what}; this run leaves it alone"),
    )
    .hint("another program or person works with that name: check it, then try again")
    .into()
}

/// Fails unless the volume exists and this run created it: checked before writing into a
/// volume the run made, in case it was replaced meanwhile.
pub async fn check_ours(docker: &Docker, name: &str) -> Result<()> {
    match inspect(docker, name).await? {
        Some(v) if is_ours(&v) => Ok(()),
        Some(_) => Err(not_ours(name, "was replaced by someone else")),
        None => Err(not_ours(name, "was removed by someone else")),
    }
}

/// Creates a scratch volume for `purpose` (labelled like the helpers, so `ls` and `status` skip
/// it, and with this run as its owner) and returns its name: `dvb-<purpose>-<about>-<run>`.
pub async fn create_scratch(docker: &Docker, purpose: &str, about: &str) -> Result<String> {
    let name = scratch_name(purpose, about);
    create_scratch_named(docker, &name).await?;
    Ok(name)
}

/// The name [`create_scratch`] gives, known before the volume exists (to write it down first).
pub fn scratch_name(purpose: &str, about: &str) -> String {
    let short: String = about.chars().take(40).collect();
    let owner = Owner::this_run();
    let run = &owner.run[..8];
    if short.is_empty() {
        format!("dvb-{purpose}-{run}")
    } else {
        format!("dvb-{purpose}-{short}-{run}")
    }
}

/// Creates the scratch volume `name`, labelled like the helpers and with this run as its owner.
pub async fn create_scratch_named(docker: &Docker, name: &str) -> Result<()> {
    let like = VolumeInfo {
        driver: "local".into(),
        ..Default::default()
    };
    let mut labels = Owner::this_run().labels();
    labels.insert(labels::HELPER.to_string(), "scratch".to_string());
    create_labelled(docker, name, &like, labels).await
}

/// Removes a scratch volume of this run; a failure is reported, not fatal (the work is done or
/// lost). Whether it was removed.
pub async fn remove_scratch(docker: &Docker, name: &str) -> bool {
    remove_scratch_made_by(docker, name, &Owner::this_run().run).await
}

/// [`remove_scratch`] for a scratch volume that run `run` made (`recover` finishing a killed run's
/// restore).
pub async fn remove_scratch_made_by(docker: &Docker, name: &str, run: &str) -> bool {
    if let Err(e) = remove_made_by(docker, name, run).await {
        crate::output::warn(&format!(
            "could not remove scratch volume `{name}`: {e:#}; remove it with `docker volume rm {name}`"
        ));
        return false;
    }
    true
}

/// Removes a volume this run created; a volume that is gone is fine, and one without this run's
/// label (someone replaced it) is left alone with an error.
pub async fn remove_ours(docker: &Docker, name: &str) -> Result<()> {
    remove_made_by(docker, name, &Owner::this_run().run).await
}

/// Removes a volume that run `run` created, like [`remove_ours`]: one that is gone is fine, one
/// without that run's label is left alone with an error.
pub async fn remove_made_by(docker: &Docker, name: &str, run: &str) -> Result<()> {
    match inspect(docker, name).await? {
        None => Ok(()),
        Some(v) if made_by(&v, run) => remove(docker, name).await,
        Some(_) => Err(not_ours(
            name,
            "is not the one this run created (someone replaced it)",
        )),
    }
}

/// Removes a volume (ours to remove: a scratch volume, one this run created, or the target of
/// `restore --force` being emptied).
///
/// A helper whose creation reached the engine but whose answer was lost (a connection cut
/// mid-request) still holds the volume, unknown to the caller: when the engine says the volume is
/// in use, the helpers for it of this run and of runs that are gone are removed and the removal
/// is tried once more.
pub async fn remove(docker: &Docker, name: &str) -> Result<()> {
    let options = || Some(RemoveVolumeOptions { force: false });
    match docker.remove_volume(name, options()).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) if remove_stray_helpers(docker, name).await > 0 => {
            docker.remove_volume(name, options()).await
        }
        other => other,
    }
    .with_context(|| format!("removing volume `{name}`"))
}

/// Removes the helper containers that mount `volume` and belong to this run or to a run that is
/// gone; returns how many. Helpers of other runs at work (here or on other hosts) stay.
pub async fn remove_stray_helpers(docker: &Docker, volume: &str) -> usize {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{}={volume}", labels::HELPER_VOLUME)],
        )])),
        ..Default::default()
    };
    let Ok(list) = docker.list_containers(Some(options)).await else {
        return 0;
    };
    let mut removed = 0;
    for c in list {
        let owner = c.labels.as_ref().and_then(Owner::from_labels);
        let stray = owner.is_some_and(|o| o.is_this_run() || o.liveness() == Liveness::Gone);
        let Some(id) = c.id.filter(|_| stray) else {
            continue;
        };
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if docker.remove_container(&id, Some(options)).await.is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Empties a volume. Unused volumes are removed and created again with the same driver, options
/// and labels. A volume that containers still reference cannot be removed, and the archive
/// endpoints cannot delete files, so then the image of one of those containers runs
/// `rm -rf` on it (nothing is pulled; the image is already there). Whatever the driver, the
/// volume is read again afterwards: one that still holds data is an error, never a success.
pub async fn wipe(engine: &Engine, volume: &Volume, users: &[User]) -> Result<()> {
    let docker = &engine.docker;
    can_wipe(volume, users)?;
    empty(docker, volume, users).await?;
    if !is_empty(engine, &volume.name).await? {
        return Err(UserError::new(
            Kind::Refused,
            format!(
                "volume `{}` (driver {}) still holds data after being emptied",
                volume.name, volume.driver
            ),
        )
        .hint("its driver keeps the data of removed volumes: restore into a new volume")
        .into());
    }
    Ok(())
}

/// Where a volume's data lives outside the engine, so that removing the volume keeps it: the
/// local driver mounting a `device` (a bind to a host directory, NFS, CIFS, a disk). tmpfs is the
/// exception: unmounting it drops its content.
pub fn kept_on_removal(volume: &Volume) -> Option<&str> {
    if volume.driver != "local" {
        return None;
    }
    let device = volume.options.get("device").filter(|d| !d.is_empty())?;
    if volume.options.get("type").is_some_and(|t| t == "tmpfs") {
        return None;
    }
    Some(device)
}

/// Refuses, before any work is done, a volume that [`wipe`] could not empty: its data lives
/// outside the engine and no container can run `rm` on it.
pub fn can_wipe(volume: &Volume, users: &[User]) -> Result<()> {
    let Some(device) = kept_on_removal(volume).filter(|_| users.is_empty()) else {
        return Ok(());
    };
    let mut options: Vec<_> = volume
        .options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    options.sort();
    Err(UserError::new(
        Kind::Refused,
        format!(
            "volume `{}` keeps its data in {device} ({}): removing and creating it again deletes \
             nothing, so its old files would stay among the restored ones",
            volume.name,
            options.join(", ")
        ),
    )
    .hint(format!(
        "empty {device} yourself and restore without --force, or restore into a new volume"
    ))
    .into())
}

async fn empty(docker: &Docker, volume: &Volume, users: &[User]) -> Result<()> {
    if users.is_empty() {
        remove(docker, &volume.name).await?;
        return create(docker, &volume.name, &info(volume)).await;
    }
    let mut last_error = None;
    for user in users {
        match wipe_with_image(docker, &volume.name, &user.image).await {
            Ok(()) => return Ok(()),
            Err(e) => last_error = Some(e),
        }
    }
    let names: Vec<_> = users.iter().map(|u| u.name.as_str()).collect();
    Err(UserError::new(
        Kind::Refused,
        format!(
            "cannot empty volume `{}`: containers {} use it and their images offer no shell \
             to delete files with ({})",
            volume.name,
            names.join(", "),
            last_error.map(|e| format!("{e:#}")).unwrap_or_default()
        ),
    )
    .hint("remove those containers, or restore into a new volume")
    .into())
}

async fn wipe_with_image(docker: &Docker, volume: &str, image: &str) -> Result<()> {
    let script = format!("rm -rf /{MOUNT_DIR}/..?* /{MOUNT_DIR}/.[!.]* /{MOUNT_DIR}/*");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), script]),
        cmd: Some(vec![]),
        user: Some("0:0".into()),
        ..container_body(volume, false)
    };
    // Named like a helper and written down before it exists, so a killed run's cleaner is found.
    let name = super::helper::helper_name(volume);
    let _mark = crate::journal::record(crate::journal::Step::Helper { name: name.clone() });
    let options = CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let created = docker
        .create_container(Some(options), body)
        .await
        .with_context(|| format!("creating a cleaner from image {image}"))?;
    let result = async {
        docker
            .start_container(&created.id, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("starting /bin/sh in image {image}"))?;
        let mut wait = docker.wait_container(&created.id, None::<WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(e.into()),
            None => -1,
        };
        anyhow::ensure!(code == 0, "rm in image {image} exited with {code}");
        Ok(())
    }
    .await;
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    result
}
