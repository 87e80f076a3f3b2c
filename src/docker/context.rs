//! TEMPORARY STUB (replaced by the real module).
use std::path::{Path, PathBuf};
#[derive(Debug, Clone, Default)]
pub struct ContextOptions { pub config_dir: Option<PathBuf>, pub context: Option<String>, pub hosts: Vec<String>, pub tls: bool, pub tlsverify: Option<bool>, pub tlscacert: Option<PathBuf>, pub tlscert: Option<PathBuf>, pub tlskey: Option<PathBuf> }
#[derive(Debug, Clone)]
pub enum Origin { Default }
#[derive(Debug, Clone)]
pub enum Host { Unix(PathBuf) }
impl std::fmt::Display for Host { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { match self { Host::Unix(p) => write!(f, "unix://{}", p.display()) } } }
#[derive(Debug, Clone)]
pub struct Tls;
#[derive(Debug, Clone)]
pub struct Endpoint { pub context: String, pub origin: Origin, pub host: Host, pub tls: Option<Tls> }
impl std::fmt::Display for Endpoint { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "context `{}` ({})", self.context, self.host) } }
#[derive(Debug, thiserror::Error)]
#[error("context error")]
pub struct ContextError;
pub fn resolve(_o: &ContextOptions, env: &dyn Fn(&str) -> Option<String>, _h: Option<&Path>) -> Result<Endpoint, ContextError> {
    let host = env("DOCKER_HOST").and_then(|h| h.strip_prefix("unix://").map(PathBuf::from)).unwrap_or_else(|| "/var/run/docker.sock".into());
    Ok(Endpoint { context: "default".into(), origin: Origin::Default, host: Host::Unix(host), tls: None })
}
