//! Recurring backups. A schedule is a JSON file (the tool's arguments, saved with the Docker
//! context and S3 settings they were made under) plus an entry that runs `run-schedule ID`: a
//! line in the user's crontab, marked with the ID, or a systemd user timer. Each run appends to
//! a log the user can find and records its result, which `schedule ls` shows.
//!
//! Every file here is the user's alone (mode 0600, in 0700 directories): a schedule holds the
//! endpoints and destinations it runs against, a log what its runs printed. URLs lose their
//! credentials (`url::strip_credentials`) before they are saved or logged.

pub mod cron;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Local, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Kind, UserError};

/// Marks our crontab lines: `... # docker-volume-backup:ID`.
const MARKER: &str = "# docker-volume-backup:";
/// systemd unit names: `docker-volume-backup-ID.timer`.
const UNIT_PREFIX: &str = "docker-volume-backup-";

/// What installs and runs a schedule; saved in each schedule's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Systemd,
    Cron,
}

/// One schedule, as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub volumes: Vec<String>,
    pub destinations: Vec<String>,
    /// Five-field cron expression (local time).
    pub cron: String,
    /// How it was given (`--at 03:00`, `--every 6h`, `--cron ...`).
    pub when: String,
    pub scheduler: Scheduler,
    /// The tool's arguments for one run: global flags (context, S3), then `save ...`.
    pub args: Vec<String>,
    pub created: DateTime<Utc>,
    /// Where each run writes its Prometheus metrics (`--metrics-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// The metrics file a schedule writes after each run: what `status --format prometheus` prints
/// for its volumes and destinations, then the run's own result and duration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub file: PathBuf,
    /// The tool's arguments for `status ... --format prometheus`.
    pub args: Vec<String>,
}

/// The result of the last run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastRun {
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    pub exit_code: i32,
}

/// Where schedules, logs and results live (XDG directories of the user).
pub struct Dirs {
    pub config: PathBuf,
    pub state: PathBuf,
}

impl Dirs {
    pub fn of_user() -> Result<Dirs> {
        let home = dirs::home_dir().ok_or_else(|| {
            UserError::new(
                Kind::Failure,
                "cannot find the home directory (HOME is not set)",
            )
        })?;
        let xdg = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .unwrap_or_else(|| home.join(default))
        };
        Ok(Dirs {
            config: xdg("XDG_CONFIG_HOME", ".config").join("docker-volume-backup/schedules"),
            state: xdg("XDG_STATE_HOME", ".local/state").join("docker-volume-backup"),
        })
    }

    pub fn job_file(&self, id: &str) -> PathBuf {
        self.config.join(format!("{id}.json"))
    }

    pub fn log_file(&self, id: &str) -> PathBuf {
        self.state.join(format!("{id}.log"))
    }

    fn last_run_file(&self, id: &str) -> PathBuf {
        self.state.join(format!("{id}.last-run.json"))
    }

    pub fn save(&self, job: &Job) -> Result<()> {
        private_dir(&self.config)?;
        let path = self.job_file(&job.id);
        write_private(&path, &serde_json::to_vec_pretty(job)?)
    }

    pub fn load(&self, id: &str) -> Result<Job> {
        let path = self.job_file(id);
        let text = std::fs::read(&path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                Kind::NotFound
            } else {
                Kind::Failure
            };
            UserError::new(
                kind,
                format!("no schedule `{id}` ({}: {e})", path.display()),
            )
            .hint("`schedule ls` lists the schedules")
        })?;
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Every schedule, oldest first.
    pub fn all(&self) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        let entries = match std::fs::read_dir(&self.config) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(jobs),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.config.display())),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                jobs.push(self.load(id)?);
            }
        }
        jobs.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(jobs)
    }

    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_file(self.job_file(id));
        let _ = std::fs::remove_file(self.last_run_file(id));
    }

    pub fn last_run(&self, id: &str) -> Option<LastRun> {
        let text = std::fs::read(self.last_run_file(id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn record(&self, id: &str, run: &LastRun) -> Result<()> {
        private_dir(&self.state)?;
        write_private(&self.last_run_file(id), &serde_json::to_vec_pretty(run)?)
    }

    /// Opens the log of schedule `id` for appending, created 0600; a log left by an older
    /// version with a wider mode is narrowed on the open file.
    pub fn open_log(&self, id: &str) -> Result<File> {
        private_dir(&self.state)?;
        let path = self.log_file(id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(PRIVATE_FILE)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        narrow(&log, &path)?;
        Ok(log)
    }
}

/// Mode of every file the schedules write.
const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and its missing parents) 0700 if it is not there.
fn private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Sets an open file's mode to 0600 if it is wider.
fn narrow(file: &File, path: &Path) -> Result<()> {
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode != PRIVATE_FILE {
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))
            .with_context(|| format!("making {} private", path.display()))?;
    }
    Ok(())
}

