//! restic repositories on S3 (`restic:s3:http://HOST:PORT/BUCKET/PREFIX`), against the harness's
//! S3 server (moto on loopback) and checked with the restic CLI: snapshots restic reads back
//! exactly, restores into new volumes, incremental saves, and the failures (wrong key, missing
//! bucket, endpoint down, a save cut short) that leave nothing behind.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::*;
use crate::restic_save::describe_tree;

const PASSWORD: &str = "correct horse battery staple";
const BUCKET: &str = "repos";
const PREFIX: &str = "team/laptop";

/// A bucket on a fresh S3 server, and the address of a repository under `PREFIX` in it.
struct S3Repo {
    server: S3Server,
    _dir: tempfile::TempDir,
    pwfile: PathBuf,
}

impl S3Repo {
    fn start(auth: bool) -> S3Repo {
        let server = if auth {
            S3Server::start_with_auth()
        } else {
            S3Server::start()
        };
        server.make_bucket(BUCKET);
        let dir = tempdir();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        S3Repo {
            server,
            _dir: dir,
            pwfile,
        }
    }

    /// `s3:http://127.0.0.1:PORT/repos/team/laptop`, as restic takes it.
    fn address(&self) -> String {
        format!("s3:{}/{BUCKET}/{PREFIX}", self.server.endpoint)
    }

    fn url(&self) -> String {
        format!("restic:{}", self.address())
    }

    /// The tool with the server's key in the AWS variables and the password in a file.
    fn tool(&self, args: &[&str]) -> Run {
        self.tool_with_secret(&self.server.secret, args)
    }

    fn tool_with_secret(&self, secret: &str, args: &[&str]) -> Run {
        self.server
            .tool_with(&self.server.endpoint, secret)
            .env("RESTIC_PASSWORD_FILE", &self.pwfile)
            .env_remove("RESTIC_PASSWORD")
            .args(args)
            .run()
    }

