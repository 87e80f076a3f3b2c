//! `ls`: volumes with driver, size (where the engine reports it), compose project, and the
//! containers using each.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Format, LsArgs};
use crate::docker::containers::{self, State};
use crate::docker::{df, labels, volumes};
use crate::output;
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
    let sizes = df::volume_sizes(docker, &engine.endpoint, Duration::from_secs(20)).await;
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
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => print_table(&rows),
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    println!(
        "{:width$}  {:8}  {:>9}  {:12}  CONTAINERS",
        "VOLUME", "DRIVER", "SIZE", "PROJECT"
    );
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
        println!(
            "{:width$}  {:8}  {:>9}  {:12}  {}",
            r.name,
            r.driver,
            size,
            r.project.as_deref().unwrap_or("-"),
            if containers.is_empty() {
                "-".to_string()
            } else {
                containers.join(", ")
            }
        );
    }
}
