//! `migrate VOLUME...|--project P --to CONTEXT [--as NAME] [--from CONTEXT] [--force] [--stop]`:
//! copy volumes from one engine to another, engine to engine, with no file in between.
//!
//! A read-only helper on the source streams the volume's tar; the entries are renamed for upload
//! as a restore renames them and go straight into a helper on the destination, through
//! [`restore::restore_volume`] (so a new volume gets the source's driver, options and labels and
//! is removed again on failure, and `--force` replaces a non-empty one exactly as `restore --force`
//! does). The same bytes feed an indexer that describes every entry sent (content hashed); once the
//! engine has taken the upload, the destination volume is read back and indexed, and the two must
//! match entry for entry. Memory stays constant: bounded channels between the two engines.
//!
//! `--project P` (or `--all`, `--filter`) picks the volumes as `save` does, and `--stop`/`--pause`
//! keep them still meanwhile with `save`'s guard. `clone` is the same copy inside one engine.

use anyhow::{Context as _, Result};

use crate::cli::MigrateArgs;
use crate::docker::lock::Held;
use crate::docker::quiesce::Quiesce;
use crate::docker::{volumes, Engine};
use crate::error::{Kind, UserError};
use crate::ops::copy::{check_target, copy_volume_between, describe_short, is_same_volume};
use crate::settings::{flags, Ctx};

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<()> {
    // The volumes' locks, taken on the way and released on every path.
    let mut held = Held::none();
    let result = migrate(ctx, args, &mut held).await;
    held.release().await;
    result
}

/// `migrate`, with the locks of the source volumes and their destinations taken into `held`.
async fn migrate(ctx: &Ctx, args: MigrateArgs, held: &mut Held) -> Result<()> {
    if args.as_name.is_some() && args.volumes.len() > 1 {
        return Err(
            UserError::new(Kind::Usage, "--as names one volume, but several were given")
                .hint("migrate them one at a time to rename them, or without --as")
                .into(),
        );
    }
    let source_endpoint = match &args.from {
        Some(name) => ctx.settings.endpoint_of(name)?,
        None => ctx.settings.endpoint()?,
    };
    let dest_endpoint = ctx.settings.endpoint_of(&args.to)?;
    ctx.out.debug(&format!(
        "migrating from {source_endpoint} to {dest_endpoint}"
    ));
    let source = Engine::connect(source_endpoint, ctx.out).await?;
    let dest = Engine::connect(dest_endpoint, ctx.out).await?;
    // `--project P` (and `--all`, `--filter`): the volumes as `save` selects them, labels and
    // all, so compose on the destination adopts them under the same project.
    let names = match flags::selection(&args.select)? {
        Some(selection) => crate::ops::select::volume_names(&source.docker, &selection).await?,
        None => args.volumes.clone(),
    };
    // The source volumes and their destinations are locked, each on its engine, and the engines
    // in a fixed order, so that two migrations in opposite directions never hold one lock each
    // and wait for the other's.
    let wait = flags::wait(&args.lock);
    let destinations: Vec<String> = match &args.as_name {
        Some(name) => vec![name.clone()],
        None => names.clone(),
    };
    let mut order = [(&source, &names), (&dest, &destinations)];
    if dest.endpoint.host.to_string() < source.endpoint.host.to_string() {
        order.reverse();
    }
    for (engine, volumes) in order {
        held.add(engine, volumes, "migrate", wait, &ctx.cancel)
            .await?;
    }
    let mut plans = Vec::new();
    for name in &names {
        let volume = volumes::require(&source.docker, name, &source.describe()).await?;
        let target = args.as_name.clone().unwrap_or_else(|| name.clone());
        if is_same_volume(&volume, &dest, &target).await? {
            return Err(UserError::new(
                Kind::Refused,
                format!(
                    "volume `{name}`: {} and {} reach the same engine, so the source and the \
                     destination would be the same volume",
                    source.describe(),
                    dest.describe()
                ),
            )
            .hint("give the copy another name with --as NEW, or use `clone VOLUME NEW`")
            .into());
        }
        plans.push((volume, target));
    }
    // Every destination is checked before the first byte moves: a refusal costs nothing.
    let mut targets = Vec::new();
    for (_, target) in &plans {
        targets.push(check_target(&dest, target, args.force).await?);
    }
    // `--stop`/`--pause` (or the stop-during-backup label) keep the source volumes still while
    // they are read, as `save` does; the containers start again on every path.
    let quiesce = Quiesce::plan(
        &source.docker,
        &names,
        flags::quiesce_mode(&args.quiesce),
        None,
    )
    .await?;
    let count = plans.len();
    let work = async {
        for (i, ((volume, _), target)) in plans.iter().zip(targets).enumerate() {
            ctx.check_cancelled()?;
            let mut label = format!("{} -> {}", volume.name, describe_short(&dest));
            if count > 1 {
                label = format!("[{}/{count}] {label}", i + 1);
            }
            let copied =
                copy_volume_between(ctx, &source, &dest, volume, target, args.force, &label)
                    .await
                    .with_context(|| {
                        format!(
                            "migrating volume `{}` from {} to {}",
                            volume.name,
                            source.describe(),
                            dest.describe()
                        )
                    })?;
            let done = if copied.created {
                format!(
                    "created volume {} on {}",
                    copied.target, dest.endpoint.context
                )
            } else {
                format!(
                    "replaced the content of volume {} on {}",
                    copied.target, dest.endpoint.context
                )
            };
            ctx.out.info(&format!(
                "{}; {done} ({})",
                copied.verified(),
                copied.rate()
            ));
        }
        Ok(())
    };
    quiesce.run(&source, &ctx.cancel, work).await?;
    Ok(())
}
