//! `save VOLUME...` (or `--all`, `--project P`, `--filter`): stream volumes into compressed
//! archives with a manifest, optionally with their containers stopped or paused meanwhile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Local;

use crate::archive::{Compression, EncodeOptions, EncryptTo, ManifestHead, SourceInfo};
use crate::cli::SaveArgs;
use crate::docker::quiesce::Quiesce;
use crate::docker::{df, volumes, Engine, Helper};
use crate::error::{Kind, UserError};
use crate::output::{self, Measure, Progress};
use crate::select::Saved;
use crate::settings::Ctx;
use crate::storage::upload::{Fanout, Uploads};
use crate::storage::Sink;
use crate::transfer;

/// Where one volume's archive goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    File(PathBuf),
    Stdout,
    /// This name in every `--to` destination.
    To(String),
}

pub async fn run(ctx: &Ctx, args: SaveArgs) -> Result<()> {
    let stamp = Local::now().format("%Y%m%d_%H%M%S").to_string();
    // Decide every output before touching the engine: argument mistakes fail fast.
    let selecting = args.select.any();
    if selecting {
        // The selection is known only from the engine; check the output kind now.
        plan_output("volume", &args, &stamp)?;
    }
    let mut plans = Vec::new();
    for volume in &args.volumes {
        plans.push(plan_output(volume, &args, &stamp)?);
    }
    let policy = crate::commands::prune::policy(&args.keep)?;
    if !policy.is_empty() && args.to.is_empty() {
        return Err(UserError::new(
            Kind::Usage,
            "--keep-* prunes the --to destinations: give one",
        )
        .into());
    }
    let stores = crate::storage::open_all(&args.to, true, &ctx.s3)?;
    // Keys are read (or the passphrase asked) before the engine is touched, too.
    let encrypt = crate::keys_args::encrypt_to(&args.encrypt)?.map(Arc::new);
    let engine = ctx.engine().await?;
    let describe = engine.describe();
    let names = match selecting {
        true => crate::select::volume_names(&engine.docker, &args.select).await?,
        false => args.volumes.clone(),
    };
    if selecting {
        for volume in &names {
            plans.push(plan_output(volume, &args, &stamp)?);
        }
    }
    let mut found = Vec::new();
    for volume in &names {
        found.push(volumes::require(&engine.docker, volume, &describe).await?);
    }
    let quiesce = Quiesce::plan(&engine.docker, &names, args.quiesce.mode(), None).await?;
    let count = found.len();
    let uploads = Uploads::new();
    let work = async {
        let mut saved = Vec::new();
        for (i, (volume, (target, compression))) in found.iter().zip(plans).enumerate() {
            ctx.check_cancelled()?;
            let opts = args.tuning.encode(compression);
            let encrypt = encrypt.clone();
            let label = match count {
                1 => volume.name.clone(),
                n => format!("[{}/{n}] {}", i + 1, volume.name),
            };
            let one = save_one(
                ctx, &engine, volume, &label, target, opts, encrypt, args.force, &stores, &uploads,
            )
            .await;
            if one.is_err() {
                // Aborted uploads finish aborting before the error is reported.
                uploads.settle().await;
            }
            saved.push(one?);
        }
        Ok(saved)
    };
    let (saved, downtimes) = quiesce.run(&engine.docker, &ctx.cancel, work).await?;
    if count > 1 {
        crate::select::print_summary(&saved, &downtimes);
    }
    // Pruning only after every volume reached every destination: a failed save deletes nothing.
    if !policy.is_empty() {
        crate::commands::prune::after_save(&stores, &names, &policy).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn save_one(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    label: &str,
    target: Target,
    opts: EncodeOptions,
    encrypt: Option<Arc<EncryptTo>>,
    force: bool,
    stores: &[crate::storage::Store],
    uploads: &Uploads,
) -> Result<Saved> {
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
    let options = transfer::ArchiveOptions {
        encode: opts,
        encrypt,
    };
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
            (Target::Stdout, _) | (_, None) => output::info(&format!(
                "saved {} to stdout ({summary}, {seconds:.1} s)",
                volume.name
            )),
            (_, Some(size)) => output::info(&format!(
                "saved {} ({}, {summary}, {seconds:.1} s)",
                w.location,
                output::bytes(size)
            )),
        }
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
pub(crate) async fn stream_volume<W: std::io::Write + Send + 'static>(
    ctx: &Ctx,
    engine: &Engine,
    volume: &bollard::models::Volume,
    label: &str,
    sink: W,
    options: transfer::ArchiveOptions,
) -> Result<(W, crate::archive::ManifestTrailer)> {
    let head = ManifestHead::new(
        volumes::info(volume),
        SourceInfo {
            context: engine.endpoint.context.clone(),
            endpoint: engine.endpoint.host.to_string(),
            engine_version: engine.server_version.clone(),
        },
        options.encode.compression,
    );
    let docker = &engine.docker;
    let helper = Helper::create(docker, &volume.name, true).await?;
    output::debug(&format!(
        "helper container {} for {}",
        helper.name, volume.name
    ));
    let counters = Arc::default();
    let progress = Progress::start(label, Arc::clone(&counters), None, Measure::TarBytes);
    // The engine can measure the volume (it walks it): worth it only for a bar someone sees.
    let measure = progress.visible().then(|| {
        let (docker, endpoint) = (docker.clone(), engine.endpoint.clone());
        let (name, set_total) = (volume.name.clone(), progress.total_setter());
        tokio::spawn(async move {
            let sizes = df::volume_sizes(&docker, &endpoint, Duration::from_secs(30)).await;
            if let Some(&size) = sizes.get(&name) {
                set_total(size);
            }
        })
    });
    let result =
        transfer::save_volume(docker, &helper, sink, options, head, counters, &ctx.cancel).await;
    if let Some(task) = measure {
        task.abort();
    }
    progress.finish();
    helper.remove(docker).await;
    result.map_err(|e| e.context(format!("saving volume `{}`", volume.name)))
}

/// The output and compression for one volume: `-o FILE`, `-o DIR`, `-o -`, or the seed's
/// `./backups/<volume>_<YYYYmmdd_HHMMSS>` naming (`.age` added when encrypting); compression
/// from the flag, else the file's extension (less `.age`), else zstd.
fn plan_output(volume: &str, args: &SaveArgs, stamp: &str) -> Result<(Target, Compression)> {
    let many = args.volumes.len() > 1 || args.select.any();
    let usage = |msg: String| -> anyhow::Error { UserError::new(Kind::Usage, msg).into() };
    let encrypted = args.encrypt.any();
    let age = if encrypted { ".age" } else { "" };
    let default_name =
        |dir: &Path, c: Compression| dir.join(format!("{volume}_{stamp}.{}{age}", c.extension()));
    let chosen = args.compression.unwrap_or(Compression::Zstd);
    match args.output.as_deref() {
        // `--to` conflicts with `-o`: the same name goes to every destination.
        _ if !args.to.is_empty() => Ok((
            Target::To(default_name(Path::new(""), chosen).display().to_string()),
            chosen,
        )),
        None => Ok((
            Target::File(default_name(Path::new("backups"), chosen)),
            chosen,
        )),
        Some("-") if many => Err(usage("`-o -` takes a single volume".into())),
        Some("-") => Ok((Target::Stdout, chosen)),
        Some(o) if o.ends_with('/') || Path::new(o).is_dir() => {
            Ok((Target::File(default_name(Path::new(o), chosen)), chosen))
        }
        Some(_) if many => Err(usage(
            "-o FILE takes a single volume; give a directory (`-o DIR/`) for several".into(),
        )),
        Some(file) => {
            let lower = file.to_ascii_lowercase();
            let plain_name = match lower.strip_suffix(".age") {
                Some(_) if !encrypted => {
                    return Err(usage(format!(
                        "{file} looks like an encrypted archive but no --encrypt-to, \
                         --encrypt-to-file, --passphrase-file or --passphrase was given"
                    )))
                }
                Some(stem) => stem,
                None => &lower,
            };
            let by_name = Compression::from_file_name(plain_name);
            let compression = match (args.compression, by_name) {
                (Some(flag), Some(ext)) if flag != ext => {
                    return Err(usage(format!(
                        "{file} looks like a {ext} archive but --compression {flag} was given"
                    )))
                }
                (Some(flag), _) => flag,
                (None, Some(ext)) => ext,
                (None, None) => Compression::Zstd,
            };
            Ok((Target::File(PathBuf::from(file)), compression))
        }
    }
    .and_then(|(t, c)| {
        EncodeOptions {
            compression: c,
            level: args.tuning.level,
            threads: 1,
        }
        .validate()
        .map_err(usage)?;
        Ok((t, c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(volumes: &[&str], output: Option<&str>, compression: Option<Compression>) -> SaveArgs {
        SaveArgs {
            volumes: volumes.iter().map(|s| s.to_string()).collect(),
            output: output.map(String::from),
            compression,
            tuning: Default::default(),
            force: false,
            to: Vec::new(),
            encrypt: Default::default(),
            keep: Default::default(),
            select: Default::default(),
            quiesce: Default::default(),
        }
    }

    #[test]
    fn default_output_follows_the_seed_naming() {
        let (t, c) = plan_output("db", &args(&["db"], None, None), "20261125_103000").unwrap();
        assert_eq!(t, Target::File("backups/db_20261125_103000.tar.zst".into()));
        assert_eq!(c, Compression::Zstd);
        let a = args(&["db"], None, Some(Compression::Gzip));
        let (t, _) = plan_output("db", &a, "20261125_103000").unwrap();
        assert_eq!(t, Target::File("backups/db_20261125_103000.tar.gz".into()));
    }

    #[test]
    fn extension_chooses_compression() {
        for (name, want) in [
            ("x.tar.gz", Compression::Gzip),
            ("x.tgz", Compression::Gzip),
            ("x.tar", Compression::None),
            ("x.tar.zst", Compression::Zstd),
            ("x.bin", Compression::Zstd),
        ] {
            let (_, c) = plan_output("v", &args(&["v"], Some(name), None), "s").unwrap();
            assert_eq!(c, want, "{name}");
        }
        let conflict = args(&["v"], Some("x.tar.gz"), Some(Compression::Zstd));
        assert!(plan_output("v", &conflict, "s").is_err());
    }

    #[test]
    fn directories_and_stdout() {
        let (t, _) = plan_output("v", &args(&["v", "w"], Some("out/"), None), "s").unwrap();
        assert_eq!(t, Target::File("out/v_s.tar.zst".into()));
        let (t, _) = plan_output("v", &args(&["v"], Some("-"), None), "s").unwrap();
        assert_eq!(t, Target::Stdout);
        assert!(plan_output("v", &args(&["v", "w"], Some("-"), None), "s").is_err());
        assert!(plan_output("v", &args(&["v", "w"], Some("f.tar"), None), "s").is_err());
    }

    #[test]
    fn encrypted_names_end_in_age() {
        let mut a = args(&["db"], None, None);
        assert!(plan_output("db", &args(&["db"], Some("x.tar.gz.age"), None), "s").is_err());
        a.encrypt.recipients.push("age1...".into());
        let (t, c) = plan_output("db", &a, "s").unwrap();
        assert_eq!(t, Target::File("backups/db_s.tar.zst.age".into()));
        assert_eq!(c, Compression::Zstd);
        a.output = Some("x.tar.gz.age".into());
        let (t, c) = plan_output("db", &a, "s").unwrap();
        assert_eq!(t, Target::File("x.tar.gz.age".into()));
        assert_eq!(c, Compression::Gzip);
    }
}
