//! Volumes and containers a test makes, removed when their guards drop; the awkward volume the
//! README promises to keep; the tool's helper containers still around.

use super::{busybox, container_field, docker, docker_run, unique};

pub const HELPER_LABEL: &str = "org.docker-volume-backup.helper";

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
        self.sh(&format!("cd /data && {SNAPSHOT}"))
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
        // A lock a killed run left.
        let _ = docker_run(&["rm", "-f", &format!("dvb-lock-{}", self.name)]);
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

/// The awkward things the README promises to keep, made in the current directory (a volume's
/// root) by a POSIX shell as root (busybox in a container, or the host's for a Podman volume).
pub const AWKWARD: &str = r#"
        chown 999:998 . && chmod 0750 .
        mkdir -p dir/empty 'with space' "$(printf 'tab\there')" 'ünïcødé' deep/a/b/c
        echo hello > dir/file.txt
        echo spaced > 'with space/a b.txt'
        echo tabbed > "$(printf 'tab\there')/$(printf 'x\ty')"
        echo utf > 'ünïcødé/日本語.txt'
        ln -s ../dir/file.txt deep/rel-link
        ln -s /etc/passwd abs-link
        ln -s ../../../../../../lib/x climbing-link
        ln -s / root-link && ln -s 'a//b/./c/' odd-link
        ln -s "$(printf 'l%.0s' $(seq 1 130))//tail" long-link
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
    "#;

/// What [`Volume::snapshot`] runs in a volume's root.
pub const SNAPSHOT: &str = r#"find . | LC_ALL=C sort | while IFS= read -r f; do
                 stat -c '%n|%F|%u:%g|%a|%Y|%s|%h' "$f"
                 if [ -L "$f" ]; then echo "-> $(readlink "$f")";
                 elif [ -f "$f" ]; then md5sum < "$f"; fi
               done"#;

/// Fills a volume with the awkward things the README promises to keep.
pub fn awkward_volume(tag: &str) -> Volume {
    let v = Volume::new(tag);
    v.sh(&format!("cd /data\n{AWKWARD}"));
    v
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

/// A busybox loop that appends a counter to /data/log every 0.1 s and exits on SIGTERM (a shell
/// as PID 1 would otherwise be killed only after the stop timeout).
pub const WRITER: &str = "trap 'exit 0' TERM; i=$(wc -l < /data/log 2>/dev/null || echo 0); \
                      while true; do i=$((i+1)); echo $i >> /data/log; sleep 0.1; done";

/// A running busybox writer on `volume`, removed on drop.
pub fn writer(tag: &str, volume: &Volume, labels: &[&str]) -> Container {
    let name = unique(tag);
    let mount = format!("{}:/data", volume.name);
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-v",
        &mount,
    ];
    for l in labels {
        args.extend(["--label", l]);
    }
    args.extend([busybox(), "sh", "-c", WRITER]);
    docker(&args);
    Container { name }
}

#[track_caller]
pub fn assert_running(c: &Container) {
    assert_eq!(
        container_field(&c.name, "{{.State.Status}}"),
        "running",
        "{} runs",
        c.name
    );
}
