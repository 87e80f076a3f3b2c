//! Podman's Docker-compatible API on a temporary socket: `podman system service` with a storage
//! root, run root and socket of its own, so nothing of the machine's Podman (if any) is touched.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{unique, Contexts, Run, RunExt, Running, AWKWARD, SNAPSHOT};

/// A rootful Podman service (`vfs` storage, cgroupfs, file events: nothing of systemd or
/// journald is needed). Stopped, and its storage removed, on drop.
pub struct PodmanEngine {
    child: Running,
    dir: tempfile::TempDir,
    /// The user a rootless service runs as (uid, gid).
    user: Option<(u32, u32)>,
}

/// The user the rootless tests run Podman as: `DVB_ROOTLESS_USER`, else `dvb-rootless`, which
/// scripts/test-deps.sh creates without subordinate ids.
pub fn rootless_user() -> (u32, u32) {
    user_ids(&std::env::var("DVB_ROOTLESS_USER").unwrap_or_else(|_| "dvb-rootless".into()))
}

/// The user with subordinate ids: `DVB_ROOTLESS_IDS_USER`, else `dvb-rootless-ids`, which
/// scripts/test-deps.sh creates with ids 1000000-1065535 in /etc/subuid and /etc/subgid; its uid
/// and gid, and the first subordinate uid and gid.
pub fn rootless_ids_user() -> ((u32, u32), (u32, u32)) {
    let name = std::env::var("DVB_ROOTLESS_IDS_USER").unwrap_or_else(|_| "dvb-rootless-ids".into());
    let first = |file: &str| -> u32 {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name.as_str())).then(|| f.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no range of `{name}` in {file} (run scripts/test-deps.sh)"))
    };
    (
        user_ids(&name),
        (first("/etc/subuid"), first("/etc/subgid")),
    )
}

