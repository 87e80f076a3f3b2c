//! A real restic REST server on loopback: `rclone serve restic` (Debian's rclone) serving a
//! temporary directory, with a user and a password (given in its environment, not on its
//! command line), optionally append-only or on HTTPS. Stopped, and its directory removed, on drop.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{certificates, free_port, tempdir, wait_for_port, RunExt, Running};

pub const REST_USER: &str = "dvb";
/// Percent-encoded in URLs (`%40`), to check that the tool decodes it.
pub const REST_PASSWORD: &str = "rest-p@ss-f3c1";

pub struct RestServer {
    child: Option<Running>,
    dir: tempfile::TempDir,
    pub port: u16,
    append_only: bool,
    /// Serving HTTPS with a certificate for 127.0.0.1 from the test CA (`ca()`).
    https: bool,
}

impl RestServer {
    pub fn start() -> RestServer {
        RestServer::start_with(false)
    }

    /// A server on HTTPS, its certificate signed by a CA of the test's (`ca()`).
    pub fn start_https() -> RestServer {
        RestServer::start_with(true)
    }

    fn start_with(https: bool) -> RestServer {
        let dir = tempdir();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        if https {
            certificates(dir.path());
        }
        let mut server = RestServer {
            child: None,
            dir,
            port: 0,
            append_only: false,
            https,
        };
        server.restart();
        server
    }

    /// Starts the server (again) on a free port, serving the same directory.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            Command::new("rclone")
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "rclone is missing: run scripts/test-deps.sh (rclone)"
        );
        // A free port, then the server on it; another process may take it in between, so retry.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("rclone");
            cmd.args(["serve", "restic"])
                .arg(self.data())
                .args(["--addr", &format!("127.0.0.1:{port}")])
                // No rclone.conf of the machine's user is read or written.
                .env("RCLONE_CONFIG", self.dir.path().join("rclone.conf"))
                .env("RCLONE_USER", REST_USER)
                .env("RCLONE_PASS", REST_PASSWORD)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if self.append_only {
                cmd.arg("--append-only");
            }
            if self.https {
                cmd.arg("--cert")
                    .arg(self.dir.path().join("server-cert.pem"))
                    .arg("--key")
                    .arg(self.dir.path().join("server-key.pem"));
            }
            let mut child = cmd.start();
            if wait_for_port(port, Duration::from_secs(10)) {
                if let Ok(None) = child.try_wait() {
                    self.child = Some(child);
                    self.port = port;
                    return;
                }
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("rclone serve restic did not start");
    }

    /// The CA that signed an HTTPS server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// Stops the server; the directory it served stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The directory served: repositories are its subdirectories.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `rest:http://USER:PASSWORD@127.0.0.1:PORT/REPO/` (the password percent-encoded).
    pub fn url(&self, repo: &str) -> String {
        self.url_with(repo, REST_PASSWORD)
    }

    /// The URL with another password.
    pub fn url_with(&self, repo: &str, password: &str) -> String {
        format!(
            "rest:{}://{REST_USER}:{}@127.0.0.1:{}/{repo}/",
            self.scheme(),
            password.replace('@', "%40"),
            self.port
        )
    }

    /// The URL without credentials.
    pub fn bare_url(&self, repo: &str) -> String {
        format!("rest:{}://127.0.0.1:{}/{repo}/", self.scheme(), self.port)
    }

    /// The repository's directory on the server.
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.data().join(repo)
    }

    /// Whether the next `restart` refuses deletions (`--append-only`).
    pub fn set_append_only(&mut self, on: bool) {
        self.append_only = on;
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback TCP proxy to `target` that closes the first `drop` connections it accepts at once
/// (a server that is restarting) and passes the others through; it counts what it dropped.
/// Stops listening on drop.
pub struct FlakyProxy {
    pub port: u16,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyProxy {
    pub fn start(target: u16, drop: usize) -> FlakyProxy {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, stopped) = (
            std::sync::Arc::clone(&dropped),
            std::sync::Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                if count.load(Ordering::SeqCst) < drop {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let pump = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                };
                pump(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pump(upstream, client);
            }
        });
        FlakyProxy {
            port,
            dropped,
            stop,
        }
    }

    pub fn dropped(&self) -> usize {
        self.dropped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accepting thread, which then ends and closes the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}
