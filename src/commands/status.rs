//! `status [DEST...] --rpo DURATION`: for every volume, the newest backup, its age, and whether
//! it meets the recovery point objective; with `--rto`, the last measured test restore
//! (`verify --restore-test`) against the recovery time objective. Exits non-zero when any volume
//! misses either, so cron and monitoring can run it as it is. A `restic:REPO` destination counts
//! the snapshots this engine saved there.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::{StatusArgs, StatusFormat};
use crate::docker::volumes;
use crate::error::{Kind, UserError};
use crate::output::{self, Column, Table};
use crate::settings::Ctx;
use crate::storage::restic::{self, ResticTarget};
use crate::storage::restore_times::{self, RestoreTime};
use crate::storage::save_times;
use crate::storage::{catalog, Location, Store};

/// One backup found in a destination.
#[derive(Debug, Clone, Serialize)]
struct Backup {
    path: String,
    /// The archive's name in its destination.
    #[serde(skip)]
    name: String,
    created: DateTime<Utc>,
    size: u64,
}

#[derive(Debug, Serialize)]
struct Row {
    volume: String,
    newest: Option<Backup>,
    age_seconds: Option<i64>,
    /// How long the save of the newest backup took, when this tool recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    newest_backup_seconds: Option<f64>,
    meets_rpo: bool,
    /// The last measured test restore (with `--rto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_restore: Option<RestoreTime>,
    /// With `--rto`: whether the last measured restore took less than the RTO.
    #[serde(skip_serializing_if = "Option::is_none")]
    meets_rto: Option<bool>,
}

pub async fn run(ctx: &Ctx, args: StatusArgs) -> Result<()> {
    let destinations = if args.destinations.is_empty() {
        vec!["backups".to_string()]
    } else {
        args.destinations.clone()
    };
    let mut newest: BTreeMap<String, Backup> = BTreeMap::new();
    for dest in &destinations {
        if ResticTarget::is_restic(dest) {
            let target = ResticTarget::parse(dest)?;
            // Only this engine's snapshots count: restic's host is the engine's label.
            let host = ctx.engine().await?.identity.label();
            let password = restic::password(args.restic.restic_password_file.as_deref(), false)?;
            let all = tokio::task::spawn_blocking(move || {
                let repo = restic::open(&target, &password)?;
                restic::read::snapshots(&repo)
            })
            .await
            .expect("listing the snapshots panicked")?;
            for s in all.into_iter().filter(|s| s.ours && s.host == host) {
                let backup = Backup {
                    path: format!("{dest} snapshot {}", s.short_id()),
                    name: String::new(),
                    created: s.created,
                    size: s.size.unwrap_or(0),
                };
                let volume = s.volume.clone().unwrap_or_default();
                let slot = newest.entry(volume).or_insert_with(|| backup.clone());
                if backup.created > slot.created {
                    *slot = backup;
                }
            }
            continue;
        }
        let store = Store::open(&Location::parse(dest)?, false, &ctx.s3)?;
        for b in catalog::list(&store).await? {
            let backup = Backup {
                path: b.location,
                name: b.name,
                created: b.created,
                size: b.size,
            };
            let slot = newest.entry(b.volume).or_insert_with(|| backup.clone());
            if backup.created > slot.created {
                *slot = backup;
            }
        }
    }
    let volumes: Vec<String> = if args.volumes.is_empty() {
        let engine = ctx.engine().await?;
        let listed = volumes::list(&engine.docker, Default::default()).await?;
        let mut all: Vec<String> = listed
            .into_iter()
            .map(|v| v.name)
            .chain(newest.keys().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    } else {
        args.volumes.clone()
    };
    let now = Utc::now();
    let rpo = chrono::Duration::from_std(args.rpo).unwrap_or(chrono::Duration::MAX);
    let state = match args.rto {
        Some(_) => Some(crate::schedule::Dirs::of_user()?.state),
        None => crate::schedule::Dirs::of_user().ok().map(|d| d.state),
    };
    let rows: Vec<Row> = volumes
        .into_iter()
        .map(|volume| {
            let newest = newest.get(&volume).cloned();
            let age = newest.as_ref().map(|b| now - b.created);
            let newest_backup_seconds = state.as_ref().zip(newest.as_ref()).and_then(|(s, b)| {
                let file = b.name.rsplit('/').next().unwrap_or_default();
                save_times::of_archive(s, &volume, file)
            });
            let last_restore = state
                .as_ref()
                .filter(|_| args.rto.is_some())
                .and_then(|s| restore_times::last(s, &volume));
            let meets_rto = args.rto.map(|rto| {
                last_restore
                    .as_ref()
                    .is_some_and(|t| t.seconds <= rto.as_secs_f64())
            });
            Row {
                newest_backup_seconds,
                last_restore,
                meets_rto,
                meets_rpo: age.is_some_and(|a| a <= rpo),
                age_seconds: age.map(|a| a.num_seconds()),
                newest,
                volume,
            }
        })
        .collect();
    let printed = match args.format {
        StatusFormat::Json => output::data_json(&rows),
        StatusFormat::Table => output::data(&table(&rows, args.rpo, args.rto)),
        StatusFormat::Prometheus => {
            // The engine label: the context and its host, credentials left out.
            let engine = ctx
                .settings
                .endpoint()
                .map(|e| crate::url::strip_in_text(&format!("{} {}", e.context, e.host)))
                .unwrap_or_else(|_| "unknown".into());
            output::data(&prometheus(&rows, args.rpo, args.rto, &engine))
        }
    };
    // A reader that left early (`status | head -1`) does not hide a missed RPO: the exit code
    // is what monitoring reads.
    if let Err(e) = printed {
        if !output::is_stdout_closed(&e) {
            return Err(e);
        }
    }
    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.meets_rpo)
        .map(|r| r.volume.as_str())
        .collect();
    let slow: Vec<&str> = rows
        .iter()
        .filter(|r| r.meets_rto == Some(false))
        .map(|r| r.volume.as_str())
        .collect();
    let mut why = Vec::new();
    if !missed.is_empty() {
        why.push(format!(
            "{} volume(s) miss the RPO of {}: {}",
            missed.len(),
            humantime::format_duration(args.rpo),
            missed.join(", ")
        ));
    }
    if let (Some(rto), false) = (args.rto, slow.is_empty()) {
        why.push(format!(
            "{} volume(s) miss the RTO of {} (or were never test-restored): {}",
            slow.len(),
            humantime::format_duration(rto),
            slow.join(", ")
        ));
    }
    if why.is_empty() {
        return Ok(());
    }
    let mut err = UserError::new(Kind::Stale, why.join("; "));
    if !slow.is_empty() {
        err = err.hint("`verify ARCHIVE --restore-test` measures and records a restore time");
    }
    Err(err.into())
}

