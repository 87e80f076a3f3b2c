//! `verify ARCHIVE [--against VOLUME | --restore-test]`: read the whole archive (decompression,
//! every tar entry, the manifest's counts and checksum) and give a verdict; optionally compare it
//! entry by entry with a live volume, or restore it into a scratch volume and compare that.
//! `verify restic:REPO` checks a restic repository as `restic check` does, reading all or a
//! sample of its pack files with `--read-data` / `--read-data-subset`.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::archive::index::{self, Index};
use crate::archive::{Counters, Keys, RewriteOptions, Verdict};
use crate::cli::{Format, VerifyArgs};
use crate::docker::helper::with_helper;
use crate::docker::lock::Held;
use crate::docker::{volumes, Engine};
use crate::error::{Kind, UserError};
use crate::ops::transfer;
use crate::output;
use crate::pipe::DynRead;
use crate::settings::{flags, Ctx};
use crate::storage::restic::{self, maintain, ResticTarget};
use crate::storage::restore_times::{self, RestoreTime};
use crate::storage::{open_input, S3Options};

/// What reading the archive found.
struct Read {
    verdict: Verdict,
    index: Option<Index>,
    /// The volume the manifest names.
    volume: Option<String>,
    /// The label of the engine the manifest names.
    engine: Option<String>,
}

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> Result<()> {
    if ResticTarget::is_restic(&args.archive) {
        let target = ResticTarget::parse(&args.archive)?;
        return verify_restic(&args, target).await;
    }
    if args.read_data || args.read_data_subset.is_some() {
        return Err(UserError::new(
            Kind::Usage,
            "--read-data and --read-data-subset are for restic:REPO; an archive is always read whole",
        )
        .into());
    }
    if args.restore_test && args.archive == "-" {
        return Err(UserError::new(
            Kind::Usage,
            "--restore-test reads the archive twice: give a file, not `-`",
        )
        .into());
    }
    let compare = args.against.is_some() || args.restore_test;
    // Shared by the two reads of a test restore (identities cannot be cloned).
    let keys = Arc::new(crate::settings::keys::keys(&args.decrypt)?);
    let read = read_archive(&args.archive, compare, Arc::clone(&keys), &ctx.s3)
        .await
        .with_context(|| format!("{} is damaged", args.archive))?;
    let totals = read.verdict.totals();
    let checked = match &read.verdict {
        Verdict::Verified(_) => "checksum matches the manifest",
        Verdict::VerifiedEntries(_) => {
            "checksum matches the manifest (entries only: a format 1 manifest is not covered)"
        }
        Verdict::NoManifest(_) => "no manifest to check against (made by another tool)",
    };
    let mut summary = format!(
        "ok: {} entries, {} of data, {checked}",
        output::thousands(totals.entries),
        output::bytes(totals.content_bytes)
    );
    let mut measured: Option<RestoreTime> = None;
    let diff = match (&args.against, read.index) {
        (Some(volume), Some(archive)) => {
            let engine = ctx.engine().await?;
            let wait = flags::wait(&args.lock);
            let held = Held::acquire(
                &engine,
                std::slice::from_ref(volume),
                "verify",
                wait,
                &ctx.cancel,
            )
            .await?;
            let (live, owners) = held.around(index_existing(&engine, volume)).await?;
            Some((
                volume.clone(),
                compare_with(archive, &live, owners, &mut summary),
            ))
        }
        (None, Some(archive)) => {
            let engine = ctx.engine().await?;
            let ((restored, owners), took) =
                restore_test(ctx, &engine, &args.archive, keys).await?;
            let seconds = took.as_secs_f64();
            let name = args.archive.rsplit('/').next().unwrap_or_default();
            let by_name = crate::storage::catalog::from_name(name);
            let volume = read
                .volume
                .clone()
                .or_else(|| by_name.as_ref().map(|n| n.volume.clone()));
            // Recorded for the engine the archive was saved from, as `status --rto` groups.
            let source_engine = read
                .engine
                .clone()
                .or_else(|| by_name.and_then(|n| n.engine))
                .unwrap_or_else(|| crate::storage::catalog::UNKNOWN_ENGINE.to_string());
            summary.push_str(&format!(
                "; test restore took {seconds:.1} s ({}/s)",
                output::bytes(rate(totals.content_bytes, seconds) as u64)
            ));
            if let Some(volume) = volume {
                let t = RestoreTime {
                    volume,
                    engine: source_engine,
                    archive: args.archive.clone(),
                    measured_at: chrono::Utc::now(),
                    seconds,
                    content_bytes: totals.content_bytes,
                    bytes_per_second: rate(totals.content_bytes, seconds),
                };
                match crate::schedule::Dirs::of_user()
                    .and_then(|d| restore_times::record(&d.state, &t))
                {
                    Ok(path) => ctx.out.debug(&format!("recorded in {}", path.display())),
                    Err(e) => output::warn(&format!("the restore time is not recorded: {e:#}")),
                }
                measured = Some(t);
            } else {
                output::warn(&format!(
                    "the restore time is not recorded: {} names no volume",
                    args.archive
                ));
            }
            let diff = compare_with(archive, &restored, owners, &mut summary);
            Some(("a test restore".to_string(), diff))
        }
        _ => None,
    };
    if let Some((what, diff)) = &diff {
        summary.push_str(&if diff.is_empty() {
            format!("; identical to {what}")
        } else {
            format!("; {} entries differ in {what} (listed)", diff.len())
        });
    }
    match args.format {
        Format::Json => {
            let differences = diff.as_ref().map(|(what, d)| {
                json!({
                    "compared_with": what,
                    "added": d.added,
                    "removed": d.removed,
                    "changed": d.changed.iter().map(|(p, w)| json!({"path": p, "what": w})).collect::<Vec<_>>(),
                })
            });
            let value = json!({
                "archive": args.archive,
                "verified": read.verdict.matched(),
                "manifest_covered": matches!(read.verdict, Verdict::Verified(_)),
                "entries": totals.entries,
                "content_bytes": totals.content_bytes,
                "differences": differences,
                "restore_test": measured.as_ref().map(|t| json!({
                    "volume": t.volume,
                    "engine": t.engine,
                    "seconds": t.seconds,
                    "bytes_per_second": t.bytes_per_second,
                })),
            });
            output::data_json(&value)?;
        }
        Format::Table => {
            output::data_line(&summary)?;
            if let Some((_, diff)) = &diff {
                output::data(&diff.to_string())?;
            }
        }
    }
    match diff {
        Some((what, d)) if !d.is_empty() => Err(UserError::new(
            Kind::Differs,
            format!(
                "{} differs from {what} in {} entries",
                args.archive,
                d.len()
            ),
        )
        .into()),
        _ => Ok(()),
    }
}

