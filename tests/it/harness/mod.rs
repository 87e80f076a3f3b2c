//! A small harness over the real engine and the real binary: unique names per test, guards that
//! remove what a test made, a busybox image imported locally (nothing is pulled), and the
//! fixtures the tests share (one file each). Test modules import only from here.

mod compose;
mod contexts;
mod cutting_proxy;
mod db;
mod engine;
mod http;
mod podman;
mod rest;
mod restic;
mod run;
mod s3;
mod sshd;
mod tls;
mod volume;

pub use compose::{compose, compose_volume, Project};
pub use contexts::Contexts;
pub use cutting_proxy::{CuttingProxy, DroppingProxy};
pub use db::{db_image, sql_in, DbServer};
pub use engine::SecondEngine;
pub use http::Recorder;
pub use podman::{rootless_ids_user, PodmanEngine, NOT_UTF8};
pub use rest::{FlakyProxy, RestServer, REST_PASSWORD, REST_USER};
pub use restic::{engine_identity, ResticRepo, RESTIC_PASSWORD};
pub use run::*;
pub use s3::S3Server;
pub use sshd::Sshd;
pub use tls::{certificates, start_proxy, TlsProxy};
pub use volume::*;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The identity the tool computes for the engine `docker [-H host]` reaches, from what its
/// `/info` says (`podman` for a Podman service).
pub fn engine_identity_of(
    host: Option<&str>,
    podman: bool,
) -> docker_volume_backup::docker::EngineIdentity {
    use docker_volume_backup::docker::{EngineIdentity, Flavour};
    let mut cmd = Command::new("docker");
    if let Some(h) = host {
        cmd.args(["-H", h]);
    }
    let info = cmd
        .args(["info", "--format", "{{.ID}}|{{.Name}}|{{.DockerRootDir}}"])
        .run()
        .expect_ok("docker info")
        .stdout_str();
    let parts: Vec<&str> = info.trim().splitn(3, '|').collect();
    let flavour = if podman {
        Flavour::Podman
    } else {
        Flavour::Docker
    };
    EngineIdentity::new(flavour, parts[0], parts[1], parts[2])
}

/// The label the tool gives the engine `docker [-H host]` reaches (archive names, `backups`,
/// `status`, restic's host).
pub fn engine_label(host: Option<&str>, podman: bool) -> String {
    engine_identity_of(host, podman).label()
}

/// The label of the engine the tests run against.
pub fn docker_label() -> String {
    static LABEL: OnceLock<String> = OnceLock::new();
    LABEL.get_or_init(|| engine_label(None, false)).clone()
}

/// The busybox image the tests use, imported from Debian's busybox-static once per run.
pub fn busybox() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
        Command::new("bash")
            .arg(script)
            .arg("dvb-test-busybox:latest")
            .env("QUIET", "1")
            .run()
            .expect_ok("cannot import the busybox test image (run scripts/test-deps.sh)");
        "dvb-test-busybox:latest".to_string()
    })
}

/// A unique name for something a test makes.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "dvbt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory for archives.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Files in a directory (names), sorted.
/// The tool's journal directory under the state directory `state` (`XDG_STATE_HOME`).
pub fn journal_dir(state: &Path) -> PathBuf {
    state.join("docker-volume-backup/runs")
}

/// The text of the journals in the state directory `state`.
pub fn journals(state: &Path) -> String {
    let dir = journal_dir(state);
    files_in(&dir)
        .iter()
        .filter(|f| f.ends_with(".json"))
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect()
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The single archive a save wrote into `dir`.
#[track_caller]
pub fn only_archive(dir: &Path) -> PathBuf {
    let files = files_in(dir);
    assert_eq!(
        files.len(),
        1,
        "expected one file in {}: {files:?}",
        dir.display()
    );
    dir.join(&files[0])
}

/// A seed-style archive (`tar czf`, no manifest) at `path` holding one file `./x`.
pub fn seed_style_archive(path: &Path) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    {
        let mut b = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_ustar();
        h.set_size(1);
        b.append_data(&mut h, "./x", &b"x"[..]).unwrap();
        b.finish().unwrap();
    }
    gz.finish().unwrap();
}

/// Waits until `ready` holds while `child` runs, then sends it SIGINT and collects it.
pub fn interrupt_after(mut child: Running, wait_for: impl Fn() -> bool) -> Run {
    let start = Instant::now();
    while !wait_for() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        if let Ok(Some(_)) = child.try_wait() {
            panic!(
                "finished before it could be interrupted\n{}",
                child.finish()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    child.finish()
}

/// A loopback port free a moment ago (another process may take it before it is used).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to `limit` for something to listen on the loopback `port`; false if nothing did.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}
