//! Copying a volume between engines (or inside one), verified: a read-only helper on the source
//! streams the volume's tar; the entries are renamed for upload as a restore renames them and go
//! straight into the destination through `ops::restore::restore_volume` (so a new volume gets
//! the source's driver, options and labels, the tool's own labels left out, and is removed
//! again on failure, and `force` replaces a non-empty one exactly as `restore --force` does).
//! The same bytes feed an indexer that
//! describes every entry sent (content hashed); once the engine has taken the upload, the
//! destination is read back and indexed, and the two must match entry for entry. Memory stays
//! constant: bounded channels between the two engines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bollard::models::Volume;

use crate::archive::{index, Counters, VolumeInfo};
use crate::docker::helper::with_helper;
use crate::docker::{volumes, Engine};
use crate::error::{Kind, UserError};
use crate::ops::new_volume::NewVolume;
use crate::ops::restore;
use crate::ops::save::VolumeProgress;
use crate::ops::transfer;
use crate::ops::Ctx;
use crate::output::{self, Measure, Progress};

/// Whether `target` on `dest` is `volume` itself (two contexts reaching one engine): the same
/// name, creation time and mount point. Engine IDs cannot tell, as engines started from one
/// image or configuration share them.
pub async fn is_same_volume(volume: &Volume, dest: &Engine, target: &str) -> Result<bool> {
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
pub fn describe_short(engine: &Engine) -> String {
    format!("{} ({})", engine.endpoint.context, engine.endpoint.host)
}

/// The destination of one copy, as found before anything is copied.
pub struct Destination {
    pub name: String,
    /// It did not exist: the copy creates it (and removes it again on failure).
    pub missing: bool,
}

/// Looks the destination up and refuses, before anything is copied, one that running containers
/// use or that holds data without `force`.
pub async fn check_target(dest: &Engine, target: &str, force: bool) -> Result<Destination> {
    let docker = &dest.docker;
    let existing = volumes::inspect(docker, target).await?;
    if existing.is_some() {
        restore::refuse_running(target, &volumes::users(docker, target).await?)?;
        if !force && !volumes::is_empty(dest, target).await? {
            return Err(UserError::new(
                Kind::Refused,
                format!("volume `{target}` on {} is not empty", dest.describe()),
            )
            .hint("use --force to replace its content, or choose another name with --as")
            .into());
        }
    }
    Ok(Destination {
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
    target: Destination,
    force: bool,
    label: &str,
) -> Result<Copied> {
    let started = Instant::now();
    let name = target.name.clone();
    let created = target.missing;
    // The source is a live volume on an engine the user names, not data from elsewhere: its
    // driver and options are the user's own configuration and are applied as they are.
    let new = NewVolume::like_live(VolumeInfo {
        name: name.clone(),
        ..volumes::info(volume)
    });
    let counters: Arc<Counters> = Arc::default();
    let streamed = with_helper(source, &volume.name, true, async |helper| {
        helper.warn_if_owners_unread();
        let progress = VolumeProgress::start(source, &volume.name, label, Arc::clone(&counters));
        let streamed = transfer::stream_volume(
            &source.docker,
            helper,
            Arc::clone(&counters),
            true,
            |reader| {
                let counters = Arc::clone(&counters);
                restore::restore_volume(
                    ctx,
                    dest,
                    &target.name,
                    &new,
                    reader,
                    restore::RestoreOptions {
                        force,
                        // Read back in full below, against what the source sent.
                        check: transfer::Check::ByCaller,
                        ..Default::default()
                    },
                    counters,
                )
            },
        )
        .await;
        progress.finish();
        streamed
    })
    .await;
    let (report, sent) = match streamed {
        Ok((report, Some(sent))) => (report, sent),
        Ok((_, None)) => unreachable!("stream_volume indexes when asked to"),
        Err(e) => return Err(with_ssh_cause(e, source, dest, started)),
    };
    let totals = report.verdict.totals();
    let read_back: Arc<Counters> = Arc::default();
    let verifying = ctx.out.progress(
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
            if let Err(removal) = volumes::remove_ours(&dest.docker, &name).await {
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
    let landed = with_helper(dest, name, true, async |helper| {
        let owners = helper.reports_owners();
        let index = tokio::select! {
            r = transfer::index_volume_counted(&dest.docker, helper, counters) => r?,
            _ = ctx.cancel.cancelled() => return Err(UserError::interrupted().into()),
        };
        Ok((index, owners))
    })
    .await;
    progress.finish();
    let (landed, owners) = landed.context("reading the copy back to verify it")?;
    // An engine that cannot report owners (Podman) is compared without them.
    let diff = if owners {
        index::compare(sent, &landed)
    } else {
        index::compare(&index::without_owners(sent.clone()), &landed)
    };
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
