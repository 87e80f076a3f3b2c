//! `save --to restic:REPO`: snapshots that restic itself reads back exactly, incremental saves,
//! and failures that leave no snapshot behind (checked with the restic CLI).

use std::path::Path;
use std::process::Command;

use docker_volume_backup::storage::restic;

use crate::harness::*;

const PASSWORD: &str = "correct horse battery staple";

/// The restic CLI on `repo`, with the password in a file.
fn restic(repo: &Path, pwfile: &Path, args: &[&str]) -> std::process::Output {
    Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--password-file")
        .arg(pwfile)
        .arg("--no-cache")
        .args(args)
        .output()
        .expect("restic runs")
}

#[track_caller]
fn restic_ok(repo: &Path, pwfile: &Path, args: &[&str]) -> String {
    let o = restic(repo, pwfile, args);
    assert!(
        o.status.success(),
        "restic {args:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The snapshots in `repo` as restic lists them (JSON).
fn snapshots(repo: &Path, pwfile: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&restic_ok(repo, pwfile, &["snapshots", "--json"])).unwrap()
}

fn dir_size(dir: &Path) -> u64 {
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

/// The files in `dir` named by an ID (not a write's temporary file).
fn ids_in(dir: &Path) -> usize {
    files_in(dir)
        .iter()
        .filter(|f| f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit()))
        .count()
}

fn locks_in(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("locks")).map_or(0, |d| d.count())
}

struct Repo {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    pwfile: std::path::PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempdir();
        let path = dir.path().join("repo");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
        Repo {
            _dir: dir,
            path,
            pwfile,
        }
    }

    fn arg(&self) -> String {
        format!("restic:{}", self.path.display())
    }

    fn save(&self, volume: &str, extra: &[&str]) -> Run {
        tool()
            .args(["save", volume, "--to", &self.arg()])
            .args(extra)
            .env("RESTIC_PASSWORD_FILE", &self.pwfile)
            .run()
    }
}

/// Restores the newest snapshot of `volume` with restic into a directory and describes it the
/// way `Volume::snapshot` describes a volume (run as root in a container, so owners stay).
fn restic_restore_snapshot(repo: &Repo, volume: &str) -> String {
    let out = tempdir();
    restic_ok(
        &repo.path,
        &repo.pwfile,
        &[
            "restore",
            "latest",
            "--tag",
            &format!("volume={volume}"),
            "--target",
            out.path().to_str().unwrap(),
        ],
    );
    describe_tree(&out.path().join(volume))
}

