//! `restic:rest:URL` repositories on a real REST server (`rclone serve restic` on loopback): what
//! the tool saves there restic itself checks and restores, the tool restores it entry by entry,
//! saves after the first add almost nothing, and wrong credentials, a stopped server and an
//! append-only one are clear errors that leave the repository as it was and show no password.

use std::process::{Command, Stdio};

use crate::harness::*;

/// The restic CLI on the REST repository `repo` (the URL in the environment, not on the command
/// line; Debian's restic 0.14 takes no `RESTIC_REST_*` variables).
fn restic(server: &RestServer, repo: &str, password_file: &std::path::Path, args: &[&str]) -> Run {
    let mut cmd = Command::new("restic");
    cmd.env("RESTIC_REPOSITORY", server.url(repo))
        .env("RESTIC_PASSWORD_FILE", password_file)
        .env_remove("RESTIC_PASSWORD")
        .arg("--no-cache");
    if server.ca().exists() {
        cmd.arg("--cacert").arg(server.ca());
    }
    cmd.args(args).run()
}

/// A repository password in a file of the test's own.
struct Password {
    dir: tempfile::TempDir,
}

impl Password {
    fn new() -> Password {
        let dir = tempdir();
        std::fs::write(dir.path().join("pw"), format!("{RESTIC_PASSWORD}\n")).unwrap();
        Password { dir }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("pw")
    }

    /// The tool with the repository password in `RESTIC_PASSWORD_FILE` and no REST credentials
    /// from the test's environment.
    fn tool(&self) -> Command {
        let mut c = tool();
        c.env("RESTIC_PASSWORD_FILE", self.file())
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_REST_USERNAME")
            .env_remove("RESTIC_REST_PASSWORD");
        c
    }
}

/// Neither password of the REST server (encoded or not) in what the tool printed.
#[track_caller]
fn no_rest_password(run: &Run, wrong: &str) {
    let out = format!("{}\n{}", run.stdout_str(), run.stderr);
    for secret in [REST_PASSWORD, &REST_PASSWORD.replace('@', "%40"), wrong] {
        assert!(
            secret.is_empty() || !out.contains(secret),
            "a REST password is shown\n{run}"
        );
    }
}

fn snapshot_count(server: &RestServer, repo: &str, pw: &Password) -> usize {
    let run =
        restic(server, repo, &pw.file(), &["snapshots", "--json"]).expect_ok("restic snapshots");
    serde_json::from_slice::<Vec<serde_json::Value>>(&run.stdout)
        .unwrap()
        .len()
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    total
}

/// restic's restore of the newest snapshot of `volume`, described as `Volume::snapshot`
/// describes a volume.
fn restic_restored(server: &RestServer, repo: &str, pw: &Password, volume: &str) -> String {
    let out = tempdir();
    restic(
        server,
        repo,
        &pw.file(),
        &[
            "restore",
            "latest",
            "--tag",
            &format!("volume={volume}"),
            "--target",
            out.path().to_str().unwrap(),
        ],
    )
    .expect_ok("restic restore");
    let script = r#"cd "$1" && find . | LC_ALL=C sort | while IFS= read -r f; do
                 stat -c '%n|%F|%u:%g|%a|%Y|%s|%h' "$f"
                 if [ -L "$f" ]; then echo "-> $(readlink "$f")";
                 elif [ -f "$f" ]; then md5sum < "$f"; fi
               done"#;
    Command::new("sh")
        .args([
            "-euc",
            script,
            "sh",
            out.path().join(volume).to_str().unwrap(),
        ])
        .run()
        .expect_ok("describing restic's restore")
        .stdout_str()
}

