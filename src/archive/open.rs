//! Opening an archive for reading: detect encryption and compression by content, decrypt,
//! decompress, check that tar data follows and read the manifest head if there is one.

use std::sync::Arc;

use super::{
    ArchiveError, Compression, Counters, CountingReader, Decoder, Encryption, Keys, TarReader,
};
use crate::pipe::DynRead;

/// What an archive is wrapped in, as found by content.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveFormat {
    pub compression: Compression,
    pub encryption: Option<Encryption>,
}

/// Opens an archive for reading (restore, inspect, verify): detects encryption and compression
/// by content, decrypts with `keys` (a missing or wrong key fails here, before anything else
/// happens), checks that it holds tar data and reads the manifest head if there is one.
/// Blocking; run it on a blocking thread (`keys` may ask for a passphrase).
pub fn open_archive(
    input: DynRead,
    counters: Arc<Counters>,
    keys: &Keys,
) -> Result<TarReader<DynRead>, ArchiveError> {
    open_archive_with_kind(input, counters, keys).map(|(reader, _)| reader)
}

/// `open_archive`, also telling which encryption and compression were found.
pub fn open_archive_with_kind(
    input: DynRead,
    counters: Arc<Counters>,
    keys: &Keys,
) -> Result<(TarReader<DynRead>, ArchiveFormat), ArchiveError> {
    let counted = CountingReader::new(input, counters.clone());
    let decoder = Decoder::with_keys(counted, keys)?;
    let format = ArchiveFormat {
        compression: decoder.compression(),
        encryption: decoder.encryption(),
    };
    let mut reader = TarReader::new(Box::new(decoder) as DynRead, counters);
    reader.peek()?;
    Ok((reader, format))
}
