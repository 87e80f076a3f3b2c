//! Logical dumps of a compose project's database services, carried in its bundle beside the raw
//! volumes (`compose-export --with-dumps`) and replayed into the running services of the
//! imported project (`compose-import --replay-dumps`). The dumps themselves are db-dump's and
//! db-restore's: this module only finds the services and names the files.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use serde::{Deserialize, Serialize};

use super::project::{LABEL_PROJECT, LABEL_SERVICE};
use crate::db::dump::DumpPlan;
use crate::db::{DumpFormat, Flavor, Overrides, Server};
use crate::error::{Kind, UserError};

/// One dump in a bundle manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleDump {
    /// The compose service it was taken from.
    pub service: String,
    /// The container that ran it.
    pub container: String,
    pub engine: Flavor,
    /// The server's version, as it reported it.
    pub version: String,
    /// The database dumped; `None` for a dump of every database (pg_dumpall, --all-databases).
    pub database: Option<String>,
    pub format: DumpFormat,
    /// The parts' common name in a bundle, the file name in a split directory.
    pub file: String,
}

/// The running containers of `project`, one per service (the lowest container number): the
/// service's name and the container's id.
pub async fn running_services(docker: &Docker, project: &str) -> Result<Vec<(String, String)>> {
    let options = ListContainersOptions {
        all: false,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROJECT}={project}")],
        )])),
        ..Default::default()
    };
    let containers = docker
        .list_containers(Some(options))
        .await
        .context("listing the project's containers")?;
    let mut by_service: HashMap<String, (u32, String)> = HashMap::new();
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        let (Some(service), Some(id)) = (labels.get(LABEL_SERVICE), c.id) else {
            continue;
        };
        let number = labels
            .get("com.docker.compose.container-number")
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX);
        let entry = by_service
            .entry(service.clone())
            .or_insert((number, id.clone()));
        if number < entry.0 {
            *entry = (number, id);
        }
    }
    let mut out: Vec<(String, String)> = by_service
        .into_iter()
        .map(|(service, (_, id))| (service, id))
        .collect();
    out.sort();
    Ok(out)
}

/// A dump plan for each running database service of `project`: every database of the server
/// (pg_dumpall / --all-databases), so that roles, grants and all databases replay, not only
/// the one the container was made for. Services that are not databases are left out.
pub async fn plan(docker: &Docker, project: &str) -> Result<Vec<(String, DumpPlan)>> {
    let mut plans = Vec::new();
    for (service, id) in running_services(docker, project).await? {
        let Some(server) = Server::find_database(docker, &id, &Overrides::default()).await?
        else {
            continue;
        };
        let plan = DumpPlan::prepare(server, None, true, DumpFormat::Plain)
            .await
            .with_context(|| format!("preparing the dump of service `{service}`"))?;
        plans.push((service, plan));
    }
    Ok(plans)
}

/// The manifest record of a dump of `service`, its file named as `--split` or the bundle wants.
pub fn record(service: &str, plan: &DumpPlan, split: bool) -> BundleDump {
    let file = if split {
        format!("{service}_{}.sql.zst", plan.scope.label())
    } else {
        format!("dumps/{service}.sql.zst")
    };
    BundleDump {
        service: service.to_string(),
        container: plan.server.name.clone(),
        engine: plan.manifest.engine,
        version: plan.manifest.engine_version.clone(),
        database: plan.manifest.database.clone(),
        format: plan.format,
        file,
    }
}

/// The running container of `service` in `project`, for replaying its dump.
pub async fn service_container(docker: &Docker, project: &str, service: &str) -> Result<String> {
    running_services(docker, project)
        .await?
        .into_iter()
        .find(|(s, _)| s == service)
        .map(|(_, id)| id)
        .ok_or_else(|| {
            UserError::new(
                Kind::Failure,
                format!(
                    "service `{service}` of project `{project}` is not running: its dump replays \
                     into its running database"
                ),
            )
            .hint(format!(
                "start the project first: `docker compose -p {project} up -d`"
            ))
            .into()
        })
}
