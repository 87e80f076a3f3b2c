//! The plugin protocol with the real docker CLI: handshake, help, global flags.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// A docker config dir with the plugin installed as `docker-volumebackup`.
fn plugin_config() -> tempfile::TempDir {
    let dir = tempdir();
    let plugins = dir.path().join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::os::unix::fs::symlink(BIN, plugins.join("docker-volumebackup")).unwrap();
    dir
}

fn docker_cli(config: &Path, args: &[&str]) -> Run {
    let mut c = Command::new("docker");
    c.env_remove("DOCKER_HOST").env_remove("DOCKER_CONTEXT");
    c.arg("--config").arg(config).args(args);
    c.run()
}

#[test]
fn metadata_handshake_is_instant_and_offline() {
    // Pointing at a daemon that does not exist proves it is never contacted.
    let out = tool()
        .env("DOCKER_HOST", "tcp://192.0.2.1:9")
        .arg("docker-cli-plugin-metadata")
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["SchemaVersion"], "0.1.0");
    assert_eq!(v["Vendor"], "docker-volume-backup");
    assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
    assert!(out.stderr.is_empty());
}

#[test]
fn docker_cli_runs_the_plugin() {
    let config = plugin_config();
    let listed = docker_cli(config.path(), &["--help"]).ok();
    let text = listed.stdout_str() + &listed.stderr;
    assert!(
        text.lines()
            .any(|l| l.contains("volumebackup*") || l.trim_start().starts_with("volumebackup")),
        "docker --help lists the plugin:\n{text}"
    );
    let help = docker_cli(config.path(), &["volumebackup", "--help"]).ok();
    assert!(
        help.stdout_str().contains("restore"),
        "{}",
        help.stdout_str()
    );
    let help = docker_cli(config.path(), &["help", "volumebackup"]).ok();
    assert!(help.stdout_str().contains("save"), "{}", help.stdout_str());

    // Global flags before the plugin name are honoured: -H and -D, --context.
    let v = Volume::new("plugin-ls");
    let ls = docker_cli(
        config.path(),
        &[
            "-H",
            "unix:///var/run/docker.sock",
            "-D",
            "volumebackup",
            "ls",
        ],
    )
    .ok();
    assert!(ls.stdout_str().contains(&v.name), "{}", ls.stdout_str());
    assert!(ls.stderr.contains("debug: connecting to"), "{}", ls.stderr);
    let bad = docker_cli(
        config.path(),
        &["-H", "unix:///nonexistent.sock", "volumebackup", "ls"],
    );
    bad.fails_with(3, "unix:///nonexistent.sock");
    docker_cli(
        config.path(),
        &[
            "--context",
            "default",
            "volumebackup",
            "ls",
            "--format",
            "json",
        ],
    )
    .ok();

    // A save and a restore through the plugin.
    v.sh("echo via-plugin > /data/f");
    let dir = tempdir();
    let file = dir.path().join("p.tar.zst");
    docker_cli(
        config.path(),
        &[
            "volumebackup",
            "save",
            &v.name,
            "-o",
            file.to_str().unwrap(),
        ],
    )
    .ok();
    let dst = Volume::named("plugin-dst");
    docker_cli(
        config.path(),
        &["volumebackup", "restore", file.to_str().unwrap(), &dst.name],
    )
    .ok();
    assert_eq!(dst.sh("cat /data/f"), "via-plugin\n");
}

#[test]
fn cancelling_the_docker_cli_stops_the_plugin_cleanly() {
    // Without a terminal, the docker CLI answers SIGINT by closing the plugin socket: the plugin
    // must notice, remove its helper and leave no archive.
    let config = plugin_config();
    let src = Volume::new("plugin-cancel");
    src.sh("head -c 120000000 /dev/urandom > /data/big");
    let dir = tempdir();
    let out = dir.path().join("c.tar.zst");
    let child = Command::new("docker")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .arg("--config")
        .arg(config.path())
        .args([
            "volumebackup",
            "save",
            &src.name,
            "-o",
            out.to_str().unwrap(),
            "--level",
            "19",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .start();
    let name = src.name.clone();
    let r = interrupt_after(child, || !helpers_of(&name).is_empty());
    r.fails_with(130, "interrupted");
    assert_eq!(src.helpers_left(), "");
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}
