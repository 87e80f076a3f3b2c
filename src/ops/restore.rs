//! Restoring one volume as a transaction: exactly the archive's content, or not at all.
//!
//! Into a missing volume: create it as `ops::new_volume` says (from an archive: a plain local
//! volume with the recorded labels), restore, and remove it again if anything fails. Into an
//! existing empty volume: restore, and empty it again on failure. Over a non-empty volume
//! (`force`): restore into a scratch volume first, so a damaged archive leaves the target as it
//! was, then empty the target and copy the result in.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use crate::archive::{Counters, RewriteOptions, RewriteReport, TarReader};
use crate::docker::helper::with_helper;
use crate::docker::owner::Owner;
use crate::docker::volumes::{self, User};
use crate::docker::Engine;
use crate::error::{Kind, UserError};
use crate::journal;
use crate::ops::new_volume::{self, NewVolume};
use crate::ops::transfer::{self, Check};
use crate::ops::Ctx;
use crate::output;
use crate::pipe::DynRead;

/// `54,261 entries, 1.31 GB of data, checksum verified`, then what was left out or needs a
/// look: `; 2 skipped; 1 device node, 1 setuid/setgid file (not restored)`.
pub fn describe(report: &RewriteReport) -> String {
    let totals = report.verdict.totals();
    let mut text = format!(
        "{} entries, {} of data, {}",
        output::thousands(totals.entries),
        output::bytes(totals.content_bytes),
        report.verdict.describe()
    );
    if report.skipped > 0 {
        text.push_str(&format!("; {} skipped", output::thousands(report.skipped)));
    }
    let mut special = Vec::new();
    let not = |skipped: bool| if skipped { " (not restored)" } else { "" };
    if report.devices > 0 {
        special.push(format!(
            "{} device node{}{}",
            output::thousands(report.devices),
            plural(report.devices),
            not(report.options.no_devices)
        ));
    }
    if report.setuid > 0 {
        special.push(format!(
            "{} setuid/setgid file{}{}",
            output::thousands(report.setuid),
            plural(report.setuid),
            not(report.options.no_setuid)
        ));
    }
    if !special.is_empty() {
        text.push_str(&format!("; {}", special.join(", ")));
    }
    text
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What a restore reads from, opened and checked before the engine is touched.
pub struct Source {
    pub reader: TarReader<DynRead>,
    pub counters: Arc<Counters>,
    /// The volume to restore into.
    pub target: String,
    /// What a missing target is created like.
    pub new: NewVolume,
    /// Bytes to read, when known (a file's size).
    pub input_len: Option<u64>,
    /// How the source is named in messages.
    pub what: String,
    /// A restic snapshot being read out on its own thread.
    pub export: Option<crate::storage::restic::read::Running>,
    /// The engine, when finding the source needed it already.
    pub engine: Option<Engine>,
}

/// How a restore treats its target and the archive's entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Replace the content of a non-empty volume (`--force`).
    pub force: bool,
    /// What to leave out of the archive (`--no-devices`, `--no-setuid`).
    pub rewrite: RewriteOptions,
    /// How the result is confirmed from the volume (`--verify`: in full).
    pub check: Check,
}