#[test]
fn a_volume_round_trips_through_a_rest_server() {
    let server = RestServer::start();
    let pw = Password::new();
    let src = awkward_volume("rest-rt");
    let before = src.snapshot();
    let url = format!("restic:{}", server.url("repo"));

    let saved = pw
        .tool()
        .args(["save", &src.name, "--to", &url, "--init"])
        .run()
        .ok();
    assert!(saved.stderr.contains("as snapshot"), "{saved}");
    // The repository is named without its password.
    assert!(
        saved
            .stderr
            .contains(&format!("restic:{}", server.bare_url("repo"))),
        "{saved}"
    );
    no_rest_password(&saved, "");
    assert!(server.repo_dir("repo").join("config").is_file());

    // restic reads all of it, and restores the volume entry by entry.
    restic(&server, "repo", &pw.file(), &["check", "--read-data"]).expect_ok("restic check");
    assert_eq!(restic_restored(&server, "repo", &pw, &src.name), before);

    // The tool lists it, verifies it, and restores it into a new volume (read back, compared).
    let listed = pw.tool().args(["backups", &url]).run().ok();
    assert!(listed.stdout_str().contains(&src.name), "{listed}");
    no_rest_password(&listed, "");
    let verified = pw.tool().args(["verify", &url, "--read-data"]).run().ok();
    assert!(verified.stdout_str().starts_with("ok: "), "{verified}");
    no_rest_password(&verified, "");
    let status = pw
        .tool()
        .args(["status", &url, "--rpo", "1d", "--volume", &src.name])
        .run()
        .ok();
    assert!(status.stdout_str().contains(&src.name), "{status}");
    no_rest_password(&status, "");
    let target = Volume::named("rest-rt-back");
    let restored = pw
        .tool()
        .args(["restore", &url, &src.name, "--as", &target.name, "--verify"])
        .run()
        .ok();
    assert!(
        restored
            .stderr
            .contains("every entry read back and compared"),
        "{restored}"
    );
    no_rest_password(&restored, "");
    assert_eq!(target.snapshot(), before);
    assert_eq!(src.helpers_left(), "");
}

#[test]
fn a_second_save_adds_almost_nothing_and_prune_removes_through_the_server() {
    let server = RestServer::start();
    let pw = Password::new();
    let src = Volume::new("rest-incr");
    src.sh("for i in $(seq 1 40); do head -c 200000 /dev/urandom > /data/f$i; done");
    let url = format!("restic:{}", server.url("repo"));
    let save = |extra: &[&str]| {
        pw.tool()
            .args(["save", &src.name, "--to", &url])
            .args(extra)
            .run()
            .ok()
    };
    save(&["--init"]);
    let first = dir_size(&server.repo_dir("repo"));
    let again = save(&[]);
    assert!(again.stderr.contains("parent"), "{again}");
    let added = dir_size(&server.repo_dir("repo")) - first;
    assert!(
        added * 100 < first,
        "the unchanged second save added {added} bytes to {first}"
    );
    // A changed file: about its size is added.
    src.sh("head -c 200000 /dev/urandom > /data/f7");
    save(&[]);
    assert_eq!(snapshot_count(&server, "repo", &pw), 3);

    // Prune deletes snapshots and unused packs on the server; what is kept is whole.
    let before = dir_size(&server.repo_dir("repo"));
    let pruned = pw
        .tool()
        .args(["prune", &url, "--keep-last", "1"])
        .run()
        .ok();
    assert!(
        pruned.stderr.contains("2 snapshot(s) forgotten"),
        "{pruned}"
    );
    no_rest_password(&pruned, "");
    assert_eq!(snapshot_count(&server, "repo", &pw), 1);
    assert!(dir_size(&server.repo_dir("repo")) < before);
    restic(&server, "repo", &pw.file(), &["check", "--read-data"]).expect_ok("restic check");
    assert_eq!(
        restic_restored(&server, "repo", &pw, &src.name),
        src.snapshot()
    );
}

#[test]
fn rest_credentials_from_the_environment_and_wrong_ones() {
    let server = RestServer::start();
    let pw = Password::new();
    let src = Volume::new("rest-cred");
    src.sh("echo hello > /data/a");
    let bare = format!("restic:{}", server.bare_url("repo"));

    // No credentials in the URL: RESTIC_REST_USERNAME / RESTIC_REST_PASSWORD (restic 0.17's).
    let run = pw
        .tool()
        .args(["save", &src.name, "--to", &bare, "--init"])
        .env("RESTIC_REST_USERNAME", REST_USER)
        .env("RESTIC_REST_PASSWORD", REST_PASSWORD)
        .run()
        .ok();
    no_rest_password(&run, "");

    // None at all: the server's 401, the repository named, a hint; exit 1, as for S3's.
    let none = pw.tool().args(["save", &src.name, "--to", &bare]).run();
    let none = none.fails_with(1, "401 Unauthorized");
    assert!(none.stderr.contains(&bare), "{none}");
    assert!(none.stderr.contains("RESTIC_REST_PASSWORD"), "{none}");

    // A wrong password in the URL, for each command that opens the repository; never shown.
    let wrong = "not-the-Pa55word";
    let url = format!("restic:{}", server.url_with("repo", wrong));
    for args in [
        vec!["save", src.name.as_str(), "--to", url.as_str()],
        vec!["save", src.name.as_str(), "--to", url.as_str(), "--init"],
        vec!["backups", url.as_str()],
        vec![
            "restore",
            url.as_str(),
            src.name.as_str(),
            "--as",
            "rest-cred-never",
        ],
        vec!["verify", url.as_str()],
        vec!["prune", url.as_str(), "--keep-last", "1"],
    ] {
        let run = pw.tool().args(&args).run();
        let run = run.fails_with(1, "the REST server answered 401 Unauthorized");
        assert!(run.stderr.contains(&bare), "{run}");
        assert!(
            run.stderr.contains("hint: check the user and password"),
            "{run}"
        );
        no_rest_password(&run, wrong);
    }
    assert_eq!(snapshot_count(&server, "repo", &pw), 1);
    // The URL's credentials win over the environment's (as in restic).
    let run = pw
        .tool()
        .args(["backups", &url])
        .env("RESTIC_REST_USERNAME", REST_USER)
        .env("RESTIC_REST_PASSWORD", REST_PASSWORD)
        .run();
    run.fails_with(1, "401");
    assert_eq!(src.helpers_left(), "");
}

