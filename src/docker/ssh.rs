//! `ssh://` endpoints, reached the way the docker CLI reaches them (docker/cli `cli/connhelper`):
//! the system `ssh` runs `docker system dial-stdio` on the remote machine and HTTP travels over its
//! stdin and stdout. Running the user's own `ssh` honours their `~/.ssh/config`, agent, jump hosts
//! and known hosts. Like the CLI, every connection is one `ssh` process in a session of its own
//! (so Ctrl-C reaches us, not ssh, and cleanup can still talk to the remote engine, and ssh never
//! blocks on a password prompt on our terminal); connections are pooled and reused, because one
//! `ssh` + remote `docker` start costs about half a second.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bollard::{BollardRequest, Docker};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_util::sync::{CancellationToken, DropGuard};

/// How much of ssh's stderr is kept to explain a failure.
const STDERR_KEEP: usize = 4096;
/// How long a failed request waits for its ssh process to exit and say why.
const EXIT_WAIT: Duration = Duration::from_secs(3);
/// How long a dropped connection's ssh may take to exit by itself before it is killed.
const GRACE: Duration = Duration::from_millis(500);

/// Where an `ssh://` URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The daemon socket on the remote machine, when not its default.
    pub socket_path: Option<String>,
}

impl SshTarget {
    /// The target of an `ssh://` host; `None` for other transports.
    pub fn of(host: &super::context::Host) -> Option<SshTarget> {
        match host {
            super::context::Host::Ssh {
                user,
                host,
                port,
                socket_path,
            } => Some(SshTarget {
                user: user.clone(),
                host: host.clone(),
                port: *port,
                socket_path: socket_path.clone(),
            }),
            _ => None,
        }
    }

    /// The arguments after `ssh`, as docker/cli builds them: a 30 s connect timeout unless the
    /// caller's flags set one, no pseudo-terminal, `-l user`, `-p port`, `--`, the host and the
    /// remote command (`docker --host=unix://PATH system dial-stdio` for a custom socket path).
    pub fn args(&self, extra_flags: &[String]) -> Vec<String> {
        let mut args: Vec<String> = extra_flags.to_vec();
        if !extra_flags.concat().contains("ConnectTimeout") {
            args.extend(["-o".into(), "ConnectTimeout=30".into()]);
        }
        if !extra_flags.iter().any(|f| f == "-T") {
            args.push("-T".into());
        }
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--".into(), self.host.clone(), "docker".into()]);
        if let Some(path) = self.socket_path.as_deref() {
            if !path.trim_matches('/').is_empty() {
                args.push(format!("--host=unix://{path}"));
            }
        }
        args.extend(["system".into(), "dial-stdio".into()]);
        args
    }

    /// How to log in by hand, for hints: `ssh -p 2222 user@host`.
    pub fn login(&self) -> String {
        let mut s = String::from("ssh ");
        if let Some(port) = self.port {
            s.push_str(&format!("-p {port} "));
        }
        if let Some(user) = &self.user {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(&self.host);
        s
    }

    /// `user@host:port`, for messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(user) = &self.user {
            s.push_str(user);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(port) = self.port {
            s.push_str(&format!(":{port}"));
        }
        s
    }
}

/// What went wrong on the ssh side, sorted from ssh's and the remote docker CLI's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshFailure {
    /// The ssh program itself could not be started.
    NoSshClient,
    /// No ssh connection: refused, unknown host, timeout, no route.
    Unreachable,
    /// The server refused our keys (or wanted a password we cannot ask for).
    Auth,
    /// The host key is unknown or changed.
    HostKey,
    /// Logged in, but there is no `docker` command on the remote machine.
    DockerMissing,
    /// The remote user may not use the Docker socket.
    SocketPermission,
    /// The remote docker CLI could not reach its daemon.
    DaemonDown,
    /// Anything else (the connection was cut, ssh was killed, ...).
    Other,
}

