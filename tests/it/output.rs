//! stdout is data: a reader that leaves before the tool writes (`ls | head -1`) is neither a
//! panic nor a failure.

use std::process::Stdio;

use crate::harness::*;

/// Runs the tool with stdout a pipe whose read end is already closed.
fn with_stdout_closed(args: &[&str]) -> Run {
    let mut child = tool()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .start();
    drop(child.stdout.take());
    child.finish()
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    // At least one row, so the listing has something to write.
    let _volume = Volume::new("closed-stdout");
    for args in [
        &["ls", "--format", "json"][..],
        &["ls"],
        &["docker-cli-plugin-metadata"],
    ] {
        let run = with_stdout_closed(args);
        assert!(
            !run.stderr.contains("panicked"),
            "{args:?} panicked:\n{}",
            run.stderr
        );
        assert_eq!(run.code, 0, "{args:?} exit code, stderr:\n{}", run.stderr);
        assert!(
            !run.stderr.contains("error"),
            "{args:?} reported an error:\n{}",
            run.stderr
        );
    }
}

/// A reader that leaves early does not hide a missed RPO: `status` still exits 8.
#[test]
fn a_closed_stdout_keeps_the_status_verdict() {
    let volume = Volume::new("closed-stdout-rpo");
    let dest = tempfile::tempdir().unwrap();
    let dest = dest.path().to_str().unwrap();
    let run = with_stdout_closed(&["status", dest, "--rpo", "1h", "--volume", &volume.name]);
    assert_eq!(run.code, 8, "{run}");
    assert!(run.stderr.contains("miss the RPO"), "{run}");
    assert!(!run.stderr.contains("panicked"), "{run}");
}
