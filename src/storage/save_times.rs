//! How long saves took: `save` records, per volume of each engine, the archive it wrote and the
//! seconds it took, one small file per volume in the tool's state directory
//! (`$XDG_STATE_HOME/docker-volume-backup/save-times/<engine label>/<volume>.json`, mode 0600),
//! and `status` reads it back for the newest backup when the names match.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::volume_records;

/// One save, as the tool made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SaveTime {
    pub volume: String,
    /// The label of the engine the volume was read from.
    pub engine: String,
    /// The archive's file name, as the catalog lists it (without its destination).
    pub archive: String,
    pub saved_at: DateTime<Utc>,
    /// Seconds from opening the destinations to the archive committed.
    pub seconds: f64,
    /// Bytes of file content saved.
    pub content_bytes: u64,
}

/// The directory of the records: `<state>/save-times`.
pub fn dir(state: &Path) -> PathBuf {
    state.join("save-times")
}

/// Records `t` (replacing the volume's previous record), written atomically, mode 0600.
pub fn record(state: &Path, t: &SaveTime) -> Result<PathBuf> {
    volume_records::write(&dir(state), &t.engine, &t.volume, t)
}

/// The last record of `engine`'s `volume`, if any (an unreadable one counts as none).
pub fn last(state: &Path, engine: &str, volume: &str) -> Option<SaveTime> {
    volume_records::read(&dir(state), engine, volume)
}

/// The seconds the save of `volume`'s archive `archive` (a file name) took, when the last record
/// is of that archive: a backup made elsewhere, or before, has none.
pub fn of_archive(state: &Path, engine: &str, volume: &str, archive: &str) -> Option<f64> {
    last(state, engine, volume)
        .filter(|t| t.archive == archive)
        .map(|t| t.seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_round_trip_privately_and_match_by_archive() {
        let state = tempfile::tempdir().unwrap();
        let t = SaveTime {
            volume: "db/..".into(),
            engine: "vm-3f9a1c0b".into(),
            archive: "db_20240501_030000.tar.zst".into(),
            saved_at: Utc::now(),
            seconds: 2.5,
            content_bytes: 10,
        };
        let path = record(state.path(), &t).unwrap();
        assert_eq!(
            path.parent().unwrap(),
            dir(state.path()).join("vm-3f9a1c0b")
        );
        assert_eq!(path.file_name().unwrap(), "db%2f...json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(last(state.path(), "vm-3f9a1c0b", "db/.."), Some(t));
        let of =
            |engine, volume| of_archive(state.path(), engine, volume, "db_20240501_030000.tar.zst");
        assert_eq!(of("vm-3f9a1c0b", "db/.."), Some(2.5));
        assert_eq!(
            of_archive(state.path(), "vm-3f9a1c0b", "db/..", "other.tar.zst"),
            None
        );
        assert_eq!(of("vm-3f9a1c0b", "db"), None);
        // The same volume name on another engine is another volume.
        assert_eq!(of("laptop-0badc0de", "db/.."), None);
        assert_eq!(last(state.path(), "../x", "db/.."), None);
    }
}
