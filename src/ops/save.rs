//! Streaming one volume out of the engine: a read-only helper, the archive writer on a blocking
//! thread, a progress display (with the volume's size when someone sees the bar), and the helper
//! removed on every path. `save_one` adds the destinations and the summary line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::archive::{Counters, ManifestHead, VolumeInfo};
use crate::docker::helper::with_helper;
use crate::docker::{df, volumes, Engine};
use crate::ops::output_plan::Target;
use crate::ops::select::Saved;
use crate::ops::transfer;
use crate::ops::Ctx;
use crate::output::{self, Measure, Progress};
use crate::storage::restic::{self, save::Written};
use crate::storage::save_times::{self, SaveTime};
use crate::storage::upload::{Fanout, Uploads};
use crate::storage::Sink;

/// Where `save_one` writes: a file, stdout, or a name in each of `stores` (`--to`).
pub struct SaveTo<'a> {
    pub target: Target,
    pub stores: &'a [crate::storage::Store],
    /// The run's uploads, so that aborted ones can be waited for.
    pub uploads: &'a Uploads,
    /// Overwrite an existing file or object.
    pub force: bool,
    /// restic repositories (`--to restic:REPO`), fed from the same read of the volume.
    pub restic: &'a [ResticDest],
    /// No parent snapshot: every file is chunked again (`--rehash`).
    pub rehash: bool,
}

/// An opened restic repository to save into.
pub struct ResticDest {
    pub target: restic::ResticTarget,
    pub repo: restic::Repo,
}

/// Saves one volume to its target (every `--to` destination at once, the volume read once),
/// prints where it went, and returns what the summary shows.
pub async fn save_one(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    label: &str,
    to: SaveTo<'_>,
    options: transfer::ArchiveOptions,
) -> Result<Saved> {
    let SaveTo {
        target,
        stores,
        uploads,
        force,
        restic,
        rehash,
    } = to;
    // With only restic repositories, no archive is made at all.
    let archive = !(!restic.is_empty() && stores.is_empty() && matches!(target, Target::To(_)));
    let sink = match &target {
        _ if !archive => None,
        Target::Stdout => {
            let stdout = Some(("stdout".into(), Sink::stdout()?));
            Some(Fanout::open(uploads, &[], "", stdout, force).await?)
        }
        Target::File(path) => {
            let file = Some((path.display().to_string(), Sink::file(path, force)?));
            Some(Fanout::open(uploads, &[], "", file, force).await?)
        }
        Target::To(name) => Some(Fanout::open(uploads, stores, name, None, force).await?),
    };
    let started = Instant::now();
    let (archived, snapshots) =
        stream_volume_to(ctx, engine, volume, label, sink, options, restic, rehash).await?;
    let (written, trailer) = match archived {
        Some((sink, trailer)) => {
            let written = sink
                .commit(&ctx.cancel)
                .await
                .map_err(|e| e.context(format!("saving volume `{}`", volume.name)))?;
            (written, (trailer.entries, trailer.content_bytes))
        }
        None => {
            let first = snapshots.first();
            let counts = first.map_or((0, 0), |w| (w.entries, w.content_bytes));
            (Vec::new(), counts)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "{} entries, {} of data",
        output::thousands(trailer.0),
        output::bytes(trailer.1)
    );
    for (dest, w) in restic.iter().zip(&snapshots) {
        let parent = match &w.parent {
            Some(p) => format!("parent {}", &p[..8.min(p.len())]),
            None => "no parent".into(),
        };
        ctx.out.info(&format!(
            "saved {} to {} as snapshot {} ({summary}, {} added, {parent}, {seconds:.1} s)",
            volume.name,
            dest.target,
            &w.id[..8.min(w.id.len())],
            output::bytes(w.added_bytes),
        ));
        ctx.out.debug(&format!(
            "files: {} new, {} changed, {} unchanged; {} through temp files; hard links: {}",
            w.files_new, w.files_changed, w.files_unmodified, w.spilled, w.links
        ));
        ctx.report.add(crate::notify::Item {
            volume: volume.name.clone(),
            location: Some(format!("{}#{}", dest.target, w.id)),
            size: Some(w.added_bytes),
            seconds,
        });
    }
    for w in &written {
        match (&target, w.size) {
            (Target::Stdout, _) | (_, None) => ctx.out.info(&format!(
                "saved {} to stdout ({summary}, {seconds:.1} s)",
                volume.name
            )),
            (_, Some(size)) => ctx.out.info(&format!(
                "saved {} ({}, {summary}, {seconds:.1} s)",
                w.location,
                output::bytes(size)
            )),
        }
    }
    // How long the save took, for `status`; by the archive's file name, as the catalog lists it.
    let archive = match &target {
        _ if written.is_empty() => None,
        Target::Stdout => None,
        Target::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
        Target::To(name) => name.rsplit('/').next().map(str::to_string),
    };
    if let Some(archive) = archive {
        let t = SaveTime {
            volume: volume.name.clone(),
            engine: engine.identity.label(),
            archive,
            saved_at: chrono::Utc::now(),
            seconds,
            content_bytes: trailer.1,
        };
        match crate::schedule::Dirs::of_user().and_then(|d| save_times::record(&d.state, &t)) {
            Ok(path) => ctx.out.debug(&format!("recorded in {}", path.display())),
            Err(e) => output::warn(&format!("the save time is not recorded: {e:#}")),
        }
    }
    for w in &written {
        ctx.report.add(crate::notify::Item {
            volume: volume.name.clone(),
            location: (!matches!(target, Target::Stdout)).then(|| w.location.clone()),
            size: w.size,
            seconds,
        });
    }
    let mut locations: Vec<String> = written.iter().map(|w| w.location.clone()).collect();
    locations.extend(restic.iter().map(|d| d.target.to_string()));
    Ok(Saved {
        volume: volume.name.clone(),
        path: match target {
            Target::Stdout => None,
            Target::File(_) | Target::To(_) => Some(PathBuf::from(locations.join(", "))),
        },
        size: written.first().and_then(|w| w.size),
        entries: trailer.0,
        content_bytes: trailer.1,
        seconds,
    })
}

/// Streams one volume into `sink` as an archive, with a progress display labelled `label`, through
/// a helper container that is removed on every path. Shared with `compose-export`.
pub async fn stream_volume<W: std::io::Write + Send + 'static>(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    label: &str,
    sink: W,
    options: transfer::ArchiveOptions,
) -> Result<(W, crate::archive::ManifestTrailer)> {
    let (archived, _) =
        stream_volume_to(ctx, engine, volume, label, Some(sink), options, &[], false).await?;
    Ok(archived.expect("an archive was asked for"))
}

