//! What the context tests share: a temporary home and config directory, a fake environment, and
//! shorthands for hosts.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::store::context_id;
use super::{resolve, ContextError, ContextOptions, Endpoint, Host};

/// A config dir and a fake environment, so tests never see the real ones.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
    pub opts: ContextOptions,
}

impl Fixture {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: HashMap::new(),
            opts: ContextOptions::default(),
        }
    }

    /// The home directory; its `.docker` is the config dir unless a test says otherwise.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn config(&self) -> PathBuf {
        self.home().join(".docker")
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    pub fn write(&self, path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    pub fn config_json(self, content: &str) -> Self {
        self.write(&self.config().join("config.json"), content);
        self
    }

    /// Stores a context the way `docker context create` does (meta.json as the CLI writes it).
    pub fn context(self, name: &str, host: &str, skip_verify: bool, tls_files: &[&str]) -> Self {
        self.context_in(&self.config(), name, host, skip_verify, tls_files);
        self
    }

    pub fn context_in(
        &self,
        config: &Path,
        name: &str,
        host: &str,
        skip: bool,
        tls_files: &[&str],
    ) {
        let meta = serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip}},
        });
        let id = context_id(name);
        self.write(
            &config.join("contexts/meta").join(&id).join("meta.json"),
            &meta.to_string(),
        );
        for file in tls_files {
            self.write(
                &config
                    .join("contexts/tls")
                    .join(&id)
                    .join("docker")
                    .join(file),
                "pem",
            );
        }
    }

    pub fn resolve(&self) -> Result<Endpoint, ContextError> {
        let env = |name: &str| self.env.get(name).cloned();
        resolve(&self.opts, &env, Some(&self.home()))
    }

    pub fn ok(&self) -> Endpoint {
        self.resolve().unwrap()
    }

    pub fn err(&self) -> ContextError {
        self.resolve().unwrap_err()
    }
}

pub fn unix(path: &str) -> Host {
    Host::Unix(PathBuf::from(path))
}

pub fn tcp(host: &str, port: u16) -> Host {
    Host::Tcp {
        host: host.into(),
        port,
    }
}

/// A cert dir holding the three files the CLI looks for.
pub fn cert_dir(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        fs::write(dir.path().join(file), "pem").unwrap();
    }
    dir
}
