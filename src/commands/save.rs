//! `save VOLUME...` (or `--all`, `--project P`, `--filter`): stream volumes into compressed
//! archives with a manifest, optionally with their containers stopped or paused meanwhile.

use std::sync::Arc;

use anyhow::Result;
use chrono::Utc;

use crate::cli::{ResticSaveArgs, SaveArgs};
use crate::docker::lock::Held;
use crate::docker::quiesce::Quiesce;
use crate::docker::volumes;
use crate::error::{Kind, UserError};
use crate::ops::output_plan::{self, ArchiveFlags};
use crate::ops::prune;
use crate::ops::save::{self, ResticDest, SaveTo};
use crate::ops::transfer::ArchiveOptions;
use crate::settings::{flags, Ctx};
use crate::storage::catalog;
use crate::storage::upload::Uploads;

pub async fn run(ctx: &Ctx, args: SaveArgs) -> Result<()> {
    // The volumes' locks, taken on the way and released on every path.
    let mut held = Held::none();
    let result = save_volumes(ctx, args, &mut held).await;
    held.release().await;
    result
}

/// `save`, with the locks of its volumes taken into `held`.
async fn save_volumes(ctx: &Ctx, args: SaveArgs, held: &mut Held) -> Result<()> {
    // The start of the save in UTC; the engine's label joins it once the engine is known.
    let started = Utc::now();
    let stamp = catalog::stamp(started, "engine-00000000");
    let usage = |m: String| -> anyhow::Error { UserError::new(Kind::Usage, m).into() };
    let selection = flags::selection(&args.select)?;
    let output = ArchiveFlags {
        output: args.output.clone(),
        compression: args.compression.map(Into::into),
        level: args.tuning.level,
        encrypted: args.encrypt.any(),
        to: !args.to.is_empty(),
        many: args.volumes.len() > 1 || selection.is_some(),
    };
    // Decide every output before touching the engine: argument mistakes fail fast.
    if selection.is_some() {
        // The selection is known only from the engine; check the output kind now.
        output_plan::archive("volume", &output, &stamp).map_err(usage)?;
    }
    for volume in &args.volumes {
        output_plan::archive(volume, &output, &stamp).map_err(usage)?;
    }
    let policy = flags::policy(&args.keep)?;
    if !policy.is_empty() && args.to.is_empty() {
        return Err(usage(
            "--keep-* prunes the --to destinations: give one".into(),
        ));
    }
    let (restic_targets, others) = crate::storage::split_restic(&args.to)?;
    if (args.restic.init || args.restic.rehash) && restic_targets.is_empty() {
        return Err(usage(
            "--init and --rehash are about restic repositories: give --to restic:REPO".into(),
        ));
    }
    let stores = crate::storage::open_all(&others, true, &ctx.s3)?;
    // restic repositories are opened (or created, with --init) before the engine is touched.
    let (restic, restic_password) = open_restic(&restic_targets, &args.restic).await?;
    // Keys are read (or the passphrase asked) before the engine is touched, too.
    let encrypt = crate::settings::keys::encrypt_to(&args.encrypt)?.map(Arc::new);
    let uploads = Uploads::new(ctx.out);
    let engine = ctx.engine().await?;
    let describe = engine.describe();
    let names = match &selection {
        Some(selection) => crate::ops::select::volume_names(&engine.docker, selection).await?,
        None => args.volumes.clone(),
    };
    let stamp = catalog::stamp(started, &engine.identity.label());
    let mut plans = Vec::new();
    for volume in &names {
        plans.push(output_plan::archive(volume, &output, &stamp).map_err(usage)?);
    }
    // One run at a time per volume: taken before the containers are looked at, so that two
    // `--stop` runs never restart the application under each other's reads.
    let wait = flags::wait(&args.lock);
    held.add(&engine, &names, "save", wait, &ctx.cancel).await?;
    let mut found = Vec::new();
    for volume in &names {
        found.push(volumes::require(&engine.docker, volume, &describe).await?);
    }
    let mode = flags::quiesce_mode(&args.quiesce);
    let quiesce = Quiesce::plan(&engine.docker, &names, mode, None).await?;
    let count = found.len();
    let work = async {
        let mut saved = Vec::new();
        for (i, (volume, (target, compression))) in found.iter().zip(plans).enumerate() {
            ctx.check_cancelled()?;
            let options = ArchiveOptions {
                encode: flags::encode(&args.tuning, compression),
                encrypt: encrypt.clone(),
            };
            let to = SaveTo {
                target,
                stores: &stores,
                uploads: &uploads,
                force: args.force,
                restic: &restic,
                rehash: args.restic.rehash,
            };
            let label = match count {
                1 => volume.name.clone(),
                n => format!("[{}/{n}] {}", i + 1, volume.name),
            };
            let one = save::save_one(ctx, &engine, volume, &label, to, options).await;
            if one.is_err() {
                // Aborted uploads finish aborting before the error is reported.
                uploads.settle().await;
            }
            saved.push(one?);
        }
        Ok(saved)
    };
    let (saved, downtimes) = quiesce.run(&engine, &ctx.cancel, work).await?;
    if count > 1 {
        crate::ops::select::print_summary(&saved, &downtimes, ctx.out);
    }
    // Pruning only after every volume reached every destination: a failed save deletes nothing.
    if !policy.is_empty() {
        let restic = restic_password.as_ref().map(|password| prune::ResticSaved {
            targets: &restic_targets,
            password,
        });
        prune::after_save(&stores, restic, &names, &policy, ctx.out).await?;
    }
    Ok(())
}

/// Opens every restic repository of `--to` with the one password (asked once, and returned
/// for pruning after the save), creating a missing one only with `--init`.
async fn open_restic(
    targets: &[crate::storage::restic::ResticTarget],
    args: &ResticSaveArgs,
) -> Result<(Vec<ResticDest>, Option<crate::storage::restic::Password>)> {
    use crate::storage::restic;
    if targets.is_empty() {
        return Ok((Vec::new(), None));
    }
    for target in targets {
        target.check_supported()?;
    }
    let password = restic::password(args.password.restic_password_file.as_deref(), args.init)?;
    let mut dests = Vec::new();
    for target in targets {
        let (t, p, init) = (target.clone(), password.clone(), args.init);
        let repo = tokio::task::spawn_blocking(move || restic::open_or_init(&t, &p, init))
            .await
            .expect("opening a restic repository panicked")?;
        dests.push(ResticDest {
            target: target.clone(),
            repo,
        });
    }
    Ok((dests, Some(password)))
}
