//! `schedule add|ls|rm` and `run-schedule [ID]`: recurring backups through cron or a systemd
//! user timer, or a foreground loop for machines with neither.

use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{Local, Timelike, Utc};
use serde::Serialize;

use crate::cli::{Format, RunScheduleArgs, ScheduleAddArgs, ScheduleCommand};
use crate::docker::context::Origin;
use crate::error::{Kind, UserError};
use crate::output::{self, Column, Table};
use crate::schedule::{self, cron::Cron, Dirs, Job, LastRun, Scheduler};
use crate::settings::{flags, Ctx};
use crate::storage::restic::ResticTarget;
use crate::storage::{Location, S3Options};

pub async fn run(ctx: &Ctx, command: ScheduleCommand) -> Result<()> {
    match command {
        ScheduleCommand::Add(args) => add(ctx, *args),
        ScheduleCommand::Ls(args) => ls(args.format),
        ScheduleCommand::Rm(args) => rm(ctx, &args.id),
    }
}

fn add(ctx: &Ctx, args: ScheduleAddArgs) -> Result<()> {
    let usage = |m: String| UserError::new(Kind::Usage, m);
    let (cron, when) = match (&args.at, args.every, &args.cron) {
        (Some(at), _, _) => (Cron::daily_at(at).map_err(usage)?, format!("daily at {at}")),
        (_, Some(every), _) => (
            Cron::every(every).map_err(usage)?,
            format!("every {}", humantime::format_duration(every)),
        ),
        (_, _, Some(expr)) => (Cron::parse(expr).map_err(usage)?, format!("cron {expr}")),
        _ => unreachable!("clap requires one of --at, --every, --cron"),
    };
    let policy = flags::policy(&args.keep)?;
    // Relative directories would mean something else from cron's working directory.
    let mut destinations = Vec::new();
    for dest in &args.to {
        destinations.push(match Location::parse(dest)? {
            Location::Local(dir) => std::path::absolute(&dir)?.to_string_lossy().into_owned(),
            Location::S3 { .. } => dest.clone(),
            Location::Restic(t) => match &t.kind {
                crate::storage::restic::Backend::Local(dir) => format!(
                    "{}{}",
                    crate::storage::restic::PREFIX,
                    std::path::absolute(dir)?.to_string_lossy()
                ),
                // Credentials in the URL would sit in the schedule's file (see below).
                crate::storage::restic::Backend::Rest(loc) => {
                    let clean = format!("{}rest:{loc}", crate::storage::restic::PREFIX);
                    if loc.has_credentials() {
                        output::warn(&format!(
                            "the credentials in {clean} are not saved with the schedule: its runs \
                             connect without them (or with RESTIC_REST_USERNAME and \
                             RESTIC_REST_PASSWORD, if the scheduler gives them)"
                        ));
                    }
                    clean
                }
                _ => dest.clone(),
            },
        });
    }
    let scheduler = schedule::choose(args.using.map(Into::into))?;
    let mut saved = context_args(ctx)?;
    saved.extend(s3_args(&ctx.s3));
    saved.push("save".into());
    saved.extend(args.volumes.iter().cloned());
    for dest in &destinations {
        saved.extend(["--to".to_string(), dest.clone()]);
    }
    if let Some(c) = args.compression {
        saved.extend([
            "--compression".to_string(),
            crate::archive::Compression::from(c).to_string(),
        ]);
    }
    saved.extend(policy.to_args());
    // A restic repository's password reaches the runs as a file, never as a value.
    let password_file = if destinations.iter().any(|d| ResticTarget::is_restic(d)) {
        Some(restic_password_file(&args.restic)?)
    } else {
        None
    };
    if let Some(file) = &password_file {
        saved.extend(["--restic-password-file".to_string(), file.clone()]);
    }
    // Credentials in a URL would sit in the schedule's file and every log line of its runs.
    let mut stripped = Vec::new();
    for arg in saved.iter_mut().chain(destinations.iter_mut()) {
        if let (clean, true) = crate::url::strip_credentials(arg) {
            let clean = clean.into_owned();
            if !stripped.contains(&clean) {
                stripped.push(clean.clone());
            }
            *arg = clean;
        }
    }
    for url in &stripped {
        output::warn(&format!(
            "the credentials in {url} are not saved with the schedule: its runs connect without them"
        ));
    }
    for url in &args.notify.notify {
        saved.extend(["--notify".to_string(), url.clone()]);
    }
    if args.notify.notify_on == crate::cli::NotifyOn::Failure {
        saved.extend(["--notify-on".to_string(), "failure".to_string()]);
    }
    if let Some(ping) = &args.notify.ping {
        saved.extend(["--ping".to_string(), ping.clone()]);
    }
    let metrics = match &args.metrics_file {
        None => None,
        Some(file) => {
            let mut status = context_args(ctx)?;
            status.extend(s3_args(&ctx.s3));
            status.push("status".into());
            status.extend(destinations.iter().cloned());
            if let Some(file) = &password_file {
                status.extend(["--restic-password-file".to_string(), file.clone()]);
            }
            for v in &args.volumes {
                status.extend(["--volume".to_string(), v.clone()]);
            }
            status.extend([
                "--rpo".to_string(),
                humantime::format_duration(args.rpo).to_string(),
                "--format".to_string(),
                "prometheus".to_string(),
            ]);
            // As for the schedule's own arguments: no credentials saved.
            let status = status
                .iter()
                .map(|a| crate::url::strip_credentials(a).0.into_owned())
                .collect();
            Some(schedule::Metrics {
                file: std::path::absolute(file)?,
                args: status,
            })
        }
    };
    let job = Job {
        id: schedule::new_id(&args.volumes),
        volumes: args.volumes.clone(),
        destinations,
        cron: cron.text.clone(),
        when,
        scheduler,
        args: saved,
        created: Utc::now(),
        metrics,
    };
    let exe = std::env::current_exe().context("finding the tool's own path")?;
    let dirs = Dirs::of_user()?;
    dirs.save(&job)?;
    if let Err(e) = schedule::install(&job, &exe, &dirs) {
        dirs.remove(&job.id);
        return Err(e);
    }
    if std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some()
        && job.destinations.iter().any(|d| Location::is_remote(d))
    {
        output::warn(
            "AWS_SECRET_ACCESS_KEY is not saved with the schedule: scheduled runs take their \
             credentials from ~/.aws/credentials (or --s3-profile)",
        );
    }
    output::data_line(&job.id)?;
    ctx.out.info(&format!(
        "scheduled {} ({}, {}) via {}; log: {}",
        job.volumes.join(", "),
        job.when,
        job.cron,
        scheduler_name(scheduler),
        dirs.log_file(&job.id).display()
    ));
    Ok(())
}

