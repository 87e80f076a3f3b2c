//! `backups DEST [--volume V] [--format json]`: what a destination holds, newest first.

use anyhow::Result;
use chrono::Local;

use crate::cli::{BackupsArgs, Format};
use crate::output;
use crate::settings::Ctx;
use crate::storage::{catalog, Location, Store};

pub async fn run(ctx: &Ctx, args: BackupsArgs) -> Result<()> {
    let store = Store::open(&Location::parse(&args.destination)?, false, &ctx.s3)?;
    let mut found = catalog::list(&store).await?;
    if let Some(volume) = &args.volume {
        found.retain(|b| &b.volume == volume);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&found)?),
        Format::Table => print_table(&found),
    }
    Ok(())
}

fn print_table(found: &[catalog::Backup]) {
    let vwidth = found
        .iter()
        .map(|b| b.volume.len())
        .max()
        .unwrap_or(0)
        .max(6);
    println!(
        "{:vwidth$}  {:19}  {:>9}  {:11}  {:8}  NAME",
        "VOLUME", "CREATED", "SIZE", "COMPRESSION", "VERSION"
    );
    for b in found {
        let compression = match (b.compression, b.encrypted) {
            (Some(c), true) => format!("{c}+age"),
            (Some(c), false) => c.to_string(),
            (None, true) => "age".into(),
            (None, false) => "-".into(),
        };
        println!(
            "{:vwidth$}  {:19}  {:>9}  {:11}  {:8}  {}",
            b.volume,
            b.created.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S"),
            output::bytes(b.size),
            compression,
            b.tool_version.as_deref().unwrap_or("-"),
            b.name
        );
    }
}
