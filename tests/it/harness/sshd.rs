//! A real sshd on loopback with keys made for the test, and the tool run with an `ssh` that uses
//! the test's config.
//!
//! The user's own `~/.ssh` is never read: OpenSSH takes the home directory from the password
//! database, not `$HOME`, so the tool's runs get a `PATH` whose first `ssh` is a wrapper that adds
//! `-F <the test's config>` (the tool runs `ssh` from `PATH`, as the docker CLI does).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, tempdir, tool, RunExt, Running};

/// An sshd on 127.0.0.1 that lets the test's key log in as the current user; killed on drop.
pub struct Sshd {
    child: Running,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// A directory whose `ssh` runs the system ssh with the test's config.
    bin: PathBuf,
    pub user: String,
}

impl Sshd {
    pub fn start() -> Sshd {
        let dir = tempdir();
        let d = dir.path();
        let keygen = |file: &str| {
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "dvb-test", "-f"])
                .arg(d.join(file))
                .run()
                .expect_ok("ssh-keygen failed (openssh-client; run scripts/test-deps.sh)");
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
                 MaxStartups 100\nMaxSessions 100\nSubsystem sftp internal-sftp\n",
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
            let port = free_port();
            let mut child = Command::new(sshd)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .start();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let user = Command::new("id")
                        .arg("-un")
                        .run()
                        .ok()
                        .stdout_str()
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

    /// Makes the server's host key known to the test's ssh (the config's known-hosts file is
    /// /dev/null otherwise): for clients that insist on `StrictHostKeyChecking=yes`.
    pub fn trust_host_key(&self) {
        let d = self.dir.path();
        let key = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut words = key.split_whitespace();
        let (kind, blob) = (words.next().unwrap(), words.next().unwrap());
        let known = d.join("known_hosts");
        std::fs::write(&known, format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)).unwrap();
        let config = d.join("ssh_config");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "UserKnownHostsFile /dev/null",
            &format!("UserKnownHostsFile {}", known.display()),
        );
        std::fs::write(config, text).unwrap();
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
