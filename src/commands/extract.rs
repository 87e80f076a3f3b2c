//! `extract ARCHIVE [PATH...] -o DIR`: entries of an archive into a host directory, decrypted as
//! `restore` does, with no engine; entries that would leave DIR are refused
//! (`archive::extract`).

use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::archive::extract::extract;
use crate::archive::{Counters, Verdict};
use crate::cli::ExtractArgs;
use crate::error::{Kind, UserError};
use crate::output;
use crate::settings::Ctx;

pub async fn run(ctx: &Ctx, args: ExtractArgs) -> Result<()> {
    let keys = crate::settings::keys::keys(&args.decrypt)?;
    let mut paths = Vec::new();
    for p in &args.paths {
        paths.push(crate::archive::subtree(p).ok_or_else(|| {
            UserError::new(Kind::Usage, format!("{p}: not a path inside the archive"))
                .hint("give paths as `inspect ARCHIVE --list` shows them, e.g. `uploads/a.jpg`")
        })?);
    }
    let dir = args.output.clone();
    std::fs::create_dir_all(&dir).map_err(|e| {
        UserError::new(
            Kind::Failure,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;
    let (input, _) = crate::storage::open_input(&args.archive, &ctx.s3).await?;
    let force = args.force;
    let report = tokio::task::spawn_blocking(move || {
        let counters: Arc<Counters> = Arc::default();
        let mut reader = crate::archive::open_archive(input, counters, &keys)?;
        extract(&mut reader, &dir, &paths, force)
    })
    .await
    .expect("extract panicked")
    .with_context(|| format!("cannot extract {}", args.archive))?;
    for skipped in report.skipped.iter().take(20) {
        output::warn(&format!("not extracted: {skipped}"));
    }
    if report.skipped.len() > 20 {
        output::warn(&format!(
            "... and {} more not extracted",
            report.skipped.len() - 20
        ));
    }
    let check = match report.verdict {
        Verdict::Verified(_) => "checksum verified",
        Verdict::VerifiedEntries(_) => {
            "checksum verified (entries only: a format 1 manifest is not covered)"
        }
        Verdict::NoManifest(_) => "no manifest to verify against",
    };
    ctx.out.info(&format!(
        "extracted {} entries of {} into {} ({check})",
        output::thousands(report.written),
        args.archive,
        args.output.display()
    ));
    if !report.missing.is_empty() {
        return Err(UserError::new(
            Kind::NotFound,
            format!("not in {}: {}", args.archive, report.missing.join(", ")),
        )
        .hint(format!("see `inspect {} --list`", args.archive))
        .into());
    }
    if !report.skipped.is_empty() && report.written == 0 {
        return Err(UserError::new(Kind::Refused, "no entry was extracted").into());
    }
    Ok(())
}
