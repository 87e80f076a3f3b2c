//! Which engine this is: its flavour (Docker Engine or Podman's Docker-compatible API) and a
//! stable identity, so that backups of several engines can share one destination.
//!
//! Docker's `/info` carries an `ID` that the daemon keeps for its lifetime (it is stored in its
//! data root). Podman's compat `/info` answers a fresh random `ID` on every request, so Podman is
//! identified by its host name and storage root (`DockerRootDir`), which differ between rootful
//! and rootless Podman on one machine and between machines.

use serde::{Deserialize, Serialize};

/// What kind of engine answers the Docker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    #[default]
    Docker,
    Podman,
}

impl Flavour {
    /// From the `/version` answer's component names: Podman lists "Podman Engine".
    pub fn from_components<'a>(names: impl IntoIterator<Item = &'a str>) -> Flavour {
        if names
            .into_iter()
            .any(|n| n.to_ascii_lowercase().contains("podman"))
        {
            Flavour::Podman
        } else {
            Flavour::Docker
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Docker => "docker",
            Flavour::Podman => "podman",
        }
    }
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stable identity of one engine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EngineIdentity {
    pub flavour: Flavour,
    /// What identifies the engine: Docker's engine ID; for Podman `podman:<name>:<storage root>`.
    pub id: String,
    /// The engine's host name (`/info` `Name`).
    pub name: String,
}

impl EngineIdentity {
    /// From what `/info` answered.
    pub fn new(flavour: Flavour, info_id: &str, name: &str, root_dir: &str) -> EngineIdentity {
        let id = match flavour {
            Flavour::Docker if !info_id.is_empty() => info_id.to_string(),
            _ => format!("{flavour}:{name}:{root_dir}"),
        };
        EngineIdentity {
            flavour,
            id,
            name: name.to_string(),
        }
    }

    /// Eight hex digits derived from the identity: short enough for a file name, stable.
    pub fn key(&self) -> String {
        let h = blake3::hash(self.id.as_bytes());
        h.to_hex()[..8].to_string()
    }

    /// A readable and unique name for the engine, usable in file names, S3 keys and restic
    /// host names: the host name (lower case, `[a-z0-9-]`, at most 32 characters) and the key,
    /// e.g. `laptop-3f9a1c0b`.
    pub fn label(&self) -> String {
        let mut name: String = self
            .name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        name = name.trim_matches('-').to_string();
        name.truncate(32);
        let name = name.trim_end_matches('-');
        if name.is_empty() {
            format!("{}-{}", self.flavour, self.key())
        } else {
            format!("{name}-{}", self.key())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_from_components() {
        assert_eq!(
            Flavour::from_components(["Podman Engine", "Conmon"]),
            Flavour::Podman
        );
        assert_eq!(
            Flavour::from_components(["Engine", "containerd", "runc"]),
            Flavour::Docker
        );
        assert_eq!(Flavour::from_components([]), Flavour::Docker);
    }

    #[test]
    fn docker_identity_is_its_id_and_podman_its_root() {
        let d = EngineIdentity::new(Flavour::Docker, "GVNV:KLQY", "vm", "/var/lib/docker");
        assert_eq!(d.id, "GVNV:KLQY");
        let p = EngineIdentity::new(Flavour::Podman, "random-uuid", "vm", "/var/lib/containers");
        assert_eq!(p.id, "podman:vm:/var/lib/containers");
        let p2 = EngineIdentity::new(Flavour::Podman, "other-uuid", "vm", "/var/lib/containers");
        assert_eq!(p.key(), p2.key());
        let rootless = EngineIdentity::new(Flavour::Podman, "x", "vm", "/home/u/.local/share");
        assert_ne!(p.key(), rootless.key());
        assert_ne!(d.key(), p.key());
    }

    #[test]
    fn label_is_name_safe() {
        let e = EngineIdentity::new(Flavour::Docker, "id", "My_Laptop.local", "");
        let l = e.label();
        assert!(l.starts_with("my-laptop-local-"), "{l}");
        assert!(l
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        let e = EngineIdentity::new(Flavour::Podman, "", "___", "/r");
        assert!(e.label().starts_with("podman-"), "{}", e.label());
        let e = EngineIdentity::new(Flavour::Docker, "id", &"x".repeat(80), "");
        assert_eq!(e.label().len(), 32 + 1 + 8);
    }
}
