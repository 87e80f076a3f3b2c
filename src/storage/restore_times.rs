//! Measured restore times: `verify --restore-test` records how long restoring each volume's
//! archive took, one small file per volume of each engine (the engine the archive was saved
//! from) in the tool's state directory
//! (`$XDG_STATE_HOME/docker-volume-backup/restore-times/<engine label>/<volume>.json`, mode
//! 0600), and `status --rto` reads them back.

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::volume_records;

/// One measured test restore.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreTime {
    pub volume: String,
    /// The label of the engine the archive was saved from (`unknown` for older archives).
    pub engine: String,
    /// The archive that was restored, as it was named.
    pub archive: String,
    pub measured_at: DateTime<Utc>,
    /// Seconds from opening the archive to the end of the restore.
    pub seconds: f64,
    /// Bytes of file content restored.
    pub content_bytes: u64,
    /// Content bytes per second.
    pub bytes_per_second: f64,
}

/// The directory of the records: `<state>/restore-times`.
pub fn dir(state: &Path) -> PathBuf {
    state.join("restore-times")
}

/// Records `t` (replacing the volume's previous record), written atomically, mode 0600.
pub fn record(state: &Path, t: &RestoreTime) -> Result<PathBuf> {
    volume_records::write(&dir(state), &t.engine, &t.volume, t)
}

/// The last record of `engine`'s `volume`, if any (an unreadable one counts as none).
pub fn last(state: &Path, engine: &str, volume: &str) -> Option<RestoreTime> {
    volume_records::read(&dir(state), engine, volume)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_round_trip_privately() {
        let state = tempfile::tempdir().unwrap();
        let t = RestoreTime {
            volume: "../odd/.name".into(),
            engine: "../e".into(),
            archive: "backups/x.tar.zst".into(),
            measured_at: Utc::now(),
            seconds: 1.5,
            content_bytes: 3_000_000,
            bytes_per_second: 2_000_000.0,
        };
        let path = record(state.path(), &t).unwrap();
        assert_eq!(path.parent().unwrap(), dir(state.path()).join("%2e.%2fe"));
        assert_eq!(path.file_name().unwrap(), "%2e.%2fodd%2f.name.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(last(state.path(), "../e", "../odd/.name"), Some(t));
        assert_eq!(last(state.path(), "../e", "other"), None);
        assert_eq!(last(state.path(), "unknown", "../odd/.name"), None);
    }
}
