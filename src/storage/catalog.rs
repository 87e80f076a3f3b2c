//! What a destination holds: every archive with its volume, source engine, time, size,
//! compression and tool version, read from the manifest head (only the first bytes of each
//! object are fetched) or, for archives without one (encrypted, or not ours), from the name:
//! `<volume>_<YYYYmmdd_HHMMSS>Z_<engine label>.<ext>` (UTC), or the seed's
//! `<volume>_<YYYYmmdd_HHMMSS>.<ext>` (local time, engine unknown). Backups are told apart by
//! engine and volume: "the newest backup" lookups take one engine's (`pick`).

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
    /// The label of the engine the volume was read from (`laptop-3f9a1c0b`); `None` (shown as
    /// `unknown`) for archives written before engines were told apart.
    pub engine: Option<String>,
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

/// How archives of an unknown engine (old names, no engine in the manifest) are named in
/// output and picked with `--from-engine`. Engine labels end in `-<8 hex>`, so none is this.
pub const UNKNOWN_ENGINE: &str = "unknown";

impl Backup {
    /// The engine's label, or `unknown`.
    pub fn engine_label(&self) -> &str {
        self.engine.as_deref().unwrap_or(UNKNOWN_ENGINE)
    }
}

/// The time and engine part of this tool's archive names: `YYYYmmdd_HHMMSSZ_<engine label>`,
/// in UTC, so that names sort by time whatever the host's zone and engines never share a name.
pub fn stamp(at: DateTime<Utc>, engine_label: &str) -> String {
    format!("{}Z_{engine_label}", at.format("%Y%m%d_%H%M%S"))
}

/// The newest backup of `volume` from `engine` (a label, or `unknown`) in `found`, taken at or
/// before `at` when given.
pub fn newest_of<'a>(
    found: &'a [Backup],
    volume: &str,
    engine: &str,
    at: Option<DateTime<Utc>>,
) -> Option<&'a Backup> {
    found
        .iter()
        .filter(|b| {
            b.volume == volume && b.engine_label() == engine && at.is_none_or(|at| b.created <= at)
        })
        .max_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)))
}

/// The engines with backups of `volume` in `found`, but `except`, with how many each has.
pub fn other_engines(found: &[Backup], volume: &str, except: &str) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for b in found.iter().filter(|b| b.volume == volume) {
        if b.engine_label() != except {
            *counts.entry(b.engine_label()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(e, n)| (e.to_string(), n))
        .collect()
}

/// Whose backups a "newest backup in a destination" lookup takes.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineChoice {
    /// The engine the command talks to (its label).
    Current(String),
    /// `--from-engine LABEL` (or `unknown`).
    Given(String),
}

impl EngineChoice {
    pub fn label(&self) -> &str {
        match self {
            EngineChoice::Current(l) | EngineChoice::Given(l) => l,
        }
    }
}

/// What a lookup looks for, for its messages: `("volume", "backup", "restore DEST VOLUME")`.
pub struct Wanted<'a> {
    /// `volume` or `project`.
    pub kind: &'a str,
    pub name: &'a str,
    /// `backup` or `bundle`.
    pub what: &'a str,
    /// The destination as the user gave it.
    pub dest: &'a str,
}

