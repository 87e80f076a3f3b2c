//! `cleanup DEST... [--max-age D] [--filter F] [--dry-run] [-f]`: removes the dangling volumes
//! (no container uses them) whose newest backup in DEST is younger than `--max-age` and passes a
//! quick check (it opens, and its manifest names the volume). A volume without such a backup, or
//! one a container uses when it comes to removing it, stays. Asks first on a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use crate::archive::{Counters, Keys};
use crate::cli::{CleanupArgs, Format};
use crate::docker::lock::Held;
use crate::docker::{containers, df, volumes};
use crate::error::{Kind, UserError};
use crate::output::{self, Column, Table};
use crate::settings::{flags, Ctx};
use crate::storage::{catalog, open_input, Location, Store};

/// One `--filter`, in `docker volume prune`'s forms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelFilter {
    key: String,
    value: Option<String>,
    negated: bool,
}

impl LabelFilter {
    fn parse(s: &str) -> Result<LabelFilter> {
        let (negated, rest) = if let Some(rest) = s.strip_prefix("label!=") {
            (true, rest)
        } else if let Some(rest) = s.strip_prefix("label=") {
            (false, rest)
        } else {
            return Err(UserError::new(
                Kind::Usage,
                format!("--filter {s:?}: cleanup takes label=KEY[=VALUE] or label!=KEY[=VALUE]"),
            )
            .into());
        };
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (rest, None),
        };
        if key.is_empty() {
            return Err(
                UserError::new(Kind::Usage, format!("--filter {s:?}: no label name")).into(),
            );
        }
        Ok(LabelFilter {
            key: key.to_string(),
            value,
            negated,
        })
    }

    fn matches(&self, labels: &HashMap<String, String>) -> bool {
        let has = match (&self.value, labels.get(&self.key)) {
            (None, found) => found.is_some(),
            (Some(want), Some(found)) => want == found,
            (Some(_), None) => false,
        };
        has != self.negated
    }
}

#[derive(Debug, Serialize)]
struct Row {
    volume: String,
    size: Option<u64>,
    newest_backup: Option<String>,
    backup_age_seconds: Option<i64>,
    /// Removed (or, with `--dry-run`, would be).
    remove: bool,
    /// Why it stays, when it does.
    reason: Option<String>,
}

