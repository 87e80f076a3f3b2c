//! `prune` and `save --keep-*` against real archives: one archive saved by the tool, copied
//! under names carrying the dates the test needs (the tool's own naming, local time), plus a
//! seed-style archive without a manifest that must never be touched.

use std::path::Path;

use crate::harness::*;

/// Local times of the backups, newest first: Wed 25 Nov 2026 03:00 and 01:00, Tue 24, Sun 22
/// (ISO week 47), Mon 16 (week 47), 31 Oct, 30 Sep, 31 Dec 2025, 1 Jun 2024.
const STAMPS: [&str; 9] = [
    "20261125_030000",
    "20261125_010000",
    "20261124_030000",
    "20261122_030000",
    "20261116_030000",
    "20261031_030000",
    "20260930_030000",
    "20251231_030000",
    "20240601_030000",
];

/// A small archive of `vol` made by the tool, as bytes.
fn archive_of(vol: &Volume) -> Vec<u8> {
    let dir = tempdir();
    let file = dir.path().join("one.tar.zst");
    run(&["save", &vol.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    std::fs::read(file).unwrap()
}

/// A seed-style `tar czf` archive (no manifest) named like the tool's, older than all others.
fn seed_archive(dir: &Path, volume: &str) -> String {
    let name = format!("{volume}_20200101_000000.tar.gz");
    seed_style_archive(&dir.join(&name));
    name
}

fn name(volume: &str, stamp: &str) -> String {
    format!("{volume}_{stamp}.tar.zst")
}

/// A directory holding the nine dated archives of `volume`, the seed archive and a note.
fn populated(bytes: &[u8], volume: &str) -> tempfile::TempDir {
    let dir = tempdir();
    for stamp in STAMPS {
        std::fs::write(dir.path().join(name(volume, stamp)), bytes).unwrap();
    }
    seed_archive(dir.path(), volume);
    std::fs::write(dir.path().join("notes.txt"), "not a backup").unwrap();
    dir
}

/// Which of STAMPS are still there (by index).
fn left(dir: &Path, volume: &str) -> Vec<usize> {
    let files = files_in(dir);
    assert!(files.contains(&"notes.txt".to_string()));
    assert!(
        files.contains(&format!("{volume}_20200101_000000.tar.gz")),
        "the seed archive was deleted: {files:?}"
    );
    (0..STAMPS.len())
        .filter(|&i| files.contains(&name(volume, STAMPS[i])))
        .collect()
}

#[test]
fn each_policy_keeps_what_restic_would() {
    let vol = Volume::new("prune-src");
    vol.sh("echo data > /data/f");
    let bytes = archive_of(&vol);
    let v = vol.name.as_str();
    let cases: [(&[&str], &[usize]); 8] = [
        (&["--keep-last", "3"], &[0, 1, 2]),
        (&["--keep-hourly", "2"], &[0, 1]),
        (&["--keep-daily", "2"], &[0, 2]),
        (&["--keep-weekly", "2"], &[0, 3]),
        (&["--keep-monthly", "3"], &[0, 5, 6]),
        // Fewer years than asked for: the oldest stays too.
        (&["--keep-yearly", "5"], &[0, 7, 8]),
        // Relative to the newest backup (2026-11-25 03:00), not to now.
        (&["--keep-within", "2d"], &[0, 1, 2]),
        (
            &["--keep-within", "3m", "--keep-yearly", "1"],
            &[0, 1, 2, 3, 4, 5, 6],
        ),
    ];
    for (flags, want) in cases {
        let dir = populated(&bytes, v);
        let d = dir.path().to_str().unwrap();
        let mut args = vec!["prune", d];
        args.extend(flags);
        // A dry run deletes nothing, says what would go and why the rest stays.
        let dry = run(&[args.clone(), vec!["--dry-run"]].concat()).ok();
        assert_eq!(left(dir.path(), v).len(), STAMPS.len(), "{flags:?}");
        assert!(
            dry.stderr.contains("would remove"),
            "{flags:?}: {}",
            dry.stderr
        );
        assert!(dry.stderr.contains("(newest"), "{}", dry.stderr);
        run(&args).ok();
        assert_eq!(left(dir.path(), v), want, "{flags:?}");
    }
}

#[test]
fn dry_run_names_the_rules_and_volumes_are_pruned_apart() {
    let vol = Volume::new("prune-a");
    vol.sh("echo a > /data/f");
    let other = Volume::new("prune-b");
    other.sh("echo b > /data/f");
    let bytes = archive_of(&vol);
    let dir = populated(&bytes, &vol.name);
    // The other volume has a single, old backup: it is its newest, so it stays.
    std::fs::write(
        dir.path().join(name(&other.name, "20200601_000000")),
        archive_of(&other),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let dry = run(&[
        "prune",
        d,
        "--keep-daily",
        "2",
        "--keep-weekly",
        "2",
        "--dry-run",
    ])
    .ok();
    let line = |stamp: &str| -> String {
        dry.stderr
            .lines()
            .find(|l| l.contains(stamp))
            .unwrap_or_else(|| panic!("{stamp} not mentioned:\n{}", dry.stderr))
            .to_string()
    };
    assert!(line("20261125_030000").contains("(newest, daily, weekly)"));
    assert!(line("20261124_030000").contains("(daily)"));
    assert!(line("20261122_030000").contains("(weekly)"));
    assert!(line("20261116_030000").contains("would remove"));
    assert!(line("20200601_000000").contains("(newest"));
    assert!(
        dry.stderr.contains("not written by this tool"),
        "{}",
        dry.stderr
    );
    // --volume limits the prune to one volume.
    run(&["prune", d, "--keep-last", "1", "--volume", &other.name]).ok();
    assert_eq!(left(dir.path(), &vol.name).len(), STAMPS.len());
    run(&["prune", d, "--keep-last", "1"]).ok();
    assert_eq!(left(dir.path(), &vol.name), [0]);
    assert!(files_in(dir.path()).contains(&name(&other.name, "20200601_000000")));
    // No rule is a usage error, not "delete everything".
    run(&["prune", d]).fails_with(2, "--keep");
    run(&["prune", "/nonexistent-dvb-dir", "--keep-last", "1"]).fails_with(4, "not a directory");
}

#[test]
fn prune_in_a_bucket_and_save_with_keep() {
    let s3 = S3Server::start();
    s3.make_bucket("ret");
    let vol = Volume::new("prune-s3");
    vol.sh("echo s3 > /data/f");
    let bytes = archive_of(&vol);
    let src = tempdir();
    let file = src.path().join("a.tar.zst");
    std::fs::write(&file, &bytes).unwrap();
    let dir = populated(&bytes, &vol.name);
    for stamp in STAMPS {
        s3.python(&format!(
            "s3.upload_file({:?}, 'ret', {:?})",
            file.to_str().unwrap(),
            format!("p/{}", name(&vol.name, stamp))
        ));
    }
    s3.run(&["prune", "s3://ret/p", "--keep-monthly", "3"]).ok();
    let mut keys = s3.keys("ret");
    keys.sort();
    let mut want: Vec<String> = [0, 5, 6]
        .iter()
        .map(|&i| format!("p/{}", name(&vol.name, STAMPS[i])))
        .collect();
    want.sort();
    assert_eq!(keys, want);

    // A save that fails in one destination prunes nowhere.
    let d = dir.path().to_str().unwrap();
    s3.run(&[
        "save",
        &vol.name,
        "--to",
        d,
        "--to",
        "s3://no-such-bucket/x",
        "--keep-last",
        "1",
    ])
    .fails_with(4, "NoSuchBucket");
    assert_eq!(left(dir.path(), &vol.name).len(), STAMPS.len());
    assert_eq!(files_in(dir.path()).len(), STAMPS.len() + 2);

    // A good save prunes both destinations, keeping the new backup and the one before.
    s3.run(&[
        "save",
        &vol.name,
        "--to",
        d,
        "--to",
        "s3://ret/p",
        "--keep-last",
        "2",
    ])
    .ok();
    assert_eq!(left(dir.path(), &vol.name), [0]);
    assert_eq!(files_in(dir.path()).len(), 4, "{:?}", files_in(dir.path()));
    let keys = s3.keys("ret");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&format!("p/{}", name(&vol.name, STAMPS[0]))));
}

#[test]
fn a_failed_prune_fails_loudly() {
    // Moto checks signatures wrongly for listings under a prefix when authentication is on:
    // this bucket is used at its root.
    let s3 = S3Server::start_denying_deletes();
    s3.make_bucket("nodelete");
    let vol = Volume::new("prune-denied");
    vol.sh("echo d > /data/f");
    let src = tempdir();
    let file = src.path().join("a.tar.zst");
    std::fs::write(&file, archive_of(&vol)).unwrap();
    for stamp in &STAMPS[..3] {
        s3.python(&format!(
            "s3.upload_file({:?}, 'nodelete', {:?})",
            file.to_str().unwrap(),
            name(&vol.name, stamp)
        ));
    }
    s3.run(&["prune", "s3://nodelete", "--keep-last", "1"])
        .fails_with(1, "AccessDenied")
        .fails_with(1, "pruning s3://nodelete failed");
    assert_eq!(s3.keys("nodelete").len(), 3);
    // The save itself succeeds everywhere; the prune after it fails, and the exit says so.
    let dir = tempdir();
    let d = dir.path().to_str().unwrap();
    s3.run(&[
        "save",
        &vol.name,
        "--to",
        d,
        "--to",
        "s3://nodelete",
        "--keep-last",
        "1",
    ])
    .fails_with(1, "saved, but pruning failed");
    assert_eq!(files_in(dir.path()).len(), 1);
    assert_eq!(s3.keys("nodelete").len(), 4);
}