fn user_ids(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        Command::new("id")
            .args([flag, name])
            .run()
            .expect_ok(&format!(
                "no user `{name}` for the rootless Podman tests (run scripts/test-deps.sh)"
            ))
            .stdout_str()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

impl PodmanEngine {
    pub fn start() -> PodmanEngine {
        Self::launch(None)
    }

    /// A rootless service: run as [`rootless_user`], its storage in a directory of its own. That
    /// user has no subordinate id ranges here, so only files owned by root (mapped to the user)
    /// can be created in its volumes.
    pub fn start_rootless() -> PodmanEngine {
        Self::launch(Some(rootless_user()))
    }

    /// A rootless service as [`rootless_ids_user`], whose subordinate ids map the owners of its
    /// volumes: uid n > 0 in its namespace is subordinate id first + n - 1 on the host.
    pub fn start_rootless_with_ids() -> PodmanEngine {
        Self::launch(Some(rootless_ids_user().0))
    }

    fn launch(user: Option<(u32, u32)>) -> PodmanEngine {
        // Under /tmp, which every user can reach (a TMPDIR under /root would shut the rootless
        // user out).
        let dir = tempfile::Builder::new()
            .prefix("dvb-podman-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let d = dir.path();
        // Podman sets RLIMIT_NOFILE and RLIMIT_NPROC of every container to the maximum, which
        // sandboxes refuse ("error setting rlimit type 7"); lower ones can be set.
        let conf = d.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n",
        )
        .unwrap();
        if let Some((uid, gid)) = user {
            std::fs::create_dir(d.join("xdg")).unwrap();
            Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(d)
                .run()
                .expect_ok("chown");
        }
        let child = Self::serve(user, d);
        let engine = PodmanEngine { child, dir, user };
        engine.wait_ready();
        engine
    }

    /// `podman system service` on `d`'s socket.
    fn serve(user: Option<(u32, u32)>, d: &std::path::Path) -> Running {
        Self::podman_as(user, d)
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", d.join("podman.sock").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("podman.log")).unwrap())
            .start()
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        while self.docker(&["version"]).code != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "podman system service did not start (apt-get install podman): {}",
                std::fs::read_to_string(self.dir.path().join("podman.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the service, as a crash or a restart would; its storage stays.
    pub fn stop_service(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the service again on the same socket and storage.
    pub fn start_service(&mut self) {
        self.child = Self::serve(self.user, self.dir.path());
        self.wait_ready();
    }

    /// `podman` with the storage in `d`, as `user` (rootless) or root.
    fn podman_as(user: Option<(u32, u32)>, d: &std::path::Path) -> Command {
        let mut c = match user {
            None => Command::new("podman"),
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid",
                    &uid.to_string(),
                    "--regid",
                    &gid.to_string(),
                    "--clear-groups",
                    "podman",
                ]);
                c.env("HOME", d)
                    .env("XDG_RUNTIME_DIR", d.join("xdg"))
                    .env("XDG_CONFIG_HOME", d.join("xdg"))
                    .env("XDG_DATA_HOME", d.join("xdg"));
                c
            }
        };
        c.env("CONTAINERS_CONF", d.join("containers.conf"))
            .args(Self::global_args(d));
        c
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
        Self::podman_as(self.user, self.dir.path()).args(args).run()
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

    /// Creates a volume on this engine (removed with the engine's storage on drop).
    pub fn volume(&self, tag: &str) -> String {
        let name = unique(tag);
        self.docker(&["volume", "create", &name])
            .expect_ok("creating a podman volume");
        name
    }

    /// Runs a shell script as root on the host in the volume's directory. Then every entry's
    /// mtime is cut to whole seconds, as a restore through an engine leaves them: Podman's
    /// archive GET rounds a fraction to the nearest second (Docker's cuts it), so a file the host
    /// wrote at .6 s would read back one second later.
    #[track_caller]
    pub fn sh(&self, volume: &str, script: &str) -> String {
        self.run_sh(
            volume,
            &format!(
                "{script}\nfind . | while IFS= read -r f; do \
                 touch -h -d \"@$(stat -c %Y \"$f\")\" \"$f\"; done"
            ),
        )
    }

    #[track_caller]
    fn run_sh(&self, volume: &str, script: &str) -> String {
        Command::new("sh")
            .args(["-euc", script])
            .current_dir(self.volume_dir(volume))
            .run()
            .expect_ok("a script in a podman volume")
            .stdout_str()
    }

    /// Every entry of the volume as [`super::Volume::snapshot`] lists it.
    pub fn snapshot(&self, volume: &str) -> String {
        self.run_sh(volume, SNAPSHOT)
    }

    /// A volume holding the awkward fixture and a name that is not UTF-8.
    pub fn awkward(&self, tag: &str) -> String {
        let v = self.volume(tag);
        self.sh(&v, AWKWARD);
        self.sh(&v, NOT_UTF8);
        v
    }

    /// Imports the busybox test image into this engine (`docker import` through the service, as
    /// scripts/busybox-image.sh does for Docker); returns its name.
    pub fn busybox(&self) -> &'static str {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
        Command::new("bash")
            .arg(script)
            .arg("dvb-test-busybox:latest")
            .env("QUIET", "1")
            .env("DOCKER_HOST", self.host())
            .run()
            .expect_ok("cannot import the busybox test image into podman");
        "dvb-test-busybox:latest"
    }

    /// A Docker config dir with contexts `dock` (the local engine) and `pod` (this service).
    pub fn contexts(&self) -> Contexts {
        let ctx = Contexts::new();
        ctx.create("dock", "host=unix:///var/run/docker.sock");
        ctx.create("pod", &format!("host={}", self.host()));
        ctx
    }
}

/// Makes a file whose name is not UTF-8 in the current directory.
pub const NOT_UTF8: &str = r#"echo latin1 > "$(printf 'caf\351-\377')""#;

impl Drop for PodmanEngine {
    fn drop(&mut self) {
        // Containers a test started run under conmon, not under the service: removed first.
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
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
        // The conmon of each exec session waits 300 s (`--exit-delay`) before cleaning it up:
        // those of this engine (its directory on their command line) go with it.
        let base = self.dir.path().display().to_string();
        for proc in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = proc.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(proc.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let conmon = cmdline
                .split('\0')
                .next()
                .is_some_and(|a| a.ends_with("conmon"));
            // A rootless service leaves its user namespace's pause process (`podman`, pid in
            // `$XDG_RUNTIME_DIR/libpod/tmp/pause.pid`), whose environment names this directory.
            let pause = self.user.is_some()
                && cmdline.split('\0').next() == Some("podman")
                && String::from_utf8_lossy(
                    &std::fs::read(proc.path().join("environ")).unwrap_or_default(),
                )
                .contains(&base);
            if (conmon && cmdline.contains(&base)) || pause {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        // Anything podman left mounted under its directories (shm of the run root).
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
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
