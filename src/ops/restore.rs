//! Restoring one volume as a transaction: exactly the archive's content, or not at all.
//!
//! Into a missing volume: create it (driver, options, labels as given), restore, and remove it
//! again if anything fails. Into an existing empty volume: restore, and empty it again on
//! failure. Over a non-empty volume (`force`): restore into a scratch volume first, so a damaged
//! archive leaves the target as it was, then empty the target and copy the result in.

use std::sync::Arc;

use anyhow::Result;

use crate::archive::{Counters, RewriteReport, TarReader, Verdict, VolumeInfo};
use crate::docker::helper::with_helper;
use crate::docker::volumes::{self, User};
use crate::docker::Engine;
use crate::error::{Kind, UserError};
use crate::ops::transfer;
use crate::ops::Ctx;
use crate::output;
use crate::pipe::DynRead;

/// `54,261 entries, 1.31 GB of data, checksum verified`.
pub fn describe(report: &RewriteReport) -> String {
    let (totals, check) = match &report.verdict {
        Verdict::Verified(t) => (t, "checksum verified"),
        Verdict::NoManifest(t) => (t, "no manifest to verify against"),
    };
    format!(
        "{} entries, {} of data, {check}",
        output::thousands(totals.entries),
        output::bytes(totals.content_bytes)
    )
}

/// Restores an opened archive into volume `target`, exactly or not at all: a missing volume is
/// created like `like` (driver, options, labels; default: local) and removed again on failure;
/// an empty one is emptied again on failure; a non-empty one is replaced only with `force`,
/// through a scratch volume. Volumes in use by running containers are refused. Shared by
/// `restore`, `compose-import` and `migrate`.
pub async fn restore_volume(
    ctx: &Ctx,
    engine: &Engine,
    target: &str,
    like: Option<VolumeInfo>,
    reader: TarReader<DynRead>,
    force: bool,
    counters: Arc<Counters>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    let existing = volumes::inspect(docker, target).await?;
    let users = match &existing {
        Some(_) => volumes::users(docker, target).await?,
        None => Vec::new(),
    };
    refuse_running(target, &users)?;
    match existing {
        None => {
            let like = like.unwrap_or_else(|| VolumeInfo {
                driver: "local".into(),
                ..Default::default()
            });
            into_new(ctx, engine, target, &like, reader).await
        }
        Some(volume) => into_existing(ctx, engine, &volume, &users, reader, force, counters).await,
    }
}

/// `restore ARCHIVE VOLUME --path P`: writes the archive's entries at or under `subtree` into
/// the existing volume `target`, merged (the engine's extraction never deletes): the rest of the
/// volume stays as it is. When P already exists in the volume it is refused without `force`;
/// with it, the archive's files replace the volume's files of the same path, and files under P
/// that the archive lacks are kept. The archive is checked to its end, but a damaged archive
/// can leave part of P written.
pub async fn restore_subtree(
    ctx: &Ctx,
    engine: &Engine,
    target: &str,
    subtree: &[u8],
    reader: TarReader<DynRead>,
    force: bool,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    let shown = String::from_utf8_lossy(subtree).into_owned();
    if volumes::inspect(docker, target).await?.is_none() {
        return Err(UserError::new(
            Kind::NotFound,
            format!("volume `{target}` does not exist"),
        )
        .hint("--path merges into an existing volume: create it, or restore the whole archive")
        .into());
    }
    refuse_running(target, &volumes::users(docker, target).await?)?;
    if !force && volumes::path_exists(docker, target, &shown).await? {
        return Err(UserError::new(
            Kind::Refused,
            format!("`{shown}` exists in volume `{target}`"),
        )
        .hint("use --force to overwrite it with the archive's files (files it lacks are kept)")
        .into());
    }
    let subtree = subtree.to_vec();
    with_helper(docker, target, false, async |helper| {
        transfer::restore_subtree_into(docker, helper, reader, subtree, &ctx.cancel).await
    })
    .await
}

/// Refuses a volume that running containers use: restoring under them would corrupt both.
pub fn refuse_running(target: &str, users: &[User]) -> Result<()> {
    let running: Vec<_> = users
        .iter()
        .filter(|u| u.running)
        .map(|u| u.name.as_str())
        .collect();
    if running.is_empty() {
        return Ok(());
    }
    Err(UserError::new(
        Kind::Refused,
        format!(
            "volume `{target}` is in use by running container(s) {}",
            running.join(", ")
        ),
    )
    .hint(format!(
        "stop them first (docker stop {})",
        running.join(" ")
    ))
    .into())
}

