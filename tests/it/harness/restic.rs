//! restic repositories made with the restic CLI (Debian's), removed when the guard drops:
//! snapshots laid out as the tool writes them (paths `/<volume>`, host = the engine's label,
//! tags `docker-volume-backup`, `volume=`, `engine=`), taken of a volume's directory mounted
//! at `/<volume>` in a mount namespace of its own, and snapshots restic makes of any directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_volume_backup::docker::identity::EngineIdentity;

use super::{docker, run::RunExt, tempdir, tool, Run};

pub const RESTIC_PASSWORD: &str = "correct horse battery staple";

pub struct ResticRepo {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub password_file: PathBuf,
}

impl ResticRepo {
    /// `restic init` in a new temporary directory.
    pub fn init() -> ResticRepo {
        let dir = tempdir();
        let path = dir.path().join("repo");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{RESTIC_PASSWORD}\n")).unwrap();
        let repo = ResticRepo {
            _dir: dir,
            path,
            password_file,
        };
        repo.restic(&["init"]).expect_ok("restic init");
        repo
    }

    /// A repository that is already there (made by the tool), for the restic CLI.
    pub fn existing(path: PathBuf, password_file: PathBuf) -> ResticRepo {
        ResticRepo {
            _dir: tempdir(),
            path,
            password_file,
        }
    }

    /// `restic:PATH`, as the tool takes it.
    pub fn url(&self) -> String {
        format!("restic:{}", self.path.display())
    }

    /// The restic CLI on this repository (password from the file; no cache).
    pub fn restic(&self, args: &[&str]) -> Run {
        Command::new("restic")
            .env("RESTIC_REPOSITORY", &self.path)
            .env("RESTIC_PASSWORD_FILE", &self.password_file)
            .env_remove("RESTIC_PASSWORD")
            .arg("--no-cache")
            .args(args)
            .run()
    }

    /// The tool, with the repository's password in `RESTIC_PASSWORD_FILE`.
    pub fn tool(&self, args: &[&str]) -> Run {
        tool()
            .env("RESTIC_PASSWORD_FILE", &self.password_file)
            .env_remove("RESTIC_PASSWORD")
            .args(args)
            .run()
    }

    /// `restic backup` of `dirs` with extra arguments; the new snapshot's full ID.
    pub fn backup(&self, dirs: &[&Path], extra: &[&str]) -> String {
        let mut args = vec!["backup", "--json"];
        args.extend_from_slice(extra);
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        args.extend(dirs.iter().map(String::as_str));
        let run = self.restic(&args).expect_ok("restic backup");
        snapshot_id(&run)
    }

    /// A snapshot of `volume` as the tool lays it out: the volume's directory mounted at
    /// `/<volume>` (in a mount namespace of its own), host `host`, the tool's tags. `time` is
    /// restic's `--time` (`YYYY-MM-DD HH:MM:SS`).
    pub fn backup_volume(&self, volume: &str, host: &str, time: Option<&str>) -> String {
        let source = docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", volume]);
        let mount = format!("/{volume}");
        std::fs::create_dir(&mount).expect("a mount point for the volume");
        let tags = format!(
            "docker-volume-backup,volume={volume},engine={}",
            engine_identity().key()
        );
        let mut script = String::from(
            r#"mount --make-rprivate / && mount --bind "$1" "$2" && shift 2 && exec restic --no-cache backup --json "$@""#,
        );
        script.push('\n');
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "sh", "-c", &script, "sh", source.trim(), &mount])
            .args(["--host", host, "--tag", &tags])
            .env("RESTIC_REPOSITORY", &self.path)
            .env("RESTIC_PASSWORD_FILE", &self.password_file);
        if let Some(t) = time {
            cmd.args(["--time", t]);
        }
        cmd.arg(&mount);
        let run = cmd.run();
        let _ = std::fs::remove_dir(&mount);
        snapshot_id(&run.expect_ok("restic backup of the volume"))
    }

    /// Snapshot IDs, as `restic snapshots --json` lists them (oldest first).
    pub fn snapshot_ids(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["snapshots", "--json"];
        args.extend_from_slice(extra);
        let run = self.restic(&args).expect_ok("restic snapshots");
        let list: Vec<serde_json::Value> = serde_json::from_slice(&run.stdout).unwrap();
        list.iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn snapshot_id(run: &Run) -> String {
    let out = run.stdout_str();
    for line in out.lines().rev() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(id) = v["snapshot_id"].as_str() {
                return id.to_string();
            }
        }
    }
    panic!("no snapshot ID in restic's output\n{run}");
}

/// The test engine's identity, as the tool computes it (its label is restic's host).
pub fn engine_identity() -> EngineIdentity {
    super::engine_identity_of(None, false)
}
