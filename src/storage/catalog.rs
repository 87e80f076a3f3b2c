//! What a destination holds: every archive with its volume, time, size, compression and tool
//! version, read from the manifest head (only the first bytes of each object are fetched) or,
//! for archives without one, from the `<volume>_<YYYYmmdd_HHMMSS>` name.

use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use futures_util::StreamExt;
use serde::Serialize;

use super::{storage_error, Store};
use crate::archive::{self, Compression, Keys};
use crate::pipe::ChannelReader;

/// Bytes fetched from each object to read its manifest head: the head is the first tar
/// header (a few hundred bytes of JSON, compressed), the rest is the first entry's header.
const HEAD_BYTES: u64 = 256 * 1024;
/// Objects whose heads are fetched at once.
const PARALLEL_HEADS: usize = 8;

/// One archive found in a destination.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The object's name in the destination.
    pub name: String,
    /// Where it is, for people and for `restore`: `./backups/x.tar.zst`, `s3://b/p/x.tar.zst`.
    pub location: String,
    pub volume: String,
    pub created: DateTime<Utc>,
    pub size: u64,
    /// From the manifest, else from the name; unknown for encrypted archives without keys.
    pub compression: Option<Compression>,
    pub encrypted: bool,
    /// The version of docker-volume-backup that wrote it (from the manifest).
    pub tool_version: Option<String>,
    /// Written by this tool: a manifest head of ours, or an age-encrypted archive under the
    /// tool's naming (the seed's recipes never encrypt). Only these may be pruned.
    pub ours: bool,
}

/// The archives in `store`, newest first. A listing error (missing bucket, credentials) fails;
/// an object whose head cannot be read is still listed from its name.
pub async fn list(store: &Store) -> Result<Vec<Backup>> {
    // Recursive for object stores: no `delimiter` in the request (some S3-compatible servers,
    // moto among them, check its signature wrongly); what lies under sub-prefixes is left out
    // below. A directory is listed flat, so a big tree beside the archives is not walked.
    let entries = store
        .op
        .list_with("/")
        .recursive(!store.is_local())
        .await
        .map_err(|e| storage_error(&format!("cannot list {}", store.url), e))?;
    let candidates: Vec<(String, u64)> = entries
        .into_iter()
        .filter(|e| e.metadata().is_file() && !e.path().trim_start_matches('/').contains('/'))
        .filter(|e| is_archive_name(e.name()))
        .map(|e| (e.name().to_string(), e.metadata().content_length()))
        .collect();
    let mut found: Vec<Backup> = futures_util::stream::iter(candidates)
        .map(|(name, size)| describe(store, name, size))
        .buffer_unordered(PARALLEL_HEADS)
        .filter_map(|b| async move { b })
        .collect()
        .await;
    sort_newest_first(&mut found);
    Ok(found)
}

/// Newest first; ties by name so that the order is stable.
pub fn sort_newest_first(found: &mut [Backup]) {
    found.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
}

/// The newest backup of `volume` in `found`, taken at or before `at` when given.
pub fn newest_of<'a>(
    found: &'a [Backup],
    volume: &str,
    at: Option<DateTime<Utc>>,
) -> Option<&'a Backup> {
    found
        .iter()
        .filter(|b| b.volume == volume && at.is_none_or(|at| b.created <= at))
        .max_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)))
}

/// A compose bundle's name (`<project>_<YYYYmmdd_HHMMSS>.compose.tar`): the catalog lists it
/// under its project, as if that were a volume.
pub fn is_bundle_name(name: &str) -> bool {
    name.contains(".compose.tar")
}

/// Archive-like names, temporary files excluded (`.name.partial`, dot-names).
pub fn is_archive_name(name: &str) -> bool {
    let plain = name.strip_suffix(".age").unwrap_or(name);
    !name.starts_with('.') && !name.ends_with('/') && Compression::from_file_name(plain).is_some()
}