/// The global flags that select the Docker endpoint this command resolved, so that scheduled
/// runs reach the same engine whatever their environment.
fn context_args(ctx: &Ctx) -> Result<Vec<String>> {
    let endpoint = ctx.settings.endpoint()?;
    let abs = |p: &std::path::Path| -> Result<String> {
        Ok(std::path::absolute(p)?.to_string_lossy().into_owned())
    };
    let mut args = Vec::new();
    match endpoint.origin {
        Origin::HostFlag | Origin::DockerHostEnv => {
            args.extend(["-H".to_string(), endpoint.host.to_string()]);
            if let Some(tls) = &endpoint.tls {
                args.push(format!("--tlsverify={}", tls.verify));
                for (flag, path) in [
                    ("--tlscacert", &tls.ca),
                    ("--tlscert", &tls.cert),
                    ("--tlskey", &tls.key),
                ] {
                    if let Some(p) = path {
                        args.extend([flag.to_string(), abs(p)?]);
                    }
                }
            }
        }
        _ => {
            let config = ctx
                .settings
                .context
                .config_dir
                .clone()
                .or_else(|| std::env::var_os("DOCKER_CONFIG").map(Into::into));
            if let Some(dir) = config {
                args.extend(["--config".to_string(), abs(&dir)?]);
            }
            args.extend(["--context".to_string(), endpoint.context.clone()]);
        }
    }
    Ok(args)
}

/// The S3 settings in force now (flags and the non-secret AWS variables), as flags.
fn s3_args(given: &S3Options) -> Vec<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut opts = given.clone();
    opts.endpoint = opts
        .endpoint
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    opts.region = opts
        .region
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"));
    opts.profile = opts.profile.or_else(|| env("AWS_PROFILE"));
    crate::settings::storage::to_args(&opts)
}

