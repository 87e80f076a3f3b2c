//! The ssh transport: one `ssh ... docker system dial-stdio` process per HTTP connection (the
//! [`Dialer`]), the byte stream over its stdin and stdout, and the bollard client built on it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
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

use super::{SshError, SshFailure, SshTarget};
use crate::output::Printer;

/// How much of ssh's stderr is kept to explain a failure.
const STDERR_KEEP: usize = 4096;
/// How long a failed request waits for its ssh process to exit and say why.
const EXIT_WAIT: Duration = Duration::from_secs(3);
/// How long a dropped connection's ssh may take to exit by itself before it is killed.
const GRACE: Duration = Duration::from_millis(500);

/// How the ssh processes of one client ended badly: the most recent failure and when it was
/// seen. The dialer records into it and the client's owner (an `Engine`) keeps a clone, because a
/// transfer cut midway surfaces as a body error far from the transport, without the reason.
/// One log per client, so two engines never see each other's failures.
#[derive(Debug, Clone, Default)]
pub struct FailureLog(Arc<Mutex<Option<(Instant, SshError)>>>);

impl FailureLog {
    /// Why an ssh process of this client ended badly at or after `since`, if one did.
    pub fn since(&self, since: Instant) -> Option<SshError> {
        let last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .filter(|(at, _)| *at >= since)
            .map(|(_, e)| e.clone())
    }

    fn record(&self, err: SshError) {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some((Instant::now(), err));
    }
}

/// A plain HTTP client over `ssh ... docker system dial-stdio` (for the few requests bollard
/// cannot make, such as `/system/df` in an older engine's shape).
pub fn http_client<B>(target: &SshTarget, failures: &FailureLog, out: Printer) -> Client<Dialer, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(Dialer::new(target, failures, out))
}

/// A bollard client whose every connection is `ssh ... docker system dial-stdio`; its ssh
/// processes record in `failures` how they ended badly.
pub fn client(
    target: &SshTarget,
    timeout_secs: u64,
    failures: &FailureLog,
    out: Printer,
) -> Result<Docker, bollard::errors::Error> {
    let dialer = Dialer::new(target, failures, out);
    let http = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(dialer.clone());
    let transport = move |req: BollardRequest| {
        let http = http.clone();
        let failures = dialer.failures.clone();
        async move {
            let started = Instant::now();
            match http.request(req).await {
                Ok(response) => Ok(response),
                Err(err) => Err(explain(&failures, started, err).await),
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
    failures: &FailureLog,
    started: Instant,
    err: hyper_util::client::legacy::Error,
) -> bollard::errors::Error {
    let deadline = Instant::now() + EXIT_WAIT;
    loop {
        if let Some(ssh) = failures.since(started) {
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
    failures: FailureLog,
    out: Printer,
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
    fn new(target: &SshTarget, failures: &FailureLog, out: Printer) -> Dialer {
        Dialer {
            program: "ssh".into(),
            args: Arc::new(target.args(&[])),
            target: Arc::new(target.display()),
            login: Arc::new(target.login()),
            failures: failures.clone(),
            out,
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
        self.out.debug(&format!(
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
        let failures = self.failures.clone();
        let out = self.out;
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
                out.debug(&format!("ssh {target}: {}", text.trim()));
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
            failures.record(SshError {
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
