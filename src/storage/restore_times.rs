//! Measured restore times: `verify --restore-test` records how long restoring each volume's
//! archive took, one small file per volume in the tool's state directory
//! (`$XDG_STATE_HOME/docker-volume-backup/restore-times/<volume>.json`, mode 0600), and
//! `status --rto` reads them back.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One measured test restore.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreTime {
    pub volume: String,
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

/// A file name for any volume name: letters, digits, `_`, `-` and inner `.` stay; anything else
/// becomes `%xx`, so that no name climbs out or hides.
fn file_name(volume: &str) -> String {
    let mut out = String::new();
    for (i, b) in volume.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    format!("{out}.json")
}

/// Records `t` (replacing the volume's previous record), written atomically, mode 0600.
pub fn record(state: &Path, t: &RestoreTime) -> Result<PathBuf> {
    let dir = dir(state);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    let path = dir.join(file_name(&t.volume));
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        file_name(&t.volume),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(t)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

/// The last record of `volume`, if any (an unreadable one counts as none).
pub fn last(state: &Path, volume: &str) -> Option<RestoreTime> {
    let text = std::fs::read(dir(state).join(file_name(volume))).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_privately() {
        let state = tempfile::tempdir().unwrap();
        let t = RestoreTime {
            volume: "../odd/.name".into(),
            archive: "backups/x.tar.zst".into(),
            measured_at: Utc::now(),
            seconds: 1.5,
            content_bytes: 3_000_000,
            bytes_per_second: 2_000_000.0,
        };
        let path = record(state.path(), &t).unwrap();
        assert_eq!(path.parent().unwrap(), dir(state.path()));
        assert_eq!(path.file_name().unwrap(), "%2e.%2fodd%2f.name.json");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(last(state.path(), "../odd/.name"), Some(t));
        assert_eq!(last(state.path(), "other"), None);
    }
}
