//! Helper containers: never started, made from an empty image imported on the spot, with one
//! volume mounted at `/volume` ([`MOUNT_DIR`]). The engine's archive endpoints read and write the
//! volume of a created container without starting it, so nothing is pulled and nothing runs (see
//! ARCHITECTURE.md, engine facts). [`with_helper`] scopes one: created, used, removed on every
//! path.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, RemoveContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::labels;
use super::owner::Owner;
use super::{Engine, Flavour};
use crate::journal;

/// Where helper containers mount the volume, relative to `/`. The archive code is handed it to
/// rename entries under it for an upload at `/`.
pub const MOUNT_DIR: &str = "volume";

/// The helper image: empty, labelled, imported when missing.
pub const HELPER_REPO: &str = "docker-volume-backup-helper";
pub const HELPER_TAG: &str = "empty-1";

/// `repo:tag` of the helper image.
pub fn helper_image() -> String {
    format!("{HELPER_REPO}:{HELPER_TAG}")
}

/// Imports the empty helper image unless the engine has it. Idempotent; a `docker image prune -a`
/// that removed it only costs a 40 ms re-import. The tag travels inside `repo`: Podman ignores the
/// `tag` parameter of an import (and would name the image `REPO:latest`), both engines take
/// `repo=REPO:TAG`.
pub async fn ensure_image(docker: &Docker) -> Result<()> {
    if docker.inspect_image(&helper_image()).await.is_ok() {
        return Ok(());
    }
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(helper_image()),
        changes: vec![format!("LABEL {}=true", labels::HELPER)],
        ..Default::default()
    };
    // An empty tar (two zero blocks) is a valid, empty image layer.
    let body = bollard::body_full(vec![0u8; 1024].into());
    let mut progress = docker.create_image(Some(options), Some(body), None);
    while let Some(step) = progress.next().await {
        step.context("importing the empty helper image")?;
    }
    Ok(())
}

/// A created (never started) container with one volume mounted at `/volume`. Only
/// [`with_helper`] makes one, and it removes it on every path.
#[derive(Debug)]
pub struct Helper {
    pub id: String,
    pub name: String,
    /// How the engine's archive endpoints reach the volume.
    endpoints: Endpoints,
    /// Its line in the run's journal, cleared once it is removed.
    mark: journal::Mark,
}

/// How the engine's archive endpoints reach a helper's volume: the one place where Docker Engine
/// and Podman's Docker-compatible API differ (ARCHITECTURE.md, engine facts). The rest of the
/// code asks a [`Helper`] and never looks at the flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoints {
    flavour: Flavour,
}

impl Endpoints {
    pub(crate) fn of(flavour: Flavour) -> Endpoints {
        Endpoints { flavour }
    }

    /// The `path` of a GET that yields the volume with its root's own entry: Docker's
    /// `<mount>/.` gives `./`, `./a`; Podman's lacks the `./` entry there, and `<mount>` gives
    /// `/`, `/a`, which [`Endpoints::renames_download`] turns into `./`, `a`.
    pub(crate) fn download_path(self) -> String {
        match self.flavour {
            Flavour::Docker => format!("/{MOUNT_DIR}/."),
            Flavour::Podman => format!("/{MOUNT_DIR}"),
        }
    }

    /// Whether the GET's names must be rewritten (`/a` to `a`, the root `/` to `./`).
    pub(crate) fn renames_download(self) -> bool {
        self.flavour == Flavour::Podman
    }

    /// The `path` of the PUT that extracts into the volume: Docker's at the mount skips the
    /// `./` entry (the root's owner and mode) and refuses symlinks that climb out, so Docker gets
    /// `/` and names under the mount; Podman's at `/` writes into the container's own
    /// filesystem, at the mount it does all of it right.
    pub(crate) fn upload_path(self) -> String {
        match self.flavour {
            Flavour::Docker => "/".into(),
            Flavour::Podman => format!("/{MOUNT_DIR}"),
        }
    }

