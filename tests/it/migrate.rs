//! Remote endpoints and moving volumes between engines: a real sshd on loopback with keys made for
//! the test, `ssh://` contexts made by the real `docker context create` that point back at the
//! local engine, TLS contexts (verified and not) through the TLS terminator, and `migrate` /
//! `clone` between them, including a transfer cut midway.
//!
//! The user's own `~/.ssh` is never read: OpenSSH takes the home directory from the password
//! database, not `$HOME`, so the tool's runs get a `PATH` whose first `ssh` is a wrapper that adds
//! `-F <the test's config>` (the tool runs `ssh` from `PATH`, as the docker CLI does).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// An sshd on 127.0.0.1 that lets the test's key log in as the current user; killed on drop.
pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// A directory whose `ssh` runs the system ssh with the test's config.
    bin: PathBuf,
    user: String,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempdir();
        let d = dir.path();
        let keygen = |file: &str| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "dvb-test", "-f"])
                .arg(d.join(file))
                .output()
                .expect("ssh-keygen (openssh-client; run scripts/test-deps.sh)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        keygen("host_key");
        keygen("id");
        keygen("id_nodocker");
        keygen("id_unknown");
        // The remote docker CLI gets an empty config dir, so no context the machine's user may have
        // selected leaks in; the second key logs in with a PATH that has no docker.
        let remote_config = d.join("remote-docker-config");
        std::fs::create_dir(&remote_config).unwrap();
        let pubkey = |file: &str| std::fs::read_to_string(d.join(file)).unwrap();
        std::fs::write(
            d.join("authorized_keys"),
            format!(
                "environment=\"DOCKER_CONFIG={}\" {}environment=\"PATH=/nonexistent\" {}",
                remote_config.display(),
                pubkey("id.pub"),
                pubkey("id_nodocker.pub"),
            ),
        )
        .unwrap();
        // sshd as root needs its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile none\nStrictModes no\nPermitUserEnvironment yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n\
                 MaxStartups 100\nMaxSessions 100\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {d}/id\n  IdentitiesOnly yes\n  UserKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking no\n  BatchMode yes\n  LogLevel ERROR\n",
                d = d.display()
            ),
        )
        .unwrap();
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {}/ssh_config \"$@\"\n",
                d.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: run scripts/test-deps.sh (openssh-server)"
        );
        // A free port, then sshd on it; another process may take it in between, so retry.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(sshd)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sshd");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let user =
                        String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
                            .unwrap()
                            .trim()
                            .to_string();
                    return Sshd {
                        child,
                        port,
                        dir,
                        bin,
                        user,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start");
    }

    /// `ssh://USER@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", self.user, self.port)
    }

    /// PATH with the test's ssh wrapper first.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Switches the wrapper to another key (`id`, `id_nodocker`, `id_unknown`).
    pub fn use_key(&self, key: &str) {
        let config = self.dir.path().join("ssh_config");
        let text = std::fs::read_to_string(&config).unwrap();
        let d = self.dir.path().display().to_string();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        for line in &mut lines {
            if line.trim_start().starts_with("IdentityFile") {
                *line = format!("  IdentityFile {d}/{key}");
            }
        }
        std::fs::write(config, lines.join("\n") + "\n").unwrap();
    }

    /// The tool, with the test's ssh first on PATH.
    pub fn tool(&self) -> Command {
        let mut c = tool();
        c.env("PATH", self.path());
        c
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Docker config dir holding contexts made by the real `docker context create`.
pub struct Contexts {
    pub dir: tempfile::TempDir,
}

impl Contexts {
    pub fn new() -> Contexts {
        Contexts { dir: tempdir() }
    }

    pub fn cfg(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    #[track_caller]
    pub fn create(&self, name: &str, docker_spec: &str) {
        let out = Command::new("docker")
            .args(["--config", self.cfg(), "context", "create", name])
            .args(["--docker", docker_spec])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An sshd and a context `remote` pointing through it at the local engine.
fn remote() -> (Sshd, Contexts) {
    let sshd = Sshd::start();
    let ctx = Contexts::new();
    ctx.create("remote", &format!("host={}", sshd.url()));
    (sshd, ctx)
}

fn run_cmd(mut c: Command, args: &[&str]) -> Run {
    c.args(args).output().expect("run the tool").into()
}

#[test]
fn ssh_endpoint_serves_every_command() {
    let (sshd, ctx) = remote();
    let src = Volume::new("ssh-src");
    src.sh("echo over-ssh > /data/f && mkdir /data/d && chown 7:8 /data/d");
    let dir = tempdir();
    let file = dir.path().join("s.tar.zst");
    let file = file.to_str().unwrap();
    let remote = |args: &[&str]| {
        let mut c = sshd.tool();
        c.args(["--config", ctx.cfg(), "--context", "remote"]);
        run_cmd(c, args)
    };
    let listed = remote(&["ls"]).ok().stdout_str();
    // Sizes too: the engine's /system/df, asked over the same kind of connection.
    let line = listed
        .lines()
        .find(|l| l.starts_with(&src.name))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_ne!(line.split_whitespace().nth(2), Some("-"), "{listed}");
    let saved = remote(&["-D", "save", &src.name, "-o", file]).ok();
    // The docker CLI's arguments, with the user and port of the URL.
    assert!(
        saved.stderr.contains(&format!(
            "ssh -o ConnectTimeout=30 -T -l {} -p {} -- 127.0.0.1 docker system dial-stdio",
            sshd.user, sshd.port
        )),
        "{}",
        saved.stderr
    );
    let dst = Volume::named("ssh-dst");
    remote(&["restore", file, &dst.name]).ok();
    assert_eq!(dst.snapshot(), src.snapshot());
    let json = run(&["inspect", file, "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["manifest"]["head"]["source"]["context"], "remote");
    assert_eq!(v["manifest"]["head"]["source"]["endpoint"], sshd.url());
    // DOCKER_HOST and -H reach the same place.
    let mut c = sshd.tool();
    c.env("DOCKER_HOST", sshd.url());
    run_cmd(c, &["verify", file, "--against", &dst.name]).ok();
    run_cmd(sshd.tool(), &["-H", &sshd.url(), "ls"]).ok();
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");
}

#[test]
fn ssh_failures_name_the_context_and_the_cause() {
    let sshd = Sshd::start();
    let ctx = Contexts::new();
    // Nothing listens on a port we just freed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ctx.create(
        "nowhere",
        &format!("host=ssh://{}@127.0.0.1:{closed}", sshd.user),
    );
    ctx.create("remote", &format!("host={}", sshd.url()));
    let with = |context: &str| {
        let mut c = sshd.tool();
        c.args(["--config", ctx.cfg(), "--context", context]);
        c
    };
    let started = Instant::now();
    run_cmd(with("nowhere"), &["ls"])
        .fails_with(3, "context `nowhere`")
        .fails_with(3, "ssh could not connect")
        .fails_with(3, "Connection refused")
        .fails_with(3, &format!("ssh -p {closed} {}@127.0.0.1", sshd.user));
    assert!(started.elapsed() < Duration::from_secs(10));

    sshd.use_key("id_unknown");
    run_cmd(with("remote"), &["ls"])
        .fails_with(3, "context `remote`")
        .fails_with(3, "ssh authentication failed")
        .fails_with(3, "Permission denied (publickey")
        .fails_with(3, "ssh-agent");

    sshd.use_key("id_nodocker");
    run_cmd(with("remote"), &["ls"])
        .fails_with(3, "context `remote`")
        .fails_with(3, "docker is not installed on the remote machine");

    sshd.use_key("id");
    let mut c = sshd.tool();
    c.args(["-H", &format!("{}/nonexistent/docker.sock", sshd.url())]);
    run_cmd(c, &["ls"])
        .fails_with(3, "remote docker CLI cannot reach its daemon")
        .fails_with(3, "/nonexistent/docker.sock");
}

#[test]
fn tls_without_verification_connects() {
    let certs = tempdir();
    crate::tls::certificates(certs.path());
    let (_proxy, port) = crate::tls::start_proxy(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    let ctx = Contexts::new();
    // The proxy's certificate is signed by a CA this context does not know: only skipping the
    // verification lets it connect.
    ctx.create(
        "insecure",
        &format!(
            "host=tcp://127.0.0.1:{port},ca={},cert={},key={},skip-tls-verify=true",
            c("other-ca.pem"),
            c("cert.pem"),
            c("key.pem")
        ),
    );
    let v = Volume::new("tls-skip");
    let r = run(&["--config", ctx.cfg(), "--context", "insecure", "-D", "ls"]).ok();
    assert!(r.stdout_str().contains(&v.name));
    assert!(
        r.stderr.contains("TLS without verification"),
        "{}",
        r.stderr
    );
    // --tls without --tlsverify, with the files in DOCKER_CERT_PATH: the same.
    let host = format!("tcp://127.0.0.1:{port}");
    let r: Run = tool()
        .env("DOCKER_CERT_PATH", certs.path())
        .args(["--tls", "-H", &host, "ls"])
        .output()
        .unwrap()
        .into();
    assert!(r.ok().stdout_str().contains(&v.name));
}

/// A volume made with labels, filled by `script` (busybox, the volume at /data).
fn labelled_volume(tag: &str, script: &str) -> Volume {
    let v = Volume::named(tag);
    docker(&[
        "volume", "create", "--label", "app=shop", "--label", "tier=db", &v.name,
    ]);
    v.sh(script);
    v
}

fn labels_and_driver(v: &Volume) -> String {
    docker(&[
        "volume",
        "inspect",
        "--format",
        "{{.Driver}} {{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}",
        &v.name,
    ])
}

/// A TLS context (client certificates, verified) through the TLS terminator in front of the
/// engine socket; the proxy stops when the returned guard drops.
fn tls_context(ctx: &Contexts, name: &str) -> (crate::tls::Proxy, tempfile::TempDir) {
    let certs = tempdir();
    crate::tls::certificates(certs.path());
    let (proxy, port) = crate::tls::start_proxy(certs.path());
    let c = |f: &str| certs.path().join(f).display().to_string();
    ctx.create(
        name,
        &format!(
            "host=tcp://127.0.0.1:{port},ca={},cert={},key={}",
            c("ca.pem"),
            c("cert.pem"),
            c("key.pem")
        ),
    );
    (proxy, certs)
}

#[test]
fn migrate_between_contexts_over_ssh_and_tls() {
    let (sshd, ctx) = remote();
    let (_proxy, _certs) = tls_context(&ctx, "secure");
    let migrate = |args: &[&str]| {
        let mut c = sshd.tool();
        c.args(["--config", ctx.cfg(), "migrate"]);
        run_cmd(c, args)
    };

    // default -> ssh: every awkward entry arrives, and the tool says it checked.
    let src = awkward_volume("mig-src");
    let dst = Volume::named("mig-dst");
    let r = migrate(&[&src.name, "--to", "remote", "--as", &dst.name]).ok();
    assert!(
        r.stderr.contains(&format!(
            "checksum ok; created volume {} on remote",
            dst.name
        )),
        "{}",
        r.stderr
    );
    let entries = src.sh("find /data | wc -l").trim().to_string();
    assert!(
        r.stderr.contains(&format!("verified: {entries} entries")),
        "{entries}: {}",
        r.stderr
    );
    assert_eq!(dst.snapshot(), src.snapshot());
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");

    // ssh -> TLS (--from): driver and labels come along.
    let labelled = labelled_volume("mig-lab", "echo v1 > /data/f && mkdir /data/d");
    let copy = Volume::named("mig-lab-copy");
    migrate(&[
        &labelled.name,
        "--from",
        "remote",
        "--to",
        "secure",
        "--as",
        &copy.name,
    ])
    .ok();
    assert_eq!(copy.snapshot(), labelled.snapshot());
    assert_eq!(labels_and_driver(&copy), labels_and_driver(&labelled));
    assert_eq!(labels_and_driver(&copy), "local app=shop tier=db \n");

    // A destination with data is refused without --force, before anything moves...
    labelled.sh("echo v2 > /data/f && rm -r /data/d && echo new > /data/n");
    migrate(&[&labelled.name, "--to", "secure", "--as", &copy.name])
        .fails_with(5, "is not empty")
        .fails_with(5, "--force");
    assert!(copy.snapshot().contains("/d|directory"));
    // ... and replaced exactly with it.
    let r = migrate(&[
        &labelled.name,
        "--to",
        "secure",
        "--as",
        &copy.name,
        "--force",
    ])
    .ok();
    assert!(
        r.stderr.contains("replaced the content of volume"),
        "{}",
        r.stderr
    );
    assert_eq!(copy.snapshot(), labelled.snapshot());

    // Both contexts reach this one engine: the same name would be the same volume.
    migrate(&[&src.name, "--to", "remote"]).fails_with(5, "reach the same engine");
    migrate(&[&src.name, &labelled.name, "--to", "remote", "--as", "x"])
        .fails_with(2, "--as names one volume");
    let missing = unique("missing");
    migrate(&[&missing, "--to", "remote", "--as", &unique("x")]).fails_with(4, &missing);
    migrate(&[
        &src.name,
        "--to",
        "nonexistent-context",
        "--as",
        &unique("x"),
    ])
    .fails_with(3, "unknown context `nonexistent-context`");
}

/// `migrate SRC --to remote --as DST`, started and left running, its output piped.
fn migrate_in_background(sshd: &Sshd, ctx: &Contexts, src: &Volume, dst: &Volume) -> Child {
    let mut c = sshd.tool();
    c.args([
        "--config",
        ctx.cfg(),
        "migrate",
        &src.name,
        "--to",
        "remote",
    ])
    .args(["--as", &dst.name])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn cut_transfer_leaves_no_complete_looking_volume() {
    let (sshd, ctx) = remote();
    let src = Volume::new("cut-src");
    src.sh("dd if=/dev/zero of=/data/big bs=1M count=400 2>/dev/null && echo x > /data/small");
    let dst = Volume::named("cut-dst");
    let c = migrate_in_background(&sshd, &ctx, &src, &dst);
    let child = c;
    let pid = child.id().to_string();
    // Once the destination has its helper the upload is under way: cut every ssh the tool runs.
    let started = Instant::now();
    while dst.helpers_left().trim().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let ssh = Command::new("pgrep")
        .args(["-P", &pid, "-x", "ssh"])
        .output()
        .unwrap();
    let pids = String::from_utf8(ssh.stdout).unwrap();
    assert!(!pids.trim().is_empty(), "no ssh running under the tool");
    for p in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", p]).status();
    }
    let r: Run = child.wait_with_output().unwrap().into();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("migrating volume `{}`", src.name)),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("the ssh connection failed") && r.stderr.contains("killed by signal 9"),
        "{}",
        r.stderr
    );
    assert!(!dst.exists(), "the cut copy is still there:\n{}", r.stderr);
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");
    assert!(!r.stderr.contains("INCOMPLETE"), "{}", r.stderr);
}

#[test]
fn clone_copies_a_volume_inside_one_engine() {
    let src = awkward_volume("clone-src");
    let new = Volume::named("clone-new");
    let r = run(&["clone", &src.name, &new.name]).ok();
    assert!(
        r.stderr.contains("checksum ok; created volume"),
        "{}",
        r.stderr
    );
    assert_eq!(new.snapshot(), src.snapshot());
    assert_eq!(labels_and_driver(&new), labels_and_driver(&src));
    // A volume with data is never overwritten; a missing source is "not found".
    run(&["clone", &src.name, &new.name]).fails_with(5, "is not empty");
    let missing = unique("missing");
    run(&["clone", &missing, &unique("x")]).fails_with(4, &missing);
    run(&["clone", &src.name, &src.name]).fails_with(2, "itself");
    assert_eq!(src.helpers_left(), "");
    assert_eq!(new.helpers_left(), "");
}

#[test]
fn ctrl_c_during_a_migration_over_ssh_cleans_up_both_ends() {
    let (sshd, ctx) = remote();
    let src = Volume::new("int-src");
    src.sh("dd if=/dev/zero of=/data/big bs=1M count=400 2>/dev/null");
    let dst = Volume::named("int-dst");
    let c = migrate_in_background(&sshd, &ctx, &src, &dst);
    // ssh runs in a session of its own, so the signal reaches only the tool, and the cleanup
    // on the remote side still has its connection.
    let r = interrupt_after(c, || dst.exists());
    let r = r.fails_with(130, "interrupted");
    assert!(!dst.exists(), "{}", r.stderr);
    assert_eq!(src.helpers_left(), "");
    assert_eq!(dst.helpers_left(), "");
}

/// A second Docker engine on this machine (its own data root, socket, containerd and bridge, the
/// `vfs` storage driver, no iptables): a real other host for `migrate`, without a registry or VM.
/// Stopped, and its data and bridge removed, on drop.
///
/// Never `--bridge none`: a dockerd started so deletes the host's `docker0`, the machine engine's
/// own bridge. It gets a bridge of its own instead, in an address range nothing else uses.
pub struct SecondEngine {
    child: Child,
    dir: tempfile::TempDir,
    bridge: String,
}

impl SecondEngine {
    pub fn start() -> SecondEngine {
        let dir = tempdir();
        let d = dir.path();
        let bridge = format!("dvbt{}", std::process::id() % 1_000_000);
        let made = Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .output()
            .expect("ip (iproute2)");
        assert!(
            made.status.success(),
            "cannot make a bridge for the second engine (needs root): {}",
            String::from_utf8_lossy(&made.stderr)
        );
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
            .spawn()
            .expect("start dockerd");
        let engine = SecondEngine { child, dir, bridge };
        let started = Instant::now();
        while !engine.docker(&["version"]).status.success() {
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

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .unwrap()
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

#[test]
fn migrate_a_compose_project_to_another_engine_over_ssh_with_stop() {
    let (sshd, ctx) = remote();
    let other = SecondEngine::start();
    // The other engine, through ssh and a socket path in the URL (the remote docker CLI gets
    // --host=unix://PATH).
    ctx.create(
        "other",
        &format!("host={}{}", sshd.url(), other.socket().display()),
    );
    let project = unique("proj").replace('-', "");
    let make = |key: &str, content: &str| {
        let v = Volume {
            name: format!("{project}_{key}"),
        };
        docker(&[
            "volume",
            "create",
            "--label",
            &format!("com.docker.compose.project={project}"),
            "--label",
            &format!("com.docker.compose.volume={key}"),
            &v.name,
        ]);
        v.sh(content);
        v
    };
    let data = make("data", "echo rows > /data/table && mkdir /data/base");
    let logs = make("logs", "echo line > /data/log");
    let app = Container::create("app", &data);
    docker(&["start", &app.name]);

    let mut c = sshd.tool();
    c.args(["--config", ctx.cfg(), "migrate", "--project", &project])
        .args(["--to", "other", "--stop"]);
    let r = run_cmd(c, &[]).ok();
    assert!(
        r.stderr.contains(&format!("stopping {}", app.name)),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("restarted {}", app.name)),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("checksum ok; created volume").count(),
        2,
        "{}",
        r.stderr
    );
    let running = docker(&["inspect", "--format", "{{.State.Running}}", &app.name]);
    assert_eq!(running.trim(), "true");

    // On the other engine: the same names and labels (compose adopts them), the same content,
    // checked by the tool itself against the source volumes.
    for v in [&data, &logs] {
        let inspect = other.docker(&[
            "volume",
            "inspect",
            "--format",
            "{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}",
            &v.name,
        ]);
        assert!(
            inspect.status.success(),
            "{}",
            String::from_utf8_lossy(&inspect.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&inspect.stdout),
            docker(&[
                "volume",
                "inspect",
                "--format",
                "{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}",
                &v.name
            ])
        );
        let dir = tempdir();
        let file = dir.path().join("copy.tar");
        let file = file.to_str().unwrap();
        let host = format!("unix://{}", other.socket().display());
        run(&["-H", &host, "save", &v.name, "-o", file, "-q"]).ok();
        run(&["verify", file, "--against", &v.name]).ok();
        assert_eq!(v.helpers_left(), "");
    }
    // Once there, a second migration of the project is refused before anything moves.
    let mut c = sshd.tool();
    c.args([
        "--config",
        ctx.cfg(),
        "migrate",
        "--project",
        &project,
        "--to",
        "other",
    ]);
    run_cmd(c, &[]).fails_with(5, "is not empty");
}
