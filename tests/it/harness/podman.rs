//! Podman's Docker-compatible API on a temporary socket: `podman system service` with a storage
//! root, run root and socket of its own, so nothing of the machine's Podman (if any) is touched.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{tempdir, Run, RunExt, Running};

/// A rootful Podman service (`vfs` storage, cgroupfs, file events: nothing of systemd or
/// journald is needed). Stopped, and its storage removed, on drop.
pub struct PodmanEngine {
    child: Running,
    dir: tempfile::TempDir,
}

#[allow(dead_code)] // used by the Podman tests as they land
impl PodmanEngine {
    pub fn start() -> PodmanEngine {
        let dir = tempdir();
        let d = dir.path();
        let socket = d.join("podman.sock");
        let child = Command::new("podman")
            .args(Self::global_args(d))
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("podman.log")).unwrap())
            .start();
        let engine = PodmanEngine { child, dir };
        let started = Instant::now();
        while engine.docker(&["version"]).code != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "podman system service did not start (apt-get install podman): {}",
                std::fs::read_to_string(engine.dir.path().join("podman.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    fn global_args(d: &std::path::Path) -> Vec<String> {
        vec![
            "--root".into(),
            d.join("root").display().to_string(),
            "--runroot".into(),
            d.join("run").display().to_string(),
            "--tmpdir".into(),
            d.join("tmp").display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
        ]
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    /// `unix:///.../podman.sock`, for `-H` or `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Runs the `docker` CLI against this Podman service.
    pub fn docker(&self, args: &[&str]) -> Run {
        Command::new("docker")
            .arg("-H")
            .arg(self.host())
            .args(args)
            .run()
    }

    /// Runs the `podman` CLI on the same storage (not through the service).
    pub fn podman(&self, args: &[&str]) -> Run {
        Command::new("podman")
            .args(Self::global_args(self.dir.path()))
            .args(args)
            .run()
    }

    /// The host directory of a volume (rootful Podman keeps it under its storage root): tests
    /// fill volumes through it, since `podman run` cannot start containers on every machine.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.dir
            .path()
            .join("root/volumes")
            .join(volume)
            .join("_data")
    }
}

impl Drop for PodmanEngine {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Anything podman left mounted under its directories (shm of the run root).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let base = self.dir.path().display().to_string();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&base))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").arg("-l").arg(m).output();
        }
    }
}
