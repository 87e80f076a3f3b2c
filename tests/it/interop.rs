//! Interop both ways with the seed's recipes (busybox tar in a container, as alpine has) and GNU
//! tar on the host.

use crate::harness::*;

#[test]
fn seed_archives_restore() {
    let src = awkward_volume("io-seed-src");
    let want = src.snapshot();
    let dir = tempdir();
    let backup = format!("{}:/backup", dir.path().display());
    let source = format!("{}:/source:ro", src.name);
    // The seed's backup-volume.sh: `tar czf /backup/VOL_DATE.tar.gz -C /source .`
    docker(&[
        "run",
        "--rm",
        "-v",
        &source,
        "-v",
        &backup,
        busybox(),
        "tar",
        "czf",
        "/backup/seed.tar.gz",
        "-C",
        "/source",
        ".",
    ]);
    // Bare names (`tar cf - -C /source a b`), uncompressed.
    docker(&[
        "run",
        "--rm",
        "-v",
        &source,
        "-v",
        &backup,
        busybox(),
        "sh",
        "-c",
        "cd /source && tar cf /backup/bare.tar dir 'with space'",
    ]);

    let dst = Volume::named("io-seed-dst");
    let r = run(&[
        "restore",
        dir.path().join("seed.tar.gz").to_str().unwrap(),
        &dst.name,
    ])
    .ok();
    assert!(r.stderr.contains("no manifest"), "{}", r.stderr);
    assert_eq!(dst.snapshot(), want);

    let bare = Volume::named("io-bare-dst");
    run(&[
        "restore",
        dir.path().join("bare.tar").to_str().unwrap(),
        &bare.name,
        "-q",
    ])
    .ok();
    assert_eq!(
        bare.sh("cd /data && find . | sort"),
        ".\n./dir\n./dir/empty\n./dir/file.txt\n./with space\n./with space/a b.txt\n"
    );
}

#[test]
fn gnu_tar_archives_restore() {
    let dir = tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/f.txt"), "gnu\n").unwrap();
    std::os::unix::fs::symlink("sub/f.txt", root.join("link")).unwrap();
    let archive = dir.path().join("gnu.tar.gz");
    let ok = std::process::Command::new("tar")
        .args([
            "czf",
            archive.to_str().unwrap(),
            "-C",
            root.to_str().unwrap(),
            ".",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let dst = Volume::named("io-gnu");
    run(&["restore", archive.to_str().unwrap(), &dst.name, "-q"]).ok();
    assert_eq!(
        dst.sh("cat /data/sub/f.txt; readlink /data/link"),
        "gnu\nsub/f.txt\n"
    );
}

#[test]
fn our_archives_restore_with_the_seed_recipe() {
    let src = awkward_volume("io-ours-src");
    let want = src.snapshot();
    assert_ne!(
        without_dir_and_link_mtimes(&want),
        want,
        "the mask only touches directories and symlinks"
    );
    let dir = tempdir();
    let backup = format!("{}:/backup", dir.path().display());
    for name in ["ours.tar.gz", "ours.tar"] {
        run(&[
            "save",
            &src.name,
            "-o",
            dir.path().join(name).to_str().unwrap(),
            "-q",
        ])
        .ok();
        // The seed's restore-volume.sh: `docker volume create` + `tar xzf ... -C /target`.
        let dst = Volume::new("io-ours-dst");
        let target = format!("{}:/target", dst.name);
        let flags = if name.ends_with(".gz") { "xzf" } else { "xf" };
        docker(&[
            "run",
            "--rm",
            "-v",
            &target,
            "-v",
            &backup,
            busybox(),
            "tar",
            flags,
            &format!("/backup/{name}"),
            "-C",
            "/target",
        ]);
        // busybox tar does not set the mtimes of directories and symlinks; all else must match.
        assert_eq!(
            without_dir_and_link_mtimes(&dst.snapshot()),
            without_dir_and_link_mtimes(&want),
            "{name} via busybox tar"
        );
        assert!(
            !dst.sh("ls -a /data").contains("manifest"),
            "the manifest stays invisible"
        );
    }
    // GNU tar lists no manifest entry either.
    let out = std::process::Command::new("tar")
        .args(["tzf", dir.path().join("ours.tar.gz").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.starts_with("./\n"), "{listing}");
    assert!(!listing.contains("manifest"), "{listing}");
}

/// A snapshot with the mtime field blanked on directory and symlink lines.
fn without_dir_and_link_mtimes(snapshot: &str) -> String {
    snapshot
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split('|').collect();
            if fields.len() == 7 && (fields[1] == "directory" || fields[1] == "symbolic link") {
                fields[4] = "-";
            }
            fields.join("|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