/// The newest backup of `wanted` from `engine` (at or before `at`), or an error that says which
/// engines' backups the destination holds instead: another host's data is never taken unasked.
pub fn pick<'a>(
    found: &'a [Backup],
    wanted: &Wanted,
    engine: &EngineChoice,
    at: Option<DateTime<Utc>>,
    url: &str,
) -> Result<&'a Backup, crate::error::UserError> {
    use crate::error::{Kind, UserError};
    if let Some(b) = newest_of(found, wanted.name, engine.label(), at) {
        return Ok(b);
    }
    let Wanted {
        kind,
        name,
        what,
        dest,
    } = wanted;
    let when = at.map_or(String::new(), |t| {
        format!(
            " taken at or before {}",
            t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S")
        )
    });
    let from = match engine {
        EngineChoice::Current(l) => format!(" from this engine ({l})"),
        EngineChoice::Given(l) => format!(" from engine {l}"),
    };
    let others = other_engines(found, name, engine.label());
    if others.is_empty() {
        let from = match engine {
            EngineChoice::Current(_) => String::new(),
            EngineChoice::Given(_) => from,
        };
        return Err(UserError::new(
            Kind::NotFound,
            format!("no {what} of {kind} `{name}`{from}{when} in {url}"),
        )
        .hint(format!("`backups {dest}` lists what it holds")));
    }
    let list: Vec<String> = others.iter().map(|(e, n)| format!("{e} ({n})")).collect();
    Err(UserError::new(
        Kind::NotFound,
        format!(
            "no {what} of {kind} `{name}`{from}{when} in {url}; it holds {what}s of `{name}` \
             from other engines: {}",
            list.join(", ")
        ),
    )
    .hint(format!(
        "take one of them with --from-engine {} (`backups {dest}` lists each {what} with its engine)",
        others[0].0
    )))
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
    let bundle = is_bundle_name(&name);
    let head = if encrypted || size == 0 || bundle {
        None
    } else {
        read_head(store, &name, size).await
    };
    let bundle_engine = match bundle && !encrypted && size > 0 {
        true => read_bundle_engine(store, &name, size).await,
        false => None,
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
    // The manifest's engine first; the name's for archives whose head cannot be read.
    let engine = head
        .as_ref()
        .and_then(|h| h.source.engine.as_ref())
        .map(|e| e.label.clone())
        .or(bundle_engine)
        .or_else(|| by_name.as_ref().and_then(|n| n.engine.clone()));
    // The name's time first: it is the tool's own stamp (the start of the save), and it lets
    // copies keep their place in the history.
    let (volume, created) = match (&head, by_name) {
        (Some(h), Some(n)) => (h.volume.name.clone(), n.created),
        (Some(h), None) => (
            h.volume.name.clone(),
            DateTime::parse_from_rfc3339(&h.created)
                .ok()?
                .with_timezone(&Utc),
        ),
        (None, Some(n)) => (n.volume, n.created),
        (None, None) => return None,
    };
    Some(Backup {
        location: store.show(&name),
        name,
        volume,
        engine,
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

/// The engine label a compose bundle's manifest (`bundle.json`, its first entry) records.
async fn read_bundle_engine(store: &Store, name: &str, size: u64) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct BundleHead {
        source: crate::archive::SourceInfo,
    }
    let rx = super::stream_object(store, name, 0..size.min(HEAD_BYTES))
        .await
        .ok()?;
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut tar = tar::Archive::new(ChannelReader::new(rx));
        let mut first = tar.entries().ok()?.next()?.ok()?;
        if first.path().ok()?.as_os_str() != "bundle.json" {
            return None;
        }
        let mut json = Vec::new();
        first.read_to_end(&mut json).ok()?;
        let head: BundleHead = serde_json::from_slice(&json).ok()?;
        head.source.engine.map(|e| e.label)
    })
    .await
    .ok()
    .flatten()
}

/// What an archive's name says.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    pub volume: String,
    pub created: DateTime<Utc>,
    /// The engine label; `None` for the seed's names.
    pub engine: Option<String>,
}

/// `<volume>_<YYYYmmdd>_<HHMMSS>Z_<engine label>.<ext>` (this tool's names, UTC) or
/// `<volume>_<YYYYmmdd>_<HHMMSS>.<ext>` (the seed's and older versions', local time). Volume
/// names may hold `_` and `.`, times and labels hold neither: the longest stem that parses wins.
pub fn from_name(name: &str) -> Option<Named> {
    let mut cuts: Vec<usize> = name.match_indices('.').map(|(i, _)| i).collect();
    cuts.push(name.len());
    cuts.into_iter().rev().find_map(|i| from_stem(&name[..i]))
}

