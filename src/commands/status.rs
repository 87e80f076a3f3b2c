//! `status [DEST...] --rpo DURATION`: for every volume of every engine, the newest backup, its
//! age, and whether it meets the recovery point objective; with `--rto`, the last measured test
//! restore (`verify --restore-test`) against the recovery time objective. Exits non-zero when any
//! volume misses either, so cron and monitoring can run it as it is.
//!
//! Rows are (engine, volume): the engine's own volumes, and every engine's backups found in the
//! destinations. Archives of an unknown engine (older versions' names) count for the volume of
//! the engine status talks to, else stand as their own rows.
//! A `restic:REPO` destination counts the tool's snapshots there, by engine (restic's host) and
//! volume.

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
    /// The engine's label (`unknown` for archives of older versions).
    engine: String,
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
    // The newest backup of each (volume, engine).
    let mut newest: BTreeMap<(String, String), Backup> = BTreeMap::new();
    for dest in &destinations {
        if ResticTarget::is_restic(dest) {
            let target = ResticTarget::parse(dest)?;
            // As shown: without a password a `rest:` URL carries.
            let shown = target.to_string();
            let password = restic::password(args.restic.restic_password_file.as_deref(), false)?;
            let all = tokio::task::spawn_blocking(move || {
                let repo = restic::open(&target, &password)?;
                restic::read::snapshots(&repo)
            })
            .await
            .expect("listing the snapshots panicked")?;
            // restic's host is the engine's label: rows are (volume, engine) as for archives.
            for s in all.into_iter().filter(|s| s.ours) {
                let backup = Backup {
                    path: format!("{shown} snapshot {}", s.short_id()),
                    name: String::new(),
                    created: s.created,
                    size: s.size.unwrap_or(0),
                };
                let key = (s.volume.clone().unwrap_or_default(), s.host.clone());
                let slot = newest.entry(key).or_insert_with(|| backup.clone());
                if backup.created > slot.created {
                    *slot = backup;
                }
            }
            continue;
        }
        let store = Store::open(&Location::parse(dest)?, false, &ctx.s3)?;
        for b in catalog::list(&store).await? {
            let key = (b.volume.clone(), b.engine_label().to_string());
            let backup = Backup {
                path: b.location,
                name: b.name,
                created: b.created,
                size: b.size,
            };
            let slot = newest.entry(key).or_insert_with(|| backup.clone());
            if backup.created > slot.created {
                *slot = backup;
            }
        }
    }
    let engine = ctx.engine().await?;
    let current = engine.identity.label();
    let volumes: Vec<String> = if args.volumes.is_empty() {
        let listed = volumes::list(&engine.docker, Default::default()).await?;
        listed.into_iter().map(|v| v.name).collect()
    } else {
        args.volumes.clone()
    };
    let groups = rows_of(&newest, &volumes, &current, args.volumes.is_empty());
    let now = Utc::now();
    let rpo = chrono::Duration::from_std(args.rpo).unwrap_or(chrono::Duration::MAX);
    let state = match args.rto {
        Some(_) => Some(crate::schedule::Dirs::of_user()?.state),
        None => crate::schedule::Dirs::of_user().ok().map(|d| d.state),
    };
    let rows: Vec<Row> = groups
        .into_iter()
        .map(|(volume, engine, newest)| {
            let age = newest.as_ref().map(|b| now - b.created);
            let newest_backup_seconds = state.as_ref().zip(newest.as_ref()).and_then(|(s, b)| {
                let file = b.name.rsplit('/').next().unwrap_or_default();
                save_times::of_archive(s, &engine, &volume, file)
            });
            let last_restore = state.as_ref().filter(|_| args.rto.is_some()).and_then(|s| {
                // The current engine's row may stand on an older version's archive.
                restore_times::last(s, &engine, &volume).or_else(|| {
                    (engine == current)
                        .then(|| restore_times::last(s, catalog::UNKNOWN_ENGINE, &volume))?
                })
            });
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
                engine,
            }
        })
        .collect();
    let printed = match args.format {
        StatusFormat::Json => output::data_json(&rows),
        StatusFormat::Table => output::data(&table(&rows, args.rpo, args.rto)),
        StatusFormat::Prometheus => {
            // The context label: the context and its host, credentials left out.
            let context = ctx
                .settings
                .endpoint()
                .map(|e| crate::url::strip_in_text(&format!("{} {}", e.context, e.host)))
                .unwrap_or_else(|_| "unknown".into());
            output::data(&prometheus(&rows, args.rpo, args.rto, &context))
        }
    };
    // A reader that left early (`status | head -1`) does not hide a missed RPO: the exit code
    // is what monitoring reads.
    if let Err(e) = printed {
        if !output::is_stdout_closed(&e) {
            return Err(e);
        }
    }
    // Volumes of other engines are named with their engine.
    let named = |r: &Row| match r.engine == current {
        true => r.volume.clone(),
        false => format!("{} ({})", r.volume, r.engine),
    };
    let missed: Vec<String> = rows.iter().filter(|r| !r.meets_rpo).map(named).collect();
    let slow: Vec<String> = rows
        .iter()
        .filter(|r| r.meets_rto == Some(false))
        .map(named)
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