/// Reads the whole archive; with `index`, describes every entry too.
async fn read_archive(path: &str, index: bool, keys: Arc<Keys>, s3: &S3Options) -> Result<Read> {
    let (input, _) = open_input(path, s3).await?;
    tokio::task::spawn_blocking(move || -> Result<Read> {
        let mut reader = crate::archive::open_archive(input, Arc::<Counters>::default(), &keys)?;
        let index = if index {
            Some(index::index_entries(&mut reader)?)
        } else {
            while let crate::archive::Item::Entry(_) = reader.next_item()? {}
            None
        };
        reader.drain()?;
        let verdict = reader.verify()?;
        let volume = reader.head().map(|h| h.volume.name.clone());
        let engine = reader
            .head()
            .and_then(|h| h.source.engine.as_ref())
            .map(|e| e.label.clone());
        Ok(Read {
            verdict,
            index,
            volume,
            engine,
        })
    })
    .await
    .expect("verify panicked")
}

/// Describes a volume's entries; `false` with them when the engine does not report owners.
async fn index_existing(engine: &Engine, volume: &str) -> Result<(Index, bool)> {
    let docker = &engine.docker;
    volumes::require(docker, volume, &engine.describe()).await?;
    with_helper(engine, volume, true, async |helper| {
        let index = transfer::index_volume(docker, helper).await?;
        Ok((index, helper.reports_owners()))
    })
    .await
}

/// Compares an archive with a volume; without `owners` (an engine that cannot report them, as
/// Podman's API) owners are left out and the summary says so.
fn compare_with(archive: Index, volume: &Index, owners: bool, summary: &mut String) -> index::Diff {
    if owners {
        return index::compare_restored(&archive, volume);
    }
    summary.push_str("; owners not compared (the engine does not report them)");
    index::compare_restored(&index::without_owners(archive), volume)
}

