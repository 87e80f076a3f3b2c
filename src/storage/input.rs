//! Where an archive is read from: stdin, a local file, or an object behind a URL
//! (`s3://bucket/key`), each as a blocking reader for the archive code.

use std::io;

use anyhow::Result;

use super::{storage_error, stream_object, Location, S3Options, Store};
use crate::error::{Kind, UserError};
use crate::pipe::{ChannelReader, DynRead};

/// Opens an archive for reading: `-` (stdin), a file, or a URL (`s3://bucket/key`, streamed
/// through a bounded channel). Returns the reader and the size when known.
pub async fn open_input(path: &str, s3: &S3Options) -> Result<(DynRead, Option<u64>)> {
    use std::io::IsTerminal;
    if Location::is_remote(path) {
        return open_remote(path, s3).await;
    }
    if path == "-" {
        if io::stdin().is_terminal() {
            return Err(
                UserError::new(Kind::Usage, "refusing to read an archive from a terminal")
                    .hint("pipe the archive in, e.g. `cat backup.tar.zst | ... restore - VOLUME`")
                    .into(),
            );
        }
        return Ok((Box::new(io::stdin()), None));
    }
    let file = std::fs::File::open(path).map_err(|e| {
        let kind = if e.kind() == io::ErrorKind::NotFound {
            Kind::NotFound
        } else {
            Kind::Failure
        };
        UserError::new(kind, format!("cannot open {path}: {e}"))
    })?;
    let len = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), len))
}

/// Opens one archive at a URL for reading as a blocking stream (for the archive code on a
/// blocking thread): a task on the runtime streams the object in chunks through a bounded
/// channel, so memory stays constant. Returns the reader and the object's size.
pub async fn open_remote(url: &str, s3: &S3Options) -> Result<(DynRead, Option<u64>)> {
    let (location, name) = Location::split_object(url)?;
    let store = Store::open(&location, false, s3)?;
    let meta = store
        .op
        .stat(&name)
        .await
        .map_err(|e| storage_error(&format!("cannot open {url}"), e))?;
    let len = meta.content_length();
    let rx = stream_object(&store, &name, 0..len).await?;
    Ok((Box::new(ChannelReader::new(rx)), Some(len)))
}
