//! `compose-import BUNDLE|DIR|-`: recreate a project's volumes from a bundle (streamed: a pipe
//! from `compose-export -o -` on another engine works) or a `--split` directory, under the
//! bundle's project or `-p NEW`, named and labelled so that compose adopts them.
//!
//! Every target is checked before the first is touched: a non-empty volume is refused unless
//! `--force`, a volume in use by running containers always. Each volume then goes through the
//! same restore as `restore` (created and removed again on failure, verified against its
//! manifest).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, Result};

use crate::archive::{ArchiveError, Counters, VolumeInfo};
use crate::cli::ComposeImportArgs;
use crate::compose::adopt::import_target;
use crate::compose::bundle::{
    split_file_name, split_manifest_name, BundleManifest, BundleReader, BundleVolume, PartReader,
};
use crate::compose::dumps;
use crate::compose::project::checked_name;
use crate::db::restore::{open_counted, restore_with_progress, RestoreRequest};
use crate::db::{Overrides, Server};
use crate::docker::lock::Held;
use crate::docker::volumes;
use crate::error::{Kind, UserError};
use crate::ops::new_volume::NewVolume;
use crate::ops::restore::{describe, refuse_running, restore_volume, warn_skipped, RestoreOptions};
use crate::ops::transfer::Check;
use crate::output::{self, Measure};
use crate::pipe::DynRead;
use crate::settings::{flags, Ctx};
use crate::storage::{catalog, open_input, Location, S3Options, Store};

/// Where the volumes' archives come from.
enum Source {
    Stream(Arc<Mutex<BundleReader<DynRead>>>),
    Dir(PathBuf),
}

pub async fn run(ctx: &Ctx, args: ComposeImportArgs) -> Result<()> {
    // The volumes' locks, taken on the way and released on every path.
    let mut held = Held::none();
    let result = import(ctx, args, &mut held).await;
    held.release().await;
    result
}

