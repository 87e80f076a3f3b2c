//! The read side of restic repositories, against repositories the restic CLI made: `restore
//! restic:REPO` (the newest snapshot of a volume of this engine, `--snapshot ID`, a snapshot
//! restic made of any directory), `backups`, `prune` per volume and engine, `verify`, and the
//! errors for a wrong password and a missing repository.

use crate::harness::*;

/// The awkward volume, snapshotted by restic as the tool lays a snapshot out, comes back
/// entry by entry (the root's owner and mode included); a non-empty target is refused without
/// `--force`, and replaced with it.
#[test]
fn the_awkward_volume_comes_back_from_a_restic_snapshot() {
    let repo = ResticRepo::init();
    let source = awkward_volume("rr-src");
    let label = engine_identity().label();
    repo.backup_volume(&source.name, &label, None);
    let want = source.snapshot();
    assert!(want.contains(".|directory|999:998|750|"), "{want}");

    let target = Volume::named("rr-dst");
    let run = repo
        .tool(&["restore", &repo.url(), &source.name, "--as", &target.name])
        .ok();
    assert!(run.stderr.contains("taking snapshot"), "{run}");
    assert!(
        run.stderr
            .contains("every blob authenticated by the repository"),
        "{run}"
    );
    assert_eq!(target.snapshot(), want);

    // Not over data without --force, and the volume is left as it was.
    target.sh("echo extra > /data/extra");
    repo.tool(&["restore", &repo.url(), &source.name, "--as", &target.name])
        .fails_with(5, "--force");
    assert!(target.snapshot().contains("./extra|"));
    repo.tool(&[
        "restore",
        &repo.url(),
        &source.name,
        "--as",
        &target.name,
        "--force",
    ])
    .ok();
    assert_eq!(target.snapshot(), want);

    // The tool's own snapshot of it (save --to restic:) comes back the same way, and is now
    // the newest of the volume from this engine.
    repo.tool(&["save", &source.name, "--to", &repo.url()]).ok();
    let again = Volume::named("rr-again");
    let run = repo
        .tool(&[
            "restore",
            &repo.url(),
            &source.name,
            "--as",
            &again.name,
            "--verify",
        ])
        .ok();
    assert!(
        run.stderr.contains("every entry read back and compared"),
        "{run}"
    );
    assert_eq!(again.snapshot(), want, "{run}");

    // Only a subtree, merged into the volume.
    let part = Volume::new("rr-part");
    part.sh("echo keep > /data/mine");
    repo.tool(&[
        "restore",
        &repo.url(),
        &source.name,
        "--as",
        &part.name,
        "--path",
        "deep/a",
    ])
    .ok();
    let got = part.sh("cd /data && find . | sort");
    assert!(got.contains("./deep/a/b/c/random.bin"), "{got}");
    assert!(got.contains("./mine"), "{got}");
    assert!(!got.contains("./dir"), "{got}");
}