/// Restores an opened archive into volume `target`, exactly or not at all: a missing volume is
/// created as `new` says (see `ops::new_volume`) and removed again on failure;
/// an empty one is emptied again on failure; a non-empty one is replaced only with `force`,
/// through a scratch volume. Volumes in use by running containers are refused. Every upload is
/// read back and checked as `check` says; a failed check is a failed restore. Shared by
/// `restore`, `compose-import` and `migrate`.
#[allow(clippy::too_many_arguments)]
pub async fn restore_volume(
    ctx: &Ctx,
    engine: &Engine,
    target: &str,
    new: &NewVolume,
    reader: TarReader<DynRead>,
    how: RestoreOptions,
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
        None => into_new(ctx, engine, target, new, reader, how.rewrite, how.check).await,
        Some(volume) => into_existing(ctx, engine, &volume, &users, reader, how, counters).await,
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
    how: RestoreOptions,
) -> Result<RewriteReport> {
    let force = how.force;
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
    if !force && volumes::path_exists(engine, target, &shown).await? {
        return Err(UserError::new(
            Kind::Refused,
            format!("`{shown}` exists in volume `{target}`"),
        )
        .hint("use --force to overwrite it with the archive's files (files it lacks are kept)")
        .into());
    }
    let subtree = subtree.to_vec();
    with_helper(engine, target, false, async |helper| {
        transfer::restore_subtree_into(docker, helper, reader, subtree, how.rewrite, &ctx.cancel)
            .await
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

/// Says what a restore left out: one warning with the count by reason, and every kept name
/// (`MAX_SKIPPED_NAMES` of them) at debug level (`-D`).
pub fn warn_skipped(out: &output::Printer, report: &RewriteReport) {
    if report.skipped == 0 {
        return;
    }
    let reasons: Vec<String> = report
        .skipped_by_reason()
        .iter()
        .map(|(reason, n)| format!("{}: {}", output::thousands(*n), reason.as_str()))
        .collect();
    let list = if out.debug_enabled() {
        ""
    } else {
        "; -D lists them"
    };
    output::warn(&format!(
        "skipped {} entr{} ({}){list}",
        output::thousands(report.skipped),
        if report.skipped == 1 { "y" } else { "ies" },
        reasons.join(", ")
    ));
    for skipped in &report.skipped_names {
        out.debug(&format!(
            "skipped {}: {}",
            skipped.path,
            skipped.reason.as_str()
        ));
    }
    let unnamed = report.skipped - report.skipped_names.len() as u64;
    if unnamed > 0 {
        out.debug(&format!(
            "... and {} more skipped entries",
            output::thousands(unnamed)
        ));
    }
}

/// Creates the volume, restores, and removes the volume again if the restore fails.
async fn into_new(
    ctx: &Ctx,
    engine: &Engine,
    target: &str,
    new: &NewVolume,
    reader: TarReader<DynRead>,
    options: RewriteOptions,
    check: Check,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    new.announce(ctx.out, target);
    let like = &new.spec;
    // Written down first: a run killed from here on leaves a volume that holds an incomplete copy.
    let mark = journal::record(journal::Step::Restore {
        engine: engine.endpoint.journal_ref(),
        target: target.to_string(),
        like: like.clone(),
        scratch: None,
        phase: journal::Phase::Created,
        spool: None,
    });
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
        if may_hold_data && !volumes::is_empty(engine, target).await? {
            return Err(UserError::new(
                Kind::Refused,
                format!(
                    "volume `{target}` is not empty right after its creation ({})",
                    new_volume::describe(&like.driver, &like.options)
                ),
            )
            .hint("restore into a volume of another name, or create it and use --force")
            .into());
        }
        restore_with_helper(ctx, engine, target, reader, options, check, None).await
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
            Err(e) => {
                output::warn(&format!(
                    "the restore failed and volume `{target}` it created, which holds an \
                     INCOMPLETE copy, could not be removed: {e:#}; remove it with `docker volume \
                     rm {target}`"
                ));
                mark.keep();
            }
        }
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn into_existing(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    users: &[User],
    reader: TarReader<DynRead>,
    how: RestoreOptions,
    counters: Arc<Counters>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    let target = volume.name.as_str();
    let (options, check) = (how.rewrite, how.check);
    let engine_ref = engine.endpoint.journal_ref();
    let step =
        |scratch: Option<&str>, phase, spool: Option<journal::Spooled>| journal::Step::Restore {
            engine: engine_ref.clone(),
            target: target.to_string(),
            like: volumes::info(volume),
            scratch: scratch.map(String::from),
            phase,
            spool,
        };
    if volumes::is_empty(engine, target).await? {
        let mark = journal::record(step(None, journal::Phase::Filling, None));
        let result = restore_with_helper(ctx, engine, target, reader, options, check, None).await;
        if result.is_err() {
            // Leave it as it was: empty.
            if let Err(e) = volumes::wipe(engine, volume, users).await {
                output::warn(&format!("could not empty volume `{target}` again: {e:#}"));
                mark.keep();
            }
        }
        return result;
    }
    if !how.force {
        return Err(
            UserError::new(Kind::Refused, format!("volume `{target}` is not empty"))
                .hint("use --force to replace its content, or restore into a new volume")
                .into(),
        );
    }
    // Before any work: a volume that removing cannot empty, and that no container can empty.
    volumes::can_wipe(volume, users)?;
    // Restore into a scratch volume first: the archive is verified before the target changes.
    let scratch = volumes::scratch_name("scratch", target);
    // An engine that cannot read owners back (Podman) would lose them in the copy out of the
    // scratch volume: the verified stream sent there is also kept in a file (as large as the
    // volume's content) and sent again into the target. The file is in the journal directory and
    // named in the journal, so that `recover` finishes a killed run's swap from it too.
    let spool = if engine.reads_owners() {
        None
    } else {
        Some(journal::spool_file().context("creating a file to keep the restore's stream")?)
    };
    let spooled = |len| {
        spool.as_ref().map(|f| journal::Spooled {
            path: f.path().to_path_buf(),
            len,
        })
    };
    let spooling = spool
        .as_ref()
        .map(|f| f.as_file().try_clone())
        .transpose()
        .context("opening the file that keeps the restore's stream")?;
    let mark = journal::record(step(Some(&scratch), journal::Phase::Scratch, spooled(None)));
    volumes::create_scratch_named(docker, &scratch).await?;
    let filled = restore_with_helper(ctx, engine, &scratch, reader, options, check, spooling);
    let filled = match filled.await {
        // Whole and on disk before the journal says it may be used.
        Ok(report) => ctx
            .check_cancelled()
            .and_then(|()| Ok((report, kept_whole(spool.as_ref())?))),
        Err(e) => Err(e),
    };
    let (report, (spool_len, swap_spool)) = match filled {
        Ok(filled) => filled,
        Err(e) => {
            if !volumes::remove_scratch(docker, &scratch).await {
                mark.keep();
            }
            return Err(e);
        }
    };
    // From here the target changes and the verified data may exist only in the scratch volume:
    // the swap is finished even after Ctrl-C (a run killed here is finished by `recover`).
    mark.update(step(
        Some(&scratch),
        journal::Phase::Swap,
        spooled(spool_len),
    ));
    let _window = journal::only_copy(format!("volume `{scratch}` (to be copied into `{target}`)"));
    let finished = swap(
        engine,
        volume,
        users,
        &scratch,
        counters,
        check,
        &Owner::this_run().run,
        swap_spool,
    )
    .await;
    match finished {
        Ok(()) => Ok(report),
        Err(e) => {
            if volumes::inspect(docker, &scratch)
                .await
                .ok()
                .flatten()
                .is_some()
            {
                mark.keep();
                // `recover` copies from it, as the run would have.
                if let Some(f) = spool {
                    let _ = f.keep();
                }
            }
            Err(e)
        }
    }
}

/// The kept stream, synced: its length for the journal and a handle for the swap.
fn kept_whole(
    spool: Option<&tempfile::NamedTempFile>,
) -> Result<(Option<u64>, Option<std::fs::File>)> {
    let Some(spool) = spool else {
        return Ok((None, None));
    };
    let file = spool.as_file();
    let kept = file
        .sync_all()
        .and_then(|()| file.metadata())
        .and_then(|m| Ok((Some(m.len()), Some(file.try_clone()?))))
        .context("syncing the file that keeps the restore's stream")?;
    Ok(kept)
}

/// Empties `volume` and copies the verified data of `scratch` into it (or, given the `spool` that
/// filled `scratch`, sends that again), then removes `scratch` (which run `made_by` created). Not
/// cancellable: the scratch volume may hold the only copy. Shared with `recover`.
#[allow(clippy::too_many_arguments)]
pub async fn swap(
    engine: &Engine,
    volume: &bollard::models::Volume,
    users: &[User],
    scratch: &str,
    counters: Arc<Counters>,
    check: Check,
    made_by: &str,
    spool: Option<std::fs::File>,
) -> Result<()> {
    let docker = &engine.docker;
    let target = volume.name.as_str();
    if let Err(e) = volumes::wipe(engine, volume, users).await {
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
        volumes::remove_scratch_made_by(docker, scratch, made_by).await;
        return Err(e);
    }
    // The fault tests kill the run here: the target emptied, the data only in the scratch volume.
    fail::fail_point!("restore-swap-emptied");
    let never = CancellationToken::new();
    let copied = match spool {
        Some(spool) => {
            with_helper(engine, target, false, async |to| {
                transfer::upload_spool(docker, to, spool, check, &never).await
            })
            .await
        }
        None => {
            with_helper(engine, scratch, true, async |from| {
                with_helper(engine, target, false, async |to| {
                    transfer::copy_volume(docker, from, to, counters, check, &never).await
                })
                .await
                .map(|_| ())
            })
            .await
        }
    };
    match copied {
        Ok(()) => {
            volumes::remove_scratch_made_by(docker, scratch, made_by).await;
            Ok(())
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
    options: RewriteOptions,
    check: Check,
    spool: Option<std::fs::File>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    with_helper(engine, volume, false, async |helper| {
        // The fault tests kill the run here: a volume being filled, a helper.
        fail::fail_point!("restore-filling");
        transfer::restore_into_spooled(docker, helper, reader, options, check, spool, &ctx.cancel)
            .await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_what_needs_a_look() {
        let mut report = RewriteReport::new(RewriteOptions::default());
        assert_eq!(
            describe(&report),
            "0 entries, 0 B of data, no manifest to verify against"
        );
        report.skipped = 2;
        report.devices = 1;
        report.setuid = 3;
        assert_eq!(
            describe(&report),
            "0 entries, 0 B of data, no manifest to verify against; 2 skipped; 1 device node, \
             3 setuid/setgid files"
        );
        report.options.no_devices = true;
        assert!(
            describe(&report).ends_with("; 1 device node (not restored), 3 setuid/setgid files")
        );
    }
}
