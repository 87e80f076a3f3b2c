//! `db-restore FILE|- CONTAINER`: feed a dump back into a database container with its own
//! client (psql, pg_restore, mysql/mariadb).

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use crate::cli::DbRestoreArgs;
use crate::db::restore::{open_dump, restore_into, RestoreRequest};
use crate::db::{self, Server};
use crate::output::{self, Measure, Progress};
use crate::settings::Ctx;
use crate::transfer;

pub async fn run(ctx: &Ctx, args: DbRestoreArgs) -> Result<()> {
    let given = db::overrides_from(&args.credentials)?;
    let (input, len) = transfer::open_input(&args.input).await?;
    let counters: Arc<crate::archive::Counters> = Arc::default();
    let counted = crate::archive::CountingReader::new(input, Arc::clone(&counters));
    // Recognise the dump before touching the engine: a foreign file fails fast.
    let dump = tokio::task::spawn_blocking(move || open_dump(Box::new(counted)))
        .await
        .expect("the dump reader panicked")?;
    let engine = ctx.engine().await?;
    let server = Server::find(&engine.docker, &args.container, &given).await?;
    let req = RestoreRequest {
        database: args.database.clone(),
        create: args.create,
        force: args.force,
    };
    let label = format!("{} <- {}", server.name, args.input);
    let progress = Progress::start(&label, Arc::clone(&counters), len, Measure::InputBytes);
    let started = Instant::now();
    let result = restore_into(&server, dump, &req, counters, &ctx.cancel).await;
    progress.finish();
    let restored = result.map_err(|e| e.context(format!("restoring into `{}`", server.name)))?;
    let into = match &restored.database {
        Some(db) => format!("database {db} of {}", server.name),
        None => format!("{} (all databases)", server.name),
    };
    // What the manifest says about where the dump came from, when it has one.
    let origin = restored
        .manifest
        .as_ref()
        .map(|m| {
            format!(
                "dumped from {} ({} {}) on {}, ",
                m.container,
                m.engine.name(),
                m.engine_version.split([' ', '-']).next().unwrap_or(""),
                m.created.format("%Y-%m-%d %H:%M UTC")
            )
        })
        .unwrap_or_default();
    output::info(&format!(
        "restored {} into {into} ({origin}{} of dump, {:.1} s)",
        args.input,
        output::bytes(restored.bytes),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
