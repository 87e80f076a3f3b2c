//! Keeping volumes still while they are read: the running containers that mount them are stopped
//! (or paused), dependents first, and afterwards exactly those are started (or unpaused) again in
//! dependency order, whether the work succeeded, failed or was interrupted.
//!
//! There is no async `Drop`, so the guard owns the work: `Quiesce::run(work)` stops, awaits the
//! work, and restores on every path before it returns.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bollard::query_parameters::{StartContainerOptions, StopContainerOptions};
use bollard::Docker;
use tokio_util::sync::CancellationToken;

use super::containers::{self, State};
use super::labels;
use crate::error::UserError;
use crate::journal;
use crate::output;

/// The service dependencies of one compose project as its files declare them (`depends_on`,
/// `links`): compose 1.x records none in labels. Service name to the services it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDeps {
    pub project: String,
    pub depends_on: BTreeMap<String, BTreeSet<String>>,
}

/// How containers are kept still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stop,
    Pause,
}

/// A running container to stop or pause.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub project: Option<String>,
    pub service: Option<String>,
}

impl Target {
    /// How people know it: the compose service, else the container name.
    pub fn label(&self) -> &str {
        self.service.as_deref().unwrap_or(&self.name)
    }
}

/// How long one container was down.
#[derive(Debug, Clone)]
pub struct Downtime {
    pub target: Target,
    pub down: Duration,
}

/// The containers to keep still, in the order they are stopped (dependents first).
#[derive(Debug)]
pub struct Quiesce {
    pub mode: Mode,
    pub targets: Vec<Target>,
}

/// One running container as the planner sees it.
#[derive(Debug, Clone)]
struct Running {
    target: Target,
    stop_label: bool,
    /// Compose services (same project) and container names it depends on.
    depends_on_services: BTreeSet<String>,
    depends_on_containers: BTreeSet<String>,
}

impl Quiesce {
    /// Plans which containers to keep still while `volumes` are read. With `requested` (the
    /// user's `--stop`/`--pause`), every running container that mounts one of them; without,
    /// only those labelled `docker-volume-backup.stop-during-backup=true`. Running containers
    /// that depend on a chosen one (compose `depends_on`, links) are added. `deps` are the
    /// dependencies a compose project's files declare, which compose 1.x does not record in labels.
    pub async fn plan(
        docker: &Docker,
        volumes: &[String],
        requested: Option<Mode>,
        deps: Option<&ServiceDeps>,
    ) -> Result<Quiesce> {
        let mut running = running_containers(docker, deps).await?;
        // Only running ones are chosen below: stopped users need no stopping.
        let mut users = BTreeSet::new();
        for volume in volumes {
            let list = containers::mounting(docker, volume).await?;
            users.extend(list.into_iter().map(|c| c.id));
        }
        let chosen: Vec<usize> = running
            .iter()
            .enumerate()
            .filter(|(_, r)| users.contains(&r.target.id) && (requested.is_some() || r.stop_label))
            .map(|(i, _)| i)
            .collect();
        if chosen.is_empty() {
            return Ok(Quiesce {
                mode: requested.unwrap_or(Mode::Stop),
                targets: Vec::new(),
            });
        }
        // Links are only in the full inspection: asked for only when something is stopped.
        for r in &mut running {
            let links = docker
                .inspect_container(&r.target.id, None)
                .await
                .ok()
                .and_then(|i| i.host_config)
                .and_then(|h| h.links)
                .unwrap_or_default();
            r.depends_on_containers = links.iter().filter_map(|l| link_target(l)).collect();
        }
        let edges = dependency_edges(&running);
        let selected = with_dependents(running.len(), &chosen, &edges);
        let names: Vec<String> = running.iter().map(|r| r.target.name.clone()).collect();
        let order = stop_order(&names, &selected, &edges);
        Ok(Quiesce {
            mode: requested.unwrap_or(Mode::Stop),
            targets: order
                .into_iter()
                .map(|i| running[i].target.clone())
                .collect(),
        })
    }