/// The rows: `(volume, engine, newest backup)`, sorted by volume then engine. Each of
/// `volumes` (the engine's, or those asked for) is a row of the `current` engine, whose newest
/// backup is its own or, failing that, one of an unknown engine. Every other engine's backups
/// of those volumes (of any volume with `all`) are rows too; unknown-engine backups not taken
/// by a row of the current engine stand alone only with `all`.
fn rows_of(
    newest: &BTreeMap<(String, String), Backup>,
    volumes: &[String],
    current: &str,
    all: bool,
) -> Vec<(String, String, Option<Backup>)> {
    let unknown = catalog::UNKNOWN_ENGINE;
    let get = |v: &str, e: &str| newest.get(&(v.to_string(), e.to_string())).cloned();
    let mut rows: BTreeMap<(String, String), Option<Backup>> = BTreeMap::new();
    for v in volumes {
        let own = get(v, current).or_else(|| get(v, unknown));
        rows.insert((v.clone(), current.to_string()), own);
    }
    // The current engine's backups of volumes it no longer has.
    for ((v, e), b) in newest {
        if all && e == current {
            rows.entry((v.clone(), e.clone()))
                .or_insert_with(|| Some(b.clone()));
        }
    }
    for ((v, e), b) in newest {
        let asked = all || volumes.contains(v);
        let taken = e == unknown && rows.contains_key(&(v.clone(), current.to_string()));
        if asked && !taken && e != current {
            rows.insert((v.clone(), e.clone()), Some(b.clone()));
        }
    }
    rows.into_iter().map(|((v, e), b)| (v, e, b)).collect()
}

/// node_exporter's textfile format: one gauge family per fact, labelled by the engine that made
/// the backups (its label), the context status ran against, and the volume.
fn prometheus(rows: &[Row], rpo: Duration, rto: Option<Duration>, context: &str) -> String {
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
                    "docker_volume_backup_{name}{{engine=\"{}\",context=\"{}\",volume=\"{}\"}} {v}",
                    label_value(&r.engine),
                    label_value(context),
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
        Column::left("ENGINE"),
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
        let mut cells = vec![
            r.volume.clone(),
            r.engine.clone(),
            path,
            age,
            verdict.to_string(),
        ];
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
                engine: "vm-3f9a1c0b".into(),
                newest: Some(backup("backups/db-2024-05-01T030000Z.tar.zst")),
                age_seconds: Some(3 * 3600 + 12 * 60),
                newest_backup_seconds: None,
                meets_rpo: true,
                last_restore: None,
                meets_rto: None,
            },
            Row {
                volume: "cache_volume".into(),
                engine: "laptop-0badc0de".into(),
                newest: Some(backup("b/c.tar.zst")),
                age_seconds: Some(2 * 86400 + 4 * 3600),
                newest_backup_seconds: None,
                meets_rpo: false,
                last_restore: None,
                meets_rto: None,
            },
            Row {
                volume: "new".into(),
                engine: "vm-3f9a1c0b".into(),
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
VOLUME        ENGINE           NEWEST BACKUP                                 AGE  RPO 1day
db            vm-3f9a1c0b      backups/db-2024-05-01T030000Z.tar.zst      3h 12m  ok
cache_volume  laptop-0badc0de  b/c.tar.zst                                 2d 4h  MISSED
new           vm-3f9a1c0b      -                                               -  MISSED (no backup)
"
        );
        assert_eq!(
            table(&[], Duration::from_secs(3600), None),
            "VOLUME  ENGINE  NEWEST BACKUP         AGE  RPO 1h\n"
        );
    }

    #[test]
    fn rows_are_engine_and_volume() {
        let at = |h: i64| Utc::now() - chrono::Duration::hours(h);
        let b = |name: &str, h| Backup {
            path: name.into(),
            name: name.into(),
            created: at(h),
            size: 1,
        };
        let me = "vm-3f9a1c0b";
        let other = "laptop-0badc0de";
        let unknown = catalog::UNKNOWN_ENGINE;
        let key = |v: &str, e: &str| (v.to_string(), e.to_string());
        let newest = BTreeMap::from([
            (key("a", me), b("a-me", 1)),
            (key("a", other), b("a-other", 2)),
            (key("a", unknown), b("a-old", 30)),
            (key("b", unknown), b("b-old", 30)),
            (key("gone", me), b("gone-me", 5)),
            (key("theirs", other), b("theirs", 5)),
            (key("lost", unknown), b("lost-old", 50)),
        ]);
        let show = |rows: Vec<(String, String, Option<Backup>)>| -> Vec<String> {
            rows.into_iter()
                .map(|(v, e, b)| format!("{v} {e} {}", b.map_or("-".into(), |b| b.name)))
                .collect()
        };
        let volumes = ["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            show(rows_of(&newest, &volumes, me, true)),
            [
                "a laptop-0badc0de a-other",
                "a vm-3f9a1c0b a-me",
                "b vm-3f9a1c0b b-old",
                "c vm-3f9a1c0b -",
                "gone vm-3f9a1c0b gone-me",
                "lost unknown lost-old",
                "theirs laptop-0badc0de theirs",
            ]
        );
        assert_eq!(
            show(rows_of(&newest, &volumes[..1], me, false)),
            ["a laptop-0badc0de a-other", "a vm-3f9a1c0b a-me"]
        );
    }
}
