//! Save and restore round trips, compared entry by entry (root included).

use std::io::Write;
use std::process::Stdio;

use crate::harness::*;

#[test]
fn awkward_volume_round_trips_in_every_compression() {
    let src = awkward_volume("rt-src");
    let before = src.snapshot();
    assert!(
        before.contains("|999:998|750|"),
        "fixture root owner: {before}"
    );
    for (ext, magic) in [
        ("tar.zst", &[0x28u8, 0xb5][..]),
        ("tar.gz", &[0x1f, 0x8b]),
        ("tar", b"do"),
    ] {
        let dir = tempdir();
        let file = dir.path().join(format!("out.{ext}"));
        run(&["save", &src.name, "-o", file.to_str().unwrap()]).ok();
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{ext} archive starts with its magic"
        );
        let dst = Volume::named("rt-dst");
        let r = run(&["restore", file.to_str().unwrap(), &dst.name]).ok();
        assert!(r.stderr.contains("checksum verified"), "{}", r.stderr);
        assert_eq!(dst.snapshot(), before, "{ext}: restored volume differs");
        assert_eq!(dst.helpers_left(), "");
    }
    assert_eq!(src.helpers_left(), "", "no helper container left behind");
}

#[test]
fn default_output_name_and_restore_by_manifest_name() {
    let src = Volume::new("rt-default");
    src.sh("echo data > /data/f");
    let dir = tempdir();
    let r = run_in(dir.path(), &["save", &src.name]).ok();
    let backups = dir.path().join("backups");
    let archive = only_archive(&backups);
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    let prefix = format!("{}_", src.name);
    assert!(
        name.starts_with(&prefix) && name.ends_with(".tar.zst"),
        "{name}"
    );
    let stamp = &name[prefix.len()..name.len() - ".tar.zst".len()];
    // YYYYmmdd_HHMMSS in UTC, then the engine.
    let (time, engine) = stamp.split_once("Z_").unwrap_or_else(|| panic!("{stamp}"));
    assert_eq!(time.len(), 15, "YYYYmmdd_HHMMSS: {stamp}");
    assert_eq!(engine, docker_label());
    let at = chrono::NaiveDateTime::parse_from_str(time, "%Y%m%d_%H%M%S")
        .unwrap()
        .and_utc();
    assert!(
        (chrono::Utc::now() - at).num_seconds().abs() < 600,
        "{stamp} is not UTC"
    );
    assert!(r.stderr.contains("saved"), "{}", r.stderr);
    // An existing file is not overwritten without --force.
    run(&["save", &src.name, "-o", archive.to_str().unwrap()]).fails_with(5, "already exists");
    run(&[
        "save",
        &src.name,
        "-o",
        archive.to_str().unwrap(),
        "--force",
        "-q",
    ])
    .ok();

    // Without a VOLUME, restore uses the manifest's name: the volume exists and is not empty.
    let before = src.snapshot();
    run(&["restore", archive.to_str().unwrap()]).fails_with(5, "not empty");
    assert_eq!(src.snapshot(), before, "refused restore changed nothing");
    docker(&["volume", "rm", &src.name]);
    run(&["restore", archive.to_str().unwrap(), "-q"]).ok();
    assert_eq!(src.snapshot(), before);
}

#[test]
fn labels_driver_options_travel_with_the_archive() {
    let name = unique("rt-labels");
    docker(&[
        "volume",
        "create",
        "--label",
        "com.example.team=data",
        "--label",
        "empty=",
        &name,
    ]);
    let src = Volume { name };
    src.sh("echo labelled > /data/f");
    let dir = tempdir();
    let file = dir.path().join("v.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    let inspect = run(&["inspect", file.to_str().unwrap(), "--format", "json"]).ok();
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let head = &json["manifest"]["head"];
    assert_eq!(head["volume"]["name"], src.name.as_str());
    assert_eq!(head["volume"]["driver"], "local");
    assert_eq!(head["volume"]["labels"]["com.example.team"], "data");
    assert_eq!(json["verified"], true);
    assert_eq!(json["entries"], 2);
    assert!(head["source"]["endpoint"]
        .as_str()
        .unwrap()
        .starts_with("unix://"));
    assert!(json["manifest"]["trailer"]["checksum"]
        .as_str()
        .unwrap()
        .starts_with("blake3:"));

    let dst = Volume::named("rt-labels-dst");
    run(&["restore", file.to_str().unwrap(), &dst.name, "-q"]).ok();
    let labels = docker(&["volume", "inspect", "-f", "{{json .Labels}}", &dst.name]);
    assert!(labels.contains("\"com.example.team\":\"data\""), "{labels}");
    assert_eq!(dst.sh("cat /data/f"), "labelled\n");

    // Driver options too, on request (a tmpfs volume keeps no data between containers; its
    // options matter).
    let tmpfs = unique("rt-tmpfs");
    docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=10m",
        &tmpfs,
    ]);
    let tmpfs = Volume { name: tmpfs };
    let file = dir.path().join("t.tar.zst");
    run(&["save", &tmpfs.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    let dst = Volume::named("rt-tmpfs-dst");
    run(&[
        "restore",
        "--apply-volume-options",
        file.to_str().unwrap(),
        &dst.name,
        "-q",
    ])
    .ok();
    let opts = docker(&["volume", "inspect", "-f", "{{json .Options}}", &dst.name]);
    assert!(
        opts.contains("\"type\":\"tmpfs\"") && opts.contains("size=10m"),
        "{opts}"
    );
}

#[test]
fn a_new_volume_whose_options_bring_data_is_not_overwritten() {
    // A bind-style local volume: restoring with its options creates a volume over the same host
    // directory, which is not empty, so the restore must refuse and leave the data alone.
    let host = tempdir();
    std::fs::write(host.path().join("precious"), "keep").unwrap();
    let name = unique("rt-bind");
    let device = format!("device={}", host.path().display());
    docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        &name,
    ]);
    let src = Volume { name };
    let dir = tempdir();
    let file = dir.path().join("b.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    std::fs::write(host.path().join("precious"), "changed since").unwrap();
    let dst = Volume::named("rt-bind-dst");
    run(&[
        "restore",
        "--apply-volume-options",
        file.to_str().unwrap(),
        &dst.name,
    ])
    .fails_with(5, "not empty");
    assert!(
        !dst.exists(),
        "the volume the failed restore created is removed"
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("precious")).unwrap(),
        "changed since"
    );
}