/// Streams one volume, read once, into `sink` as an archive (when given) and into each restic
/// repository as a snapshot.
#[allow(clippy::too_many_arguments)]
async fn stream_volume_to<W: std::io::Write + Send + 'static>(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    label: &str,
    sink: Option<W>,
    options: transfer::ArchiveOptions,
    restic: &[ResticDest],
    rehash: bool,
) -> Result<(Option<(W, crate::archive::ManifestTrailer)>, Vec<Written>)> {
    // Secret-looking option values (a share's password) never go into an archive.
    let recorded = volumes::info(volume);
    let info = VolumeInfo {
        options: crate::redact::options(&recorded.options),
        ..recorded
    };
    let source = engine.source_info();
    let head = ManifestHead::new(info.clone(), source.clone(), options.encode.compression);
    let counters: Arc<Counters> = Arc::default();
    let archiving = sink.is_some();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut raw: Vec<transfer::RawConsumer<Written>> = Vec::new();
    for dest in restic {
        let spec = restic::save::Spec {
            manifest: restic::SnapshotManifest {
                tool: "docker-volume-backup".into(),
                tool_version: env!("CARGO_PKG_VERSION").into(),
                volume: info.clone(),
                source: source.clone(),
                engine_key: engine.identity.key(),
                engine_label: engine.identity.label(),
                engine_flavour: engine.identity.flavour.as_str().into(),
                entries: 0,
                content_bytes: 0,
                hard_links: Vec::new(),
            },
            hostname: restic::hostname(&engine.identity),
            tags: restic::tags(&volume.name, &engine.identity),
            rehash,
        };
        let (repo, target) = (dest.repo.reopen()?, dest.target.clone());
        // The progress bar counts the stream once: the archive's reader, or the first snapshot's.
        let counters = if archiving || !raw.is_empty() {
            Arc::default()
        } else {
            Arc::clone(&counters)
        };
        let cancel = Arc::clone(&cancel);
        // The parent and the index are read while the helper is made: the stream, once it
        // flows, is never held up by them.
        let prepared = {
            let (repo, target, spec) = (repo.reopen()?, target.clone(), spec.clone());
            std::thread::spawn(move || restic::save::prepare(&repo, &target, &spec))
        };
        raw.push(Box::new(move |stream| {
            let prepared = prepared.join().expect("reading the index panicked")?;
            restic::save::save_stream(&repo, &target, &spec, prepared, stream, counters, cancel)
        }));
    }
    let docker = &engine.docker;
    let watch = {
        let (token, flag) = (ctx.cancel.clone(), Arc::clone(&cancel));
        tokio::spawn(async move {
            token.cancelled().await;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let result = with_helper(engine, &volume.name, true, async |helper| {
        ctx.out.debug(&format!(
            "helper container {} for {}",
            helper.name, volume.name
        ));
        // The fault tests kill the run here: containers stopped, a helper and a partial file.
        fail::fail_point!("save-streaming");
        helper.warn_if_owners_unread();
        let progress = VolumeProgress::start(engine, &volume.name, label, Arc::clone(&counters));
        let sink = sink.map(|s| (s, options, head));
        let result = transfer::save_volume_fanout(
            docker,
            helper,
            sink,
            raw,
            Arc::clone(&counters),
            &ctx.cancel,
        )
        .await;
        progress.finish();
        result
    })
    .await;
    watch.abort();
    result.map_err(|e| e.context(format!("saving volume `{}`", volume.name)))
}

/// A progress bar over a volume being read, sized by the engine's measure of the volume once it
/// arrives (the engine walks the volume for it: asked only when someone sees the bar).
pub struct VolumeProgress {
    bar: Progress,
    measure: Option<tokio::task::JoinHandle<()>>,
}

impl VolumeProgress {
    pub fn start(engine: &Engine, volume: &str, label: &str, counters: Arc<Counters>) -> Self {
        let bar = engine
            .out
            .progress(label, counters, None, Measure::TarBytes);
        let measure = bar.visible().then(|| {
            let (docker, endpoint, out) =
                (engine.docker.clone(), engine.endpoint.clone(), engine.out);
            let (name, set_total) = (volume.to_string(), bar.total_setter());
            tokio::spawn(async move {
                let sizes =
                    df::volume_sizes(&docker, &endpoint, out, Duration::from_secs(30)).await;
                if let Some(&size) = sizes.get(&name) {
                    set_total(size);
                }
            })
        });
        VolumeProgress { bar, measure }
    }

    /// Removes the bar (and stops waiting for the measure).
    pub fn finish(self) {
        if let Some(task) = self.measure {
            task.abort();
        }
        self.bar.finish();
    }
}