    /// The restic CLI on the repository (a server without authentication takes any key).
    #[track_caller]
    fn restic_ok(&self, args: &[&str]) -> String {
        let o = Command::new("restic")
            .env("RESTIC_REPOSITORY", self.address())
            .env("RESTIC_PASSWORD_FILE", &self.pwfile)
            .env_remove("RESTIC_PASSWORD")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", &self.server.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("HOME", self.server.home.path())
            .arg("--no-cache")
            .args(args)
            .output()
            .expect("restic runs");
        assert!(
            o.status.success(),
            "restic {args:?} failed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The repository's objects, relative to its prefix.
    fn objects(&self) -> Vec<String> {
        let prefix = format!("{PREFIX}/");
        self.server
            .keys(BUCKET)
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    fn count(&self, dir: &str) -> usize {
        let dir = format!("{dir}/");
        self.objects()
            .iter()
            .filter(|k| k.starts_with(&dir))
            .count()
    }

    /// Bytes stored under the repository's prefix.
    fn bytes(&self) -> u64 {
        self.server
            .python(&format!(
                "p = s3.get_paginator('list_objects_v2')\n\
                 print(sum(o['Size'] for page in p.paginate(Bucket={BUCKET:?}, Prefix={PREFIX:?}) \
                 for o in page.get('Contents', [])))"
            ))
            .trim()
            .parse()
            .unwrap()
    }
}

#[test]
fn awkward_volume_round_trips_through_an_s3_repository() {
    let repo = S3Repo::start(false);
    let src = awkward_volume("rs3-rt");
    let before = src.snapshot();
    let r = repo
        .tool(&["save", &src.name, "--to", &repo.url(), "--init"])
        .ok();
    assert!(r.stderr.contains("as snapshot"), "{r}");
    assert!(!r.stderr.contains(PASSWORD), "{r}");
    // restic's layout under the prefix: packs in data/XX/, no lock left.
    let objects = repo.objects();
    assert!(objects.iter().any(|k| k == "config"), "{objects:?}");
    assert_eq!(repo.count("keys"), 1, "{objects:?}");
    assert_eq!(repo.count("snapshots"), 1, "{objects:?}");
    assert!(repo.count("index") >= 1, "{objects:?}");
    for pack in objects.iter().filter(|k| k.starts_with("data/")) {
        let (dir, name) = pack["data/".len()..].split_once('/').unwrap();
        assert!(dir.len() == 2 && name.starts_with(dir), "{pack}");
    }
    assert_eq!(repo.count("locks"), 0, "{objects:?}");
    // restic itself checks every byte, and restores the volume entry by entry.
    repo.restic_ok(&["check", "--read-data"]);
    let out = tempdir();
    repo.restic_ok(&[
        "restore",
        "latest",
        "--tag",
        &format!("volume={}", src.name),
        "--target",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(describe_tree(&out.path().join(&src.name)), before);
    // The tool lists it and restores it into a new volume.
    let listed = repo.tool(&["backups", &repo.url()]).ok();
    assert!(listed.stdout_str().contains(&src.name), "{listed}");
    let back = Volume::named("rs3-back");
    repo.tool(&["restore", &repo.url(), &src.name, "--as", &back.name])
        .ok();
    assert_eq!(back.snapshot(), before);
    // A second save of the unchanged volume adds a snapshot file and little else.
    let first = repo.bytes();
    let r = repo.tool(&["save", &src.name, "--to", &repo.url()]).ok();
    assert!(r.stderr.contains("parent"), "{r}");
    let added = repo.bytes() - first;
    assert!(
        added < 16 << 10 && added * 10 < first,
        "the unchanged second save added {added} bytes to {first}"
    );
    assert_eq!(repo.count("snapshots"), 2);
    repo.tool(&["verify", &repo.url(), "--read-data"]).ok();
    repo.restic_ok(&["check"]);
    assert_eq!(repo.count("locks"), 0);
    assert_eq!(src.helpers_left(), "");
}

/// A wrong secret key: the repository named, the key's variables hinted, no secret shown, and
/// nothing written. (moto with IAM authentication refuses OpenDAL's signed listings with a
/// prefix, so the successful runs are in the other tests, on a server without it.)
#[test]
fn a_wrong_secret_key_fails_clearly_without_the_secret() {
    let repo = S3Repo::start(true);
    let src = Volume::new("rs3-key");
    src.sh("echo x > /data/x");
    let wrong = "wrong-secret-4711";
    let r = repo.tool_with_secret(wrong, &["save", &src.name, "--to", &repo.url(), "--init"]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains(&repo.url()), "{r}");
    assert!(r.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{r}");
    for secret in [wrong, repo.server.secret.as_str(), PASSWORD] {
        assert!(
            !r.stderr.contains(secret) && !r.stdout_str().contains(secret),
            "{r}"
        );
    }
    let r = repo.tool_with_secret(wrong, &["backups", &repo.url()]);
    assert_eq!(r.code, 1, "{r}");
    assert!(!r.stderr.contains(wrong), "{r}");
    assert!(repo.server.keys(BUCKET).is_empty());
    assert_eq!(src.helpers_left(), "");
}

#[test]
fn missing_bucket_dead_endpoint_and_cut_saves_leave_nothing() {
    let repo = S3Repo::start(false);
    let src = Volume::new("rs3-err");
    src.sh("for i in $(seq 1 60); do head -c 50000 /dev/urandom > /data/f$i; done");
    // No repository there, and no --init.
    repo.tool(&["save", &src.name, "--to", &repo.url()])
        .fails_with(4, "no restic repository");
    repo.tool(&["backups", &repo.url()])
        .fails_with(4, "no restic repository");
    // A bucket that does not exist is not made.
    let missing = format!("restic:s3:{}/nobucket/p", repo.server.endpoint);
    let r = repo
        .tool(&["save", &src.name, "--to", &missing, "--init"])
        .fails_with(4, "bucket does not exist");
    assert!(r.stderr.contains(&missing), "{r}");
    let buckets = repo
        .server
        .python("print([b['Name'] for b in s3.list_buckets()['Buckets']])");
    assert!(!buckets.contains("nobucket"), "{buckets}");
    // Nothing answers at the address's endpoint (AWS_ENDPOINT_URL names the live server: the
    // address wins).
    let dead = format!("restic:s3:http://127.0.0.1:{}/{BUCKET}/p", free_port());
    let r = repo
        .tool(&["save", &src.name, "--to", &dead, "--init"])
        .fails_with(1, "reachable");
    assert!(r.stderr.contains(&dead), "{r}");
    assert!(repo.server.keys(BUCKET).is_empty());
    // Once made, a save cut short or interrupted leaves no snapshot and no lock.
    repo.tool(&["save", &src.name, "--to", &repo.url(), "--init"])
        .ok();
    assert_eq!(repo.count("snapshots"), 1);
    let r = repo
        .server
        .tool()
        .args(["save", &src.name, "--to", &repo.url(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-stream-cut=10*off->return")
        .run();
    assert_ne!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("ended early") || r.stderr.contains("truncated"),
        "{r}"
    );
    let child = repo
        .server
        .tool()
        .args(["save", &src.name, "--to", &repo.url(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-entry=sleep(100)")
        .stderr(std::process::Stdio::piped())
        .start();
    let started = std::time::Instant::now();
    let r = interrupt_after(child, || started.elapsed().as_millis() > 1500);
    assert_ne!(r.code, 0, "{r}");
    assert_eq!(repo.count("snapshots"), 1);
    assert_eq!(repo.count("locks"), 0);
    assert_eq!(src.helpers_left(), "");
    // Killed after a cut stream went through the archiver (its index is written just before it
    // returns), before the tool looked at it: no snapshot reached the bucket.
    src.sh("echo new > /data/0new");
    let indexes = repo.count("index");
    let mut child = repo
        .server
        .tool()
        .args(["save", &src.name, "--to", &repo.url(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env(
            "FAILPOINTS",
            "restic-stream-cut=10*off->return;restic-archived=sleep(60000)",
        )
        .start();
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < 60 && repo.count("index") == indexes {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(started.elapsed().as_secs() < 60, "the index never came");
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.finish();
    assert_eq!(repo.count("snapshots"), 1);
    assert_eq!(repo.count("locks"), 0);
    repo.restic_ok(&["check"]);
    // A killed run leaves its helper and lock to the next run; remove them here.
    for id in src.helpers_left().split_whitespace() {
        docker_run(&["rm", "-f", id]);
    }
    docker_run(&["rm", "-f", &format!("dvb-lock-{}", src.name)]);
}

/// ssh master processes the openssh crate starts for SFTP (their control sockets live in
/// `.ssh-connection*` directories) still running.
fn ssh_masters(port: u16) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("ssh-connection") && l.contains(&port.to_string()))
        .map(str::to_string)
        .collect()
}

/// Waits (up to 10 s) for every ssh master on `port` to be gone. A master told to exit (`ssh
/// -O exit` returns once it has the request) or closed by its run's end is still in `ps` a
/// moment later.
#[track_caller]
fn assert_masters_end(port: u16) {
    let started = std::time::Instant::now();
    loop {
        let masters = ssh_masters(port);
        if masters.is_empty() {
            return;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "ssh masters outlive the runs: {masters:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A volume through a repository on SFTP (the harness's sshd on loopback, the system ssh):
/// restic reads what the tool wrote, the tool restores it, a second save adds little, and a
/// missing repository, an unknown host key and a refused key are clear errors that make
/// nothing.
#[test]
fn a_volume_through_an_sftp_repository() {
    let sshd = Sshd::start();
    let dir = tempdir();
    let path = dir.path().join("repo");
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    let url = format!(
        "restic:sftp://{}@127.0.0.1:{}/{}",
        sshd.user,
        sshd.port,
        path.display()
    );
    // The openssh crate puts its control sockets in the state directory, and a socket's path
    // must fit in 108 bytes: the harness's per-test one is longer. rustic's cache of the
    // remote repository goes to a directory of the test's too.
    let state = tempdir();
    let tool = |args: &[&str]| -> Run {
        sshd.tool()
            .env("XDG_STATE_HOME", state.path())
            .env("XDG_CACHE_HOME", state.path().join("cache"))
            .env("RESTIC_PASSWORD_FILE", &pwfile)
            .env_remove("RESTIC_PASSWORD")
            .args(args)
            .run()
    };
    let src = awkward_volume("rsf-rt");
    let before = src.snapshot();
    // The host's key is not known: refused, nothing made.
    let r = tool(&["save", &src.name, "--to", &url, "--init"]);
    assert_ne!(r.code, 0, "{r}");
    assert!(r.stderr.contains(&url), "{r}");
    assert!(!path.exists());
    sshd.trust_host_key();
    // No repository there and no --init: nothing made either.
    tool(&["save", &src.name, "--to", &url]).fails_with(4, "no restic repository");
    assert!(!path.exists());
    let r = tool(&["save", &src.name, "--to", &url, "--init"]).ok();
    assert!(r.stderr.contains("as snapshot"), "{r}");
    // restic reads it (the same directory, locally).
    let local = ResticRepo::existing(path.clone(), pwfile.clone());
    local
        .restic(&["check", "--read-data"])
        .expect_ok("restic check");
    let out = tempdir();
    local
        .restic(&[
            "restore",
            "latest",
            "--tag",
            &format!("volume={}", src.name),
            "--target",
            out.path().to_str().unwrap(),
        ])
        .expect_ok("restic restore");
    assert_eq!(describe_tree(&out.path().join(&src.name)), before);
    let back = Volume::named("rsf-back");
    tool(&["restore", &url, &src.name, "--as", &back.name]).ok();
    assert_eq!(back.snapshot(), before);
    // A second save adds little; no temporary file is left anywhere.
    let size = || {
        let o = Command::new("du")
            .args(["-sb"])
            .arg(&path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let first = size();
    tool(&["save", &src.name, "--to", &url]).ok();
    let added = size() - first;
    assert!(
        added < 64 << 10,
        "the unchanged second save added {added} to {first}"
    );
    let temps = Command::new("find")
        .arg(&path)
        .args(["-name", "*.tmp-*"])
        .output()
        .unwrap();
    assert!(
        temps.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&temps.stdout)
    );
    assert_eq!(local.snapshot_ids(&[]).len(), 2);
    // rustic's cache of the repository (snapshots and index), in the cache directory given.
    assert!(state.path().join("cache/rustic").is_dir());
    // Killed outright in the middle of a save: its ssh master stays connected (the openssh
    // crate's ControlPersist=yes), and the next run that reaches the repository ends it.
    struct EndMasters(u16);
    impl Drop for EndMasters {
        // Should the test fail before the tool ends it.
        fn drop(&mut self) {
            for line in ssh_masters(self.0) {
                let pid = line
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let _ = Command::new("kill").arg(pid).status();
            }
        }
    }
    let _masters = EndMasters(sshd.port);
    // The earlier runs' masters gone first: the one awaited below is the killed run's.
    assert_masters_end(sshd.port);
    let mut child = sshd
        .tool()
        .env("XDG_STATE_HOME", state.path())
        .env("XDG_CACHE_HOME", state.path().join("cache"))
        .env("RESTIC_PASSWORD_FILE", &pwfile)
        .env_remove("RESTIC_PASSWORD")
        .env("FAILPOINTS", "restic-entry=sleep(200)")
        .args(["save", &src.name, "--to", &url, "--rehash"])
        .start();
    let started = std::time::Instant::now();
    while ssh_masters(sshd.port).is_empty() {
        assert!(started.elapsed().as_secs() < 60, "no ssh master started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.finish();
    // (One or more: rustic's threads may have opened several connections.) An ssh the run
    // started may still be logging in when it is killed: it becomes a master (listening on
    // its control socket) or exits a moment later. Counted once every one listens, twice alike.
    let listening = |masters: &[String]| {
        masters.iter().all(|m| {
            let args: Vec<&str> = m.split_whitespace().collect();
            args.windows(2)
                .find(|w| w[0] == "-S")
                .is_some_and(|w| std::path::Path::new(w[1]).exists())
        })
    };
    let settled = std::time::Instant::now();
    let mut seen = ssh_masters(sshd.port);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = ssh_masters(sshd.port);
        if now == seen && listening(&now) {
            break;
        }
        assert!(
            settled.elapsed().as_secs() < 30,
            "ssh never settled: {now:?}"
        );
        seen = now;
    }
    assert!(!seen.is_empty(), "the killed run's masters stay");
    // And one whose control directory is gone (as the openssh crate leaves a master when a
    // connection attempt is dropped part way): found by its process, ended with SIGTERM.
    let pid = seen[0].split_whitespace().next().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mark = environ
        .split(|c| *c == 0)
        .find(|v| v.starts_with(b"DOCKER_VOLUME_BACKUP_RUN="))
        .map(|v| String::from_utf8_lossy(&v["DOCKER_VOLUME_BACKUP_RUN=".len()..]).into_owned())
        .expect("the killed run's masters carry its mark");
    let orphan = state.path().join(".ssh-connectionOrphan");
    std::fs::create_dir(&orphan).unwrap();
    let started = Command::new("/usr/bin/ssh")
        .arg("-F")
        .arg(sshd.dir.path().join("ssh_config"))
        .arg("-S")
        .arg(orphan.join("master"))
        .args(["-M", "-f", "-N", "-o", "ControlPersist=yes", "-p"])
        .arg(sshd.port.to_string())
        .args(["-l", &sshd.user, "127.0.0.1"])
        .env("DOCKER_VOLUME_BACKUP_RUN", &mark)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(started.success());
    std::fs::remove_dir_all(&orphan).unwrap();
    let left = ssh_masters(sshd.port).len();
    assert_eq!(left, seen.len() + 1);
    for id in src.helpers_left().split_whitespace() {
        docker_run(&["rm", "-f", id]);
    }
    docker_run(&["rm", "-f", &format!("dvb-lock-{}", src.name)]);
    let r = tool(&["backups", &url]).ok();
    let said = if left == 1 {
        "ended 1 ssh connection to an SFTP repository that a killed run left".to_string()
    } else {
        format!("ended {left} ssh connections to an SFTP repository that a killed run left")
    };
    assert!(r.stderr.contains(&said), "{r}");
    assert_masters_end(sshd.port);
    // A key the server does not take.
    sshd.use_key("id_unknown");
    let r = tool(&["backups", &url]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stderr.contains(&url), "{r}");
    assert!(!r.stderr.contains(PASSWORD), "{r}");
    // No ssh master outlives the runs.
    assert_masters_end(sshd.port);
    assert_eq!(src.helpers_left(), "");
}
