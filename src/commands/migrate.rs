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

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bollard::models::Volume;

use super::restore;
use crate::archive::{index, Counters, VolumeInfo};
use crate::cli::MigrateArgs;
use crate::docker::quiesce::Quiesce;
use crate::docker::{df, volumes, Engine, Helper};
use crate::error::{Kind, UserError};
use crate::output::{self, Measure, Progress};
use crate::settings::Ctx;
use crate::transfer;

pub async fn run(ctx: &Ctx, args: MigrateArgs) -> Result<()> {
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
    output::debug(&format!(
        "migrating from {source_endpoint} to {dest_endpoint}"
    ));
    let source = Engine::connect(source_endpoint).await?;
    let dest = Engine::connect(dest_endpoint).await?;
    // `--project P` (and `--all`, `--filter`): the volumes as `save` selects them, labels and
    // all, so compose on the destination adopts them under the same project.
    let names = match args.select.any() {
        true => crate::select::volume_names(&source.docker, &args.select).await?,
        false => args.volumes.clone(),
    };
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
    let quiesce = Quiesce::plan(&source.docker, &names, args.quiesce.mode(), None).await?;
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
            output::info(&format!(
                "{}; {done} ({})",
                copied.verified(),
                copied.rate()
            ));
        }
        Ok(())
    };
    quiesce.run(&source.docker, &ctx.cancel, work).await?;
    Ok(())
}

/// Whether `target` on `dest` is `volume` itself (two contexts reaching one engine): the same
/// name, creation time and mount point. Engine IDs cannot tell, as engines started from one
/// image or configuration share them.
async fn is_same_volume(volume: &Volume, dest: &Engine, target: &str) -> Result<bool> {
    if volume.name != target {
        return Ok(false);
    }
    Ok(volumes::inspect(&dest.docker, target)
        .await?
        .is_some_and(|there| {
            there.created_at == volume.created_at && there.mountpoint == volume.mountpoint
        }))
}

/// `name (endpoint)`, for the progress bar: `mydata -> prod (ssh://deploy@prod.example.com)`.
fn describe_short(engine: &Engine) -> String {
    format!("{} ({})", engine.endpoint.context, engine.endpoint.host)
}

/// The destination of one copy, as found before anything is copied.
pub struct Target {
    pub name: String,
    /// It did not exist: the copy creates it (and removes it again on failure).
    pub missing: bool,
}

/// Looks the destination up and refuses, before anything is copied, one that running containers
/// use or that holds data without `force`.
pub async fn check_target(dest: &Engine, target: &str, force: bool) -> Result<Target> {
    let docker = &dest.docker;
    let existing = volumes::inspect(docker, target).await?;
    if existing.is_some() {
        restore::refuse_running(target, &volumes::users(docker, target).await?)?;
        if !force && !volumes::is_empty(docker, target).await? {
            return Err(UserError::new(
                Kind::Refused,
                format!("volume `{target}` on {} is not empty", dest.describe()),
            )
            .hint("use --force to replace its content, or choose another name with --as")
            .into());
        }
    }
    Ok(Target {
        name: target.to_owned(),
        missing: existing.is_none(),
    })
}

