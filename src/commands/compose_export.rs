//! `compose-export`: every volume of a compose project into one streamed bundle (or, with
//! `--split DIR`, one archive per volume), the project's containers stopped meanwhile and
//! started again on every path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::archive::{Compression, EncodeOptions};
use crate::cli::ComposeExportArgs;
use crate::compose::bundle::{self, BundleManifest, BundleVolume, BundleWriter};
use crate::compose::dumps;
use crate::compose::{project_volumes, resolve_project, Project, ProjectVolume};
use crate::db::dump::{dump_with_progress, DumpPlan};
use crate::docker::lock::Held;
use crate::docker::quiesce::{Mode, Quiesce};
use crate::docker::{df, volumes, Engine};
use crate::error::{Kind, UserError};
use crate::ops::output_plan::{self, Target};
use crate::ops::save::{save_one, stream_volume, SaveTo};
use crate::ops::select::{print_summary, Saved};
use crate::ops::transfer::ArchiveOptions;
use crate::output;
use crate::settings::flags;
use crate::settings::Ctx;
use crate::storage::upload::Uploads;
use crate::storage::Sink;

/// Where the export goes.
#[derive(Debug, Clone, PartialEq)]
enum Output {
    Bundle(Target),
    Split(PathBuf),
}

pub async fn run(ctx: &Ctx, args: ComposeExportArgs) -> Result<()> {
    // The volumes' locks, taken on the way and released on every path.
    let mut held = Held::none();
    let result = export(ctx, args, &mut held).await;
    held.release().await;
    result
}

