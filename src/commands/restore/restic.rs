//! `restore restic:REPO [VOLUME] [--snapshot ID[:/PATH]] [--as NAME] [--at TIME]`: which
//! snapshot, which directory in it is the volume root, and that directory read out as the tar
//! stream the rest of `restore` takes like any archive without a manifest.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use chrono::{Local, Utc};

use crate::archive::{Counters, Keys};
use crate::cli::RestoreArgs;
use crate::docker::Engine;
use crate::error::{Kind, UserError};
use crate::ops::new_volume::NewVolume;
use crate::ops::restore::Source;
use crate::output;
use crate::settings::{flags, Ctx};
use crate::storage::restic::export::Exported;
use crate::storage::restic::list::{self, Snapshot};
use crate::storage::restic::{self as repo, read, ResticTarget};

/// Picks the snapshot, checks that its directory exists and starts reading it out; nothing on
/// the engine is touched unless the snapshot was found (the engine is asked only who it is,
/// for the newest snapshot of VOLUME *of this engine*).
pub(crate) async fn source(
    ctx: &Ctx,
    args: &RestoreArgs,
    target: &ResticTarget,
    subtree: Option<&[u8]>,
) -> Result<Source> {
    let shown = target.to_string();
    if args.snapshot.is_some() && args.at.is_some() {
        return Err(UserError::new(
            Kind::Usage,
            "--at picks the newest snapshot of VOLUME; --snapshot names one: give only one of them",
        )
        .into());
    }
    let password = repo::password(args.restic.restic_password_file.as_deref(), false)?;
    let opened = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let repo = repo::open(&target, &password)?;
            let all = read::snapshots(&repo)?;
            Ok((repo, all))
        })
        .await
        .expect("opening the repository panicked")
    };
    let (repository, all) = opened?;
    let (snapshot, root, engine) = match &args.snapshot {
        Some(arg) => {
            let (snapshot, root) = by_id(&all, arg, &shown)?;
            (snapshot, root, None)
        }
        None => {
            let (snapshot, root, engine) = newest(ctx, args, &all, &shown).await?;
            (snapshot, root, Some(engine))
        }
    };
    let volume = match (&args.as_name, &args.volume, &snapshot.volume) {
        (Some(name), _, _) => name.clone(),
        (None, Some(v), _) => v.clone(),
        (None, None, Some(v)) if snapshot.ours => v.clone(),
        _ => {
            return Err(UserError::new(
                Kind::Usage,
                format!(
                    "snapshot {} was not made by this tool: name the volume to restore it into",
                    snapshot.short_id()
                ),
            )
            .hint(format!(
                "restore {} VOLUME --snapshot {}",
                args.archive,
                snapshot.short_id()
            ))
            .into())
        }
    };
    let new = match read::recorded_volume(&snapshot) {
        Some(info) => NewVolume::from_record(&info, args.apply_volume_options)?,
        None => NewVolume::plain(),
    };
    let only = subtree.map(|p| std::path::PathBuf::from(crate::storage::restic::export::os(p)));
    let counters: Arc<Counters> = Arc::default();
    let started = {
        let id = snapshot.id.clone();
        let counters = Arc::clone(&counters);
        tokio::task::spawn_blocking(move || -> Result<_> {
            let export = read::export(&repository, &id, &root, only)?;
            let reader = crate::archive::open_archive(export.reader, counters, &Keys::none())?;
            Ok((reader, export.done))
        })
        .await
        .expect("reading the snapshot panicked")
    };
    let (reader, done) = started
        .with_context(|| format!("cannot restore snapshot {} of {shown}", snapshot.short_id()))?;
    Ok(Source {
        reader,
        counters,
        target: volume,
        new,
        input_len: None,
        what: format!("snapshot {} of {shown}", snapshot.short_id()),
        export: Some(done),
        engine,
    })
}

