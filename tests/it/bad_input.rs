//! Bad input gets a clear error and loses nothing.

use crate::harness::*;

fn saved(tag: &str) -> (Volume, tempfile::TempDir, std::path::PathBuf) {
    let src = Volume::new(tag);
    src.sh("head -c 3000000 /dev/urandom > /data/big && echo small > /data/small");
    let dir = tempdir();
    let file = dir.path().join("good.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    (src, dir, file)
}

#[test]
fn missing_volume_is_not_created() {
    let missing = Volume::named("bad-missing");
    let dir = tempdir();
    run_in(dir.path(), &["save", &missing.name]).fails_with(4, "no volume");
    assert!(!missing.exists(), "save must not create the volume");
    assert!(files_in(dir.path()).is_empty() || files_in(&dir.path().join("backups")).is_empty());
}

#[test]
fn damaged_archives_are_refused_and_leave_targets_alone() {
    let (src, dir, good) = saved("bad-damage");
    let bytes = std::fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        ("flipped", flipped, "damaged"),
        (
            "foreign",
            b"PK\x03\x04 this is a zip file, not a tar".to_vec(),
            "zip",
        ),
        ("random", vec![0x42; 4096], "not a volume archive"),
        ("empty", Vec::new(), "empty"),
    ];
    for (name, data, needle) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, &data).unwrap();
        // Into a new volume: refused, and no half-filled volume is left.
        let fresh = Volume::named(&format!("bad-{name}"));
        run(&["restore", file.to_str().unwrap(), &fresh.name]).fails_with(6, needle);
        assert!(!fresh.exists(), "{name}: no volume left behind");
        // Over an existing volume with --force: it keeps what it had.
        let kept = Volume::new(&format!("bad-{name}-kept"));
        kept.sh("echo mine > /data/mine");
        let before = kept.snapshot();
        run(&["restore", "--force", file.to_str().unwrap(), &kept.name]).fails_with(6, needle);
        assert_eq!(kept.snapshot(), before, "{name}: target unchanged");
        assert_eq!(kept.helpers_left(), "");
    }
    assert_eq!(src.helpers_left(), "");
    assert_eq!(
        docker(&["volume", "ls", "-q", "--filter", "name=dvb-scratch"]),
        ""
    );
}

#[test]
fn manifest_that_lies_is_caught() {
    // Cut the archive's tar stream after the first entry but keep a valid zstd frame: the
    // trailer is missing, so the restore refuses it.
    let (_src, dir, good) = saved("bad-lie");
    let tar = zstd::decode_all(std::fs::File::open(&good).unwrap()).unwrap();
    // Drop the trailer manifest and end marker: keep everything before the trailer header.
    let trailer_at = find_last_global_header(&tar);
    let mut cut = tar[..trailer_at].to_vec();
    cut.extend_from_slice(&[0u8; 1024]);
    let file = dir.path().join("no-trailer.tar.zst");
    std::fs::write(&file, zstd::encode_all(&cut[..], 3).unwrap()).unwrap();
    let fresh = Volume::named("bad-lie-dst");
    run(&["restore", file.to_str().unwrap(), &fresh.name]).fails_with(6, "trailer is missing");
    assert!(!fresh.exists());
    // And inspect reports it too.
    run(&["inspect", file.to_str().unwrap()]).fails_with(6, "trailer is missing");
}

fn find_last_global_header(tar: &[u8]) -> usize {
    (0..tar.len() / 512)
        .rev()
        .map(|i| i * 512)
        .find(|&off| tar[off + 156] == b'g')
        .expect("a trailer header")
}

#[test]
fn entries_that_leave_the_volume_never_land_outside() {
    let outside = tempdir();
    let marker = outside.path().join("escaped");
    let mut b = tar::Builder::new(Vec::new());
    let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Write the raw name: the tar crate refuses `..` through its safe setters.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    file(&mut b, "./ok.txt", b"fine");
    file(&mut b, "../../../escaped", b"bad");
    let abs = format!("{}", marker.display());
    file(&mut b, &abs, b"absolute is kept inside");
    // A symlink to a directory outside, then a file through it.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "out", outside.path()).unwrap();
    file(&mut b, "out/escaped", b"through the link");
    b.finish().unwrap();
    let archive = outside.path().join("evil.tar");
    std::fs::write(&archive, b.into_inner().unwrap()).unwrap();

    let dst = Volume::named("bad-evil");
    let r = run(&["restore", archive.to_str().unwrap(), &dst.name]).ok();
    assert!(r.stderr.contains("leaves the volume"), "{}", r.stderr);
    assert!(r.stderr.contains("through a symlink"), "{}", r.stderr);
    assert!(!marker.exists(), "nothing written outside the volume");
    let listing = dst.sh("cd /data && find . | sort");
    let lines: Vec<&str> = listing.lines().collect();
    assert!(
        lines.contains(&"./ok.txt") && lines.contains(&"./out"),
        "{listing}"
    );
    // The absolute path lands inside the volume, under its own name; nothing else escaped.
    let inside = format!(".{abs}");
    assert!(lines.contains(&inside.as_str()), "{listing}");
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("/escaped")).count(),
        1,
        "{listing}"
    );
}

#[test]
fn unreachable_daemon_names_the_endpoint() {
    let r = tool()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["ls"])
        .run();
    r.fails_with(3, "unix:///nonexistent/docker.sock")
        .fails_with(3, "context `default`");
}

#[test]
fn usage_errors_exit_2() {
    run(&["save"]).fails_with(2, "VOLUME");
    run(&["save", "a", "b", "-o", "-"]).fails_with(2, "single volume");
    run(&["save", "a", "--compression", "gzip", "--level", "12"]).fails_with(2, "level");
    run(&["restore", "/nonexistent/archive.tar.zst", "v"]).fails_with(4, "cannot open");
}

#[test]
fn engine_refusing_mid_stream_fails_cleanly() {
    // A hard link to a file that is not in the archive makes the engine stop extracting while
    // the tool is still sending: the restore must fail (not hang) and remove its new volume.
    let dir = tempdir();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "./link", "./missing").unwrap();
    let big = vec![0x5au8; 40 << 20];
    let mut h = tar::Header::new_gnu();
    h.set_size(big.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "./big", &big[..]).unwrap();
    b.finish().unwrap();
    let file = dir.path().join("dangling.tar");
    std::fs::write(&file, b.into_inner().unwrap()).unwrap();
    let dst = Volume::named("bad-dangling");
    let started = std::time::Instant::now();
    run(&["restore", file.to_str().unwrap(), &dst.name]).fails_with(1, "did not accept");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(!dst.exists(), "no half-filled volume left");
    assert_eq!(dst.helpers_left(), "");
}
