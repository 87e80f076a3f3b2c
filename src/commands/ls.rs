//! `ls`: volumes with driver, size (where the engine reports it), compose project, and the
//! containers using each.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Format, LsArgs};
use crate::docker::containers::{self, State};
use crate::docker::{df, labels, volumes};
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
    /// In use: running, paused or restarting, as everywhere else.
    running: bool,
    #[serde(skip)]
    state: State,
}

pub async fn run(ctx: &Ctx, args: LsArgs) -> Result<()> {
    let engine = ctx.engine().await?;
    let docker = &engine.docker;
    let volumes = volumes::list(docker, Default::default()).await?;
    let containers = containers::list(docker).await?;
    let sizes = df::volume_sizes(docker, &engine.endpoint, ctx.out, Duration::from_secs(20)).await;
    let mut users: BTreeMap<String, Vec<ContainerRef>> = BTreeMap::new();
    for c in &containers {
        for v in &c.volumes {
            users.entry(v.clone()).or_default().push(ContainerRef {
                name: c.name.clone(),
                running: c.state.in_use(),
                state: c.state,
            });
        }
    }
    let mut rows: Vec<Row> = volumes
        .into_iter()
        .map(|v| Row {
            containers: users.remove(&v.name).unwrap_or_default(),
            size: sizes.get(&v.name).copied(),
            project: v.labels.get(labels::COMPOSE_PROJECT).cloned(),
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
            .map(|c| match c.state.word() {
                Some(state) => format!("{} ({state})", c.name),
                None => c.name.clone(),
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
                        state: State::Running,
                    },
                    ContainerRef {
                        name: "db".into(),
                        running: true,
                        state: State::Paused,
                    },
                    ContainerRef {
                        name: "old".into(),
                        running: false,
                        state: State::Stopped,
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
a              local       1.23 MB  shop          web (running), db (paused), old
shop_database  local             -  -             -
"
        );
        assert_eq!(
            table(&[]),
            "VOLUME  DRIVER         SIZE  PROJECT       CONTAINERS\n"
        );
    }
}