/// The file scheduled runs read the restic password from: `--restic-password-file`, else
/// `RESTIC_PASSWORD_FILE` (made absolute). A password given only as `RESTIC_PASSWORD` cannot be
/// saved with a schedule.
fn restic_password_file(given: &crate::cli::ResticPasswordArgs) -> Result<String> {
    let file = given
        .restic_password_file
        .clone()
        .or_else(|| std::env::var_os("RESTIC_PASSWORD_FILE").map(Into::into));
    match file {
        Some(f) => {
            if !f.is_file() {
                return Err(UserError::new(
                    Kind::Usage,
                    format!("restic password file {}: not a file", f.display()),
                )
                .into());
            }
            Ok(std::path::absolute(&f)?.to_string_lossy().into_owned())
        }
        None => Err(UserError::new(
            Kind::Usage,
            "a scheduled save to a restic repository needs its password in a file",
        )
        .hint("give --restic-password-file FILE (or set RESTIC_PASSWORD_FILE); RESTIC_PASSWORD is not saved with a schedule")
        .into()),
    }
}

fn scheduler_name(s: Scheduler) -> &'static str {
    match s {
        Scheduler::Cron => "crontab",
        Scheduler::Systemd => "systemd user timer",
    }
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    job: Job,
    log: String,
    installed: bool,
    last_run: Option<LastRun>,
}

fn ls(format: Format) -> Result<()> {
    let dirs = Dirs::of_user()?;
    let rows: Vec<Row> = dirs
        .all()?
        .into_iter()
        .map(|job| job.redacted())
        .map(|job| Row {
            log: dirs.log_file(&job.id).display().to_string(),
            installed: match job.scheduler {
                Scheduler::Cron => schedule::crontab_has(&job.id),
                Scheduler::Systemd => true,
            },
            last_run: dirs.last_run(&job.id),
            job,
        })
        .collect();
    match format {
        Format::Json => output::data_json(&rows)?,
        Format::Table => output::data(&table(&rows))?,
    }
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.last_run.as_ref().is_some_and(|l| l.exit_code != 0))
        .map(|r| r.job.id.clone())
        .collect();
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !r.installed)
        .map(|r| r.job.id.clone())
        .collect();
    if !failed.is_empty() {
        return Err(UserError::new(
            Kind::Failure,
            format!("the last run failed: {}", failed.join(", ")),
        )
        .hint("the log of each schedule says why (see LOG above)")
        .into());
    }
    if !missing.is_empty() {
        return Err(UserError::new(
            Kind::Failure,
            format!("not in the crontab any more: {}", missing.join(", ")),
        )
        .hint("remove it with `schedule rm ID` and add it again")
        .into());
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("WHEN").min(20),
        Column::left("VIA").min(8),
        Column::left("LAST RUN").min(19),
        Column::left("RESULT").min(12),
        // One column, so that a long log path stays at the end of its line.
        Column::left("BACKUP  ->  DESTINATIONS  (LOG)"),
    ]);
    for r in rows {
        let (last, result) = match &r.last_run {
            None => ("-".to_string(), "never run".to_string()),
            Some(l) => (
                l.started
                    .with_timezone(&Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                if l.exit_code == 0 {
                    "ok".to_string()
                } else {
                    format!("FAILED ({})", l.exit_code)
                },
            ),
        };
        let via = match (r.job.scheduler, r.installed) {
            (_, false) => "MISSING",
            (Scheduler::Cron, true) => "cron",
            (Scheduler::Systemd, true) => "systemd",
        };
        table.row([
            r.job.id.clone(),
            r.job.when.clone(),
            via.into(),
            last,
            result,
            format!(
                "{}  ->  {}  ({})",
                r.job.volumes.join(","),
                r.job.destinations.join(" "),
                r.log
            ),
        ]);
    }
    table.render()
}

fn rm(ctx: &Ctx, id: &str) -> Result<()> {
    let dirs = Dirs::of_user()?;
    let job = dirs.load(id)?;
    schedule::uninstall(&job)?;
    dirs.remove(id);
    ctx.out.info(&format!(
        "removed schedule {id} (its log stays: {})",
        dirs.log_file(id).display()
    ));
    Ok(())
}

