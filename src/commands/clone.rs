//! `clone VOLUME NEW`: copy a volume into a new one on the same engine (same driver, options and
//! labels), verified entry by entry; the copy of `migrate` with one engine at both ends.

use anyhow::{Context as _, Result};

use crate::cli::CloneArgs;
use crate::docker::lock::Held;
use crate::docker::volumes;
use crate::error::{Kind, UserError};
use crate::ops::copy::{check_target, copy_volume_between};
use crate::settings::{flags, Ctx};

pub async fn run(ctx: &Ctx, args: CloneArgs) -> Result<()> {
    if args.volume == args.new {
        return Err(
            UserError::new(Kind::Usage, "a volume cannot be cloned onto itself")
                .hint("give the clone another name")
                .into(),
        );
    }
    let engine = ctx.engine().await?;
    let names = [args.volume.clone(), args.new.clone()];
    let held = Held::acquire(
        &engine,
        &names,
        "clone",
        flags::wait(&args.lock),
        &ctx.cancel,
    )
    .await?;
    let copied = held
        .around(async {
            let volume = volumes::require(&engine.docker, &args.volume, &engine.describe()).await?;
            let target = check_target(&engine, &args.new, false).await?;
            let label = format!("{} -> {}", args.volume, args.new);
            copy_volume_between(ctx, &engine, &engine, &volume, target, false, &label)
                .await
                .with_context(|| format!("cloning volume `{}` into `{}`", args.volume, args.new))
        })
        .await?;
    let done = if copied.created {
        format!("created volume {}", copied.target)
    } else {
        format!("filled the empty volume {}", copied.target)
    };
    ctx.out.info(&format!(
        "{}; {done} from {} ({})",
        copied.verified(),
        args.volume,
        copied.rate()
    ));
    Ok(())
}
