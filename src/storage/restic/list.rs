//! The snapshots of a restic repository as this tool sees them: which volume and engine each
//! belongs to (from the tags the tool writes: `docker-volume-backup`, `volume=NAME`,
//! `engine=KEY`; the host is the engine's label), which one a restore means, and where in the
//! snapshot the volume's root is.
//!
//! A snapshot restic itself made of a directory (`restic backup /srv/data`) has none of those
//! tags: it is listed with no volume, and is restored only by its ID (`--snapshot ID`), its
//! single path being the volume root, or `--snapshot ID:/path` naming the directory.

use chrono::{DateTime, Utc};
use rustic_core::repofile::SnapshotFile;
use serde::Serialize;

use super::{ENGINE_TAG, TAG as TOOL_TAG, VOLUME_TAG};

/// One snapshot, as `backups restic:REPO` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    /// The full ID (64 hex digits).
    pub id: String,
    pub created: DateTime<Utc>,
    /// restic's host: the source engine's label for the tool's snapshots.
    pub host: String,
    /// From the `volume=` tag; `None` for a snapshot made by restic or another tool.
    pub volume: Option<String>,
    /// From the `engine=` tag.
    pub engine: Option<String>,
    /// Whether the tool made it (the `docker-volume-backup` tag with a `volume=` tag).
    pub ours: bool,
    /// The snapshot's paths (`/<volume>` for the tool's).
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    /// Bytes of file content the snapshot holds, when its summary says.
    pub size: Option<u64>,
    /// The tool's manifest JSON, when the snapshot carries it (`description`).
    #[serde(skip)]
    pub manifest: Option<String>,
}

impl Snapshot {
    pub fn from_file(s: &SnapshotFile) -> Snapshot {
        let tags: Vec<String> = s.tags.iter().cloned().collect();
        let tag = |prefix: &str| {
            tags.iter()
                .find_map(|t| t.strip_prefix(prefix))
                .map(String::from)
        };
        let volume = tag(VOLUME_TAG);
        let ours = tags.iter().any(|t| t == TOOL_TAG) && volume.is_some();
        Snapshot {
            id: s.id.to_hex().as_str().to_string(),
            created: DateTime::from_timestamp(
                s.time.timestamp().as_second(),
                s.time.timestamp().subsec_nanosecond().max(0) as u32,
            )
            .unwrap_or_default(),
            host: s.hostname.clone(),
            volume,
            engine: tag(ENGINE_TAG),
            ours,
            paths: s.paths.iter().cloned().collect(),
            tags,
            size: s.summary.as_ref().map(|sum| sum.total_bytes_processed),
            manifest: s.description.clone().filter(|d| !d.trim().is_empty()),
        }
    }

    /// The short ID restic shows (8 hex digits).
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(8)]
    }

    /// Where the volume's root is inside the snapshot: `/<volume>` for the tool's snapshots,
    /// the only path of a foreign one; `None` when a foreign snapshot has several paths (the
    /// user names one with `--snapshot ID:/path`).
    pub fn root(&self) -> Option<String> {
        match (&self.volume, self.paths.as_slice()) {
            (Some(v), _) if self.ours => Some(format!("/{v}")),
            (_, [only]) => Some(only.clone()),
            _ => None,
        }
    }
}

/// Which of several snapshots `restore restic:REPO VOLUME` takes: the tool's newest of
/// `volume` made from the engine labelled `host`, taken at or before `at`.
pub fn newest_of<'a>(
    all: &'a [Snapshot],
    volume: &str,
    host: &str,
    at: Option<DateTime<Utc>>,
) -> Option<&'a Snapshot> {
    all.iter()
        .filter(|s| s.ours && s.volume.as_deref() == Some(volume) && s.host == host)
        .filter(|s| at.is_none_or(|t| s.created <= t))
        .max_by_key(|s| s.created)
}

