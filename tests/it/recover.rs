//! Signals and killed runs: SIGHUP cleans up like Ctrl-C; after a `kill -9` at a named step (a
//! failpoint), the next run says what was left and `recover` restarts, removes or finishes it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// The tool with its own state directory (the journals live there), so that a run killed by
/// this test is seen by this test only.
fn tool_in(state: &Path) -> Command {
    let mut c = tool();
    c.env("XDG_STATE_HOME", state);
    c
}

/// Waits (up to a minute) until `ready` holds while `child` runs.
fn wait_until(child: &mut Running, what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(60), "never {what}");
        if let Ok(Some(_)) = child.try_wait() {
            panic!("finished before {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Running, name: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap()
        .success());
}

/// Removes, when dropped, the scratch volumes of restores into `target` and their helpers: a
/// failing test must not leave them for the next.
struct ScratchOf(String);

impl Drop for ScratchOf {
    fn drop(&mut self) {
        let prefix = format!("dvb-scratch-{}", self.0);
        for v in docker_run(&["volume", "ls", "-q"]).stdout_str().lines() {
            if v.starts_with(&prefix) {
                for id in helpers_of(v).split_whitespace() {
                    let _ = docker_run(&["rm", "-f", id]);
                }
                let _ = docker_run(&["volume", "rm", "-f", v]);
            }
        }
    }
}

fn status_of(c: &Container) -> String {
    container_field(&c.name, "{{.State.Status}}")
}

