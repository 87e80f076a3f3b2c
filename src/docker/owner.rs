//! Who made an engine object: this run's identity (a run id unique to the process, the host, the
//! pid and when it started), written as labels on everything a run creates (helpers, scratch
//! volumes, volumes, locks), so that nothing is removed unless it is this run's own, and so that
//! what a run left behind can be told gone (its process is dead) from still at work.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::labels;

/// The run that made an object, as its labels say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Unique to one process: 16 hex digits.
    pub run: String,
    /// The host name, for people.
    pub host: String,
    /// What tells two process tables apart: the boot id and the pid namespace. Two runs with the
    /// same machine see each other's pids.
    pub machine: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat`), so that a pid
    /// reused by another process is not taken for the run.
    pub pid_start: u64,
    /// When the run started, RFC 3339.
    pub started: String,
}

/// Whether the run that made an object still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Its process is gone (or its pid belongs to another process now).
    Gone,
    /// It ran on another machine: its process cannot be seen from here.
    Unknown,
}

impl Owner {
    /// This run.
    pub fn this_run() -> &'static Owner {
        static THIS: OnceLock<Owner> = OnceLock::new();
        THIS.get_or_init(|| {
            let pid = std::process::id();
            let host =
                read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into());
            let machine = machine();
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let mut hasher = blake3::Hasher::new();
            hasher.update(&nanos.to_le_bytes());
            hasher.update(&pid.to_le_bytes());
            hasher.update(host.as_bytes());
            hasher.update(machine.as_bytes());
            let run = hasher.finalize().to_hex()[..16].to_string();
            Owner {
                run,
                host,
                machine,
                pid,
                pid_start: pid_start(pid).unwrap_or_default(),
                started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }
        })
    }

    /// The labels that record the owner.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (labels::RUN.to_string(), self.run.clone()),
            (labels::RUN_HOST.to_string(), self.host.clone()),
            (labels::RUN_MACHINE.to_string(), self.machine.clone()),
            (
                labels::RUN_PID.to_string(),
                format!("{}/{}", self.pid, self.pid_start),
            ),
            (labels::RUN_STARTED.to_string(), self.started.clone()),
        ])
    }

    /// The owner the labels record, if they record one.
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let run = labels.get(labels::RUN)?.clone();
        let (pid, pid_start) = get(labels::RUN_PID)
            .split_once('/')
            .and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)))
            .unwrap_or((0, 0));
        Some(Owner {
            run,
            host: get(labels::RUN_HOST),
            machine: get(labels::RUN_MACHINE),
            pid,
            pid_start,
            started: get(labels::RUN_STARTED),
        })
    }

    /// Whether this is the current run.
    pub fn is_this_run(&self) -> bool {
        self.run == Owner::this_run().run
    }

    /// Whether the run still runs: known only for runs on this machine.
    pub fn liveness(&self) -> Liveness {
        let me = Owner::this_run();
        if self.run == me.run {
            return Liveness::Alive;
        }
        if self.machine.is_empty() || self.pid == 0 {
            return Liveness::Unknown;
        }
        if self.machine != me.machine {
            // Another host, container or boot: its process table is not ours to look at.
            return Liveness::Unknown;
        }
        match pid_start(self.pid) {
            Some(start) if start == self.pid_start => Liveness::Alive,
            _ => Liveness::Gone,
        }
    }

    /// `run 0f3c... (pid 4121 on host build-1, started 2026-11-30T01:02:03Z)`.
    pub fn describe(&self) -> String {
        format!(
            "run {} (pid {} on host {}, started {})",
            self.run, self.pid, self.host, self.started
        )
    }
}

/// The environment variable through which the processes a run starts (and theirs) name it:
/// `PID/START` (see `process_tag`). An ssh master left by a killed run is told by it.
pub const ENV_RUN: &str = "DOCKER_VOLUME_BACKUP_RUN";

/// This process as `PID/START` (its start time in clock ticks since boot).
pub fn process_tag() -> String {
    let me = Owner::this_run();
    format!("{}/{}", me.pid, me.pid_start)
}

/// Whether the process a `process_tag` names (on this machine) is gone: no such pid, or the pid
/// is another process's now. `None` for a tag that is not one.
pub fn process_gone(tag: &str) -> Option<bool> {
    let (pid, start) = tag.split_once('/')?;
    let (pid, start): (u32, u64) = (pid.parse().ok()?, start.parse().ok()?);
    Some(pid_start(pid) != Some(start))
}

/// `<boot id>/<pid namespace>`.
fn machine() -> String {
    let boot = read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if boot.is_empty() {
        return String::new();
    }
    format!("{boot}/{ns}")
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The start time of process `pid` in clock ticks since boot, if it exists.
fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start(&stat)
}

/// Field 22 of `/proc/PID/stat`; the command name (field 2) may hold spaces and parentheses.
fn parse_start(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_gone_and_a_dead_one_is() {
        assert_eq!(process_gone(&process_tag()), Some(false));
        let me = Owner::this_run();
        assert_eq!(
            process_gone(&format!("{}/{}", me.pid, me.pid_start + 1)),
            Some(true)
        );
        assert_eq!(process_gone("nonsense"), None);
    }

    #[test]
    fn the_start_time_is_field_22_even_after_an_odd_command_name() {
        let stat = "4121 (we ird) (x) S 1 4121 4121 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100";
        assert_eq!(parse_start(stat), Some(987654));
        assert_eq!(parse_start("garbage"), None);
    }

    #[test]
    fn this_run_is_alive_and_round_trips_through_labels() {
        let me = Owner::this_run();
        assert_eq!(me.run.len(), 16);
        assert!(me.pid_start > 0);
        let back = Owner::from_labels(&me.labels()).unwrap();
        assert_eq!(&back, me);
        assert_eq!(back.liveness(), Liveness::Alive);
        assert!(back.is_this_run());
    }

    #[test]
    fn a_run_whose_process_is_gone_or_whose_pid_was_reused_is_gone() {
        let me = Owner::this_run();
        // A child that has exited and been reaped: its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            run: "0123456789abcdef".into(),
            pid,
            pid_start: 1,
            ..me.clone()
        };
        assert_eq!(dead.liveness(), Liveness::Gone);
        // This process's pid, but another start time: the pid was reused.
        let reused = Owner {
            run: "0123456789abcdef".into(),
            pid_start: me.pid_start + 1,
            ..me.clone()
        };
        assert_eq!(reused.liveness(), Liveness::Gone);
        let alive = Owner {
            run: "0123456789abcdef".into(),
            ..me.clone()
        };
        assert_eq!(alive.liveness(), Liveness::Alive);
        let elsewhere = Owner {
            run: "0123456789abcdef".into(),
            host: "other".into(),
            machine: "other-boot/pid:[1]".into(),
            ..me.clone()
        };
        assert_eq!(elsewhere.liveness(), Liveness::Unknown);
        assert_eq!(Owner::from_labels(&HashMap::new()), None);
    }
}