#[test]
fn stdout_and_stdin_stream() {
    let src = awkward_volume("rt-pipe");
    let save = tool().args(["save", &src.name, "-o", "-", "-q"]).run().ok();
    assert!(save.stderr.is_empty(), "-q keeps stderr quiet");
    let dst = Volume::named("rt-pipe-dst");
    let mut child = tool()
        .args(["restore", "-", &dst.name, "-q"])
        .stdin(Stdio::piped())
        .start();
    child.stdin.take().unwrap().write_all(&save.stdout).unwrap();
    child.finish().ok();
    assert_eq!(dst.snapshot(), src.snapshot());
}

#[test]
fn force_replaces_content_exactly() {
    let src = awkward_volume("rt-force-src");
    let dir = tempdir();
    let file = dir.path().join("a.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();

    // Unused target: emptied by recreation.
    let dst = Volume::new("rt-force-dst");
    dst.sh("mkdir /data/stale && echo old > /data/stale/file && echo x > /data/.hidden");
    run(&["restore", file.to_str().unwrap(), &dst.name]).fails_with(5, "not empty");
    assert!(dst.sh("ls -a /data").contains("stale"));
    run(&[
        "restore",
        "--force",
        file.to_str().unwrap(),
        &dst.name,
        "-q",
    ])
    .ok();
    assert_eq!(
        dst.snapshot(),
        src.snapshot(),
        "no stale files after --force"
    );

    // A stopped container still references the target: emptied with that container's image.
    let used = Volume::new("rt-force-used");
    used.sh("echo old > /data/stale && mkdir /data/.d && touch /data/..x");
    let _c = Container::create("rt-force-user", &used);
    run(&[
        "restore",
        "--force",
        file.to_str().unwrap(),
        &used.name,
        "-q",
    ])
    .ok();
    assert_eq!(used.snapshot(), src.snapshot());

    // A running container: refused, nothing changes.
    let running = Volume::new("rt-force-running");
    running.sh("echo keep > /data/keep");
    let c = Container::create("rt-force-running-user", &running);
    docker(&["start", &c.name]);
    run(&["restore", "--force", file.to_str().unwrap(), &running.name])
        .fails_with(5, "running container");
    assert_eq!(running.sh("cat /data/keep"), "keep\n");
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", "name=dvb-scratch"]),
        ""
    );
}

#[test]
fn many_small_files() {
    // 100k small files, written by tar inside a busybox container from a tar made here.
    let src = Volume::new("rt-many");
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..100_000u32 {
        let mut h = tar::Header::new_ustar();
        let data = format!("file {i}\n");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, format!("d{}/f{i}", i % 100), data.as_bytes())
            .unwrap();
    }
    let tarball = b.into_inner().unwrap();
    let mount = format!("{}:/data", src.name);
    let mut child = std::process::Command::new("docker")
        .args([
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "--log-driver",
            "none",
            "-v",
            &mount,
            busybox(),
            "tar",
            "-xf",
            "-",
            "-C",
            "/data",
        ])
        .stdin(Stdio::piped())
        .start();
    child.stdin.take().unwrap().write_all(&tarball).unwrap();
    child.finish().ok();

    let dir = tempdir();
    let file = dir.path().join("many.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    let json: serde_json::Value = serde_json::from_slice(
        &run(&["inspect", file.to_str().unwrap(), "--format", "json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        json["entries"],
        100_000 + 100 + 1,
        "files, directories and the root"
    );
    let dst = Volume::named("rt-many-dst");
    run(&["restore", file.to_str().unwrap(), &dst.name, "-q"]).ok();
    let digest = "find . -type f | LC_ALL=C sort | xargs cat | md5sum; find . | wc -l";
    assert_eq!(
        dst.sh(&format!("cd /data && {digest}")),
        src.sh(&format!("cd /data && {digest}"))
    );
}

#[test]
fn ls_and_inspect_describe_volumes_and_archives() {
    let v = Volume::new("rt-ls");
    v.sh("echo x > /data/x");
    let c = Container::create("rt-ls-user", &v);
    let ls = run(&["ls", "--format", "json"]).ok();
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == v.name.as_str())
        .expect("volume listed");
    assert_eq!(row["driver"], "local");
    assert!(
        row["size"].as_u64().is_some(),
        "the engine measured it: {row}"
    );
    assert_eq!(row["containers"][0]["name"], c.name.as_str());
    assert_eq!(row["containers"][0]["running"], false);
    let table = run(&["ls"]).ok().stdout_str();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&v.name) && l.contains(&c.name)),
        "{table}"
    );

    // inspect on an archive without a manifest (made here with the tar crate).
    let dir = tempdir();
    let file = dir.path().join("plain.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&file).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_size(3);
    b.append_data(&mut h, "./a", &b"abc"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    let out = run(&["inspect", file.to_str().unwrap()]).ok().stdout_str();
    assert!(out.contains("manifest  none"), "{out}");
    assert!(out.contains("entries   1"), "{out}");
}