#[test]
fn sighup_during_save_stop_restarts_the_app_and_cleans_up() {
    let state = tempdir();
    let vol = Volume::new("hup");
    vol.sh("head -c 120000000 /dev/urandom > /data/big");
    let app = writer("hup-app", &vol, &[]);
    let dir = tempdir();
    let out = dir.path().join("a.tar.zst");
    let mut child = tool_in(state.path())
        .args(["save", &vol.name, "--stop", "-o", out.to_str().unwrap()])
        .args(["--level", "19"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .start();
    wait_until(&mut child, "saving with the app stopped", || {
        !vol.helpers_left().is_empty() && status_of(&app) == "exited"
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "HUP");
    child.finish().fails_with(130, "interrupted");
    assert_running(&app);
    assert_eq!(vol.helpers_left(), "", "helper removed");
    assert!(files_in(dir.path()).is_empty(), "no partial file left");
    assert_eq!(journals(state.path()), "", "nothing left to recover");
}

#[test]
fn kill_during_save_stop_is_reported_and_recovered() {
    let state = tempdir();
    let vol = Volume::new("kill-save");
    vol.sh("echo hello > /data/x");
    let app = writer("kill-app", &vol, &[]);
    let dir = tempdir();
    let out = dir.path().join("a.tar.zst");
    let mut child = tool_in(state.path())
        .env("FAILPOINTS", "save-streaming=sleep(60000)")
        .args(["save", &vol.name, "--stop", "-o", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .start();
    wait_until(&mut child, "at the failpoint", || {
        let j = journals(state.path());
        j.contains("\"helper\"") && j.contains("\"partial\"") && !vol.helpers_left().is_empty()
    });
    child.kill().unwrap();
    child.finish();
    assert_eq!(
        status_of(&app),
        "exited",
        "the killed run left the app stopped"
    );
    assert_ne!(vol.helpers_left(), "", "and its helper");
    assert_eq!(files_in(dir.path()).len(), 1, "and a partial file");
    assert!(files_in(dir.path())[0].ends_with(".partial"));

    // The journal is the user's alone.
    let jdir = journal_dir(state.path());
    for f in files_in(&jdir) {
        let mode = std::fs::metadata(jdir.join(&f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let mode = std::fs::metadata(&jdir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    // The next run of any command says what was left, and how to finish it.
    let ls = tool_in(state.path()).arg("ls").run().ok();
    for needle in [
        "ended without cleaning up",
        &format!("container `{}` was stopped", app.name),
        "helper container",
        ".partial",
        "`docker-volume-backup recover`",
    ] {
        assert!(ls.stderr.contains(needle), "ls warns: {needle}\n{ls}");
    }
    let status = tool_in(state.path())
        .args(["status", dir.path().to_str().unwrap(), "--rpo", "1d"])
        .run();
    assert!(
        status.stderr.contains("ended without cleaning up"),
        "{status}"
    );

    let dry = tool_in(state.path())
        .args(["recover", "--dry-run"])
        .run()
        .ok();
    assert!(dry.stderr.contains("would start container"), "{dry}");
    assert_eq!(status_of(&app), "exited", "--dry-run changes nothing");

    let r = tool_in(state.path()).arg("recover").run().ok();
    assert!(
        r.stderr
            .contains(&format!("started container `{}`", app.name)),
        "{r}"
    );
    assert_running(&app);
    assert_eq!(vol.helpers_left(), "", "helper removed");
    assert!(files_in(dir.path()).is_empty(), "partial file removed");
    assert!(
        files_in(&jdir).is_empty(),
        "journal removed: {:?}",
        files_in(&jdir)
    );
    let ls = tool_in(state.path()).arg("ls").run().ok();
    assert!(!ls.stderr.contains("without cleaning up"), "{ls}");
    let again = tool_in(state.path()).arg("recover").run().ok();
    assert!(again.stderr.contains("nothing to recover"), "{again}");
}

#[test]
fn kill_in_the_swap_of_restore_force_is_finished_by_recover() {
    let state = tempdir();
    let src = awkward_volume("kill-src");
    let dir = tempdir();
    let archive = dir.path().join("a.tar.zst");
    run(&["save", &src.name, "-o", archive.to_str().unwrap(), "-q"]).ok();
    let dst = Volume::new("kill-dst");
    let _scratch = ScratchOf(dst.name.clone());
    dst.sh("echo old > /data/old");
    let mut child = tool_in(state.path())
        .env("FAILPOINTS", "restore-swap-emptied=sleep(60000)")
        .args(["restore", archive.to_str().unwrap(), &dst.name, "--force"])
        .stderr(Stdio::piped())
        .start();
    wait_until(&mut child, "in the swap", || {
        journals(state.path()).contains("\"swap\"")
    });
    // At the failpoint the target has been emptied: the scratch volume is the only copy.
    let start = Instant::now();
    while !dst.sh("ls -A /data").is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "never emptied");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.finish();
    let scratch: Vec<String> = docker(&["volume", "ls", "-q"])
        .lines()
        .filter(|v| v.starts_with("dvb-scratch-") && v.contains(&dst.name))
        .map(String::from)
        .collect();
    assert_eq!(scratch.len(), 1, "the data is in the scratch volume");

    let ls = tool_in(state.path()).arg("ls").run().ok();
    assert!(
        ls.stderr.contains(&format!(
            "the restored, verified data is in volume `{}`",
            scratch[0]
        )),
        "{ls}"
    );
    let r = tool_in(state.path()).arg("recover").run().ok();
    assert_eq!(dst.snapshot(), src.snapshot(), "the restore was finished");
    // The lock the killed run held goes too (not left for the next run to take over).
    assert!(
        r.stderr
            .contains(&format!("removed the run's lock on volume `{}`", dst.name)),
        "{r}"
    );
    assert_eq!(
        docker_run(&["container", "inspect", &format!("dvb-lock-{}", dst.name)]).code,
        1,
        "lock removed"
    );
    assert_eq!(
        docker_run(&["volume", "inspect", &scratch[0]]).code,
        1,
        "scratch volume removed"
    );
    assert_eq!(dst.helpers_left(), "");
    assert!(files_in(&journal_dir(state.path())).is_empty());
}

#[test]
fn a_second_ctrl_c_in_the_swap_of_restore_force_does_not_abandon_the_data() {
    let state = tempdir();
    let src = Volume::new("twice-src");
    src.sh("head -c 200000000 /dev/urandom > /data/big; echo small > /data/small");
    let dir = tempdir();
    let archive = dir.path().join("a.tar");
    run(&["save", &src.name, "-o", archive.to_str().unwrap(), "-q"]).ok();
    let dst = Volume::new("twice-dst");
    let _scratch = ScratchOf(dst.name.clone());
    dst.sh("echo old > /data/old");
    let mut child = tool_in(state.path())
        .args(["restore", archive.to_str().unwrap(), &dst.name, "--force"])
        .stderr(Stdio::piped())
        .start();
    wait_until(&mut child, "in the swap", || {
        journals(state.path()).contains("\"swap\"")
    });
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let r = child.finish();
    assert!(
        r.stderr.contains("the restored data is only in volume"),
        "{r}"
    );
    assert_eq!(r.code, 0, "the swap was finished\n{r}");
    assert_eq!(dst.snapshot(), src.snapshot());
    assert!(files_in(&journal_dir(state.path())).is_empty());
}

/// Kills a restore at the failpoint `restore-filling` once the journal shows `phase`.
fn kill_while_filling(state: &Path, archive: &Path, target: &str, force: bool, phase: &str) {
    let mut c = tool_in(state);
    c.env("FAILPOINTS", "restore-filling=sleep(60000)").args([
        "restore",
        archive.to_str().unwrap(),
        target,
    ]);
    if force {
        c.arg("--force");
    }
    let mut child = c.stderr(Stdio::piped()).start();
    let needle = format!("\"phase\": \"{phase}\"");
    // A helper on the target, or on the scratch volume named after it.
    let helper_on_it = || {
        docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label={HELPER_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{HELPER_LABEL}.volume\"}}}}"),
        ])
        .lines()
        .any(|v| v.contains(target))
    };
    wait_until(&mut child, "filling", || {
        journals(state).contains(&needle) && helper_on_it()
    });
    child.kill().unwrap();
    child.finish();
}

#[test]
fn kill_while_restoring_into_a_new_volume_is_undone_by_recover() {
    let state = tempdir();
    let src = Volume::new("new-src");
    src.sh("echo data > /data/x");
    let dir = tempdir();
    let archive = dir.path().join("a.tar.zst");
    run(&["save", &src.name, "-o", archive.to_str().unwrap(), "-q"]).ok();
    let dst = Volume::named("new-dst");
    kill_while_filling(state.path(), &archive, &dst.name, false, "created");
    assert!(dst.exists(), "the killed run left the volume it created");

    let ls = tool_in(state.path()).arg("ls").run().ok();
    assert!(
        ls.stderr
            .contains(&format!("volume `{}` was created by the restore", dst.name)),
        "{ls}"
    );
    let r = tool_in(state.path()).arg("recover").run().ok();
    assert!(!dst.exists(), "the incomplete volume is removed\n{r}");
    assert_eq!(dst.helpers_left(), "");
    assert!(files_in(&journal_dir(state.path())).is_empty());
}

#[test]
fn kill_while_filling_the_scratch_volume_is_rolled_back_by_recover() {
    let state = tempdir();
    let src = Volume::new("roll-src");
    src.sh("echo new > /data/x");
    let dir = tempdir();
    let archive = dir.path().join("a.tar.zst");
    run(&["save", &src.name, "-o", archive.to_str().unwrap(), "-q"]).ok();
    let dst = Volume::new("roll-dst");
    let _scratch = ScratchOf(dst.name.clone());
    dst.sh("echo old > /data/old");
    let before = dst.snapshot();
    kill_while_filling(state.path(), &archive, &dst.name, true, "scratch");
    let scratch = format!("dvb-scratch-{}", dst.name);
    let scratch: Vec<String> = docker(&["volume", "ls", "-q"])
        .lines()
        .filter(|v| v.starts_with(&scratch))
        .map(String::from)
        .collect();
    assert_eq!(scratch.len(), 1, "the killed run left its scratch volume");
    assert_ne!(helpers_of(&scratch[0]), "", "and a helper on it");

    tool_in(state.path()).arg("recover").run().ok();
    assert_eq!(dst.snapshot(), before, "the target is untouched");
    assert_eq!(
        docker_run(&["volume", "inspect", &scratch[0]]).code,
        1,
        "scratch volume removed"
    );
    assert_eq!(helpers_of(&scratch[0]), "");
    assert!(files_in(&journal_dir(state.path())).is_empty());
}
