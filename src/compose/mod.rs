//! Compose projects: which project and volumes are meant, the compose file's model, the bundle
//! format that carries a whole project, and the naming and labels that let compose adopt
//! imported volumes.

pub mod adopt;
pub mod bundle;
pub mod dumps;
pub mod model;
pub mod project;
pub mod volumes;

pub use project::{resolve_project, Project};
pub use volumes::{project_volumes, ProjectVolume};
