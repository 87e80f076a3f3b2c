//! The Docker edge: context resolution and connection, volumes and containers (the only places
//! that list them), the labels the tool reads and writes, helper containers, and the bridges
//! between the engine's archive endpoints (async streams) and the synchronous archive code.

pub mod connect;
pub mod containers;
pub mod context;
pub mod df;
pub mod exec;
pub mod helper;
pub mod identity;
pub mod insecure_tls;
pub mod labels;
pub mod lock;
pub mod owner;
pub mod quiesce;
pub mod ssh;
pub mod stream;
pub mod volumes;

use anyhow::Result;
use bollard::Docker;

use crate::output::Printer;

pub use context::Endpoint;
pub use helper::Helper;
pub use identity::{EngineIdentity, Flavour};

/// A connected engine and what we know about how it was reached.
pub struct Engine {
    pub docker: Docker,
    pub endpoint: Endpoint,
    pub server_version: String,
    /// Docker Engine or Podman, and which one (see [`identity`]). Every difference between the
    /// two is handled inside this edge; commands never branch on the flavour.
    pub identity: EngineIdentity,
    /// Why the ssh processes of this connection ended badly (never written for other transports).
    ssh_failures: ssh::FailureLog,
    /// How chatty stderr is, for what the edge reports (ssh's words with `-D`).
    pub out: Printer,
}

impl Engine {
    /// Connects to the endpoint of the resolved context and asks the engine for its version.
    pub async fn connect(endpoint: Endpoint, out: Printer) -> Result<Engine> {
        let (docker, ssh_failures) = connect::connect(&endpoint, out).await?;
        crate::journal::engine(endpoint.journal_ref());
        let (version, info) = tokio::join!(docker.version(), docker.info());
        let version = version.ok();
        let flavour = Flavour::from_components(
            version
                .iter()
                .flat_map(|v| v.components.iter().flatten())
                .map(|c| c.name.as_str()),
        );
        let server_version = version.and_then(|v| v.version).unwrap_or_default();
        let info = info.ok();
        let field = |f: fn(&bollard::models::SystemInfo) -> Option<&String>| {
            info.as_ref().and_then(f).cloned().unwrap_or_default()
        };
        let identity = EngineIdentity::new(
            flavour,
            &field(|i| i.id.as_ref()),
            &field(|i| i.name.as_ref()),
            &field(|i| i.docker_root_dir.as_ref()),
        );
        Ok(Engine {
            docker,
            endpoint,
            server_version,
            identity,
            ssh_failures,
            out,
        })
    }

    /// Why the ssh connection of this engine broke during the run, if it is an ssh endpoint and
    /// one did since `since`: a transfer cut midway surfaces as a body error that does not say.
    pub fn ssh_failure(&self, since: std::time::Instant) -> Option<ssh::SshError> {
        self.ssh_failures.since(since)
    }

    /// Whether a volume read through this engine carries its owners ([`helper::Endpoints`]):
    /// where it does not (Podman), a copy from one volume into another inside the engine would
    /// lose them.
    pub fn reads_owners(&self) -> bool {
        helper::Endpoints::of(self.identity.flavour).reports_owners()
    }

    /// How the engine is named in messages and manifests: ``context `x` (unix:///...)``.
    pub fn describe(&self) -> String {
        self.endpoint.to_string()
    }

    /// Where a manifest says its volumes were read from: the context, its host, the engine's
    /// version and identity.
    pub fn source_info(&self) -> crate::archive::SourceInfo {
        let id = &self.identity;
        crate::archive::SourceInfo {
            context: self.endpoint.context.clone(),
            endpoint: self.endpoint.host.to_string(),
            engine_version: self.server_version.clone(),
            engine: Some(crate::archive::EngineInfo {
                flavour: id.flavour.to_string(),
                id: id.id.clone(),
                name: id.name.clone(),
                label: id.label(),
            }),
        }
    }
}

/// Whether a bollard error is the engine's 404.
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether a container create failed because the name is taken: Docker answers 409, Podman 500
/// with "that name is already in use".
pub fn is_name_conflict(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 409 || (*status_code == 500 && message.contains("already in use")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn a_taken_name_is_409_or_podman_s_500() {
        assert!(is_name_conflict(&answer(
            409,
            "Conflict. The container name is in use"
        )));
        assert!(is_name_conflict(&answer(
            500,
            "container create: creating container storage: the container name \"dvb-lock-v\" \
             is already in use by 164ee. You have to remove that container to be able to reuse \
             that name: that name is already in use"
        )));
        assert!(!is_name_conflict(&answer(500, "no space left on device")));
        assert!(!is_name_conflict(&answer(404, "already in use")));
    }
}