/// `compose-import`, with the locks of the target volumes taken into `held`.
async fn import(ctx: &Ctx, args: ComposeImportArgs, held: &mut Held) -> Result<()> {
    let keys = Arc::new(crate::settings::keys::keys(&args.decrypt)?);
    let bundle = match is_destination(&args.bundle) {
        true => newest_bundle(ctx, &args).await?,
        false if args.from_engine.is_some() => {
            return Err(UserError::new(
                Kind::Usage,
                format!(
                    "--from-engine picks a bundle in a destination, and {} is not one",
                    args.bundle
                ),
            )
            .into())
        }
        false => args.bundle.clone(),
    };
    // Messages name the bundle taken.
    let args = ComposeImportArgs { bundle, ..args };
    let (source, manifest) = open(&args.bundle, &ctx.s3).await?;
    let project = match &args.project_name {
        Some(p) => checked_name(p, "-p")?,
        None => manifest.project.clone(),
    };
    if args.replay_dumps {
        return replay_dumps(ctx, &args, &source, &manifest, &project).await;
    }
    // The dumps come before the volumes in a bundle: passed over here.
    if let Source::Stream(shared) = &source {
        for d in &manifest.dumps {
            skip_parts(shared, &d.file).await?;
        }
    }
    // What each missing volume is created like: from the bundle's record, labels only unless
    // --apply-volume-options (refused here, before the engine is touched, if it cannot work).
    let targets: Vec<(&BundleVolume, VolumeInfo, NewVolume)> = manifest
        .volumes
        .iter()
        .map(|bv| {
            let info = import_target(&bv.volume, &manifest.project, &project);
            let new = NewVolume::from_record(&info, args.apply_volume_options)
                .with_context(|| format!("volume `{}` of the bundle", bv.volume.key))?;
            Ok((bv, info, new))
        })
        .collect::<Result<_>>()?;

    let engine = ctx.engine().await?;
    let docker = &engine.docker;
    let names: Vec<String> = targets
        .iter()
        .map(|(_, info, _)| info.name.clone())
        .collect();
    let wait = flags::wait(&args.lock);
    held.add(&engine, &names, "compose-import", wait, &ctx.cancel)
        .await?;
    // Check every target before touching the first.
    let mut not_empty = Vec::new();
    let mut plan = Vec::new();
    for (bv, info, new) in &targets {
        let mut note = String::new();
        let action = match volumes::inspect(docker, &info.name).await? {
            None => {
                note = new.plan_note();
                "create"
            }
            Some(_) => {
                refuse_running(&info.name, &volumes::users(docker, &info.name).await?)?;
                if volumes::is_empty(&engine, &info.name).await? {
                    "fill empty existing"
                } else {
                    not_empty.push(info.name.clone());
                    "replace the content of"
                }
            }
        };
        let services = match bv.volume.services.as_slice() {
            [] => String::new(),
            s => format!(", services {}", s.join(", ")),
        };
        plan.push(format!(
            "  {action} volume {} (key {}{}{services}{note})",
            info.name,
            bv.volume.key,
            if bv.volume.external { ", external" } else { "" }
        ));
    }
    if !not_empty.is_empty() && !args.force {
        return Err(UserError::new(
            Kind::Refused,
            format!("volume(s) {} exist and are not empty", not_empty.join(", ")),
        )
        .hint("use --force to replace their content, or import under another project (-p NEW)")
        .into());
    }
    let renamed = if project == manifest.project {
        String::new()
    } else {
        format!(" as project {project}")
    };
    ctx.out.info(&format!(
        "importing project {}{renamed} from {} on {}:\n{}",
        manifest.project,
        args.bundle,
        engine.describe(),
        plan.join("\n")
    ));

    let started = Instant::now();
    let count = targets.len();
    for (i, (bv, info, new)) in targets.iter().enumerate() {
        ctx.check_cancelled()?;
        let input: DynRead = match &source {
            Source::Stream(shared) => Box::new(PartReader::new(shared.clone(), &bv.file)),
            Source::Dir(dir) => {
                let path = dir.join(&bv.file);
                open_input(&path.to_string_lossy(), &ctx.s3).await?.0
            }
        };
        let counters: Arc<Counters> = Arc::default();
        let opened = {
            let (counters, keys) = (Arc::clone(&counters), Arc::clone(&keys));
            tokio::task::spawn_blocking(move || {
                crate::archive::open_archive(input, counters, &keys)
            })
            .await
            .expect("opening the archive panicked")
        };
        let reader = opened.with_context(|| format!("reading volume `{}`", bv.volume.key))?;
        let label = format!("{project} [{}/{count}] {}", i + 1, bv.volume.key);
        let progress = ctx
            .out
            .progress(&label, Arc::clone(&counters), None, Measure::TarBytes);
        let volume_started = Instant::now();
        let result = restore_volume(
            ctx,
            &engine,
            &info.name,
            new,
            reader,
            RestoreOptions {
                force: args.force,
                rewrite: crate::settings::flags::entry_filter(&args.filter),
                check: Check::Quick,
            },
            counters,
        )
        .await;
        progress.finish();
        let report = result.with_context(|| format!("importing volume `{}`", info.name))?;
        warn_skipped(&ctx.out, &report);
        if let Source::Stream(shared) = &source {
            skip_parts(shared, &bv.file).await?;
        }
        ctx.out.info(&format!(
            "restored volume {} ({}, {:.1} s)",
            info.name,
            describe(&report),
            volume_started.elapsed().as_secs_f64()
        ));
    }
    if let Source::Stream(shared) = &source {
        let shared = Arc::clone(shared);
        let rest = tokio::task::spawn_blocking(move || shared.lock().expect("bundle").peek())
            .await
            .expect("reading the bundle panicked")
            .map_err(ArchiveError::from_io)?;
        if let Some((name, _)) = rest {
            output::warn(&format!(
                "ignored `{name}` after the last volume of the bundle"
            ));
        }
    }
    ctx.out.info(&format!(
        "imported project {project}: {count} volumes ({:.1} s); `docker compose -p {project} up` \
         adopts them",
        started.elapsed().as_secs_f64()
    ));
    if !manifest.dumps.is_empty() {
        let services: Vec<&str> = manifest.dumps.iter().map(|d| d.service.as_str()).collect();
        ctx.out.info(&format!(
            "the bundle also holds database dumps of {}; to replay them (replacing the \
             databases the volumes brought): `docker compose -p {project} up -d`, then \
             `docker volume-backup compose-import {} -p {project} --replay-dumps --force`",
            services.join(", "),
            args.bundle
        ));
    }
    Ok(())
}

