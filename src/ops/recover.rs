//! Finishing or undoing what a killed run left, from its journal: helpers and partial files are
//! removed, an interrupted restore is rolled back (a volume it created is removed, one it was
//! filling is emptied, a scratch volume whose data was never verified is removed) or finished
//! (the scratch volume holds the complete, verified data: the swap is done), and the containers
//! the run stopped or paused are started or unpaused again, dependencies first. Each step is
//! cleared from the journal as soon as it is done, so a `recover` that is itself cut short can
//! be run again.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use bollard::query_parameters::{RemoveContainerOptions, StartContainerOptions};
use bollard::Docker;

use crate::docker::{is_not_found, lock, volumes, Engine};
use crate::journal::{self, EngineRef, Leftover, Phase, Step};
use crate::ops::{restore, Ctx};
use crate::output;

/// What `recover` did with one journal: the steps done and the ones that failed (with why).
#[derive(Default)]
pub struct Outcome {
    pub done: Vec<String>,
    pub failed: Vec<String>,
}

/// The engines of one journal, connected when first needed.
struct Engines<'a> {
    ctx: &'a Ctx,
    open: Vec<(EngineRef, Result<Engine, String>)>,
}

impl Engines<'_> {
    async fn get(&mut self, wanted: &EngineRef) -> Result<&Engine> {
        if !self.open.iter().any(|(e, _)| e == wanted) {
            let connected = async {
                let endpoint = self
                    .ctx
                    .settings
                    .endpoint_of_record(&wanted.context, &wanted.host)?;
                if endpoint.host.to_string() != wanted.host {
                    anyhow::bail!(
                        "context `{}` now points at {}, not at {} where the run was",
                        wanted.context,
                        endpoint.host,
                        wanted.host
                    );
                }
                Engine::connect(endpoint, self.ctx.out).await
            }
            .await
            .map_err(|e| format!("{e:#}"));
            self.open.push((wanted.clone(), connected));
        }
        let (_, engine) = self
            .open
            .iter()
            .find(|(e, _)| e == wanted)
            .expect("added above");
        engine
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot reach {wanted}: {e}"))
    }
}

/// Finishes or undoes every step of `left` (or, with `dry_run`, says what it would do). The
/// journal is saved after each step, and removed once nothing is left.
pub async fn recover(ctx: &Ctx, left: &mut Leftover, dry_run: bool) -> Outcome {
    let mut engines = Engines {
        ctx,
        open: Vec::new(),
    };
    let mut outcome = Outcome::default();
    // Helpers first (they hold volumes), then files, then restores; containers last, since
    // they may use the restored volumes, in the reverse of the order they were stopped.
    let mut order: Vec<(u64, Step)> = left.doc.steps.clone().into_iter().collect();
    order.sort_by_key(|(id, step)| {
        let rank = match step {
            Step::Helper { .. } => 0,
            Step::Partial { .. } => 1,
            Step::Scratch { .. } | Step::Restore { .. } => 2,
            Step::Stopped { .. } | Step::Paused { .. } => 3,
        };
        (rank, std::cmp::Reverse(*id))
    });
    let all_engines = left.doc.engines.clone();
    let run = left.doc.run.clone();
    for (id, step) in order {
        if dry_run {
            outcome.done.push(plan(&step));
            continue;
        }
        match undo(&mut engines, &all_engines, &run, &step).await {
            Ok(what) => {
                ctx.out.info(&what);
                outcome.done.push(what);
                left.doc.steps.remove(&id);
                if let Err(e) = left.save() {
                    outcome
                        .failed
                        .push(format!("cannot update {}: {e:#}", left.path().display()));
                }
            }
            Err(e) => outcome.failed.push(format!("{}: {e:#}", step.describe())),
        }
    }
    // The locks the run held (a lock of a dead run is taken over by the next run that needs it;
    // removing it now leaves no container of the run behind). Not with a dry run or while a step
    // is still to do: those runs are still the journal's.
    if !dry_run && outcome.failed.is_empty() && !run.is_empty() {
        for engine in &all_engines {
            let Ok(engine) = engines.get(engine).await else {
                continue;
            };
            match lock::remove_left_by(&engine.docker, &run).await {
                Ok(volumes) => {
                    for volume in volumes {
                        let what = format!("removed the run's lock on volume `{volume}`");
                        ctx.out.info(&what);
                        outcome.done.push(what);
                    }
                }
                Err(e) => ctx.out.info(&format!("{e:#}")),
            }
        }
    }
    outcome
}

/// What undoing `step` would do, for `--dry-run`.
fn plan(step: &Step) -> String {
    match step {
        Step::Stopped { name, .. } => format!("would start container `{name}`"),
        Step::Paused { name, .. } => format!("would unpause container `{name}`"),
        Step::Helper { name } => format!("would remove helper container `{name}`"),
        Step::Partial { path } => format!("would remove {}", path.display()),
        Step::Scratch { volume, .. } => format!("would remove scratch volume `{volume}`"),
        Step::Restore {
            target,
            scratch,
            phase,
            ..
        } => match phase {
            Phase::Created => format!("would remove volume `{target}` (incomplete)"),
            Phase::Filling => format!("would empty volume `{target}` again (incomplete)"),
            Phase::Scratch => format!(
                "would remove scratch volume `{}`; `{target}` is untouched",
                scratch.as_deref().unwrap_or("?")
            ),
            Phase::Swap => format!(
                "would finish the restore: copy volume `{}` into `{target}`",
                scratch.as_deref().unwrap_or("?")
            ),
        },
    }
}