/// node_exporter's textfile format: one gauge family per fact, labelled by engine and volume.
fn prometheus(rows: &[Row], rpo: Duration, rto: Option<Duration>, engine: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    type Family<'a> = (&'a str, &'a str, &'a dyn Fn(&Row) -> Option<f64>);
    let families: [Family; 7] = [
        (
            "newest_backup_timestamp_seconds",
            "Time the newest backup of the volume was made (Unix seconds).",
            &|r| r.newest.as_ref().map(|b| b.created.timestamp() as f64),
        ),
        (
            "newest_backup_size_bytes",
            "Size of the newest backup of the volume.",
            &|r| r.newest.as_ref().map(|b| b.size as f64),
        ),
        (
            "newest_backup_duration_seconds",
            "How long the save of the newest backup took (when this tool made it here).",
            &|r| r.newest_backup_seconds,
        ),
        (
            "newest_backup_age_seconds",
            "Age of the newest backup of the volume.",
            &|r| r.age_seconds.map(|a| a as f64),
        ),
        (
            "rpo_met",
            "1 when the newest backup is younger than the RPO, else 0.",
            &|r| Some(if r.meets_rpo { 1.0 } else { 0.0 }),
        ),
        (
            "last_restore_test_seconds",
            "How long the last measured test restore took (verify --restore-test), with --rto.",
            &|r| r.last_restore.as_ref().map(|t| t.seconds),
        ),
        (
            "rto_met",
            "1 when the last measured test restore took less than the RTO, else 0 (with --rto).",
            &|r| r.meets_rto.map(|m| if m { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP docker_volume_backup_{name} {help}");
        let _ = writeln!(out, "# TYPE docker_volume_backup_{name} gauge");
        for r in rows {
            if let Some(v) = value(r) {
                let _ = writeln!(
                    out,
                    "docker_volume_backup_{name}{{engine=\"{}\",volume=\"{}\"}} {v}",
                    label_value(engine),
                    label_value(&r.volume)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP docker_volume_backup_rpo_seconds The recovery point objective checked against.\n\
         # TYPE docker_volume_backup_rpo_seconds gauge\n\
         docker_volume_backup_rpo_seconds {}",
        rpo.as_secs()
    );
    if let Some(rto) = rto {
        let _ = writeln!(
            out,
            "# HELP docker_volume_backup_rto_seconds The recovery time objective checked against.\n\
             # TYPE docker_volume_backup_rto_seconds gauge\n\
             docker_volume_backup_rto_seconds {}",
            rto.as_secs()
        );
    }
    out
}

/// A label value with `\`, `"` and line breaks escaped, as the exposition format wants.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn table(rows: &[Row], rpo: Duration, rto: Option<Duration>) -> String {
    let mut columns = vec![
        Column::left("VOLUME"),
        Column::left("NEWEST BACKUP"),
        Column::right("AGE").min(10),
        Column::left(format!("RPO {}", humantime::format_duration(rpo))),
    ];
    if let Some(rto) = rto {
        columns.push(Column::right("RESTORE"));
        columns.push(Column::left(format!(
            "RTO {}",
            humantime::format_duration(rto)
        )));
    }
    let mut table = Table::new(columns);
    for r in rows {
        let path = r
            .newest
            .as_ref()
            .map(|b| b.path.clone())
            .unwrap_or_else(|| "-".into());
        let age = r.age_seconds.map(output::age).unwrap_or_else(|| "-".into());
        let verdict = match (&r.newest, r.meets_rpo) {
            (_, true) => "ok",
            (None, _) => "MISSED (no backup)",
            (Some(_), false) => "MISSED",
        };
        let mut cells = vec![r.volume.clone(), path, age, verdict.to_string()];
        if let Some(meets) = r.meets_rto {
            let took = r
                .last_restore
                .as_ref()
                .map_or("-".to_string(), |t| format!("{:.1} s", t.seconds));
            let verdict = match (&r.last_restore, meets) {
                (_, true) => "ok",
                (None, _) => "MISSED (not measured)",
                (Some(_), false) => "MISSED",
            };
            cells.push(took);
            cells.push(verdict.into());
        }
        table.row(cells);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(output::age(59), "0m");
        assert_eq!(output::age(3 * 3600 + 12 * 60), "3h 12m");
        assert_eq!(output::age(2 * 86400 + 4 * 3600 + 59), "2d 4h");
    }

    #[test]
    fn table_is_pinned() {
        let backup = |path: &str| Backup {
            path: path.into(),
            name: path.into(),
            created: Utc::now(),
            size: 1,
        };
        let rows = vec![
            Row {
                volume: "db".into(),
                newest: Some(backup("backups/db-2024-05-01T030000Z.tar.zst")),
                age_seconds: Some(3 * 3600 + 12 * 60),
                newest_backup_seconds: None,
                meets_rpo: true,
                last_restore: None,
                meets_rto: None,
            },
            Row {
                volume: "cache_volume".into(),
                newest: Some(backup("b/c.tar.zst")),
                age_seconds: Some(2 * 86400 + 4 * 3600),
                newest_backup_seconds: None,
                meets_rpo: false,
                last_restore: None,
                meets_rto: None,
            },
            Row {
                volume: "new".into(),
                newest: None,
                age_seconds: None,
                newest_backup_seconds: None,
                meets_rpo: false,
                last_restore: None,
                meets_rto: None,
            },
        ];
        assert_eq!(
            table(&rows, Duration::from_secs(86400), None),
            "\
VOLUME        NEWEST BACKUP                                 AGE  RPO 1day
db            backups/db-2024-05-01T030000Z.tar.zst      3h 12m  ok
cache_volume  b/c.tar.zst                                 2d 4h  MISSED
new           -                                               -  MISSED (no backup)
"
        );
        assert_eq!(
            table(&[], Duration::from_secs(3600), None),
            "VOLUME  NEWEST BACKUP         AGE  RPO 1h\n"
        );
    }
}
