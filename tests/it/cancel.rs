//! Ctrl-C in the middle: helpers removed, no archive that looks complete, no half-made volume.

use std::time::Duration;

use crate::harness::*;

use std::process::{Command, Stdio};

#[test]
fn ctrl_c_during_save_and_restore_cleans_up() {
    let src = Volume::new("cancel-src");
    // Incompressible data at zstd's slowest level keeps the save busy for a while.
    src.sh("head -c 120000000 /dev/urandom > /data/big");
    let dir = tempdir();
    let out = dir.path().join("c.tar.zst");
    let child = tool()
        .args([
            "save",
            &src.name,
            "-o",
            out.to_str().unwrap(),
            "--level",
            "19",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .start();
    let name = src.name.clone();
    let r = interrupt_after(child, || !helpers_of(&name).is_empty());
    r.fails_with(130, "interrupted");
    assert_eq!(src.helpers_left(), "", "helper removed");
    let lock = format!("dvb-lock-{}", src.name);
    assert_ne!(docker_run(&["inspect", &lock]).code, 0, "lock released");
    assert!(
        files_in(dir.path()).is_empty(),
        "no archive left: {:?}",
        files_in(dir.path())
    );

    // Restore: the volume it created is removed again.
    let slow = dir.path().join("slow.tar");
    run(&["save", &src.name, "-o", slow.to_str().unwrap(), "-q"]).ok();
    let dst = Volume::named("cancel-dst");
    // A FIFO fed slowly by this test keeps the restore running until it is interrupted.
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let child = tool()
        .args(["restore", fifo.to_str().unwrap(), &dst.name])
        .stderr(Stdio::piped())
        .start();
    let data = std::fs::read(&slow).unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        for chunk in data.chunks(1 << 20).take(20) {
            if f.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let dst_name = dst.name.clone();
    let r = interrupt_after(child, || !helpers_of(&dst_name).is_empty());
    feeder.join().unwrap();
    r.fails_with(130, "interrupted");
    assert!(!dst.exists(), "the half-restored volume is removed");
    assert_eq!(dst.helpers_left(), "");
}