    /// Nothing to stop.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Stops (or pauses) the targets, runs `work`, and restores exactly the containers it
    /// stopped, in the reverse order, on every path: success, failure, Ctrl-C (the work sees
    /// `cancel` and returns), or a failure while stopping. Restoring ignores `cancel`.
    pub async fn run<T, F>(
        self,
        engine: &super::Engine,
        cancel: &CancellationToken,
        work: F,
    ) -> Result<(T, Vec<Downtime>)>
    where
        F: Future<Output = Result<T>>,
    {
        let (docker, out) = (&engine.docker, engine.out);
        if self.targets.is_empty() {
            return Ok((work.await?, Vec::new()));
        }
        let verb = match self.mode {
            Mode::Stop => "stopping",
            Mode::Pause => "pausing",
        };
        out.info(&format!("{verb} {}", labels(&self.targets)));
        let mut held: Vec<(Target, Instant, journal::Mark)> = Vec::new();
        let mut failed = None;
        let engine_ref = engine.endpoint.journal_ref();
        for target in &self.targets {
            if cancel.is_cancelled() {
                failed = Some(UserError::interrupted().into());
                break;
            }
            // Written down first: a run killed from here on leaves it stopped.
            let (id, name) = (target.id.clone(), target.name.clone());
            let engine = engine_ref.clone();
            let mark = journal::record(match self.mode {
                Mode::Stop => journal::Step::Stopped { engine, id, name },
                Mode::Pause => journal::Step::Paused { engine, id, name },
            });
            match hold(docker, self.mode, target).await {
                Ok(()) => held.push((target.clone(), Instant::now(), mark)),
                Err(e) => {
                    drop(mark);
                    failed = Some(e);
                    break;
                }
            }
        }
        let result = match failed {
            Some(e) => Err(e),
            None => work.await,
        };
        // Dependencies first: the reverse of the stop order.
        let mut downtimes = Vec::new();
        let mut not_restored = Vec::new();
        for (target, since, mark) in held.into_iter().rev() {
            match release(docker, self.mode, &target).await {
                Ok(()) => downtimes.push(Downtime {
                    down: since.elapsed(),
                    target,
                }),
                Err(e) => {
                    output::warn(&format!("could not restart {}: {e:#}", target.name));
                    mark.keep();
                    not_restored.push(target.name);
                }
            }
        }
        if !downtimes.is_empty() {
            let verb = match self.mode {
                Mode::Stop => "restarted",
                Mode::Pause => "unpaused",
            };
            out.info(&format!("{verb} {}", describe_downtimes(&downtimes)));
        }
        let value = result?;
        if !not_restored.is_empty() {
            return Err(anyhow::anyhow!(
                "the backup is done but container(s) {} could not be started again; start them \
                 with `docker start {}`",
                not_restored.join(", "),
                not_restored.join(" ")
            ));
        }
        Ok((value, downtimes))
    }
}

