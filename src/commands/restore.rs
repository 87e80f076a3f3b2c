//! `restore ARCHIVE|- [VOLUME]`: stream an archive into a volume, exactly, or not at all (the
//! transaction is `ops::restore`). `restore DEST VOLUME [--as NAME] [--at TIME]` first finds the
//! newest backup of VOLUME in a destination (the catalog `backups` shows). `--path P` restores
//! only a subtree, merged into the volume. `restore restic:REPO [VOLUME]` reads a restic
//! snapshot as the same tar stream (`restore/restic.rs`).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use chrono::{Local, Utc};

use crate::archive::Counters;
use crate::cli::RestoreArgs;
use crate::docker::lock::Held;
use crate::error::{Kind, UserError};
use crate::ops::new_volume::NewVolume;
use crate::ops::restore::{
    describe, restore_subtree, restore_volume, warn_skipped, RestoreOptions, Source,
};
use crate::ops::transfer::Check;
use crate::output::{self, Measure};
use crate::settings::{flags, Ctx};
use crate::storage::catalog::{self, EngineChoice};
use crate::storage::restic::ResticTarget;
use crate::storage::{Location, Store};

mod restic;

pub async fn run(ctx: &Ctx, args: RestoreArgs) -> Result<()> {
    if args.path.is_some() && args.verify {
        return Err(UserError::new(
            Kind::Usage,
            "--verify compares a whole volume with the archive; it does not go with --path",
        )
        .into());
    }
    let subtree = match &args.path {
        Some(p) => Some(crate::archive::subtree(p).ok_or_else(|| {
            UserError::new(
                Kind::Usage,
                format!("--path {p}: not a path inside the volume"),
            )
            .hint("give a relative path such as `uploads/2024` (no `..`)")
        })?),
        None => None,
    };
    let source = if ResticTarget::is_restic(&args.archive) {
        let repo = ResticTarget::parse(&args.archive)?;
        restic::source(ctx, &args, &repo, subtree.as_deref()).await?
    } else {
        archive_source(ctx, &args).await?
    };
    let Source {
        reader,
        counters,
        target,
        new,
        input_len,
        what,
        export,
        engine,
    } = source;
    let engine = match engine {
        Some(engine) => engine,
        None => ctx.engine().await?,
    };
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
    let result = match &subtree {
        Some(p) => {
            held.around(restore_subtree(ctx, &engine, &target, p, reader, how))
                .await
        }
        None => {
            held.around(restore_volume(
                ctx, &engine, &target, &new, reader, how, counters,
            ))
            .await
        }
    };
    progress.finish();
    let from_restic = export.is_some();
    let exported = match export {
        Some(done) => restic::finished(done).await,
        None => None,
    };
    let report = result.with_context(|| format!("restoring {what} into volume `{target}`"))?;
    warn_skipped(&ctx.out, &report);
    if let Some(sockets) = exported.as_ref().map(|e| e.sockets).filter(|&n| n > 0) {
        output::warn(&format!(
            "{sockets} socket(s) in the snapshot were not restored (tar cannot carry sockets)"
        ));
    }
    if let Some(n) = exported
        .as_ref()
        .map(|e| e.xattrs_left_out)
        .filter(|&n| n > 0)
    {
        output::warn(&format!(
            "{n} extended attribute(s) in the snapshot were not restored (only \
             security.capability goes through the engine)"
        ));
    }
    let compared = if args.verify {
        ", every entry read back and compared"
    } else {
        ""
    };
    let what = match &args.path {
        Some(p) => format!("{p} of {what}"),
        None => what,
    };
    let mut described = describe(&report);
    if from_restic {
        // A snapshot has no manifest; restic's format authenticates every blob read instead.
        described = described.replace(
            "no manifest to verify against",
            "every blob authenticated by the repository",
        );
    }
    ctx.out.info(&format!(
        "restored {what} into volume {target} ({described}{compared}, {:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// An archive (file, stdin, s3://), or the newest backup of VOLUME in a destination.
async fn archive_source(ctx: &Ctx, args: &RestoreArgs) -> Result<Source> {
    if args.snapshot.is_some() {
        return Err(UserError::new(
            Kind::Usage,
            format!(
                "--snapshot is for restic repositories, and {} is not restic:REPO",
                args.archive
            ),
        )
        .into());
    }
    let keys = crate::settings::keys::keys(&args.decrypt)?;
    let (archive, volume) = if Location::is_destination(&args.archive) {
        let (archive, volume) = newest(ctx, args).await?;
        (archive, Some(volume))
    } else {
        for (flag, given) in [
            ("--as", args.as_name.is_some()),
            ("--at", args.at.is_some()),
            ("--from-engine", args.from_engine.is_some()),
        ] {
            if given {
                return Err(UserError::new(
                    Kind::Usage,
                    format!("{flag} is for restoring from a destination, and {} is not a directory or s3://bucket/prefix", args.archive),
                )
                .hint("restore DEST VOLUME [--as NAME] [--at TIME]; name the target of an archive as `restore ARCHIVE VOLUME`")
                .into());
            }
        }
        (args.archive.clone(), args.volume.clone())
    };
    let (input, input_len) = crate::storage::open_input(&archive, &ctx.s3).await?;
    let counters: Arc<Counters> = Arc::default();
    // A missing or wrong key fails here, before any volume is created or touched.
    let opened = {
        let counters = Arc::clone(&counters);
        tokio::task::spawn_blocking(move || crate::archive::open_archive(input, counters, &keys))
            .await
            .expect("opening the archive panicked")
    };
    let reader = opened.with_context(|| format!("cannot restore {archive}"))?;
    let recorded = reader.head().map(|h| h.volume.clone());
    if let Some(engine) = reader.head().and_then(|h| h.source.engine.as_ref()) {
        if engine.flavour == "podman" {
            // Podman's archive endpoint reports every entry as root's: the archive has no owners.
            output::warn(&format!(
                "{archive} was saved from Podman ({}), whose API does not report owners: every \
                 file it holds is owned by root (0:0), and will be so in the volume",
                engine.label
            ));
        }
    }
    let target = match (&volume, &recorded) {
        (Some(v), _) => v.clone(),
        (None, Some(info)) => info.name.clone(),
        (None, None) => {
            return Err(UserError::new(
                Kind::Usage,
                format!("{archive} has no manifest naming its volume"),
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
    Ok(Source {
        reader,
        counters,
        target,
        new,
        input_len,
        what: archive,
        export: None,
        engine: None,
    })
}

/// `restore DEST VOLUME`: the newest backup of VOLUME in DEST (at or before `--at`), and the
/// volume to restore it into (`--as`, else VOLUME).
async fn newest(ctx: &Ctx, args: &RestoreArgs) -> Result<(String, String)> {
    let dest = &args.archive;
    let Some(volume) = args.volume.clone() else {
        return Err(UserError::new(
            Kind::Usage,
            format!("{dest} is a destination: name the volume whose newest backup to restore"),
        )
        .hint(format!("restore {dest} VOLUME [--as NAME] [--at TIME]"))
        .into());
    };
    let now = Utc::now();
    let at = match &args.at {
        Some(s) => Some(flags::point_in_time(s, now)?),
        None => None,
    };
    let store = Store::open(&Location::parse(dest)?, false, &ctx.s3)?;
    let mut found = catalog::list(&store).await?;
    found.retain(|b| !catalog::is_bundle_name(&b.name));
    let local = |t: chrono::DateTime<Utc>| t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
    let engine = match &args.from_engine {
        Some(label) => EngineChoice::Given(label.clone()),
        None => EngineChoice::Current(ctx.engine().await?.identity.label()),
    };
    let wanted = catalog::Wanted {
        kind: "volume",
        name: &volume,
        what: "backup",
        dest,
    };
    let backup = catalog::pick(&found, &wanted, &engine, at, &store.url)?;
    let target = args.as_name.clone().unwrap_or(volume.clone());
    ctx.out.info(&format!(
        "taking {}: the newest backup of {volume} from engine {}{}, taken {} ({} ago)",
        backup.location,
        backup.engine_label(),
        at.map_or(String::new(), |t| format!(" at or before {}", local(t))),
        local(backup.created),
        output::age((now - backup.created).num_seconds()),
    ));
    Ok((backup.location.clone(), target))
}