/// Passes over the rest of the parts named `<file>.NNNNNN` in the bundle.
async fn skip_parts(shared: &Arc<Mutex<BundleReader<DynRead>>>, file: &str) -> Result<()> {
    let (shared, file) = (Arc::clone(shared), file.to_string());
    tokio::task::spawn_blocking(move || shared.lock().expect("bundle reader").skip_parts(&file))
        .await
        .expect("reading the bundle panicked")
        .map_err(ArchiveError::from_io)?;
    Ok(())
}

/// `--replay-dumps`: each dump of the bundle into the running container of its service in
/// `project`, with db-restore's machinery; the volumes are left as they are. Every service is
/// found running before the first dump is replayed.
async fn replay_dumps(
    ctx: &Ctx,
    args: &ComposeImportArgs,
    source: &Source,
    manifest: &BundleManifest,
    project: &str,
) -> Result<()> {
    if manifest.dumps.is_empty() {
        return Err(UserError::new(
            Kind::NotFound,
            format!("{} holds no database dumps", args.bundle),
        )
        .hint("compose-export --with-dumps writes them")
        .into());
    }
    let engine = ctx.engine().await?;
    let docker = &engine.docker;
    let mut servers = Vec::new();
    for d in &manifest.dumps {
        let id = dumps::service_container(docker, project, &d.service).await?;
        servers.push(Server::find(docker, &id, &Overrides::default()).await?);
    }
    let req = RestoreRequest {
        database: None,
        create: true,
        force: args.force,
    };
    for (d, server) in manifest.dumps.iter().zip(&servers) {
        ctx.check_cancelled()?;
        let input: DynRead = match source {
            Source::Stream(shared) => Box::new(PartReader::new(shared.clone(), &d.file)),
            Source::Dir(dir) => {
                let path = dir.join(&d.file);
                open_input(&path.to_string_lossy(), &ctx.s3).await?.0
            }
        };
        let opened = open_counted(input)
            .await
            .with_context(|| format!("reading the dump of service `{}`", d.service))?;
        let label = format!("{} <- {}", server.name, d.file);
        let started = Instant::now();
        let restored =
            restore_with_progress(server, opened, &label, None, &req, &ctx.cancel, ctx.out)
                .await
                .with_context(|| {
                    let force = if args.force {
                        ""
                    } else {
                        " (databases that exist are replaced only with --force)"
                    };
                    format!("replaying the dump of service `{}`{force}", d.service)
                })?;
        if let Source::Stream(shared) = source {
            skip_parts(shared, &d.file).await?;
        }
        ctx.out.info(&format!(
            "replayed the dump of service {} into {} ({} of dump, {:.1} s)",
            d.service,
            server.name,
            output::bytes(restored.bytes),
            started.elapsed().as_secs_f64()
        ));
    }
    ctx.out.info(&format!(
        "replayed {} dump(s) into project {project}",
        manifest.dumps.len()
    ));
    Ok(())
}

/// Opens the bundle (a file or stdin) and reads its manifest, or reads a `--split` directory's
/// manifest.
/// Whether `arg` names a destination holding bundles (`compose-import DEST -p PROJECT`): an
/// `s3://` prefix that is not an object's name, or a directory without a `--split` manifest
/// (`*.compose.json`).
fn is_destination(arg: &str) -> bool {
    if !Location::is_destination(arg) {
        return false;
    }
    if Location::is_remote(arg) {
        return true;
    }
    let has_split_manifest = std::fs::read_dir(arg).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".compose.json"))
    });
    !has_split_manifest
}