/// Writes `path` atomically with mode 0600: a temporary file beside it, created 0600 (never
/// readable by others, not even for a moment), synced and renamed over the old file, which
/// takes an older, wider file's mode away with it.
fn write_private(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(content)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

impl Job {
    /// The schedule with every URL in its arguments and destinations stripped of credentials
    /// (for logs and listings of schedules saved before they were stripped on saving).
    pub fn redacted(&self) -> Job {
        let strip = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|a| crate::url::strip_credentials(a).0.into_owned())
                .collect()
        };
        Job {
            args: strip(&self.args),
            destinations: strip(&self.destinations),
            ..self.clone()
        }
    }
}

/// A short ID from the first volume and a few random-enough hex digits.
pub fn new_id(volumes: &[String]) -> String {
    let seed = format!(
        "{:?}{}{volumes:?}",
        std::time::SystemTime::now(),
        std::process::id()
    );
    let hash = blake3::hash(seed.as_bytes()).to_hex();
    let base: String = volumes[0]
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    format!("{base}-{}", &hash[..6])
}

/// `'...'` for sh, cron and systemd (which all take single quotes).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command an entry runs.
fn command_line(exe: &Path, id: &str) -> String {
    format!("{} run-schedule {id}", quote(&exe.to_string_lossy()))
}

