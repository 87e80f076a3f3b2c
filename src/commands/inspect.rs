//! `inspect ARCHIVE`: the manifest and a summary; reads the whole archive (nothing is extracted)
//! so the counts and the checksum are checked too. Works for archives without a manifest.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use serde_json::json;

use crate::archive::extract::{entry_meta, EntryMeta};
use crate::archive::{Counters, Item, Keys, ManifestHead, ManifestTrailer, Totals};
use crate::cli::{Format, InspectArgs};
use crate::output::{self, Column, Table};
use crate::settings::Ctx;

struct Summary {
    head: Option<ManifestHead>,
    trailer: Option<ManifestTrailer>,
    format: crate::archive::ArchiveFormat,
    totals: Totals,
    verified: bool,
    top_level: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: InspectArgs) -> Result<()> {
    let keys = crate::settings::keys::keys(&args.decrypt)?;
    let (input, len) = crate::storage::open_input(&args.archive, &ctx.s3).await?;
    if args.list {
        let entries = tokio::task::spawn_blocking(move || read_list(input, &keys))
            .await
            .expect("inspect panicked")
            .with_context(|| format!("cannot inspect {}", args.archive))?;
        return match args.format {
            Format::Json => output::data_json(&entries),
            Format::Table => output::data(&list_table(&entries)),
        };
    }
    let mut summary = tokio::task::spawn_blocking(move || read_summary(input, &keys))
        .await
        .expect("inspect panicked")
        .with_context(|| format!("cannot inspect {}", args.archive))?;
    // An archive from anywhere (or from an older version) may still carry secrets in its volume
    // options: they are never shown.
    if let Some(head) = &mut summary.head {
        head.volume.options = crate::redact::options(&head.volume.options);
    }
    match args.format {
        Format::Json => {
            let value = json!({
                "archive": args.archive,
                "size": len,
                "compression": summary.format.compression,
                "encryption": summary.format.encryption,
                "manifest": summary.head.as_ref().map(|h| json!({"head": h, "trailer": summary.trailer})),
                "entries": summary.totals.entries,
                "content_bytes": summary.totals.content_bytes,
                "verified": summary.verified,
                "top_level": summary.top_level,
            });
            output::data_json(&value)?;
        }
        Format::Table => output::data(&text(&args.archive, len, &summary))?,
    }
    Ok(())
}

fn read_summary(input: crate::pipe::DynRead, keys: &Keys) -> Result<Summary> {
    let counters: Arc<Counters> = Arc::default();
    let (mut reader, format) = crate::archive::open_archive_with_kind(input, counters, keys)?;
    let mut top_level = Vec::new();
    while let Item::Entry(entry) = reader.next_item()? {
        let path = entry.display_path();
        let trimmed = path.trim_start_matches("./").trim_start_matches('/');
        let top = trimmed.split('/').next().unwrap_or_default();
        if !top.is_empty() && top_level.len() < 50 && !top_level.iter().any(|t| t == top) {
            top_level.push(top.to_string());
        }
    }
    reader.drain()?;
    let verdict = reader.verify()?;
    Ok(Summary {
        head: reader.head().cloned(),
        trailer: reader.trailer().cloned(),
        format,
        verified: verdict.matched(),
        totals: verdict.totals().clone(),
        top_level,
    })
}

/// Every entry's metadata; the whole archive is read and checked (a damaged one fails).
fn read_list(input: crate::pipe::DynRead, keys: &Keys) -> Result<Vec<EntryMeta>> {
    let mut reader = crate::archive::open_archive(input, Arc::default(), keys)?;
    let mut entries = Vec::new();
    while let Item::Entry(entry) = reader.next_item()? {
        entries.push(entry_meta(&entry));
    }
    reader.drain()?;
    reader.verify()?;
    Ok(entries)
}

/// As `tar -tv` shows them: type and mode, owner, size, time, path (`-> target` for links).
fn list_table(entries: &[EntryMeta]) -> String {
    let mut table = Table::new([
        Column::left("MODE"),
        Column::left("OWNER"),
        Column::right("SIZE"),
        Column::left("MTIME"),
        Column::left("PATH"),
    ]);
    for e in entries {
        let kind = match e.kind {
            "dir" => 'd',
            "symlink" => 'l',
            "hardlink" => 'h',
            "fifo" => 'p',
            "char" => 'c',
            "block" => 'b',
            "file" => '-',
            _ => '?',
        };
        let owner = format!(
            "{}/{}",
            e.user.clone().unwrap_or_else(|| e.uid.to_string()),
            e.group.clone().unwrap_or_else(|| e.gid.to_string())
        );
        let mtime = chrono::DateTime::from_timestamp(e.mtime, 0)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| e.mtime.to_string());
        let path = match &e.link {
            Some(l) => format!("{} -> {l}", e.path),
            None => e.path.clone(),
        };
        table.row([
            format!("{kind}{:04o}", e.mode),
            owner,
            e.size.to_string(),
            mtime,
            path,
        ]);
    }
    table.render()
}

/// The summary for people, one `key  value` line each.
fn text(archive: &str, len: Option<u64>, s: &Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let size = len.map(output::bytes).unwrap_or_else(|| "stdin".into());
    let _ = writeln!(
        out,
        "archive   {archive} ({size}, {})",
        s.format.compression
    );
    if let Some(e) = s.format.encryption {
        let _ = writeln!(out, "encrypted {e}");
    }
    match &s.head {
        Some(h) => {
            let _ = writeln!(
                out,
                "volume    {} (driver {})",
                h.volume.name, h.volume.driver
            );
            for (k, v) in sorted(&h.volume.labels) {
                let _ = writeln!(out, "label     {k}={v}");
            }
            for (k, v) in sorted(&h.volume.options) {
                let _ = writeln!(out, "option    {k}={v}");
            }
            let _ = writeln!(
                out,
                "created   {} by {} {}",
                h.created, h.tool, h.tool_version
            );
            let _ = writeln!(
                out,
                "source    context {} ({}), engine {}",
                h.source.context, h.source.endpoint, h.source.engine_version
            );
            let _ = match &h.source.engine {
                Some(e) => writeln!(
                    out,
                    "engine    {} ({} on {}, id {}){}",
                    e.label,
                    e.flavour,
                    e.name,
                    e.id,
                    if e.flavour == "podman" {
                        "; owners not recorded (Podman's API reports every file as root's)"
                    } else {
                        ""
                    }
                ),
                None => writeln!(
                    out,
                    "engine    unknown (written before engines were recorded)"
                ),
            };
        }
        None => out.push_str("manifest  none (not made by docker-volume-backup)\n"),
    }
    let _ = writeln!(
        out,
        "entries   {} ({} of data)",
        output::thousands(s.totals.entries),
        output::bytes(s.totals.content_bytes)
    );
    match &s.trailer {
        Some(t) if s.verified => {
            let _ = writeln!(out, "checksum  {} (verified)", t.checksum);
        }
        _ => out.push_str("checksum  none recorded\n"),
    }
    if !s.top_level.is_empty() {
        let _ = writeln!(out, "contents  {}", s.top_level.join("  "));
    }
    out
}

fn sorted(map: &std::collections::HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = map.iter().collect();
    v.sort();
    v
}
