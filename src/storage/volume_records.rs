//! One small JSON record per volume in a directory of the tool's state directory
//! (`<state>/<kind>/<volume>.json`, mode 0600, written atomically): the newest record of each
//! volume replaces the one before. `restore_times` and `save_times` keep theirs this way.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A file name for any volume name: letters, digits, `_`, `-` and inner `.` stay; anything else
/// becomes `%xx`, so that no name climbs out or hides.
pub fn file_name(volume: &str) -> String {
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

/// Writes `record` as `volume`'s record in `dir` (replacing the previous one), atomically, mode
/// 0600, the directory 0700.
pub fn write<T: Serialize>(dir: &Path, volume: &str, record: &T) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let path = dir.join(file_name(volume));
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        file_name(volume),
        std::process::id()
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(record)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(path)
}

/// `volume`'s record in `dir`, if any (an unreadable one counts as none).
pub fn read<T: DeserializeOwned>(dir: &Path, volume: &str) -> Option<T> {
    let text = std::fs::read(dir.join(file_name(volume))).ok()?;
    serde_json::from_slice(&text).ok()
}