pub async fn run(ctx: &Ctx, args: CleanupArgs) -> Result<()> {
    let filters = args
        .filter
        .iter()
        .map(|f| LabelFilter::parse(f))
        .collect::<Result<Vec<_>>>()?;
    let keys = Arc::new(crate::settings::keys::keys(&args.decrypt)?);
    let mut all: Vec<catalog::Backup> = Vec::new();
    for dest in &args.destinations {
        let store = Store::open(&Location::parse(dest)?, false, &ctx.s3)?;
        all.extend(catalog::list(&store).await?);
    }

    let engine = ctx.engine().await?;
    // Only this engine's backups vouch for its volumes (another host's same-named volume is
    // another volume), unless --from-engine says whose count.
    let from = args
        .from_engine
        .clone()
        .unwrap_or_else(|| engine.identity.label());
    let dangling = HashMap::from([("dangling".to_string(), vec!["true".to_string()])]);
    let mut found: Vec<_> = volumes::list(&engine.docker, dangling)
        .await?
        .into_iter()
        .filter(|v| filters.iter().all(|f| f.matches(&v.labels)))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let sizes = df::volume_sizes(
        &engine.docker,
        &engine.endpoint,
        ctx.out,
        Duration::from_secs(20),
    )
    .await;

    let now = Utc::now();
    let max_age = chrono::Duration::from_std(args.max_age).unwrap_or(chrono::Duration::MAX);
    let mut rows = Vec::new();
    for v in &found {
        ctx.check_cancelled()?;
        let backup = catalog::newest_of(&all, &v.name, &from, None);
        let age = backup.map(|b| now - b.created);
        let others = catalog::other_engines(&all, &v.name, &from);
        let reason = match (backup, age) {
            (None, _) | (_, None) if others.is_empty() => Some("no backup".to_string()),
            (None, _) | (_, None) => Some(format!(
                "no backup from engine {from} (only from {}; see --from-engine)",
                others
                    .iter()
                    .map(|(e, _)| e.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (Some(_), Some(age)) if age > max_age => Some(format!(
                "newest backup older than {}",
                humantime::format_duration(args.max_age)
            )),
            (Some(b), Some(_)) => quick_check(ctx, b, &v.name, &keys).await.err(),
        };
        rows.push(Row {
            volume: v.name.clone(),
            size: sizes.get(&v.name).copied(),
            newest_backup: backup.map(|b| b.location.clone()),
            backup_age_seconds: age.map(|a| a.num_seconds()),
            remove: reason.is_none(),
            reason,
        });
    }

    let to_remove: Vec<String> = rows
        .iter()
        .filter(|r| r.remove)
        .map(|r| r.volume.clone())
        .collect();
    let listed = match args.format {
        Format::Json => output::data_json(&rows),
        Format::Table => output::data(&table(&rows, args.dry_run)),
    };
    if let Err(e) = listed {
        if !output::is_stdout_closed(&e) {
            return Err(e);
        }
    }
    if args.dry_run || to_remove.is_empty() {
        if to_remove.is_empty() {
            ctx.out
                .info("no dangling volume has a fresh backup; nothing removed");
        }
        return Ok(());
    }
    if !args.force {
        confirm(to_remove.len())?;
    }

    let held = Held::acquire(
        &engine,
        &to_remove,
        "cleanup",
        flags::wait(&args.lock),
        &ctx.cancel,
    )
    .await?;
    let removed = held
        .around(async {
            let mut removed = Vec::new();
            for name in &to_remove {
                ctx.check_cancelled()?;
                // Someone may have started using it since the listing: look again, under the lock.
                if volumes::inspect(&engine.docker, name).await?.is_none() {
                    continue;
                }
                let users = containers::mounting(&engine.docker, name).await?;
                if let Some(user) = users.first() {
                    output::warn(&format!(
                        "volume {name} is used by container {} now; kept",
                        user.name
                    ));
                    continue;
                }
                match volumes::remove(&engine.docker, name).await {
                    Ok(()) => removed.push(name.clone()),
                    Err(e) => output::warn(&format!("{e:#}; kept")),
                }
            }
            Ok(removed)
        })
        .await?;
    let freed: u64 = rows
        .iter()
        .filter(|r| removed.contains(&r.volume))
        .filter_map(|r| r.size)
        .sum();
    let unknown = rows
        .iter()
        .any(|r| removed.contains(&r.volume) && r.size.is_none());
    ctx.out.info(&format!(
        "removed {} volume(s): {}; freed {}{}",
        removed.len(),
        removed.join(", "),
        output::bytes(freed),
        if unknown {
            " (the engine did not measure some)"
        } else {
            ""
        }
    ));
    Ok(())
}

/// The backup opens (decrypted if needed), is an archive, and its manifest names `volume`.
/// Reads only the head; the reason it fails, for the listing.
async fn quick_check(
    ctx: &Ctx,
    backup: &catalog::Backup,
    volume: &str,
    keys: &Arc<Keys>,
) -> std::result::Result<(), String> {
    let (input, _) = open_input(&backup.location, &ctx.s3)
        .await
        .map_err(|e| format!("newest backup unreadable: {e:#}"))?;
    let keys = Arc::clone(keys);
    let head = tokio::task::spawn_blocking(move || {
        crate::archive::open_archive(input, Arc::<Counters>::default(), &keys)
            .map(|reader| reader.head().cloned())
    })
    .await
    .map_err(|e| format!("checking the newest backup: {e}"))?
    .map_err(|e| format!("newest backup unreadable: {e}"))?;
    match head {
        None => Err("newest backup has no manifest".to_string()),
        Some(h) if h.volume.name != volume => Err(format!(
            "newest backup's manifest names volume {}",
            h.volume.name
        )),
        Some(_) => Ok(()),
    }
}

/// Asks on the terminal; without one, refuses (`-f` is how scripts say yes).
fn confirm(count: usize) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(UserError::new(
            Kind::Refused,
            format!("not removing {count} volume(s): no terminal to ask for confirmation"),
        )
        .hint("pass -f to remove without asking, or --dry-run to only list")
        .into());
    }
    output::message(&format!("Remove {count} volume(s) listed above? [y/N] "));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        return Ok(());
    }
    Err(UserError::new(Kind::Refused, "nothing removed (not confirmed)").into())
}

fn table(rows: &[Row], dry_run: bool) -> String {
    let mut table = Table::new([
        Column::left("VOLUME"),
        Column::right("SIZE"),
        Column::left("NEWEST BACKUP"),
        Column::right("AGE"),
        Column::left("ACTION"),
    ]);
    for r in rows {
        let action = match (&r.reason, dry_run) {
            (None, true) => "would remove".to_string(),
            (None, false) => "remove".to_string(),
            (Some(why), _) => format!("keep: {why}"),
        };
        table.row([
            r.volume.clone(),
            r.size.map(output::bytes).unwrap_or_else(|| "-".into()),
            r.newest_backup.clone().unwrap_or_else(|| "-".into()),
            r.backup_age_seconds
                .map(|s| {
                    humantime::format_duration(Duration::from_secs(s.max(0) as u64)).to_string()
                })
                .unwrap_or_else(|| "-".into()),
            action,
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_as_docker_prune() {
        let labels = HashMap::from([("keep".to_string(), "yes".to_string())]);
        let f = |s: &str| LabelFilter::parse(s).unwrap().matches(&labels);
        assert!(f("label=keep"));
        assert!(f("label=keep=yes"));
        assert!(!f("label=keep=no"));
        assert!(!f("label!=keep"));
        assert!(f("label!=keep=no"));
        assert!(f("label!=other"));
        assert!(!f("label=other"));
        assert!(LabelFilter::parse("name=x").is_err());
        assert!(LabelFilter::parse("label=").is_err());
    }
}
