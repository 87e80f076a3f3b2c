//! Logical dumps of a compose project's database services, carried in its bundle beside the raw
//! volumes (`compose-export --with-dumps`) and replayed into the running services of the
//! imported project (`compose-import --replay-dumps`). The dumps themselves are db-dump's and
//! db-restore's: this module only finds the services and names the files.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use bollard::Docker;
use serde::{Deserialize, Serialize};

use crate::db::dump::DumpPlan;
use crate::db::{DumpFormat, Flavor, Overrides, Server};
use crate::docker::{containers, labels};
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

/// The running (in use: running, paused or restarting) containers of `project`, one per service
/// (the lowest container number): the service's name and the container's id.
pub async fn running_services(docker: &Docker, project: &str) -> Result<Vec<(String, String)>> {
    let mut by_service: HashMap<String, (u32, String)> = HashMap::new();
    for c in containers::of_project(docker, project).await? {
        if !c.state.in_use() {
            continue;
        }
        let Some(service) = c.label(labels::COMPOSE_SERVICE) else {
            continue;
        };
        let id = c.id.clone();
        let number = c
            .label(labels::COMPOSE_CONTAINER_NUMBER)
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX);
        let entry = by_service
            .entry(service.to_string())
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
        let Some(server) = Server::find_database(docker, &id, &Overrides::default()).await? else {
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
    BundleDump {
        file: dump_file(service, plan.scope.label(), split),
        service: service.to_string(),
        container: plan.server.name.clone(),
        engine: plan.manifest.engine,
        version: plan.manifest.engine_version.clone(),
        database: plan.manifest.database.clone(),
        format: plan.format,
    }
}

/// `dumps/<service>.sql.zst` (the parts' name in a bundle) or `<service>_<db|all>.sql.zst` (a
/// file of a `--split` directory, named as db-dump names its files).
fn dump_file(service: &str, scope: &str, split: bool) -> String {
    if split {
        format!("{service}_{scope}.sql.zst")
    } else {
        format!("dumps/{service}.sql.zst")
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

#[cfg(test)]
mod tests {
    use super::super::bundle::BundleManifest;
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(dump_file("db", "all", false), "dumps/db.sql.zst");
        assert_eq!(dump_file("db", "all", true), "db_all.sql.zst");
    }

    #[test]
    fn dump_records_in_the_bundle_manifest() {
        let json = r#"{"kind":"docker-volume-backup.compose-bundle","format":1,
            "tool_version":"0","created":"now","project":"shop",
            "source":{"context":"default","endpoint":"unix:///var/run/docker.sock",
            "engine_version":"27"},"volumes":[]}"#;
        // A bundle without dumps (written before --with-dumps) still reads, and writes none.
        let mut m: BundleManifest = serde_json::from_str(json).unwrap();
        assert!(m.dumps.is_empty());
        assert!(!serde_json::to_string(&m).unwrap().contains("dumps"));
        m.dumps.push(BundleDump {
            service: "db".into(),
            container: "shop_db_1".into(),
            engine: Flavor::Postgres,
            version: "15.18".into(),
            database: None,
            format: DumpFormat::Plain,
            file: dump_file("db", "all", false),
        });
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        let d = &v["dumps"][0];
        assert_eq!(d["service"], "db");
        assert_eq!(d["container"], "shop_db_1");
        assert_eq!(d["engine"], "postgres");
        assert_eq!(d["version"], "15.18");
        assert!(d["database"].is_null());
        assert_eq!(d["format"], "plain");
        assert_eq!(d["file"], "dumps/db.sql.zst");
        let back: BundleManifest = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }
}
