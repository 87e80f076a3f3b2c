//! Running a process inside a container through the engine's exec API, with its streams: stdout
//! (binary-safe: a non-TTY exec multiplexes stdout and stderr into frames), stderr kept for
//! messages, stdin fed from a channel and finished by shutting the writer down (the process sees
//! end of input when the attached connection's write side is closed; see ARCHITECTURE.md, engine
//! facts), and the exit status read back from the exec's inspection.
//!
//! Secrets go in `Exec::env`, which the engine hands to the process's environment: they never
//! appear in a command line (ours, the engine's, or the one `ps` shows inside the container).

use std::io;

use anyhow::{Context as _, Result};
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::UserError;

/// How much of a process's stderr is kept for messages (the end is what explains a failure).
const STDERR_KEEP: usize = 64 * 1024;
/// Read buffer for the exec's output stream.
const OUTPUT_CAPACITY: usize = 256 * 1024;
/// Exit status of a shell that could not find or run the command.
pub const EXIT_NOT_FOUND: i64 = 127;
pub const EXIT_CANNOT_RUN: i64 = 126;

/// A process to run in a container.
#[derive(Clone, Default)]
pub struct Exec {
    pub cmd: Vec<String>,
    /// `NAME=value` pairs added to the process's environment (where passwords go).
    pub env: Vec<String>,
    pub user: Option<String>,
}

impl Exec {
    pub fn new<S: AsRef<str>>(cmd: &[S]) -> Exec {
        Exec {
            cmd: cmd.iter().map(|s| s.as_ref().to_string()).collect(),
            ..Default::default()
        }
    }

    pub fn env(mut self, env: Vec<String>) -> Exec {
        self.env = env;
        self
    }

    /// The command as a person would type it, for messages; the environment is left out.
    pub fn display(&self) -> String {
        self.cmd.join(" ")
    }
}

/// How an exec ended.
#[derive(Debug)]
pub struct Finished {
    pub exit_code: i64,
    /// The end of what the process wrote on stderr, lossily decoded.
    pub stderr: String,
    /// The process id inside the container, when the exec was started with `with_pid`.
    pub pid: Option<u32>,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// Whether the command itself could not be started: missing or not executable. The
    /// engine answers 126 (with the reason only in its own log), a shell 127.
    pub fn not_found(&self) -> bool {
        self.exit_code == EXIT_NOT_FOUND
            || self.exit_code == EXIT_CANNOT_RUN
            || self.stderr.contains("executable file not found")
    }
}