#[test]
fn a_stopped_server_is_a_clear_error_and_leaves_no_snapshot() {
    let mut server = RestServer::start();
    let pw = Password::new();
    let src = Volume::new("rest-stop");
    src.sh("for i in $(seq 1 60); do head -c 50000 /dev/urandom > /data/f$i; done");
    let url = format!("restic:{}", server.url("repo"));
    pw.tool()
        .args(["save", &src.name, "--to", &url, "--init"])
        .run()
        .ok();

    // Stopped before the save starts: the repository cannot be reached, and the hint says where.
    server.stop();
    let run = pw.tool().args(["save", &src.name, "--to", &url]).run();
    let run = run.fails_with(1, "cannot reach the REST server");
    assert!(
        run.stderr.contains(&format!(
            "is the server running at http://127.0.0.1:{}/",
            server.port
        )),
        "{run}"
    );
    no_rest_password(&run, "");
    assert_eq!(src.helpers_left(), "");

    // Stopped while the volume streams in (new data; each entry slowed down to 4.8 s in all):
    // the save fails when it writes, and leaves no snapshot.
    server.restart();
    src.sh("for i in $(seq 1 60); do head -c 50000 /dev/urandom > /data/f$i; done");
    let url = format!("restic:{}", server.url("repo"));
    let mut child = pw
        .tool()
        .args(["save", &src.name, "--to", &url])
        .env("FAILPOINTS", "restic-entry=sleep(80)")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start();
    let started = std::time::Instant::now();
    while src.helpers_left().is_empty() {
        assert!(started.elapsed().as_secs() < 60, "the save never started");
        assert!(child.try_wait().unwrap().is_none(), "the save ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.stop();
    let run = child.finish();
    assert_eq!(run.code, 1, "{run}");
    assert!(
        run.stderr.contains("writing") && run.stderr.contains("cannot reach the REST server"),
        "{run}"
    );
    assert!(run.stderr.contains(&server.bare_url("repo")), "{run}");
    no_rest_password(&run, "");
    assert_eq!(src.helpers_left(), "");
    server.restart();
    assert_eq!(snapshot_count(&server, "repo", &pw), 1);
    restic(&server, "repo", &pw.file(), &["check"]).expect_ok("restic check");
}

#[test]
fn prune_on_an_append_only_server_fails_and_loses_nothing() {
    let mut server = RestServer::start();
    let pw = Password::new();
    let src = Volume::new("rest-append");
    let url = format!("restic:{}", server.url("repo"));
    for i in 0..2 {
        src.sh(&format!("head -c 100000 /dev/urandom > /data/f{i}"));
        pw.tool()
            .args(["save", &src.name, "--to", &url])
            .args(if i == 0 { &["--init"][..] } else { &[][..] })
            .run()
            .ok();
    }
    server.set_append_only(true);
    server.restart();
    let url = format!("restic:{}", server.url("repo"));
    // Saving still works; forgetting does not.
    src.sh("head -c 100000 /dev/urandom > /data/f2");
    pw.tool().args(["save", &src.name, "--to", &url]).run().ok();
    let run = pw.tool().args(["prune", &url, "--keep-last", "1"]).run();
    let run = run.fails_with(1, "403 Forbidden");
    assert!(run.stderr.contains("append-only"), "{run}");
    no_rest_password(&run, "");
    assert_eq!(snapshot_count(&server, "repo", &pw), 3);
    restic(&server, "repo", &pw.file(), &["check", "--read-data"]).expect_ok("restic check");
}

#[test]
fn a_killed_run_leaves_no_rest_password_behind() {
    let server = RestServer::start();
    let pw = Password::new();
    let src = Volume::new("rest-kill");
    src.sh("for i in $(seq 1 40); do head -c 20000 /dev/urandom > /data/f$i; done");
    let url = format!("restic:{}", server.url("repo"));
    pw.tool()
        .args(["save", &src.name, "--to", &url, "--init"])
        .run()
        .ok();
    // Killed outright while it streams: its journal stays, for `recover` and the next run.
    let mut child = pw
        .tool()
        .args(["save", &src.name, "--to", &url, "--rehash"])
        .env("FAILPOINTS", "restic-entry=sleep(100)")
        .start();
    let started = std::time::Instant::now();
    while src.helpers_left().is_empty() {
        assert!(started.elapsed().as_secs() < 60, "the save never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.finish();
    let next = pw.tool().args(["backups", &url]).run().ok();
    assert!(next.stderr.contains("ended without cleaning up"), "{next}");
    assert!(
        next.stderr
            .contains(&format!("--to restic:{}", server.bare_url("repo"))),
        "{next}"
    );
    no_rest_password(&next, "");
    // Nothing the runs keep holds it either.
    let state = state_home();
    let found = Command::new("grep")
        .args(["-rlF", &REST_PASSWORD.replace('@', "%40")])
        .arg(&state)
        .run();
    assert_eq!(found.code, 1, "the REST password is kept in {found}");
    assert!(state.exists());
    assert_eq!(snapshot_count(&server, "repo", &pw), 1);
    for id in src.helpers_left().split_whitespace() {
        docker_run(&["rm", "-f", id]);
    }
    docker_run(&["rm", "-f", &format!("dvb-lock-{}", src.name)]);
}

#[test]
fn https_with_the_servers_ca_and_without_it() {
    let server = RestServer::start_https();
    let pw = Password::new();
    let src = Volume::new("rest-tls");
    src.sh("echo hello > /data/a; mkdir /data/d; head -c 100000 /dev/urandom > /data/d/b");
    let url = format!("restic:{}", server.url("repo"));
    assert!(url.starts_with("restic:rest:https://"), "{url}");

    // The system's certificates do not know the test's CA: refused, said so, not retried.
    let started = std::time::Instant::now();
    let run = pw
        .tool()
        .args(["save", &src.name, "--to", &url, "--init"])
        .env_remove("SSL_CERT_FILE")
        .run();
    let run = run.fails_with(1, "certificate");
    assert!(
        run.stderr
            .contains("hint: the server's TLS certificate is not trusted"),
        "{run}"
    );
    assert!(
        started.elapsed().as_millis() < 1500,
        "retried an untrusted certificate"
    );
    no_rest_password(&run, "");
    assert!(!server.repo_dir("repo").exists());

    // With the CA in SSL_CERT_FILE: saved, checked by restic, restored entry by entry.
    let with_ca = |args: &[&str]| {
        pw.tool()
            .args(args)
            .env("SSL_CERT_FILE", server.ca())
            .run()
            .ok()
    };
    with_ca(&["save", &src.name, "--to", &url, "--init"]);
    restic(&server, "repo", &pw.file(), &["check", "--read-data"]).expect_ok("restic check");
    let back = Volume::named("rest-tls-back");
    with_ca(&["restore", &url, &src.name, "--as", &back.name]);
    assert_eq!(back.snapshot(), src.snapshot());
}

#[test]
fn dropped_connections_are_tried_again_a_bounded_number_of_times() {
    let server = RestServer::start();
    let pw = Password::new();
    let src = Volume::new("rest-retry");
    src.sh("echo hello > /data/a; head -c 100000 /dev/urandom > /data/b");
    // Three connections dropped: the fourth attempt of the first request goes through.
    let flaky = FlakyProxy::start(server.port, 3);
    let url = format!("restic:{}", server.url("repo"))
        .replace(&format!(":{}/", server.port), &format!(":{}/", flaky.port));
    let run = pw
        .tool()
        .args(["save", &src.name, "--to", &url, "--init"])
        .run()
        .ok();
    assert_eq!(flaky.dropped(), 3, "{run}");
    assert_eq!(snapshot_count(&server, "repo", &pw), 1);

    // Every connection dropped: four attempts, then a clear error.
    let down = FlakyProxy::start(server.port, usize::MAX);
    let url = url.replace(&format!(":{}/", flaky.port), &format!(":{}/", down.port));
    let started = std::time::Instant::now();
    let run = pw.tool().args(["backups", &url]).run();
    let run = run.fails_with(1, "cannot reach the REST server");
    assert_eq!(down.dropped(), 4, "{run}");
    assert!(started.elapsed().as_secs() < 10, "{run}");
    no_rest_password(&run, "");
}
