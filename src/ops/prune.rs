//! Deleting old backups from one destination by restic-style rules, each volume of each engine
//! on its own (two hosts saving a same-named volume into one bucket never prune each other's).
//! Only archives this tool wrote are candidates, and the newest of a group always stays; a dry
//! run shows what would go and which rules keep the rest. `after_save` runs the rules on every
//! destination a save wrote to. In a restic repository (`prune_restic`) the rules apply per
//! volume and engine, then restic's forget and prune.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::Local;

use crate::output::{self, Printer};
use crate::retention::{self, Policy};
use crate::storage::restic::{self, maintain, Password, ResticTarget};
use crate::storage::{catalog, storage_error, Store};

/// The restic repositories a save wrote to, and the password that opens them.
pub struct ResticSaved<'a> {
    pub targets: &'a [ResticTarget],
    pub password: &'a Password,
}

/// After a successful save: the same rules on each destination written to (directories and
/// buckets, then restic repositories), for the volumes saved. Every destination is tried; the
/// first failure is returned.
pub async fn after_save(
    stores: &[Store],
    restic: Option<ResticSaved<'_>>,
    volumes: &[String],
    policy: &Policy,
    out: Printer,
) -> Result<()> {
    let mut first_error = None;
    for store in stores {
        if let Err(e) = prune(store, Some(volumes), policy, false, out).await {
            output::warn(&format!("{e:#}"));
            first_error.get_or_insert(e);
        }
    }
    if let Some(restic) = restic {
        for target in restic.targets {
            let password = restic.password.clone();
            if let Err(e) = prune_restic(target, password, Some(volumes), policy, false, out).await
            {
                output::warn(&format!("{e:#}"));
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.context("the backups were saved, but pruning failed")),
        None => Ok(()),
    }
}

/// Applies `policy` to the backups of `volumes` (all when `None`) in `store`.
pub async fn prune(
    store: &Store,
    volumes: Option<&[String]>,
    policy: &Policy,
    dry_run: bool,
    out: Printer,
) -> Result<()> {
    let found = catalog::list(store).await?;
    // By volume, then engine (archives of an unknown engine, from older versions, apart).
    let mut groups: BTreeMap<(String, String), Vec<catalog::Backup>> = BTreeMap::new();
    let mut foreign = 0;
    for b in found {
        if volumes.is_some_and(|vs| !vs.contains(&b.volume)) {
            continue;
        }
        if !b.ours {
            foreign += 1;
            out.debug(&format!(
                "{}: not written by this tool, left alone",
                b.location
            ));
            continue;
        }
        let key = (b.volume.clone(), b.engine_label().to_string());
        groups.entry(key).or_default().push(b);
    }
    let mut doomed = Vec::new();
    for ((volume, engine), backups) in &groups {
        let times: Vec<_> = backups.iter().map(|b| b.created).collect();
        let decisions = retention::apply(&times, policy);
        if !out.quiet() || dry_run {
            output::message(&format!("{volume} from engine {engine} in {}:", store.url));
        }
        for (b, d) in backups.iter().zip(&decisions) {
            let when = b.created.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
            let line = if d.keep {
                format!("  keep    {when}  {}  ({})", b.name, d.reasons.join(", "))
            } else if dry_run {
                format!("  would remove  {when}  {}", b.name)
            } else {
                format!("  remove  {when}  {}", b.name)
            };
            if dry_run {
                output::message(&line);
            } else {
                out.info(&line);
            }
            if !d.keep {
                doomed.push(b.clone());
            }
        }
    }
    if foreign > 0 {
        out.info(&format!(
            "{foreign} archive(s) in {} not written by this tool (no manifest): left alone",
            store.url
        ));
    }
    if dry_run {
        out.info(&format!(
            "dry run: {} would be removed from {}",
            doomed.len(),
            store.url
        ));
        return Ok(());
    }
    let mut failed = Vec::new();
    for b in &doomed {
        if let Err(e) = store.op.delete(&b.name).await {
            let err = storage_error(&format!("cannot remove {}", b.location), e);
            output::warn(&format!("{err:#}"));
            failed.push(err);
        }
    }
    if let Some(first) = failed.into_iter().next() {
        return Err(first.context(format!(
            "pruning {} failed: not every old backup was removed",
            store.url
        )));
    }
    out.info(&format!("pruned {}: {} removed", store.url, doomed.len()));
    Ok(())
}

/// The same rules on a restic repository: the tool's snapshots of each volume of each engine
/// (restic's host) on their own; snapshots restic or another tool made are left alone. The
/// ones that go are forgotten, then the data no snapshot needs any more is pruned.
pub async fn prune_restic(
    target: &ResticTarget,
    password: Password,
    volumes: Option<&[String]>,
    policy: &Policy,
    dry_run: bool,
    out: Printer,
) -> Result<()> {
    let shown = target.to_string();
    let (repo, all) = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let repo = restic::open(&target, &password)?;
            let all = restic::read::snapshots(&repo)?;
            Ok((repo, all))
        })
        .await
        .expect("opening the repository panicked")?
    };
    let mut doomed = Vec::new();
    for group in maintain::decide(&all, None, policy) {
        if volumes.is_some_and(|vs| !vs.contains(&group.volume)) {
            continue;
        }
        if !out.quiet() || dry_run {
            output::message(&format!(
                "{} of engine {} in {shown}:",
                group.volume, group.host
            ));
        }
        for (s, d) in &group.verdicts {
            let when = s.created.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S");
            let id = s.short_id();
            let line = if d.keep {
                format!("  keep    {when}  {id}  ({})", d.reasons.join(", "))
            } else if dry_run {
                format!("  would remove  {when}  {id}")
            } else {
                format!("  remove  {when}  {id}")
            };
            if dry_run {
                output::message(&line);
            } else {
                out.info(&line);
            }
            if !d.keep {
                doomed.push(s.id.clone());
            }
        }
    }
    let foreign = all.iter().filter(|s| !s.ours).count();
    if foreign > 0 {
        out.info(&format!(
            "{foreign} snapshot(s) in {shown} not made by this tool: left alone"
        ));
    }
    if dry_run {
        out.info(&format!(
            "dry run: {} snapshot(s) would be forgotten in {shown}",
            doomed.len()
        ));
        return Ok(());
    }
    let n = doomed.len();
    let pruned = tokio::task::spawn_blocking(move || maintain::forget_and_prune(&repo, &doomed))
        .await
        .expect("pruning panicked")
        .map_err(|e| e.context(format!("pruning {shown} failed")))?;
    out.info(&format!(
        "pruned {shown}: {n} snapshot(s) forgotten; {} pack file(s) marked for deletion, {} repacked; \
         {} marked by an earlier prune removed ({})",
        pruned.packs_marked,
        pruned.packs_repacked,
        pruned.packs_removed,
        output::bytes(pruned.bytes_removed)
    ));
    Ok(())
}