/// The newest bundle of the project `-p` names in the destination `args.bundle`.
async fn newest_bundle(ctx: &Ctx, args: &ComposeImportArgs) -> Result<String> {
    let dest = &args.bundle;
    let Some(project) = &args.project_name else {
        return Err(UserError::new(
            Kind::Usage,
            format!("{dest} holds no `--split` manifest: name the project whose newest bundle to import"),
        )
        .hint(format!("compose-import {dest} -p PROJECT"))
        .into());
    };
    let store = Store::open(&Location::parse(dest)?, false, &ctx.s3)?;
    let mut found = catalog::list(&store).await?;
    found.retain(|b| catalog::is_bundle_name(&b.name));
    let engine = match &args.from_engine {
        Some(label) => catalog::EngineChoice::Given(label.clone()),
        None => catalog::EngineChoice::Current(ctx.engine().await?.identity.label()),
    };
    let wanted = catalog::Wanted {
        kind: "project",
        name: project,
        what: "bundle",
        dest,
    };
    let newest = catalog::pick(&found, &wanted, &engine, None, &store.url)?;
    let now = chrono::Utc::now();
    ctx.out.info(&format!(
        "taking {}: the newest bundle of project {project} from engine {}, taken {} ({} ago)",
        newest.location,
        newest.engine_label(),
        newest
            .created
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S"),
        output::age((now - newest.created).num_seconds()),
    ));
    Ok(newest.location.clone())
}

async fn open(bundle: &str, s3: &S3Options) -> Result<(Source, BundleManifest)> {
    let path = Path::new(bundle);
    if bundle != "-" && path.is_dir() {
        let manifest = read_dir_manifest(path)?;
        return Ok((Source::Dir(path.to_path_buf()), manifest));
    }
    let (input, _) = open_input(bundle, s3).await?;
    let reader = tokio::task::spawn_blocking(move || {
        let mut reader = BundleReader::new(input);
        let manifest = reader.read_manifest()?;
        Ok::<_, std::io::Error>((reader, manifest))
    })
    .await
    .expect("reading the bundle panicked");
    let (reader, manifest) = reader
        .map_err(ArchiveError::from_io)
        .with_context(|| format!("cannot import {bundle}"))?;
    Ok((Source::Stream(Arc::new(Mutex::new(reader))), manifest))
}

/// The `<project>.compose.json` of a `--split` directory (exactly one).
fn read_dir_manifest(dir: &Path) -> Result<BundleManifest> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".compose.json"))
        })
        .collect();
    found.sort();
    let path = match found.as_slice() {
        [one] => one,
        [] => {
            return Err(UserError::new(
                Kind::NotFound,
                format!("{} has no *.compose.json bundle manifest", dir.display()),
            )
            .hint(format!(
                "compose-export --split DIR writes one ({}); archives without it restore one by \
                 one with `restore ARCHIVE VOLUME`",
                split_manifest_name("<project>")
            ))
            .into())
        }
        many => {
            return Err(UserError::new(
                Kind::Usage,
                format!(
                    "{} holds several bundle manifests: {}",
                    dir.display(),
                    many.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .into())
        }
    };
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: BundleManifest = serde_json::from_slice(&text).map_err(|e| {
        ArchiveError::Foreign(format!("{} is not a bundle manifest: {e}", path.display()))
    })?;
    // Every file it names is read from this directory, and only from it.
    let files = manifest.volumes.iter().map(|v| (&v.volume.key, &v.file));
    let dump_files = manifest.dumps.iter().map(|d| (&d.service, &d.file));
    for (of, file) in files.chain(dump_files) {
        split_file_name(file).map_err(|why| {
            UserError::new(
                Kind::Damaged,
                format!("{}: the file of `{of}` is `{file}`, {why}", path.display()),
            )
            .hint(format!(
                "a bundle manifest names files of its own directory ({}) by their plain names",
                dir.display()
            ))
        })?;
    }
    Ok(manifest)
}
