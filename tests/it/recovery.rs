//! Day-two recovery against the real engine: the newest backup taken from a destination
//! (`restore DEST VOLUME`, `--at`, `--as`), measured restore times and `status --rto`, one file
//! back (`inspect --list`, `extract`, `restore --path`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::*;

/// Saves `volume` once per content, each archive under the tool's naming at the given local
/// time (`YYYYmmdd_HHMMSS`), so that the catalog dates them without waiting or faking clocks.
fn history(volume: &Volume, dir: &Path, versions: &[(&str, &str)]) {
    for (content, stamp) in versions {
        volume.sh(&format!("echo {content} > /data/which"));
        let file = dir.join(format!("{}_{stamp}.tar.zst", volume.name));
        run(&["save", &volume.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    }
}

#[test]
fn restore_from_a_destination_takes_the_newest() {
    let src = Volume::new("newest");
    let dir = tempdir();
    // Saved out of order: the catalog goes by the stamp, not by when the file was written.
    history(
        &src,
        dir.path(),
        &[
            ("two", "20261122_100000"),
            ("three", "20261124_100000"),
            ("one", "20261120_100000"),
        ],
    );
    // Not an archive of this volume, and newer: never taken.
    std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
    let d = dir.path().to_str().unwrap();

    let copy = Volume::named("newest-as");
    let r = run(&["restore", d, &src.name, "--as", &copy.name]).ok();
    assert!(r.stderr.contains("_20261124_100000.tar.zst"), "{r}");
    assert!(r.stderr.contains(" ago)"), "{r}");
    assert_eq!(copy.sh("cat /data/which"), "three\n");

    // A date alone is its end: the newest backup taken on or before that day.
    let older = Volume::named("newest-at");
    let r = run(&[
        "restore",
        d,
        &src.name,
        "--as",
        &older.name,
        "--at",
        "2026-11-23",
    ])
    .ok();
    assert!(r.stderr.contains("_20261122_100000.tar.zst"), "{r}");
    assert_eq!(older.sh("cat /data/which"), "two\n");
    let exact = Volume::named("newest-exact");
    run(&[
        "restore",
        d,
        &src.name,
        "--as",
        &exact.name,
        "--at",
        "2026-11-20 10:00",
    ])
    .ok();
    assert_eq!(exact.sh("cat /data/which"), "one\n");

    // Into VOLUME itself: it holds data, so only with --force.
    src.sh("echo four > /data/which");
    run(&["restore", d, &src.name]).fails_with(5, "not empty");
    run(&["restore", d, &src.name, "--force"]).ok();
    assert_eq!(src.sh("cat /data/which"), "three\n");

    let none = Volume::named("newest-none");
    run(&[
        "restore",
        d,
        &src.name,
        "--as",
        &none.name,
        "--at",
        "2026-11-01",
    ])
    .fails_with(4, "no backup of volume");
    run(&["restore", d, "no-such-volume"]).fails_with(4, "no backup of volume `no-such-volume`");
    run(&["restore", d]).fails_with(2, "name the volume");
    run(&["restore", d, &src.name, "--at", "soon"]).fails_with(2, "not a time");
    assert!(!none.exists());
    // --as and --at belong to destinations, not to an archive.
    let file = dir
        .path()
        .join(format!("{}_20261120_100000.tar.zst", src.name));
    run(&["restore", file.to_str().unwrap(), "x", "--at", "2h"]).fails_with(2, "--at is for");
}

#[test]
fn restore_times_are_measured_and_held_against_the_rto() {
    let src = Volume::new("rto");
    src.sh("head -c 2000000 /dev/urandom > /data/big && echo x > /data/small");
    let dir = tempdir();
    let home = tempdir();
    run(&[
        "save",
        &src.name,
        "--to",
        dir.path().to_str().unwrap(),
        "-q",
    ])
    .ok();
    let file = only_archive(dir.path());
    let with_home = |args: &[&str]| {
        tool()
            .env("HOME", home.path())
            .env_remove("XDG_STATE_HOME")
            .args(args)
            .run()
    };
    let r = with_home(&[
        "verify",
        file.to_str().unwrap(),
        "--restore-test",
        "--format",
        "json",
    ])
    .ok();
    let json: serde_json::Value = serde_json::from_str(&r.stdout_str()).unwrap();
    let measured = &json["restore_test"];
    assert_eq!(measured["volume"], src.name.as_str(), "{r}");
    assert!(measured["seconds"].as_f64().unwrap() > 0.0, "{r}");
    assert!(measured["bytes_per_second"].as_f64().unwrap() > 0.0, "{r}");
    let table = with_home(&["verify", file.to_str().unwrap(), "--restore-test"]).ok();
    assert!(table.stdout_str().contains("test restore took"), "{table}");

    // Kept per engine: the one the archive was saved from.
    let engine = measured["engine"].as_str().unwrap();
    assert_eq!(engine, docker_label());
    let record = home
        .path()
        .join(".local/state/docker-volume-backup/restore-times")
        .join(engine)
        .join(format!("{}.json", src.name));
    let mode = std::fs::metadata(&record).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let d = dir.path().to_str().unwrap();
    let ok = with_home(&[
        "status", d, "--rpo", "1h", "--rto", "1h", "--volume", &src.name,
    ])
    .ok();
    assert!(ok.stdout_str().contains("RTO 1h"), "{ok}");
    let r = with_home(&[
        "status", d, "--rpo", "1h", "--rto", "1h", "--volume", &src.name, "--format", "json",
    ])
    .ok();
    let rows: serde_json::Value = serde_json::from_str(&r.stdout_str()).unwrap();
    assert_eq!(rows[0]["meets_rpo"], true, "{r}");
    assert_eq!(rows[0]["meets_rto"], true, "{r}");
    assert!(rows[0]["last_restore"]["seconds"].as_f64().unwrap() > 0.0);

    // A tiny RTO is missed (exit 8), and so is a volume never test-restored.
    let r = with_home(&[
        "status", d, "--rpo", "1h", "--rto", "1us", "--volume", &src.name,
    ])
    .fails_with(8, "miss the RTO");
    assert!(r.stdout_str().contains("MISSED"), "{r}");
    with_home(&[
        "status",
        d,
        "--rpo",
        "1h",
        "--rto",
        "1h",
        "--volume",
        "never-measured",
    ])
    .fails_with(8, "never-measured");
    // Without --rto, status is as it was: no restore columns.
    let plain = with_home(&["status", d, "--rpo", "1h", "--volume", &src.name]).ok();
    assert!(!plain.stdout_str().contains("RTO"), "{plain}");
}

/// A volume with a little of everything, saved; returns the archive.
fn sample(volume: &Volume, dir: &Path) -> std::path::PathBuf {
    volume.sh(
        "mkdir -p /data/d/sub /data/e && echo a > /data/d/a && echo b > /data/d/sub/b && \
         echo top > /data/top && echo e > /data/e/e && ln -s d/a /data/link && \
         chown 1000:1001 /data/d/a && chmod 640 /data/d/a && touch -d '2023-11-14 22:13:20' /data/d/a",
    );
    let file = dir.join("sample.tar.gz");
    run(&["save", &volume.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    file
}

#[test]
fn inspect_lists_entries_and_extract_writes_the_asked_ones() {
    let src = Volume::new("list");
    let dir = tempdir();
    let file = sample(&src, dir.path());
    let f = file.to_str().unwrap();
    let r = run(&["inspect", f, "--list", "--format", "json"]).ok();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&r.stdout_str()).unwrap();
    let find = |p: &str| entries.iter().find(|e| e["path"] == p).cloned();
    let a = find("d/a").expect("d/a listed");
    assert_eq!(a["type"], "file");
    assert_eq!(a["size"], 2);
    assert_eq!(a["uid"], 1000);
    assert_eq!(a["gid"], 1001);
    assert_eq!(a["mode"], 0o640);
    assert_eq!(a["mtime"], 1_700_000_000);
    assert_eq!(find("d/sub").unwrap()["type"], "dir");
    let link = find("link").unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["link"], "d/a");
    assert!(find(".").is_some());
    let table = run(&["inspect", f, "--list"]).ok();
    assert!(table.stdout_str().contains("-0640  1000/1001"), "{table}");
    assert!(table.stdout_str().contains("link -> d/a"), "{table}");

    let out = tempdir();
    let o = out.path().join("x");
    run(&["extract", f, "d", "top", "-o", o.to_str().unwrap()]).ok();
    assert_eq!(
        files_under(&o),
        ["d", "d/a", "d/sub", "d/sub/b", "top"].map(String::from)
    );
    assert_eq!(std::fs::read_to_string(o.join("d/sub/b")).unwrap(), "b\n");
    let meta = std::fs::metadata(o.join("d/a")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    // Again: what exists stays unless --force.
    run(&["extract", f, "top", "-o", o.to_str().unwrap()]).fails_with(5, "it exists");
    std::fs::write(o.join("top"), "changed").unwrap();
    run(&["extract", f, "top", "-o", o.to_str().unwrap(), "--force"]).ok();
    assert_eq!(std::fs::read_to_string(o.join("top")).unwrap(), "top\n");
    run(&["extract", f, "nope", "-o", o.to_str().unwrap()]).fails_with(4, "not in");
    run(&["extract", f, "../x", "-o", o.to_str().unwrap()]).fails_with(2, "not a path");
}

/// Paths under `dir`, sorted, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn extract_keeps_hostile_entries_inside() {
    let outer = tempdir();
    let victim = outer.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        // Raw names: the tar crate's setters refuse `..` themselves.
        let old = h.as_old_mut();
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    use tar::EntryType as T;
    let abs_victim = victim.to_str().unwrap().to_string();
    add("./ok", T::Regular, b"ok", None);
    add("../escaped", T::Regular, b"x", None);
    add("./out", T::Symlink, b"", Some(&abs_victim));
    add("./out/planted", T::Regular, b"x", None);
    add(&format!("{abs_victim}/abs"), T::Regular, b"x", None);
    let archive = outer.path().join("hostile.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
    let into = outer.path().join("into");
    let r = run(&[
        "extract",
        archive.to_str().unwrap(),
        "-o",
        into.to_str().unwrap(),
    ])
    .ok();
    assert!(
        r.stderr
            .contains("../escaped: its path leaves the directory"),
        "{r}"
    );
    assert!(
        r.stderr
            .contains("out/planted: its path goes through a symlink"),
        "{r}"
    );
    assert!(
        r.stderr.contains("/abs: its path leaves the directory"),
        "{r}"
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    assert!(!outer.path().join("escaped").exists());
    assert_eq!(std::fs::read_to_string(into.join("ok")).unwrap(), "ok");
    // The symlink itself is data and is kept, pointing where it pointed.
    assert_eq!(std::fs::read_link(into.join("out")).unwrap(), victim);
}

#[test]
fn restore_path_restores_exactly_the_subtree() {
    let src = Volume::new("subtree-src");
    let dir = tempdir();
    let file = sample(&src, dir.path());
    let f = file.to_str().unwrap();

    let target = Volume::new("subtree-into");
    target.sh(
        "mkdir -p /data/d /data/e && echo mine > /data/d/old && echo mine > /data/e/e && \
         echo mine > /data/top && chmod 700 /data/d && touch -d '2020-09-13 12:26:40' /data/d",
    );
    let before = target.snapshot();
    // `d` exists in the volume: overwriting it needs --force.
    run(&["restore", f, &target.name, "--path", "d"]).fails_with(5, "`d` exists");
    assert_eq!(target.snapshot(), before);

    // `d/sub` is not there: restored, the rest of the volume (`d` itself included) untouched.
    let r = run(&["restore", f, &target.name, "--path", "./d/sub/"]).ok();
    assert!(r.stderr.contains("restored ./d/sub/ of"), "{r}");
    assert_eq!(target.sh("cat /data/d/sub/b"), "b\n");
    // What changed is what came in, and the time of `d`, which the engine's creating `d/sub`
    // sets (as any new file does); its owner and mode stay.
    let after = target.snapshot();
    let changed: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    assert_eq!(changed.len(), 4, "{after}");
    assert!(changed[0].starts_with("./d|directory|0:0|700|"), "{after}");
    assert!(changed[1].starts_with("./d/sub|directory|"), "{after}");
    assert!(changed[2].starts_with("./d/sub/b|regular file|"), "{after}");
    assert_eq!(after.lines().count(), before.lines().count() + 3);

    // With --force the archive's files replace the volume's; files it lacks stay.
    run(&["restore", f, &target.name, "--path", "d", "--force"]).ok();
    assert_eq!(
        target.sh("cat /data/d/a /data/d/old /data/e/e /data/top"),
        "a\nmine\nmine\nmine\n"
    );
    assert!(target.helpers_left().is_empty());

    run(&["restore", f, &target.name, "--path", "../x"]).fails_with(2, "not a path inside");
    let missing = Volume::named("subtree-missing");
    run(&["restore", f, &missing.name, "--path", "d"]).fails_with(4, "does not exist");
    assert!(!missing.exists());
}

#[test]
fn compose_import_from_a_destination_takes_the_newest_bundle() {
    let project = unique("cnew");
    let a = compose_volume(&project, "a", &[]);
    let dir = tempdir();
    let empty = tempdir();
    for (content, stamp) in [("two", "20261122_100000"), ("one", "20261120_100000")] {
        a.sh(&format!("echo {content} > /data/which"));
        let out = dir.path().join(format!("{project}_{stamp}.compose.tar"));
        run_in(
            empty.path(),
            &[
                "compose-export",
                "-p",
                &project,
                "-o",
                out.to_str().unwrap(),
            ],
        )
        .ok();
    }
    // A newer archive of a volume named like the project is not a bundle.
    std::fs::copy(
        dir.path()
            .join(format!("{project}_20261120_100000.compose.tar")),
        dir.path().join(format!("{project}_20261125_100000.tar")),
    )
    .unwrap();
    docker(&["volume", "rm", &a.name]);
    let d = dir.path().to_str().unwrap();
    let r = run(&["compose-import", d, "-p", &project]).ok();
    assert!(r.stderr.contains("_20261122_100000.compose.tar"), "{r}");
    assert_eq!(a.sh("cat /data/which"), "two\n");
    run(&["compose-import", d]).fails_with(2, "name the project");
    run(&["compose-import", d, "-p", "nosuchproject"]).fails_with(4, "no bundle of project");
}

#[test]
fn restore_from_a_bucket_prefix_takes_the_newest() {
    let s3 = S3Server::start();
    s3.make_bucket("team");
    let src = Volume::new("newest-s3");
    src.sh("echo old > /data/which");
    s3.run(&["save", &src.name, "--to", "s3://team/laptop", "-q"])
        .ok();
    // The tool's names have a one-second stamp: the second backup must be a second later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    src.sh("echo new > /data/which");
    s3.run(&["save", &src.name, "--to", "s3://team/laptop", "-q"])
        .ok();
    assert_eq!(s3.keys("team").len(), 2);
    let copy = Volume::named("newest-s3-as");
    let r = s3
        .run(&[
            "restore",
            "s3://team/laptop/",
            &src.name,
            "--as",
            &copy.name,
        ])
        .ok();
    assert!(r.stderr.contains("taking s3://team/laptop/"), "{r}");
    assert_eq!(copy.sh("cat /data/which"), "new\n");
}
