//! `backups DEST [--volume V] [--format json]`: what a destination holds, newest first, with
//! the engine each backup came from; for `restic:REPO`, its snapshots by engine (restic's host)
//! and volume.

use anyhow::Result;
use chrono::Local;

use crate::cli::{BackupsArgs, Format};
use crate::output::{self, Column, Table};
use crate::settings::Ctx;
use crate::storage::restic::list::Snapshot;
use crate::storage::restic::{self, ResticTarget};
use crate::storage::{catalog, Location, Store};

async fn snapshots(args: &BackupsArgs, target: ResticTarget) -> Result<()> {
    let password = restic::password(args.restic.restic_password_file.as_deref(), false)?;
    let mut found = tokio::task::spawn_blocking(move || {
        let repo = restic::open(&target, &password)?;
        restic::read::snapshots(&repo)
    })
    .await
    .expect("listing the snapshots panicked")?;
    if let Some(volume) = &args.volume {
        found.retain(|s| s.volume.as_ref() == Some(volume));
    }
    match args.format {
        Format::Json => output::data_json(&found)?,
        Format::Table => output::data(&snapshot_table(&found))?,
    }
    Ok(())
}

/// One line per snapshot: engine (restic's host), volume (`-` for a snapshot restic or another
/// tool made: its path is shown instead), when, size, and the ID to name it by.
fn snapshot_table(found: &[Snapshot]) -> String {
    let mut table = Table::new([
        Column::left("ENGINE"),
        Column::left("VOLUME"),
        Column::left("CREATED").min(19),
        Column::right("SIZE").min(9),
        Column::left("ID"),
        Column::left("PATHS"),
    ]);
    for s in found {
        table.row([
            s.host.clone(),
            match (&s.volume, s.ours) {
                (Some(v), true) => v.clone(),
                _ => "-".into(),
            },
            s.created
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            s.size.map_or_else(|| "-".into(), output::bytes),
            s.short_id().to_string(),
            s.paths.join(","),
        ]);
    }
    table.render()
}

pub async fn run(ctx: &Ctx, args: BackupsArgs) -> Result<()> {
    if ResticTarget::is_restic(&args.destination) {
        let target = ResticTarget::parse(&args.destination)?;
        return snapshots(&args, target).await;
    }
    let store = Store::open(&Location::parse(&args.destination)?, false, &ctx.s3)?;
    let mut found = catalog::list(&store).await?;
    if let Some(volume) = &args.volume {
        found.retain(|b| &b.volume == volume);
    }
    match args.format {
        Format::Json => output::data_json(&found)?,
        Format::Table => output::data(&table(&found))?,
    }
    Ok(())
}

fn table(found: &[catalog::Backup]) -> String {
    let mut table = Table::new([
        Column::left("VOLUME"),
        Column::left("ENGINE"),
        Column::left("CREATED").min(19),
        Column::right("SIZE").min(9),
        Column::left("COMPRESSION"),
        Column::left("VERSION").min(8),
        Column::left("NAME"),
    ]);
    for b in found {
        let compression = match (b.compression, b.encrypted) {
            (Some(c), true) => format!("{c}+age"),
            (Some(c), false) => c.to_string(),
            (None, true) => "age".into(),
            (None, false) => "-".into(),
        };
        table.row([
            b.volume.clone(),
            b.engine_label().to_string(),
            b.created
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            output::bytes(b.size),
            compression,
            b.tool_version.clone().unwrap_or_else(|| "-".into()),
            b.name.clone(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Compression;

    #[test]
    fn table_is_pinned() {
        let created = chrono::DateTime::parse_from_rfc3339("2024-05-01T03:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        // Times are shown in local time: the test follows whatever zone it runs in.
        let t = created
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let backup =
            |volume: &str, compression, encrypted, version: Option<&str>| catalog::Backup {
                name: format!("{volume}-x.tar"),
                location: format!("backups/{volume}-x.tar"),
                volume: volume.into(),
                engine: (volume != "w").then(|| "vm-3f9a1c0b".into()),
                created,
                size: 2_500_000,
                compression,
                encrypted,
                tool_version: version.map(String::from),
                ours: true,
            };
        let found = vec![
            backup("db", Some(Compression::Zstd), false, Some("0.1.0")),
            backup("shop_uploads", Some(Compression::Gzip), true, None),
            backup("v", None, true, None),
            backup("w", None, false, None),
        ];
        assert_eq!(
            table(&found),
            format!(
                "\
VOLUME        ENGINE       CREATED                   SIZE  COMPRESSION  VERSION   NAME
db            vm-3f9a1c0b  {t}    2.50 MB  zstd         0.1.0     db-x.tar
shop_uploads  vm-3f9a1c0b  {t}    2.50 MB  gzip+age     -         shop_uploads-x.tar
v             vm-3f9a1c0b  {t}    2.50 MB  age          -         v-x.tar
w             unknown      {t}    2.50 MB  -            -         w-x.tar
"
            )
        );
        assert_eq!(
            table(&[]),
            "VOLUME  ENGINE  CREATED                   SIZE  COMPRESSION  VERSION   NAME\n"
        );
    }
}