/// Runs `exec` in `container`: feeds `stdin` (if any) and shuts it down when the channel ends,
/// sends stdout chunks into `stdout`, keeps the end of stderr. An `Err` item on the stdin
/// channel aborts: the process is killed (so that a half-fed `psql --single-transaction` does
/// not commit at the end of its input) and the error is returned.
///
/// With `report_pid`, the command runs under `sh -c 'echo $$ >&2; exec "$@"'`, so that the
/// first line of stderr is its pid inside the container, which `kill` needs.
pub async fn run(
    docker: &Docker,
    container: &str,
    exec: &Exec,
    stdin: Option<mpsc::Receiver<io::Result<Bytes>>>,
    stdout: mpsc::Sender<io::Result<Bytes>>,
    report_pid: bool,
    cancel: &CancellationToken,
) -> Result<Finished> {
    let mut cmd = exec.cmd.clone();
    if report_pid {
        let mut wrapped: Vec<String> = ["sh", "-c", "echo $$ >&2; exec \"$@\"", "sh"]
            .map(String::from)
            .to_vec();
        wrapped.append(&mut cmd);
        cmd = wrapped;
    }
    let config = ExecConfig {
        attach_stdin: Some(stdin.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        env: Some(exec.env.clone()),
        cmd: Some(cmd),
        user: exec.user.clone(),
        ..Default::default()
    };
    let created = docker
        .create_exec(container, config)
        .await
        .with_context(|| format!("starting `{}` in container `{container}`", exec.cmd[0]))?;
    let options = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: Some(OUTPUT_CAPACITY),
    };
    let started = docker
        .start_exec(&created.id, Some(options))
        .await
        .with_context(|| format!("starting `{}` in container `{container}`", exec.cmd[0]))?;
    let StartExecResults::Attached { mut output, input } = started else {
        anyhow::bail!("the engine detached the exec");
    };

    let (pid_tx, pid_rx) = tokio::sync::watch::channel(None::<u32>);
    // Stops the process (when its pid is known) instead of letting it see the end of its input.
    let stop = || {
        let mut pid_rx = pid_rx.clone();
        async move {
            if !report_pid {
                return;
            }
            let wait = pid_rx.wait_for(|p| p.is_some());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), wait).await;
            let pid = *pid_rx.borrow();
            if let Some(pid) = pid {
                kill(docker, container, pid).await;
            }
        }
    };
    let feeder = async {
        let Some(mut rx) = stdin else {
            drop(input);
            return Ok(());
        };
        let mut input = input;
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                _ = cancel.cancelled() => return Ok(()),
            };
            match item {
                Some(Ok(chunk)) => {
                    // An error: the process stopped reading (its stderr says why).
                    input.write_all(&chunk).await?;
                }
                Some(Err(e)) => {
                    stop().await;
                    return Err(e);
                }
                None => break,
            }
        }
        input.shutdown().await?;
        Ok::<(), io::Error>(())
    };
    let watchdog = async {
        cancel.cancelled().await;
        stop().await;
        std::future::pending::<()>().await;
    };
    let reader = async {
        let mut stderr: Vec<u8> = Vec::new();
        let mut pid_line: Option<Vec<u8>> = report_pid.then(Vec::new);
        let mut receiver_gone = false;
        while let Some(frame) = output.next().await {
            match frame.context("reading the process's output from the engine")? {
                bollard::container::LogOutput::StdOut { message } if !receiver_gone => {
                    receiver_gone = stdout.send(Ok(message)).await.is_err();
                }
                bollard::container::LogOutput::StdErr { message } => {
                    let mut rest = &message[..];
                    if let Some(line) = pid_line.as_mut() {
                        match rest.iter().position(|&b| b == b'\n') {
                            Some(i) => {
                                line.extend_from_slice(&rest[..i]);
                                rest = &rest[i + 1..];
                                let pid = String::from_utf8_lossy(line).trim().parse().ok();
                                let _ = pid_tx.send(pid);
                                pid_line = None;
                            }
                            None => {
                                line.extend_from_slice(rest);
                                rest = &[];
                            }
                        }
                    }
                    stderr.extend_from_slice(rest);
                    if stderr.len() > 2 * STDERR_KEEP {
                        stderr.drain(..stderr.len() - STDERR_KEEP);
                    }
                }
                _ => {}
            }
        }
        Ok::<_, anyhow::Error>(stderr)
    };
    let (fed, read) = tokio::join!(feeder, async {
        tokio::select! {
            r = reader => r,
            _ = watchdog => unreachable!("the watchdog never ends"),
        }
    });
    let stderr = read?;
    if cancel.is_cancelled() {
        return Err(UserError::interrupted().into());
    }
    let inspected = docker
        .inspect_exec(&created.id)
        .await
        .context("reading the exit status of the process")?;
    let finished = Finished {
        exit_code: inspected.exit_code.unwrap_or(-1),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        pid: *pid_tx.borrow(),
    };
    if let Err(e) = fed {
        // A broken pipe means the process exited early: its status and stderr tell why.
        if e.kind() != io::ErrorKind::BrokenPipe || finished.success() {
            return Err(anyhow::Error::new(e).context("feeding the process's input"));
        }
    }
    Ok(finished)
}

/// Runs `exec` without input and returns its status and all of its (small) stdout.
pub async fn output(docker: &Docker, container: &str, exec: &Exec) -> Result<(Finished, Vec<u8>)> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(16);
    let collect = async {
        let mut out = Vec::new();
        while let Some(Ok(chunk)) = rx.recv().await {
            out.extend_from_slice(&chunk);
        }
        out
    };
    let never = CancellationToken::new();
    let (finished, out) = tokio::join!(
        run(docker, container, exec, None, tx, false, &never),
        collect
    );
    Ok((finished?, out))
}

/// Sends SIGTERM to `pid` inside `container` (best effort). Boxed, with its type spelled out:
/// `run` calls it, and it runs an exec of its own.
pub fn kill<'a>(
    docker: &'a Docker,
    container: &'a str,
    pid: u32,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let exec = Exec::new(&["sh", "-c", &format!("kill -TERM {pid}")]);
        if let Err(e) = output(docker, container, &exec).await {
            crate::output::warn(&format!("could not stop process {pid} in {container}: {e}"));
        }
    })
}