pub async fn run_schedule(ctx: &Ctx, args: RunScheduleArgs) -> Result<()> {
    let dirs = Dirs::of_user()?;
    match args.id {
        Some(id) => {
            let job = dirs.load(&id)?;
            run_job(ctx, job, &dirs).await
        }
        None => foreground(ctx, &dirs).await,
    }
}

async fn run_job(ctx: &Ctx, job: Job, dirs: &Dirs) -> Result<()> {
    let log = dirs.log_file(&job.id);
    let state = Dirs {
        config: dirs.config.clone(),
        state: dirs.state.clone(),
    };
    let id = job.id.clone();
    let code = tokio::task::spawn_blocking(move || schedule::run_once(&job, &state))
        .await
        .expect("the scheduled run panicked")?;
    if code == 0 {
        ctx.out
            .info(&format!("schedule {id}: ok (log: {})", log.display()));
        return Ok(());
    }
    Err(UserError::new(
        schedule::kind_of_exit(code),
        format!("schedule {id} failed (exit {code})"),
    )
    .hint(format!("see its log: {}", log.display()))
    .into())
}

/// Runs every schedule when its minute comes, until interrupted. A failed run is reported and
/// recorded; the loop goes on.
async fn foreground(ctx: &Ctx, dirs: &Dirs) -> Result<()> {
    ctx.out.info(&format!(
        "running schedules from {} (Ctrl-C to stop)",
        dirs.config.display()
    ));
    loop {
        // Schedules are read every minute: added or removed ones take effect without a restart.
        let now = Local::now().naive_local().with_second(0).expect("valid");
        for job in dirs.all()? {
            let due = Cron::parse(&job.cron).is_ok_and(|c| c.matches(&now));
            if due {
                if let Err(e) = run_job(ctx, job, dirs).await {
                    output::warn(&format!("{e:#}"));
                }
            }
            ctx.check_cancelled()?;
        }
        let wait = 60 - Local::now().second() as u64;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait.max(1))) => {}
            _ = ctx.cancel.cancelled() => return Err(UserError::interrupted().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_password_reaches_runs_as_an_absolute_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "secret\n").unwrap();
        let given = crate::cli::ResticPasswordArgs {
            restic_password_file: Some(file.clone()),
        };
        assert_eq!(
            restic_password_file(&given).unwrap(),
            file.to_string_lossy()
        );
        let missing = crate::cli::ResticPasswordArgs {
            restic_password_file: Some(dir.path().join("none")),
        };
        let err = restic_password_file(&missing).unwrap_err().to_string();
        assert!(err.contains("not a file"), "{err}");
        assert!(!err.contains("secret"));
    }

    #[test]
    fn table_is_pinned() {
        let started = Utc::now();
        // Times are shown in local time: the test follows whatever zone it runs in.
        let t = started
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let row = |id: &str, scheduler, installed, exit_code: Option<i32>| Row {
            job: Job {
                id: id.into(),
                volumes: vec!["db".into(), "web".into()],
                destinations: vec!["/srv/backups".into(), "s3://b/p".into()],
                cron: "0 3 * * *".into(),
                when: "daily at 03:00".into(),
                scheduler,
                args: vec![],
                created: started,
                metrics: None,
            },
            log: format!("/logs/{id}.log"),
            installed,
            last_run: exit_code.map(|exit_code| LastRun {
                started,
                finished: started,
                exit_code,
            }),
        };
        let rows = vec![
            row("db-web-1a2b", Scheduler::Cron, true, Some(0)),
            row("x", Scheduler::Systemd, true, Some(4)),
            row("y", Scheduler::Cron, false, None),
        ];
        assert_eq!(
            table(&rows),
            format!(
                "\
ID           WHEN                  VIA       LAST RUN             RESULT        BACKUP  ->  DESTINATIONS  (LOG)
db-web-1a2b  daily at 03:00        cron      {t}  ok            db,web  ->  /srv/backups s3://b/p  (/logs/db-web-1a2b.log)
x            daily at 03:00        systemd   {t}  FAILED (4)    db,web  ->  /srv/backups s3://b/p  (/logs/x.log)
y            daily at 03:00        MISSING   -                    never run     db,web  ->  /srv/backups s3://b/p  (/logs/y.log)
"
            )
        );
        assert_eq!(
            table(&[]),
            "ID  WHEN                  VIA       LAST RUN             RESULT        BACKUP  ->  DESTINATIONS  (LOG)\n"
        );
    }
}