/// Content bytes per second.
fn rate(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds.max(0.001)
}

/// Restores into a scratch volume, describes it, and removes it whatever happens. Returns the
/// description and how long the restore took (opening the archive to the engine's answer).
async fn restore_test(
    ctx: &Ctx,
    engine: &Engine,
    path: &str,
    keys: Arc<Keys>,
) -> Result<((Index, bool), std::time::Duration)> {
    let docker = &engine.docker;
    let scratch = volumes::scratch_name("restore-test", "");
    let mark = crate::journal::record(crate::journal::Step::Scratch {
        engine: engine.endpoint.journal_ref(),
        volume: scratch.clone(),
    });
    volumes::create_scratch_named(docker, &scratch).await?;
    let result = async {
        let started = std::time::Instant::now();
        let (input, _) = open_input(path, &ctx.s3).await?;
        let reader = tokio::task::spawn_blocking(move || -> Result<_> {
            Ok(crate::archive::open_archive(
                input as DynRead,
                Arc::default(),
                &keys,
            )?)
        })
        .await
        .expect("opening the archive panicked")?;
        with_helper(engine, &scratch, false, async |helper| {
            transfer::restore_into(
                docker,
                helper,
                reader,
                RewriteOptions::default(),
                transfer::Check::Quick,
                &ctx.cancel,
            )
            .await
        })
        .await
        .context("the test restore failed")?;
        let took = started.elapsed();
        Ok((index_existing(engine, &scratch).await?, took))
    }
    .await;
    if !volumes::remove_scratch(docker, &scratch).await {
        mark.keep();
    }
    result
}

/// `verify restic:REPO [--read-data | --read-data-subset S]`.
async fn verify_restic(args: &VerifyArgs, target: ResticTarget) -> Result<()> {
    if args.against.is_some() || args.restore_test {
        return Err(UserError::new(
            Kind::Usage,
            "--against and --restore-test are for archives; restore a snapshot with `restore restic:REPO VOLUME --snapshot ID`",
        )
        .into());
    }
    let read = match (&args.read_data_subset, args.read_data) {
        (Some(s), _) => {
            maintain::parse_subset(s).map_err(|why| {
                UserError::new(Kind::Usage, format!("--read-data-subset {why}"))
                    .hint("give n/m (e.g. 1/5), a percentage (10%) or a size (500M)")
            })?;
            maintain::ReadData::Subset(s.clone())
        }
        (None, true) => maintain::ReadData::Subset("all".into()),
        (None, false) => maintain::ReadData::None,
    };
    let shown = target.to_string();
    let password = restic::password(args.restic.restic_password_file.as_deref(), false)?;
    let (checked, snapshots) = {
        let read = read.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let repo = restic::open(&target, &password)?;
            let snapshots = restic::read::snapshots(&repo)?.len();
            Ok((maintain::check(&repo, &read)?, snapshots))
        })
        .await
        .expect("checking the repository panicked")?
    };
    let data = match &read {
        maintain::ReadData::None => "pack data not read (--read-data reads it)".to_string(),
        maintain::ReadData::Subset(s) if s == "all" => "all pack data read".to_string(),
        maintain::ReadData::Subset(s) => format!("pack data subset {s} read"),
    };
    match args.format {
        Format::Json => output::data_json(&json!({
            "repository": shown,
            "verified": checked.errors.is_empty(),
            "snapshots": snapshots,
            "read_data": match &read {
                maintain::ReadData::None => None,
                maintain::ReadData::Subset(s) => Some(s.clone()),
            },
            "errors": checked.errors,
            "warnings": checked.warnings,
        }))?,
        Format::Table => {
            for w in &checked.warnings {
                output::warn(w);
            }
            if checked.errors.is_empty() {
                output::data_line(&format!(
                    "ok: {shown}: {snapshots} snapshot(s), index, snapshots and trees checked, {data}"
                ))?;
            } else {
                for e in &checked.errors {
                    output::data_line(&format!("error: {e}"))?;
                }
            }
        }
    }
    if checked.errors.is_empty() {
        Ok(())
    } else {
        Err(UserError::new(
            Kind::Damaged,
            format!(
                "{shown} is damaged: the check found {} error(s) (listed)",
                checked.errors.len()
            ),
        )
        .into())
    }
}
