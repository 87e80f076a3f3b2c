//! Which volumes belong to a compose project on the engine: those compose labelled with the
//! project, plus the external volumes its file declares, with the services that mount each.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use bollard::Docker;

use super::project::Project;
use crate::docker::{containers, labels, volumes};
use crate::error::{Kind, UserError};

/// One volume of a project, as the engine has it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProjectVolume {
    /// The key under `volumes:` in the compose file.
    pub key: String,
    /// The engine's name for it.
    pub name: String,
    pub external: bool,
    pub driver: String,
    #[serde(default)]
    pub options: HashMap<String, String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
    /// Services that mount it.
    #[serde(default)]
    pub services: Vec<String>,
}

/// The project's volumes on the engine: those labelled with the project, then the external ones
/// its compose file declares (a declared external volume the engine lacks is an error: the
/// project could not start without it either).
pub async fn project_volumes(docker: &Docker, project: &Project) -> Result<Vec<ProjectVolume>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={}", labels::COMPOSE_PROJECT, project.name)],
    )]);
    let listed = volumes::list(docker, filters).await?;
    let mounted = mounts_by_service(docker, &project.name).await?;
    let mut out = Vec::new();
    for v in listed {
        let key = v
            .labels
            .get(labels::COMPOSE_VOLUME)
            .cloned()
            .or_else(|| {
                v.name
                    .strip_prefix(&format!("{}_", project.name))
                    .map(String::from)
            })
            .unwrap_or_else(|| v.name.clone());
        out.push(ProjectVolume {
            services: services_of(project, &key, &v.name, &mounted),
            key,
            name: v.name,
            external: false,
            driver: v.driver,
            options: v.options,
            labels: v.labels,
        });
    }
    for (key, decl) in &project.model.volumes {
        if !decl.external {
            continue;
        }
        let name = decl.name.clone().unwrap_or_else(|| key.clone());
        if out.iter().any(|v| v.name == name) {
            continue;
        }
        let v = volumes::inspect(docker, &name).await?.ok_or_else(|| {
            UserError::new(
                Kind::NotFound,
                format!(
                    "external volume `{name}` (key `{key}` in the compose file) does not exist"
                ),
            )
        })?;
        out.push(ProjectVolume {
            services: services_of(project, key, &name, &mounted),
            key: key.clone(),
            name,
            external: true,
            driver: v.driver,
            options: v.options,
            labels: v.labels,
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Volume name to the services of the project whose containers mount it.
async fn mounts_by_service(
    docker: &Docker,
    project: &str,
) -> Result<HashMap<String, BTreeSet<String>>> {
    let mut by_volume: HashMap<String, BTreeSet<String>> = HashMap::new();
    for c in containers::of_project(docker, project).await? {
        let Some(service) = c.label(labels::COMPOSE_SERVICE) else {
            continue;
        };
        for name in &c.volumes {
            by_volume
                .entry(name.clone())
                .or_default()
                .insert(service.to_string());
        }
    }
    Ok(by_volume)
}

fn services_of(
    project: &Project,
    key: &str,
    name: &str,
    mounted: &HashMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut all: BTreeSet<String> = project.model.services_mounting(key).cloned().collect();
    if let Some(s) = mounted.get(name) {
        all.extend(s.iter().cloned());
    }
    all.into_iter().collect()
}