/// The scheduler to use: the one asked for, else systemd when a user manager answers, else cron.
pub fn choose(asked: Option<Scheduler>) -> Result<Scheduler> {
    let systemd = || {
        Command::new("systemctl")
            .args(["--user", "show-environment"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let cron = || {
        Command::new("crontab")
            .arg("-l")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    match asked {
        Some(Scheduler::Systemd) if !systemd() => Err(UserError::new(
            Kind::Failure,
            "`systemctl --user` does not work here (no systemd user session)",
        )
        .hint("use --using cron, or `run-schedule` in the foreground")
        .into()),
        Some(Scheduler::Cron) if !cron() => Err(no_crontab()),
        Some(s) => Ok(s),
        None if systemd() => Ok(Scheduler::Systemd),
        None if cron() => Ok(Scheduler::Cron),
        None => Err(UserError::new(
            Kind::Failure,
            "neither a systemd user session nor crontab is available",
        )
        .hint("install cron, or keep `docker-volume-backup run-schedule` running in the foreground")
        .into()),
    }
}

fn no_crontab() -> anyhow::Error {
    UserError::new(Kind::Failure, "`crontab` is not installed")
        .hint("install cron (apt-get install cron), or use --using systemd")
        .into()
}

/// Installs the entry that runs `job` (crontab line or systemd timer).
pub fn install(job: &Job, exe: &Path, dirs: &Dirs) -> Result<()> {
    match job.scheduler {
        Scheduler::Cron => {
            let mut lines = crontab_lines()?;
            lines.retain(|l| !is_entry_of(l, &job.id));
            lines.push(format!(
                "{} {} {MARKER}{}",
                job.cron,
                command_line(exe, &job.id),
                job.id
            ));
            write_crontab(&lines)
        }
        Scheduler::Systemd => install_systemd(job, exe, dirs),
    }
}

/// Removes the entry of schedule `id` (whichever kind it is).
pub fn uninstall(job: &Job) -> Result<()> {
    match job.scheduler {
        Scheduler::Cron => {
            let mut lines = crontab_lines()?;
            let before = lines.len();
            lines.retain(|l| !is_entry_of(l, &job.id));
            if lines.len() == before {
                return Ok(());
            }
            if lines.iter().all(|l| l.trim().is_empty()) {
                // Ours was the only entry: leave no crontab, as before it was added.
                return remove_crontab();
            }
            write_crontab(&lines)
        }
        Scheduler::Systemd => uninstall_systemd(&job.id),
    }
}

fn is_entry_of(line: &str, id: &str) -> bool {
    line.trim_end().ends_with(&format!("{MARKER}{id}"))
}

/// The user's crontab (empty when there is none).
fn crontab_lines() -> Result<Vec<String>> {
    let out = Command::new("crontab")
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .map_err(|_| no_crontab())?;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no crontab") {
        return Ok(Vec::new());
    }
    checked("crontab -l failed", &out)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect())
}

fn write_crontab(lines: &[String]) -> Result<()> {
    let mut child = Command::new("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| no_crontab())?;
    let mut text = lines.join("\n");
    text.push('\n');
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .context("writing the crontab")?;
    checked("crontab refused the new table", &child.wait_with_output()?)
}

/// Fails with `what` and the program's stderr when it did not succeed.
fn checked(what: &str, out: &std::process::Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(UserError::new(Kind::Failure, format!("{what}: {}", err.trim())).into())
}

fn remove_crontab() -> Result<()> {
    let out = Command::new("crontab")
        .arg("-r")
        .stdin(Stdio::null())
        .output()
        .map_err(|_| no_crontab())?;
    checked("crontab -r failed", &out)
}

/// Our crontab lines, for `schedule ls` (to show a schedule whose entry went missing).
pub fn crontab_has(id: &str) -> bool {
    crontab_lines().is_ok_and(|lines| lines.iter().any(|l| is_entry_of(l, id)))
}

fn systemd_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| dirs::home_dir().map(|h| h.join(".config")))
        .ok_or_else(|| UserError::new(Kind::Failure, "cannot find the home directory"))?;
    Ok(base.join("systemd/user"))
}

fn systemctl(args: &[&str]) -> Result<()> {
    let out = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running systemctl --user")?;
    checked(&format!("systemctl --user {} failed", args.join(" ")), &out)
}

fn install_systemd(job: &Job, exe: &Path, dirs: &Dirs) -> Result<()> {
    let dir = systemd_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let unit = format!("{UNIT_PREFIX}{}", job.id);
    let service = format!(
        "[Unit]\nDescription=docker-volume-backup schedule {id}\n\n[Service]\nType=oneshot\n\
         ExecStart={cmd}\n",
        id = job.id,
        cmd = command_line(exe, &job.id),
    );
    let calendar: String = cron::Cron::parse(&job.cron)
        .map_err(|e| UserError::new(Kind::Usage, e))?
        .on_calendar()
        .iter()
        .map(|c| format!("OnCalendar={c}\n"))
        .collect();
    let timer = format!(
        "[Unit]\nDescription=docker-volume-backup schedule {id} ({when}); log: {log}\n\n\
         [Timer]\n{calendar}Persistent=true\n\n[Install]\nWantedBy=timers.target\n",
        id = job.id,
        when = job.when,
        log = dirs.log_file(&job.id).display(),
    );
    write_private(&dir.join(format!("{unit}.service")), service.as_bytes())?;
    write_private(&dir.join(format!("{unit}.timer")), timer.as_bytes())?;
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", &format!("{unit}.timer")])
}

fn uninstall_systemd(id: &str) -> Result<()> {
    let unit = format!("{UNIT_PREFIX}{id}");
    // Already disabled or gone is fine: the files go anyway.
    let _ = systemctl(&["disable", "--now", &format!("{unit}.timer")]);
    let dir = systemd_dir()?;
    for ext in ["timer", "service"] {
        let _ = std::fs::remove_file(dir.join(format!("{unit}.{ext}")));
    }
    systemctl(&["daemon-reload"])
}

/// Runs `job` once: the tool itself with the saved arguments, its output appended to the log,
/// the result recorded. Returns the exit code.
pub fn run_once(job: &Job, dirs: &Dirs) -> Result<i32> {
    let mut log = dirs.open_log(&job.id)?;
    let started = Utc::now();
    writeln!(
        log,
        "=== {} schedule {}: docker-volume-backup {}",
        started.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S %z"),
        job.id,
        job.redacted().args.join(" ")
    )?;
    let exe = std::env::current_exe().context("finding the tool's own path")?;
    let status = Command::new(exe)
        .args(&job.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .status()
        .context("starting the backup")?;
    // A signal has no exit code: count it as an interruption.
    let code = status.code().unwrap_or(Kind::Interrupted.exit_code());
    let finished = Utc::now();
    writeln!(
        log,
        "=== {} schedule {}: {} (exit {code})",
        finished
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S %z"),
        job.id,
        if code == 0 { "ok" } else { "FAILED" }
    )?;
    let last = LastRun {
        started,
        finished,
        exit_code: code,
    };
    dirs.record(&job.id, &last)?;
    if let Some(metrics) = &job.metrics {
        if let Err(e) = write_metrics(&job.id, metrics, &last) {
            writeln!(log, "=== metrics not written: {e:#}")?;
        }
    }
    Ok(code)
}

/// Writes the schedule's metrics file atomically (a dot-name beside it, then a rename): the
/// status of its volumes, then the run's own gauges.
fn write_metrics(id: &str, metrics: &Metrics, last: &LastRun) -> Result<()> {
    let exe = std::env::current_exe().context("finding the tool's own path")?;
    let status = Command::new(exe)
        .args(&metrics.args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("running status")?;
    // Exit 8 (a missed RPO) still printed the metrics; anything else did not.
    if !(status.status.success() || status.status.code() == Some(Kind::Stale.exit_code())) {
        anyhow::bail!("status exited with {}", status.status);
    }
    let mut text = String::from_utf8_lossy(&status.stdout).into_owned();
    text.push_str(&run_metrics(id, last));
    let dir = metrics
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = metrics
        .file
        .file_name()
        .context("the metrics file has no name")?
        .to_string_lossy();
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &metrics.file)
        .with_context(|| format!("renaming {} into place", partial.display()))
}

/// The gauges of one run of schedule `id`.
pub fn run_metrics(id: &str, last: &LastRun) -> String {
    let seconds = (last.finished - last.started).num_milliseconds() as f64 / 1000.0;
    let families = [
        (
            "schedule_last_run_timestamp_seconds",
            "When the last run of the schedule finished (Unix seconds).",
            last.finished.timestamp() as f64,
        ),
        (
            "schedule_last_run_duration_seconds",
            "How long the last run of the schedule took.",
            seconds,
        ),
        (
            "schedule_last_run_success",
            "1 when the last run of the schedule succeeded, else 0.",
            if last.exit_code == 0 { 1.0 } else { 0.0 },
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in families {
        out.push_str(&format!(
            "# HELP docker_volume_backup_{name} {help}\n\
             # TYPE docker_volume_backup_{name} gauge\n\
             docker_volume_backup_{name}{{schedule=\"{id}\"}} {value}\n"
        ));
    }
    out
}

/// The error kind for a run's exit code, so that `run-schedule` exits as the backup did.
pub fn kind_of_exit(code: i32) -> Kind {
    crate::error::EXIT_CODES
        .iter()
        .find(|e| e.code == code)
        .and_then(|e| e.kind)
        .unwrap_or(Kind::Failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn ids_are_safe_names() {
        let id = new_id(&["my data/x".to_string()]);
        assert!(id.starts_with("my-data-x-"), "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn entries_are_found_by_their_marker() {
        let line = format!("0 3 * * * '/bin/x' run-schedule a-1 {MARKER}a-1");
        assert!(is_entry_of(&line, "a-1"));
        assert!(!is_entry_of(&line, "a"));
        assert!(!is_entry_of("0 3 * * * other", "a-1"));
    }

    #[test]
    fn private_files_are_0600_and_fix_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs {
            config: dir.path().join("config/schedules"),
            state: dir.path().join("state"),
        };
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let job = Job {
            id: "j-1".into(),
            volumes: vec!["v".into()],
            destinations: vec!["/b".into()],
            cron: "0 3 * * *".into(),
            when: "daily at 03:00".into(),
            scheduler: Scheduler::Cron,
            args: vec!["-H".into(), "tcp://u:pw@h:2375".into()],
            created: Utc::now(),
            metrics: None,
        };
        dirs.save(&job).unwrap();
        assert_eq!(mode(&dirs.job_file("j-1")), 0o600);
        assert_eq!(mode(&dirs.config), 0o700);
        // A file left 0644 by an older version is 0600 after it is written again.
        std::fs::set_permissions(dirs.job_file("j-1"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        dirs.save(&job).unwrap();
        assert_eq!(mode(&dirs.job_file("j-1")), 0o600);
        private_dir(&dirs.state).unwrap();
        std::fs::write(dirs.log_file("j-1"), "old\n").unwrap();
        std::fs::set_permissions(dirs.log_file("j-1"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let mut log = dirs.open_log("j-1").unwrap();
        writeln!(log, "new").unwrap();
        assert_eq!(mode(&dirs.log_file("j-1")), 0o600);
        assert_eq!(
            std::fs::read_to_string(dirs.log_file("j-1")).unwrap(),
            "old\nnew\n"
        );
        dirs.record(
            "j-1",
            &LastRun {
                started: Utc::now(),
                finished: Utc::now(),
                exit_code: 0,
            },
        )
        .unwrap();
        assert_eq!(mode(&dirs.last_run_file("j-1")), 0o600);
        assert_eq!(job.redacted().args[1], "tcp://h:2375");
        // No temporary file stays behind.
        let names: Vec<_> = std::fs::read_dir(&dirs.config).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn exit_codes_map_back() {
        assert_eq!(kind_of_exit(4), Kind::NotFound);
        assert_eq!(kind_of_exit(1), Kind::Failure);
        assert_eq!(kind_of_exit(77), Kind::Failure);
    }
}