impl SshFailure {
    /// Sorts ssh's stderr (and its exit status) into a failure.
    pub fn classify(stderr: &str, exit_code: Option<i32>) -> SshFailure {
        let has = |needle: &str| stderr.contains(needle);
        if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            SshFailure::HostKey
        } else if has("Permission denied (") || has("Too many authentication failures") {
            SshFailure::Auth
        } else if has("Connection refused")
            || has("Could not resolve hostname")
            || has("No route to host")
            || has("Network is unreachable")
            || has("Connection timed out")
            || has("Operation timed out")
        {
            SshFailure::Unreachable
        } else if has("docker: command not found")
            || has("docker: not found")
            || has("docker: No such file")
            || exit_code == Some(127)
        {
            SshFailure::DockerMissing
        } else if has("permission denied while trying to connect to the Docker daemon")
            || has("connect: permission denied")
        {
            SshFailure::SocketPermission
        } else if has("Cannot connect to the Docker daemon")
            || has("Is the docker daemon running")
            || has("connect: no such file or directory")
            || has("connect: connection refused")
        {
            SshFailure::DaemonDown
        } else {
            SshFailure::Other
        }
    }

    /// A few words for the message: "ssh could not connect", ...
    pub fn summary(self) -> &'static str {
        match self {
            SshFailure::NoSshClient => "the ssh client could not be started",
            SshFailure::Unreachable => "ssh could not connect",
            SshFailure::Auth => "ssh authentication failed",
            SshFailure::HostKey => "ssh refused the host key",
            SshFailure::DockerMissing => "docker is not installed on the remote machine",
            SshFailure::SocketPermission => {
                "the remote user may not use the Docker socket (permission denied)"
            }
            SshFailure::DaemonDown => "the remote docker CLI cannot reach its daemon",
            SshFailure::Other => "the ssh connection failed",
        }
    }

    /// What to try next.
    pub fn hint(self, login: &str) -> String {
        match self {
            SshFailure::NoSshClient => {
                "install an OpenSSH client (`ssh` on PATH), as the docker CLI needs it for ssh:// \
                 endpoints too"
                    .into()
            }
            SshFailure::Unreachable => {
                format!("check the host name and port, and that `{login}` works")
            }
            SshFailure::Auth => format!(
                "ssh runs without a terminal, as the docker CLI runs it: load your key into \
                 ssh-agent (`ssh-add`) or configure it in ~/.ssh/config, then check that \
                 `{login} docker version` works without a prompt"
            ),
            SshFailure::HostKey => {
                format!("connect once with `{login}` to check and accept the host key")
            }
            SshFailure::DockerMissing => "install the docker CLI on the remote machine (on the \
                 PATH of non-interactive ssh sessions), or put the socket path in the URL: \
                 ssh://user@host/var/run/docker.sock still needs the CLI there"
                .into(),
            SshFailure::SocketPermission => format!(
                "add the remote user to the `docker` group there (`sudo usermod -aG docker USER`) \
                 and log in again, or connect as another user (`ssh://other@...`); check with \
                 `{login} docker version`"
            ),
            SshFailure::DaemonDown => format!(
                "is the Docker daemon running on the remote machine? (`{login} docker version`)"
            ),
            SshFailure::Other => format!("check that `{login} docker version` works"),
        }
    }
}

/// Why an ssh connection ended badly: the inner error of the I/O errors this transport returns,
/// so that callers can find it in an error chain.
#[derive(Debug, Clone)]
pub struct SshError {
    pub failure: SshFailure,
    /// `user@host:port`.
    pub target: String,
    /// How ssh ended (`exit status 255`, `killed by signal 9`).
    pub status: String,
    /// The last lines ssh (or the remote docker CLI) wrote on stderr.
    pub stderr: String,
    /// How to log in by hand (`ssh -p 2222 user@host`), for the hint.
    pub login: String,
}

impl SshError {
    pub fn hint(&self) -> String {
        self.failure.hint(&self.login)
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.failure.summary(), self.target)?;
        if !self.status.is_empty() {
            write!(f, ", ssh {}", self.status)?;
        }
        f.write_str(")")?;
        let detail = self.stderr.trim();
        if !detail.is_empty() {
            write!(f, ": {}", detail.lines().collect::<Vec<_>>().join(" / "))?;
        }
        Ok(())
    }
}

impl std::error::Error for SshError {}

/// The most recent abnormal end of an ssh process, per target, for the whole run: a cut transfer
/// surfaces as a body error far from the transport, and this is where its reason is kept.
fn last_failures() -> &'static Mutex<HashMap<String, (Instant, SshError)>> {
    static FAILURES: OnceLock<Mutex<HashMap<String, (Instant, SshError)>>> = OnceLock::new();
    FAILURES.get_or_init(Default::default)
}

/// Why an ssh connection to `target` ended badly at or after `since`, if one did.
pub fn last_failure(target: &SshTarget, since: Instant) -> Option<SshError> {
    failure_since(&target.display(), since)
}

fn record_failure(err: SshError) {
    let mut failures = last_failures().lock().unwrap_or_else(|e| e.into_inner());
    failures.insert(err.target.clone(), (Instant::now(), err));
}

/// A failure recorded at or after `since`.
fn failure_since(target: &str, since: Instant) -> Option<SshError> {
    let failures = last_failures().lock().unwrap_or_else(|e| e.into_inner());
    failures
        .get(target)
        .filter(|(at, _)| *at >= since)
        .map(|(_, e)| e.clone())
}

