//! `cleanup`: of the dangling volumes, exactly those with a fresh, readable backup in the
//! destination are removed; one in use, one without a backup, one whose backup is old, one whose
//! backup does not open and one filtered out by a label stay.

use crate::harness::*;

/// A volume holding one file, backed up into `dir` under the tool's naming (now).
fn backed_up(vol: &Volume, dir: &std::path::Path) {
    vol.sh("echo hello > /data/f");
    run(&["save", &vol.name, "--to", dir.to_str().unwrap(), "-q"]).ok();
}

fn row<'a>(listing: &'a str, volume: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(volume))
        .unwrap_or_else(|| panic!("{volume} not listed:\n{listing}"))
}

#[test]
fn cleanup_removes_exactly_the_dangling_volumes_with_a_fresh_backup() {
    let dir = tempdir();
    let fresh = Volume::new("cleanup-fresh");
    backed_up(&fresh, dir.path());
    let in_use = Volume::new("cleanup-used");
    backed_up(&in_use, dir.path());
    let _user = Container::create("cleanup-user", &in_use);
    let no_backup = Volume::new("cleanup-none");
    let old = Volume::new("cleanup-old");
    backed_up(&old, dir.path());
    let old_file = files_in(dir.path())
        .into_iter()
        .find(|f| f.starts_with(&format!("{}_", old.name)))
        .unwrap();
    std::fs::rename(
        dir.path().join(&old_file),
        dir.path()
            .join(format!("{}_20200101_000000.tar.zst", old.name)),
    )
    .unwrap();
    // A fresh backup that does not open: the quick check keeps the volume.
    let damaged = Volume::new("cleanup-bad");
    backed_up(&damaged, dir.path());
    let damaged_file = files_in(dir.path())
        .into_iter()
        .find(|f| f.starts_with(&format!("{}_", damaged.name)))
        .unwrap();
    std::fs::write(dir.path().join(&damaged_file), b"not an archive at all").unwrap();
    let labelled = Volume {
        name: unique("cleanup-keep"),
    };
    docker(&["volume", "create", "--label", "keep=yes", &labelled.name]);
    backed_up(&labelled, dir.path());
    let dest = dir.path().to_str().unwrap();

    let listed = run(&["cleanup", dest, "--filter", "label!=keep", "--dry-run"]).ok();
    let listing = listed.stdout_str();
    assert!(
        row(&listing, &fresh.name).contains("would remove"),
        "{listing}"
    );
    assert!(
        row(&listing, &no_backup.name).contains("keep: no backup"),
        "{listing}"
    );
    assert!(
        row(&listing, &old.name).contains("keep: newest backup older than 1day"),
        "{listing}"
    );
    assert!(
        !listing.contains(&in_use.name),
        "a volume in use is listed:\n{listing}"
    );
    assert!(
        !listing.contains(&labelled.name),
        "a filtered-out volume is listed:\n{listing}"
    );
    assert!(fresh.exists());

    // No terminal and no -f: refused, nothing removed.
    run(&["cleanup", dest, "--filter", "label!=keep"]).fails_with(5, "no terminal");
    assert!(fresh.exists());

    let r = run(&["cleanup", dest, "--filter", "label!=keep", "-f"]).ok();
    assert!(
        r.stderr
            .contains(&format!("removed 1 volume(s): {}", fresh.name)),
        "{r}"
    );
    assert!(!fresh.exists(), "the fresh one stays");
    for kept in [&in_use, &no_backup, &old, &damaged, &labelled] {
        assert!(kept.exists(), "{} was removed", kept.name);
    }
    assert_eq!(helpers_of(&fresh.name), "");

    // A bad filter is a usage error.
    run(&["cleanup", dest, "--filter", "name=x"]).fails_with(2, "label=KEY");
}