async fn describe(store: &Store, name: String, listed_size: u64) -> Option<Backup> {
    let size = if listed_size > 0 || !store.is_local() {
        listed_size
    } else {
        store
            .op
            .stat(&name)
            .await
            .map(|m| m.content_length())
            .unwrap_or(0)
    };
    let encrypted = name.ends_with(".age");
    let head = if encrypted || size == 0 {
        None
    } else {
        read_head(store, &name, size).await
    };
    let by_name = from_name(&name);
    let plain_name = name.strip_suffix(".age").unwrap_or(&name);
    let compression = head
        .as_ref()
        .map(|h| h.compression)
        .or_else(|| (!encrypted).then(|| Compression::from_file_name(plain_name))?);
    let ours_by_head = head
        .as_ref()
        .is_some_and(|h| h.tool == env!("CARGO_PKG_NAME"));
    let ours = ours_by_head || (encrypted && by_name.is_some());
    // The name's time first: it is the tool's own stamp (local time at the start of the save),
    // and it lets copies keep their place in the history.
    let (volume, created) = match (&head, by_name) {
        (Some(h), Some((_, t))) => (h.volume.name.clone(), t),
        (Some(h), None) => (
            h.volume.name.clone(),
            DateTime::parse_from_rfc3339(&h.created)
                .ok()?
                .with_timezone(&Utc),
        ),
        (None, Some((v, t))) => (v, t),
        (None, None) => return None,
    };
    Some(Backup {
        location: store.show(&name),
        name,
        volume,
        created,
        size,
        compression,
        encrypted,
        tool_version: head.map(|h| h.tool_version),
        ours,
    })
}

async fn read_head(store: &Store, name: &str, size: u64) -> Option<crate::archive::ManifestHead> {
    let rx = super::stream_object(store, name, 0..size.min(HEAD_BYTES))
        .await
        .ok()?;
    tokio::task::spawn_blocking(move || {
        let reader = ChannelReader::new(rx);
        let opened = archive::open_archive(Box::new(reader), Arc::default(), &Keys::none()).ok()?;
        opened.head().cloned()
    })
    .await
    .ok()
    .flatten()
}

/// `<volume>_<YYYYmmdd>_<HHMMSS>.<ext>`, the seed's and this tool's naming (local time).
pub fn from_name(name: &str) -> Option<(String, DateTime<Utc>)> {
    let stem = name.split_once('.').map_or(name, |(s, _)| s);
    let (rest, time) = stem.rsplit_once('_')?;
    let (volume, date) = rest.rsplit_once('_')?;
    let naive = NaiveDateTime::parse_from_str(&format!("{date}{time}"), "%Y%m%d%H%M%S").ok()?;
    let local = Local.from_local_datetime(&naive).earliest()?;
    (!volume.is_empty()).then(|| (volume.to_string(), local.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_volume_and_time() {
        let (v, t) = from_name("my_data_20261125_103000.tar.gz").unwrap();
        assert_eq!(v, "my_data");
        assert_eq!(
            t.with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            "2026-11-25 10:30:00"
        );
        assert!(from_name("notes.tar.gz").is_none());
        assert!(from_name("x_2026_1030.tar").is_none());
        assert!(from_name("_20261125_103000.tar").is_none());
    }

    #[test]
    fn archive_names() {
        assert!(is_archive_name("v_20261125_103000.tar.zst"));
        assert!(is_archive_name("v_20261125_103000.tar.gz.age"));
        assert!(!is_archive_name(".v_20261125_103000.tar.zst.abc.partial"));
        assert!(!is_archive_name("notes.txt"));
    }

    #[test]
    fn newest_of_a_volume() {
        let b = |name: &str| {
            let (volume, created) = from_name(name).unwrap();
            Backup {
                name: name.into(),
                location: name.into(),
                volume,
                created,
                size: 1,
                compression: None,
                encrypted: false,
                tool_version: None,
                ours: true,
            }
        };
        let found = vec![
            b("v_20261125_103000.tar.zst"),
            b("v_20261127_080000.tar.zst"),
            b("w_20261129_080000.tar.zst"),
            b("v_20261126_000000.tar.zst"),
        ];
        let name = |at| newest_of(&found, "v", at).map(|b| b.name.as_str());
        assert_eq!(name(None), Some("v_20261127_080000.tar.zst"));
        let at = |s| from_name(s).unwrap().1;
        assert_eq!(
            name(Some(at("v_20261126_000000"))),
            Some("v_20261126_000000.tar.zst")
        );
        assert_eq!(
            name(Some(at("v_20261126_235959"))),
            Some("v_20261126_000000.tar.zst")
        );
        assert_eq!(name(Some(at("v_20261101_000000"))), None);
        assert!(newest_of(&found, "x", None).is_none());
    }
}
