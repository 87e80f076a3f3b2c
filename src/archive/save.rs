//! Writing an archive: the engine's tar stream passes through untouched between the two
//! manifest headers, counted and hashed on the way.

use std::io::{Read, Write};
use std::sync::Arc;

use super::encryption::{EncryptTo, Encrypting};
use super::manifest::{self, ManifestHead, ManifestTrailer};
use super::tar_stream::{Item, TarReader};
use super::{ArchiveError, Counters, EncodeOptions, Encoder};

/// Compresses (then, with `encrypt`, encrypts) the tar stream `src` into `dst` with the manifest
/// around it; returns the inner writer (not yet synced) and the trailer written.
pub fn write_archive<R: Read, W: Write>(
    src: R,
    dst: W,
    opts: EncodeOptions,
    encrypt: Option<&EncryptTo>,
    head: &ManifestHead,
    counters: Arc<Counters>,
) -> Result<(W, ManifestTrailer), ArchiveError> {
    let dst = Encrypting::new(dst, encrypt)?;
    let mut enc = Encoder::new(dst, opts).map_err(ArchiveError::Output)?;
    let head_digest = write_global_header(&mut enc, &manifest::to_json(head))?;
    let mut reader = TarReader::new(src, counters);
    while let Item::Entry(entry) = reader.next_item()? {
        enc.write_all(&entry.raw).map_err(ArchiveError::Output)?;
        reader.copy_data_raw(&mut enc)?;
    }
    let t = reader.totals();
    let trailer = ManifestTrailer::new(
        t.entries,
        t.content_bytes,
        t.tar_bytes,
        &t.hash,
        &t.segments,
        Some(&head_digest),
    );
    write_global_header(&mut enc, &manifest::to_json(&trailer))?;
    enc.write_all(&[0u8; 1024]).map_err(ArchiveError::Output)?;
    let dst = enc
        .finish()
        .and_then(Encrypting::finish)
        .map_err(ArchiveError::Output)?;
    Ok((dst, trailer))
}

/// Writes a PAX global header whose `comment` record holds `json`; returns the digest of its
/// data, which the trailer's checksum covers.
fn write_global_header<W: Write>(out: &mut W, json: &[u8]) -> Result<blake3::Hash, ArchiveError> {
    let data = manifest::pax_record("comment", json);
    let mut header = tar::Header::new_ustar();
    header
        .set_path(manifest::HEADER_NAME)
        .expect("a short relative path");
    header.set_entry_type(tar::EntryType::XGlobalHeader);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    header.set_cksum();
    let pad = data.len().next_multiple_of(512) - data.len();
    out.write_all(header.as_bytes())
        .and_then(|()| out.write_all(&data))
        .and_then(|()| out.write_all(&[0u8; 512][..pad]))
        .map_err(ArchiveError::Output)?;
    Ok(manifest::head_digest(&data))
}