/// `--snapshot ID` takes an older snapshot; without it the newest of the volume from this
/// engine is taken, and another engine's snapshots are not.
#[test]
fn snapshot_ids_and_engines() {
    let repo = ResticRepo::init();
    let v = Volume::new("rr-ids");
    let label = engine_identity().label();
    v.sh("echo one > /data/f");
    let first = repo.backup_volume(&v.name, &label, Some("2026-01-01 10:00:00"));
    v.sh("echo two > /data/f");
    repo.backup_volume(&v.name, &label, Some("2026-01-02 10:00:00"));
    v.sh("echo other > /data/f");
    // Another engine's, and newer: not this engine's newest.
    repo.backup_volume(&v.name, "elsewhere-00000000", Some("2026-01-03 10:00:00"));

    let t = Volume::named("rr-ids-t");
    repo.tool(&["restore", &repo.url(), &v.name, "--as", &t.name])
        .ok();
    assert_eq!(t.sh("cat /data/f"), "two\n");
    repo.tool(&[
        "restore",
        &repo.url(),
        "--snapshot",
        &first[..8],
        "--as",
        &t.name,
        "--force",
    ])
    .ok();
    assert_eq!(t.sh("cat /data/f"), "one\n");
    repo.tool(&[
        "restore",
        &repo.url(),
        &v.name,
        "--at",
        "2026-01-01 12:00",
        "--as",
        &t.name,
        "--force",
    ])
    .ok();
    assert_eq!(t.sh("cat /data/f"), "one\n");

    // No snapshot from this engine of a volume only another engine saved.
    let lonely = Volume::new("rr-lonely");
    repo.backup_volume(&lonely.name, "elsewhere-00000000", None);
    repo.tool(&["restore", &repo.url(), &lonely.name])
        .fails_with(4, "elsewhere-00000000");
    repo.tool(&[
        "restore",
        &repo.url(),
        "--snapshot",
        "0000abcd",
        "--as",
        &t.name,
    ])
    .fails_with(4, "no snapshot 0000abcd");

    // status has a row per engine and volume: this engine's newest of v is from 2026-01-02
    // (the other engine's, newer, is its own row), and the lonely volume has none from this
    // engine, so it misses the RPO (exit 8, stale).
    let status = repo.tool(&[
        "status",
        &repo.url(),
        "--volume",
        &v.name,
        "--volume",
        &lonely.name,
        "--rpo",
        "100000d",
        "--format",
        "json",
    ]);
    assert_eq!(status.code, 8, "{status}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&status.stdout).unwrap();
    let newest_of = |name: &str| {
        rows.iter()
            .find(|r| r["volume"] == name && r["engine"] == docker_label().as_str())
            .map(|r| r["newest"].clone())
            .unwrap()
    };
    let newest = newest_of(&v.name);
    assert!(
        newest["created"]
            .as_str()
            .unwrap_or_default()
            .starts_with("2026-01-02"),
        "{status}"
    );
    assert!(newest_of(&lonely.name).is_null(), "{status}");
    let elsewhere = rows
        .iter()
        .find(|r| r["volume"] == v.name.as_str() && r["engine"] == "elsewhere-00000000")
        .map(|r| {
            r["newest"]["created"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
    assert_eq!(
        elsewhere.as_deref(),
        Some("2026-01-03T10:00:00Z"),
        "{status}"
    );

    let listed = repo
        .tool(&["backups", &repo.url(), "--format", "json"])
        .ok();
    let all: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(all.len(), 4, "{listed}");
    assert!(all
        .iter()
        .all(|s| s["ours"] == true && s["volume"].is_string()));
    let table = repo
        .tool(&["backups", &repo.url(), "--volume", &v.name])
        .ok();
    let text = table.stdout_str();
    assert!(
        text.contains(&label) && text.contains("elsewhere-00000000"),
        "{text}"
    );
    assert!(text.contains(&first[..8]), "{text}");
}

/// A snapshot restic made of a directory (no tags, no manifest) is restored by its ID: its only
/// path is the volume root; one of several paths is named as `--snapshot ID:/PATH`.
#[test]
fn a_snapshot_restic_made_of_a_directory() {
    let repo = ResticRepo::init();
    let dir = tempdir();
    let data = dir.path().join("data");
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(data.join("sub/hello.txt"), "hello\n").unwrap();
    std::fs::write(etc.join("conf"), "x=1\n").unwrap();
    std::os::unix::fs::symlink("sub/hello.txt", data.join("link")).unwrap();
    // An attribute the engine's archive endpoint would not take: left out, with a warning.
    let file = std::ffi::CString::new(data.join("sub/hello.txt").to_str().unwrap()).unwrap();
    // SAFETY: the path and the name are NUL-terminated; the value is 2 bytes long.
    let set = unsafe {
        libc::setxattr(
            file.as_ptr(),
            c"user.note".as_ptr(),
            b"hi".as_ptr().cast(),
            2,
            0,
        )
    };
    assert_eq!(set, 0, "setxattr: {}", std::io::Error::last_os_error());
    let one = repo.backup(&[&data], &[]);
    let two = repo.backup(&[&data, &etc], &[]);

    let v = Volume::named("rr-foreign");
    // Not the tool's: the volume must be named.
    repo.tool(&["restore", &repo.url(), "--snapshot", &one[..8]])
        .fails_with(2, "name the volume");
    let restored = repo
        .tool(&["restore", &repo.url(), &v.name, "--snapshot", &one[..8]])
        .ok();
    assert!(
        restored
            .stderr
            .contains("1 extended attribute(s) in the snapshot were not restored"),
        "{restored}"
    );
    let got = v.sh("cd /data && find . | sort && cat sub/hello.txt && readlink link");
    assert_eq!(
        got,
        ".\n./link\n./sub\n./sub/hello.txt\nhello\nsub/hello.txt\n"
    );

    let w = Volume::named("rr-foreign2");
    repo.tool(&["restore", &repo.url(), &w.name, "--snapshot", &two[..8]])
        .fails_with(2, "several paths");
    let spec = format!("{}:{}", &two[..8], etc.display());
    repo.tool(&["restore", &repo.url(), &w.name, "--snapshot", &spec])
        .ok();
    assert_eq!(w.sh("cat /data/conf"), "x=1\n");

    // `backups` lists it without a volume.
    let listed = repo.tool(&["backups", &repo.url()]).ok();
    assert!(listed.stdout_str().contains(&one[..8]), "{listed}");
}

/// A wrong password and a missing repository are clear errors; the password is never shown.
#[test]
fn wrong_password_and_missing_repository() {
    let repo = ResticRepo::init();
    let dir = tempdir();
    let wrong = dir.path().join("wrong");
    let secret = "not-the-password-7f3a";
    std::fs::write(&wrong, format!("{secret}\n")).unwrap();
    for args in [
        vec!["backups", repo.url().as_str()],
        vec!["restore", repo.url().as_str(), "v"],
        vec!["verify", repo.url().as_str()],
    ] {
        let run = tool()
            .env("RESTIC_PASSWORD_FILE", &wrong)
            .args(&args)
            .run()
            .fails_with(9, "the password does not open the repository");
        assert!(!run.stderr.contains(secret) && !run.stdout_str().contains(secret));
        assert!(!run.stderr.contains(RESTIC_PASSWORD));
    }
    // The same through RESTIC_PASSWORD.
    let run = tool()
        .env("RESTIC_PASSWORD", secret)
        .env_remove("RESTIC_PASSWORD_FILE")
        .args(["backups", &repo.url()])
        .run()
        .fails_with(9, "the password does not open the repository");
    assert!(!run.stderr.contains(secret));

    let missing = format!("restic:{}", dir.path().join("nothing").display());
    repo.tool(&["backups", &missing])
        .fails_with(4, "no restic repository");
    repo.tool(&["restore", &missing, "v"])
        .fails_with(4, "no restic repository");
}

/// `prune --keep-last 1` keeps the newest snapshot of each volume of each engine, and leaves
/// snapshots the tool did not make alone; the data they alone held is pruned.
#[test]
fn prune_keeps_per_volume_and_engine() {
    let repo = ResticRepo::init();
    let a = Volume::new("rr-pa");
    let b = Volume::new("rr-pb");
    let here = engine_identity().label();
    let there = "elsewhere-00000000";
    let mut kept = Vec::new();
    for (vol, host, days) in [
        (&a, here.as_str(), 3),
        (&a, here.as_str(), 2),
        (&a, there, 1),
        (&b, here.as_str(), 5),
        (&b, there, 4),
    ] {
        vol.sh(&format!("head -c 100000 /dev/urandom > /data/f{days}"));
        let time = format!("2026-02-{:02} 10:00:00", 10 - days);
        let id = repo.backup_volume(&vol.name, host, Some(&time));
        if days != 3 {
            kept.push(id);
        }
    }
    let dir = tempdir();
    std::fs::write(dir.path().join("x"), "x").unwrap();
    kept.push(repo.backup(&[dir.path()], &["--time", "2020-01-01 00:00:00"]));

    let dry = repo
        .tool(&["prune", &repo.url(), "--keep-last", "1", "--dry-run"])
        .ok();
    assert!(dry.stderr.contains("would remove"), "{dry}");
    assert_eq!(repo.snapshot_ids(&[]).len(), 6);

    let run = repo.tool(&["prune", &repo.url(), "--keep-last", "1"]).ok();
    assert!(run.stderr.contains("1 snapshot(s) forgotten"), "{run}");
    // restic's backup answers with short IDs.
    let mut left: Vec<String> = repo
        .snapshot_ids(&[])
        .into_iter()
        .map(|id| id[..8].to_string())
        .collect();
    left.sort();
    kept.sort();
    assert_eq!(left, kept);
    repo.restic(&["check", "--read-data"])
        .expect_ok("restic check after prune");
}

/// `verify restic:REPO` passes a sound repository and finds a damaged pack file when it reads
/// the data (all of it, or the one part holding it).
#[test]
fn verify_finds_a_damaged_pack_file() {
    let repo = ResticRepo::init();
    let dir = tempdir();
    // Incompressible, so that its pack is the largest file under data/.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(dir.path().join("big"), noise).unwrap();
    repo.backup(&[dir.path()], &[]);
    let ok = repo.tool(&["verify", &repo.url(), "--read-data"]).ok();
    assert!(ok.stdout_str().starts_with("ok: "), "{ok}");
    repo.tool(&["verify", &repo.url(), "--read-data-subset", "1/3"])
        .ok();
    repo.tool(&["verify", &repo.url(), "--read-data-subset", "ten"])
        .fails_with(2, "--read-data-subset");

    // The largest file under data/ holds the file's content: one byte flipped in its middle.
    let mut packs = Vec::new();
    for sub in std::fs::read_dir(repo.path.join("data")).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            let f = f.unwrap();
            packs.push((f.metadata().unwrap().len(), f.path()));
        }
    }
    packs.sort();
    let (len, pack) = packs.pop().expect("a pack file");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(len / 2) as usize] ^= 0x55;
    std::fs::write(&pack, bytes).unwrap();

    // Without reading the data the structure still checks out; reading it finds the damage.
    repo.tool(&["verify", &repo.url()]).ok();
    let bad = repo.tool(&["verify", &repo.url(), "--read-data"]);
    assert_eq!(bad.code, 6, "{bad}");
    assert!(bad.stderr.contains("is damaged"), "{bad}");
    // One line per finding, not rustic_core's report.
    assert!(bad.stdout_str().starts_with("error: "), "{bad}");
    assert!(!bad.stdout_str().contains("Backtrace"), "{bad}");
}

/// Ctrl-C in the middle of `restore restic:` (each entry slowed down): a volume it was making
/// is removed again, a volume it was replacing with `--force` keeps its content, and no helper
/// is left.
#[test]
fn ctrl_c_during_a_restic_restore_loses_nothing() {
    let repo = ResticRepo::init();
    let source = Volume::new("rr-cancel");
    // Files large enough that each goes out to the engine as it is read.
    source.sh("for i in $(seq 1 60); do head -c 200000 /dev/urandom > /data/f$i; done");
    repo.tool(&["save", &source.name, "--to", &repo.url()]).ok();
    let slow = |target: &str, extra: &[&str]| {
        let mut c = tool();
        c.env("RESTIC_PASSWORD_FILE", &repo.password_file)
            .env_remove("RESTIC_PASSWORD")
            .env("FAILPOINTS", "restic-export-entry=sleep(100)")
            .args(["restore", &repo.url(), &source.name, "--as", target])
            .args(extra)
            .stderr(std::process::Stdio::piped());
        c.start()
    };

    let fresh = Volume::named("rr-cancel-new");
    let name = fresh.name.clone();
    let r = interrupt_after(slow(&fresh.name, &[]), || !helpers_of(&name).is_empty());
    r.fails_with(130, "interrupted");
    assert!(!fresh.exists(), "the half-restored volume is removed");
    assert_eq!(fresh.helpers_left(), "");

    let kept = Volume::new("rr-cancel-kept");
    kept.sh("echo mine > /data/mine; mkdir /data/d; echo deep > /data/d/x");
    let before = kept.snapshot();
    // Interrupted while the snapshot goes into the scratch volume (the target not touched yet;
    // an interrupted swap is `recover`'s, tested with archives).
    let scratch = format!("dvb-scratch-{}", kept.name);
    let scratch_volumes = || {
        docker(&["volume", "ls", "-q", "--filter", &format!("name={scratch}")])
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // (Helpers are found by their volume's label: their names are cut short.)
    let filling = || scratch_volumes().iter().any(|v| !helpers_of(v).is_empty());
    let r = interrupt_after(slow(&kept.name, &["--force"]), filling);
    r.fails_with(130, "interrupted");
    assert_eq!(kept.snapshot(), before, "the target keeps its content");
    assert_eq!(kept.helpers_left(), "");
    // A scratch volume in use by a helper could not have been removed.
    assert_eq!(
        scratch_volumes(),
        Vec::<String>::new(),
        "no scratch volume left"
    );
    assert_eq!(source.helpers_left(), "");
}