/// What one copy did.
pub struct Copied {
    pub target: String,
    pub created: bool,
    pub entries: usize,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Copied {
    /// `verified: 54,261 entries, checksum ok`.
    pub fn verified(&self) -> String {
        format!(
            "verified: {} entries, checksum ok",
            output::thousands(self.entries as u64)
        )
    }

    /// `1.31 GB in 13.6 s, 96 MB/s`.
    pub fn rate(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        format!(
            "{} in {secs:.1} s, {}/s",
            output::bytes(self.bytes),
            output::bytes((self.bytes as f64 / secs) as u64)
        )
    }
}

/// Copies `volume` from `source` into `target` on `dest` (the same engine for `clone`) and
/// checks the result against what was sent. On failure a volume this created is removed again
/// (or, if even that fails, reported as incomplete); an existing one that `--force` replaced
/// is reported as not matching.
pub async fn copy_volume_between(
    ctx: &Ctx,
    source: &Engine,
    dest: &Engine,
    volume: &Volume,
    target: Target,
    force: bool,
    label: &str,
) -> Result<Copied> {
    let started = Instant::now();
    let name = target.name.clone();
    let created = target.missing;
    let like = VolumeInfo {
        name: name.clone(),
        ..volumes::info(volume)
    };
    let counters: Arc<Counters> = Arc::default();
    let helper = Helper::create(&source.docker, &volume.name, true).await?;
    let progress = Progress::start(label, Arc::clone(&counters), None, Measure::TarBytes);
    let measure = progress.visible().then(|| {
        let (docker, endpoint) = (source.docker.clone(), source.endpoint.clone());
        let (volume, set_total) = (volume.name.clone(), progress.total_setter());
        tokio::spawn(async move {
            let sizes = df::volume_sizes(&docker, &endpoint, Duration::from_secs(30)).await;
            if let Some(&size) = sizes.get(&volume) {
                set_total(size);
            }
        })
    });
    let streamed = transfer::stream_volume(
        &source.docker,
        &helper,
        Arc::clone(&counters),
        true,
        |reader| {
            let counters = Arc::clone(&counters);
            restore::restore_volume(ctx, dest, &target.name, Some(like), reader, force, counters)
        },
    )
    .await;
    if let Some(task) = measure {
        task.abort();
    }
    progress.finish();
    helper.remove(&source.docker).await;
    let (report, sent) = match streamed {
        Ok((report, Some(sent))) => (report, sent),
        Ok((_, None)) => unreachable!("stream_volume indexes when asked to"),
        Err(e) => return Err(with_ssh_cause(e, source, dest, started)),
    };
    let totals = report.verdict.totals();
    let read_back: Arc<Counters> = Arc::default();
    let verifying = Progress::start(
        &format!("{label}: verifying"),
        Arc::clone(&read_back),
        Some(totals.tar_bytes),
        Measure::TarBytes,
    );
    let checked = check_copy(ctx, dest, &name, &sent, read_back, verifying)
        .await
        .map_err(|e| with_ssh_cause(e, source, dest, started));
    if let Err(e) = checked {
        if created {
            if let Err(removal) = volumes::remove(&dest.docker, &name).await {
                output::warn(&format!(
                    "volume `{name}` on {} holds an INCOMPLETE copy and could not be removed: \
                     {removal:#}; remove it with `docker --context {} volume rm {name}`",
                    dest.describe(),
                    dest.endpoint.context
                ));
            }
            return Err(e.context(format!(
                "the copy could not be confirmed; volume `{name}` was removed again"
            )));
        }
        return Err(e.context(format!(
            "volume `{name}` on {} does NOT hold a good copy of the source",
            dest.describe()
        )));
    }
    Ok(Copied {
        target: name,
        created,
        entries: sent.len(),
        bytes: totals.content_bytes,
        elapsed: started.elapsed(),
    })
}

/// A cut ssh connection shows up as a broken body far from the transport: ssh's own words
/// (recorded when it ended) say why.
fn with_ssh_cause(
    e: anyhow::Error,
    source: &Engine,
    dest: &Engine,
    since: Instant,
) -> anyhow::Error {
    let cause = dest
        .ssh_failure(since)
        .or_else(|| source.ssh_failure(since));
    match cause {
        Some(ssh) if !format!("{e:#}").contains(&ssh.to_string()) => {
            e.context(format!("the transfer was cut: {ssh}"))
        }
        _ => e,
    }
}

/// Reads the destination volume back and compares every entry with what was sent.
async fn check_copy(
    ctx: &Ctx,
    dest: &Engine,
    name: &str,
    sent: &index::Index,
    counters: Arc<Counters>,
    progress: Progress,
) -> Result<()> {
    ctx.check_cancelled()?;
    let helper = Helper::create(&dest.docker, name, true).await;
    let landed = match helper {
        Ok(helper) => {
            let landed = tokio::select! {
                r = transfer::index_volume_counted(&dest.docker, &helper, counters) => r,
                _ = ctx.cancel.cancelled() => Err(UserError::interrupted().into()),
            };
            helper.remove(&dest.docker).await;
            landed
        }
        Err(e) => Err(e),
    };
    progress.finish();
    let landed = landed.context("reading the copy back to verify it")?;
    let diff = index::compare(sent, &landed);
    if diff.is_empty() {
        return Ok(());
    }
    let listed: String = diff
        .to_string()
        .lines()
        .take(20)
        .collect::<Vec<_>>()
        .join("\n  ");
    Err(UserError::new(
        Kind::Failure,
        format!(
            "the copy of volume `{name}` differs from what was sent in {} entries:\n  {listed}",
            diff.len()
        ),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_what_was_checked_and_how_fast() {
        let copied = Copied {
            target: "mydata".into(),
            created: true,
            entries: 54_261,
            bytes: 1_310_000_000,
            elapsed: Duration::from_secs_f64(13.6),
        };
        assert_eq!(copied.verified(), "verified: 54,261 entries, checksum ok");
        assert_eq!(copied.rate(), "1.31 GB in 13.6 s, 96.32 MB/s");
    }
}
