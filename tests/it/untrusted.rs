//! Archives crafted the way an attacker would: entries that used to slip past the "stays inside
//! the volume" filter, device nodes and setuid files, an edited manifest, a metadata bomb.

use std::path::{Path, PathBuf};

use crate::harness::*;

fn gnu(kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(0);
    h
}

fn root(b: &mut tar::Builder<Vec<u8>>) {
    let mut h = gnu(tar::EntryType::Directory, 0o755);
    b.append_data(&mut h, "./", std::io::empty()).unwrap();
}

fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let mut h = gnu(tar::EntryType::Regular, mode);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, to: &str) {
    let mut h = gnu(kind, 0o777);
    b.append_link(&mut h, path, to).unwrap();
}

fn write(dir: &Path, name: &str, b: tar::Builder<Vec<u8>>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, b.into_inner().unwrap()).unwrap();
    path
}

/// `find` of the volume, one `path type` line each.
fn listing(v: &Volume) -> String {
    v.sh("cd /data && find . | LC_ALL=C sort | while IFS= read -r f; do stat -c '%n %F' \"$f\"; done")
}

#[test]
fn a_hard_link_to_a_symlink_is_restored_as_the_symlink() {
    let dir = tempdir();
    let mut b = tar::Builder::new(Vec::new());
    root(&mut b);
    link(&mut b, tar::EntryType::Symlink, "./sym", "/etc");
    link(&mut b, tar::EntryType::Link, "./hard", "./sym");
    file(&mut b, "./hard/escaped", 0o644, b"through the hard link");
    file(&mut b, "./ok", 0o644, b"fine");
    let archive = write(dir.path(), "hardsym.tar", b);
    let dst = Volume::named("untrusted-hardsym");
    let r = run(&["restore", archive.to_str().unwrap(), &dst.name]).ok();
    assert!(r.stderr.contains("skipped 1 entry"), "{r}");
    assert!(r.stderr.contains("1 skipped"), "{r}");
    let r = run(&[
        "-D",
        "restore",
        "--force",
        archive.to_str().unwrap(),
        &dst.name,
    ])
    .ok();
    assert!(
        r.stderr
            .contains("hard/escaped: its path goes through a symlink"),
        "{r}"
    );
    assert_eq!(dst.sh("readlink /data/hard").trim(), "/etc");
    assert_eq!(
        listing(&dst),
        ". directory\n./hard symbolic link\n./ok regular file\n./sym symbolic link\n"
    );
}

#[test]
fn gnu_sparse_records_and_ustar_prefixes_do_not_rename_entries() {
    let dir = tempdir();
    let mut b = tar::Builder::new(Vec::new());
    root(&mut b);
    // The engine's tar reader would rename this entry by its GNU.sparse.name record.
    b.append_pax_extensions([("GNU.sparse.name", b"./renamed".as_slice())])
        .unwrap();
    file(&mut b, "./real", 0o644, b"content");
    // A ustar header whose prefix field is not the path the PAX record gives.
    b.append_pax_extensions([("path", b"./named".as_slice())])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(4);
    h.as_ustar_mut().unwrap().prefix[..5].copy_from_slice(b"stray");
    h.as_ustar_mut().unwrap().name[..5].copy_from_slice(b"other");
    h.set_cksum();
    b.append(&h, &b"data"[..]).unwrap();
    let archive = write(dir.path(), "sparse.tar", b);
    let dst = Volume::named("untrusted-sparse");
    run(&["restore", archive.to_str().unwrap(), &dst.name]).ok();
    assert_eq!(
        listing(&dst),
        ". directory\n./named regular file\n./real regular file\n"
    );
    assert_eq!(dst.sh("cat /data/real /data/named"), "contentdata");
}

fn devices_archive(dir: &Path) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    root(&mut b);
    let mut h = gnu(tar::EntryType::Char, 0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "./null", std::io::empty()).unwrap();
    file(&mut b, "./suid", 0o4755, b"#!/bin/sh\n");
    file(&mut b, "./plain", 0o644, b"plain");
    write(dir, "devices.tar", b)
}

