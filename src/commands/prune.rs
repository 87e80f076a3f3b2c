//! `prune DEST --keep-...`: deletes old backups by restic-style rules, each volume on its own
//! (`ops::prune`); with `--dry-run` it shows what would go and which rules keep the rest.

use anyhow::Result;

use crate::cli::PruneArgs;
use crate::error::{Kind, UserError};
use crate::ops::prune;
use crate::settings::{flags, Ctx};
use crate::storage::restic::{self, ResticTarget};
use crate::storage::{Location, Store};

pub async fn run(ctx: &Ctx, args: PruneArgs) -> Result<()> {
    let policy = flags::policy(&args.keep)?;
    if policy.is_empty() {
        return Err(
            UserError::new(Kind::Usage, "prune needs at least one --keep-* rule")
                .hint("e.g. --keep-daily 7 --keep-weekly 4 --keep-monthly 6")
                .into(),
        );
    }
    let volumes = args.volume.map(|v| vec![v]);
    if ResticTarget::is_restic(&args.destination) {
        let target = ResticTarget::parse(&args.destination)?;
        let password = restic::password(args.restic.restic_password_file.as_deref(), false)?;
        return prune::prune_restic(
            &target,
            password,
            volumes.as_deref(),
            &policy,
            args.dry_run,
            ctx.out,
        )
        .await;
    }
    let store = Store::open(&Location::parse(&args.destination)?, false, &ctx.s3)?;
    prune::prune(&store, volumes.as_deref(), &policy, args.dry_run, ctx.out).await
}
