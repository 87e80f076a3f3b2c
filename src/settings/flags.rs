//! Flag groups into domain values: compression tuning, keeping containers still, locks, retention,
//! volume selection, database credentials and the compose project. Each group is turned into
//! its value here and nowhere else.

use std::collections::HashMap;

use anyhow::Result;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::archive::{Compression, EncodeOptions, RewriteOptions};
use crate::cli::{
    ComposeArgs, DbCredentialArgs, EntryFilterArgs, KeepArgs, LockArgs, QuiesceArgs, SelectArgs,
    TuningArgs,
};
use crate::compose::project::ProjectSpec;
use crate::db::Overrides;
use crate::docker::lock::Wait;
use crate::docker::quiesce::Mode;
use crate::error::{Kind, UserError};
use crate::ops::select::Selection;
use crate::retention::Policy;

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UserError::new(Kind::Usage, msg).into()
}

/// `--level`/`--threads` for `compression` (threads default to the number of CPUs).
pub fn encode(t: &TuningArgs, compression: Compression) -> EncodeOptions {
    let threads = t.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    });
    EncodeOptions {
        compression,
        level: t.level,
        threads,
    }
}

/// `--no-devices`, `--no-setuid`: what a restore leaves out of the archive.
pub fn entry_filter(f: &EntryFilterArgs) -> RewriteOptions {
    RewriteOptions {
        no_devices: f.no_devices,
        no_setuid: f.no_setuid,
    }
}

/// `--stop`/`--pause`.
pub fn quiesce_mode(q: &QuiesceArgs) -> Option<Mode> {
    match (q.stop, q.pause) {
        (_, true) => Some(Mode::Pause),
        (true, false) => Some(Mode::Stop),
        (false, false) => None,
    }
}

/// `--wait DURATION` / `--no-wait`: how long to wait for another run's lock.
pub fn wait(l: &LockArgs) -> Wait {
    match (l.no_wait, l.wait) {
        (true, _) => Wait::No,
        (false, Some(limit)) => Wait::AtMost(limit),
        (false, None) => Wait::Forever,
    }
}

/// The `--keep-*` flags as a validated retention policy.
pub fn policy(keep: &KeepArgs) -> Result<Policy> {
    let p = Policy {
        last: keep.keep_last,
        hourly: keep.keep_hourly,
        daily: keep.keep_daily,
        weekly: keep.keep_weekly,
        monthly: keep.keep_monthly,
        yearly: keep.keep_yearly,
        within: keep.keep_within,
    };
    p.validate().map_err(usage)?;
    Ok(p)
}

