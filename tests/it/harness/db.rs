//! Database fixtures: PostgreSQL and MariaDB server images built locally from the host's Debian
//! server packages (scripts/db-images.sh; nothing is pulled), server containers removed on drop,
//! and SQL run with a server's own client.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{docker, unique, Run, RunExt};

/// Builds (once per run, idempotently) the local server image of `kind`.
pub fn db_image(kind: &'static str) -> String {
    static IMAGES: OnceLock<std::sync::Mutex<std::collections::HashMap<&str, String>>> =
        OnceLock::new();
    let images = IMAGES.get_or_init(Default::default);
    let mut images = images.lock().unwrap();
    if let Some(name) = images.get(kind) {
        return name.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/db-images.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(kind)
        .env("QUIET", "1")
        .run()
        .expect_ok(&format!(
            "cannot build the {kind} test image (run scripts/test-deps.sh)"
        ));
    let name = out.stdout_str().trim().to_string();
    images.insert(kind, name.clone());
    name
}

/// A database server container, removed on drop.
pub struct DbServer {
    pub name: String,
    password: String,
    kind: &'static str,
    /// The engine's `-H` when it is not the local Docker (a Podman service).
    host: Option<String>,
}

impl DbServer {
    /// Starts a server from the local image, as a user would run the official one, and waits
    /// until it answers with its password.
    pub fn start(
        kind: &'static str,
        env: &[(&str, &str)],
        extra: &[&str],
        password: &str,
    ) -> DbServer {
        Self::start_on(None, kind, env, extra, password)
    }

    /// As [`DbServer::start`], on the engine at `host` (its image imported there first).
    pub fn start_on(
        host: Option<&str>,
        kind: &'static str,
        env: &[(&str, &str)],
        extra: &[&str],
        password: &str,
    ) -> DbServer {
        let image = match host {
            None => db_image(kind),
            Some(host) => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/db-images.sh");
                Command::new("bash")
                    .arg(script)
                    .arg(kind)
                    .env("QUIET", "1")
                    .env("DOCKER_HOST", host)
                    .run()
                    .expect_ok(&format!("cannot import the {kind} test image into {host}"))
                    .stdout_str()
                    .trim()
                    .to_string()
            }
        };
        let server = DbServer {
            name: unique(kind),
            password: password.to_string(),
            kind,
            host: host.map(String::from),
        };
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &server.name,
            "--network",
            "none",
            "--shm-size",
            "256m",
            "-v",
            "/usr:/usr:ro",
        ]
        .map(String::from)
        .to_vec();
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(image);
        server
            .cli()
            .args(&args)
            .run()
            .expect_ok("starting a database server");
        let start = Instant::now();
        loop {
            let probe = server.sql_run("postgres", "SELECT 1");
            if probe.code == 0 && probe.stdout_str().trim() == "1" {
                return server;
            }
            if start.elapsed() > Duration::from_secs(90) {
                let logs = server
                    .cli()
                    .args(["logs", "--tail", "30", &server.name])
                    .run();
                panic!(
                    "the {kind} server did not come up: {}\n{}",
                    probe.stderr, logs.stderr
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The docker CLI for the server's engine.
    fn cli(&self) -> Command {
        let mut c = Command::new("docker");
        if let Some(host) = &self.host {
            c.args(["-H", host]);
        }
        c
    }

    /// Runs SQL with the server's own client, the password in the exec's environment.
    pub fn sql_run(&self, db: &str, sql: &str) -> Run {
        let (var, cmd) = sql_command(self.kind, db, sql);
        self.cli()
            .env(var, &self.password)
            .args(["exec", "-e", var, &self.name])
            .args(cmd)
            .run()
    }

    #[track_caller]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let run = self.sql_run(db, sql);
        assert_eq!(run.code, 0, "{sql}\n{run}");
        run.stdout_str().trim().to_string()
    }

    /// Command lines of every process in the container, NULs as spaces.
    pub fn command_lines(&self) -> String {
        docker(&[
            "exec",
            &self.name,
            "sh",
            "-c",
            "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done",
        ])
    }

    /// Pids of processes whose command starts with `prefix`.
    pub fn pids_of(&self, prefix: &str) -> Vec<String> {
        let script = format!(
            "for p in /proc/[0-9]*; do case \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" in \
             \"{prefix}\"*) echo ${{p#/proc/}};; esac; done"
        );
        docker(&["exec", &self.name, "sh", "-c", &script])
            .split_whitespace()
            .map(String::from)
            .collect()
    }
}

impl Drop for DbServer {
    fn drop(&mut self) {
        let _ = self.cli().args(["rm", "-f", "-v", &self.name]).run();
    }
}

/// Runs SQL in `container` (a `kind` server) with its own client, the password in the exec's
/// environment (and in no command line: `-e VAR` takes it from the docker CLI's environment).
pub fn sql_in(kind: &str, container: &str, password: &str, db: &str, sql: &str) -> Run {
    let (var, cmd) = sql_command(kind, db, sql);
    Command::new("docker")
        .env(var, password)
        .args(["exec", "-e", var, container])
        .args(cmd)
        .run()
}

/// The password's variable and the client's command line for SQL in a `kind` server.
fn sql_command<'a>(kind: &str, db: &'a str, sql: &'a str) -> (&'static str, Vec<&'a str>) {
    match kind {
        "postgres" => (
            "PGPASSWORD",
            vec![
                "psql",
                "-X",
                "-q",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "app",
                "-d",
                db,
                "-c",
                sql,
            ],
        ),
        _ => {
            let db = if db == "postgres" { "mysql" } else { db };
            (
                "MYSQL_PWD",
                vec!["mariadb", "-uroot", "-N", "-B", db, "-e", sql],
            )
        }
    }
}
