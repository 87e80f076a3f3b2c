//! A small harness over the real engine and the real binary: unique names per test, guards that
//! remove what a test made, and a busybox image imported locally (nothing is pulled).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_docker-volume-backup");
pub const HELPER_LABEL: &str = "org.docker-volume-backup.helper";

/// The finished run of a command.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success, stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32, needle: &str) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, stderr:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "expected stderr to mention {needle:?}, got:\n{}",
            self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The tool, with a clean Docker environment (tests pick their own context).
pub fn tool() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND",
        "DOCKER_CLI_PLUGIN_SOCKET",
    ] {
        c.env_remove(var);
    }
    c.stdin(Stdio::null());
    c
}

/// Runs the tool with `args`.
pub fn run(args: &[&str]) -> Run {
    tool().args(args).output().expect("run the tool").into()
}

/// Runs the tool in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    tool()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run the tool")
        .into()
}

/// Runs `docker` with `args`, panicking on failure.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `docker` with `args`, returning the run whatever happened.
pub fn docker_run(args: &[&str]) -> Run {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run docker")
        .into()
}

/// The busybox image the tests use, imported from Debian's busybox-static once per run.
pub fn busybox() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/busybox-image.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("dvb-test-busybox:latest")
            .env("QUIET", "1")
            .output()
            .expect("run scripts/busybox-image.sh");
        assert!(
            out.status.success(),
            "cannot import the busybox test image (run scripts/test-deps.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// A named volume that is removed when the guard drops (with any container still using it).
pub struct Volume {
    pub name: String,
}

impl Volume {
    /// Creates a new empty volume.
    pub fn new(tag: &str) -> Volume {
        let v = Volume::named(tag);
        docker(&["volume", "create", &v.name]);
        v
    }

    /// A unique name whose volume the test expects the tool to create (removed at the end).
    pub fn named(tag: &str) -> Volume {
        Volume { name: unique(tag) }
    }

    pub fn exists(&self) -> bool {
        docker_run(&["volume", "inspect", &self.name]).code == 0
    }

    /// Runs a shell script in a busybox container with the volume at /data.
    #[track_caller]
    pub fn sh(&self, script: &str) -> String {
        let mount = format!("{}:/data", self.name);
        docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--log-driver",
            "none",
            "-v",
            &mount,
            busybox(),
            "sh",
            "-euc",
            script,
        ])
    }

    /// Every entry of the volume, root included: path, type, owner, mode, mtime, size, link
    /// count, and the link target or content hash. Equal snapshots mean equal volumes.
    pub fn snapshot(&self) -> String {
        self.sh(
            r#"cd /data && find . | LC_ALL=C sort | while IFS= read -r f; do
                 stat -c '%n|%F|%u:%g|%a|%Y|%s|%h' "$f"
                 if [ -L "$f" ]; then echo "-> $(readlink "$f")";
                 elif [ -f "$f" ]; then md5sum < "$f"; fi
               done"#,
        )
    }

    /// Helper containers of the tool still around for this volume.
    pub fn helpers_left(&self) -> String {
        helpers_of(&self.name)
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        // Containers a test left using the volume (helpers included) go first.
        let ids = docker_run(&["ps", "-aq", "--filter", &format!("volume={}", self.name)]);
        for id in ids.stdout_str().split_whitespace() {
            let _ = docker_run(&["rm", "-f", id]);
        }
        let _ = docker_run(&["volume", "rm", "-f", &self.name]);
    }
}

/// A container guard (removed on drop).
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker create`s a busybox container mounting `volume` at /data.
    pub fn create(tag: &str, volume: &Volume) -> Container {
        let name = unique(tag);
        let mount = format!("{}:/data", volume.name);
        docker(&[
            "create",
            "--name",
            &name,
            "--network",
            "none",
            "-v",
            &mount,
            busybox(),
            "sleep",
            "600",
        ]);
        Container { name }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker_run(&["rm", "-f", &self.name]);
    }
}

/// A temporary directory for archives.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Files in a directory (names), sorted.
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

/// Fills a volume with the awkward things the README promises to keep.
pub fn awkward_volume(tag: &str) -> Volume {
    let v = Volume::new(tag);
    v.sh(r#"
        cd /data
        chown 999:998 . && chmod 0750 .
        mkdir -p dir/empty 'with space' "$(printf 'tab\there')" 'ünïcødé' deep/a/b/c
        echo hello > dir/file.txt
        echo spaced > 'with space/a b.txt'
        echo tabbed > "$(printf 'tab\there')/$(printf 'x\ty')"
        echo utf > 'ünïcødé/日本語.txt'
        ln -s ../dir/file.txt deep/rel-link
        ln -s /etc/passwd abs-link
        ln -s ../../../../../../lib/x climbing-link
        ln dir/file.txt hardlink
        mkfifo fifo
        touch setuid && chmod 4755 setuid
        touch sgid && chmod 2750 sgid
        touch owned && chown 1234:5678 owned && chmod 0600 owned
        long=$(printf 'n%.0s' $(seq 1 150))
        mkdir -p "deep/$long" && echo long > "deep/$long/$(printf 'm%.0s' $(seq 1 120))"
        head -c 300000 /dev/urandom > deep/a/b/c/random.bin
        touch -d '2001-02-03 04:05:06' dir/file.txt old
        chmod 0555 deep/a
    "#);
    v
}

/// Waits until `ready` holds while `child` runs, then sends it SIGINT and collects it.
pub fn interrupt_after(mut child: std::process::Child, wait_for: impl Fn() -> bool) -> Run {
    let start = Instant::now();
    while !wait_for() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never got going"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("finished before it could be interrupted: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    child.wait_with_output().unwrap().into()
}

/// Helper containers of the tool for the volume called `volume`.
pub fn helpers_of(volume: &str) -> String {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label={HELPER_LABEL}.volume={volume}"),
    ])
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

/// The compose tool on this machine: `docker compose` when the CLI has it, else `docker-compose`
/// (scripts/test-deps.sh installs it when neither is there).
pub fn compose() -> Command {
    static V2: OnceLock<bool> = OnceLock::new();
    let v2 = *V2.get_or_init(|| {
        Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut c = if v2 {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    c.stdin(Stdio::null());
    c
}

/// `docker inspect` of one field of a container (a Go template such as `{{.State.StartedAt}}`).
#[track_caller]
pub fn container_field(name: &str, template: &str) -> String {
    docker(&["inspect", "-f", template, name])
        .trim()
        .to_string()
}
