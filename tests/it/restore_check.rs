//! A restore is confirmed from the volume itself: an engine that answers an upload without
//! storing it fails the restore, which leaves the target as it was; `--force` never reports an
//! exact restore into a volume that removing does not empty.

use std::path::Path;
use std::sync::atomic::Ordering;

use crate::harness::*;

fn saved(tag: &str) -> (Volume, tempfile::TempDir, String) {
    let src = Volume::new(tag);
    src.sh(
        "mkdir /data/d && echo one > /data/d/one && echo two > /data/two && chown 7:7 /data/two",
    );
    let dir = tempdir();
    let file = dir.path().join("a.tar.zst");
    run(&["save", &src.name, "-o", file.to_str().unwrap(), "-q"]).ok();
    (src, dir, file.to_str().unwrap().to_owned())
}

const SOCKET: &str = "/var/run/docker.sock";

fn scratch_volumes_of(target: &str) -> String {
    docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name=dvb-scratch-{target}"),
    ])
}

#[test]
fn an_engine_that_drops_uploads_fails_the_restore_and_leaves_the_target() {
    let (_src, _dir, file) = saved("rc-drop-src");
    let proxy = DroppingProxy::start(Path::new(SOCKET), 0);
    let host = proxy.host();
    let message = "the volume read back does not hold it";

    // A missing volume: created, found empty after the upload, removed again.
    let fresh = Volume::named("rc-drop-fresh");
    let r = run(&["-H", &host, "restore", &file, &fresh.name]).fails_with(11, message);
    assert!(r.stderr.contains("the volume is empty"), "{r}");
    assert!(!r.stderr.contains("restored "), "no success line\n{r}");
    assert!(
        proxy.uploads.load(Ordering::SeqCst) >= 1,
        "the upload went through the proxy"
    );
    assert!(
        !fresh.exists(),
        "the volume the failed restore created is removed"
    );
    assert_eq!(fresh.helpers_left(), "");

    // An existing empty volume: still there, still empty.
    let empty = Volume::new("rc-drop-empty");
    run(&["-H", &host, "restore", &file, &empty.name]).fails_with(11, message);
    assert!(empty.exists());
    assert_eq!(empty.sh("ls -A /data"), "");

    // Over data with --force (and with --verify): the old data is still there, no scratch left.
    let kept = Volume::new("rc-drop-kept");
    kept.sh("echo mine > /data/mine");
    let before = kept.snapshot();
    for extra in [&[][..], &["--verify"][..]] {
        let mut args = vec!["-H", &host, "restore", "--force"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&file, &kept.name]);
        run(&args).fails_with(11, message);
        assert_eq!(kept.snapshot(), before, "{extra:?}: target unchanged");
        assert_eq!(
            scratch_volumes_of(&kept.name),
            "",
            "{extra:?}: no scratch left"
        );
        assert_eq!(kept.helpers_left(), "");
    }
    drop(proxy);

    // The same restores straight to the engine succeed.
    run(&["restore", &file, &fresh.name, "-q"]).ok();
    assert_eq!(fresh.sh("cat /data/d/one"), "one\n");
}

/// The scratch volume takes the archive, and the engine drops the copy into the emptied target:
/// the restore fails and says where the data is, which is still there.
#[test]
fn a_dropped_copy_into_the_target_keeps_the_scratch_volume_and_says_so() {
    let (src, _dir, file) = saved("rc-copy-src");
    let target = Volume::new("rc-copy");
    target.sh("echo mine > /data/mine");
    let proxy = DroppingProxy::start(Path::new(SOCKET), 1);
    let r = run(&[
        "-H",
        &proxy.host(),
        "restore",
        "--force",
        &file,
        &target.name,
    ])
    .fails_with(11, "the volume read back does not hold it");
    assert_eq!(proxy.uploads.load(Ordering::SeqCst), 2);
    let scratch = scratch_volumes_of(&target.name).trim().to_owned();
    let scratch = Volume { name: scratch };
    assert!(!scratch.name.is_empty(), "the scratch volume is kept\n{r}");
    assert!(
        r.stderr.contains(&format!(
            "the restored data is kept in volume `{}`",
            scratch.name
        )),
        "{r}"
    );
    assert_eq!(
        scratch.snapshot(),
        src.snapshot(),
        "the scratch volume holds the archive"
    );
    assert_eq!(target.helpers_left(), "");
}

#[test]
fn restore_verify_compares_every_entry() {
    let src = awkward_volume("rc-verify-src");
    let dir = tempdir();
    let file = dir.path().join("a.tar.zst");
    let file = file.to_str().unwrap();
    run(&["save", &src.name, "-o", file, "-q"]).ok();
    let dst = Volume::named("rc-verify-dst");
    let r = run(&["restore", "--verify", file, &dst.name]).ok();
    assert!(
        r.stderr.contains("every entry read back and compared"),
        "{r}"
    );
    assert_eq!(dst.snapshot(), src.snapshot());
    // Over data, through the scratch volume.
    dst.sh("echo stale > /data/stale");
    run(&["restore", "--verify", "--force", file, &dst.name, "-q"]).ok();
    assert_eq!(dst.snapshot(), src.snapshot());
    assert_eq!(scratch_volumes_of(&dst.name), "");
}

/// A local volume bound to a host directory, removed (with the directory) on drop.
fn bind_volume(tag: &str) -> (Volume, tempfile::TempDir) {
    let host = tempdir();
    let name = unique(tag);
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
    (Volume { name }, host)
}

#[test]
fn force_into_a_host_directory_is_refused_or_exact() {
    let (src, _dir, file) = saved("rc-bind-src");

    // Nothing can delete its files: refused before anything changes.
    let (bound, host) = bind_volume("rc-bind");
    std::fs::write(host.path().join("old"), "old").unwrap();
    let r = run(&["restore", "--force", &file, &bound.name]).fails_with(5, "deletes nothing");
    assert!(
        r.stderr.contains(&host.path().display().to_string()),
        "names the directory\n{r}"
    );
    assert_eq!(
        files_in(host.path()),
        vec!["old"],
        "the directory is unchanged"
    );
    assert_eq!(scratch_volumes_of(&bound.name), "");
    assert_eq!(bound.helpers_left(), "");

    // A stopped container references it: emptied for real with that container's image.
    let (used, used_host) = bind_volume("rc-bind-used");
    std::fs::write(used_host.path().join("old"), "old").unwrap();
    let _c = Container::create("rc-bind-user", &used);
    run(&["restore", "--force", &file, &used.name, "-q"]).ok();
    assert_eq!(
        files_in(used_host.path()),
        vec!["d", "two"],
        "exactly the archive"
    );
    assert_eq!(used.snapshot(), src.snapshot());
}