/// `compose-export`, with the locks of the project's volumes taken into `held`.
async fn export(ctx: &Ctx, args: ComposeExportArgs, held: &mut Held) -> Result<()> {
    let project = resolve_project(&flags::project_spec(&args.compose))?;
    let started = chrono::Utc::now();
    let compression = args
        .compression
        .map(Compression::from)
        .unwrap_or(Compression::Zstd);
    let encode = flags::encode(&args.tuning, compression);
    encode
        .validate()
        .map_err(|m| UserError::new(Kind::Usage, m))?;
    let encrypt = crate::settings::keys::encrypt_to(&args.encrypt)?.map(Arc::new);
    let extension = format!(
        "{}{}",
        compression.extension(),
        if encrypt.is_some() { ".age" } else { "" }
    );

    let engine = ctx.engine().await?;
    // Named like archives: UTC and the engine, so `compose-import DEST` takes this engine's.
    let stamp = crate::storage::catalog::stamp(started, &engine.identity.label());
    let out = plan_output(&args, &project.name, &stamp);
    let docker = &engine.docker;
    let found = project_volumes(docker, &project).await?;
    if found.is_empty() {
        return Err(UserError::new(
            Kind::NotFound,
            format!(
                "compose project `{}` (from {}) has no volumes on {}",
                project.name,
                project.name_source,
                engine.describe()
            ),
        )
        .hint("name the project with -p NAME, or run in its directory")
        .into());
    }
    let names: Vec<String> = found.iter().map(|v| v.name.clone()).collect();
    let wait = flags::wait(&args.lock);
    held.add(&engine, &names, "compose-export", wait, &ctx.cancel)
        .await?;
    announce(&engine, &project, &found).await;
    if args.with_dumps && encrypt.is_some() {
        return Err(UserError::new(
            Kind::Usage,
            "--with-dumps does not encrypt the dumps: it does not go with --encrypt-to, \
             --encrypt-to-file or --passphrase-file",
        )
        .hint("export with --with-dumps -o -, piped through `age`, to encrypt the whole bundle")
        .into());
    }
    // The dumps are planned (and their credentials checked) before any output exists.
    let dump_plans = if args.with_dumps {
        dumps::plan(docker, &project.name).await?
    } else {
        Vec::new()
    };
    if args.with_dumps && dump_plans.is_empty() {
        output::warn(&format!(
            "--with-dumps: no running service of project {} is a database",
            project.name
        ));
    }
    let manifest = BundleManifest {
        kind: bundle::KIND.into(),
        format: 1,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created: chrono::Utc::now().to_rfc3339(),
        project: project.name.clone(),
        source: engine.source_info(),
        volumes: found
            .iter()
            .map(|v| BundleVolume {
                file: match &out {
                    Output::Bundle(_) => bundle::parts_name(&v.key, &extension),
                    Output::Split(_) => format!("{}.{extension}", v.name),
                },
                // Secret-looking option values stay out of the bundle, encrypted or not.
                volume: ProjectVolume {
                    options: crate::redact::options(&v.options),
                    ..v.clone()
                },
            })
            .collect(),
        dumps: dump_plans
            .iter()
            .map(|(service, plan)| dumps::record(service, plan, matches!(out, Output::Split(_))))
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    // The output is opened before anything is stopped: a bad path costs no downtime.
    let sink = match &out {
        Output::Bundle(Target::File(path)) => Some(Sink::file(path, args.force)?),
        Output::Bundle(Target::Stdout) => Some(Sink::stdout()?),
        Output::Bundle(Target::To(_)) => unreachable!("compose-export has no --to"),
        Output::Split(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
            None
        }
    };
    // The dumps are taken while the databases run, before anything is stopped; a failed dump
    // drops the bundle's sink (its temporary file goes) and nothing was stopped yet.
    let dump_encode = EncodeOptions {
        compression: Compression::Zstd,
        level: None,
        threads: encode.threads,
    };
    let writer = match sink {
        Some(sink) => {
            let mut writer = BundleWriter::new(sink);
            writer
                .add_file(bundle::MANIFEST_NAME, &json)
                .context("writing the bundle")?;
            for ((_, plan), record) in dump_plans.iter().zip(&manifest.dumps) {
                let parts = take_dump(ctx, plan, writer.parts(&record.file), dump_encode).await?;
                writer = tokio::task::spawn_blocking(move || parts.finish())
                    .await
                    .expect("writing the bundle panicked")
                    .context("writing the bundle")?;
            }
            Some(writer)
        }
        None => {
            let dir = match &out {
                Output::Split(dir) => dir,
                Output::Bundle(_) => unreachable!("a bundle has a sink"),
            };
            for ((_, plan), record) in dump_plans.iter().zip(&manifest.dumps) {
                let sink = Sink::file(&dir.join(&record.file), args.force)?;
                let sink = take_dump(ctx, plan, sink, dump_encode).await?;
                tokio::task::spawn_blocking(move || sink.commit())
                    .await
                    .expect("commit panicked")?;
            }
            None
        }
    };
    let mode = match (args.no_stop, args.pause) {
        (_, true) => Some(Mode::Pause),
        (true, false) => None,
        (false, false) => Some(Mode::Stop),
    };
    let quiesce = Quiesce::plan(
        docker,
        &names,
        mode,
        Some(&project.model.service_deps(&project.name)),
    )
    .await?;
    let options = ArchiveOptions { encode, encrypt };
    let started = Instant::now();
    let work = async {
        match (&out, writer) {
            (Output::Split(dir), _) => {
                export_split(ctx, &engine, &manifest, &json, dir, options, args.force).await
            }
            (_, Some(writer)) => export_bundle(ctx, &engine, &manifest, writer, options).await,
            (Output::Bundle(_), None) => unreachable!("a bundle has a sink"),
        }
    };
    let ((saved, size), downtimes) = quiesce.run(&engine, &ctx.cancel, work).await?;
    print_summary(&saved, &downtimes, ctx.out);
    let seconds = started.elapsed().as_secs_f64();
    match (&out, size) {
        (Output::Bundle(Target::File(path)), Some(size)) => ctx.out.info(&format!(
            "saved {} ({}, {} volumes, {seconds:.1} s)",
            path.display(),
            output::bytes(size),
            saved.len()
        )),
        (Output::Split(dir), _) => ctx.out.info(&format!(
            "saved {} volumes and {} into {} ({seconds:.1} s)",
            saved.len(),
            bundle::split_manifest_name(&project.name),
            dir.display()
        )),
        _ => ctx.out.info(&format!(
            "saved project {} to stdout ({} volumes, {seconds:.1} s)",
            project.name,
            saved.len()
        )),
    }
    Ok(())
}

/// `--split DIR`, else the `-o` rule for a bundle.
fn plan_output(args: &ComposeExportArgs, project: &str, stamp: &str) -> Output {
    match &args.split {
        Some(dir) => Output::Split(dir.clone()),
        None => Output::Bundle(output_plan::bundle(args.output.as_deref(), project, stamp)),
    }
}

/// `project shop: 3 volumes (db-data 2.1 GB, uploads 340 MB, cache 12 MB)`.
async fn announce(engine: &Engine, project: &Project, found: &[ProjectVolume]) {
    if engine.out.quiet() {
        return;
    }
    let sizes = df::volume_sizes(
        &engine.docker,
        &engine.endpoint,
        engine.out,
        Duration::from_secs(5),
    )
    .await;
    let list: Vec<String> = found
        .iter()
        .map(|v| match sizes.get(&v.name) {
            Some(&s) => format!("{} {}", v.key, output::bytes(s)),
            None => v.key.clone(),
        })
        .collect();
    engine.out.info(&format!(
        "project {}: {} volume{} ({})",
        project.name,
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        list.join(", ")
    ));
}

/// The progress label: the project, and which volume of how many.
fn label(manifest: &BundleManifest, i: usize, v: &ProjectVolume) -> String {
    format!(
        "{} [{}/{}] {}",
        manifest.project,
        i + 1,
        manifest.volumes.len(),
        v.key
    )
}

/// Streams one service's dump into `out` (db-dump's writer); `out` comes back only if the dump
/// succeeded.
async fn take_dump<W: std::io::Write + Send + 'static>(
    ctx: &Ctx,
    plan: &DumpPlan,
    out: W,
    encode: EncodeOptions,
) -> Result<W> {
    let started = Instant::now();
    let (out, dumped) = dump_with_progress(plan, out, encode, &ctx.cancel, ctx.out).await?;
    ctx.out.info(&format!(
        "dumped {} ({}, {} of dump, {:.1} s)",
        plan.server.name,
        plan.describe(),
        output::bytes(dumped),
        started.elapsed().as_secs_f64()
    ));
    Ok(out)
}

