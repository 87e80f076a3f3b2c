//! `compose-export --with-dumps` / `compose-import --replay-dumps` against a real compose
//! project with a PostgreSQL service (the db-images fixture; compose never pulls).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const PASSWORD: &str = "compose-pg-pw";

fn yaml() -> String {
    let (pg, bb) = (db_image("postgres"), busybox());
    format!(
        r#"version: "3.7"
services:
  db:
    image: {pg}
    network_mode: none
    shm_size: 256m
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: {PASSWORD}
      POSTGRES_DB: appdb
    volumes:
      - pgdata:/var/lib/postgresql/data
      - /usr:/usr:ro
  web:
    image: {bb}
    network_mode: none
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]
volumes:
  pgdata:
"#
    )
}

/// The running container of `service` in `project`.
fn container(project: &str, service: &str) -> String {
    docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--filter",
        &format!("label=com.docker.compose.service={service}"),
    ])
    .trim()
    .to_string()
}

/// Runs SQL in the project's PostgreSQL.
fn sql(project: &str, sql: &str) -> Run {
    sql_in(
        "postgres",
        &container(project, "db"),
        PASSWORD,
        "appdb",
        sql,
    )
}

fn wait_ready(project: &str) {
    let start = Instant::now();
    while sql(project, "SELECT 1").code != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "PostgreSQL of {project} did not come up"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rows(project: &str) -> String {
    sql(project, "SELECT id, name FROM people ORDER BY id")
        .ok()
        .stdout_str()
}

#[test]
fn export_with_dumps_and_replay_under_another_project() {
    let mut p = Project::new("cdb", &yaml());
    let name = p.name.clone();
    p.compose(&name, &["up", "-d"]).ok();
    wait_ready(&name);
    sql(
        &name,
        "CREATE TABLE people (id serial PRIMARY KEY, name text); \
         INSERT INTO people (name) VALUES ('ada lovelace'), ('grace hopper')",
    )
    .ok();
    let want = rows(&name);
    let out = tempdir();
    let bundle = out.path().join("b.compose.tar");
    let bundle_s = bundle.to_str().unwrap();
    let run = run_in(
        &p.path(),
        &["compose-export", "--with-dumps", "-o", bundle_s],
    )
    .ok();
    assert!(run.stderr.contains("dumped"), "{}", run.stderr);
    assert_eq!(Project::running(&name), 2, "the services run again");

    // The bundle lists the dump, and its parts joined are db-dump's file with the rows.
    let listing = Command::new("tar").arg("tf").arg(&bundle).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names[0], "bundle.json");
    assert_eq!(names[1], "dumps/db.sql.zst.000001", "{listing}");
    assert!(!listing.contains("dumps/web"), "{listing}");
    let x = tempdir();
    Command::new("tar")
        .arg("xf")
        .arg(&bundle)
        .current_dir(x.path())
        .status()
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.path().join("bundle.json")).unwrap()).unwrap();
    let dumps = manifest["dumps"].as_array().expect("dumps in bundle.json");
    assert_eq!(dumps.len(), 1);
    assert_eq!(dumps[0]["service"], "db");
    assert_eq!(dumps[0]["engine"], "postgres");
    assert_eq!(dumps[0]["file"], "dumps/db.sql.zst");
    assert!(dumps[0]["database"].is_null(), "every database: pg_dumpall");
    let mut joined = Vec::new();
    let mut parts: Vec<_> = std::fs::read_dir(x.path().join("dumps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    for part in parts {
        joined.extend(std::fs::read(part).unwrap());
    }
    let text = String::from_utf8(zstd::decode_all(&joined[..]).unwrap()).unwrap();
    assert!(
        text.starts_with("-- docker-volume-backup db-dump {"),
        "manifest line"
    );
    assert!(text.contains("ada lovelace") && text.contains("grace hopper"));

    // Replaying needs the services up.
    let new = format!("{name}n");
    p.also.push(new.clone());
    run_in(
        &p.path(),
        &["compose-import", bundle_s, "-p", &new, "--replay-dumps"],
    )
    .fails_with(1, "is not running");
    // Import under a new name: the volumes, and the command that replays the dumps.
    let run = run_in(&p.path(), &["compose-import", bundle_s, "-p", &new]).ok();
    assert!(run.stderr.contains("--replay-dumps"), "{}", run.stderr);
    p.compose(&new, &["up", "-d"]).ok();
    wait_ready(&new);
    assert_eq!(rows(&new), want, "the raw volume");
    // A change after the export goes when the dump replays (the databases are replaced).
    sql(
        &new,
        "DELETE FROM people; INSERT INTO people (name) VALUES ('later')",
    )
    .ok();
    let later = rows(&new);
    // Without --force an existing database is not replaced.
    run_in(
        &p.path(),
        &["compose-import", bundle_s, "-p", &new, "--replay-dumps"],
    )
    .fails_with(1, "already exists");
    assert_eq!(rows(&new), later);
    run_in(
        &p.path(),
        &[
            "compose-import",
            bundle_s,
            "-p",
            &new,
            "--replay-dumps",
            "--force",
        ],
    )
    .ok();
    assert_eq!(rows(&new), want, "the replayed dump");

    // --split DIR: the dump is a file db-restore takes, beside the volume archives; and a
    // directory replays as a bundle does.
    let dir = out.path().join("split");
    run_in(
        &p.path(),
        &[
            "compose-export",
            "--with-dumps",
            "--split",
            dir.to_str().unwrap(),
        ],
    )
    .ok();
    let file = dir.join("db_all.sql.zst");
    let text = String::from_utf8(zstd::decode_all(&std::fs::read(&file).unwrap()[..]).unwrap());
    assert!(text.unwrap().contains("grace hopper"));
    sql(&new, "DELETE FROM people").ok();
    run_in(
        &p.path(),
        &[
            "compose-import",
            dir.to_str().unwrap(),
            "-p",
            &new,
            "--replay-dumps",
            "--force",
        ],
    )
    .ok();
    assert_eq!(rows(&new), want, "replayed from a split directory");
    // A cut dump replays nothing, even with --force: pg_dumpall's DROP DATABASE statements come
    // inside the stream, so the whole of it is checked first, and the database stays as it was.
    sql(&new, "INSERT INTO people (name) VALUES ('kept')").ok();
    let kept = rows(&new);
    let whole = std::fs::read(&file).unwrap();
    let sql_text = zstd::decode_all(&whole[..]).unwrap();
    // (A small dump is read whole when it is opened: its cut zstd stream fails there.)
    for (cut, says) in [
        (&whole[..whole.len() / 2], "truncated"),
        (&sql_text[..sql_text.len() / 2], "nothing was changed"),
    ] {
        std::fs::write(&file, cut).unwrap();
        let run = run_in(
            &p.path(),
            &[
                "compose-import",
                dir.to_str().unwrap(),
                "-p",
                &new,
                "--replay-dumps",
                "--force",
            ],
        );
        assert_eq!(run.code, 6, "{}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert_eq!(rows(&new), kept);
    }
    std::fs::write(&file, &whole).unwrap();
    // Dumps are not encrypted: refused with encryption, before anything is written.
    let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let enc = out.path().join("enc.compose.tar");
    run_in(
        &p.path(),
        &[
            "compose-export",
            "--with-dumps",
            "-r",
            key,
            "-o",
            enc.to_str().unwrap(),
        ],
    )
    .fails_with(2, "--with-dumps does not encrypt");
    assert!(!enc.exists());

    // A dump that fails (the password in the service's environment no longer works) fails the
    // export: no bundle, nothing half-written, every service still running.
    sql(&name, "ALTER ROLE app PASSWORD 'changed-since'").ok();
    let failed = out.path().join("failed");
    std::fs::create_dir(&failed).unwrap();
    let run = run_in(
        &p.path(),
        &[
            "compose-export",
            "--with-dumps",
            "-o",
            failed.to_str().unwrap(),
        ],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&failed).unwrap().count(), 0, "no bundle");
    assert_eq!(Project::running(&name), 2);
}
