//! Listing containers, the tool's own helpers never included, each with one classification of
//! its state that every command shares: running, paused and restarting containers are in use.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;

use super::labels;

/// What a container is doing, as far as the volumes it mounts are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Restarting,
    /// Created, exited, dead, being removed: nothing holds its volumes open.
    Stopped,
}

impl State {
    /// Whether the container holds its volumes: running, paused or restarting. Paused and
    /// restarting ones count, as the engine's own `all=false` listing counts them.
    pub fn in_use(self) -> bool {
        self != State::Stopped
    }

    /// `running`, `paused` or `restarting`; `None` when stopped.
    pub fn word(self) -> Option<&'static str> {
        match self {
            State::Running => Some("running"),
            State::Paused => Some("paused"),
            State::Restarting => Some("restarting"),
            State::Stopped => None,
        }
    }

    fn of(state: Option<ContainerSummaryStateEnum>) -> State {
        match state {
            Some(ContainerSummaryStateEnum::RUNNING) => State::Running,
            Some(ContainerSummaryStateEnum::PAUSED) => State::Paused,
            Some(ContainerSummaryStateEnum::RESTARTING) => State::Restarting,
            _ => State::Stopped,
        }
    }
}

/// A container (not one of ours) as the engine lists it.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    /// Its name, without the engine's leading `/`.
    pub name: String,
    pub image: String,
    pub state: State,
    pub labels: HashMap<String, String>,
    /// The named volumes it mounts.
    pub volumes: Vec<String>,
}

impl Container {
    fn from_summary(c: ContainerSummary) -> Option<Container> {
        let labels = c.labels.unwrap_or_default();
        if labels.contains_key(labels::HELPER) {
            return None;
        }
        Some(Container {
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            image: c.image.unwrap_or_default(),
            state: State::of(c.state),
            volumes: c
                .mounts
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.name)
                .collect(),
            labels,
        })
    }

    /// A label's value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Every container, running or not.
pub async fn list(docker: &Docker) -> Result<Vec<Container>> {
    query(docker, HashMap::new())
        .await
        .context("listing containers")
}

/// The containers, running or not, that mount `volume`.
pub async fn mounting(docker: &Docker, volume: &str) -> Result<Vec<Container>> {
    let filters = HashMap::from([("volume".to_string(), vec![volume.to_string()])]);
    query(docker, filters)
        .await
        .with_context(|| format!("listing the containers that use volume `{volume}`"))
}

/// The containers, running or not, of compose project `project` (by its label).
pub async fn of_project(docker: &Docker, project: &str) -> Result<Vec<Container>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={project}", labels::COMPOSE_PROJECT)],
    )]);
    query(docker, filters)
        .await
        .context("listing the project's containers")
}

/// Lists with `all` (the state is classified here, not by the engine's default filter).
async fn query(
    docker: &Docker,
    filters: HashMap<String, Vec<String>>,
) -> Result<Vec<Container>, bollard::errors::Error> {
    let options = ListContainersOptions {
        all: true,
        filters: (!filters.is_empty()).then_some(filters),
        ..Default::default()
    };
    let list = docker.list_containers(Some(options)).await?;
    Ok(list
        .into_iter()
        .filter_map(Container::from_summary)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_paused_and_restarting_are_in_use() {
        use ContainerSummaryStateEnum as S;
        for (engine, state, in_use) in [
            (Some(S::RUNNING), State::Running, true),
            (Some(S::PAUSED), State::Paused, true),
            (Some(S::RESTARTING), State::Restarting, true),
            (Some(S::CREATED), State::Stopped, false),
            (Some(S::EXITED), State::Stopped, false),
            (Some(S::DEAD), State::Stopped, false),
            (Some(S::REMOVING), State::Stopped, false),
            (None, State::Stopped, false),
        ] {
            assert_eq!(State::of(engine), state);
            assert_eq!(state.in_use(), in_use);
        }
    }

    #[test]
    fn helpers_are_never_listed() {
        let summary = |labels: &[(&str, &str)]| ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/web".into()]),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        assert!(Container::from_summary(summary(&[(labels::HELPER, "true")])).is_none());
        let c = Container::from_summary(summary(&[(labels::COMPOSE_SERVICE, "web")])).unwrap();
        assert_eq!(c.name, "web");
        assert_eq!(c.label(labels::COMPOSE_SERVICE), Some("web"));
        assert_eq!(c.state, State::Stopped);
    }
}