fn from_stem(stem: &str) -> Option<Named> {
    let (rest, last) = stem.rsplit_once('_')?;
    let (volume, created, engine) = if is_engine_label(last) {
        let (rest, time) = rest.rsplit_once('_')?;
        let (volume, date) = rest.rsplit_once('_')?;
        let naive = date_time(date, time.strip_suffix('Z')?)?;
        (
            volume,
            Utc.from_utc_datetime(&naive),
            Some(last.to_string()),
        )
    } else {
        let (volume, date) = rest.rsplit_once('_')?;
        let naive = date_time(date, last)?;
        let local = Local.from_local_datetime(&naive).earliest()?;
        (volume, local.with_timezone(&Utc), None)
    };
    (!volume.is_empty()).then(|| Named {
        volume: volume.to_string(),
        created,
        engine,
    })
}

fn date_time(date: &str, time: &str) -> Option<NaiveDateTime> {
    let digits = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(date, 8) || !digits(time, 6) {
        return None;
    }
    NaiveDateTime::parse_from_str(&format!("{date}{time}"), "%Y%m%d%H%M%S").ok()
}

/// An engine label as `EngineIdentity::label` makes them: `[a-z0-9-]`, ending in `-<8 hex>`.
pub fn is_engine_label(s: &str) -> bool {
    let Some((name, key)) = s.rsplit_once('-') else {
        return false;
    };
    !name.is_empty()
        && key.len() == 8
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: &str = "vm-3f9a1c0b";
    const E2: &str = "laptop-0badc0de";

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn old_names_give_volume_and_local_time() {
        let n = from_name("my_data_20261125_103000.tar.gz").unwrap();
        assert_eq!(n.volume, "my_data");
        assert_eq!(n.engine, None);
        assert_eq!(
            n.created
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            "2026-11-25 10:30:00"
        );
        assert!(from_name("notes.tar.gz").is_none());
        assert!(from_name("x_2026_1030.tar").is_none());
        assert!(from_name("_20261125_103000.tar").is_none());
        assert!(from_name("x_20261125_1030000.tar").is_none());
    }

    #[test]
    fn new_names_give_volume_utc_time_and_engine() {
        let n = from_name(&format!(
            "my_data_{}.tar.zst",
            stamp(utc("2026-11-25T10:30:00Z"), E1)
        ))
        .unwrap();
        assert_eq!(n.volume, "my_data");
        assert_eq!(n.created, utc("2026-11-25T10:30:00Z"));
        assert_eq!(n.engine.as_deref(), Some(E1));
        assert_eq!(
            from_name("v_20261125_103000Z_vm-3f9a1c0b.tar.zst.age")
                .unwrap()
                .engine
                .as_deref(),
            Some(E1)
        );
        // Not a label: the time must then be the last part.
        assert!(from_name("v_20261125_103000Z_notalabel.tar").is_none());
        assert!(from_name("v_20261125_103000_vm-3f9a1c0b.tar").is_none());
        assert!(from_name("_20261125_103000Z_vm-3f9a1c0b.tar").is_none());
    }

    #[test]
    fn volume_names_with_dots_and_underscores() {
        for volume in [
            "a.b",
            "my_app.data_v2",
            "x_20261125_103000.y",
            "v.tar",
            "v_",
        ] {
            for name in [
                format!("{volume}_20261125_103000Z_{E2}.tar.zst"),
                format!("{volume}_20261125_103000.tar.gz.age"),
                format!("{volume}_20261125_103000Z_{E2}.compose.tar"),
            ] {
                let n = from_name(&name).unwrap_or_else(|| panic!("{name}"));
                assert_eq!(n.volume, volume, "{name}");
            }
        }
    }

    #[test]
    fn new_names_sort_by_utc_time() {
        // Names made in any zone order as their instants do.
        let early = stamp(utc("2026-11-25T23:30:00Z"), E1);
        let late = stamp(utc("2026-11-26T00:10:00Z"), E2);
        assert!(early < late);
        assert!(
            from_name(&format!("v_{early}.tar")).unwrap().created
                < from_name(&format!("v_{late}.tar")).unwrap().created
        );
    }

    #[test]
    fn archive_names() {
        assert!(is_archive_name("v_20261125_103000.tar.zst"));
        assert!(is_archive_name("v_20261125_103000Z_vm-3f9a1c0b.tar.zst"));
        assert!(is_archive_name("v_20261125_103000.tar.gz.age"));
        assert!(!is_archive_name(".v_20261125_103000.tar.zst.abc.partial"));
        assert!(!is_archive_name("notes.txt"));
        assert!(is_engine_label(E1));
        assert!(!is_engine_label(UNKNOWN_ENGINE));
        assert!(!is_engine_label("Vm-3f9a1c0b"));
        assert!(!is_engine_label("-3f9a1c0b"));
    }

    fn backup(name: &str) -> Backup {
        let n = from_name(name).unwrap();
        Backup {
            name: name.into(),
            location: name.into(),
            volume: n.volume,
            engine: n.engine,
            created: n.created,
            size: 1,
            compression: None,
            encrypted: false,
            tool_version: None,
            ours: true,
        }
    }

    #[test]
    fn newest_of_a_volume_and_engine() {
        let found: Vec<Backup> = [
            format!("v_20261125_103000Z_{E1}.tar.zst"),
            format!("v_20261127_080000Z_{E1}.tar.zst"),
            format!("v_20261128_080000Z_{E2}.tar.zst"),
            format!("w_20261129_080000Z_{E1}.tar.zst"),
            format!("v_20261126_000000Z_{E1}.tar.zst"),
            "v_20261130_000000.tar.zst".to_string(),
        ]
        .iter()
        .map(|n| backup(n))
        .collect();
        let name = |e, at| newest_of(&found, "v", e, at).map(|b| b.name.as_str());
        assert_eq!(
            name(E1, None),
            Some(&*format!("v_20261127_080000Z_{E1}.tar.zst"))
        );
        assert_eq!(
            name(E2, None),
            Some(&*format!("v_20261128_080000Z_{E2}.tar.zst"))
        );
        assert_eq!(
            name(UNKNOWN_ENGINE, None),
            Some("v_20261130_000000.tar.zst")
        );
        let at = |s| Some(utc(s));
        assert_eq!(
            name(E1, at("2026-11-26T00:00:00Z")),
            Some(&*format!("v_20261126_000000Z_{E1}.tar.zst"))
        );
        assert_eq!(
            name(E1, at("2026-11-26T23:59:59Z")),
            Some(&*format!("v_20261126_000000Z_{E1}.tar.zst"))
        );
        assert_eq!(name(E1, at("2026-11-01T00:00:00Z")), None);
        assert!(newest_of(&found, "x", E1, None).is_none());
        assert_eq!(
            other_engines(&found, "v", E1),
            vec![(E2.to_string(), 1), (UNKNOWN_ENGINE.to_string(), 1)]
        );
    }

    #[test]
    fn pick_refuses_other_engines_by_name() {
        let found = vec![backup(&format!("v_20261128_080000Z_{E2}.tar.zst"))];
        let wanted = Wanted {
            kind: "volume",
            name: "v",
            what: "backup",
            dest: "b/",
        };
        let current = EngineChoice::Current(E1.into());
        let err = pick(&found, &wanted, &current, None, "b").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("from this engine (vm-3f9a1c0b)"), "{text}");
        assert!(text.contains("laptop-0badc0de (1)"), "{text}");
        let given = EngineChoice::Given(E2.into());
        assert_eq!(
            pick(&found, &wanted, &given, None, "b")
                .unwrap()
                .engine
                .as_deref(),
            Some(E2)
        );
        let none = Wanted {
            name: "w",
            ..wanted
        };
        let text = format!(
            "{:#}",
            pick(&found, &none, &current, None, "b").unwrap_err()
        );
        assert!(text.contains("no backup of volume `w` in b"), "{text}");
    }
}