    /// The directory, relative to [`Endpoints::upload_path`], under which uploaded entries are
    /// named (`volume/a` at `/`, or `a` at the mount).
    pub(crate) fn upload_root(self) -> &'static str {
        match self.flavour {
            Flavour::Docker => MOUNT_DIR,
            Flavour::Podman => ".",
        }
    }

    /// Whether the GET reports owners: Podman's reports every entry as owned by the container's
    /// user (`podman cp` semantics), so the owners a volume holds cannot be read through it.
    pub(crate) fn reports_owners(self) -> bool {
        self.flavour == Flavour::Docker
    }
}

impl Helper {
    /// See [`Endpoints::upload_root`]: what the archive code names uploaded entries under.
    pub fn upload_root(&self) -> &'static str {
        self.endpoints.upload_root()
    }

    /// Whether what is read through this helper carries the volume's owners (Podman's API
    /// answers every entry as root's): a check that compares owners must not on `false`.
    pub fn reports_owners(&self) -> bool {
        self.endpoints.reports_owners()
    }

    /// Warns, once per run, that the volume's owners cannot be read through this helper (to be
    /// called where a volume is read to be kept: `save`, `migrate`, `clone`).
    pub fn warn_if_owners_unread(&self) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        if !self.reports_owners() {
            WARNED.call_once(|| {
                crate::output::warn(
                    "this engine (Podman) reports every file of a volume as owned by root: \
                     owners are not kept (modes, times, links and content are)",
                )
            });
        }
    }

    pub(crate) fn endpoints(&self) -> Endpoints {
        self.endpoints
    }

    /// Creates a helper for `volume`. The volume must exist: creating a container silently
    /// creates a missing named volume.
    async fn create(engine: &Engine, volume: &str, read_only: bool) -> Result<Helper> {
        let docker = &engine.docker;
        ensure_image(docker).await?;
        let name = helper_name(volume);
        // Written down before it exists: a run killed at any point leaves nothing unrecorded.
        let mark = journal::record(journal::Step::Helper { name: name.clone() });
        let body = ContainerCreateBody {
            image: Some(helper_image()),
            cmd: Some(vec!["/never-started".into()]),
            ..container_body(volume, read_only)
        };
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = docker
            .create_container(Some(options), body)
            .await
            .with_context(|| format!("creating a helper container for volume `{volume}`"))?;
        Ok(Helper {
            id: created.id,
            name,
            endpoints: Endpoints::of(engine.identity.flavour),
            mark,
        })
    }

    /// Removes the helper; failures are reported, not fatal (the work is already done or lost).
    async fn remove(self, docker: &Docker) {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        if let Err(e) = docker.remove_container(&self.id, Some(options)).await {
            crate::output::warn(&format!(
                "could not remove helper container {}: {e}; remove it with `docker rm -f {}`",
                self.name, self.name
            ));
            self.mark.keep();
        }
    }
}

/// Creates a helper for `volume`, runs `f` with it and removes the helper again, whether `f`
/// succeeded or failed. (Dropping the future midway skips the removal: callers that can be
/// interrupted let `f` see the cancellation and return instead.)
pub async fn with_helper<T>(
    engine: &Engine,
    volume: &str,
    read_only: bool,
    f: impl AsyncFnOnce(&Helper) -> Result<T>,
) -> Result<T> {
    let helper = Helper::create(engine, volume, read_only).await?;
    let result = f(&helper).await;
    helper.remove(&engine.docker).await;
    result
}

/// A labelled (the tool's, this run's), network-less, log-less container with `volume` mounted at
/// `/volume`; callers set the image and command.
pub(crate) fn container_body(volume: &str, read_only: bool) -> ContainerCreateBody {
    let mut labels = Owner::this_run().labels();
    labels.extend([
        (labels::HELPER.to_string(), "true".to_string()),
        (labels::HELPER_VOLUME.to_string(), volume.to_string()),
    ]);
    ContainerCreateBody {
        labels: Some(labels),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some(format!("/{MOUNT_DIR}")),
                source: Some(volume.to_string()),
                typ: Some(MountType::VOLUME),
                read_only: Some(read_only),
                ..Default::default()
            }]),
            network_mode: Some("none".into()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".into()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `dvb-<volume>-<unique>`, trimmed to keep container names readable.
pub(crate) fn helper_name(volume: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let unique = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    let short: String = volume.chars().take(40).collect();
    format!("dvb-{short}-{unique:x}")
}
