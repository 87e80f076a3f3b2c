//! `schedule add|ls|rm` and `run-schedule` with the real crontab (CI has no systemd user
//! session). The tool runs with a temporary HOME, so its schedules, logs and results stay in the
//! test's directory; the crontab entry is removed at the end, also when the test fails.

use std::process::Command;

use crate::harness::*;

/// The tool with HOME (and so its schedules and logs) in `home`.
fn tool_at(home: &std::path::Path, args: &[&str]) -> Run {
    tool()
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_STATE_HOME")
        .args(args)
        .run()
}

fn crontab() -> String {
    let out = Command::new("crontab").arg("-l").output().expect("crontab");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes our crontab entries on drop, whatever happened.
/// The schedules a test added, removed from the crontab on drop. It also holds the crontab for
/// the test: the crontab is one per user, and a test checks that it is left as it was.
struct CronGuard(
    Vec<String>,
    #[allow(dead_code)] // held for the test, never read
    std::sync::MutexGuard<'static, ()>,
);

impl CronGuard {
    fn new() -> Self {
        static CRONTAB: std::sync::Mutex<()> = std::sync::Mutex::new(());
        CronGuard(
            Vec::new(),
            CRONTAB.lock().unwrap_or_else(|e| e.into_inner()),
        )
    }
}

impl Drop for CronGuard {
    fn drop(&mut self) {
        let before = crontab();
        let kept: Vec<&str> = before
            .lines()
            .filter(|l| !self.0.iter().any(|id| l.ends_with(&format!(":{id}"))))
            .collect();
        if kept.len() == before.lines().count() {
            return;
        }
        let mut child = Command::new("crontab")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut text = kept.join("\n");
        text.push('\n');
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn a_crontab_entry_runs_a_backup_and_failures_show_in_ls() {
    let home = tempdir();
    let h = home.path();
    let dest = tempdir();
    let vol = Volume::new("sched");
    vol.sh("echo scheduled > /data/f");
    let mut guard = CronGuard::new();
    let before = crontab();

    let added = tool_at(
        h,
        &[
            "schedule",
            "add",
            &vol.name,
            "--every",
            "15m",
            "--to",
            dest.path().to_str().unwrap(),
            "--keep-last",
            "3",
            "--using",
            "cron",
        ],
    )
    .ok();
    let id = added.stdout_str().trim().to_string();
    guard.0.push(id.clone());
    assert!(id.starts_with(&vol.name), "{id}");
    let table = crontab();
    let line = table
        .lines()
        .find(|l| l.ends_with(&format!("# docker-volume-backup:{id}")))
        .unwrap_or_else(|| panic!("no entry for {id} in:\n{table}"));
    assert!(line.starts_with("*/15 * * * * "), "{line}");
    assert!(line.contains(&format!("run-schedule {id}")), "{line}");
    // The tool's absolute path.
    assert!(line.contains(&format!("'{BIN}'")), "{line}");

    // Never run yet.
    let ls = tool_at(h, &["schedule", "ls", "--format", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    assert_eq!(rows[0]["id"], id.as_str());
    assert!(rows[0]["last_run"].is_null());
    assert_eq!(rows[0]["installed"], true);
    // The run keeps the Docker context it was made under, whatever cron's environment.
    let saved: Vec<&str> = rows[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(saved[..2], ["--context", "default"], "{saved:?}");
    assert!(saved.contains(&"--keep-last"), "{saved:?}");
    let log = rows[0]["log"].as_str().unwrap().to_string();
    assert!(log.starts_with(h.to_str().unwrap()), "{log}");

    // Run the entry's command as cron would (sh, from another directory).
    let command = line
        .splitn(6, ' ')
        .nth(5)
        .unwrap()
        .split(" # docker-volume-backup:")
        .next()
        .unwrap();
    let status = Command::new("sh")
        .args(["-c", command])
        .current_dir("/")
        .env("HOME", h)
        .env_remove("XDG_STATE_HOME")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .status()
        .unwrap();
    assert!(status.success());
    let made = files_in(dest.path());
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].starts_with(&vol.name) && made[0].ends_with(".tar.zst"));
    run(&["verify", dest.path().join(&made[0]).to_str().unwrap()]).ok();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("ok (exit 0)"), "{logged}");
    assert!(logged.contains("saved "), "{logged}");
    let ls = tool_at(h, &["schedule", "ls"]).ok();
    assert!(ls.stdout_str().contains(" ok "), "{}", ls.stdout_str());

    // A schedule whose volume went away: its run fails, and `ls` says so with a non-zero exit.
    let gone = Volume::named("sched-gone");
    let broken = tool_at(
        h,
        &[
            "schedule",
            "add",
            &gone.name,
            "--at",
            "03:00",
            "--to",
            dest.path().to_str().unwrap(),
        ],
    )
    .ok()
    .stdout_str()
    .trim()
    .to_string();
    guard.0.push(broken.clone());
    assert!(crontab().contains(&format!("0 3 * * * '{BIN}' run-schedule {broken}")));
    tool_at(h, &["run-schedule", &broken]).fails_with(4, "failed");
    let ls = tool_at(h, &["schedule", "ls"]);
    assert_eq!(ls.code, 1, "{}", ls.stderr);
    assert!(ls.stderr.contains(&broken), "{}", ls.stderr);
    assert!(
        ls.stdout_str().contains("FAILED (4)"),
        "{}",
        ls.stdout_str()
    );
    assert_eq!(files_in(dest.path()).len(), 1);

    // Bad times are usage errors and install nothing.
    tool_at(
        h,
        &[
            "schedule", "add", &vol.name, "--at", "25:00", "--to", "/tmp",
        ],
    )
    .fails_with(2, "HH:MM");
    tool_at(
        h,
        &[
            "schedule", "add", &vol.name, "--every", "7m", "--to", "/tmp",
        ],
    )
    .fails_with(2, "--cron");
    tool_at(
        h,
        &[
            "schedule", "add", &vol.name, "--cron", "* * *", "--to", "/tmp",
        ],
    )
    .fails_with(2, "five fields");

    // Without cron or systemd: `run-schedule` in the foreground runs what is due (this one
    // every minute) until interrupted.
    let every_minute = tempdir();
    let minutely = tool_at(
        h,
        &[
            "schedule",
            "add",
            &vol.name,
            "--every",
            "1m",
            "--to",
            every_minute.path().to_str().unwrap(),
        ],
    )
    .ok()
    .stdout_str()
    .trim()
    .to_string();
    guard.0.push(minutely.clone());
    let mut child = tool()
        .env("HOME", h)
        .env_remove("XDG_STATE_HOME")
        .args(["run-schedule"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .start();
    let start = std::time::Instant::now();
    let last_run = h.join(format!(
        ".local/state/docker-volume-backup/{minutely}.last-run.json"
    ));
    while !last_run.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(150),
            "the foreground loop did not run the schedule"
        );
        assert!(child.try_wait().unwrap().is_none(), "run-schedule exited");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let r = child.finish();
    r.fails_with(130, "interrupted");
    assert_eq!(files_in(every_minute.path()).len(), 1);

    // rm takes the entries out: the crontab is as it was.
    tool_at(h, &["schedule", "rm", &id]).ok();
    tool_at(h, &["schedule", "rm", &broken]).ok();
    tool_at(h, &["schedule", "rm", &minutely]).ok();
    assert_eq!(crontab().trim(), before.trim());
    tool_at(h, &["schedule", "rm", &id]).fails_with(4, "no schedule");
    let ls = tool_at(h, &["schedule", "ls", "--format", "json"]).ok();
    assert_eq!(ls.stdout_str().trim(), "[]");
}

/// Schedule files, logs and results are the user's alone (0600, in 0700 directories), and a
/// URL's credentials are neither saved nor logged nor listed.
#[test]
fn schedule_files_are_private_and_hold_no_credentials() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempdir();
    let h = home.path();
    let dest = tempdir();
    let vol = Volume::new("sched-private");
    let mut guard = CronGuard::new();
    let secret = "S3cret-pw-in-url";
    // A Docker host with a password is refused, and the error does not repeat it.
    let host = format!("tcp://dvb-user:{secret}@127.0.0.1:9");
    let run = tool_at(h, &["-H", &host, "ls"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("`tcp://127.0.0.1:9`"), "{}", run.stderr);
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    let endpoint = format!("https://AKIAKEY:{secret}@127.0.0.1:9");
    let added = tool_at(
        h,
        &[
            "--s3-endpoint",
            &endpoint,
            "schedule",
            "add",
            &vol.name,
            "--every",
            "1h",
            "--to",
            dest.path().to_str().unwrap(),
            "--using",
            "cron",
        ],
    )
    .ok();
    let id = added.stdout_str().trim().to_string();
    guard.0.push(id.clone());
    assert!(!added.stderr.contains(secret), "{}", added.stderr);
    assert!(
        added
            .stderr
            .contains("the credentials in https://127.0.0.1:9 are not saved"),
        "{}",
        added.stderr
    );
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let config = h.join(".config/docker-volume-backup/schedules");
    let job = config.join(format!("{id}.json"));
    assert_eq!(mode(&job), 0o600);
    assert_eq!(mode(&config), 0o700);
    let saved = std::fs::read_to_string(&job).unwrap();
    assert!(!saved.contains(secret), "{saved}");
    assert!(saved.contains("https://127.0.0.1:9"), "{saved}");

    // A run writes its log and result 0600, without the password; a log an older version left
    // 0644 is narrowed.
    let state = h.join(".local/state/docker-volume-backup");
    std::fs::create_dir_all(&state).unwrap();
    let log = state.join(format!("{id}.log"));
    std::fs::write(&log, "an older run\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = tool_at(h, &["run-schedule", &id]).ok();
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    assert_eq!(mode(&log), 0o600);
    assert_eq!(mode(&state.join(format!("{id}.last-run.json"))), 0o600);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.starts_with("an older run\n"), "{logged}");
    assert!(logged.contains("ok (exit 0)"), "{logged}");
    assert!(
        logged.contains("--s3-endpoint https://127.0.0.1:9"),
        "{logged}"
    );
    assert!(!logged.contains(secret), "{logged}");

    // A schedule file written by an older version with the password in it: listed and logged
    // without it.
    let old = saved.replace("https://127.0.0.1:9", &endpoint);
    assert!(old.contains(secret));
    std::fs::write(&job, old).unwrap();
    let ls = tool_at(h, &["schedule", "ls", "--format", "json"]);
    assert!(!ls.stdout_str().contains(secret), "{}", ls.stdout_str());
    assert!(ls.stdout_str().contains("https://127.0.0.1:9"));
    // (Its backup may clash with the first one's name within the same second: only the log
    // matters here.)
    let run = tool_at(h, &["run-schedule", &id]);
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged.matches("--s3-endpoint https://127.0.0.1:9").count(),
        2
    );
    assert!(!logged.contains(secret), "{logged}");
    tool_at(h, &["schedule", "rm", &id]).ok();
}

/// A schedule remembers `--notify` and `--ping`, and writes its metrics file after each run.
#[test]
fn a_schedule_notifies_pings_and_writes_its_metrics() {
    let home = tempdir();
    let h = home.path();
    let dest = tempdir();
    let server = Recorder::start();
    let vol = Volume::new("sched-notify");
    vol.sh("echo scheduled > /data/f");
    let mut guard = CronGuard::new();
    let metrics = h.join("textfile").join("backup.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let added = tool_at(
        h,
        &[
            "schedule",
            "add",
            &vol.name,
            "--every",
            "1h",
            "--to",
            dest.path().to_str().unwrap(),
            "--using",
            "cron",
            "--notify",
            &server.url("/hook"),
            "--ping",
            &server.url("/hc"),
            "--metrics-file",
            metrics.to_str().unwrap(),
            "--rpo",
            "2h",
        ],
    )
    .ok();
    let id = added.stdout_str().trim().to_string();
    guard.0.push(id.clone());
    tool_at(h, &["run-schedule", &id]).ok();

    let got: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let want: Vec<(String, String)> = [("GET", "/hc/start"), ("GET", "/hc"), ("POST", "/hook")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
    let text = std::fs::read_to_string(&metrics).unwrap();
    let samples = crate::notify::parse_prometheus(&text);
    let value = |name: &str| {
        samples
            .iter()
            .find(|s| s.name == format!("docker_volume_backup_{name}"))
            .map(|s| s.value)
    };
    assert_eq!(value("rpo_met"), Some(1.0), "{text}");
    assert_eq!(value("rpo_seconds"), Some(7200.0), "{text}");
    assert_eq!(value("schedule_last_run_success"), Some(1.0), "{text}");
    assert!(
        value("schedule_last_run_duration_seconds").unwrap() > 0.0,
        "{text}"
    );
    let left = files_in(metrics.parent().unwrap());
    assert_eq!(left, ["backup.prom"], "a partial file is left");
    tool_at(h, &["schedule", "rm", &id]).ok();
}

/// A `restic:rest:` URL's credentials are not saved with a schedule (the warning says so), the
/// crontab line neither.
#[test]
fn a_rest_repositorys_credentials_are_not_saved_with_a_schedule() {
    let home = tempdir();
    let h = home.path();
    let vol = Volume::new("sched-rest");
    let mut guard = CronGuard::new();
    let secret = "Rest-S3cret-in-url";
    let pw = h.join("restic-pw");
    std::fs::write(&pw, "x\n").unwrap();
    let url = format!("restic:rest:http://dvb:{secret}@127.0.0.1:9/repo/");
    let added = tool_at(
        h,
        &[
            "schedule",
            "add",
            &vol.name,
            "--every",
            "1h",
            "--to",
            &url,
            "--restic-password-file",
            pw.to_str().unwrap(),
            "--using",
            "cron",
        ],
    )
    .ok();
    let id = added.stdout_str().trim().to_string();
    guard.0.push(id.clone());
    assert!(!added.stderr.contains(secret), "{added}");
    assert!(
        added.stderr.contains(
            "the credentials in restic:rest:http://127.0.0.1:9/repo/ are not saved with the schedule"
        ),
        "{added}"
    );
    let job = h.join(format!(".config/docker-volume-backup/schedules/{id}.json"));
    let saved = std::fs::read_to_string(&job).unwrap();
    assert!(!saved.contains(secret), "{saved}");
    assert!(
        saved.contains("restic:rest:http://127.0.0.1:9/repo/"),
        "{saved}"
    );
    assert!(!crontab().contains(secret));
    let ls = tool_at(h, &["schedule", "ls"]).ok();
    assert!(!ls.stdout_str().contains(secret), "{ls}");
    tool_at(h, &["schedule", "rm", &id]).ok();
}

/// A schedule made against Podman (`DOCKER_HOST` at its socket) keeps that engine: its runs save
/// the Podman volume whatever cron's environment, name the archives after the Podman engine, and
/// `--keep-last` prunes only that engine's backups of the volume.
#[test]
fn a_schedule_made_against_podman_saves_from_podman() {
    let podman = PodmanEngine::start();
    let vol = podman.volume("sched-pm");
    podman.sh(&vol, "mkdir d && echo podman > d/f && chmod 0700 d");
    let home = tempdir();
    let h = home.path();
    let dest = tempdir();
    let d = dest.path().to_str().unwrap();
    let mut guard = CronGuard::new();
    let on_podman = |args: &[&str]| {
        tool()
            .env("HOME", h)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env("DOCKER_HOST", podman.host())
            .args(args)
            .run()
    };
    let id = on_podman(&[
        "schedule",
        "add",
        &vol,
        "--every",
        "15m",
        "--to",
        d,
        "--keep-last",
        "1",
        "--using",
        "cron",
    ])
    .ok()
    .stdout_str()
    .trim()
    .to_string();
    guard.0.push(id.clone());
    let ls = tool_at(h, &["schedule", "ls", "--format", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let saved: Vec<&str> = rows[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(saved[..2], ["-H", podman.host().as_str()], "{saved:?}");

    // Two runs as cron starts them (no DOCKER_HOST): each saves the Podman volume; the second
    // prunes the first. A Docker backup of a same-named volume in the directory is not touched.
    let docker_vol = Volume { name: vol.clone() };
    docker(&["volume", "create", &vol]);
    docker_vol.sh("echo docker > /data/f");
    run(&["save", &vol, "--to", d, "-q"]).ok();
    let of_docker = files_in(dest.path());
    assert_eq!(of_docker.len(), 1, "{of_docker:?}");
    for _ in 0..2 {
        tool_at(h, &["run-schedule", &id]).ok();
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let made: Vec<String> = files_in(dest.path())
        .into_iter()
        .filter(|f| !of_docker.contains(f))
        .collect();
    assert_eq!(made.len(), 1, "kept the newest of Podman's: {made:?}");
    assert!(
        files_in(dest.path()).contains(&of_docker[0]),
        "Docker's kept"
    );
    assert_ne!(
        made[0].rsplit('_').next(),
        of_docker[0].rsplit('_').next(),
        "engines apart in the name"
    );
    let out = tempdir();
    let o = out.path().join("x");
    let archive = dest.path().join(&made[0]);
    run(&[
        "extract",
        archive.to_str().unwrap(),
        "d",
        "-o",
        o.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(o.join("d/f")).unwrap(), "podman\n");
    let ls = tool_at(h, &["schedule", "ls"]).ok();
    assert!(ls.stdout_str().contains(" ok "), "{}", ls.stdout_str());
}