#[test]
fn device_nodes_and_setuid_files_are_counted_and_skipped_on_request() {
    let dir = tempdir();
    let archive = devices_archive(dir.path());
    let all = Volume::named("untrusted-dev-all");
    let r = run(&["restore", archive.to_str().unwrap(), &all.name]).ok();
    assert!(
        r.stderr.contains("1 device node, 1 setuid/setgid file"),
        "{r}"
    );
    assert!(!r.stderr.contains("skipped"), "{r}");
    assert_eq!(
        all.sh("stat -c '%n %F %t,%T' /data/null; stat -c '%n %a' /data/suid"),
        "/data/null character special file 1,3\n/data/suid 4755\n"
    );

    let filtered = Volume::named("untrusted-dev-none");
    let r = run(&[
        "restore",
        "--no-devices",
        "--no-setuid",
        archive.to_str().unwrap(),
        &filtered.name,
    ])
    .ok();
    assert!(
        r.stderr.contains(
            "2 skipped; 1 device node (not restored), 1 setuid/setgid file (not restored)"
        ),
        "{r}"
    );
    assert!(r.stderr.contains("skipped 2 entries"), "{r}");
    assert_eq!(listing(&filtered), ". directory\n./plain regular file\n");
}

/// A saved archive's tar, and where its manifest head's JSON is.
fn saved_tar(tag: &str) -> (Volume, tempfile::TempDir, Vec<u8>) {
    let src = Volume::new(tag);
    src.sh("echo hello > /data/a && mkdir /data/d && echo x > /data/d/b");
    let dir = tempdir();
    let file = dir.path().join("good.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    let tar = zstd::decode_all(std::fs::File::open(&file).unwrap()).unwrap();
    (src, dir, tar)
}

/// Replaces the first `from` in `tar` by `to` (same length: no header changes).
fn edit(tar: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = tar
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not in the archive"));
    let mut out = tar.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

#[test]
fn an_edited_manifest_fails_verify_and_restore() {
    let (src, dir, tar) = saved_tar("untrusted-edit");
    // The head: the version that made it (a field nothing acts on before the data is read).
    let version = format!("\"tool_version\":\"{}\"", env!("CARGO_PKG_VERSION"));
    let forged = format!("\"tool_version\":\"9{}\"", &env!("CARGO_PKG_VERSION")[1..]);
    let head = edit(&tar, &version, &forged);
    // The trailer: the byte count of the content (two files, 8 bytes).
    let trailer = edit(&tar, "\"content_bytes\":8,", "\"content_bytes\":9,");
    for (name, bytes) in [("head", head), ("trailer", trailer)] {
        let file = dir.path().join(format!("{name}.tar.zst"));
        std::fs::write(&file, zstd::encode_all(&bytes[..], 3).unwrap()).unwrap();
        let file = file.to_str().unwrap();
        run(&["verify", file]).fails_with(6, "the manifest was changed after the save");
        run(&["inspect", file]).fails_with(6, "the manifest was changed after the save");
        let dst = Volume::named(&format!("untrusted-edit-{name}"));
        run(&["restore", file, &dst.name]).fails_with(6, "the manifest was changed");
        assert!(!dst.exists(), "{name}: no volume left behind");
    }
    // The unedited archive still verifies.
    let good = dir.path().join("good.tar.zst");
    let r = run(&["verify", good.to_str().unwrap()]).ok();
    assert!(
        r.stdout_str().contains("checksum matches the manifest"),
        "{r}"
    );
    assert_eq!(src.helpers_left(), "");
}

#[test]
fn format_1_archives_still_restore() {
    // A format 1 archive: its trailer's checksum covers the entries only.
    let mut entries = tar::Builder::new(Vec::new());
    root(&mut entries);
    file(&mut entries, "./old", 0o644, b"from format 1");
    let entries = entries.into_inner().unwrap();
    let body = &entries[..entries.len() - 1024];
    let global = |json: String| {
        let value = format!("comment={json}\n");
        let mut len = value.len() + 2;
        while len != value.len() + 1 + len.to_string().len() {
            len = value.len() + 1 + len.to_string().len();
        }
        let data = format!("{len} {value}");
        let mut h = tar::Header::new_ustar();
        h.set_path("docker-volume-backup.manifest").unwrap();
        h.set_entry_type(tar::EntryType::XGlobalHeader);
        h.set_size(data.len() as u64);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data.as_bytes());
        out.resize(out.len().next_multiple_of(512), 0);
        out
    };
    let tool = "docker-volume-backup";
    let mut tar = global(format!(
        r#"{{"kind":"head","format":1,"tool":"{tool}","tool_version":"0.1.0","created":"2026-01-01T00:00:00Z","volume":{{"name":"old","driver":"local"}},"source":{{"context":"default","endpoint":"unix:///var/run/docker.sock"}},"compression":"none"}}"#
    ));
    tar.extend_from_slice(body);
    tar.extend(global(format!(
        r#"{{"kind":"trailer","format":1,"tool":"{tool}","entries":2,"content_bytes":13,"tar_bytes":{},"checksum":"blake3:{}"}}"#,
        body.len(),
        blake3::hash(body).to_hex()
    )));
    tar.extend_from_slice(&[0u8; 1024]);
    let dir = tempdir();
    let archive = dir.path().join("v1.tar");
    std::fs::write(&archive, &tar).unwrap();
    let dst = Volume::named("untrusted-v1");
    let r = run(&["restore", archive.to_str().unwrap(), &dst.name]).ok();
    assert!(r.stderr.contains("checksum verified (entries only"), "{r}");
    assert_eq!(dst.sh("cat /data/old"), "from format 1");
    // A changed byte of content is still caught.
    let bad = dir.path().join("v1-bad.tar");
    std::fs::write(&bad, edit(&tar, "from format 1", "from format 2")).unwrap();
    run(&["verify", bad.to_str().unwrap()]).fails_with(6, "differs from the manifest");
}

/// Thousands of 1 MiB PAX records for one entry, zstd-compressed to a few hundred KiB.
fn metadata_bomb(dir: &Path, records: usize) -> PathBuf {
    let record = {
        // `<len> comment=<value>\n`, 1 MiB less a few bytes; `<len>` has 7 digits.
        let value = vec![b'a'; (1 << 20) - 40];
        let len = 7 + " comment=".len() + value.len() + 1;
        let mut r = format!("{len} comment=").into_bytes();
        r.extend_from_slice(&value);
        r.push(b'\n');
        assert_eq!(r.len(), len);
        r
    };
    let mut h = tar::Header::new_ustar();
    h.set_path("PaxHeaders/bomb").unwrap();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_size(record.len() as u64);
    h.set_cksum();
    let path = dir.join("bomb.tar.zst");
    let mut enc = zstd::Encoder::new(std::fs::File::create(&path).unwrap(), 19).unwrap();
    use std::io::Write as _;
    let pad = vec![0u8; record.len().next_multiple_of(512) - record.len()];
    for _ in 0..records {
        enc.write_all(h.as_bytes()).unwrap();
        enc.write_all(&record).unwrap();
        enc.write_all(&pad).unwrap();
    }
    let mut b = tar::Builder::new(Vec::new());
    file(&mut b, "./victim", 0o644, b"x");
    enc.write_all(&b.into_inner().unwrap()).unwrap();
    enc.finish().unwrap();
    path
}

#[test]
fn a_metadata_bomb_is_refused() {
    let dir = tempdir();
    let bomb = metadata_bomb(dir.path(), 2000);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 4 << 20);
    let bomb = bomb.to_str().unwrap();
    let needle = "more metadata (PAX records, GNU long names) than the limit of 1 MiB";
    run(&["inspect", bomb]).fails_with(6, needle);
    run(&["verify", bomb]).fails_with(6, needle);
    let dst = Volume::named("untrusted-bomb");
    run(&["restore", bomb, &dst.name]).fails_with(6, needle);
    assert!(!dst.exists());
    // backups lists it (by name) without reading more than its start.
    let listed = run(&["backups", dir.path().to_str().unwrap()]).ok();
    assert!(!listed.stderr.contains("panicked"), "{listed}");
}