/// A plain HTTP client over `ssh ... docker system dial-stdio` (for the few requests bollard
/// cannot make, such as `/system/df` in an older engine's shape).
pub fn http_client<B>(target: &SshTarget) -> Client<Dialer, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(Dialer::new(target))
}

/// A bollard client whose every connection is `ssh ... docker system dial-stdio`.
pub fn client(target: &SshTarget, timeout_secs: u64) -> Result<Docker, bollard::errors::Error> {
    let dialer = Dialer::new(target);
    let http = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(dialer.clone());
    let transport = move |req: BollardRequest| {
        let http = http.clone();
        let target = Arc::clone(&dialer.target);
        async move {
            let started = Instant::now();
            match http.request(req).await {
                Ok(response) => Ok(response),
                Err(err) => Err(explain(&target, started, err).await),
            }
        }
    };
    // The host part only fills the requests' Host header: dial-stdio ignores it.
    Docker::connect_with_custom_transport(
        transport,
        Some("http://docker.example.com"),
        timeout_secs,
        bollard::API_DEFAULT_VERSION,
    )
}

/// Turns a failed request into an I/O error carrying ssh's reason, when ssh gave one.
async fn explain(
    target: &str,
    started: Instant,
    err: hyper_util::client::legacy::Error,
) -> bollard::errors::Error {
    let deadline = Instant::now() + EXIT_WAIT;
    loop {
        if let Some(ssh) = failure_since(target, started) {
            return bollard::errors::Error::IOError {
                err: io::Error::other(ssh),
            };
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bollard::errors::Error::from(err)
}

/// Starts one `ssh` per connection.
#[derive(Clone)]
pub struct Dialer {
    program: std::ffi::OsString,
    args: Arc<Vec<String>>,
    target: Arc<String>,
    login: Arc<String>,
}

impl tower_service::Service<Uri> for Dialer {
    type Response = SshStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<SshStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move { dialer.dial() })
    }
}

impl Dialer {
    fn new(target: &SshTarget) -> Dialer {
        Dialer {
            program: "ssh".into(),
            args: Arc::new(target.args(&[])),
            target: Arc::new(target.display()),
            login: Arc::new(target.login()),
        }
    }

    fn dial(&self) -> io::Result<SshStream> {
        let mut command = Command::new(&self.program);
        command
            .args(self.args.iter())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent. A session of
        // its own keeps ssh away from our terminal, as docker/cli's commandconn does: Ctrl-C
        // reaches only us (cleanup still needs the connection) and ssh never stops on a prompt.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        crate::output::debug(&format!(
            "starting {} {}",
            self.program.to_string_lossy(),
            self.args.join(" ")
        ));
        let mut child = command.spawn().map_err(|e| {
            io::Error::other(SshError {
                failure: SshFailure::NoSshClient,
                target: self.target.to_string(),
                status: String::new(),
                stderr: format!("{}: {e}", self.program.to_string_lossy()),
                login: self.login.to_string(),
            })
        })?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let done = CancellationToken::new();
        let watched = done.clone();
        let target = Arc::clone(&self.target);
        let login = Arc::clone(&self.login);
        // Collects stderr and the exit status; kills ssh once the connection is dropped.
        tokio::spawn(async move {
            let read_all = async move {
                let mut kept = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    match stderr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            kept.extend_from_slice(&buf[..n]);
                            if kept.len() > STDERR_KEEP {
                                kept.drain(..kept.len() - STDERR_KEEP);
                            }
                        }
                    }
                }
                (kept, child.wait().await)
            };
            // A connection dropped because ssh failed is dropped before ssh has exited: give
            // ssh a moment to end by itself and say why. One that outlives that was ended by
            // us (the run is over) and is killed when `child` drops.
            tokio::pin!(read_all);
            let (kept, status) = tokio::select! {
                status = &mut read_all => status,
                _ = watched.cancelled() => {
                    match tokio::time::timeout(GRACE, &mut read_all).await {
                        Ok(status) => status,
                        Err(_) => return,
                    }
                }
            };
            let text = String::from_utf8_lossy(&kept).into_owned();
            if !text.trim().is_empty() {
                crate::output::debug(&format!("ssh {target}: {}", text.trim()));
            }
            let Ok(status) = status else { return };
            if status.success() {
                return;
            }
            let described = match (
                status.code(),
                std::os::unix::process::ExitStatusExt::signal(&status),
            ) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => status.to_string(),
            };
            record_failure(SshError {
                failure: SshFailure::classify(&text, status.code()),
                target: target.to_string(),
                status: described,
                stderr: text,
                login: login.to_string(),
            });
        });
        Ok(SshStream {
            io: TokioIo::new(Pipe { stdin, stdout }),
            _kill_on_drop: done.drop_guard(),
        })
    }
}