/// `--all`, `--project P`, `--filter KEY=VALUE`: which volumes, as engine filters (`--project P`
/// is the label filter compose's volumes carry; `--filter` values pass through in the engine's
/// own `key=value` syntax). `None` when no selection flag was given.
pub fn selection(select: &SelectArgs) -> Result<Option<Selection>> {
    if !select.any() {
        return Ok(None);
    }
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(p) = &select.project {
        filters
            .entry("label".into())
            .or_default()
            .push(format!("{}={p}", crate::docker::labels::COMPOSE_PROJECT));
    }
    for f in &select.filter {
        let (key, value) = f.split_once('=').ok_or_else(|| {
            usage(format!(
                "--filter {f:?} is not NAME=VALUE (e.g. label=backup=nightly)"
            ))
        })?;
        filters
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    Ok(Some(Selection {
        project: select.project.clone(),
        filters,
    }))
}

/// `--user`, and a password from `--password-file` or the variable named by `--password-env`
/// (never a flag's value).
pub fn db_credentials(args: &DbCredentialArgs) -> Result<Overrides> {
    let password = match (&args.password_file, &args.password_env) {
        (Some(path), _) => Some(crate::keys::read_passphrase_file(path).map_err(usage)?),
        (None, Some(var)) => {
            let value = std::env::var(var)
                .map_err(|_| usage(format!("--password-env {var}: the variable is not set")))?;
            if value.is_empty() {
                return Err(usage(format!(
                    "--password-env {var}: the variable is empty"
                )));
            }
            Some(age::secrecy::SecretString::from(value))
        }
        (None, None) => None,
    };
    Ok(Overrides {
        user: args.user.clone(),
        password,
    })
}

/// `-p NAME` and `-f FILE...` of the compose commands.
pub fn project_spec(args: &ComposeArgs) -> ProjectSpec {
    ProjectSpec {
        project_name: args.project_name.clone(),
        files: args.files.clone(),
    }
}

/// `--at TIME`: RFC 3339; `YYYY-mm-dd`, `YYYY-mm-dd HH:MM` or `YYYY-mm-dd HH:MM:SS` (also with
/// `T`) in local time, a date alone meaning its last second; or an age (`90m`, `2h`, `3d`)
/// counted back from `now`.
pub fn point_in_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(23, 59, 59))
    });
    if let Some(naive) = naive {
        return Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| usage(format!("--at {s}: no such local time (a clock change?)")));
    }
    if let Ok(age) = humantime::parse_duration(s) {
        let age = chrono::Duration::from_std(age)
            .map_err(|_| usage(format!("--at {s}: too far back")))?;
        return Ok(now - age);
    }
    Err(UserError::new(Kind::Usage, format!("--at {s}: not a time"))
        .hint(
            "write 2026-11-25T10:30:00Z, 2026-11-25 10:30, 2026-11-25, or an age such as 2h or 3d",
        )
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_engine_syntax() {
        let select = SelectArgs {
            all: false,
            project: Some("shop".into()),
            filter: vec!["label=backup=nightly".into(), "driver=local".into()],
        };
        let f = selection(&select).unwrap().unwrap().filters;
        assert_eq!(
            f["label"],
            vec!["com.docker.compose.project=shop", "backup=nightly"]
        );
        assert_eq!(f["driver"], vec!["local"]);
        let bad = SelectArgs {
            filter: vec!["nonsense".into()],
            ..Default::default()
        };
        assert!(selection(&bad).is_err());
        assert!(selection(&SelectArgs::default()).unwrap().is_none());
    }

    #[test]
    fn quiesce_flags() {
        let q = |stop, pause| QuiesceArgs { stop, pause };
        assert_eq!(quiesce_mode(&q(false, false)), None);
        assert_eq!(quiesce_mode(&q(true, false)), Some(Mode::Stop));
        assert_eq!(quiesce_mode(&q(false, true)), Some(Mode::Pause));
    }

    #[test]
    fn points_in_time() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = |s| point_in_time(s, now).unwrap().to_rfc3339();
        assert_eq!(t("2026-11-25T10:30:00Z"), "2026-11-25T10:30:00+00:00");
        assert_eq!(t("2026-11-25T10:30:00+02:00"), "2026-11-25T08:30:00+00:00");
        assert_eq!(t("2h"), "2026-11-30T10:00:00+00:00");
        assert_eq!(t("3d"), "2026-11-27T12:00:00+00:00");
        let local = |s: &str| {
            Local
                .from_local_datetime(
                    &NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap(),
                )
                .earliest()
                .unwrap()
                .with_timezone(&Utc)
                .to_rfc3339()
        };
        assert_eq!(t("2026-11-25 10:30"), local("2026-11-25 10:30:00"));
        assert_eq!(t("2026-11-25 10:30:15"), local("2026-11-25 10:30:15"));
        assert_eq!(t("2026-11-25T10:30"), local("2026-11-25 10:30:00"));
        assert_eq!(t("2026-11-25"), local("2026-11-25 23:59:59"));
        for bad in ["yesterday", "2026-13-01", "25.11.2026", ""] {
            assert!(point_in_time(bad, now).is_err(), "{bad}");
        }
    }
}
