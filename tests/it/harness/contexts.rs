//! A Docker config directory of the test's own, holding contexts made by the real
//! `docker context create` (the user's contexts are never read).

use std::process::Command;

use super::{tempdir, RunExt};

/// A Docker config dir holding contexts made by the real `docker context create`.
pub struct Contexts {
    pub dir: tempfile::TempDir,
}

impl Contexts {
    pub fn new() -> Contexts {
        Contexts { dir: tempdir() }
    }

    pub fn cfg(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    #[track_caller]
    pub fn create(&self, name: &str, docker_spec: &str) {
        Command::new("docker")
            .args(["--config", self.cfg(), "context", "create", name])
            .args(["--docker", docker_spec])
            .run()
            .expect_ok("docker context create failed");
    }
}