/// A directory restic restored, described the way `Volume::snapshot` describes a volume (the
/// tests run as root, so owners stay).
pub fn describe_tree(root: &Path) -> String {
    let script = r#"cd "$1" && find . | LC_ALL=C sort | while IFS= read -r f; do
                 stat -c '%n|%F|%u:%g|%a|%Y|%s|%h' "$f"
                 if [ -L "$f" ]; then echo "-> $(readlink "$f")";
                 elif [ -f "$f" ]; then md5sum < "$f"; fi
               done"#;
    let o = Command::new("sh")
        .args(["-euc", script, "sh", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The tool's manifest in snapshot `id`, read through the tool's own adapter.
fn manifest_of(repo: &Repo, id: &str) -> restic::SnapshotManifest {
    let target = restic::ResticTarget::parse(&repo.arg()).unwrap();
    let pw = restic::password_from(Some(&repo.pwfile), |_| None, || Err("no".into())).unwrap();
    let opened = restic::open(&target, &pw).unwrap();
    let snap = opened
        .get_all_snapshots()
        .unwrap()
        .into_iter()
        .find(|s| id.starts_with(&s.id.to_string()))
        .expect("the snapshot restic listed");
    restic::SnapshotManifest::from_description(&snap).expect("a manifest in the description")
}

#[test]
fn awkward_volume_round_trips_through_restic() {
    let src = awkward_volume("rs-rt");
    let before = src.snapshot();
    let repo = Repo::new();
    let r = repo.save(&src.name, &["--init"]);
    let r = r.ok();
    assert!(r.stderr.contains("as snapshot"), "{}", r.stderr);
    assert!(!r.stderr.contains(PASSWORD));
    // restic reads it: one snapshot, tagged, with the engine as host and the volume as path.
    let snaps = snapshots(&repo.path, &repo.pwfile);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let snap = &snaps[0];
    assert_eq!(snap["paths"][0], format!("/{}", src.name));
    let tags: Vec<&str> = snap["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"docker-volume-backup"), "{tags:?}");
    assert!(
        tags.contains(&format!("volume={}", src.name).as_str()),
        "{tags:?}"
    );
    assert!(tags.iter().any(|t| t.starts_with("engine=")), "{tags:?}");
    // The manifest is kept in the snapshot's `description` (restic's own `cat snapshot` prints
    // only the fields it knows: read it the way the tool does).
    let manifest = manifest_of(&repo, snap["id"].as_str().unwrap());
    assert_eq!(manifest.volume.name, src.name);
    assert_eq!(
        manifest.engine_key,
        tags.iter().find_map(|t| t.strip_prefix("engine=")).unwrap()
    );
    assert!(manifest.entries > 20, "{manifest:?}");
    assert!(manifest.content_bytes > 300_000, "{manifest:?}");
    // Entry by entry, the volume root's owner and mode included.
    assert_eq!(restic_restore_snapshot(&repo, &src.name), before);
    restic_ok(&repo.path, &repo.pwfile, &["check", "--read-data"]);
    assert_eq!(locks_in(&repo.path), 0, "no lock left");
    assert_eq!(src.helpers_left(), "");
}

#[test]
fn second_save_adds_almost_nothing_and_keeps_a_parent() {
    let src = Volume::new("rs-incr");
    src.sh("for i in $(seq 1 40); do head -c 200000 /dev/urandom > /data/f$i; done; mkdir /data/d; echo x > /data/d/y");
    let repo = Repo::new();
    repo.save(&src.name, &["--init"]).ok();
    let after_first = dir_size(&repo.path);
    let r = repo.save(&src.name, &[]).ok();
    assert!(r.stderr.contains("parent"), "{}", r.stderr);
    let after_second = dir_size(&repo.path);
    let added = after_second - after_first;
    assert!(
        added * 100 < after_first,
        "the unchanged second save added {added} bytes to {after_first}"
    );
    // One file changed: about its size is added, and restic restores the new content.
    src.sh("head -c 200000 /dev/urandom > /data/f7");
    repo.save(&src.name, &[]).ok();
    let added = dir_size(&repo.path) - after_second;
    assert!(
        added > 150_000 && added < 400_000,
        "one changed file added {added}"
    );
    let snaps = snapshots(&repo.path, &repo.pwfile);
    assert_eq!(snaps.len(), 3);
    assert!(snaps[2]["parent"].is_string(), "{:?}", snaps[2]);
    assert_eq!(restic_restore_snapshot(&repo, &src.name), src.snapshot());
    // --rehash reads everything again and still adds nothing new.
    let before = dir_size(&repo.path);
    let r = repo.save(&src.name, &["--rehash"]).ok();
    assert!(r.stderr.contains("no parent"), "{}", r.stderr);
    assert!(dir_size(&repo.path) - before < 50_000);
    restic_ok(&repo.path, &repo.pwfile, &["check", "--read-data"]);
}

#[test]
fn hard_links_are_numbered_from_the_parent_and_follow_changes() {
    let src = Volume::new("rs-links");
    src.sh(
        "mkdir /data/a /data/b; head -c 100000 /dev/urandom > /data/a/t; \
         ln /data/a/t /data/b/l1; ln /data/a/t /data/l2; echo one > /data/u; ln /data/u /data/b/u2",
    );
    let repo = Repo::new();
    // restic restores links from the nodes' inodes, the tool's restore from inode and count.
    let both_restores_match = || {
        let want = src.snapshot();
        assert_eq!(restic_restore_snapshot(&repo, &src.name), want);
        let back = Volume::named("rs-links-back");
        tool()
            .args(["restore", &repo.arg(), &src.name, "--as", &back.name])
            .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
            .run()
            .ok();
        assert_eq!(back.snapshot(), want);
    };
    let save = |what: &str| {
        let r = repo.save(&src.name, &["-D"]).ok();
        assert!(
            r.stderr.contains(&format!("hard links: {what}")),
            "{}",
            r.stderr
        );
        both_restores_match();
    };
    let r = repo.save(&src.name, &["--init", "-D"]).ok();
    assert!(
        r.stderr.contains("hard links: set in a second pass"),
        "{}",
        r.stderr
    );
    both_restores_match();
    // Unchanged: one pass, the links numbered from the parent's manifest.
    save("numbered from the parent's");
    // A linked file changes (same size): its links must carry the new content.
    src.sh("sleep 1; head -c 100000 /dev/urandom > /data/a/t");
    save("set in a second pass");
    save("numbered from the parent's");
    // A link goes, another comes: groups a/t (inode 1) and a/u3 (2).
    src.sh("rm /data/l2; ln /data/u /data/a/u3");
    save("set in a second pass");
    // a/t is no longer linked and a/u3's group becomes inode 1: a/t must not keep the number
    // it was given from the parent's links (the tool's restore would link it to a/u3).
    src.sh("rm /data/b/l1");
    save("set in a second pass");
    save("numbered from the parent's");
    src.sh("rm /data/b/u2 /data/a/u3");
    save("set in a second pass");
    save("none");

    // Killed during a link pass: the first pass's snapshot stays, tagged only as partial, which
    // nothing takes for the volume's backup; the next save removes it.
    let ours = || {
        let tag = format!("volume={}", src.name);
        let out = restic_ok(
            &repo.path,
            &repo.pwfile,
            &["snapshots", "--json", "--tag", &tag],
        );
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .unwrap()
            .len()
    };
    let partials = || {
        let out = restic_ok(
            &repo.path,
            &repo.pwfile,
            &["snapshots", "--json", "--tag", restic::save::PARTIAL_TAG],
        );
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .unwrap()
            .len()
    };
    let backups = ours();
    src.sh("ln /data/u /data/b/u4");
    let files = ids_in(&repo.path.join("snapshots"));
    let mut child = tool()
        .args(["save", &src.name, "--to", &repo.arg()])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-link-pass=sleep(60000)")
        .start();
    let started = std::time::Instant::now();
    while ids_in(&repo.path.join("snapshots")) == files {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first pass never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.finish();
    assert_eq!(partials(), 1);
    assert_eq!(
        ours(),
        backups,
        "the partial snapshot is not one of the volume's"
    );
    for id in src.helpers_left().split_whitespace() {
        docker_run(&["rm", "-f", id]);
    }
    docker_run(&["rm", "-f", &format!("dvb-lock-{}", src.name)]);
    save("set in a second pass");
    assert_eq!(partials(), 0, "the next save removed it");
    assert_eq!(ours(), backups + 1);
    restic_ok(&repo.path, &repo.pwfile, &["check", "--read-data"]);
}

#[test]
fn the_same_read_feeds_a_directory_and_a_repository() {
    let src = Volume::new("rs-fan");
    src.sh("echo one > /data/a; mkdir /data/b; echo two > /data/b/c");
    let repo = Repo::new();
    let dir = tempdir();
    repo.save(&src.name, &["--init", "--to", dir.path().to_str().unwrap()])
        .ok();
    assert!(only_archive(dir.path()).exists());
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), 1);
    assert_eq!(restic_restore_snapshot(&repo, &src.name), src.snapshot());
}

#[test]
fn missing_repository_wrong_password_and_no_password_are_clear_errors() {
    let src = Volume::new("rs-err");
    src.sh("echo x > /data/x");
    let repo = Repo::new();
    // No repository and no --init: nothing is created.
    repo.save(&src.name, &[])
        .fails_with(4, "no restic repository");
    assert!(!repo.path.exists());
    repo.save(&src.name, &["--init"]).ok();
    // --init on an existing repository just uses it.
    repo.save(&src.name, &["--init"]).ok();
    // A wrong password: a clear error, and the password shown nowhere.
    let wrong = "not-the-password-4711";
    let r = tool()
        .args(["save", &src.name, "--to", &repo.arg()])
        .env("RESTIC_PASSWORD", wrong)
        .env_remove("RESTIC_PASSWORD_FILE")
        .run();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("password does not open"), "{r}");
    assert!(
        !r.stderr.contains(wrong) && !r.stdout_str().contains(wrong),
        "{r}"
    );
    // No password anywhere and no terminal.
    let r = tool()
        .args(["save", &src.name, "--to", &repo.arg()])
        .env_remove("RESTIC_PASSWORD")
        .env_remove("RESTIC_PASSWORD_FILE")
        .run();
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("RESTIC_PASSWORD_FILE"), "{r}");
    // --restic-password-file wins over the environment.
    tool()
        .args([
            "save",
            &src.name,
            "--to",
            &repo.arg(),
            "--restic-password-file",
        ])
        .arg(&repo.pwfile)
        .env("RESTIC_PASSWORD", wrong)
        .run()
        .ok();
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), 3);
    // Repositories this build cannot reach are refused before a password is asked for or the
    // engine asked anything.
    run(&["save", &src.name, "--to", "restic:sftp:host:relative/repo"])
        .fails_with(2, "relative to the login directory");
    run(&["save", &src.name, "--to", "restic:azure:container:/r"]).fails_with(2, "not supported");
}