/// One stream: the manifest and dumps (already written), then each volume's archive in parts;
/// committed at the end only.
async fn export_bundle(
    ctx: &Ctx,
    engine: &Engine,
    manifest: &BundleManifest,
    mut writer: BundleWriter<Sink>,
    options: ArchiveOptions,
) -> Result<(Vec<Saved>, Option<u64>)> {
    let mut saved = Vec::new();
    for (i, bv) in manifest.volumes.iter().enumerate() {
        ctx.check_cancelled()?;
        let v = &bv.volume;
        let volume = volumes::require(&engine.docker, &v.name, &engine.describe()).await?;
        let started = Instant::now();
        let parts = writer.parts(&bv.file);
        let label = label(manifest, i, v);
        let (parts, trailer) =
            stream_volume(ctx, engine, &volume, &label, parts, options.clone()).await?;
        writer = tokio::task::spawn_blocking(move || parts.finish())
            .await
            .expect("writing the bundle panicked")
            .context("writing the bundle")?;
        ctx.report.add(crate::notify::Item {
            volume: v.name.clone(),
            location: Some(bv.file.clone()),
            size: None,
            seconds: started.elapsed().as_secs_f64(),
        });
        saved.push(Saved {
            volume: v.name.clone(),
            path: Some(PathBuf::from(&bv.file)),
            size: None,
            entries: trailer.entries,
            content_bytes: trailer.content_bytes,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let size = tokio::task::spawn_blocking(move || -> Result<Option<u64>> {
        writer.finish().context("writing the bundle")?.commit()
    })
    .await
    .expect("committing the bundle panicked")?;
    Ok((saved, size))
}

/// One archive per volume, named as the seed does, and the bundle manifest beside them.
async fn export_split(
    ctx: &Ctx,
    engine: &Engine,
    manifest: &BundleManifest,
    json: &[u8],
    dir: &Path,
    options: ArchiveOptions,
    force: bool,
) -> Result<(Vec<Saved>, Option<u64>)> {
    let mut saved = Vec::new();
    // Local files only: no upload to wait for.
    let uploads = Uploads::new(ctx.out);
    for (i, bv) in manifest.volumes.iter().enumerate() {
        ctx.check_cancelled()?;
        let volume = volumes::require(&engine.docker, &bv.volume.name, &engine.describe()).await?;
        let to = SaveTo {
            target: Target::File(dir.join(&bv.file)),
            stores: &[],
            uploads: &uploads,
            force,
            restic: &[],
            rehash: false,
        };
        let label = label(manifest, i, &bv.volume);
        let one = save_one(ctx, engine, &volume, &label, to, options.clone());
        saved.push(one.await?);
    }
    // The manifest last: a directory with it is complete.
    let path = dir.join(bundle::split_manifest_name(&manifest.project));
    let mut sink = Sink::file(&path, force)?;
    std::io::Write::write_all(&mut sink, json).context("writing the bundle manifest")?;
    sink.commit()?;
    Ok((saved, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> ComposeExportArgs {
        let mut argv = vec!["docker-volume-backup", "compose-export"];
        argv.extend(args);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::ComposeExport(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn outputs() {
        let o = plan_output(&parse(&[]), "shop", "20261125_103000");
        assert_eq!(
            o,
            Output::Bundle(Target::File(
                "backups/shop_20261125_103000.compose.tar".into()
            ))
        );
        let o = plan_output(&parse(&["-o", "-"]), "shop", "s");
        assert_eq!(o, Output::Bundle(Target::Stdout));
        let o = plan_output(&parse(&["-o", "out/"]), "shop", "s");
        assert_eq!(
            o,
            Output::Bundle(Target::File("out/shop_s.compose.tar".into()))
        );
        let o = plan_output(&parse(&["--split", "migration"]), "shop", "s");
        assert_eq!(o, Output::Split("migration".into()));
        assert!(crate::cli::Cli::try_parse_from([
            "x",
            "compose-export",
            "--split",
            "d",
            "-o",
            "f"
        ])
        .is_err());
    }
}