/// ssh's stdout and stdin as one duplex byte stream.
struct Pipe {
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl AsyncRead for Pipe {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// One HTTP connection over one ssh process; dropping it ends the process.
pub struct SshStream {
    io: TokioIo<Pipe>,
    _kill_on_drop: DropGuard,
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, port: Option<u16>, path: Option<&str>) -> SshTarget {
        SshTarget {
            user: user.map(Into::into),
            host: "box.example".into(),
            port,
            socket_path: path.map(Into::into),
        }
    }

    #[test]
    fn args_follow_the_docker_cli() {
        assert_eq!(
            target(Some("deploy"), Some(2222), None).args(&[]),
            [
                "-o",
                "ConnectTimeout=30",
                "-T",
                "-l",
                "deploy",
                "-p",
                "2222",
                "--",
                "box.example",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
        assert_eq!(
            target(None, None, None).args(&[]),
            [
                "-o",
                "ConnectTimeout=30",
                "-T",
                "--",
                "box.example",
                "docker",
                "system",
                "dial-stdio"
            ]
        );
    }

    #[test]
    fn a_socket_path_goes_to_the_remote_docker_cli() {
        let args = target(None, None, Some("/run/user/1000/docker.sock")).args(&[]);
        assert_eq!(
            &args[4..],
            [
                "box.example",
                "docker",
                "--host=unix:///run/user/1000/docker.sock",
                "system",
                "dial-stdio"
            ]
        );
        // A bare `/` is no path, as in the CLI.
        assert!(!target(None, None, Some("/"))
            .args(&[])
            .iter()
            .any(|a| a.starts_with("--host")));
    }

    #[test]
    fn flags_given_are_not_doubled() {
        let flags = ["-o".to_string(), "ConnectTimeout=5".into(), "-T".into()];
        let args = target(None, None, None).args(&flags);
        assert_eq!(
            args.iter().filter(|a| a.contains("ConnectTimeout")).count(),
            1
        );
        assert_eq!(args.iter().filter(|a| *a == "-T").count(), 1);
        // A host that looks like an option stays the host.
        let odd = SshTarget {
            host: "-oProxyCommand=x".into(),
            ..target(None, None, None)
        };
        let args = odd.args(&[]);
        let dashdash = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(args[dashdash + 1], "-oProxyCommand=x");
    }

    #[test]
    fn stderr_is_sorted_into_failures() {
        let c = SshFailure::classify;
        assert_eq!(
            c(
                "ssh: connect to host 127.0.0.1 port 1: Connection refused\r\n",
                Some(255)
            ),
            SshFailure::Unreachable
        );
        assert_eq!(
            c(
                "ssh: Could not resolve hostname nowhere: Name or service not known",
                Some(255)
            ),
            SshFailure::Unreachable
        );
        assert_eq!(
            c("root@127.0.0.1: Permission denied (publickey).", Some(255)),
            SshFailure::Auth
        );
        assert_eq!(
            c("Host key verification failed.", Some(255)),
            SshFailure::HostKey
        );
        assert_eq!(
            c("bash: line 1: docker: command not found", Some(127)),
            SshFailure::DockerMissing
        );
        assert_eq!(
            c("sh: 1: docker: not found", Some(127)),
            SshFailure::DockerMissing
        );
        assert_eq!(
            c(
                "permission denied while trying to connect to the Docker daemon socket at \
                 unix:///var/run/docker.sock: ...",
                Some(1)
            ),
            SshFailure::SocketPermission
        );
        assert_eq!(
            c(
                "failed to open the raw stream connection: dial unix /var/run/docker.sock: \
                 connect: permission denied",
                Some(1)
            ),
            SshFailure::SocketPermission
        );
        assert_eq!(
            c(
                "failed to open the raw stream connection: dial unix /x.sock: connect: no such \
                 file or directory",
                Some(1)
            ),
            SshFailure::DaemonDown
        );
        assert_eq!(
            c("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", Some(1)),
            SshFailure::DaemonDown
        );
        assert_eq!(c("", None), SshFailure::Other);
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = SshError {
            failure: SshFailure::Auth,
            target: "me@box:22".into(),
            status: "exit status 255".into(),
            stderr: "me@box: Permission denied (publickey).\r\n".into(),
            login: "ssh -p 22 me@box".into(),
        };
        assert!(err.hint().contains("`ssh -p 22 me@box docker version`"));
        assert_eq!(
            err.to_string(),
            "ssh authentication failed (me@box:22, ssh exit status 255): me@box: Permission \
             denied (publickey)."
        );
    }
}
