//! Streaming one volume out of the engine: a read-only helper, the archive writer on a blocking
//! thread, a progress display (with the volume's size when someone sees the bar), and the helper
//! removed on every path. `save_one` adds the destinations and the summary line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::archive::{Counters, ManifestHead, SourceInfo, VolumeInfo};
use crate::docker::helper::with_helper;
use crate::docker::{df, volumes, Engine};
use crate::ops::output_plan::Target;
use crate::ops::select::Saved;
use crate::ops::transfer;
use crate::ops::Ctx;
use crate::output::{self, Measure, Progress};
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
    } = to;
    let sink = match &target {
        Target::Stdout => {
            let stdout = Some(("stdout".into(), Sink::stdout()?));
            Fanout::open(uploads, &[], "", stdout, force)
        }
        Target::File(path) => {
            let file = Some((path.display().to_string(), Sink::file(path, force)?));
            Fanout::open(uploads, &[], "", file, force)
        }
        Target::To(name) => Fanout::open(uploads, stores, name, None, force),
    }
    .await?;
    let started = Instant::now();
    let (sink, trailer) = stream_volume(ctx, engine, volume, label, sink, options).await?;
    let written = sink
        .commit(&ctx.cancel)
        .await
        .map_err(|e| e.context(format!("saving volume `{}`", volume.name)))?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "{} entries, {} of data",
        output::thousands(trailer.entries),
        output::bytes(trailer.content_bytes)
    );
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
        Target::Stdout => None,
        Target::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
        Target::To(name) => name.rsplit('/').next().map(str::to_string),
    };
    if let Some(archive) = archive {
        let t = SaveTime {
            volume: volume.name.clone(),
            archive,
            saved_at: chrono::Utc::now(),
            seconds,
            content_bytes: trailer.content_bytes,
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
    let locations: Vec<&str> = written.iter().map(|w| w.location.as_str()).collect();
    Ok(Saved {
        volume: volume.name.clone(),
        path: match target {
            Target::Stdout => None,
            Target::File(_) | Target::To(_) => Some(PathBuf::from(locations.join(", "))),
        },
        size: written.first().and_then(|w| w.size),
        entries: trailer.entries,
        content_bytes: trailer.content_bytes,
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
    // Secret-looking option values (a share's password) never go into an archive.
    let recorded = volumes::info(volume);
    let head = ManifestHead::new(
        VolumeInfo {
            options: crate::redact::options(&recorded.options),
            ..recorded
        },
        SourceInfo {
            context: engine.endpoint.context.clone(),
            endpoint: engine.endpoint.host.to_string(),
            engine_version: engine.server_version.clone(),
        },
        options.encode.compression,
    );
    let docker = &engine.docker;
    let result = with_helper(engine, &volume.name, true, async |helper| {
        ctx.out.debug(&format!(
            "helper container {} for {}",
            helper.name, volume.name
        ));
        // The fault tests kill the run here: containers stopped, a helper and a partial file.
        fail::fail_point!("save-streaming");
        helper.warn_if_owners_unread();
        let counters = Arc::default();
        let progress = VolumeProgress::start(engine, &volume.name, label, Arc::clone(&counters));
        let result =
            transfer::save_volume(docker, helper, sink, options, head, counters, &ctx.cancel).await;
        progress.finish();
        result
    })
    .await;
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
