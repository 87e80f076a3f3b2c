//! Fuzzes everything that reads an untrusted archive: format detection, decompression, the
//! manifest, the tar walk with its PAX and GNU extensions, the rewrite for the engine (paths that
//! leave the volume, links) and the entry index used by `verify`. None of it may panic, hang or
//! allocate without bound; errors are fine.
#![no_main]

use std::sync::Arc;

use docker_volume_backup::archive::{index, rewrite_for_upload, Decoder, TarReader};
use docker_volume_backup::docker::helper::MOUNT_DIR;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoder) = Decoder::new(data) {
        let mut reader = TarReader::new(decoder, Arc::default());
        if rewrite_for_upload(&mut reader, std::io::sink(), MOUNT_DIR, Default::default()).is_ok() {
            let _ = reader.verify();
        }
    }
    if let Ok(decoder) = Decoder::new(data) {
        let mut reader = TarReader::new(decoder, Arc::default());
        let _ = index::index_entries(&mut reader);
    }
});
