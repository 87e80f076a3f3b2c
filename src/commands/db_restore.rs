//! `db-restore FILE|- CONTAINER`: feed a dump back into a database container with its own
//! client (psql, pg_restore, mysql/mariadb).

use std::time::Instant;

use anyhow::Result;

use crate::cli::DbRestoreArgs;
use crate::db::restore::{open_counted, restore_with_progress, RestoreRequest};
use crate::db::Server;
use crate::output;
use crate::settings::{flags, Ctx};

pub async fn run(ctx: &Ctx, args: DbRestoreArgs) -> Result<()> {
    let given = flags::db_credentials(&args.credentials)?;
    let (input, len) = crate::storage::open_input(&args.input, &ctx.s3).await?;
    // Recognise the dump before touching the engine: a foreign file fails fast.
    let opened = open_counted(input).await?;
    let engine = ctx.engine().await?;
    let server = Server::find(&engine.docker, &args.container, &given).await?;
    let req = RestoreRequest {
        database: args.database.clone(),
        create: args.create,
        force: args.force,
    };
    let label = format!("{} <- {}", server.name, args.input);
    let started = Instant::now();
    let restored =
        restore_with_progress(&server, opened, &label, len, &req, &ctx.cancel, ctx.out).await?;
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
    ctx.out.info(&format!(
        "restored {} into {into} ({origin}{} of dump, {:.1} s)",
        args.input,
        output::bytes(restored.bytes),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}