/// Undoes one step of the killed run `run`; volumes are removed only if that run made them.
async fn undo(
    engines: &mut Engines<'_>,
    all: &[EngineRef],
    run: &str,
    step: &Step,
) -> Result<String> {
    match step {
        Step::Stopped { engine, id, name } | Step::Paused { engine, id, name } => {
            let docker = &engines.get(engine).await?.docker;
            restart(docker, id, name).await
        }
        Step::Helper { name } => {
            let mut removed = false;
            for engine in all {
                let docker = &engines.get(engine).await?.docker;
                let options = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                match docker.remove_container(name, Some(options)).await {
                    Ok(()) => removed = true,
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("removing container `{name}`"))
                    }
                }
            }
            Ok(if removed {
                format!("removed helper container `{name}`")
            } else {
                format!("helper container `{name}` is already gone")
            })
        }
        Step::Partial { path } => match std::fs::remove_file(path) {
            Ok(()) => Ok(format!("removed {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(format!("{} is already gone", path.display()))
            }
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        },
        Step::Scratch { engine, volume } => {
            let docker = &engines.get(engine).await?.docker;
            if volumes::inspect(docker, volume).await?.is_none() {
                return Ok(format!("scratch volume `{volume}` is already gone"));
            }
            volumes::remove_made_by(docker, volume, run).await?;
            Ok(format!("removed scratch volume `{volume}`"))
        }
        Step::Restore {
            engine,
            target,
            like,
            scratch,
            phase,
            spool,
        } => {
            let engine = engines.get(engine).await?;
            let done = undo_restore(
                engine,
                run,
                target,
                like,
                scratch.as_deref(),
                *phase,
                spool.as_ref(),
            )
            .await?;
            if let Some(spool) = spool {
                spool.remove();
            }
            Ok(done)
        }
    }
}

/// Starts (or unpauses) a container a killed run stopped (or paused), as its state says now.
async fn restart(docker: &Docker, id: &str, name: &str) -> Result<String> {
    let state = match docker.inspect_container(id, None).await {
        Ok(c) => c.state,
        Err(e) if is_not_found(&e) => {
            return Ok(format!("container `{name}` no longer exists"));
        }
        Err(e) => return Err(e).with_context(|| format!("inspecting container `{name}`")),
    };
    let state = state.unwrap_or_default();
    if state.paused == Some(true) {
        docker
            .unpause_container(id)
            .await
            .with_context(|| format!("unpausing container `{name}`"))?;
        return Ok(format!("unpaused container `{name}`"));
    }
    if state.running == Some(true) {
        return Ok(format!("container `{name}` is running"));
    }
    docker
        .start_container(id, None::<StartContainerOptions>)
        .await
        .with_context(|| format!("starting container `{name}`"))?;
    Ok(format!("started container `{name}`"))
}

async fn undo_restore(
    engine: &Engine,
    run: &str,
    target: &str,
    like: &crate::archive::VolumeInfo,
    scratch: Option<&str>,
    phase: Phase,
    spool: Option<&journal::Spooled>,
) -> Result<String> {
    let docker = &engine.docker;
    match phase {
        Phase::Created => {
            if volumes::inspect(docker, target).await?.is_none() {
                return Ok(format!("volume `{target}` is already gone"));
            }
            volumes::remove_made_by(docker, target, run).await?;
            Ok(format!(
                "removed volume `{target}`, which held an incomplete restore"
            ))
        }
        Phase::Filling => {
            let Some(volume) = volumes::inspect(docker, target).await? else {
                return Ok(format!("volume `{target}` is gone"));
            };
            let users = volumes::users(docker, target).await?;
            restore::refuse_running(target, &users)?;
            volumes::wipe(engine, &volume, &users).await?;
            Ok(format!(
                "emptied volume `{target}` again (it held an incomplete restore)"
            ))
        }
        Phase::Scratch => {
            if let Some(scratch) = scratch {
                volumes::remove_made_by(docker, scratch, run).await?;
            }
            Ok(format!(
                "rolled back the unfinished restore into `{target}`: it is untouched"
            ))
        }
        Phase::Swap => {
            let scratch = scratch.context("the journal names no scratch volume")?;
            if volumes::inspect(docker, scratch).await?.is_none() {
                // Removed only after the copy completed.
                return Ok(format!("the restore into `{target}` had completed"));
            }
            let volume = match volumes::inspect(docker, target).await? {
                Some(v) => v,
                None => {
                    volumes::create(docker, target, like).await?;
                    volumes::inspect(docker, target)
                        .await?
                        .with_context(|| format!("volume `{target}` vanished"))?
                }
            };
            let users = volumes::users(docker, target).await?;
            restore::refuse_running(target, &users)?;
            // The run kept the stream it verified (the engine cannot read owners back): sent
            // again, as the run would have. Without it the copy is made inside the engine.
            let (kept, lost) = match spool.map(journal::Spooled::open_whole) {
                Some(Ok(file)) => (Some(file), None),
                Some(Err(e)) => (None, Some(format!("{e:#}"))),
                None if !engine.reads_owners() => {
                    (None, Some("the run kept no copy of the stream".into()))
                }
                None => (None, None),
            };
            if let Some(why) = &lost {
                output::warn(&format!(
                    "{why}: the copy out of volume `{scratch}` into `{target}` is made inside \
                     the engine, which cannot read owners: every file of `{target}` will be \
                     owned by root; restore the archive again with --force to get the owners back"
                ));
            }
            restore::swap(
                engine,
                &volume,
                &users,
                scratch,
                Arc::default(),
                crate::ops::transfer::Check::Quick,
                run,
                kept,
            )
            .await?;
            if lost.is_some() {
                return Ok(format!(
                    "finished the restore into `{target}` from the verified data in `{scratch}` \
                     (owners lost: every file is owned by root)"
                ));
            }
            Ok(format!(
                "finished the restore into `{target}` from the verified data in `{scratch}`"
            ))
        }
    }
}