/// Warns about the entries a restore skipped (they would have left the volume).
pub fn warn_skipped(report: &RewriteReport) {
    for skipped in report.skipped.iter().take(20) {
        output::warn(&format!("skipped {skipped}"));
    }
    if report.skipped.len() > 20 {
        output::warn(&format!(
            "... and {} more entries skipped",
            report.skipped.len() - 20
        ));
    }
}

/// Creates the volume, restores, and removes the volume again if the restore fails.
async fn into_new(
    ctx: &Ctx,
    engine: &Engine,
    target: &str,
    like: &VolumeInfo,
    reader: TarReader<DynRead>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    // The window between finding the name free and creating it (someone else may create it).
    fail::fail_point!("restore-before-create");
    // Refused (and left alone) when someone else created it first.
    volumes::create(docker, target, like).await?;
    fail::fail_point!("restore-after-create");
    let result = async {
        // Someone may have removed it and made their own since: never write into theirs.
        volumes::check_ours(docker, target).await?;
        // A driver or options (a bind to a host directory, a network share) can give a new
        // volume old content: never overwrite that without --force.
        let may_hold_data = like.driver != "local" || !like.options.is_empty();
        if may_hold_data && !volumes::is_empty(docker, target).await? {
            return Err(UserError::new(
                Kind::Refused,
                format!(
                    "volume `{target}` is not empty right after its creation (driver {}, \
                     options {:?})",
                    like.driver, like.options
                ),
            )
            .hint("restore into a volume of another name, or create it and use --force")
            .into());
        }
        restore_with_helper(ctx, engine, target, reader).await
    }
    .await;
    if let Err(failed) = &result {
        // Only the volume this run created: one that someone put in its place stays.
        match volumes::remove_ours(docker, target).await {
            Ok(()) => {}
            Err(e) if crate::exit::classify(&e).0 == Kind::Refused => {
                if !format!("{failed:#}").contains(&e.to_string()) {
                    output::warn(&format!("{e:#}"));
                }
            }
            Err(e) => output::warn(&format!(
                "the restore failed and volume `{target}` it created, which holds an INCOMPLETE \
                 copy, could not be removed: {e:#}; remove it with `docker volume rm {target}`"
            )),
        }
    }
    result
}

async fn into_existing(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    users: &[User],
    reader: TarReader<DynRead>,
    force: bool,
    counters: Arc<Counters>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    let target = volume.name.as_str();
    if volumes::is_empty(docker, target).await? {
        let result = restore_with_helper(ctx, engine, target, reader).await;
        if result.is_err() {
            // Leave it as it was: empty.
            if let Err(e) = volumes::wipe(docker, volume, users).await {
                output::warn(&format!("could not empty volume `{target}` again: {e:#}"));
            }
        }
        return result;
    }
    if !force {
        return Err(
            UserError::new(Kind::Refused, format!("volume `{target}` is not empty"))
                .hint("use --force to replace its content, or restore into a new volume")
                .into(),
        );
    }
    // Restore into a scratch volume first: the archive is verified before the target changes.
    let scratch = volumes::create_scratch(docker, "scratch", target).await?;
    let report = match restore_with_helper(ctx, engine, &scratch, reader).await {
        Ok(report) => report,
        Err(e) => {
            volumes::remove_scratch(docker, &scratch).await;
            return Err(e);
        }
    };
    if let Err(e) = ctx.check_cancelled() {
        volumes::remove_scratch(docker, &scratch).await;
        return Err(e);
    }
    // From here the target changes. The verified data stays in the scratch volume until it has
    // been copied, and is kept there if the copy fails.
    if let Err(e) = volumes::wipe(docker, volume, users).await {
        if volumes::inspect(docker, target)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            // Removed but not created again: keep the restored data where it is.
            return Err(e.context(format!(
                "volume `{target}` is gone; the restored data is kept in volume `{scratch}`"
            )));
        }
        volumes::remove_scratch(docker, &scratch).await;
        return Err(e);
    }
    let copied = with_helper(docker, &scratch, true, async |from| {
        with_helper(docker, target, false, async |to| {
            transfer::copy_volume(docker, from, to, counters, &ctx.cancel).await
        })
        .await
        .map(|_| ())
    })
    .await;
    match copied {
        Ok(()) => {
            volumes::remove_scratch(docker, &scratch).await;
            Ok(report)
        }
        Err(e) => Err(e.context(format!(
            "volume `{target}` was emptied but the copy failed; the restored data is kept in \
             volume `{scratch}`"
        ))),
    }
}

async fn restore_with_helper(
    ctx: &Ctx,
    engine: &Engine,
    volume: &str,
    reader: TarReader<DynRead>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    with_helper(docker, volume, false, async |helper| {
        transfer::restore_into(docker, helper, reader, &ctx.cancel).await
    })
    .await
}