/// A snapshot named by the user: a full or shortened ID (at least 4 hex digits, unique).
pub fn find_id<'a>(all: &'a [Snapshot], id: &str) -> Result<&'a Snapshot, String> {
    if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{id}` is not a snapshot ID (at least 4 hex digits, as `backups` shows)"
        ));
    }
    let id = id.to_ascii_lowercase();
    let mut found = all.iter().filter(|s| s.id.starts_with(&id));
    match (found.next(), found.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(format!("no snapshot {id} in the repository")),
        (Some(_), Some(_)) => Err(format!(
            "{id} names more than one snapshot: give more of its digits"
        )),
    }
}

/// `ID` or `ID:/path` (restic's own way to name a directory inside a snapshot).
pub fn split_snapshot_arg(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once(':') {
        Some((id, path)) if !path.is_empty() => (id, Some(path)),
        Some((id, _)) => (id, None),
        None => (arg, None),
    }
}

/// Newest first, then by host and volume (the order `backups` shows).
pub fn sort(all: &mut [Snapshot]) {
    all.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.volume.cmp(&b.volume))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, volume: Option<&str>, host: &str, secs: i64, ours: bool) -> Snapshot {
        Snapshot {
            id: id.into(),
            created: DateTime::from_timestamp(secs, 0).unwrap(),
            host: host.into(),
            volume: volume.map(String::from),
            engine: None,
            ours,
            paths: vec![volume.map_or("/srv/data".into(), |v| format!("/{v}"))],
            tags: vec![],
            size: None,
            manifest: None,
        }
    }

    #[test]
    fn newest_is_per_volume_and_engine() {
        let all = vec![
            snap("aa01", Some("db"), "vm-1", 100, true),
            snap("aa02", Some("db"), "vm-1", 300, true),
            snap("aa03", Some("db"), "vm-2", 400, true),
            snap("aa04", Some("web"), "vm-1", 500, true),
            // restic's own snapshot tagged by hand like ours but without the tool's tag
            snap("aa05", Some("db"), "vm-1", 600, false),
        ];
        assert_eq!(newest_of(&all, "db", "vm-1", None).unwrap().id, "aa02");
        assert_eq!(newest_of(&all, "db", "vm-2", None).unwrap().id, "aa03");
        let at = DateTime::from_timestamp(200, 0);
        assert_eq!(newest_of(&all, "db", "vm-1", at).unwrap().id, "aa01");
        assert!(newest_of(&all, "db", "vm-3", None).is_none());
        let early = DateTime::from_timestamp(50, 0);
        assert!(newest_of(&all, "db", "vm-1", early).is_none());
    }

    #[test]
    fn ids_by_unique_prefix() {
        let all = vec![
            snap("abcd1234", Some("db"), "h", 1, true),
            snap("abce5678", Some("db"), "h", 2, true),
        ];
        assert_eq!(find_id(&all, "abcd").unwrap().id, "abcd1234");
        assert_eq!(find_id(&all, "ABCE56").unwrap().id, "abce5678");
        assert!(find_id(&all, "abc").unwrap_err().contains("at least 4"));
        assert!(find_id(&all, "abcX").is_err());
        assert!(find_id(&all, "abc0").unwrap_err().contains("no snapshot"));
        let both = vec![
            snap("abcd1234", None, "h", 1, false),
            snap("abcd5678", None, "h", 2, false),
        ];
        assert!(find_id(&both, "abcd")
            .unwrap_err()
            .contains("more than one"));
    }

    #[test]
    fn roots() {
        assert_eq!(
            snap("a", Some("db"), "h", 1, true).root().as_deref(),
            Some("/db")
        );
        assert_eq!(
            snap("a", None, "h", 1, false).root().as_deref(),
            Some("/srv/data")
        );
        let mut two = snap("a", None, "h", 1, false);
        two.paths.push("/etc".into());
        assert_eq!(two.root(), None);
        assert_eq!(split_snapshot_arg("abcd"), ("abcd", None));
        assert_eq!(split_snapshot_arg("abcd:/srv/x"), ("abcd", Some("/srv/x")));
        assert_eq!(split_snapshot_arg("abcd:"), ("abcd", None));
    }
}
