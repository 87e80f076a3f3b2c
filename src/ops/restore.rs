//! Restoring one volume as a transaction: exactly the archive's content, or not at all.
//!
//! Into a missing volume: create it (driver, options, labels as given), restore, and remove it
//! again if anything fails. Into an existing empty volume: restore, and empty it again on
//! failure. Over a non-empty volume (`force`): restore into a scratch volume first, so a damaged
//! archive leaves the target as it was, then empty the target and copy the result in.

use std::sync::Arc;

use anyhow::Result;

use crate::archive::{Counters, RewriteOptions, RewriteReport, TarReader, VolumeInfo};
use crate::docker::helper::with_helper;
use crate::docker::volumes::{self, User};
use crate::docker::Engine;
use crate::error::{Kind, UserError};
use crate::ops::transfer;
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

/// How a restore treats its target and the archive's entries.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    /// Replace the content of a non-empty volume (`--force`).
    pub force: bool,
    /// What to leave out of the archive (`--no-devices`, `--no-setuid`).
    pub rewrite: RewriteOptions,
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
        None => {
            let like = like.unwrap_or_else(|| VolumeInfo {
                driver: "local".into(),
                ..Default::default()
            });
            into_new(ctx, engine, target, &like, reader, how.rewrite).await
        }
        Some(volume) => into_existing(ctx, engine, &volume, &users, reader, how, counters).await,
    }
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
    like: &VolumeInfo,
    reader: TarReader<DynRead>,
    options: RewriteOptions,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    volumes::create(docker, target, like).await?;
    let result = async {
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
        restore_with_helper(ctx, engine, target, reader, options).await
    }
    .await;
    if result.is_err() {
        if let Err(e) = volumes::remove(docker, target).await {
            output::warn(&format!(
                "the restore failed and volume `{target}` it created, which holds an INCOMPLETE \
                 copy, could not be removed: {e:#}; remove it with `docker volume rm {target}`"
            ));
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
    how: RestoreOptions,
    counters: Arc<Counters>,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    let target = volume.name.as_str();
    let options = how.rewrite;
    if volumes::is_empty(docker, target).await? {
        let result = restore_with_helper(ctx, engine, target, reader, options).await;
        if result.is_err() {
            // Leave it as it was: empty.
            if let Err(e) = volumes::wipe(docker, volume, users).await {
                output::warn(&format!("could not empty volume `{target}` again: {e:#}"));
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
    // Restore into a scratch volume first: the archive is verified before the target changes.
    let scratch = volumes::create_scratch(docker, "scratch", target).await?;
    let report = match restore_with_helper(ctx, engine, &scratch, reader, options).await {
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
    options: RewriteOptions,
) -> Result<RewriteReport> {
    let docker = &engine.docker;
    with_helper(docker, volume, false, async |helper| {
        transfer::restore_into(docker, helper, reader, options, &ctx.cancel).await
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
