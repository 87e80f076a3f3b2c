//! Fuzzes the restore rewrite, which turns an untrusted archive into what the engine extracts,
//! and checks what it emits (even when it then fails: the engine has extracted those entries
//! already) with an independent tar reader:
//! - every entry lands under the mount (`volume/...`), with no `..` part;
//! - no entry is written through a symlink emitted before it;
//! - no hard link leaves the volume;
//! - no `GNU.sparse.*` PAX record reaches the engine, and no header has a ustar prefix;
//! - the report's emitted count matches what was emitted.
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::Arc;

use docker_volume_backup::archive::{rewrite_for_upload, Decoder, RewriteOptions, TarReader};
use libfuzzer_sys::fuzz_target;

const MOUNT: &str = "volume";

fuzz_target!(|data: &[u8]| {
    for options in [
        RewriteOptions::default(),
        RewriteOptions {
            no_devices: true,
            no_setuid: true,
        },
    ] {
        let Ok(decoder) = Decoder::new(data) else {
            return;
        };
        let mut reader = TarReader::new(decoder, Arc::default());
        let mut out = Vec::new();
        let emitted = match rewrite_for_upload(&mut reader, &mut out, MOUNT, options) {
            Ok((_, report)) => Some(report.emitted),
            Err(_) => None,
        };
        let checked = check(&out, options);
        if let Some(emitted) = emitted {
            assert_eq!(checked, emitted, "the report's count of emitted entries");
        }
    }
});

/// Checks every entry of `tar` that parses; returns how many there were.
fn check(tar: &[u8], options: RewriteOptions) -> u64 {
    let mut archive = tar::Archive::new(Cursor::new(tar));
    let Ok(entries) = archive.entries() else {
        return 0;
    };
    let mut symlinks: HashSet<Vec<u8>> = HashSet::new();
    let mut count = 0;
    for entry in entries {
        // A partial stream (the rewrite failed) ends in a broken entry: stop there.
        let Ok(mut entry) = entry else { break };
        if let Ok(Some(pax)) = entry.pax_extensions() {
            for record in pax.flatten() {
                let key = record.key_bytes();
                assert!(!key.starts_with(b"GNU.sparse"), "a GNU.sparse record");
                assert!(key != b"path" && key != b"linkpath", "a PAX path record");
            }
        }
        let header = entry.header().clone();
        assert!(header.as_ustar().is_none(), "a ustar header (with a prefix field)");
        let path = entry.path_bytes().into_owned();
        let rel = inside(&path).unwrap_or_else(|| panic!("{path:?} leaves the volume"));
        for (i, _) in rel.iter().enumerate().filter(|&(_, &b)| b == b'/') {
            assert!(
                !symlinks.contains(&rel[..i]),
                "{path:?} is written through a symlink"
            );
        }
        let kind = header.entry_type();
        if kind.is_hard_link() {
            let target = entry.link_name_bytes().expect("a hard link has a target");
            let target = inside(&target).expect("a hard link leaves the volume");
            assert!(!target.is_empty(), "a hard link to the volume root");
            assert!(!symlinks.contains(&target), "a hard link to a symlink");
            for (i, _) in target.iter().enumerate().filter(|&(_, &b)| b == b'/') {
                assert!(!symlinks.contains(&target[..i]), "a hard link through a symlink");
            }
        }
        if options.no_devices {
            assert!(!matches!(kind, tar::EntryType::Char | tar::EntryType::Block));
        }
        if options.no_setuid && (kind.is_file() || kind.as_byte() == 0) {
            assert_eq!(header.mode().unwrap_or(0) & 0o6000, 0, "a setuid file");
        }
        if kind.is_symlink() {
            symlinks.insert(rel);
        } else {
            symlinks.remove(&rel);
        }
        count += 1;
    }
    count
}

/// The path under the mount, without `.` parts (the root is empty); `None` if it is not under
/// the mount or has a `..` part.
fn inside(path: &[u8]) -> Option<Vec<u8>> {
    let rest = path.strip_prefix(MOUNT.as_bytes())?;
    if !(rest.is_empty() || rest.starts_with(b"/")) {
        return None;
    }
    let mut out = Vec::new();
    for part in rest.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Some(out)
}
