//! A second Docker engine on this machine, a real other host for `migrate` without a registry or
//! a VM.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{tempdir, Run, RunExt, Running};

/// A second Docker engine on this machine (its own data root, socket, containerd and bridge, the
/// `vfs` storage driver, no iptables). Stopped, and its data and bridge removed, on drop.
///
/// Never `--bridge none`: a dockerd started so deletes the host's `docker0`, the machine engine's
/// own bridge. It gets a bridge of its own instead, in an address range nothing else uses.
pub struct SecondEngine {
    child: Running,
    dir: tempfile::TempDir,
    bridge: String,
}

impl SecondEngine {
    pub fn start() -> SecondEngine {
        let dir = tempdir();
        let d = dir.path();
        let bridge = format!("dvbt{}", std::process::id() % 1_000_000);
        Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .run()
            .expect_ok("cannot make a bridge for the second engine (needs root, iproute2)");
        // dockerd takes the bridge's address (-b excludes --bip).
        let _ = Command::new("ip")
            .args(["addr", "add", "100.127.253.1/29", "dev", &bridge])
            .output();
        // An empty config file, so that /etc/docker/daemon.json (data root, storage driver of the
        // machine's engine) does not apply.
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args(["--storage-driver", "vfs", "--bridge", &bridge])
            .args(["--iptables=false", "--ip-masq=false", "--ip-forward=false"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("dockerd.log")).unwrap())
            .start();
        let engine = SecondEngine { child, dir, bridge };
        let started = Instant::now();
        while engine.docker(&["version"]).code != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the second engine did not start: {}",
                std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// Runs `docker` against this engine.
    pub fn docker(&self, args: &[&str]) -> Run {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .run()
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its own containerd; then its files go with the temp dir.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        // dockerd bind-mounts its data root; a dockerd that died early leaves that mount behind.
        let _ = Command::new("umount")
            .arg(self.dir.path().join("data"))
            .output();
    }
}
