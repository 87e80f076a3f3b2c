//! TEMPORARY STUB (replaced by the real module).
use super::context::{Endpoint, Host};
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the Docker daemon of {0}: {1}")]
pub struct ConnectError(String, String);
impl ConnectError { pub fn hint(&self) -> Option<String> { Some("is the Docker daemon running?".into()) } }
pub async fn connect(ep: &Endpoint) -> Result<bollard::Docker, ConnectError> {
    let Host::Unix(p) = &ep.host;
    let d = bollard::Docker::connect_with_unix(&p.to_string_lossy(), 86400, bollard::API_DEFAULT_VERSION).map_err(|e| ConnectError(ep.to_string(), e.to_string()))?;
    let d = tokio::time::timeout(std::time::Duration::from_secs(10), d.negotiate_version()).await.map_err(|_| ConnectError(ep.to_string(), "timeout".into()))?.map_err(|e| ConnectError(ep.to_string(), e.to_string()))?;
    Ok(d)
}
