//! Running commands and the record of a finished run: `Run` keeps the command line with the exit
//! code, stdout and stderr, and every assertion on it prints all four when it fails.

use std::ffi::OsStr;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_docker-volume-backup");

/// How much of stdout a failure message shows (it may be an archive).
const STDOUT_SHOWN: usize = 4 * 1024;
/// How much of stderr a failure message shows, half from its start and half from its end.
const STDERR_SHOWN: usize = 16 * 1024;

/// The finished run of a command.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// The command as a shell line (its directory and environment changes included).
    pub command: String,
}

impl Run {
    fn new(command: String, o: Output) -> Run {
        Run {
            // Killed by a signal: no code.
            code: o.status.code().unwrap_or(-1),
            stdout: o.stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            command,
        }
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success\n{self}");
        self
    }

    /// `ok`, with what the command was for in the failure message.
    #[track_caller]
    pub fn expect_ok(self, what: &str) -> Self {
        assert_eq!(self.code, 0, "{what}\n{self}");
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "expected exit {code}\n{self}");
        assert!(
            self.stderr.contains(needle),
            "expected stderr to mention {needle:?}\n{self}"
        );
        self
    }
}

/// The command line, exit code, stdout and stderr, for failure messages.
impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "exit code: {}", self.code)?;
        let out = &self.stdout;
        writeln!(f, "stdout ({} bytes):", out.len())?;
        let shown = &out[..out.len().min(STDOUT_SHOWN)];
        let mut text = String::from_utf8_lossy(shown).into_owned();
        if out.len() > shown.len() {
            text.push_str(&format!("\n[... {} more bytes]", out.len() - shown.len()));
        }
        end_line(f, &text)?;
        let err = self.stderr.as_bytes();
        writeln!(f, "stderr ({} bytes):", err.len())?;
        if err.len() <= STDERR_SHOWN {
            end_line(f, &self.stderr)
        } else {
            let half = STDERR_SHOWN / 2;
            let head = String::from_utf8_lossy(&err[..half]);
            let tail = String::from_utf8_lossy(&err[err.len() - half..]);
            let skipped = err.len() - 2 * half;
            end_line(f, &format!("{head}\n[... {skipped} bytes ...]\n{tail}"))
        }
    }
}

/// `text`, ended by one newline unless it is empty.
fn end_line(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str(text)?;
    if text.is_empty() || text.ends_with('\n') {
        Ok(())
    } else {
        f.write_str("\n")
    }
}

/// `cmd` as a shell line: `cd DIR && VAR=value PROGRAM ARGS`, with the variables it sets (those
/// it removes are not shown) and the values of secret-looking ones masked.
pub fn command_line(cmd: &Command) -> String {
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!("cd {} && ", quote(dir.as_os_str())));
    }
    for (key, value) in cmd.get_envs() {
        let Some(value) = value else { continue };
        let key = key.to_string_lossy();
        let secret = ["SECRET", "PASSWORD", "PWD", "TOKEN"]
            .iter()
            .any(|s| key.contains(s));
        let value = if secret { "***".into() } else { quote(value) };
        line.push_str(&format!("{key}={value} "));
    }
    line.push_str(&quote(cmd.get_program()));
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

/// A word as a shell reads it back.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Running a `Command` so that its line is kept for failure messages.
pub trait RunExt {
    /// Runs the command to the end, capturing stdout and stderr.
    fn run(&mut self) -> Run;
    /// Starts the command; `Running::finish` collects it.
    fn start(&mut self) -> Running;
}

impl RunExt for Command {
    #[track_caller]
    fn run(&mut self) -> Run {
        let command = command_line(self);
        let output = self
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        Run::new(command, output)
    }

    #[track_caller]
    fn start(&mut self) -> Running {
        let command = command_line(self);
        // A started process (a server, a service) may outlive a test process that is killed
        // before its guards run; it must not keep the descriptors the test was started with (a
        // `flock` around the test run would stay held by the orphan). CLOEXEC, not close: std's
        // own exec-error pipe must stay open until the exec.
        // SAFETY: close_range is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            self.pre_exec(|| {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        let child = self
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        Running {
            child: Some(child),
            command,
        }
    }
}

/// A started command (the `Child`, through `Deref`) and its line. Killed if dropped unfinished
/// (a test that fails halfway leaves no process behind, nor the engine lock its process holds).
pub struct Running {
    child: Option<Child>,
    command: String,
}

impl Running {
    /// Waits for the end; stdout and stderr hold what was piped and not taken.
    #[track_caller]
    pub fn finish(mut self) -> Run {
        let child = self.child.take().expect("not finished yet");
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.command));
        Run::new(std::mem::take(&mut self.command), output)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child.as_ref().expect("not finished")
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("not finished")
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
    // Each test keeps the tool's state (journals of killed runs, measured restore times) to
    // itself: a test that leaves a journal on purpose must not make another's output differ.
    c.env("XDG_STATE_HOME", state_home());
    // rustic's cache of remote restic repositories too: never the user's ~/.cache.
    c.env("XDG_CACHE_HOME", state_home().join("cache"));
    c.stdin(Stdio::null());
    c
}

/// The state directory of the calling test: `$TMPDIR/dvb-it-state-<pid>/<test name>`. The
/// directories of earlier test runs whose process is gone are removed on first use.
pub fn state_home() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let tmp = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("dvb-it-state-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        tmp.join(format!("dvb-it-state-{}", std::process::id()))
    });
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .replace("::", "-");
    root.join(test)
}

/// Runs the tool with `args`.
pub fn run(args: &[&str]) -> Run {
    tool().args(args).run()
}

/// Runs the tool in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    tool().current_dir(dir).args(args).run()
}

/// Runs `docker` with `args`, panicking on failure; returns stdout.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    docker_run(args).expect_ok("docker failed").stdout_str()
}

/// Runs `docker` with `args`, returning the run whatever happened.
pub fn docker_run(args: &[&str]) -> Run {
    Command::new("docker").args(args).run()
}

/// `docker inspect` of one field of a container (a Go template such as `{{.State.StartedAt}}`).
#[track_caller]
pub fn container_field(name: &str, template: &str) -> String {
    docker(&["inspect", "-f", template, name])
        .trim()
        .to_string()
}

#[test]
fn a_failed_assertion_shows_the_command_its_code_and_output() {
    let dir = super::tempdir();
    let failed = Command::new("sh")
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///x.sock")
        .env("AWS_SECRET_ACCESS_KEY", "hidden")
        .args(["-c", "echo out; echo err >&2; exit 3", "it's"])
        .run();
    let message = std::panic::catch_unwind(|| failed.ok())
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned())
        .expect("ok() panics with a message");
    let shown = format!(
        "command: cd {} && AWS_SECRET_ACCESS_KEY=*** DOCKER_HOST=unix:///x.sock sh -c \
         'echo out; echo err >&2; exit 3' 'it'\\''s'\n\
         exit code: 3\n\
         stdout (4 bytes):\nout\n\
         stderr (4 bytes):\nerr\n",
        dir.path().display()
    );
    assert!(message.contains(&shown), "{message}");
}
