//! Compose fixtures: the compose tool on this machine, a project in its own directory taken down
//! on drop, and a volume labelled as compose labels the volumes of a project.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{docker, tempdir, unique, Run, RunExt, Volume};

/// The compose tool on this machine: `docker compose` when the CLI has it, else `docker-compose`
/// (scripts/test-deps.sh installs it when neither is there).
pub fn compose() -> Command {
    static V2: OnceLock<bool> = OnceLock::new();
    let v2 = *V2.get_or_init(|| {
        Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let mut c = if v2 {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    c.stdin(Stdio::null());
    c
}

/// A compose project in its own directory (named after the project, so compose and the tool
/// both derive the name from it), taken down with its volumes on drop.
pub struct Project {
    pub name: String,
    dir: tempfile::TempDir,
    /// Other project names run from the same directory (imports under a new name).
    pub also: Vec<String>,
}

impl Project {
    pub fn new(tag: &str, compose_yaml: &str) -> Project {
        let parent = tempdir();
        let name = unique(tag);
        let path = parent.path().join(&name);
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("docker-compose.yml"), compose_yaml).unwrap();
        // Keep the parent alive as the guard's directory.
        Project {
            name,
            dir: parent,
            also: Vec::new(),
        }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join(&self.name)
    }

    /// Runs compose in the project's directory, for project `name`.
    pub fn compose(&self, name: &str, args: &[&str]) -> Run {
        compose()
            .current_dir(self.path())
            .args(["-p", name])
            .args(args)
            .run()
    }

    /// Containers of project `name` that are running.
    pub fn running(name: &str) -> usize {
        docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={name}"),
        ])
        .split_whitespace()
        .count()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for name in self.also.clone().iter().chain([&self.name.clone()]) {
            let _ = self.compose(name, &["down", "-v", "-t", "1"]);
        }
    }
}

/// Volume `PROJECT_KEY`, labelled as compose labels the volume `KEY` of project `PROJECT`, with
/// `extra` labels (`KEY=VALUE`) besides; removed on drop.
pub fn compose_volume(project: &str, key: &str, extra: &[&str]) -> Volume {
    let v = Volume {
        name: format!("{project}_{key}"),
    };
    let project_label = format!("com.docker.compose.project={project}");
    let volume_label = format!("com.docker.compose.volume={key}");
    let mut args = vec![
        "volume",
        "create",
        "--label",
        &project_label,
        "--label",
        &volume_label,
    ];
    for label in extra {
        args.extend(["--label", label]);
    }
    args.push(&v.name);
    docker(&args);
    v
}
