//! `recover`: finish or undo what killed runs left, as their journals say: restart the
//! containers they stopped, finish or roll back an interrupted restore, remove their helpers
//! and partial files.

use anyhow::Result;

use crate::cli::RecoverArgs;
use crate::error::{Kind, UserError};
use crate::journal;
use crate::ops::recover;
use crate::output;
use crate::settings::Ctx;

pub async fn run(ctx: &Ctx, args: RecoverArgs) -> Result<()> {
    let mut left = journal::leftovers();
    if left.is_empty() {
        ctx.out.info("nothing to recover: no run was cut short");
        return Ok(());
    }
    let mut failed = Vec::new();
    for l in &mut left {
        ctx.out.info(&format!(
            "recovering after `{}` (pid {}, started {})",
            l.doc.command,
            l.doc.pid,
            l.doc.started.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        let outcome = recover::recover(ctx, l, args.dry_run).await;
        if args.dry_run {
            for line in &outcome.done {
                output::message(&format!("  {line}"));
            }
        }
        failed.extend(outcome.failed);
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(UserError::new(
        Kind::Failure,
        format!(
            "could not recover everything:\n  - {}",
            failed.join("\n  - ")
        ),
    )
    .hint("fix the cause and run recover again; what was done is not done twice")
    .into())
}
