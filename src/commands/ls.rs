//! `ls`: volumes with driver, size (where the engine reports it), compose project, and the
//! containers using each.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use bollard::query_parameters::{ListContainersOptions, ListVolumesOptions};
use serde::Serialize;

use crate::cli::{Format, LsArgs};
use crate::docker::df;
use crate::docker::helper::HELPER_LABEL;
use crate::output::{self, Column, Table};
use crate::settings::Ctx;

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    driver: String,
    size: Option<u64>,
    project: Option<String>,
    containers: Vec<ContainerRef>,
}

#[derive(Debug, Serialize)]
struct ContainerRef {
    name: String,
    running: bool,
}

pub async fn run(ctx: &Ctx, args: LsArgs) -> Result<()> {
    let engine = ctx.engine().await?;
    let docker = &engine.docker;
    let volumes = docker
        .list_volumes(None::<ListVolumesOptions>)
        .await
        .context("listing volumes")?
        .volumes
        .unwrap_or_default();
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await
        .context("listing containers")?;
    let sizes = df::volume_sizes(docker, &engine.endpoint, Duration::from_secs(20)).await;
    let mut users: BTreeMap<String, Vec<ContainerRef>> = BTreeMap::new();
    for c in &containers {
        if c.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(HELPER_LABEL))
        {
            continue;
        }
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let running = matches!(
            c.state,
            Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
        );
        for m in c.mounts.iter().flatten() {
            if let Some(v) = &m.name {
                users.entry(v.clone()).or_default().push(ContainerRef {
                    name: name.clone(),
                    running,
                });
            }
        }
    }
    let mut rows: Vec<Row> = volumes
        .into_iter()
        .filter(|v| !v.labels.contains_key(HELPER_LABEL))
        .map(|v| Row {
            containers: users.remove(&v.name).unwrap_or_default(),
            size: sizes.get(&v.name).copied(),
            project: v.labels.get("com.docker.compose.project").cloned(),
            driver: v.driver,
            name: v.name,
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    match args.format {
        Format::Json => output::data_json(&rows)?,
        Format::Table => output::data(&table(&rows))?,
    }
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut table = Table::new([
        Column::left("VOLUME"),
        Column::left("DRIVER").min(8),
        Column::right("SIZE").min(9),
        Column::left("PROJECT").min(12),
        Column::left("CONTAINERS"),
    ]);
    for r in rows {
        let size = r.size.map(output::bytes).unwrap_or_else(|| "-".into());
        let containers: Vec<String> = r
            .containers
            .iter()
            .map(|c| {
                if c.running {
                    format!("{} (running)", c.name)
                } else {
                    c.name.clone()
                }
            })
            .collect();
        table.row([
            r.name.clone(),
            r.driver.clone(),
            size,
            r.project.clone().unwrap_or_else(|| "-".into()),
            if containers.is_empty() {
                "-".to_string()
            } else {
                containers.join(", ")
            },
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_pinned() {
        let rows = vec![
            Row {
                name: "a".into(),
                driver: "local".into(),
                size: Some(1_234_567),
                project: Some("shop".into()),
                containers: vec![
                    ContainerRef {
                        name: "web".into(),
                        running: true,
                    },
                    ContainerRef {
                        name: "old".into(),
                        running: false,
                    },
                ],
            },
            Row {
                name: "shop_database".into(),
                driver: "local".into(),
                size: None,
                project: None,
                containers: vec![],
            },
        ];
        assert_eq!(
            table(&rows),
            "\
VOLUME         DRIVER         SIZE  PROJECT       CONTAINERS
a              local       1.23 MB  shop          web (running), old
shop_database  local             -  -             -
"
        );
        assert_eq!(
            table(&[]),
            "VOLUME  DRIVER         SIZE  PROJECT       CONTAINERS\n"
        );
    }
}