#[test]
fn interrupted_and_cut_saves_leave_no_snapshot() {
    let src = Volume::new("rs-cut");
    src.sh("for i in $(seq 1 60); do head -c 50000 /dev/urandom > /data/f$i; done");
    let repo = Repo::new();
    repo.save(&src.name, &["--init"]).ok();
    let first = snapshots(&repo.path, &repo.pwfile).len();
    // The stream ends after 10 entries (as if the engine's connection was cut).
    let r = tool()
        .args(["save", &src.name, "--to", &repo.arg(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-stream-cut=10*off->return")
        .run();
    assert_ne!(r.code, 0, "{r}");
    assert!(
        r.stderr.contains("ended early") || r.stderr.contains("truncated"),
        "{r}"
    );
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), first);
    // Interrupted halfway (each entry slowed down): no snapshot, no lock.
    let child = tool()
        .args(["save", &src.name, "--to", &repo.arg(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-entry=sleep(100)")
        .stderr(std::process::Stdio::piped())
        .start();
    let started = std::time::Instant::now();
    let r = interrupt_after(child, || started.elapsed().as_millis() > 1500);
    assert_ne!(r.code, 0, "{r}");
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), first);
    assert_eq!(locks_in(&repo.path), 0);
    assert_eq!(src.helpers_left(), "");
    // Killed outright: the snapshot is written last, so there is none either.
    let mut child = tool()
        .args(["save", &src.name, "--to", &repo.arg(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-entry=sleep(100)")
        .start();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    child.kill().unwrap();
    child.finish();
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), first);
    assert_eq!(locks_in(&repo.path), 0);
    // Killed after a cut stream went through the archiver, before the tool looked at it: the
    // archiver's snapshot was never written. (It writes its index just before it returns; a new
    // file makes the cut tree a new one.)
    src.sh("echo new > /data/0new");
    let indexes = ids_in(&repo.path.join("index"));
    let mut child = tool()
        .args(["save", &src.name, "--to", &repo.arg(), "--rehash"])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env(
            "FAILPOINTS",
            "restic-stream-cut=10*off->return;restic-archived=sleep(60000)",
        )
        .start();
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < 60 && ids_in(&repo.path.join("index")) == indexes {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(started.elapsed().as_secs() < 60, "the index never came");
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.finish();
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), first);
    restic_ok(&repo.path, &repo.pwfile, &["check"]);
    // A killed run leaves its helper and lock to the next run; remove them here.
    for id in src.helpers_left().split_whitespace() {
        docker_run(&["rm", "-f", id]);
    }
    docker_run(&["rm", "-f", &format!("dvb-lock-{}", src.name)]);
}

/// Killed while a file of a local repository is being written (rustic's local backend fills
/// files in place, which would leave one zero-filled under its ID): nothing is in its place
/// half written, restic checks the repository clean, and the next save and restores work.
#[test]
fn a_save_killed_while_writing_a_repository_file_leaves_it_whole() {
    let src = Volume::new("rs-kill-write");
    src.sh("head -c 300000 /dev/urandom > /data/f");
    let repo = Repo::new();
    repo.save(&src.name, &["--init"]).ok();
    src.sh("head -c 300000 /dev/urandom > /data/g");
    let temporary = || {
        let out = Command::new("find")
            .arg(&repo.path)
            .args(["-name", "*.tmp-*"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut child = tool()
        .args(["save", &src.name, "--to", &repo.arg()])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .env("FAILPOINTS", "restic-local-renaming=sleep(60000)")
        .start();
    let started = std::time::Instant::now();
    while temporary().is_empty() {
        assert!(started.elapsed().as_secs() < 60, "no file was written");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.finish();
    assert!(!temporary().is_empty());
    assert_eq!(snapshots(&repo.path, &repo.pwfile).len(), 1);
    restic_ok(&repo.path, &repo.pwfile, &["check", "--read-data"]);
    for id in src.helpers_left().split_whitespace() {
        docker_run(&["rm", "-f", id]);
    }
    docker_run(&["rm", "-f", &format!("dvb-lock-{}", src.name)]);
    repo.save(&src.name, &[]).ok();
    assert_eq!(restic_restore_snapshot(&repo, &src.name), src.snapshot());
    let back = Volume::named("rs-kill-write-back");
    tool()
        .args(["restore", &repo.arg(), &src.name, "--as", &back.name])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .run()
        .ok();
    assert_eq!(back.snapshot(), src.snapshot());
    restic_ok(&repo.path, &repo.pwfile, &["check", "--read-data"]);
}

#[test]
fn keep_rules_prune_the_repository_per_volume_after_a_save() {
    let kept = Volume::new("rs-keep");
    let other = Volume::new("rs-keep-other");
    kept.sh("echo one > /data/a");
    other.sh("echo two > /data/b");
    let repo = Repo::new();
    // The other volume's two snapshots: the rules never reach them.
    repo.save(&other.name, &["--init"]).ok();
    repo.save(&other.name, &[]).ok();
    let of = |volume: &str| -> Vec<String> {
        let tag = format!("volume={volume}");
        snapshots(&repo.path, &repo.pwfile)
            .iter()
            .filter(|s| s["tags"].as_array().unwrap().iter().any(|t| t == &tag))
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let others = of(&other.name);
    assert_eq!(others.len(), 2);
    let mut made: Vec<String> = Vec::new();
    for i in 0..3 {
        kept.sh(&format!("echo {i} > /data/a"));
        let r = repo.save(&kept.name, &["--keep-last", "2"]).ok();
        let now = of(&kept.name);
        let new: Vec<String> = now
            .iter()
            .filter(|id| !made.contains(id))
            .cloned()
            .collect();
        made.extend(new);
        assert_eq!(now.len(), (i + 1).min(2), "after save {}: {r}", i + 1);
        if i == 2 {
            assert!(r.stderr.contains("1 snapshot(s) forgotten"), "{r}");
        }
    }
    // The two newest stay (restic lists oldest first), the other volume's are untouched.
    assert_eq!(made.len(), 3);
    assert_eq!(of(&kept.name), made[1..].to_vec());
    assert_eq!(of(&other.name), others);
    assert_eq!(restic_restore_snapshot(&repo, &kept.name), kept.snapshot());
    restic_ok(&repo.path, &repo.pwfile, &["check"]);
    assert_eq!(locks_in(&repo.path), 0);
}

/// `security.capability`, the extended attribute the engine's archive carries, is kept in the
/// snapshot where restic keeps attributes, and comes back with the file.
#[test]
fn a_file_capability_goes_through_a_repository() {
    let src = Volume::new("rs-cap");
    src.sh("echo x > /data/ping; echo y > /data/plain");
    let mount = |v: &str| {
        docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", v])
            .trim()
            .to_string()
    };
    let ping = format!("{}/ping", mount(&src.name));
    let set = Command::new("setcap")
        .args(["cap_net_raw+ep", &ping])
        .status()
        .expect("setcap (libcap2-bin) runs");
    assert!(set.success());
    let repo = Repo::new();
    repo.save(&src.name, &["--init"]).ok();
    let id = snapshots(&repo.path, &repo.pwfile)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let listing = restic_ok(&repo.path, &repo.pwfile, &["cat", "snapshot", &id]);
    let snap: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let tree = restic_ok(
        &repo.path,
        &repo.pwfile,
        &["cat", "blob", snap["tree"].as_str().unwrap()],
    );
    let root: serde_json::Value = serde_json::from_str(&tree).unwrap();
    let volume_tree = root["nodes"][0]["subtree"].as_str().unwrap().to_string();
    let tree = restic_ok(&repo.path, &repo.pwfile, &["cat", "blob", &volume_tree]);
    let nodes: serde_json::Value = serde_json::from_str(&tree).unwrap();
    let node = |name: &str| {
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap()
    };
    let attrs = &node("ping")["extended_attributes"];
    assert_eq!(attrs[0]["name"], "security.capability", "{attrs}");
    assert!(node("plain")["extended_attributes"].is_null());

    let back = Volume::named("rs-cap-back");
    tool()
        .args(["restore", &repo.arg(), &src.name, "--as", &back.name])
        .env("RESTIC_PASSWORD_FILE", &repo.pwfile)
        .run()
        .ok();
    let get = |path: String| {
        let o = Command::new("getcap").arg(path).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        get(format!("{}/ping", mount(&back.name))).contains("cap_net_raw"),
        "the capability came back"
    );
    assert_eq!(get(format!("{}/plain", mount(&back.name))), "");
    // restic itself restores it too.
    let out = tempdir();
    restic_ok(
        &repo.path,
        &repo.pwfile,
        &["restore", &id, "--target", out.path().to_str().unwrap()],
    );
    let restored = out.path().join(&src.name).join("ping");
    assert!(get(restored.display().to_string()).contains("cap_net_raw"));
}
