//! The ssh master processes of SFTP repositories that a killed run left running. OpenDAL's
//! SFTP service connects through the openssh crate, which starts a master (`ssh -M -f -S
//! DIR/master`, `ControlPersist=yes`) in a `.ssh-connection*` directory of the state directory
//! and ends it when the connection is dropped. A run killed with SIGKILL drops nothing: its
//! masters stay, connected, for ever. Each inherits the run's `ENV_RUN` mark (`PID/START`), so
//! the next run that reaches an SFTP repository ends exactly those whose run is gone; masters
//! of live runs and of other programs are not touched.

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

/// The run mark (`PID/START`) of the master process whose control socket is `socket`, if one
/// runs: an `ssh` with `-M` and `-S socket`.
fn master_run<'a>(socket: &Path, processes: &'a [Process]) -> Option<(u32, Option<&'a [u8]>)> {
    let socket = socket.as_os_str().as_bytes();
    let master = processes.iter().find(|p| {
        p.args.iter().any(|a| a == b"-M")
            && p.args.windows(2).any(|w| w[0] == b"-S" && w[1] == socket)
    })?;
    let key = format!("{ENV_RUN}=");
    let mark = master
        .env
        .iter()
        .find_map(|v| v.strip_prefix(key.as_bytes()));
    Some((master.pid, mark))
}

/// Ends the masters that runs of this tool, now gone, left; says how many. Best effort: a
/// master that will not end is left as it was.
pub fn end_stale() -> usize {
    let Some(root) = control_root() else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return 0;
    };
    let dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    if dirs.is_empty() {
        return 0;
    }
    let processes = processes();
    let mut ended = 0;
    for dir in dirs {
        let socket = dir.join("master");
        let Some((_, Some(mark))) = master_run(&socket, &processes) else {
            continue;
        };
        let gone = std::str::from_utf8(mark).ok().and_then(process_gone);
        if gone != Some(true) {
            continue;
        }
        let exited = Command::new("ssh")
            .arg("-S")
            .arg(&socket)
            .args(["-O", "exit", "stale-master"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if exited {
            let _ = std::fs::remove_dir_all(&dir);
            ended += 1;
        }
    }
    ended
}

/// `end_stale`, once per process, with a warning when it ended any.
pub fn end_stale_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
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
    fn the_master_of_a_socket_and_its_run() {
        let socket = Path::new("/s/.ssh-connectionAB/master");
        let all = [
            // A session through the master: not the master.
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
            p(12, &["ssh", "-S", "/s/.ssh-connectionCD/master", "-M"], &[]),
        ];
        assert_eq!(master_run(socket, &all), Some((11, Some(&b"42/7"[..]))));
        // Another program's master: no mark.
        assert_eq!(
            master_run(Path::new("/s/.ssh-connectionCD/master"), &all),
            Some((12, None))
        );
        assert_eq!(master_run(Path::new("/elsewhere"), &all), None);
    }
}
