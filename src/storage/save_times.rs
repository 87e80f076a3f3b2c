//! How long saves took: `save` records, per volume, the archive it wrote and the seconds it took,
//! one small file per volume in the tool's state directory
//! (`$XDG_STATE_HOME/docker-volume-backup/save-times/<volume>.json`, mode 0600), and `status`
//! reads it back for the newest backup when the names match.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::volume_records;

/// One save, as the tool made it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SaveTime {
    pub volume: String,
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
    volume_records::write(&dir(state), &t.volume, t)
}

/// The last record of `volume`, if any (an unreadable one counts as none).
pub fn last(state: &Path, volume: &str) -> Option<SaveTime> {
    volume_records::read(&dir(state), volume)
}

/// The seconds the save of `volume`'s archive `archive` (a file name) took, when the last record
/// is of that archive: a backup made elsewhere, or before, has none.
pub fn of_archive(state: &Path, volume: &str, archive: &str) -> Option<f64> {
    last(state, volume)
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
            archive: "db_20240501_030000.tar.zst".into(),
            saved_at: Utc::now(),
            seconds: 2.5,
            content_bytes: 10,
        };
        let path = record(state.path(), &t).unwrap();
        assert_eq!(path.parent().unwrap(), dir(state.path()));
        assert_eq!(path.file_name().unwrap(), "db%2f...json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(last(state.path(), "db/.."), Some(t));
        assert_eq!(
            of_archive(state.path(), "db/..", "db_20240501_030000.tar.zst"),
            Some(2.5)
        );
        assert_eq!(of_archive(state.path(), "db/..", "other.tar.zst"), None);
        assert_eq!(
            of_archive(state.path(), "db", "db_20240501_030000.tar.zst"),
            None
        );
    }
}
