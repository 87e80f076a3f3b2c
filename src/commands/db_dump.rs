//! `db-dump CONTAINER`: a logical dump of a database container with its own dump tool,
//! streamed, compressed and written atomically.

use std::time::Instant;

use anyhow::Result;

use crate::cli::DbDumpArgs;
use crate::db::dump::{dump_with_progress, DumpPlan};
use crate::db::{DumpFormat, Server};
use crate::error::{Kind, UserError};
use crate::ops::output_plan::{self, DumpFlags, Target};
use crate::output;
use crate::settings::{flags, Ctx};
use crate::storage::Sink;

pub async fn run(ctx: &Ctx, args: DbDumpArgs) -> Result<()> {
    let started = chrono::Utc::now();
    let given = flags::db_credentials(&args.credentials)?;
    let engine = ctx.engine().await?;
    // Named like archives: UTC and the engine, so dumps of several hosts never collide.
    let stamp = crate::storage::catalog::stamp(started, &engine.identity.label());
    let server = Server::find(&engine.docker, &args.container, &given).await?;
    let format = DumpFormat::from(args.format);
    let plan = DumpPlan::prepare(server, args.database.clone(), args.all, format).await?;
    let output = DumpFlags {
        output: args.output.clone(),
        compression: args.compression.map(Into::into),
        level: args.tuning.level,
        format,
    };
    let (target, compression) =
        output_plan::dump(&plan.server.name, plan.scope.label(), &output, &stamp)
            .map_err(|m| UserError::new(Kind::Usage, m))?;
    let encode = flags::encode(&args.tuning, compression);
    let sink = match &target {
        Target::Stdout => Sink::stdout()?,
        Target::File(path) => Sink::file(path, args.force)?,
        Target::To(_) => unreachable!("db-dump has no --to"),
    };
    let started = Instant::now();
    let (sink, dumped) = dump_with_progress(&plan, sink, encode, &ctx.cancel, ctx.out).await?;
    let size = tokio::task::spawn_blocking(move || sink.commit())
        .await
        .expect("commit panicked")?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "{}, {} of dump, {seconds:.1} s",
        plan.describe(),
        output::bytes(dumped)
    );
    ctx.report.add(crate::notify::Item {
        volume: plan.server.name.clone(),
        location: match &target {
            Target::File(path) => Some(path.display().to_string()),
            _ => None,
        },
        size,
        seconds,
    });
    match (target, size) {
        (Target::File(path), Some(size)) => ctx.out.info(&format!(
            "saved {} ({}; {summary})",
            path.display(),
            output::bytes(size)
        )),
        _ => ctx.out.info(&format!(
            "dumped {} to stdout ({summary})",
            plan.server.name
        )),
    }
    Ok(())
}
