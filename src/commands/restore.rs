//! `restore ARCHIVE|- [VOLUME]`: stream an archive into a volume, exactly, or not at all (the
//! transaction is `ops::restore`).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::archive::Counters;
use crate::cli::RestoreArgs;
use crate::docker::lock::Held;
use crate::error::{Kind, UserError};
use crate::ops::new_volume::NewVolume;
use crate::ops::restore::{describe, restore_volume, warn_skipped, RestoreOptions};
use crate::ops::transfer::Check;
use crate::output::Measure;
use crate::settings::{flags, Ctx};

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> Result<()> {
    let keys = crate::settings::keys::keys(&args.decrypt)?;
    let (input, input_len) = crate::storage::open_input(&args.archive, &ctx.s3).await?;
    let counters: Arc<Counters> = Arc::default();
    // A missing or wrong key fails here, before any volume is created or touched.
    let opened = {
        let counters = Arc::clone(&counters);
        tokio::task::spawn_blocking(move || crate::archive::open_archive(input, counters, &keys))
            .await
            .expect("opening the archive panicked")
    };
    let reader = opened.with_context(|| format!("cannot restore {}", args.archive))?;
    let recorded = reader.head().map(|h| h.volume.clone());
    let target = match (&args.volume, &recorded) {
        (Some(v), _) => v.clone(),
        (None, Some(info)) => info.name.clone(),
        (None, None) => {
            return Err(UserError::new(
                Kind::Usage,
                format!("{} has no manifest naming its volume", args.archive),
            )
            .hint("name the target volume: restore ARCHIVE VOLUME")
            .into())
        }
    };
    // What a missing target is created like, decided (and a flag that cannot work refused)
    // before the engine is touched.
    let new = match &recorded {
        Some(info) => NewVolume::from_record(info, args.apply_volume_options)?,
        None => NewVolume::plain(),
    };
    let engine = ctx.engine().await?;
    let wait = flags::wait(&args.lock);
    let held = Held::acquire(
        &engine,
        std::slice::from_ref(&target),
        "restore",
        wait,
        &ctx.cancel,
    )
    .await?;
    let started = Instant::now();
    let measure = match input_len {
        Some(_) => Measure::InputBytes,
        None => Measure::TarBytes,
    };
    let progress = ctx
        .out
        .progress(&target, Arc::clone(&counters), input_len, measure);
    let check = if args.verify {
        Check::Full
    } else {
        Check::Quick
    };
    let how = RestoreOptions {
        force: args.force,
        rewrite: crate::settings::flags::entry_filter(&args.filter),
        check,
    };
    let result = held
        .around(restore_volume(
            ctx, &engine, &target, &new, reader, how, counters,
        ))
        .await;
    progress.finish();
    let report =
        result.with_context(|| format!("restoring {} into volume `{target}`", args.archive))?;
    warn_skipped(&ctx.out, &report);
    let compared = if args.verify {
        ", every entry read back and compared"
    } else {
        ""
    };
    ctx.out.info(&format!(
        "restored {} into volume {target} ({}{compared}, {:.1} s)",
        args.archive,
        describe(&report),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