/// `web (down 4.1 s), db (down 4.3 s)`.
pub fn describe_downtimes(downtimes: &[Downtime]) -> String {
    downtimes
        .iter()
        .map(|d| format!("{} (down {:.1} s)", d.target.label(), d.down.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn labels(targets: &[Target]) -> String {
    targets
        .iter()
        .map(Target::label)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn hold(docker: &Docker, mode: Mode, target: &Target) -> Result<()> {
    match mode {
        Mode::Stop => docker
            .stop_container(&target.id, None::<StopContainerOptions>)
            .await
            .with_context(|| format!("stopping container {}", target.name)),
        Mode::Pause => docker
            .pause_container(&target.id)
            .await
            .with_context(|| format!("pausing container {}", target.name)),
    }
}

async fn release(docker: &Docker, mode: Mode, target: &Target) -> Result<()> {
    match mode {
        Mode::Stop => docker
            .start_container(&target.id, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("starting container {}", target.name)),
        Mode::Pause => docker
            .unpause_container(&target.id)
            .await
            .with_context(|| format!("unpausing container {}", target.name)),
    }
}

/// Every running container (paused ones are already still; helpers are never listed), with the
/// services it depends on: compose's `depends_on` label (compose v2) and the files' `depends_on`
/// of the project `deps` describes (compose 1.x records none). Links are added by the caller.
async fn running_containers(docker: &Docker, deps: Option<&ServiceDeps>) -> Result<Vec<Running>> {
    let mut out = Vec::new();
    for c in containers::list(docker).await? {
        if c.state != State::Running || c.id.is_empty() {
            continue;
        }
        let target = Target {
            name: if c.name.is_empty() {
                c.id.clone()
            } else {
                c.name.clone()
            },
            id: c.id.clone(),
            project: c.label(labels::COMPOSE_PROJECT).map(String::from),
            service: c.label(labels::COMPOSE_SERVICE).map(String::from),
        };
        let mut depends_on_services: BTreeSet<String> = c
            .label(labels::COMPOSE_DEPENDS_ON)
            .map(parse_depends_on_label)
            .unwrap_or_default();
        if let (Some(deps), Some(p), Some(s)) = (deps, &target.project, &target.service) {
            if *p == deps.project {
                if let Some(declared) = deps.depends_on.get(s) {
                    depends_on_services.extend(declared.iter().cloned());
                }
            }
        }
        out.push(Running {
            target,
            stop_label: c.label(labels::STOP_DURING_BACKUP) == Some("true"),
            depends_on_services,
            depends_on_containers: BTreeSet::new(),
        });
    }
    Ok(out)
}

/// Compose v2's `com.docker.compose.depends_on`: `db:service_started:false,cache:...`.
pub fn parse_depends_on_label(value: &str) -> BTreeSet<String> {
    value
        .split(',')
        .filter_map(|d| d.split(':').next())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A link `/db:/web/db` (as the engine reports it) or `db:alias` names container `db`.
fn link_target(link: &str) -> Option<String> {
    let name = link.split(':').next()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

/// Edges `(a, b)`: container `a` depends on container `b`.
fn dependency_edges(running: &[Running]) -> Vec<(usize, usize)> {
    let mut edges = Vec::new();
    for (a, ra) in running.iter().enumerate() {
        for (b, rb) in running.iter().enumerate() {
            if a == b {
                continue;
            }
            let by_service = ra.target.project.is_some()
                && ra.target.project == rb.target.project
                && rb
                    .target
                    .service
                    .as_ref()
                    .is_some_and(|s| ra.depends_on_services.contains(s));
            let by_link = ra.depends_on_containers.contains(&rb.target.name);
            if by_service || by_link {
                edges.push((a, b));
            }
        }
    }
    edges
}

/// `chosen` plus everything that depends on them, directly or not.
fn with_dependents(n: usize, chosen: &[usize], edges: &[(usize, usize)]) -> BTreeSet<usize> {
    let mut selected: BTreeSet<usize> = chosen.iter().copied().collect();
    loop {
        let before = selected.len();
        for &(a, b) in edges {
            if selected.contains(&b) && a < n {
                selected.insert(a);
            }
        }
        if selected.len() == before {
            return selected;
        }
    }
}

/// The order to stop `selected` in: a container before the ones it depends on. Ties (and
/// cycles, which compose refuses but links may form) go by name, so the order is stable.
fn stop_order(
    names: &[String],
    selected: &BTreeSet<usize>,
    edges: &[(usize, usize)],
) -> Vec<usize> {
    // Start order first (dependencies before dependents), then reversed.
    let mut waiting: BTreeMap<usize, BTreeSet<usize>> = selected
        .iter()
        .map(|&i| {
            let deps = edges
                .iter()
                .filter(|(a, b)| *a == i && selected.contains(b))
                .map(|&(_, b)| b)
                .collect();
            (i, deps)
        })
        .collect();
    let mut start = Vec::new();
    while !waiting.is_empty() {
        let mut ready: Vec<usize> = waiting
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(&i, _)| i)
            .collect();
        if ready.is_empty() {
            // A cycle: take the first by name and go on.
            let first = *waiting
                .keys()
                .min_by_key(|&&i| &names[i])
                .expect("not empty");
            ready.push(first);
        }
        ready.sort_by_key(|&i| &names[i]);
        for i in ready {
            waiting.remove(&i);
            for deps in waiting.values_mut() {
                deps.remove(&i);
            }
            start.push(i);
        }
    }
    start.reverse();
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependents_stop_first_and_start_last() {
        // web -> api -> db, worker -> db
        let n = names(&["db", "api", "web", "worker", "other"]);
        let edges = vec![(1, 0), (2, 1), (3, 0)];
        let all: BTreeSet<usize> = [0, 1, 2, 3].into();
        let order = stop_order(&n, &all, &edges);
        let pos = |i| order.iter().position(|&x| x == i).unwrap();
        assert!(
            pos(2) < pos(1) && pos(1) < pos(0) && pos(3) < pos(0),
            "{order:?}"
        );
        assert_eq!(order.len(), 4);
        assert!(!order.contains(&4));
    }

    #[test]
    fn dependents_of_chosen_containers_are_added() {
        let edges = vec![(1, 0), (2, 1), (3, 4)];
        assert_eq!(with_dependents(5, &[0], &edges), [0, 1, 2].into());
        assert_eq!(with_dependents(5, &[1], &edges), [1, 2].into());
        assert_eq!(with_dependents(5, &[], &edges), BTreeSet::new());
    }

    #[test]
    fn cycles_still_give_every_container_once() {
        let n = names(&["a", "b", "c"]);
        let edges = vec![(0, 1), (1, 0), (2, 0)];
        let order = stop_order(&n, &[0, 1, 2].into(), &edges);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2]);
        assert_eq!(order[0], 2, "c depends on the cycle: stopped first");
    }

    fn running(name: &str, project: &str, service: &str, deps: &[&str], links: &[&str]) -> Running {
        Running {
            target: Target {
                id: name.into(),
                name: name.into(),
                project: Some(project.into()),
                service: Some(service.into()),
            },
            stop_label: false,
            depends_on_services: deps.iter().map(|s| s.to_string()).collect(),
            depends_on_containers: links.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn edges_from_services_of_the_same_project_and_links() {
        let r = vec![
            running("shop_db_1", "shop", "db", &[], &[]),
            running("shop_web_1", "shop", "web", &["db"], &[]),
            // Same service name in another project: no edge.
            running("blog_web_1", "blog", "web", &["db"], &[]),
            running("legacy", "x", "legacy", &[], &["shop_db_1"]),
        ];
        assert_eq!(dependency_edges(&r), vec![(1, 0), (3, 0)]);
    }

    #[test]
    fn compose_labels_and_links_parse() {
        assert_eq!(
            parse_depends_on_label("db:service_started:false,cache:service_healthy:true"),
            BTreeSet::from(["db".to_string(), "cache".to_string()])
        );
        assert!(parse_depends_on_label("").is_empty());
        assert_eq!(link_target("/db:/web/db").as_deref(), Some("db"));
        assert_eq!(link_target("db:alias").as_deref(), Some("db"));
    }
}