/// Waits for the thread that read the snapshot out; what it wrote, if it finished.
pub(crate) async fn finished(done: read::Running) -> Option<Exported> {
    tokio::task::spawn_blocking(move || done.join().ok()?.ok())
        .await
        .ok()
        .flatten()
}

/// `--snapshot ID` or `--snapshot ID:/PATH`: that snapshot, and the directory that is the
/// volume's root (PATH, else `/<volume>` for the tool's snapshots, else the snapshot's only
/// path).
fn by_id(all: &[Snapshot], arg: &str, shown: &str) -> Result<(Snapshot, String)> {
    let (id, path) = list::split_snapshot_arg(arg);
    let snapshot = list::find_id(all, id).map_err(|why| {
        UserError::new(Kind::NotFound, format!("{shown}: {why}"))
            .hint(format!("see `backups {shown}`"))
    })?;
    let root = match path {
        Some(p) => p.to_string(),
        None => snapshot.root().ok_or_else(|| {
            UserError::new(
                Kind::Usage,
                format!(
                    "snapshot {} holds several paths ({}): name the one to restore",
                    snapshot.short_id(),
                    snapshot.paths.join(", ")
                ),
            )
            .hint(format!(
                "--snapshot {}:{}",
                snapshot.short_id(),
                snapshot.paths.first().map_or("/PATH", String::as_str)
            ))
        })?,
    };
    Ok((snapshot.clone(), root))
}

/// The newest snapshot of VOLUME that this engine saved (at or before `--at`).
async fn newest(
    ctx: &Ctx,
    args: &RestoreArgs,
    all: &[Snapshot],
    shown: &str,
) -> Result<(Snapshot, String, Engine)> {
    let Some(volume) = args.volume.clone() else {
        return Err(UserError::new(
            Kind::Usage,
            format!("{shown} is a repository: name the volume whose newest snapshot to restore"),
        )
        .hint(format!(
            "restore {} VOLUME [--as NAME] [--at TIME], or --snapshot ID",
            args.archive
        ))
        .into());
    };
    let now = Utc::now();
    let at = match &args.at {
        Some(s) => Some(flags::point_in_time(s, now)?),
        None => None,
    };
    let engine = ctx.engine().await?;
    // restic's host is the engine's label: this engine's, or `--from-engine`'s.
    let host = match &args.from_engine {
        Some(label) => label.clone(),
        None => engine.identity.label(),
    };
    let this = if args.from_engine.is_some() {
        "engine"
    } else {
        "this engine"
    };
    let local = |t: chrono::DateTime<Utc>| t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
    let Some(snapshot) = list::newest_of(all, &volume, &host, at) else {
        let when = at.map_or(String::new(), |t| {
            format!(" taken at or before {}", local(t))
        });
        let mut others: Vec<&str> = all
            .iter()
            .filter(|s| s.ours && s.volume.as_deref() == Some(volume.as_str()) && s.host != host)
            .map(|s| s.host.as_str())
            .collect();
        others.sort_unstable();
        others.dedup();
        let hint = if others.is_empty() {
            format!("see `backups {shown}`")
        } else {
            format!(
                "snapshots of {volume} from other engines ({}): --from-engine LABEL, or --snapshot ID (see `backups {shown}`)",
                others.join(", ")
            )
        };
        return Err(UserError::new(
            Kind::NotFound,
            format!("no snapshot of volume `{volume}` from {this} ({host}){when} in {shown}"),
        )
        .hint(hint)
        .into());
    };
    ctx.out.info(&format!(
        "taking snapshot {}: the newest of {volume} from {host}{}, taken {} ({} ago)",
        snapshot.short_id(),
        at.map_or(String::new(), |t| format!(" at or before {}", local(t))),
        local(snapshot.created),
        output::age((now - snapshot.created).num_seconds()),
    ));
    let root = snapshot.root().expect("the tool's snapshots have a root");
    Ok((snapshot.clone(), root, engine))
}
