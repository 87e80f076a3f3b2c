//! One small JSON record per volume of each engine in a directory of the tool's state directory
//! (`<state>/<kind>/<engine label>/<volume>.json`, mode 0600, written atomically): the newest
//! record of each volume replaces the one before, and same-named volumes of two engines keep
//! theirs apart. `restore_times` and `save_times` keep theirs this way.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A file name for any volume name: letters, digits, `_`, `-` and inner `.` stay; anything else
/// becomes `%xx`, so that no name climbs out or hides.
pub fn file_name(volume: &str) -> String {
    format!("{}.json", escape(volume))
}

/// `name` with everything but letters, digits, `_`, `-` and inner `.` as `%xx`.
fn escape(volume: &str) -> String {
    let mut out = String::new();
    for (i, b) in volume.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// The directory of `engine`'s records in `dir` (labels come from archives too: escaped).
pub fn engine_dir(dir: &Path, engine: &str) -> PathBuf {
    dir.join(escape(engine))
}

/// Writes `record` as the record of `engine`'s `volume` in `dir` (replacing the previous one),
/// atomically, mode 0600, the directories 0700.
pub fn write<T: Serialize>(dir: &Path, engine: &str, volume: &str, record: &T) -> Result<PathBuf> {
    let top = dir;
    let dir = &engine_dir(top, engine);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for d in [top, dir] {
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700));
    }
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

/// The record of `engine`'s `volume` in `dir`, if any (an unreadable one counts as none).
pub fn read<T: DeserializeOwned>(dir: &Path, engine: &str, volume: &str) -> Option<T> {
    let text = std::fs::read(engine_dir(dir, engine).join(file_name(volume))).ok()?;
    serde_json::from_slice(&text).ok()
}
