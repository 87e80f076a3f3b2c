//! The ssh master processes of SFTP repositories that outlive their run. OpenDAL's SFTP
//! service connects through the openssh crate, which starts a master (`ssh -M -f -S
//! DIR/master`, `ControlPersist=yes`) in a `.ssh-connection*` directory of the state directory
//! and ends it when the connection is dropped. Two kinds outlive that: every master of a run
//! killed with SIGKILL (it drops nothing), and a master whose connection attempt was dropped
//! part way (the crate removes its directory, while the ssh it started goes on to connect with
//! no control socket: seen under load). Each master inherits the run's `ENV_RUN` mark
//! (`PID/START`), so masters are found by process and mark: the next run that reaches an SFTP
//! repository ends those whose run is gone, and each run ends its own still up as it exits.
//! Masters of live runs and of other programs are not touched.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::docker::owner::{process_gone, ENV_RUN};

/// The prefix of the openssh crate's control directories.
const PREFIX: &str = ".ssh-connection";

/// Where the openssh crate makes its control directories: `$XDG_STATE_HOME` when absolute,
/// else `~/.local/state` (its own rule).
fn control_root() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
        if xdg.is_absolute() {
            return Some(xdg);
        }
    }
    dirs::home_dir().map(|h| h.join(".local/state"))
}

/// One process: its pid, its arguments, its environment.
struct Process {
    pid: u32,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
}

/// The processes of this user that can be read (`/proc/PID/cmdline` and `environ`).
fn processes() -> Vec<Process> {
    let split = |b: Vec<u8>| -> Vec<Vec<u8>> {
        b.split(|c| *c == 0)
            .filter(|a| !a.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let args = split(std::fs::read(e.path().join("cmdline")).ok()?);
            let env = split(std::fs::read(e.path().join("environ")).ok()?);
            Some(Process { pid, args, env })
        })
        .collect()
}

/// An ssh master of the openssh crate's: its pid, its control socket (`ROOT/.ssh-connectionX/
/// master`) and the run mark (`PID/START`) it inherited, if any.
#[derive(Debug, PartialEq)]
struct Master<'a> {
    pid: u32,
    socket: PathBuf,
    mark: Option<&'a [u8]>,
}

/// The masters among `processes` whose control socket is in a control directory of `root`: an
/// `ssh` with `-M` and `-S ROOT/.ssh-connection*/master`. Found by process, not by directory: a
/// master whose directory is gone (the crate removes it when a connection attempt is dropped
/// part way, while the ssh it started goes on to connect) is still found.
fn masters<'a>(root: &Path, processes: &'a [Process]) -> Vec<Master<'a>> {
    let key = format!("{ENV_RUN}=");
    processes
        .iter()
        .filter(|p| p.args.iter().any(|a| a == b"-M"))
        .filter_map(|p| {
            let socket = p.args.windows(2).find(|w| w[0] == b"-S")?[1].as_slice();
            let socket = Path::new(std::ffi::OsStr::from_bytes(socket));
            let dir = socket.parent()?;
            let in_root = dir.parent() == Some(root)
                && dir
                    .file_name()
                    .is_some_and(|n| n.as_bytes().starts_with(PREFIX.as_bytes()));
            if !in_root {
                return None;
            }
            let mark = p.env.iter().find_map(|v| v.strip_prefix(key.as_bytes()));
            Some(Master {
                pid: p.pid,
                socket: socket.to_path_buf(),
                mark,
            })
        })
        .collect()
}

/// Ends `master`: asked through its control socket when there is one, else (or if that fails)
/// sent SIGTERM, on which ssh closes its connection and exits. Its control directory goes too.
fn end(master: &Master) -> bool {
    let asked = master.socket.exists()
        && Command::new("ssh")
            .arg("-S")
            .arg(&master.socket)
            .args(["-O", "exit", "stale-master"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let ended = asked || {
        let pid = libc::pid_t::try_from(master.pid).unwrap_or(0);
        // SAFETY: kill(2) with a pid read from /proc and a valid signal; it touches no memory.
        pid > 0 && unsafe { libc::kill(pid, libc::SIGTERM) } == 0
    };
    if ended {
        if let Some(dir) = master.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    ended
}

/// Ends the masters of this user's control directories whose run `is_theirs` says; how many.
fn end_where(is_theirs: impl Fn(&[u8]) -> bool) -> usize {
    let Some(root) = control_root() else {
        return 0;
    };
    let processes = processes();
    masters(&root, &processes)
        .iter()
        .filter(|m| m.mark.is_some_and(&is_theirs))
        .filter(|m| end(m))
        .count()
}

/// Ends the masters that runs of this tool, now gone, left; says how many. Best effort: a
/// master that will not end is left as it was.
pub fn end_stale() -> usize {
    end_where(|mark| std::str::from_utf8(mark).ok().and_then(process_gone) == Some(true))
}

/// Whether this process reached an SFTP repository (so may have started masters).
static REACHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `end_stale`, once per process, with a warning when it ended any.
pub fn end_stale_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    REACHED.store(true, std::sync::atomic::Ordering::Relaxed);
    ONCE.call_once(|| {
        let n = end_stale();
        if n > 0 {
            crate::output::warn(&format!(
                "ended {n} ssh connection{} to an SFTP repository that a killed run left running",
                if n == 1 { "" } else { "s" }
            ));
        }
    });
}

/// At the end of the run: ends the masters this run started that are still running. The
/// openssh crate ends a master when its connection is dropped; one whose connection attempt
/// was dropped part way has no connection to drop, and would stay connected for ever. Says
/// how many it ended.
pub fn end_own() -> usize {
    if !REACHED.load(std::sync::atomic::Ordering::Relaxed) {
        return 0;
    }
    let me = crate::docker::owner::process_tag();
    end_where(|mark| mark == me.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, args: &[&str], env: &[&str]) -> Process {
        Process {
            pid,
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            env: env.iter().map(|a| a.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn the_masters_of_a_control_root_and_their_runs() {
        let all = [
            // A session through a master: not a master.
            p(
                10,
                &["ssh", "-S", "/s/.ssh-connectionAB/master", "-T", "h"],
                &["X=1"],
            ),
            p(
                11,
                &[
                    "ssh",
                    "-E",
                    "log",
                    "-S",
                    "/s/.ssh-connectionAB/master",
                    "-M",
                    "-f",
                    "-N",
                    "h",
                ],
                &["HOME=/root", "DOCKER_VOLUME_BACKUP_RUN=42/7"],
            ),
            // Another program's master in the same root: no mark.
            p(12, &["ssh", "-S", "/s/.ssh-connectionCD/master", "-M"], &[]),
            // Masters elsewhere: another root, a directory of another name, a nested one.
            p(
                13,
                &["ssh", "-M", "-S", "/t/.ssh-connectionEF/master"],
                &["DOCKER_VOLUME_BACKUP_RUN=1/2"],
            ),
            p(14, &["ssh", "-M", "-S", "/s/mux/master"], &[]),
            p(
                15,
                &["ssh", "-M", "-S", "/s/x/.ssh-connectionGH/master"],
                &[],
            ),
            // A master without its socket option: not one of the crate's.
            p(16, &["ssh", "-M", "h"], &[]),
        ];
        let found = masters(Path::new("/s"), &all);
        assert_eq!(
            found,
            vec![
                Master {
                    pid: 11,
                    socket: "/s/.ssh-connectionAB/master".into(),
                    mark: Some(&b"42/7"[..]),
                },
                Master {
                    pid: 12,
                    socket: "/s/.ssh-connectionCD/master".into(),
                    mark: None,
                },
            ]
        );
    }
}
