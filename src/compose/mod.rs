//! Compose projects: which project and volumes are meant, the bundle format that carries a whole
//! project, and the naming and labels that let compose adopt imported volumes.

pub mod project;

pub use project::{project_volumes, resolve_project, Project, ProjectVolume};
pub mod adopt;
pub mod bundle;
